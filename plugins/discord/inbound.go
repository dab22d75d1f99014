package discord

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
	"github.com/bwmarrin/discordgo"
)

// callTimeout bounds each call to the host made while handling an event.
const callTimeout = 30 * time.Second

// where is a message's place: its channel, and the room and world it maps
// to.
type where struct {
	channel  *discordgo.Channel
	parentID string // a thread's channel
	guildID  string
	dm       bool
	thread   bool
	kind     sdk.ChannelType
	roomName string
	world    string
}

// locate works out where a message of channelID in guildID was written.
func (b *bot) locate(channelID, guildID string) where {
	w := where{guildID: guildID, dm: guildID == ""}
	c, err := b.channel(channelID)
	if err != nil {
		b.log.Debug("channel unknown; treating it as plain text channel", "channel", channelID, "error", err)
		c = &discordgo.Channel{ID: channelID, GuildID: guildID}
		if guildID == "" {
			c.Type = discordgo.ChannelTypeDM
		}
	}
	w.channel = c
	w.kind = channelKind(c, guildID)
	w.thread = w.kind == sdk.ChannelThread
	if w.thread {
		w.parentID = c.ParentID
	}
	w.roomName = c.Name
	if w.dm {
		w.roomName = "DM"
		if len(c.Recipients) > 0 && c.Recipients[0] != nil {
			w.roomName = "DM with " + c.Recipients[0].Username
		}
	} else if g, ok := b.stateGuild(guildID); ok {
		w.world = g.Name
	}
	return w
}

// channelKind maps Discord's channel types to elizaOS's room types.
func channelKind(c *discordgo.Channel, guildID string) sdk.ChannelType {
	switch c.Type {
	case discordgo.ChannelTypeDM:
		return sdk.ChannelDM
	case discordgo.ChannelTypeGroupDM:
		return sdk.ChannelGroup
	case discordgo.ChannelTypeGuildNewsThread, discordgo.ChannelTypeGuildPublicThread, discordgo.ChannelTypeGuildPrivateThread:
		return sdk.ChannelThread
	case discordgo.ChannelTypeGuildVoice, discordgo.ChannelTypeGuildStageVoice:
		return sdk.ChannelVoiceGroup
	case discordgo.ChannelTypeGuildForum, discordgo.ChannelTypeGuildMedia:
		return sdk.ChannelForum
	}
	if guildID == "" {
		return sdk.ChannelDM
	}
	return sdk.ChannelGroup
}

// ids are a message's place in the platform's ids, as the host is given
// them: a thread is a room of its own, and a DM's world is its room, as in
// elizaOS.
func (w where) ids() (channelID, serverID, threadID string) {
	channelID = w.channel.ID
	serverID = w.guildID
	if w.thread {
		threadID = w.channel.ID
	}
	if w.dm {
		serverID = w.channel.ID
	}
	return
}

// The agent-side ids the host derives from platform ids (createUniqueUuid).
func (b *bot) entityID(userID string) string    { return sdk.CreateUniqueUUID(b.a.ID, userID) }
func (b *bot) memoryID(messageID string) string { return sdk.CreateUniqueUUID(b.a.ID, messageID) }
func (b *bot) roomID(w where) string            { return sdk.CreateUniqueUUID(b.a.ID, w.channel.ID) }
func (b *bot) worldID(w where) string {
	_, server, _ := w.ids()
	return sdk.CreateUniqueUUID(b.a.ID, server)
}

// names returns a user's user name (with the discriminator for bots, as
// elizaOS has it) and display name (the guild nickname, else the global
// name, else the user name).
func names(u *discordgo.User, m *discordgo.Member) (userName, display string) {
	userName = u.Username
	if u.Bot && u.Discriminator != "" && u.Discriminator != "0" {
		userName += "#" + u.Discriminator
	}
	display = u.GlobalName
	if m != nil && m.Nick != "" {
		display = m.Nick
	}
	if display == "" {
		display = u.Username
	}
	return userName, display
}

func (b *bot) entity(u *discordgo.User, m *discordgo.Member) sdk.Entity {
	userName, display := names(u, m)
	e := sdk.Entity{ID: b.entityID(u.ID), AgentID: b.a.ID, Metadata: map[string]any{
		Source: map[string]any{"id": u.ID, "userName": userName, "name": display, "bot": u.Bot}}}
	for _, n := range []string{display, userName} {
		if n != "" && (len(e.Names) == 0 || e.Names[0] != n) {
			e.Names = append(e.Names, n)
		}
	}
	return e
}

func (b *bot) room(w where) sdk.Room {
	channelID, serverID, _ := w.ids()
	r := sdk.Room{ID: b.roomID(w), Name: w.roomName, AgentID: b.a.ID, Source: Source, Type: w.kind,
		ChannelID: channelID, ServerID: serverID, WorldID: b.worldID(w)}
	if w.parentID != "" {
		r.Metadata = map[string]any{"parentChannelId": w.parentID}
	}
	return r
}

func (b *bot) world(w where) sdk.World {
	_, serverID, _ := w.ids()
	name := w.world
	if w.dm {
		name = w.roomName
	}
	return sdk.World{ID: b.worldID(w), Name: name, AgentID: b.a.ID, ServerID: serverID}
}

func (b *bot) onMessageCreate(_ *discordgo.Session, m *discordgo.MessageCreate) {
	if m.Message == nil {
		return
	}
	b.queue.push(m.ChannelID, func() { b.handleMessage(m.Message) })
}

// mentioned says whether a message mentions the bot, by user or by one of
// its roles, or replies to one of its messages.
func (b *bot) mentioned(m *discordgo.Message, self *discordgo.User) bool {
	if self == nil {
		return false
	}
	for _, u := range m.Mentions {
		if u != nil && u.ID == self.ID {
			return true
		}
	}
	if m.ReferencedMessage != nil && m.ReferencedMessage.Author != nil && m.ReferencedMessage.Author.ID == self.ID {
		return true
	}
	if len(m.MentionRoles) > 0 && m.GuildID != "" {
		if me, ok := b.stateMember(m.GuildID, self.ID); ok {
			for _, r := range me.Roles {
				for _, mr := range m.MentionRoles {
					if r == mr {
						return true
					}
				}
			}
		}
	}
	return false
}

// reasonOwn is filter's reason for the bot's own messages, which Discord
// echoes; they are not worth a log line.
const reasonOwn = "own message"

// filter decides whether a message reaches the agent. It returns why not,
// or "", and whether the message is only to be remembered. Direct
// messages to the bot itself (slash commands, its buttons) need no
// mention.
func (b *bot) filter(m *discordgo.Message, w where, direct bool) (reason string, listenOnly bool) {
	self := b.selfUser()
	switch {
	case m.Author == nil:
		return "no author", false
	case self != nil && m.Author.ID == self.ID:
		return reasonOwn, false
	case m.Interaction != nil || m.InteractionMetadata != nil:
		return "a bot's answer to a slash command", false
	case (m.Author.Bot || m.WebhookID != "") && b.cfg.ignoreBots:
		return "written by a bot (" + SettingIgnoreBots + " is true; set it to false to let the agent read bots)", false
	case w.dm && b.cfg.ignoreDMs:
		return "a direct message (" + SettingIgnoreDMs + " is true)", false
	}
	if w.dm {
		return "", false
	}
	if b.cfg.listenOnly(w.channel.ID, w.parentID) {
		return "", true
	}
	if !b.cfg.allowedChannel(w.channel.ID, w.parentID) {
		return "the channel is not in the allow-list (" + SettingChannelIDs + " or settings.discord.allowedChannelIds)", false
	}
	if b.cfg.onlyMentions && !direct && !b.mentioned(m, self) {
		return "the bot is not mentioned (" + SettingOnlyMentions + " is true)", false
	}
	return "", false
}

// handleMessage hands a new message to the agent.
func (b *bot) handleMessage(m *discordgo.Message) {
	w := b.locate(m.ChannelID, m.GuildID)
	reason, listenOnly := b.filter(m, w, false)
	if reason == reasonOwn {
		b.log.Trace("own message seen", "channel", m.ChannelID, "message", m.ID)
		return
	}
	if reason != "" {
		b.ignored(m, w, reason)
		return
	}
	if strings.TrimSpace(m.Content) == "" && len(m.Attachments) == 0 {
		b.ignored(m, w, "the message has no text: if people write text, enable the Message Content intent (Developer Portal → Bot → Privileged Gateway Intents)")
		return
	}
	in := b.incoming(m, w)
	ctx, cancel := context.WithTimeout(b.ctx, callTimeout)
	defer cancel()
	if listenOnly {
		if err := b.remember(ctx, m, w, in); err != nil {
			b.log.Error("storing a message of a listen-only channel failed", "channel", m.ChannelID, "message", m.ID, "error", err)
		}
		return
	}
	memID := b.memoryID(m.ID)
	b.mu.Lock()
	b.replies[memID] = &replyInfo{ChannelID: m.ChannelID, GuildID: m.GuildID, MessageID: m.ID, Expires: time.Now().Add(time.Hour)}
	b.mu.Unlock()
	b.startTyping(memID, m.ChannelID)
	res, err := b.a.ReceiveMessage(ctx, in)
	if err != nil {
		b.stopTyping(memID)
		b.log.Error("handing a Discord message to the agent failed", "channel", m.ChannelID, "message", m.ID, "error", err)
		return
	}
	if res.Duplicate {
		b.stopTyping(memID)
	}
	b.log.Debug("message handed to the agent", "channel", m.ChannelID, "message", m.ID, "memory", res.MemoryID)
}

func (b *bot) ignored(m *discordgo.Message, w where, reason string) {
	author := ""
	if m.Author != nil {
		author = m.Author.Username
	}
	name := w.channel.Name
	if w.dm {
		name = "DM"
	}
	b.ignores.ignored(m.ChannelID, reason, "channel_name", name, "message", m.ID, "author", author)
}

// incoming builds what the host is given for a message.
func (b *bot) incoming(m *discordgo.Message, w where) sdk.IncomingMessage {
	userName, display := names(m.Author, m.Member)
	channelID, serverID, threadID := w.ids()
	in := sdk.IncomingMessage{
		Source: Source, MessageID: m.ID, ChannelID: channelID, ServerID: serverID, ThreadID: threadID,
		UserID: m.Author.ID, UserName: userName, DisplayName: display,
		ChannelType: w.kind, RoomName: w.roomName, WorldName: w.world,
		CreatedAt:   m.Timestamp.UnixMilli(),
		AuthorIsBot: m.Author.Bot || m.WebhookID != "",
		Content:     b.content(m, w),
	}
	if w.dm {
		in.WorldName = w.roomName
	}
	if m.MessageReference != nil && m.MessageReference.MessageID != "" {
		in.InReplyTo = m.MessageReference.MessageID
	}
	if in.CreatedAt <= 0 {
		in.CreatedAt = time.Now().UnixMilli()
	}
	return in
}

func (b *bot) content(m *discordgo.Message, w where) sdk.Content {
	c := sdk.Content{Text: b.readable(m), Source: Source, ChannelType: w.kind, URL: messageURL(m.GuildID, m.ChannelID, m.ID)}
	for _, a := range m.Attachments {
		if a == nil {
			continue
		}
		c.Attachments = append(c.Attachments, sdk.Media{ID: a.ID, URL: a.URL, Title: a.Filename, Source: "Discord",
			ContentType: a.ContentType, Description: fmt.Sprintf("%s (%d bytes)", a.Filename, a.Size)})
	}
	return c
}

func messageURL(guildID, channelID, messageID string) string {
	if guildID == "" {
		guildID = "@me"
	}
	return "https://discord.com/channels/" + guildID + "/" + channelID + "/" + messageID
}

var (
	userMention    = regexp.MustCompile(`<@!?(\d+)>`)
	roleMention    = regexp.MustCompile(`<@&(\d+)>`)
	channelMention = regexp.MustCompile(`<#(\d+)>`)
	customEmoji    = regexp.MustCompile(`<a?:(\w+):\d+>`)
)

// readable rewrites Discord's markup for mentions into names: <@id>
// becomes "username (@id)" as in elizaOS, <@&id> "@role", <#id>
// "#channel" and custom emoji ":name:".
func (b *bot) readable(m *discordgo.Message) string {
	users := map[string]*discordgo.User{}
	for _, u := range m.Mentions {
		if u != nil {
			users[u.ID] = u
		}
	}
	text := userMention.ReplaceAllStringFunc(m.Content, func(tok string) string {
		id := userMention.FindStringSubmatch(tok)[1]
		u := users[id]
		if u == nil && m.GuildID != "" {
			if mem, ok := b.stateMember(m.GuildID, id); ok && mem.User != nil {
				u = mem.User
			}
		}
		if u == nil {
			return tok
		}
		return u.Username + " (@" + id + ")"
	})
	text = roleMention.ReplaceAllStringFunc(text, func(tok string) string {
		id := roleMention.FindStringSubmatch(tok)[1]
		if m.GuildID != "" {
			if name, ok := b.stateRoleName(m.GuildID, id); ok {
				return "@" + name
			}
		}
		return tok
	})
	text = channelMention.ReplaceAllStringFunc(text, func(tok string) string {
		id := channelMention.FindStringSubmatch(tok)[1]
		if c, ok := b.stateChannel(id); ok && c.Name != "" {
			return "#" + c.Name
		}
		return tok
	})
	return customEmoji.ReplaceAllString(text, ":$1:")
}

// remember stores a message of a listen-only channel: the agent knows it
// was said but does not answer it.
func (b *bot) remember(ctx context.Context, m *discordgo.Message, w where, in sdk.IncomingMessage) error {
	e := b.entity(m.Author, m.Member)
	if err := storage.For(b.a).EnsureConnection(ctx, storage.Connection{Entity: e, Room: b.room(w), World: b.world(w)}); err != nil {
		return err
	}
	mem := &sdk.Memory{ID: b.memoryID(m.ID), EntityID: e.ID, AgentID: b.a.ID, RoomID: b.roomID(w), WorldID: b.worldID(w),
		CreatedAt: in.CreatedAt, Content: in.Content, Metadata: map[string]any{"listenOnly": true}}
	if in.InReplyTo != "" {
		mem.Content.InReplyTo = b.memoryID(in.InReplyTo)
	}
	_, _, err := storage.For(b.a).CreateMemory(ctx, mem, sdk.TableMessages, false)
	return err
}

func (b *bot) onMessageUpdate(_ *discordgo.Session, m *discordgo.MessageUpdate) {
	// Updates without an edit time are Discord adding link previews.
	if m.Message == nil || m.Author == nil || m.EditedTimestamp == nil {
		return
	}
	b.queue.push(m.ChannelID, func() { b.handleEdit(m.Message) })
}

// handleEdit makes the stored message follow an edit.
func (b *bot) handleEdit(m *discordgo.Message) {
	w := b.locate(m.ChannelID, m.GuildID)
	if reason, _ := b.filter(m, w, false); reason != "" {
		if reason != reasonOwn {
			b.ignored(m, w, reason)
		}
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, callTimeout)
	defer cancel()
	id := b.memoryID(m.ID)
	old, err := storage.For(b.a).GetMemoriesByIDs(ctx, []string{id}, sdk.TableMessages)
	if err != nil || len(old) == 0 {
		b.log.Debug("edited message was never stored; nothing to update", "message", m.ID, "error", err)
		return
	}
	mem := old[0]
	before := mem.Content.Text
	c := b.content(m, w)
	mem.Content.Text, mem.Content.Attachments = c.Text, c.Attachments
	if mem.Metadata == nil {
		mem.Metadata = map[string]any{}
	}
	mem.Metadata["editedAt"] = m.EditedTimestamp.UnixMilli()
	if err := storage.For(b.a).DeleteMemory(ctx, id); err != nil {
		b.log.Warn("updating an edited message failed", "message", m.ID, "error", err)
		return
	}
	if _, _, err := storage.For(b.a).CreateMemory(ctx, &mem, sdk.TableMessages, false); err != nil {
		b.log.Warn("updating an edited message failed", "message", m.ID, "error", err)
		return
	}
	b.emit(ctx, sdk.Event{Type: EventMessageUpdated, Source: Source, Message: &mem,
		Payload: map[string]any{"messageId": m.ID, "channelId": m.ChannelID, "before": before}})
}

func (b *bot) onMessageDelete(_ *discordgo.Session, m *discordgo.MessageDelete) {
	if m.Message == nil {
		return
	}
	id, channelID, guildID := m.ID, m.ChannelID, m.GuildID
	b.queue.push(channelID, func() { b.handleDelete(id, channelID, guildID) })
}

// handleDelete forgets a deleted message and tells the agent's plugins.
func (b *bot) handleDelete(messageID, channelID, guildID string) {
	ctx, cancel := context.WithTimeout(b.ctx, callTimeout)
	defer cancel()
	w := b.locate(channelID, guildID)
	id := b.memoryID(messageID)
	old, err := storage.For(b.a).GetMemoriesByIDs(ctx, []string{id}, sdk.TableMessages)
	if err != nil || len(old) == 0 {
		b.log.Debug("deleted message was never stored", "message", messageID, "error", err)
		return
	}
	if err := storage.For(b.a).DeleteMemory(ctx, id); err != nil {
		b.log.Warn("forgetting a deleted message failed", "message", messageID, "error", err)
		return
	}
	b.emit(ctx, sdk.Event{Type: sdk.EventMessageDeleted, Source: Source, Message: &old[0],
		Payload: map[string]any{"messageId": messageID, "channelId": channelID, "roomId": b.roomID(w)}})
}

func (b *bot) onReactionAdd(_ *discordgo.Session, r *discordgo.MessageReactionAdd) {
	if r.MessageReaction == nil {
		return
	}
	mr, member := *r.MessageReaction, r.Member
	if member != nil {
		member = copyMember(member)
	}
	b.queue.push(mr.ChannelID, func() { b.handleReaction(mr, member, true) })
}

func (b *bot) onReactionRemove(_ *discordgo.Session, r *discordgo.MessageReactionRemove) {
	if r.MessageReaction == nil {
		return
	}
	mr := *r.MessageReaction
	b.queue.push(mr.ChannelID, func() { b.handleReaction(mr, nil, false) })
}

// handleReaction stores a reaction as a message in reply to the one
// reacted to, and emits REACTION_RECEIVED (or DISCORD_REACTION_REMOVED).
func (b *bot) handleReaction(r discordgo.MessageReaction, member *discordgo.Member, added bool) {
	self := b.selfUser()
	if self != nil && r.UserID == self.ID {
		return
	}
	w := b.locate(r.ChannelID, r.GuildID)
	user := b.user(r.UserID, r.GuildID, member)
	pseudo := &discordgo.Message{ID: r.MessageID, ChannelID: r.ChannelID, GuildID: r.GuildID, Author: user, Member: member}
	if reason, _ := b.filter(pseudo, w, true); reason != "" {
		b.ignores.ignored(r.ChannelID, "reaction: "+reason, "message", r.MessageID, "author", user.Username)
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, callTimeout)
	defer cancel()
	e := b.entity(user, member)
	if err := storage.For(b.a).EnsureConnection(ctx, storage.Connection{Entity: e, Room: b.room(w), World: b.world(w)}); err != nil {
		b.log.Warn("storing a reaction failed", "message", r.MessageID, "error", err)
		return
	}
	target := b.memoryID(r.MessageID)
	excerpt := "a message"
	if old, err := storage.For(b.a).GetMemoriesByIDs(ctx, []string{target}, sdk.TableMessages); err == nil && len(old) > 0 && old[0].Content.Text != "" {
		excerpt = `"` + clip(old[0].Content.Text, 80) + `"`
	}
	emoji := r.Emoji.Name
	if r.Emoji.ID != "" {
		emoji = ":" + r.Emoji.Name + ":"
	}
	verb, typ := "Added", sdk.EventReactionReceived
	if !added {
		verb, typ = "Removed", EventReactionRemoved
	}
	now := time.Now()
	mem := sdk.Memory{
		ID:       sdk.CreateUniqueUUID(b.a.ID, fmt.Sprintf("%s-%s-%s-%s-%d", r.MessageID, r.UserID, emoji, verb, now.UnixNano())),
		EntityID: e.ID, AgentID: b.a.ID, RoomID: b.roomID(w), WorldID: b.worldID(w), CreatedAt: now.UnixMilli(),
		Content: sdk.Content{Text: fmt.Sprintf("*%s <%s> to: %s*", verb, emoji, excerpt), Source: Source,
			InReplyTo: target, ChannelType: w.kind, URL: messageURL(r.GuildID, r.ChannelID, r.MessageID)},
	}
	if !added {
		mem.Content.Text = fmt.Sprintf("*Removed <%s> from: %s*", emoji, excerpt)
	}
	if _, _, err := storage.For(b.a).CreateMemory(ctx, &mem, sdk.TableMessages, false); err != nil {
		b.log.Warn("storing a reaction failed", "message", r.MessageID, "error", err)
		return
	}
	b.emit(ctx, sdk.Event{Type: typ, Source: Source, Message: &mem, Payload: map[string]any{
		"emoji": emoji, "messageId": r.MessageID, "reactedMemoryId": target, "userId": r.UserID,
		"channelId": r.ChannelID, "added": added}})
}

// user finds a user by id: in the event, the gateway state, else the API.
func (b *bot) user(id, guildID string, member *discordgo.Member) *discordgo.User {
	if member != nil && member.User != nil {
		return member.User
	}
	if guildID != "" {
		if m, ok := b.stateMember(guildID, id); ok && m.User != nil {
			return m.User
		}
	}
	if u, err := b.session().User(id, discordgo.WithContext(b.ctx)); err == nil {
		return u
	}
	return &discordgo.User{ID: id, Username: id}
}

// emit hands an event to the agent's plugins; a failure is logged.
func (b *bot) emit(ctx context.Context, ev sdk.Event) {
	if err := b.a.EmitEvent(ctx, ev); err != nil {
		b.log.Warn("emitting an event failed", "event", ev.Type, "error", err)
	}
}

func clip(s string, n int) string {
	r := []rune(strings.Join(strings.Fields(s), " "))
	if len(r) <= n {
		return string(r)
	}
	return string(r[:n]) + "…"
}
