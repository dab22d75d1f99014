package discordtest

import (
	"encoding/json"
	"strings"
)

// MessageOptions adds to a user's message.
type MessageOptions struct {
	// Mentions are users mentioned; write <@id> in the text too.
	Mentions []User
	// MentionRoles are role ids mentioned.
	MentionRoles []string
	// ReplyTo is the id of the message this one answers.
	ReplyTo     string
	Attachments []Attachment
}

// Send posts a user's message to a channel and dispatches MESSAGE_CREATE.
func (s *Server) Send(channelID string, author User, content string, o *MessageOptions) Message {
	if o == nil {
		o = &MessageOptions{}
	}
	s.mu.Lock()
	ch := s.channels[channelID]
	m := Message{ID: s.newIDLocked(), ChannelID: channelID, Author: author, Content: content, Timestamp: now(),
		Mentions: append([]User{}, o.Mentions...), MentionRoles: append([]string{}, o.MentionRoles...),
		Attachments: append([]Attachment{}, o.Attachments...), Embeds: []any{}, Type: MessageDefault}
	if ch != nil && ch.GuildID != "" {
		m.GuildID = ch.GuildID
		m.Member = &Member{Roles: []string{}, JoinedAt: now()}
		if nick := s.nickLocked(ch.GuildID, author.ID); nick != "" {
			m.Member.Nick = nick
		}
	}
	for i := range m.Attachments {
		a := &m.Attachments[i]
		if a.ID == "" {
			a.ID = s.newIDLocked()
		}
		if a.URL == "" {
			a.URL = s.URL + "/files/" + a.ID + "/" + a.Filename
			a.ProxyURL = a.URL
		}
	}
	if o.ReplyTo != "" {
		m.Type = MessageReply
		m.MessageReference = &Reference{MessageID: o.ReplyTo, ChannelID: channelID, GuildID: m.GuildID}
		if ref := s.messages[o.ReplyTo]; ref != nil {
			cp := *ref
			cp.ReferencedMessage = nil
			m.ReferencedMessage = &cp
		}
	}
	stored := m
	s.messages[m.ID] = &stored
	s.mu.Unlock()
	s.Dispatch("MESSAGE_CREATE", m)
	return m
}

func (s *Server) nickLocked(guildID, userID string) string {
	for _, g := range s.guilds {
		if g.ID != guildID {
			continue
		}
		for _, m := range g.Members {
			if m.User != nil && m.User.ID == userID {
				return m.Nick
			}
		}
	}
	return ""
}

// SetNick sets a member's nickname in a guild.
func (s *Server) SetNick(guildID, userID, nick string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.guilds {
		if g.ID != guildID {
			continue
		}
		for i := range g.Members {
			if g.Members[i].User != nil && g.Members[i].User.ID == userID {
				g.Members[i].Nick = nick
			}
		}
	}
}

// Edit changes a message's text and dispatches MESSAGE_UPDATE.
func (s *Server) Edit(messageID, content string) Message {
	s.mu.Lock()
	m := s.messages[messageID]
	if m == nil {
		s.mu.Unlock()
		panic("discordtest: edit of unknown message " + messageID)
	}
	m.Content = content
	ts := now()
	m.EditedTimestamp = &ts
	cp := *m
	s.mu.Unlock()
	s.Dispatch("MESSAGE_UPDATE", cp)
	return cp
}

// Delete deletes a message and dispatches MESSAGE_DELETE.
func (s *Server) Delete(messageID string) {
	s.mu.Lock()
	m := s.messages[messageID]
	if m == nil {
		s.mu.Unlock()
		panic("discordtest: delete of unknown message " + messageID)
	}
	delete(s.messages, messageID)
	d := map[string]any{"id": m.ID, "channel_id": m.ChannelID}
	if m.GuildID != "" {
		d["guild_id"] = m.GuildID
	}
	s.mu.Unlock()
	s.Dispatch("MESSAGE_DELETE", d)
}

// React adds (or, with add false, removes) a user's reaction.
func (s *Server) React(messageID string, u User, emoji string, add bool) {
	s.mu.Lock()
	m := s.messages[messageID]
	if m == nil {
		s.mu.Unlock()
		panic("discordtest: reaction to unknown message " + messageID)
	}
	d := map[string]any{"user_id": u.ID, "channel_id": m.ChannelID, "message_id": m.ID,
		"emoji": Emoji{Name: emoji}}
	if m.GuildID != "" {
		d["guild_id"] = m.GuildID
		if add {
			d["member"] = Member{User: &u, Roles: []string{}, JoinedAt: now()}
		}
	}
	s.mu.Unlock()
	t := "MESSAGE_REACTION_ADD"
	if !add {
		t = "MESSAGE_REACTION_REMOVE"
	}
	s.Dispatch(t, d)
}

// AddMember adds a user to a guild and dispatches GUILD_MEMBER_ADD.
func (s *Server) AddMember(guildID string, u User) {
	s.mu.Lock()
	m := Member{User: &u, Roles: []string{}, JoinedAt: now(), GuildID: guildID}
	for _, g := range s.guilds {
		if g.ID == guildID {
			g.Members = append(g.Members, Member{User: &u, Roles: []string{}, JoinedAt: m.JoinedAt})
		}
	}
	s.users[u.ID] = u
	s.mu.Unlock()
	s.Dispatch("GUILD_MEMBER_ADD", m)
}

// JoinGuild adds a guild after the bots connected, as when a bot is
// invited, and dispatches GUILD_CREATE.
func (s *Server) JoinGuild(name string, owner User, members ...User) *Guild {
	g := s.AddGuild(name, owner, members...)
	s.mu.Lock()
	payload := s.guildPayload(g, privilegedIntents)
	s.mu.Unlock()
	s.Dispatch("GUILD_CREATE", payload)
	return g
}

// SlashCommand invokes an application command in a channel and dispatches
// INTERACTION_CREATE; it returns the interaction.
func (s *Server) SlashCommand(channelID string, u User, name string, options ...CommandOption) Interaction {
	s.mu.Lock()
	data, _ := json.Marshal(map[string]any{"id": s.newIDLocked(), "name": name, "type": 1, "options": options})
	in := s.newInteractionLocked(channelID, u, InteractionCommand, data)
	s.mu.Unlock()
	s.Dispatch("INTERACTION_CREATE", in)
	return in
}

// ClickButton presses a button (or, with values, picks from a select
// menu) on a message and dispatches INTERACTION_CREATE.
func (s *Server) ClickButton(messageID string, u User, customID string, values ...string) Interaction {
	s.mu.Lock()
	m := s.messages[messageID]
	if m == nil {
		s.mu.Unlock()
		panic("discordtest: click on unknown message " + messageID)
	}
	kind := 2 // button
	if len(values) > 0 {
		kind = 3 // string select
	}
	data, _ := json.Marshal(map[string]any{"custom_id": customID, "component_type": kind, "values": values})
	in := s.newInteractionLocked(m.ChannelID, u, InteractionComponent, data)
	cp := *m
	in.Message = &cp
	s.interactions[in.ID] = &in
	s.mu.Unlock()
	s.Dispatch("INTERACTION_CREATE", in)
	return in
}

func (s *Server) newInteractionLocked(channelID string, u User, kind int, data json.RawMessage) Interaction {
	var app string
	for _, b := range s.bots {
		app = b.appID
	}
	in := Interaction{ID: s.newIDLocked(), ApplicationID: app, Type: kind, Data: data, ChannelID: channelID,
		Token: "itoken-" + strings.ToLower(s.newSessionID()), Version: 1, Locale: "en-US"}
	if ch := s.channels[channelID]; ch != nil && ch.GuildID != "" {
		in.GuildID = ch.GuildID
		in.Member = &Member{User: &u, Roles: []string{}, JoinedAt: now(), Nick: s.nickLocked(ch.GuildID, u.ID)}
	} else {
		in.User = &u
	}
	s.interactions[in.ID] = &in
	return in
}
