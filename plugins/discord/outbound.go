package discord

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
	"github.com/bwmarrin/discordgo"
)

// maxFileSize is the largest attachment the plugin uploads.
const maxFileSize = 25 << 20

// replyInfo is where the answer to a message goes: a Discord reply to the
// message, or the response to a slash command.
type replyInfo struct {
	ChannelID   string          `json:"channelId"`
	GuildID     string          `json:"guildId,omitempty"`
	MessageID   string          `json:"messageId,omitempty"`
	Interaction *interactionRef `json:"interaction,omitempty"`
	Expires     time.Time       `json:"expires"`
}

type interactionRef struct {
	ID    string `json:"id"`
	AppID string `json:"appId"`
	Token string `json:"token"`
	// Answered is set once a reply took the place of "thinking…";
	// further replies are followups.
	Answered bool `json:"answered"`
	// Queued counts replies not yet delivered.
	Queued int `json:"queued"`
}

func (r *interactionRef) discord() *discordgo.Interaction {
	return &discordgo.Interaction{ID: r.ID, AppID: r.AppID, Token: r.Token}
}

// outboxEntry is one reply on its way. It is written to disk before the
// first part is sent and after each part, so that a reply the plugin
// accepted reaches Discord even if the process dies halfway: the next
// process sends the parts still missing. Each part carries a nonce that
// Discord enforces, so a part sent just before a crash is not sent twice.
type outboxEntry struct {
	ID          string                      `json:"id"`
	Nonce       string                      `json:"nonce"`
	ChannelID   string                      `json:"channelId,omitempty"`
	Interaction *interactionRef             `json:"interaction,omitempty"`
	EditOrig    bool                        `json:"editOriginal,omitempty"`
	InReplyTo   string                      `json:"inReplyTo,omitempty"`
	Reference   *discordgo.MessageReference `json:"reference,omitempty"`
	Parts       []string                    `json:"parts"`
	Files       []sdk.Media                 `json:"files,omitempty"`
	Sent        int                         `json:"sent"`
	MessageIDs  []string                    `json:"messageIds"`
	Created     time.Time                   `json:"created"`
	Attempts    int                         `json:"attempts"`
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newEntryID sorts by creation time.
func newEntryID() string { return fmt.Sprintf("%016x-%s", time.Now().UnixNano(), randomHex(4)) }

// messagePayload is a message create request; discordgo's MessageSend has
// no nonce.
type messagePayload struct {
	Content         string                            `json:"content,omitempty"`
	Nonce           string                            `json:"nonce,omitempty"`
	EnforceNonce    bool                              `json:"enforce_nonce,omitempty"`
	Reference       *discordgo.MessageReference       `json:"message_reference,omitempty"`
	AllowedMentions *discordgo.MessageAllowedMentions `json:"allowed_mentions,omitempty"`
}

// allowedMentions lets replies ping the users they name and the person
// answered, never @everyone or a role: a model's text must not page a
// whole server.
func allowedMentions() *discordgo.MessageAllowedMentions {
	return &discordgo.MessageAllowedMentions{Parse: []discordgo.AllowedMentionType{discordgo.AllowedMentionTypeUsers}, RepliedUser: true}
}

// send delivers content: split into messages Discord accepts, the first
// as a Discord reply to the message answered (or as the answer to a slash
// command), files with the last.
func (b *bot) send(ctx context.Context, t sdk.Target, c sdk.Content) ([]string, error) {
	parts := SplitMessage(c.Text, MaxMessageLength)
	files := usableMedia(c.Attachments)
	if len(parts) == 0 && len(files) == 0 {
		return nil, fmt.Errorf("discord: nothing to send: the content has no text and no attachments: %w", sdk.ErrInvalid)
	}
	if len(parts) == 0 {
		parts = []string{""}
	}
	e := &outboxEntry{ID: newEntryID(), Nonce: randomHex(10), InReplyTo: c.InReplyTo, Parts: parts, Files: files, Created: time.Now()}
	b.mu.Lock()
	ri := b.replies[c.InReplyTo]
	if ri != nil && time.Now().After(ri.Expires) {
		ri = nil
	}
	var interactionMem string
	if ri != nil && ri.Interaction != nil && (t.ChannelID == "" || t.ChannelID == ri.ChannelID || t.ThreadID == ri.ChannelID) {
		ic := *ri.Interaction
		e.Interaction, e.ChannelID, e.EditOrig = &ic, ri.ChannelID, !ri.Interaction.Answered
		ri.Interaction.Answered = true
		ri.Interaction.Queued++
		interactionMem = c.InReplyTo
	}
	var ref *replyInfo
	if ri != nil && ri.MessageID != "" {
		cp := *ri
		ref = &cp
	}
	b.mu.Unlock()
	if interactionMem != "" {
		b.mu.Lock()
		cur := b.replies[interactionMem]
		b.mu.Unlock()
		if cur != nil {
			b.saveInteraction(interactionMem, cur)
		}
	} else {
		ch, err := b.resolveChannel(ctx, t)
		if err != nil {
			return nil, err
		}
		e.ChannelID = ch
		switch {
		case ref != nil && ref.ChannelID == ch:
			e.Reference = &discordgo.MessageReference{MessageID: ref.MessageID, ChannelID: ref.ChannelID, GuildID: ref.GuildID, FailIfNotExists: new(bool)}
		case c.InReplyTo != "":
			e.Reference = b.referenceFromMemory(ctx, c.InReplyTo, ch)
		}
	}
	b.stopTyping(c.InReplyTo)
	b.claim(e.ID)
	durable := b.outbox.dir != ""
	if err := b.outbox.put(e.ID, e); err != nil {
		durable = false
		b.log.Warn("could not keep a reply on disk before sending it; a crash now would lose it", "error", err)
	}
	// The delivery runs on the bot's context: a long rate-limit wait
	// outlasts the host's call without losing the reply.
	type result struct {
		ids []string
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer b.release(e.ID)
		ids, err := b.deliver(e)
		done <- result{ids, err}
	}()
	wait := ctx.Done()
	if dl, ok := ctx.Deadline(); ok {
		timer := time.NewTimer(max(time.Until(dl)-2*time.Second, time.Until(dl)/2))
		defer timer.Stop()
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-timer.C:
				cancel()
			case <-wctx.Done():
			}
		}()
		wait = wctx.Done()
	}
	select {
	case r := <-done:
		if r.err != nil && errors.Is(r.err, errQueued) && !durable {
			return r.ids, fmt.Errorf("discord: %w", r.err)
		}
		if r.err != nil && errors.Is(r.err, errQueued) {
			b.log.Warn("reply not delivered yet; it is kept and sent when Discord accepts it", "channel", e.ChannelID, "error", r.err)
			return r.ids, nil
		}
		return r.ids, r.err
	case <-wait:
		if !durable {
			return nil, fmt.Errorf("discord: the reply is still being sent (a rate limit?) and could not be kept on disk: %w", ctx.Err())
		}
		b.log.Info("reply still being sent (waiting out a rate limit?); it is kept until Discord accepts it", "channel", e.ChannelID)
		return nil, nil
	}
}

// errQueued marks a delivery that failed for now and stays in the outbox.
var errQueued = errors.New("kept for another try")

func (b *bot) claim(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.inFlight[id] {
		return false
	}
	b.inFlight[id] = true
	return true
}

func (b *bot) release(id string) {
	b.mu.Lock()
	delete(b.inFlight, id)
	b.mu.Unlock()
}

func (b *bot) channelLock(id string) *sync.Mutex {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.chanLocks[id]
	if l == nil {
		l = &sync.Mutex{}
		b.chanLocks[id] = l
	}
	return l
}

// deliver sends the parts of an entry not sent yet, in order. A refusal
// (a 4xx: no permission, unknown channel) drops the entry; a failure that
// may pass (a 5xx, the network) keeps it for retryLoop.
func (b *bot) deliver(e *outboxEntry) ([]string, error) {
	lock := b.channelLock(e.ChannelID)
	lock.Lock()
	defer lock.Unlock()
	ctx := b.ctx
	for e.Sent < len(e.Parts) {
		content := e.Parts[e.Sent]
		var files []*discordgo.File
		if e.Sent == len(e.Parts)-1 && len(e.Files) > 0 {
			var links []string
			files, links = b.fetchFiles(ctx, e.Files)
			for _, l := range links {
				if len16(content)+1+len16(l) <= MaxMessageLength {
					content = strings.TrimSpace(content + "\n" + l)
				}
			}
		}
		if strings.TrimSpace(content) == "" && len(files) == 0 {
			e.Sent++
			continue
		}
		id, err := b.post(ctx, e, e.Sent, content, files)
		if err != nil {
			e.Attempts++
			if permanent(err) {
				_ = b.outbox.remove(e.ID)
				b.settleInteraction(e)
				return e.MessageIDs, fmt.Errorf("discord refused the message for channel %s: %w", e.ChannelID, err)
			}
			if perr := b.outbox.put(e.ID, e); perr != nil {
				b.log.Warn("could not update a reply on disk", "error", perr)
			}
			return e.MessageIDs, fmt.Errorf("%w: %w", errQueued, err)
		}
		e.MessageIDs = append(e.MessageIDs, id)
		e.Sent++
		if e.Sent < len(e.Parts) {
			if perr := b.outbox.put(e.ID, e); perr != nil {
				b.log.Warn("could not update a reply on disk", "error", perr)
			}
		}
	}
	_ = b.outbox.remove(e.ID)
	b.settleInteraction(e)
	return e.MessageIDs, nil
}

// settleInteraction notes that a reply to a slash command is done with.
func (b *bot) settleInteraction(e *outboxEntry) {
	if e.Interaction == nil || e.InReplyTo == "" {
		return
	}
	b.mu.Lock()
	ri := b.replies[e.InReplyTo]
	if ri != nil && ri.Interaction != nil && ri.Interaction.Queued > 0 {
		ri.Interaction.Queued--
	}
	b.mu.Unlock()
	if ri != nil && ri.Interaction != nil {
		b.saveInteraction(e.InReplyTo, ri)
	}
}

// permanent says whether Discord refused a request for good.
func permanent(err error) bool {
	var re *discordgo.RESTError
	if errors.As(err, &re) && re.Response != nil {
		c := re.Response.StatusCode
		return c >= 400 && c < 500 && c != http.StatusTooManyRequests && c != http.StatusRequestTimeout
	}
	return errors.Is(err, sdk.ErrInvalid)
}

// post sends one part and returns the message's id.
func (b *bot) post(ctx context.Context, e *outboxEntry, i int, content string, files []*discordgo.File) (string, error) {
	s := b.session()
	opt := discordgo.WithContext(ctx)
	if e.Interaction != nil {
		in := e.Interaction.discord()
		var m *discordgo.Message
		var err error
		if i == 0 && e.EditOrig {
			m, err = s.InteractionResponseEdit(in, &discordgo.WebhookEdit{Content: &content, Files: files, AllowedMentions: allowedMentions()}, opt)
		} else {
			m, err = s.FollowupMessageCreate(in, true, &discordgo.WebhookParams{Content: content, Files: files, AllowedMentions: allowedMentions()}, opt)
		}
		if err != nil {
			return "", err
		}
		return m.ID, nil
	}
	p := messagePayload{Content: content, Nonce: e.Nonce + strconv.Itoa(i), EnforceNonce: true, AllowedMentions: allowedMentions()}
	if i == 0 {
		p.Reference = e.Reference
	}
	endpoint := discordgo.EndpointChannelMessages(e.ChannelID)
	var raw []byte
	var err error
	if len(files) > 0 {
		ct, body, merr := discordgo.MultipartBodyWithJSON(p, files)
		if merr != nil {
			return "", fmt.Errorf("%w: %v", sdk.ErrInvalid, merr)
		}
		raw, err = s.RequestRaw(http.MethodPost, endpoint, ct, body, endpoint, 0, opt)
	} else {
		raw, err = s.RequestWithBucketID(http.MethodPost, endpoint, p, endpoint, opt)
	}
	if err != nil {
		return "", err
	}
	var m discordgo.Message
	if err := json.Unmarshal(raw, &m); err != nil {
		return "", fmt.Errorf("discord answered a sent message with %q: %w", clip(string(raw), 80), err)
	}
	return m.ID, nil
}

// resolveChannel finds the Discord channel of a target: its thread or
// channel, else its room's channel, else a DM with its entity.
func (b *bot) resolveChannel(ctx context.Context, t sdk.Target) (string, error) {
	ch := t.ThreadID
	if ch == "" {
		ch = t.ChannelID
	}
	if ch == "" && t.RoomID != "" {
		if r, err := storage.For(b.a).GetRoom(ctx, t.RoomID); err == nil && r.ChannelID != "" {
			ch = r.ChannelID
		}
	}
	if ch == "" && t.EntityID != "" {
		user, err := b.discordUserOf(ctx, t.EntityID)
		if err != nil {
			return "", err
		}
		dm, err := b.session().UserChannelCreate(user, discordgo.WithContext(ctx))
		if err != nil {
			return "", fmt.Errorf("discord: open a DM with user %s: %w", user, err)
		}
		return dm.ID, nil
	}
	if ch == "" {
		return "", fmt.Errorf("discord: the target names no channel, room or user: %w", sdk.ErrInvalid)
	}
	if c, err := b.channel(ch); err == nil && c.GuildID != "" {
		parent := ""
		if channelKind(c, c.GuildID) == sdk.ChannelThread {
			parent = c.ParentID
		}
		if !b.cfg.allowedChannel(c.ID, parent) {
			return "", fmt.Errorf("discord: channel %s is not in the allow-list (%s): %w", ch, SettingChannelIDs, sdk.ErrInvalid)
		}
	}
	return ch, nil
}

// discordUserOf reads an entity's Discord user id from its metadata.
func (b *bot) discordUserOf(ctx context.Context, entityID string) (string, error) {
	es, err := storage.For(b.a).GetEntities(ctx, entityID)
	if err != nil {
		return "", err
	}
	if len(es) > 0 {
		if m, ok := es[0].Metadata[Source].(map[string]any); ok {
			if id, ok := m["id"].(string); ok && id != "" {
				return id, nil
			}
		}
	}
	return "", fmt.Errorf("discord: entity %s is not a Discord user: %w", entityID, sdk.ErrInvalid)
}

// referenceFromMemory finds the Discord message a memory came from, by
// the link stored with it, for a reply after a restart.
func (b *bot) referenceFromMemory(ctx context.Context, memID, channelID string) *discordgo.MessageReference {
	ms, err := storage.For(b.a).GetMemoriesByIDs(ctx, []string{memID}, sdk.TableMessages)
	if err != nil || len(ms) == 0 {
		return nil
	}
	rest, ok := strings.CutPrefix(ms[0].Content.URL, "https://discord.com/channels/")
	if !ok {
		return nil
	}
	f := strings.Split(rest, "/")
	if len(f) != 3 || f[1] != channelID {
		return nil
	}
	ref := &discordgo.MessageReference{MessageID: f[2], ChannelID: f[1], FailIfNotExists: new(bool)}
	if f[0] != "@me" {
		ref.GuildID = f[0]
	}
	return ref
}

// usableMedia keeps the attachments with something to upload.
func usableMedia(ms []sdk.Media) []sdk.Media {
	var out []sdk.Media
	for _, m := range ms {
		if strings.TrimSpace(m.URL) != "" {
			out = append(out, m)
		}
	}
	return out
}

// fetchFiles gets the attachments' bytes: from http(s) URLs, data: URLs
// or files in the host's data directory. One that cannot be fetched is
// sent as a link when it has one.
func (b *bot) fetchFiles(ctx context.Context, ms []sdk.Media) ([]*discordgo.File, []string) {
	var files []*discordgo.File
	var links []string
	for _, m := range ms {
		f, err := b.fetchFile(ctx, m)
		if err != nil {
			b.log.Warn("an attachment could not be fetched", "url", clip(m.URL, 100), "error", err)
			if strings.HasPrefix(m.URL, "http://") || strings.HasPrefix(m.URL, "https://") {
				links = append(links, m.URL)
			}
			continue
		}
		files = append(files, f)
	}
	return files, links
}

func (b *bot) fetchFile(ctx context.Context, m sdk.Media) (*discordgo.File, error) {
	name := m.Title
	var data []byte
	ctype := m.ContentType
	switch u := m.URL; {
	case strings.HasPrefix(u, "data:"):
		meta, payload, ok := strings.Cut(strings.TrimPrefix(u, "data:"), ",")
		if !ok {
			return nil, errors.New("malformed data: URL")
		}
		var err error
		if strings.HasSuffix(meta, ";base64") {
			meta = strings.TrimSuffix(meta, ";base64")
			data, err = base64.StdEncoding.DecodeString(payload)
		} else {
			var s string
			s, err = url.PathUnescape(payload)
			data = []byte(s)
		}
		if err != nil {
			return nil, err
		}
		if ctype == "" {
			ctype = meta
		}
	case strings.HasPrefix(u, "http://"), strings.HasPrefix(u, "https://"):
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		client := &http.Client{Timeout: time.Minute}
		res, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET answered %s", res.Status)
		}
		data, err = io.ReadAll(io.LimitReader(res.Body, maxFileSize+1))
		if err != nil {
			return nil, err
		}
		if ctype == "" {
			ctype = res.Header.Get("Content-Type")
		}
		if name == "" {
			if pu, err := url.Parse(u); err == nil {
				name = path.Base(pu.Path)
			}
		}
	default:
		p := strings.TrimPrefix(u, "file://")
		b.p.mu.Lock()
		root := b.p.dataDir
		b.p.mu.Unlock()
		abs, err := filepath.Abs(p)
		if err != nil || root == "" || !strings.HasPrefix(abs, filepath.Clean(root)+string(filepath.Separator)) {
			return nil, fmt.Errorf("only files inside the data directory (%s) may be attached", root)
		}
		data, err = os.ReadFile(abs)
		if err != nil {
			return nil, err
		}
		if name == "" {
			name = filepath.Base(abs)
		}
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("the file is over %d MiB", maxFileSize>>20)
	}
	if name == "" || name == "." || name == "/" {
		name = "attachment"
	}
	if filepath.Ext(name) == "" {
		if exts, _ := mime.ExtensionsByType(strings.TrimSpace(strings.Split(ctype, ";")[0])); len(exts) > 0 {
			name += exts[0]
		}
	}
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	return &discordgo.File{Name: name, ContentType: ctype, Reader: strings.NewReader(string(data))}, nil
}

// retryLoop delivers the replies left in the outbox: at start those of a
// process that died, later those Discord could not take.
func (b *bot) retryLoop() {
	for {
		b.retryOutbox()
		select {
		case <-b.ctx.Done():
			return
		case <-time.After(b.p.opts.retryEvery):
		}
	}
}

func (b *bot) retryOutbox() {
	b.sweepReplies()
	var entries []*outboxEntry
	b.outbox.load(func(id string, raw []byte) {
		var e outboxEntry
		if err := json.Unmarshal(raw, &e); err != nil || e.ID != id {
			b.log.Warn("dropping an unreadable reply from the outbox", "file", id)
			_ = b.outbox.remove(id)
			return
		}
		entries = append(entries, &e)
	}, func(name string, err error) {
		b.log.Warn("unreadable outbox file", "file", name, "error", err)
	})
	for _, e := range entries {
		if b.ctx.Err() != nil {
			return
		}
		if time.Since(e.Created) > b.p.opts.giveUpAfter {
			b.log.Error("giving up on a reply Discord did not accept", "channel", e.ChannelID, "since", e.Created, "parts_sent", e.Sent, "parts", len(e.Parts))
			_ = b.outbox.remove(e.ID)
			continue
		}
		if !b.claim(e.ID) {
			continue
		}
		ids, err := b.deliver(e)
		b.release(e.ID)
		switch {
		case err == nil:
			b.log.Info("a kept reply was delivered", "channel", e.ChannelID, "messages", len(ids))
		case errors.Is(err, errQueued):
			b.log.Debug("a kept reply is still not accepted", "channel", e.ChannelID, "error", err)
		default:
			b.log.Error("a kept reply was refused", "channel", e.ChannelID, "error", err)
		}
	}
}

// sweepReplies forgets where to answer messages whose runs never ended.
func (b *bot) sweepReplies() {
	now := time.Now()
	var gone []string
	b.mu.Lock()
	for id, ri := range b.replies {
		if now.After(ri.Expires) {
			delete(b.replies, id)
			if ri.Interaction != nil {
				gone = append(gone, id)
			}
		}
	}
	b.mu.Unlock()
	for _, id := range gone {
		_ = b.pending.remove(id)
	}
}

// typingLoop keeps Discord's typing indicator on while the agent works on
// a message.
type typingLoop struct {
	once sync.Once
	done chan struct{}
}

func (t *typingLoop) stop() { t.once.Do(func() { close(t.done) }) }

func (b *bot) startTyping(memID, channelID string) {
	t := &typingLoop{done: make(chan struct{})}
	b.mu.Lock()
	if old := b.typing[memID]; old != nil {
		old.stop()
	}
	b.typing[memID] = t
	b.mu.Unlock()
	b.typingRunning.Add(1)
	go func() {
		defer b.typingRunning.Add(-1)
		limit := time.NewTimer(b.p.opts.typingMax)
		defer limit.Stop()
		tick := time.NewTicker(b.p.opts.typingEvery)
		defer tick.Stop()
		for {
			ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
			if err := b.session().ChannelTyping(channelID, discordgo.WithContext(ctx)); err != nil && b.ctx.Err() == nil {
				b.log.Debug("typing indicator failed", "channel", channelID, "error", err)
			}
			cancel()
			select {
			case <-t.done:
				return
			case <-b.ctx.Done():
				return
			case <-limit.C:
				b.stopTyping(memID)
				return
			case <-tick.C:
			}
		}
	}()
}

func (b *bot) stopTyping(memID string) {
	if memID == "" {
		return
	}
	b.mu.Lock()
	t := b.typing[memID]
	delete(b.typing, memID)
	b.mu.Unlock()
	if t != nil {
		t.stop()
	}
}

// runEnded is told that the agent finished with a message: the typing
// indicator stops, and a slash command left without an answer loses its
// "thinking…".
func (b *bot) runEnded(memID string) {
	b.stopTyping(memID)
	b.mu.Lock()
	ri := b.replies[memID]
	var unanswered *interactionRef
	if ri != nil && ri.Interaction != nil && !ri.Interaction.Answered && ri.Interaction.Queued == 0 {
		ic := *ri.Interaction
		unanswered = &ic
	}
	done := ri != nil && ri.Interaction != nil && ri.Interaction.Queued == 0
	if ri != nil && ri.Interaction == nil {
		// Later replies to the message, if any, find it by its link.
		delete(b.replies, memID)
	}
	b.mu.Unlock()
	if unanswered != nil {
		go func() {
			ctx, cancel := context.WithTimeout(b.ctx, callTimeout)
			defer cancel()
			if err := b.session().InteractionResponseDelete(unanswered.discord(), discordgo.WithContext(ctx)); err != nil {
				b.log.Debug("clearing an unanswered slash command failed", "error", err)
			}
		}()
	}
	if done {
		b.forgetInteraction(memID)
	}
}
