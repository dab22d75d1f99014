// Package telegramtest is a Bot API server for tests. It speaks the Bot
// API's wire protocol to any client: methods at /bot{token}/{method},
// parameters as JSON, form or multipart bodies, the {"ok", "result",
// "error_code", "description", "parameters"} envelope, long polling with
// getUpdates offsets (an update is forgotten once a later offset confirms
// it, as Telegram does), webhooks, MarkdownV2 checking, and the errors a
// bot meets: 401 for a bad or revoked token, 429 with retry_after, 409,
// 400, and dropped connections. A test pushes updates and reads every call
// the bot made.
package telegramtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/agenthost/agenthost/internal/testwait"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"
)

// User is a Telegram user.
type User struct {
	ID        int64  `json:"id"`
	IsBot     bool   `json:"is_bot"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name,omitempty"`
	Username  string `json:"username,omitempty"`
}

// Chat is a Telegram chat. Type is private, group, supergroup or channel.
type Chat struct {
	ID        int64  `json:"id"`
	Type      string `json:"type"`
	Title     string `json:"title,omitempty"`
	Username  string `json:"username,omitempty"`
	FirstName string `json:"first_name,omitempty"`
	IsForum   bool   `json:"is_forum,omitempty"`
}

// Private is the private chat with u.
func Private(u User) Chat {
	return Chat{ID: u.ID, Type: "private", FirstName: u.FirstName, Username: u.Username}
}

// Call is one request the bot made and the server handled (a call
// answered with a Fault is not recorded).
type Call struct {
	Method string
	// Params holds every parameter as text: strings as they are, other
	// JSON values encoded.
	Params map[string]string
	// Files holds uploaded files by parameter name.
	Files map[string][]byte
	At    time.Time
}

// Int reads a numeric parameter (0 when absent).
func (c Call) Int(name string) int64 {
	n, _ := strconv.ParseInt(c.Params[name], 10, 64)
	return n
}

// JSON decodes a parameter that holds JSON.
func (c Call) JSON(name string, v any) error { return json.Unmarshal([]byte(c.Params[name]), v) }

// Fault is an error the server answers instead of the method's result.
type Fault struct {
	Code        int
	Description string
	RetryAfter  int
	// Drop closes the connection without an answer: a network error.
	Drop bool
}

// Hold blocks calls of one method until released.
type Hold struct {
	arrived  chan struct{}
	release  chan struct{}
	once     sync.Once
	released sync.Once
}

// Arrived is closed when a held call has come in (and been recorded).
func (h *Hold) Arrived() <-chan struct{} { return h.arrived }

// Release lets the held call be answered.
func (h *Hold) Release() { h.released.Do(func() { close(h.release) }) }

type update struct {
	id   int64
	kind string
	raw  map[string]any
	gone bool
}

// Server is a running fake Bot API.
type Server struct {
	// URL is the API root to give the bot (TELEGRAM_API_ROOT).
	URL string
	// Token is the token the server accepts.
	Token string
	// Bot is the bot's own user.
	Bot User

	srv *httptest.Server
	t   testing.TB

	mu        sync.Mutex
	wake      chan struct{}
	updates   []*update
	nextID    int64
	confirmed int64
	calls     []Call
	msgIDs    map[int64]int
	faults    map[string][]Fault
	holds     map[string]*Hold
	revoked   bool
	webhook   struct{ url, secret string }
	admins    map[int64][]map[string]any
	polling   int
}

// New starts a server; it stops when the test ends.
func New(t testing.TB) *Server {
	s := &Server{
		Token:  "123456789:AAtest-token_0123456789abcdefghijkl",
		Bot:    User{ID: 123456789, IsBot: true, FirstName: "Test Bot", Username: "test_agent_bot"},
		t:      t,
		wake:   make(chan struct{}),
		nextID: 1000,
		msgIDs: map[int64]int{},
		faults: map[string][]Fault{},
		holds:  map[string]*Hold{},
		admins: map[int64][]map[string]any{},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	t.Cleanup(func() {
		s.mu.Lock()
		for _, h := range s.holds {
			h.Release()
		}
		s.mu.Unlock()
		s.srv.CloseClientConnections()
		s.srv.Close()
	})
	return s
}

// Revoke makes the token invalid, as revoking it with @BotFather does.
func (s *Server) Revoke() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked = true
}

// Fail makes the next n calls of method ("*" for any) answer f.
func (s *Server) Fail(method string, n int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < n; i++ {
		s.faults[method] = append(s.faults[method], f)
	}
}

// Hold makes the next call of method wait for Release.
func (s *Server) Hold(method string) *Hold {
	h := &Hold{arrived: make(chan struct{}), release: make(chan struct{})}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holds[method] = h
	return h
}

// SetAdmins sets a group's administrators; creator is its owner.
func (s *Server) SetAdmins(chat int64, creator User, admins ...User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := []map[string]any{{"status": "creator", "user": creator, "is_anonymous": false}}
	for _, a := range admins {
		list = append(list, map[string]any{"status": "administrator", "user": a, "can_be_edited": false, "is_anonymous": false,
			"can_manage_chat": true, "can_delete_messages": true, "can_manage_video_chats": false, "can_restrict_members": false,
			"can_promote_members": false, "can_change_info": false, "can_invite_users": true, "can_post_stories": false,
			"can_edit_stories": false, "can_delete_stories": false})
	}
	s.admins[chat] = list
}

// Push queues an update of the given kind ("message", "edited_message",
// "message_reaction", "callback_query", ...) and returns its update_id.
func (s *Server) Push(kind string, body map[string]any) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	u := &update{id: s.nextID, kind: kind, raw: map[string]any{"update_id": s.nextID, kind: body}}
	s.updates = append(s.updates, u)
	close(s.wake)
	s.wake = make(chan struct{})
	return u.id
}

// NextMessageID takes the next message id of a chat: user messages and
// the bot's share them, as in Telegram.
func (s *Server) NextMessageID(chat int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nextMsg(chat)
}

func (s *Server) nextMsg(chat int64) int {
	s.msgIDs[chat]++
	return s.msgIDs[chat]
}

// Message builds a message from a user in a chat, with a new message id.
func (s *Server) Message(chat Chat, from User, text string) map[string]any {
	m := map[string]any{"message_id": s.NextMessageID(chat.ID), "date": time.Now().Unix(), "chat": chat, "from": from}
	if text != "" {
		m["text"] = text
	}
	return m
}

// PushText queues a text message and returns its update and message ids.
func (s *Server) PushText(chat Chat, from User, text string) (int64, int) {
	m := s.Message(chat, from, text)
	if strings.HasPrefix(text, "/") {
		cmd := strings.Fields(text)[0]
		m["entities"] = []map[string]any{{"type": "bot_command", "offset": 0, "length": len(utf16.Encode([]rune(cmd)))}}
	}
	return s.Push("message", m), m["message_id"].(int)
}

// Calls returns the calls of method ("" for all), oldest first.
func (s *Server) Calls(method string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if method == "" || c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// Sent returns the messages the bot sent (sendMessage and the media
// methods), oldest first.
func (s *Server) Sent() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if c.Method == "sendMessage" || strings.HasPrefix(c.Method, "send") && c.Method != "sendChatAction" {
			out = append(out, c)
		}
	}
	return out
}

// Confirmed is the offset up to which the bot confirmed updates.
func (s *Server) Confirmed() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.confirmed
}

// Polling reports how many getUpdates calls are waiting now.
func (s *Server) Polling() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.polling
}

// Webhook returns the webhook URL and secret set by the bot.
func (s *Server) Webhook() (string, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.webhook.url, s.webhook.secret
}

// WebhookUpdate is the JSON body Telegram posts to a webhook for an update
// pushed with Push (which a webhook-mode bot does not poll for).
func (s *Server) WebhookUpdate(id int64) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.updates {
		if u.id == id {
			b, _ := json.Marshal(u.raw)
			return b
		}
	}
	return nil
}

// WaitFor polls cond until it holds or timeout passes.
func (s *Server) WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !testwait.Poll(timeout, cond) {
		t.Fatalf("timed out after %s waiting for %s; calls: %s", timeout, what, s.describeCalls())
	}
}

func (s *Server) describeCalls() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	counts := map[string]int{}
	for _, c := range s.calls {
		counts[c.Method]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s×%d ", k, counts[k])
	}
	return b.String()
}

// ---- the wire ----

func reply(w http.ResponseWriter, result any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "result": result})
}

func fail(w http.ResponseWriter, code int, desc string, params map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	body := map[string]any{"ok": false, "error_code": code, "description": desc}
	if params != nil {
		body["parameters"] = params
	}
	_ = json.NewEncoder(w).Encode(body)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/bot")
	if !ok {
		fail(w, http.StatusNotFound, "Not Found", nil)
		return
	}
	token, method, _ := strings.Cut(rest, "/")
	params, files, err := readParams(r)
	if err != nil {
		fail(w, http.StatusBadRequest, "Bad Request: "+err.Error(), nil)
		return
	}
	s.mu.Lock()
	if token != s.Token || s.revoked {
		s.mu.Unlock()
		fail(w, http.StatusUnauthorized, "Unauthorized", nil)
		return
	}
	var fault *Fault
	for _, key := range []string{method, "*"} {
		if fs := s.faults[key]; len(fs) > 0 {
			f := fs[0]
			s.faults[key] = fs[1:]
			fault = &f
			break
		}
	}
	if fault == nil {
		s.calls = append(s.calls, Call{Method: method, Params: params, Files: files, At: time.Now()})
	}
	hold := s.holds[method]
	if hold != nil {
		delete(s.holds, method)
	}
	s.mu.Unlock()
	if fault != nil {
		if fault.Drop {
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					_ = conn.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		}
		var p map[string]any
		if fault.RetryAfter > 0 {
			p = map[string]any{"retry_after": fault.RetryAfter}
		}
		fail(w, fault.Code, fault.Description, p)
		return
	}
	if hold != nil {
		hold.once.Do(func() { close(hold.arrived) })
		select {
		case <-hold.release:
		case <-r.Context().Done():
			return
		}
	}
	switch method {
	case "getMe":
		reply(w, s.Bot)
	case "getUpdates":
		s.getUpdates(w, r, params)
	case "sendMessage", "editMessageText":
		s.sendMessage(w, method, params)
	case "sendPhoto", "sendDocument", "sendVideo", "sendAudio", "sendAnimation", "sendVoice":
		s.sendMedia(w, method, params, files)
	case "sendChatAction", "setMyCommands", "answerCallbackQuery", "deleteMessage", "setMessageReaction":
		reply(w, true)
	case "setWebhook":
		s.mu.Lock()
		s.webhook.url, s.webhook.secret = params["url"], params["secret_token"]
		s.mu.Unlock()
		reply(w, true)
	case "deleteWebhook":
		s.mu.Lock()
		s.webhook.url, s.webhook.secret = "", ""
		s.mu.Unlock()
		reply(w, true)
	case "getWebhookInfo":
		u, _ := s.Webhook()
		reply(w, map[string]any{"url": u, "has_custom_certificate": false, "pending_update_count": 0})
	case "getChatAdministrators":
		chat, _ := strconv.ParseInt(params["chat_id"], 10, 64)
		if chat > 0 {
			fail(w, http.StatusBadRequest, "Bad Request: there are no administrators in the private chat", nil)
			return
		}
		s.mu.Lock()
		list := s.admins[chat]
		s.mu.Unlock()
		if list == nil {
			list = []map[string]any{}
		}
		reply(w, list)
	case "getFile":
		id := params["file_id"]
		reply(w, map[string]any{"file_id": id, "file_unique_id": "u" + id, "file_size": 1024, "file_path": "files/" + id + ".jpg"})
	default:
		fail(w, http.StatusNotFound, "Not Found: method not found", nil)
	}
}

// readParams reads a Bot API request's parameters from its query and its
// JSON, form or multipart body.
func readParams(r *http.Request) (map[string]string, map[string][]byte, error) {
	params := map[string]string{}
	files := map[string][]byte{}
	for k, v := range r.URL.Query() {
		params[k] = v[0]
	}
	ct, mp, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil && err != io.EOF {
			return nil, nil, fmt.Errorf("bad JSON body: %v", err)
		}
		for k, v := range body {
			if s, ok := v.(string); ok {
				params[k] = s
				continue
			}
			b, _ := json.Marshal(v)
			params[k] = string(b)
		}
	case "application/x-www-form-urlencoded":
		b, _ := io.ReadAll(r.Body)
		q, err := url.ParseQuery(string(b))
		if err != nil {
			return nil, nil, err
		}
		for k, v := range q {
			params[k] = v[0]
		}
	case "multipart/form-data":
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, nil, err
		}
		if len(body) == 0 {
			// A method without parameters: some clients send no parts.
			break
		}
		mr := multipart.NewReader(bytes.NewReader(body), mp["boundary"])
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, nil, fmt.Errorf("bad multipart body: %v", err)
			}
			b, _ := io.ReadAll(p)
			if p.FileName() != "" {
				files[p.FormName()] = b
				params[p.FormName()] = "attach://" + p.FileName()
				continue
			}
			params[p.FormName()] = string(b)
		}
	}
	return params, files, nil
}

func (s *Server) getUpdates(w http.ResponseWriter, r *http.Request, p map[string]string) {
	offset, _ := strconv.ParseInt(p["offset"], 10, 64)
	timeout, _ := strconv.Atoi(p["timeout"])
	limit, _ := strconv.Atoi(p["limit"])
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	allowed := map[string]bool{}
	if a := p["allowed_updates"]; a != "" && a != "[]" && a != "null" {
		var list []string
		if err := json.Unmarshal([]byte(a), &list); err != nil {
			fail(w, http.StatusBadRequest, "Bad Request: can't parse allowed_updates", nil)
			return
		}
		for _, x := range list {
			allowed[x] = true
		}
	} else {
		for _, x := range []string{"message", "edited_message", "channel_post", "edited_channel_post", "callback_query", "my_chat_member"} {
			allowed[x] = true
		}
	}
	deadline := time.Now().Add(time.Duration(timeout) * time.Second)
	s.mu.Lock()
	if s.webhook.url != "" {
		s.mu.Unlock()
		fail(w, http.StatusConflict, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first", nil)
		return
	}
	if offset > s.confirmed {
		s.confirmed = offset
	}
	s.polling++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.polling--
		s.mu.Unlock()
	}()
	for {
		s.mu.Lock()
		var out []map[string]any
		for _, u := range s.updates {
			if u.id < s.confirmed {
				u.gone = true
			}
			if u.gone {
				continue
			}
			if !allowed[u.kind] {
				// Telegram never delivers an update the bot did not ask for.
				u.gone = true
				continue
			}
			if len(out) < limit {
				out = append(out, u.raw)
			}
		}
		wake := s.wake
		s.mu.Unlock()
		if len(out) > 0 || !time.Now().Before(deadline) {
			if out == nil {
				out = []map[string]any{}
			}
			reply(w, out)
			return
		}
		ctx, cancel := context.WithDeadline(r.Context(), deadline)
		select {
		case <-wake:
		case <-ctx.Done():
		}
		cancel()
		if r.Context().Err() != nil {
			return
		}
	}
}

func (s *Server) chatOf(p map[string]string) (Chat, error) {
	id, err := strconv.ParseInt(p["chat_id"], 10, 64)
	if err != nil {
		return Chat{}, fmt.Errorf("chat not found")
	}
	ch := Chat{ID: id, Type: "private"}
	if id < 0 {
		ch.Type = "supergroup"
	}
	return ch, nil
}

func (s *Server) sendMessage(w http.ResponseWriter, method string, p map[string]string) {
	chat, err := s.chatOf(p)
	if err != nil {
		fail(w, http.StatusBadRequest, "Bad Request: chat not found", nil)
		return
	}
	text := p["text"]
	if p["parse_mode"] == "MarkdownV2" {
		plain, err := ParseMarkdownV2(text)
		if err != nil {
			fail(w, http.StatusBadRequest, "Bad Request: can't parse entities: "+err.Error(), nil)
			return
		}
		text = plain
	}
	if strings.TrimSpace(text) == "" {
		fail(w, http.StatusBadRequest, "Bad Request: message text is empty", nil)
		return
	}
	if n := len(utf16.Encode([]rune(text))); n > 4096 {
		fail(w, http.StatusBadRequest, "Bad Request: message is too long", nil)
		return
	}
	id := 0
	if method == "editMessageText" {
		id, _ = strconv.Atoi(p["message_id"])
	} else {
		s.mu.Lock()
		id = s.nextMsg(chat.ID)
		s.mu.Unlock()
	}
	msg := map[string]any{"message_id": id, "date": time.Now().Unix(), "chat": chat, "from": s.Bot, "text": text}
	if th, _ := strconv.Atoi(p["message_thread_id"]); th != 0 {
		msg["message_thread_id"] = th
		msg["is_topic_message"] = true
	}
	if method == "editMessageText" {
		msg["edit_date"] = time.Now().Unix()
	}
	reply(w, msg)
}

func (s *Server) sendMedia(w http.ResponseWriter, method string, p map[string]string, files map[string][]byte) {
	chat, err := s.chatOf(p)
	if err != nil {
		fail(w, http.StatusBadRequest, "Bad Request: chat not found", nil)
		return
	}
	field := strings.ToLower(strings.TrimPrefix(method, "send"))
	if p[field] == "" {
		fail(w, http.StatusBadRequest, "Bad Request: there is no "+field+" in the request", nil)
		return
	}
	if c := p["caption"]; c != "" && p["parse_mode"] == "MarkdownV2" {
		if _, err := ParseMarkdownV2(c); err != nil {
			fail(w, http.StatusBadRequest, "Bad Request: can't parse entities: "+err.Error(), nil)
			return
		}
	}
	s.mu.Lock()
	id := s.nextMsg(chat.ID)
	s.mu.Unlock()
	msg := map[string]any{"message_id": id, "date": time.Now().Unix(), "chat": chat, "from": s.Bot}
	fileID := fmt.Sprintf("file-%d-%d", chat.ID, id)
	switch field {
	case "photo":
		msg["photo"] = []map[string]any{{"file_id": fileID, "file_unique_id": "u" + fileID, "width": 100, "height": 100}}
	default:
		msg[field] = map[string]any{"file_id": fileID, "file_unique_id": "u" + fileID, "duration": 1, "width": 1, "height": 1}
	}
	reply(w, msg)
}
