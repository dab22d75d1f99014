package telegram

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"
)

// send is the telegram source: it delivers a reply or a message to a chat
// (target.ChannelID) and, in a forum, a topic (target.ThreadID).
func (t *telegram) send(ctx context.Context, a *sdk.Agent, target sdk.Target, content sdk.Content) ([]string, error) {
	c := t.connOf(a)
	if c == nil {
		return nil, fmt.Errorf("agent %s is not on Telegram (it has no TELEGRAM_BOT_TOKEN): %w", a.Name(), sdk.ErrInvalid)
	}
	if err := c.deadErr(); err != nil {
		return nil, err
	}
	replyTo := c.replyTarget(ctx, target.ChannelID, content.InReplyTo)
	return c.deliver(ctx, sdk.DeliveryID(ctx), target, content, replyTo)
}

func (c *connector) deadErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dead
}

// replyTarget finds the Telegram message a reply answers: from memory of
// the messages handed to the agent, else from the stored message itself.
func (c *connector) replyTarget(ctx context.Context, chat, inReplyTo string) int {
	if inReplyTo == "" {
		return 0
	}
	key, ok := c.replyKeys.get(inReplyTo)
	if !ok {
		mems, err := storage.For(c.agent).GetMemoriesByIDs(ctx, []string{inReplyTo}, sdk.TableMessages)
		if err != nil || len(mems) == 0 {
			return 0
		}
		tg, _ := mems[0].Content.Extra["telegram"].(map[string]any)
		id, _ := tg["messageId"].(float64)
		cid, _ := tg["chatId"].(string)
		if id == 0 {
			return 0
		}
		key = cid + ":" + strconv.Itoa(int(id))
	}
	cid, mid, _ := strings.Cut(key, ":")
	if cid != chat {
		return 0
	}
	n, _ := strconv.Atoi(mid)
	return n
}

// part is one message of a delivery: a chunk of text or a media item.
type part struct {
	text  *Chunk
	media *sdk.Media
}

// parts cuts content into the messages that carry it: the text in chunks
// of at most 4096 characters, then each attachment.
func parts(content sdk.Content) []part {
	var out []part
	if strings.TrimSpace(content.Text) != "" {
		for _, ch := range SplitMarkdown(content.Text, MaxMessageLength) {
			if !ch.Blank() {
				ch := ch
				out = append(out, part{text: &ch})
			}
		}
	}
	for i := range content.Attachments {
		out = append(out, part{media: &content.Attachments[i]})
	}
	return out
}

// delivery is what is known of a delivery in progress, kept in the
// agent's cache under its delivery id: the parts sent, and whether the
// next one was being sent when the plugin stopped.
type delivery struct {
	Next     int      `json:"next"`
	InFlight bool     `json:"inFlight"`
	IDs      []string `json:"ids"`
}

const deliveryTTL = 24 * time.Hour

func deliveryKey(id string) string { return "telegram/delivery/" + id }

// deliver sends content to a chat. With a delivery key it sends each part
// once even across a crash of the plugin: the host sends a delivery again
// when the plugin died with it in hand, and the parts recorded as sent are
// skipped. A part that was on its way when the plugin died may have
// reached Telegram; it is not sent again, so the user never sees it twice.
func (c *connector) deliver(ctx context.Context, key string, target sdk.Target, content sdk.Content, replyTo int) ([]string, error) {
	chat, err := parseChat(target.ChannelID)
	if err != nil {
		return nil, err
	}
	thread := parseThread(target.ThreadID)
	ps := parts(content)
	if edit, ok := content.Extra["edit"].(string); ok && edit != "" {
		return c.edit(ctx, chat, edit, content)
	}
	if chatID, ok := chat.(int64); ok {
		c.typing.stop(chatID, thread)
	}
	if len(ps) == 0 {
		return nil, nil
	}
	markup := keyboard(content)
	var st delivery
	if key != "" {
		raw, found, err := storage.For(c.agent).GetCache(ctx, deliveryKey(key))
		if err != nil {
			return nil, fmt.Errorf("read the delivery record: %w", err)
		}
		if found {
			_ = json.Unmarshal(raw, &st)
			c.log.Info("delivery sent again by the host; resuming it", "delivery", key, "sent", st.Next, "of", len(ps))
		}
	}
	save := func() error {
		if key == "" {
			return nil
		}
		b, _ := json.Marshal(st)
		return storage.For(c.agent).SetCache(ctx, deliveryKey(key), b, deliveryTTL)
	}
	for i := st.Next; i < len(ps); i++ {
		if st.InFlight && st.Next == i {
			c.log.Warn("a reply part was being sent when the plugin stopped; it may have arrived, so it is not sent twice",
				"delivery", key, "part", i)
			st.Next, st.InFlight = i+1, false
			if err := save(); err != nil {
				return st.IDs, err
			}
			continue
		}
		st.Next, st.InFlight = i, true
		if err := save(); err != nil {
			return st.IDs, fmt.Errorf("record the delivery: %w", err)
		}
		rt := 0
		if i == 0 {
			rt = replyTo
		}
		var mk any
		if i == len(ps)-1 {
			mk = markup
		}
		id, err := c.sendPart(ctx, chat, thread, ps[i], rt, mk)
		if err != nil {
			st.InFlight = false
			if serr := save(); serr != nil {
				c.log.Warn("could not record a failed delivery", "error", serr)
			}
			return st.IDs, err
		}
		st.IDs = append(st.IDs, id)
		st.Next, st.InFlight = i+1, false
		if err := save(); err != nil {
			c.log.Warn("could not record a sent part", "delivery", key, "error", err)
		}
	}
	return st.IDs, nil
}

// parseChat reads a target's chat: a numeric id or a public @username.
func parseChat(s string) (any, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("telegram: the target has no channelId (the chat id): %w", sdk.ErrInvalid)
	}
	if strings.HasPrefix(s, "@") {
		return s, nil
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("telegram: channelId %q is neither a chat id nor an @username: %w", s, sdk.ErrInvalid)
	}
	return id, nil
}

// parseThread reads a target's topic: "chat-thread" (the room key) or a
// bare thread id.
func parseThread(s string) int {
	if s == "" {
		return 0
	}
	if i := strings.LastIndexByte(s, '-'); i > 0 {
		s = s[i+1:]
	}
	n, _ := strconv.Atoi(s)
	return n
}

func platformID(chat any, msg int) string {
	switch c := chat.(type) {
	case int64:
		return messageKey(c, msg)
	}
	return fmt.Sprint(chat) + ":" + strconv.Itoa(msg)
}

// sendPart sends one part, following a group that became a supergroup.
func (c *connector) sendPart(ctx context.Context, chat any, thread int, p part, replyTo int, markup any) (string, error) {
	for tries := 0; ; tries++ {
		msg, err := c.sendPartOnce(ctx, chat, thread, p, replyTo, markup)
		var mig *bot.MigrateError
		if errors.As(err, &mig) && mig.MigrateToChatID != 0 && tries == 0 {
			c.log.Info("the group became a supergroup; sending there", "from", chat, "to", mig.MigrateToChatID)
			chat = int64(mig.MigrateToChatID)
			continue
		}
		if err != nil {
			return "", err
		}
		return platformID(chat, msg.ID), nil
	}
}

func replyParams(replyTo int) *models.ReplyParameters {
	if replyTo == 0 {
		return nil
	}
	return &models.ReplyParameters{MessageID: replyTo, AllowSendingWithoutReply: true}
}

// entitiesRefused reports Telegram refusing a message's markup.
func entitiesRefused(err error) bool {
	return errors.Is(err, bot.ErrorBadRequest) && strings.Contains(strings.ToLower(err.Error()), "parse entities")
}

func (c *connector) sendPartOnce(ctx context.Context, chat any, thread int, p part, replyTo int, markup any) (*models.Message, error) {
	if p.text != nil {
		params := &bot.SendMessageParams{ChatID: chat, MessageThreadID: thread, Text: p.text.V2, ParseMode: models.ParseModeMarkdown,
			ReplyParameters: replyParams(replyTo), ReplyMarkup: markup}
		var msg *models.Message
		err := c.call(ctx, "sendMessage", func(ctx context.Context) (err error) {
			msg, err = c.api.b.SendMessage(ctx, params)
			return err
		})
		if err != nil && entitiesRefused(err) {
			// Should the markup ever be refused, the words still go out.
			c.log.Warn("telegram refused the MarkdownV2 of a reply; sending it as plain text", "error", err)
			params.Text, params.ParseMode = p.text.Plain, ""
			err = c.call(ctx, "sendMessage", func(ctx context.Context) (err error) {
				msg, err = c.api.b.SendMessage(ctx, params)
				return err
			})
		}
		return msg, err
	}
	return c.sendMedia(ctx, chat, thread, p.media, replyTo, markup)
}

// mediaKind picks the Bot API method for an attachment.
func mediaKind(m *sdk.Media, ref string) string {
	ct := strings.ToLower(m.ContentType)
	ext := strings.ToLower(path.Ext(strings.SplitN(ref, "?", 2)[0]))
	switch {
	case ct == "image/gif" || ext == ".gif":
		return "animation"
	case ct == "image" || strings.HasPrefix(ct, "image/"):
		return "photo"
	case ct == "video" || strings.HasPrefix(ct, "video/"):
		return "video"
	case ct == "audio" || strings.HasPrefix(ct, "audio/"):
		return "audio"
	}
	switch ext {
	case ".jpg", ".jpeg", ".png", ".webp":
		return "photo"
	case ".mp4", ".mov", ".webm":
		return "video"
	case ".mp3", ".ogg", ".m4a", ".wav", ".flac":
		return "audio"
	}
	return "document"
}

// mediaFile turns an attachment into what the Bot API takes: a URL it
// fetches, a file id of Telegram's, or bytes from a data: URL. Local paths
// are not read: a reply's attachments must not be a way to send files off
// the machine.
func mediaFile(m *sdk.Media) (func() models.InputFile, string, error) {
	u := strings.TrimSpace(m.URL)
	switch {
	case strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://"):
		return func() models.InputFile { return &models.InputFileString{Data: u} }, u, nil
	case strings.HasPrefix(u, "data:"):
		meta, data, ok := strings.Cut(u[len("data:"):], ",")
		if !ok {
			return nil, "", fmt.Errorf("attachment %q: a data: URL without data", m.Title)
		}
		var b []byte
		if strings.HasSuffix(meta, ";base64") {
			var err error
			if b, err = base64.StdEncoding.DecodeString(data); err != nil {
				return nil, "", fmt.Errorf("attachment %q: bad base64: %v", m.Title, err)
			}
		} else {
			s, err := url.PathUnescape(data)
			if err != nil {
				return nil, "", fmt.Errorf("attachment %q: %v", m.Title, err)
			}
			b = []byte(s)
		}
		name := m.Title
		if name == "" || !strings.Contains(name, ".") {
			name = "file" + extFor(strings.TrimSuffix(meta, ";base64"))
		}
		if m.ContentType == "" {
			m.ContentType = strings.TrimSuffix(meta, ";base64")
		}
		return func() models.InputFile { return &models.InputFileUpload{Filename: name, Data: bytes.NewReader(b)} }, name, nil
	case u == "" && m.ID != "":
		return func() models.InputFile { return &models.InputFileString{Data: m.ID} }, m.Title, nil
	}
	return nil, "", fmt.Errorf("attachment %q: only http(s) URLs, data: URLs and Telegram file ids can be sent", m.Title)
}

func extFor(mime string) string {
	switch mime {
	case "image/png":
		return ".png"
	case "image/jpeg":
		return ".jpg"
	case "image/gif":
		return ".gif"
	case "audio/mpeg":
		return ".mp3"
	case "video/mp4":
		return ".mp4"
	case "application/pdf":
		return ".pdf"
	}
	return ".bin"
}

// caption renders an attachment's description, if it fits a caption.
func caption(m *sdk.Media) (string, models.ParseMode) {
	text := strings.TrimSpace(m.Description)
	if text == "" || strings.Contains(text, "/") && !strings.Contains(text, " ") {
		return "", ""
	}
	chunks := SplitMarkdown(text, MaxCaptionLength)
	if len(chunks) == 1 {
		return chunks[0].V2, models.ParseModeMarkdown
	}
	return SplitText(text, MaxCaptionLength-1)[0] + "…", ""
}

func (c *connector) sendMedia(ctx context.Context, chat any, thread int, m *sdk.Media, replyTo int, markup any) (*models.Message, error) {
	file, ref, err := mediaFile(m)
	if err != nil {
		return nil, &permanentError{err, sdk.ErrInvalid}
	}
	capText, mode := caption(m)
	rp := replyParams(replyTo)
	kind := mediaKind(m, ref)
	var msg *models.Message
	err = c.call(ctx, "send "+kind, func(ctx context.Context) (err error) {
		switch kind {
		case "photo":
			msg, err = c.api.b.SendPhoto(ctx, &bot.SendPhotoParams{ChatID: chat, MessageThreadID: thread, Photo: file(), Caption: capText, ParseMode: mode, ReplyParameters: rp, ReplyMarkup: markup})
		case "animation":
			msg, err = c.api.b.SendAnimation(ctx, &bot.SendAnimationParams{ChatID: chat, MessageThreadID: thread, Animation: file(), Caption: capText, ParseMode: mode, ReplyParameters: rp, ReplyMarkup: markup})
		case "video":
			msg, err = c.api.b.SendVideo(ctx, &bot.SendVideoParams{ChatID: chat, MessageThreadID: thread, Video: file(), Caption: capText, ParseMode: mode, ReplyParameters: rp, ReplyMarkup: markup})
		case "audio":
			msg, err = c.api.b.SendAudio(ctx, &bot.SendAudioParams{ChatID: chat, MessageThreadID: thread, Audio: file(), Caption: capText, ParseMode: mode, ReplyParameters: rp, ReplyMarkup: markup})
		default:
			msg, err = c.api.b.SendDocument(ctx, &bot.SendDocumentParams{ChatID: chat, MessageThreadID: thread, Document: file(), Caption: capText, ParseMode: mode, ReplyParameters: rp, ReplyMarkup: markup})
		}
		return err
	})
	return msg, err
}

// edit replaces the text of a message the agent sent before; target names
// it as Send returned it ("chat:message").
func (c *connector) edit(ctx context.Context, chat any, target string, content sdk.Content) ([]string, error) {
	_, mid, ok := strings.Cut(target, ":")
	n, err := strconv.Atoi(mid)
	if !ok || err != nil {
		return nil, fmt.Errorf("telegram: edit %q is not a message id as Send returns them (chat:message): %w", target, sdk.ErrInvalid)
	}
	chunks := SplitMarkdown(content.Text, MaxMessageLength)
	if len(chunks) == 0 || chunks[0].Blank() {
		return nil, fmt.Errorf("telegram: an edit needs text: %w", sdk.ErrInvalid)
	}
	params := &bot.EditMessageTextParams{ChatID: chat, MessageID: n, Text: chunks[0].V2, ParseMode: models.ParseModeMarkdown, ReplyMarkup: keyboard(content)}
	err = c.call(ctx, "editMessageText", func(ctx context.Context) error {
		_, err := c.api.b.EditMessageText(ctx, params)
		return err
	})
	if err != nil && entitiesRefused(err) {
		params.Text, params.ParseMode = chunks[0].Plain, ""
		err = c.call(ctx, "editMessageText", func(ctx context.Context) error {
			_, err := c.api.b.EditMessageText(ctx, params)
			return err
		})
	}
	if err != nil {
		return nil, err
	}
	return []string{platformID(chat, n)}, nil
}

// inlineKeyboard is Telegram's inline keyboard, with only the fields that
// are set (the library's button type always sends an empty copy_text).
type inlineKeyboard struct {
	InlineKeyboard [][]inlineButton `json:"inline_keyboard"`
}

type inlineButton struct {
	Text         string           `json:"text"`
	URL          string           `json:"url,omitempty"`
	CallbackData string           `json:"callback_data,omitempty"`
	LoginURL     *models.LoginURL `json:"login_url,omitempty"`
}

// keyboard builds an inline keyboard from content.buttons, as elizaOS
// does: each button {text, url} (kind "url", the default), {kind:
// "login", text, url}, or {kind: "callback", text, data}, one per row.
// A pressed callback button comes back to the agent as a message.
func keyboard(content sdk.Content) any {
	raw, ok := content.Extra["buttons"].([]any)
	if !ok || len(raw) == 0 {
		return nil
	}
	var kb inlineKeyboard
	for _, x := range raw {
		m, ok := x.(map[string]any)
		if !ok {
			continue
		}
		str := func(k string) string { s, _ := m[k].(string); return strings.TrimSpace(s) }
		b := inlineButton{Text: str("text")}
		if b.Text == "" {
			continue
		}
		switch strings.ToLower(str("kind")) {
		case "login":
			if str("url") == "" {
				continue
			}
			b.LoginURL = &models.LoginURL{URL: str("url")}
		case "callback", "data":
			d := str("data")
			if d == "" {
				d = b.Text
			}
			if len(d) > 64 {
				d = d[:64]
			}
			b.CallbackData = d
		default:
			if str("url") == "" {
				continue
			}
			b.URL = str("url")
		}
		kb.InlineKeyboard = append(kb.InlineKeyboard, []inlineButton{b})
	}
	if len(kb.InlineKeyboard) == 0 {
		return nil
	}
	return kb
}

// typingSet keeps "typing…" shown in the chats where the agent is
// thinking: Telegram shows a chat action for five seconds, so it is sent
// again every four until the reply goes out, the run ends, or a minute and
// a half passes.
type typingSet struct {
	c     *connector
	mu    sync.Mutex
	loops map[string]*typingLoop
}

type typingLoop struct {
	room  string
	until time.Time
	stop  chan struct{}
}

const (
	typingEvery = 4 * time.Second
	typingMax   = 90 * time.Second
)

func newTypingSet(c *connector) *typingSet { return &typingSet{c: c, loops: map[string]*typingLoop{}} }

func typingKeyOf(chat int64, thread int) string { return topicKey(chat, thread) }

func (s *typingSet) start(chat int64, thread int, room string) {
	key := typingKeyOf(chat, thread)
	s.mu.Lock()
	if l := s.loops[key]; l != nil {
		l.until = time.Now().Add(typingMax)
		s.mu.Unlock()
		return
	}
	l := &typingLoop{room: room, until: time.Now().Add(typingMax), stop: make(chan struct{})}
	s.loops[key] = l
	s.mu.Unlock()
	go s.loop(key, l, chat, thread)
}

func (s *typingSet) loop(key string, l *typingLoop, chat int64, thread int) {
	defer func() {
		s.mu.Lock()
		if s.loops[key] == l {
			delete(s.loops, key)
		}
		s.mu.Unlock()
	}()
	t := time.NewTicker(typingEvery)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(s.c.ctx, typingEvery)
		_, err := s.c.api.b.SendChatAction(ctx, &bot.SendChatActionParams{ChatID: chat, MessageThreadID: thread, Action: models.ChatActionTyping})
		cancel()
		if err != nil {
			s.c.log.Debug("typing action failed", "chat", chat, "error", s.c.api.scrub(err.Error()))
		}
		select {
		case <-l.stop:
			return
		case <-s.c.ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		over := time.Now().After(l.until)
		s.mu.Unlock()
		if over {
			return
		}
	}
}

func (s *typingSet) stop(chat int64, thread int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := typingKeyOf(chat, thread)
	if l := s.loops[key]; l != nil {
		close(l.stop)
		delete(s.loops, key)
	}
}

func (s *typingSet) stopRoom(room string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, l := range s.loops {
		if l.room == room {
			close(l.stop)
			delete(s.loops, key)
		}
	}
}

func (s *typingSet) stopAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, l := range s.loops {
		close(l.stop)
		delete(s.loops, key)
	}
}
