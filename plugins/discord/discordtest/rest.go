package discordtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
)

// Request is one REST call the server received.
type Request struct {
	Method string
	// Path is the route without the /api/vN prefix, e.g.
	// /channels/123/messages.
	Path   string
	Query  string
	Header http.Header
	Body   []byte
	Status int
	At     time.Time
}

// File is an uploaded file.
type File struct {
	Name        string
	ContentType string
	Data        []byte
}

// Posted is a message a bot created: in a channel, as an interaction's
// original response, or as a followup.
type Posted struct {
	Message
	Nonce           string
	EnforceNonce    bool
	AllowedMentions json.RawMessage
	Files           []File
	At              time.Time
	// Via is "channel", "original" (the edited interaction response) or
	// "followup".
	Via string
	// Interaction is the token of the interaction answered, if any.
	Interaction string
}

// Command is an application command a bot registered.
type Command struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Type        int               `json:"type,omitempty"`
	Options     []json.RawMessage `json:"options,omitempty"`
}

// Callback is an interaction response (POST …/callback).
type Callback struct {
	InteractionID string
	Token         string
	Type          int
	Data          json.RawMessage
	At            time.Time
}

type bucket struct {
	id        string
	limit     int
	remaining int
	window    time.Duration
	reset     time.Time
}

type forced429 struct {
	retryAfter time.Duration
	global     bool
}

var apiPrefix = regexp.MustCompile(`^/api(/v\d+)?`)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func apiError(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, map[string]any{"code": code, "message": msg})
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (s *Server) serveREST(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	path := apiPrefix.ReplaceAllString(r.URL.Path, "")
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		s.mu.Lock()
		s.requests = append(s.requests, Request{Method: r.Method, Path: path, Query: r.URL.RawQuery,
			Header: r.Header.Clone(), Body: body, Status: sw.status, At: time.Now()})
		s.mu.Unlock()
	}()
	seg := strings.Split(strings.Trim(path, "/"), "/")
	// Interaction callbacks and webhooks are authorized by their token.
	public := seg[0] == "interactions" || seg[0] == "webhooks" || (seg[0] == "gateway" && len(seg) == 1)
	var b *bot
	if !public {
		s.mu.Lock()
		b = s.bots[stripBot(r.Header.Get("Authorization"))]
		ok := b != nil && !b.revoked && strings.HasPrefix(r.Header.Get("Authorization"), "Bot ")
		s.mu.Unlock()
		if !ok {
			apiError(sw, http.StatusUnauthorized, 0, "401: Unauthorized")
			return
		}
	}
	if s.rateLimited(sw, r.Method+" "+path) {
		return
	}
	switch {
	case r.Method == "GET" && path == "/gateway":
		writeJSON(sw, 200, map[string]any{"url": s.gatewayURL()})
	case r.Method == "GET" && path == "/gateway/bot":
		writeJSON(sw, 200, map[string]any{"url": s.gatewayURL(), "shards": 1,
			"session_start_limit": map[string]any{"total": 1000, "remaining": 999, "reset_after": 14400000, "max_concurrency": 1}})
	case r.Method == "GET" && path == "/users/@me":
		writeJSON(sw, 200, b.user)
	case r.Method == "GET" && len(seg) == 2 && seg[0] == "users":
		s.mu.Lock()
		u, ok := s.users[seg[1]]
		s.mu.Unlock()
		if !ok {
			apiError(sw, 404, 10013, "Unknown User")
			return
		}
		writeJSON(sw, 200, u)
	case r.Method == "POST" && path == "/users/@me/channels":
		var req struct {
			RecipientID string `json:"recipient_id"`
		}
		_ = json.Unmarshal(body, &req)
		s.mu.Lock()
		u, ok := s.users[req.RecipientID]
		if !ok {
			u = User{ID: req.RecipientID, Username: "user" + req.RecipientID, Discriminator: "0"}
		}
		c := s.dmLocked(u)
		s.mu.Unlock()
		writeJSON(sw, 200, c)
	case len(seg) == 2 && seg[0] == "channels" && r.Method == "GET":
		s.mu.Lock()
		c := s.channels[seg[1]]
		s.mu.Unlock()
		if c == nil {
			apiError(sw, 404, 10003, "Unknown Channel")
			return
		}
		writeJSON(sw, 200, c)
	case len(seg) == 3 && seg[0] == "channels" && seg[2] == "typing" && r.Method == "POST":
		s.mu.Lock()
		s.typing[seg[1]]++
		s.mu.Unlock()
		sw.WriteHeader(http.StatusNoContent)
	case len(seg) == 3 && seg[0] == "channels" && seg[2] == "messages" && r.Method == "POST":
		s.createMessage(sw, r, body, b, seg[1])
	case len(seg) == 4 && seg[0] == "channels" && seg[2] == "messages" && r.Method == "GET":
		s.mu.Lock()
		m := s.messages[seg[3]]
		s.mu.Unlock()
		if m == nil || m.ChannelID != seg[1] {
			apiError(sw, 404, 10008, "Unknown Message")
			return
		}
		writeJSON(sw, 200, m)
	case len(seg) == 3 && seg[0] == "applications" && seg[2] == "commands" && r.Method == "PUT":
		var cmds []Command
		if err := json.Unmarshal(body, &cmds); err != nil {
			apiError(sw, 400, 50109, "The request body contains invalid JSON.")
			return
		}
		s.mu.Lock()
		for i := range cmds {
			cmds[i].ID = s.newIDLocked()
		}
		s.commands[seg[1]] = cmds
		s.mu.Unlock()
		out := make([]map[string]any, len(cmds))
		for i, c := range cmds {
			out[i] = map[string]any{"id": c.ID, "application_id": seg[1], "name": c.Name, "description": c.Description,
				"type": 1, "version": c.ID, "options": c.Options}
		}
		writeJSON(sw, 200, out)
	case len(seg) == 4 && seg[0] == "interactions" && seg[3] == "callback" && r.Method == "POST":
		s.callback(sw, body, seg[1], seg[2])
	case len(seg) == 5 && seg[0] == "webhooks" && seg[3] == "messages" && seg[4] == "@original" && r.Method == "PATCH":
		s.webhookMessage(sw, r, body, seg[2], "original")
	case len(seg) == 5 && seg[0] == "webhooks" && seg[3] == "messages" && seg[4] == "@original" && r.Method == "DELETE":
		s.mu.Lock()
		s.deletedOriginals = append(s.deletedOriginals, seg[2])
		s.mu.Unlock()
		sw.WriteHeader(http.StatusNoContent)
	case len(seg) == 3 && seg[0] == "webhooks" && r.Method == "POST":
		s.webhookMessage(sw, r, body, seg[2], "followup")
	default:
		apiError(sw, 404, 0, "404: Not Found")
	}
}

// rateLimited applies the route's bucket and forced 429s; true means it
// answered 429.
func (s *Server) rateLimited(w http.ResponseWriter, route string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.forced[route]; len(q) > 0 {
		f := q[0]
		s.forced[route] = q[1:]
		sec := f.retryAfter.Seconds()
		w.Header().Set("Retry-After", strconv.Itoa(int(f.retryAfter.Seconds()+0.999)))
		if f.global {
			w.Header().Set("X-RateLimit-Global", "true")
			w.Header().Set("X-RateLimit-Scope", "global")
		} else {
			w.Header().Set("X-RateLimit-Scope", "user")
			w.Header().Set("X-RateLimit-Limit", "5")
			w.Header().Set("X-RateLimit-Remaining", "0")
			w.Header().Set("X-RateLimit-Reset-After", strconv.FormatFloat(sec, 'f', 3, 64))
			w.Header().Set("X-RateLimit-Bucket", "forced")
		}
		writeJSON(w, http.StatusTooManyRequests, map[string]any{"message": "You are being rate limited.",
			"retry_after": sec, "global": f.global, "code": 0})
		return true
	}
	b := s.buckets[route]
	if b == nil {
		return false
	}
	t := time.Now()
	if !t.Before(b.reset) {
		b.remaining = b.limit
		b.reset = t.Add(b.window)
	}
	after := b.reset.Sub(t).Seconds()
	w.Header().Set("X-RateLimit-Limit", strconv.Itoa(b.limit))
	w.Header().Set("X-RateLimit-Reset", strconv.FormatFloat(float64(b.reset.UnixMilli())/1000, 'f', 3, 64))
	w.Header().Set("X-RateLimit-Reset-After", strconv.FormatFloat(after, 'f', 3, 64))
	w.Header().Set("X-RateLimit-Bucket", b.id)
	if b.remaining <= 0 {
		s.violations = append(s.violations, fmt.Sprintf("%s at %s, %.3fs before the reset", route, t.Format(time.StampMilli), after))
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Scope", "user")
		writeJSON(w, http.StatusTooManyRequests, map[string]any{"message": "You are being rate limited.",
			"retry_after": after, "global": false, "code": 0})
		return true
	}
	b.remaining--
	w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(b.remaining))
	return false
}

// SetRateLimit gives a route ("POST /channels/123/messages") a bucket of
// limit requests per window, announced in Discord's X-RateLimit headers.
// A request made while the announced bucket is empty gets 429 and is
// recorded as a violation: a client that honours the headers makes none.
func (s *Server) SetRateLimit(route string, limit int, window time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buckets[route] = &bucket{id: fmt.Sprintf("%x", len(s.buckets)+1), limit: limit, window: window}
}

// Force429 makes the next n requests to route fail with 429 and a
// retry_after (global or per route).
func (s *Server) Force429(route string, n int, retryAfter time.Duration, global bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.forced[route] = append(s.forced[route], forced429{retryAfter: retryAfter, global: global})
	}
}

// Violations lists the requests that ignored an announced rate limit.
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.violations...)
}

// messagePayload is what a bot sends to create or edit a message.
type messagePayload struct {
	Content         string          `json:"content"`
	Nonce           any             `json:"nonce"`
	EnforceNonce    bool            `json:"enforce_nonce"`
	Reference       *Reference      `json:"message_reference"`
	AllowedMentions json.RawMessage `json:"allowed_mentions"`
	Flags           int             `json:"flags"`
}

// readPayload reads a JSON body or a multipart one with payload_json and
// files[n].
func readPayload(r *http.Request, body []byte) (messagePayload, []File, error) {
	var p messagePayload
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		if len(body) > 0 {
			if err := json.Unmarshal(body, &p); err != nil {
				return p, nil, err
			}
		}
		return p, nil, nil
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	var files []File
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return p, nil, err
		}
		data, _ := io.ReadAll(part)
		switch name := part.FormName(); {
		case name == "payload_json":
			if err := json.Unmarshal(data, &p); err != nil {
				return p, nil, err
			}
		case strings.HasPrefix(name, "files["), name == "file":
			files = append(files, File{Name: part.FileName(), ContentType: part.Header.Get("Content-Type"), Data: data})
		}
	}
	return p, files, nil
}

func utf16Count(s string) int { return len(utf16.Encode([]rune(s))) }

func nonceString(n any) string {
	switch v := n.(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return ""
}

func (s *Server) createMessage(w http.ResponseWriter, r *http.Request, body []byte, b *bot, channelID string) {
	p, files, err := readPayload(r, body)
	if err != nil {
		apiError(w, 400, 50109, "The request body contains invalid JSON.")
		return
	}
	if n := utf16Count(p.Content); n > 2000 {
		apiError(w, 400, 50035, fmt.Sprintf("Invalid Form Body: content: Must be 2000 or fewer in length (got %d).", n))
		return
	}
	if strings.TrimSpace(p.Content) == "" && len(files) == 0 {
		apiError(w, 400, 50006, "Cannot send an empty message")
		return
	}
	s.mu.Lock()
	ch := s.channels[channelID]
	if ch == nil {
		s.mu.Unlock()
		apiError(w, 404, 10003, "Unknown Channel")
		return
	}
	nonce := nonceString(p.Nonce)
	if p.EnforceNonce && nonce != "" {
		if id, ok := s.nonces[b.user.ID+"/"+nonce]; ok {
			m := *s.messages[id]
			s.mu.Unlock()
			writeJSON(w, 200, m)
			return
		}
	}
	m := Message{ID: s.newIDLocked(), ChannelID: channelID, GuildID: ch.GuildID, Author: b.user, Content: p.Content,
		Timestamp: now(), Mentions: []User{}, MentionRoles: []string{}, Attachments: []Attachment{}, Embeds: []any{},
		Type: MessageDefault, Nonce: p.Nonce}
	if p.Reference != nil && p.Reference.MessageID != "" {
		ref := s.messages[p.Reference.MessageID]
		if ref == nil {
			if p.Reference.FailIfNotExists == nil || *p.Reference.FailIfNotExists {
				s.mu.Unlock()
				apiError(w, 400, 50035, "Invalid Form Body: message_reference: Unknown message")
				return
			}
		} else {
			m.Type = MessageReply
			m.MessageReference = &Reference{MessageID: ref.ID, ChannelID: ref.ChannelID, GuildID: ref.GuildID}
			cp := *ref
			cp.ReferencedMessage = nil
			m.ReferencedMessage = &cp
		}
	}
	for _, f := range files {
		m.Attachments = append(m.Attachments, Attachment{ID: s.newIDLocked(), Filename: f.Name, Size: len(f.Data),
			ContentType: f.ContentType})
	}
	stored := m
	s.messages[m.ID] = &stored
	if p.EnforceNonce && nonce != "" {
		s.nonces[b.user.ID+"/"+nonce] = m.ID
	}
	s.posted = append(s.posted, Posted{Message: m, Nonce: nonce, EnforceNonce: p.EnforceNonce,
		AllowedMentions: p.AllowedMentions, Files: files, At: time.Now(), Via: "channel"})
	s.mu.Unlock()
	writeJSON(w, 200, m)
	// Discord echoes a bot's own messages to it.
	s.Dispatch("MESSAGE_CREATE", m)
}

func (s *Server) callback(w http.ResponseWriter, body []byte, id, token string) {
	var cb struct {
		Type int             `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	_ = json.Unmarshal(body, &cb)
	s.mu.Lock()
	in := s.interactions[id]
	if in == nil || in.Token != token {
		s.mu.Unlock()
		apiError(w, 404, 10062, "Unknown interaction")
		return
	}
	if s.acked[id] {
		s.mu.Unlock()
		apiError(w, 400, 40060, "Interaction has already been acknowledged.")
		return
	}
	s.acked[id] = true
	s.callbacks = append(s.callbacks, Callback{InteractionID: id, Token: token, Type: cb.Type, Data: cb.Data, At: time.Now()})
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) webhookMessage(w http.ResponseWriter, r *http.Request, body []byte, token, via string) {
	p, files, err := readPayload(r, body)
	if err != nil {
		apiError(w, 400, 50109, "The request body contains invalid JSON.")
		return
	}
	if n := utf16Count(p.Content); n > 2000 {
		apiError(w, 400, 50035, fmt.Sprintf("Invalid Form Body: content: Must be 2000 or fewer in length (got %d).", n))
		return
	}
	s.mu.Lock()
	var in *Interaction
	for _, x := range s.interactions {
		if x.Token == token {
			in = x
		}
	}
	if in == nil || !s.acked[in.ID] {
		s.mu.Unlock()
		apiError(w, 404, 10015, "Unknown Webhook")
		return
	}
	var author User
	for _, b := range s.bots {
		if b.appID == in.ApplicationID {
			author = b.user
		}
	}
	m := Message{ID: s.newIDLocked(), ChannelID: in.ChannelID, GuildID: in.GuildID, Author: author, Content: p.Content,
		Timestamp: now(), Mentions: []User{}, MentionRoles: []string{}, Attachments: []Attachment{}, Embeds: []any{}}
	for _, f := range files {
		m.Attachments = append(m.Attachments, Attachment{ID: s.newIDLocked(), Filename: f.Name, Size: len(f.Data), ContentType: f.ContentType})
	}
	stored := m
	s.messages[m.ID] = &stored
	s.webhooks = append(s.webhooks, Posted{Message: m, AllowedMentions: p.AllowedMentions, Files: files, At: time.Now(),
		Via: via, Interaction: token})
	s.mu.Unlock()
	writeJSON(w, 200, m)
}

// Requests lists the REST calls received, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Posted lists the messages bots created in a channel ("" for every
// channel), oldest first.
func (s *Server) Posted(channelID string) []Posted {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Posted
	for _, p := range s.posted {
		if channelID == "" || p.ChannelID == channelID {
			out = append(out, p)
		}
	}
	return out
}

// WebhookMessages lists interaction responses and followups, oldest first.
func (s *Server) WebhookMessages() []Posted {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Posted(nil), s.webhooks...)
}

// Typing counts the typing indicators sent to a channel.
func (s *Server) Typing(channelID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.typing[channelID]
}

// Commands returns the application commands registered for an
// application.
func (s *Server) Commands(appID string) []Command {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Command(nil), s.commands[appID]...)
}

// DeletedOriginals lists the tokens of interactions whose response the bot
// deleted.
func (s *Server) DeletedOriginals() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.deletedOriginals...)
}

// Callbacks lists interaction responses, oldest first.
func (s *Server) Callbacks() []Callback {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Callback(nil), s.callbacks...)
}
