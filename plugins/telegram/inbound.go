package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"
)

// Platform ids. Telegram numbers messages per chat, so a message's id is
// "chat:message" (elizaOS uses the bare message number, which makes
// message 5 of one chat a duplicate of message 5 of another). A forum
// topic's room is "chat-thread", as in elizaOS.

func chatKey(chat int64) string { return strconv.FormatInt(chat, 10) }

func messageKey(chat int64, msg int) string { return chatKey(chat) + ":" + strconv.Itoa(msg) }

func topicKey(chat int64, thread int) string { return chatKey(chat) + "-" + strconv.Itoa(thread) }

// handleRaw handles one update. It returns an error only when the update
// could not be handled for now (the host is unreachable, the agent is
// stopping): the update must then not be confirmed. An update that can
// never be handled (undecodable, refused as invalid) is logged and counts
// as handled, so it cannot block the ones after it.
func (c *connector) handleRaw(ctx context.Context, raw []byte) error {
	var u models.Update
	if err := json.Unmarshal(raw, &u); err != nil {
		c.log.Warn("skipping an update this version cannot read", "error", err, "update", clip(string(raw), 300))
		return nil
	}
	return c.handle(ctx, &u)
}

func (c *connector) handle(ctx context.Context, u *models.Update) error {
	switch {
	case u.Message != nil:
		return c.onMessage(ctx, u.Message, false)
	case u.ChannelPost != nil:
		return c.onMessage(ctx, u.ChannelPost, false)
	case u.EditedMessage != nil:
		return c.onMessage(ctx, u.EditedMessage, true)
	case u.EditedChannelPost != nil:
		return c.onMessage(ctx, u.EditedChannelPost, true)
	case u.MessageReaction != nil:
		return c.onReaction(ctx, u.MessageReaction)
	case u.CallbackQuery != nil:
		return c.onCallback(ctx, u.CallbackQuery)
	case u.MyChatMember != nil:
		m := u.MyChatMember
		c.log.Info("the bot's membership changed", "chat", m.Chat.ID, "title", m.Chat.Title)
	default:
		c.log.Debug("ignoring an update of a kind the agent does not use", "update_id", u.ID)
	}
	return nil
}

// retry runs a call to the host until it succeeds, fails for good, or ctx
// ends. Failing for good (the host refused the input) is logged and
// reported as success: retrying cannot help.
func (c *connector) retry(ctx context.Context, what string, f func(ctx context.Context) error) error {
	bo := newBackoff()
	for {
		err := f(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var perm *permanentError
		if errors.Is(err, sdk.ErrInvalid) || errors.As(err, &perm) {
			c.log.Error(what+" failed for good; skipping it", "error", err)
			return nil
		}
		if c.isDead() {
			return err
		}
		wait := bo.wait()
		c.log.Warn(what+" failed; retrying", "in", wait, "error", err)
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
	}
}

func (c *connector) isDead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dead != nil
}

// sender is who wrote a message: a user, or a chat (channel posts and
// anonymous group admins).
type sender struct {
	id          int64
	userName    string
	displayName string
	isBot       bool
}

func senderOf(m *models.Message) sender {
	if m.From != nil {
		return userSender(m.From)
	}
	if m.SenderChat != nil {
		return sender{id: m.SenderChat.ID, userName: m.SenderChat.Username, displayName: chatTitle(m.SenderChat)}
	}
	return sender{id: m.Chat.ID, userName: m.Chat.Username, displayName: chatTitle(&m.Chat)}
}

func userSender(u *models.User) sender {
	name := strings.TrimSpace(u.FirstName + " " + u.LastName)
	if name == "" {
		name = u.Username
	}
	return sender{id: u.ID, userName: u.Username, displayName: name, isBot: u.IsBot}
}

func chatTitle(ch *models.Chat) string {
	if ch.Title != "" {
		return ch.Title
	}
	if n := strings.TrimSpace(ch.FirstName + " " + ch.LastName); n != "" {
		return n
	}
	if ch.Username != "" {
		return "@" + ch.Username
	}
	return chatKey(ch.ID)
}

// channelType maps a chat's type to elizaOS's room type.
func channelType(ch *models.Chat) sdk.ChannelType {
	switch ch.Type {
	case models.ChatTypePrivate:
		return sdk.ChannelDM
	case models.ChatTypeChannel:
		return sdk.ChannelFeed
	}
	return sdk.ChannelGroup
}

// topicOf returns the forum topic a message belongs to: its thread id and
// name, or 0 for a chat's main room (and the General topic).
func (c *connector) topicOf(m *models.Message) (int, string) {
	if !m.IsTopicMessage || m.MessageThreadID == 0 {
		return 0, ""
	}
	key := topicKey(m.Chat.ID, m.MessageThreadID)
	name := ""
	if r := m.ReplyToMessage; r != nil && r.ForumTopicCreated != nil {
		name = r.ForumTopicCreated.Name
	}
	if m.ForumTopicCreated != nil {
		name = m.ForumTopicCreated.Name
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if name != "" {
		c.topics[key] = name
	} else {
		name = c.topics[key]
	}
	if name == "" {
		name = fmt.Sprintf("%s / topic %d", chatTitle(&m.Chat), m.MessageThreadID)
	}
	return m.MessageThreadID, name
}

// onMessage hands a message (new or edited) to the agent.
func (c *connector) onMessage(ctx context.Context, m *models.Message, edited bool) error {
	if !c.allowedChat(m.Chat) {
		c.log.Debug("ignoring a message: the chat is not in TELEGRAM_ALLOWED_CHATS", "chat", m.Chat.ID, "title", chatTitle(&m.Chat))
		return nil
	}
	me := c.bot()
	if me == nil {
		return fmt.Errorf("the bot is not online yet")
	}
	if err := c.onMembers(ctx, m); err != nil {
		return err
	}
	from := senderOf(m)
	if from.id == me.ID {
		return nil
	}
	text, entities := m.Text, m.Entities
	if text == "" {
		text, entities = m.Caption, m.CaptionEntities
	}
	private := m.Chat.Type == models.ChatTypePrivate
	cmd, forUs, isCmd := command(text, entities, me.Username)
	if isCmd && !forUs {
		c.log.Debug("ignoring a command for another bot", "chat", m.Chat.ID, "text", clip(text, 80))
		return nil
	}
	if isCmd && !edited && (cmd == "start" || cmd == "help") {
		return c.answerCommand(ctx, m, cmd)
	}
	mentioned := private || isCmd || mentions(text, entities, me) ||
		(m.ReplyToMessage != nil && m.ReplyToMessage.From != nil && m.ReplyToMessage.From.ID == me.ID)
	if c.cfg.onlyMentions && !mentioned {
		c.log.Debug("ignoring a message that does not mention the bot (TELEGRAM_SHOULD_RESPOND_ONLY_TO_MENTIONS)", "chat", m.Chat.ID)
		return nil
	}
	attachments, described := c.attachments(ctx, m)
	if described != "" {
		text = strings.TrimSpace(text + "\n" + described)
	}
	if text == "" && m.Sticker != nil {
		text = m.Sticker.Emoji
	}
	if strings.TrimSpace(text) == "" && len(attachments) == 0 {
		return nil
	}
	thread, topic := c.topicOf(m)
	if err := c.syncChat(ctx, &m.Chat, from, thread, topic); err != nil {
		return err
	}
	chat := chatKey(m.Chat.ID)
	id := messageKey(m.Chat.ID, m.ID)
	created := int64(m.Date) * 1000
	extra := map[string]any{"chatId": chat, "messageId": m.ID, "chatType": string(m.Chat.Type)}
	content := sdk.Content{Text: text, Source: Source, Attachments: attachments, ChannelType: channelType(&m.Chat),
		Extra: map[string]any{"telegram": extra}}
	if mentioned && !private {
		content.Extra["mentionsAgent"] = true
	}
	if edited {
		// An edit is a new version of the message: the agent sees the
		// corrected text, and each version is handled once.
		id += ":edit:" + strconv.Itoa(m.EditDate)
		created = int64(m.EditDate) * 1000
		content.Extra["edited"] = true
		content.Extra["originalId"] = sdk.CreateUniqueUUID(c.agent.ID, messageKey(m.Chat.ID, m.ID))
	}
	if thread != 0 {
		extra["threadId"] = thread
	}
	if m.Chat.Username != "" {
		content.URL = fmt.Sprintf("https://t.me/%s/%d", m.Chat.Username, m.ID)
	}
	in := sdk.IncomingMessage{Source: Source, MessageID: id, ChannelID: chat, ServerID: chat, UserID: chatKey(from.id),
		UserName: from.userName, DisplayName: from.displayName, Content: content, ChannelType: channelType(&m.Chat),
		RoomName: chatTitle(&m.Chat), WorldName: chatTitle(&m.Chat), CreatedAt: created, AuthorIsBot: from.isBot}
	if private {
		in.RoomName = from.displayName
	}
	if thread != 0 {
		in.ThreadID = topicKey(m.Chat.ID, thread)
		in.RoomName = topic
	}
	if r := m.ReplyToMessage; r != nil && r.ForumTopicCreated == nil && !(thread != 0 && r.ID == thread) {
		in.InReplyTo = messageKey(m.Chat.ID, r.ID)
	}
	memoryID := sdk.CreateUniqueUUID(c.agent.ID, id)
	c.replyKeys.put(memoryID, messageKey(m.Chat.ID, m.ID))
	if mentioned && !from.isBot {
		room := chat
		if in.ThreadID != "" {
			room = in.ThreadID
		}
		c.typing.start(m.Chat.ID, thread, sdk.CreateUniqueUUID(c.agent.ID, room))
	}
	return c.retry(ctx, "handing message "+id+" to the agent", func(ctx context.Context) error {
		_, err := c.agent.ReceiveMessage(ctx, in)
		return err
	})
}

// command reads a bot command at the start of text: its name, whether it
// is for this bot (no @name, or ours), and whether there is one.
func command(text string, entities []models.MessageEntity, botName string) (string, bool, bool) {
	if !strings.HasPrefix(text, "/") {
		return "", false, false
	}
	isCmd := len(entities) == 0
	for _, e := range entities {
		if e.Type == models.MessageEntityTypeBotCommand && e.Offset == 0 {
			isCmd = true
		}
	}
	if !isCmd {
		return "", false, false
	}
	word := strings.Fields(text)[0][1:]
	name, target, _ := strings.Cut(word, "@")
	return strings.ToLower(name), target == "" || strings.EqualFold(target, botName), true
}

// mentions reports whether text mentions the bot: @username, or a text
// mention of its user.
func mentions(text string, entities []models.MessageEntity, me *models.User) bool {
	u := utf16.Encode([]rune(text))
	for _, e := range entities {
		switch e.Type {
		case models.MessageEntityTypeMention:
			if e.Offset >= 0 && e.Offset+e.Length <= len(u) {
				name := string(utf16.Decode(u[e.Offset : e.Offset+e.Length]))
				if strings.EqualFold(strings.TrimPrefix(name, "@"), me.Username) {
					return true
				}
			}
		case models.MessageEntityTypeTextMention:
			if e.User != nil && e.User.ID == me.ID {
				return true
			}
		}
	}
	return me.Username != "" && len(entities) == 0 && strings.Contains(strings.ToLower(text), "@"+strings.ToLower(me.Username))
}

// attachments lists a message's media. Images are described by the
// agent's IMAGE_DESCRIPTION model when it has one; the descriptions are
// returned to be appended to the text, as elizaOS does.
func (c *connector) attachments(ctx context.Context, m *models.Message) ([]sdk.Media, string) {
	var out []sdk.Media
	add := func(fileID, title, contentType, mime string) {
		out = append(out, sdk.Media{ID: fileID, Title: title, Source: Source, ContentType: contentType, Description: mime})
	}
	if n := len(m.Photo); n > 0 {
		add(m.Photo[n-1].FileID, "photo", "image", "")
	}
	if d := m.Document; d != nil {
		kind := "document"
		if strings.HasPrefix(d.MimeType, "image/") {
			kind = "image"
		}
		add(d.FileID, d.FileName, kind, d.MimeType)
	}
	if v := m.Video; v != nil {
		add(v.FileID, v.FileName, "video", v.MimeType)
	}
	if v := m.Animation; v != nil {
		add(v.FileID, v.FileName, "video", v.MimeType)
	}
	if v := m.Audio; v != nil {
		add(v.FileID, v.FileName, "audio", v.MimeType)
	}
	if v := m.Voice; v != nil {
		add(v.FileID, "voice message", "audio", v.MimeType)
	}
	var described []string
	for i := range out {
		if out[i].ContentType != "image" {
			continue
		}
		if d := c.describe(ctx, out[i].ID); d != "" {
			out[i].Text = d
			described = append(described, "[Image: "+d+"]")
		}
	}
	return out, strings.Join(described, "\n")
}

// describe asks the agent's IMAGE_DESCRIPTION model about an image; "" when
// the agent has no such model or it fails. The file's URL holds the bot's
// token, so it goes to the model and nowhere else.
func (c *connector) describe(ctx context.Context, fileID string) string {
	var f *models.File
	err := c.call(ctx, "getFile", func(ctx context.Context) (err error) {
		f, err = c.api.b.GetFile(ctx, &bot.GetFileParams{FileID: fileID})
		return err
	})
	if err != nil || f == nil || f.FilePath == "" {
		return ""
	}
	url := c.api.root + "/file/bot" + c.api.token + "/" + f.FilePath
	dctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	res, err := c.agent.UseModel(dctx, sdk.ModelRequest{Type: sdk.ModelImageDescribe,
		Params: map[string]any{"imageUrl": url, "prompt": "Describe this image in one or two sentences."}})
	if err != nil {
		c.log.Debug("no image description", "error", c.api.scrub(err.Error()))
		return ""
	}
	return strings.TrimSpace(res.Text)
}

// syncChat stores a chat the first time this process sees it: the world
// with its owner and admins, as elizaOS does, and WORLD_JOINED when the
// agent had never seen it.
func (c *connector) syncChat(ctx context.Context, ch *models.Chat, from sender, thread int, topic string) error {
	c.mu.Lock()
	seen := c.chats[ch.ID]
	topicSeen := thread == 0 || c.seenTopics[topicKey(ch.ID, thread)]
	c.mu.Unlock()
	if seen && topicSeen {
		return nil
	}
	agentID := c.agent.ID
	chat := chatKey(ch.ID)
	worldID := sdk.CreateUniqueUUID(agentID, chat)
	fromID := sdk.CreateUniqueUUID(agentID, chatKey(from.id))
	world := sdk.World{ID: worldID, Name: chatTitle(ch), AgentID: agentID, ServerID: chat}
	room := sdk.Room{ID: sdk.CreateUniqueUUID(agentID, chat), Name: chatTitle(ch), AgentID: agentID, Source: Source,
		Type: channelType(ch), ChannelID: chat, ServerID: chat, WorldID: worldID,
		Metadata: map[string]any{"telegram": map[string]any{"chatId": chat, "chatType": string(ch.Type)}}}
	if ch.Type == models.ChatTypePrivate {
		room.Name = from.displayName
	}
	entity := sdk.Entity{ID: fromID, Names: names(from), AgentID: agentID,
		Metadata: map[string]any{Source: map[string]any{"id": chatKey(from.id), "username": from.userName, "userName": from.userName, "name": from.displayName}}}
	if !seen {
		var existing []sdk.World
		if err := c.retry(ctx, "looking up chat "+chat, func(ctx context.Context) (err error) {
			existing, err = storage.For(c.agent).GetWorlds(ctx, worldID)
			return err
		}); err != nil {
			return err
		}
		meta := map[string]any{Source: map[string]any{"chatId": chat, "type": string(ch.Type), "title": ch.Title,
			"username": ch.Username, "isForum": ch.IsForum}}
		roles := map[string]any{}
		var owner string
		if ch.Type == models.ChatTypePrivate {
			owner = fromID
		} else {
			owner = c.admins(ctx, ch, roles)
		}
		if owner != "" {
			roles[owner] = "OWNER"
			meta["ownership"] = map[string]any{"ownerId": owner}
		}
		if len(roles) > 0 {
			meta["roles"] = roles
		}
		world.Metadata = meta
		if err := c.retry(ctx, "storing chat "+chat, func(ctx context.Context) error {
			return storage.For(c.agent).EnsureConnection(ctx, storage.Connection{Entity: entity, Room: room, World: world})
		}); err != nil {
			return err
		}
		if len(existing) == 0 {
			c.emit(ctx, sdk.Event{Type: sdk.EventWorldJoined, Source: Source, Payload: map[string]any{
				"world": world, "rooms": []sdk.Room{room}, "entities": []sdk.Entity{entity}, "source": Source}})
		}
		c.mu.Lock()
		c.chats[ch.ID] = true
		c.mu.Unlock()
	}
	if !topicSeen {
		// A forum topic is a room of its own in the chat's world.
		key := topicKey(ch.ID, thread)
		troom := room
		troom.ID = sdk.CreateUniqueUUID(agentID, key)
		troom.Name = topic
		troom.Metadata = map[string]any{"telegram": map[string]any{"chatId": chat, "threadId": thread, "topic": topic}}
		if err := c.retry(ctx, "storing topic "+key, func(ctx context.Context) error {
			return storage.For(c.agent).EnsureConnection(ctx, storage.Connection{Entity: entity, Room: troom})
		}); err != nil {
			return err
		}
		c.mu.Lock()
		c.seenTopics[key] = true
		c.mu.Unlock()
	}
	return nil
}

func names(s sender) []string {
	var out []string
	for _, n := range []string{s.displayName, s.userName} {
		if n != "" && (len(out) == 0 || out[0] != n) {
			out = append(out, n)
		}
	}
	return out
}

// admins reads a group's administrators: the creator is the world's owner,
// the others are ADMIN. A chat whose admins cannot be read has no owner.
func (c *connector) admins(ctx context.Context, ch *models.Chat, roles map[string]any) string {
	var members []models.ChatMember
	err := c.call(ctx, "getChatAdministrators", func(ctx context.Context) (err error) {
		members, err = c.api.b.GetChatAdministrators(ctx, &bot.GetChatAdministratorsParams{ChatID: ch.ID})
		return err
	})
	if err != nil {
		c.log.Debug("could not read the chat's administrators", "chat", ch.ID, "error", err)
		return ""
	}
	owner := ""
	for _, m := range members {
		switch {
		case m.Owner != nil && m.Owner.User != nil:
			owner = sdk.CreateUniqueUUID(c.agent.ID, chatKey(m.Owner.User.ID))
		case m.Administrator != nil:
			roles[sdk.CreateUniqueUUID(c.agent.ID, chatKey(m.Administrator.User.ID))] = "ADMIN"
		}
	}
	return owner
}

// onMembers emits ENTITY_JOINED and ENTITY_LEFT for members joining and
// leaving a group.
func (c *connector) onMembers(ctx context.Context, m *models.Message) error {
	me := c.bot()
	for i := range m.NewChatMembers {
		u := &m.NewChatMembers[i]
		if u.ID == me.ID {
			continue
		}
		s := userSender(u)
		ent := sdk.Entity{ID: sdk.CreateUniqueUUID(c.agent.ID, chatKey(u.ID)), Names: names(s), AgentID: c.agent.ID,
			Metadata: map[string]any{Source: map[string]any{"id": chatKey(u.ID), "username": s.userName, "userName": s.userName, "name": s.displayName}}}
		if err := c.syncChat(ctx, &m.Chat, s, 0, ""); err != nil {
			return err
		}
		if err := c.retry(ctx, "storing a new member", func(ctx context.Context) error {
			return storage.For(c.agent).UpsertEntities(ctx, ent)
		}); err != nil {
			return err
		}
		c.emit(ctx, sdk.Event{Type: sdk.EventEntityJoined, Source: Source, Payload: map[string]any{
			"entityId": ent.ID, "entity": ent, "worldId": sdk.CreateUniqueUUID(c.agent.ID, chatKey(m.Chat.ID)),
			"roomId": sdk.CreateUniqueUUID(c.agent.ID, chatKey(m.Chat.ID)), "source": Source}})
	}
	if u := m.LeftChatMember; u != nil && u.ID != me.ID {
		c.emit(ctx, sdk.Event{Type: "ENTITY_LEFT", Source: Source, Payload: map[string]any{
			"entityId": sdk.CreateUniqueUUID(c.agent.ID, chatKey(u.ID)), "worldId": sdk.CreateUniqueUUID(c.agent.ID, chatKey(m.Chat.ID)),
			"source": Source}})
	}
	return nil
}

// emit sends an event to the agent's plugins; a failure is logged, not
// retried: events are notices.
func (c *connector) emit(ctx context.Context, ev sdk.Event) {
	if err := c.agent.EmitEvent(ctx, ev); err != nil {
		c.log.Warn("event not delivered", "type", ev.Type, "error", err)
	}
}

// onReaction stores a reaction as a memory that answers the reacted
// message and emits REACTION_RECEIVED, as elizaOS does.
func (c *connector) onReaction(ctx context.Context, r *models.MessageReactionUpdated) error {
	if !c.allowedChat(r.Chat) {
		return nil
	}
	var from sender
	switch {
	case r.User != nil:
		from = userSender(r.User)
	case r.ActorChat != nil:
		from = sender{id: r.ActorChat.ID, userName: r.ActorChat.Username, displayName: chatTitle(r.ActorChat)}
	default:
		return nil
	}
	emojis := func(rs []models.ReactionType) []string {
		var out []string
		for _, x := range rs {
			switch {
			case x.ReactionTypeEmoji != nil:
				out = append(out, x.ReactionTypeEmoji.Emoji)
			case x.ReactionTypeCustomEmoji != nil:
				out = append(out, "custom:"+x.ReactionTypeCustomEmoji.CustomEmojiID)
			}
		}
		return out
	}
	added, removed := emojis(r.NewReaction), emojis(r.OldReaction)
	if err := c.syncChat(ctx, &r.Chat, from, 0, ""); err != nil {
		return err
	}
	agentID := c.agent.ID
	chat := chatKey(r.Chat.ID)
	target := messageKey(r.Chat.ID, r.MessageID)
	text := strings.Join(added, " ")
	if text == "" {
		text = "(reaction removed)"
	}
	mem := sdk.Memory{
		ID:       sdk.CreateUniqueUUID(agentID, fmt.Sprintf("%s:reaction:%d:%d", target, from.id, r.Date)),
		EntityID: sdk.CreateUniqueUUID(agentID, chatKey(from.id)), AgentID: agentID,
		RoomID: sdk.CreateUniqueUUID(agentID, chat), WorldID: sdk.CreateUniqueUUID(agentID, chat),
		CreatedAt: int64(r.Date) * 1000,
		Content: sdk.Content{Text: text, Source: Source, InReplyTo: sdk.CreateUniqueUUID(agentID, target), ChannelType: channelType(&r.Chat),
			Extra: map[string]any{"reaction": map[string]any{"added": added, "removed": removed}, "telegram": map[string]any{"chatId": chat, "messageId": r.MessageID}}},
	}
	if err := c.retry(ctx, "storing a reaction", func(ctx context.Context) error {
		_, _, err := storage.For(c.agent).CreateMemory(ctx, &mem, sdk.TableMessages, false)
		return err
	}); err != nil {
		return err
	}
	c.emit(ctx, sdk.Event{Type: sdk.EventReactionReceived, Source: Source, Message: &mem})
	return nil
}

// onCallback hands an inline button's press to the agent as a message
// from the user who pressed it, saying the button's data.
func (c *connector) onCallback(ctx context.Context, q *models.CallbackQuery) error {
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err := c.api.b.AnswerCallbackQuery(actx, &bot.AnswerCallbackQueryParams{CallbackQueryID: q.ID})
	cancel()
	if err != nil {
		c.log.Debug("answerCallbackQuery failed", "error", c.api.scrub(err.Error()))
	}
	msg := q.Message.Message
	if msg == nil || q.Data == "" {
		return nil
	}
	if !c.allowedChat(msg.Chat) {
		return nil
	}
	from := userSender(&q.From)
	thread, topic := c.topicOf(msg)
	if err := c.syncChat(ctx, &msg.Chat, from, thread, topic); err != nil {
		return err
	}
	chat := chatKey(msg.Chat.ID)
	in := sdk.IncomingMessage{Source: Source, MessageID: "callback:" + q.ID, ChannelID: chat, ServerID: chat,
		UserID: chatKey(from.id), UserName: from.userName, DisplayName: from.displayName,
		InReplyTo: messageKey(msg.Chat.ID, msg.ID), ChannelType: channelType(&msg.Chat), RoomName: chatTitle(&msg.Chat),
		WorldName: chatTitle(&msg.Chat), CreatedAt: time.Now().UnixMilli(),
		Content: sdk.Content{Text: q.Data, Source: Source, ChannelType: channelType(&msg.Chat),
			Extra: map[string]any{"telegram": map[string]any{"chatId": chat, "messageId": msg.ID, "callback": true}}}}
	if msg.Chat.Type == models.ChatTypePrivate {
		in.RoomName = from.displayName
	}
	if thread != 0 {
		in.ThreadID = topicKey(msg.Chat.ID, thread)
		in.RoomName = topic
	}
	c.replyKeys.put(sdk.CreateUniqueUUID(c.agent.ID, in.MessageID), messageKey(msg.Chat.ID, msg.ID))
	room := chat
	if in.ThreadID != "" {
		room = in.ThreadID
	}
	c.typing.start(msg.Chat.ID, thread, sdk.CreateUniqueUUID(c.agent.ID, room))
	return c.retry(ctx, "handing a button press to the agent", func(ctx context.Context) error {
		_, err := c.agent.ReceiveMessage(ctx, in)
		return err
	})
}

// answerCommand answers /start and /help itself, once per command message
// however often Telegram delivers it.
func (c *connector) answerCommand(ctx context.Context, m *models.Message, cmd string) error {
	text := c.cfg.startMessage
	name := c.agent.Name()
	if cmd == "help" {
		text = c.cfg.helpMessage
	}
	if text == "" {
		bio := ""
		if ch := c.agent.Character; ch != nil && len(ch.Bio) > 0 {
			bio = " " + firstSentence(ch.Bio[0])
		}
		me := c.bot()
		switch cmd {
		case "start":
			text = fmt.Sprintf("Hi, I'm %s.%s\nWrite to me and I will answer. /help says more.", name, bio)
		default:
			text = fmt.Sprintf("I'm %s, an AI agent.%s\n\nWrite to me here and I will answer. In a group, mention me as @%s or reply to one of my messages.\n\n/start — say hello\n/help — this message",
				name, bio, me.Username)
		}
	}
	thread, _ := c.topicOf(m)
	target := sdk.Target{Source: Source, ChannelID: chatKey(m.Chat.ID)}
	if thread != 0 {
		target.ThreadID = topicKey(m.Chat.ID, thread)
	}
	key := "command:" + messageKey(m.Chat.ID, m.ID)
	return c.retry(ctx, "answering /"+cmd, func(ctx context.Context) error {
		_, err := c.deliver(ctx, key, target, sdk.Content{Text: text}, m.ID)
		return err
	})
}

func firstSentence(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, ".!?"); i >= 0 && i < 200 {
		return s[:i+1]
	}
	return clip(s, 200)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "…"
}
