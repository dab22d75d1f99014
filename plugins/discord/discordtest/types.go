package discordtest

import "encoding/json"

// The types below are Discord's JSON objects, with the fields this server
// reads or writes, named and shaped as Discord's API documentation has
// them. They are this package's own, not a client library's, so that a
// client is tested against the wire format rather than against itself.

// User is a Discord user or bot.
type User struct {
	ID            string `json:"id"`
	Username      string `json:"username"`
	GlobalName    string `json:"global_name,omitempty"`
	Discriminator string `json:"discriminator"`
	Avatar        any    `json:"avatar"`
	Bot           bool   `json:"bot,omitempty"`
}

// Member is a user in a guild.
type Member struct {
	User     *User    `json:"user,omitempty"`
	Nick     string   `json:"nick,omitempty"`
	Roles    []string `json:"roles"`
	JoinedAt string   `json:"joined_at,omitempty"`
	GuildID  string   `json:"guild_id,omitempty"`
}

// Role is a guild role.
type Role struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Channel types used here.
const (
	ChannelText         = 0
	ChannelDM           = 1
	ChannelVoice        = 2
	ChannelPublicThread = 11
)

// Channel is a guild channel, a thread or a DM.
type Channel struct {
	ID         string `json:"id"`
	Type       int    `json:"type"`
	GuildID    string `json:"guild_id,omitempty"`
	Name       string `json:"name,omitempty"`
	ParentID   string `json:"parent_id,omitempty"`
	Position   int    `json:"position"`
	Recipients []User `json:"recipients,omitempty"`
}

// Guild is a server, as GUILD_CREATE sends it.
type Guild struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	OwnerID     string    `json:"owner_id"`
	Channels    []Channel `json:"channels"`
	Threads     []Channel `json:"threads"`
	Members     []Member  `json:"members"`
	Roles       []Role    `json:"roles"`
	MemberCount int       `json:"member_count"`
	Unavailable bool      `json:"unavailable"`
	Large       bool      `json:"large"`
	JoinedAt    string    `json:"joined_at,omitempty"`
}

// Attachment is a file of a message.
type Attachment struct {
	ID          string `json:"id"`
	Filename    string `json:"filename"`
	Size        int    `json:"size"`
	URL         string `json:"url"`
	ProxyURL    string `json:"proxy_url"`
	ContentType string `json:"content_type,omitempty"`
	Description string `json:"description,omitempty"`
}

// Reference is a message's reply reference.
type Reference struct {
	MessageID       string `json:"message_id"`
	ChannelID       string `json:"channel_id,omitempty"`
	GuildID         string `json:"guild_id,omitempty"`
	FailIfNotExists *bool  `json:"fail_if_not_exists,omitempty"`
}

// Message types used here.
const (
	MessageDefault = 0
	MessageReply   = 19
)

// Message is a Discord message.
type Message struct {
	ID                string       `json:"id"`
	ChannelID         string       `json:"channel_id"`
	GuildID           string       `json:"guild_id,omitempty"`
	Author            User         `json:"author"`
	Member            *Member      `json:"member,omitempty"`
	Content           string       `json:"content"`
	Timestamp         string       `json:"timestamp"`
	EditedTimestamp   *string      `json:"edited_timestamp"`
	TTS               bool         `json:"tts"`
	MentionEveryone   bool         `json:"mention_everyone"`
	Mentions          []User       `json:"mentions"`
	MentionRoles      []string     `json:"mention_roles"`
	Attachments       []Attachment `json:"attachments"`
	Embeds            []any        `json:"embeds"`
	Pinned            bool         `json:"pinned"`
	Type              int          `json:"type"`
	Nonce             any          `json:"nonce,omitempty"`
	MessageReference  *Reference   `json:"message_reference,omitempty"`
	ReferencedMessage *Message     `json:"referenced_message,omitempty"`
}

// Emoji is a reaction's emoji: a Unicode emoji has only a name.
type Emoji struct {
	ID   *string `json:"id"`
	Name string  `json:"name"`
}

// Interaction types used here.
const (
	InteractionCommand   = 2
	InteractionComponent = 3
)

// Interaction is an INTERACTION_CREATE payload.
type Interaction struct {
	ID            string          `json:"id"`
	ApplicationID string          `json:"application_id"`
	Type          int             `json:"type"`
	Data          json.RawMessage `json:"data"`
	GuildID       string          `json:"guild_id,omitempty"`
	ChannelID     string          `json:"channel_id"`
	Member        *Member         `json:"member,omitempty"`
	User          *User           `json:"user,omitempty"`
	Message       *Message        `json:"message,omitempty"`
	Token         string          `json:"token"`
	Version       int             `json:"version"`
	Locale        string          `json:"locale"`
}

// CommandOption is one option of a slash command invocation.
type CommandOption struct {
	Name  string `json:"name"`
	Type  int    `json:"type"`
	Value any    `json:"value"`
}
