package discordtest

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Gateway opcodes.
const (
	opDispatch       = 0
	opHeartbeat      = 1
	opIdentify       = 2
	opResume         = 6
	opReconnect      = 7
	opInvalidSession = 9
	opHello          = 10
	opHeartbeatAck   = 11
)

// Gateway close codes sent by this server.
const (
	CloseUnknownError       = 4000
	CloseAuthFailed         = 4004
	CloseInvalidSeq         = 4007
	CloseSessionTimedOut    = 4009
	CloseDisallowedIntents  = 4014
	CloseInvalidIntents     = 4013
	privilegedIntents       = 1<<1 | 1<<8 | 1<<15 // members, presences, message content
	intentGuildMembers      = 1 << 1
	intentMessageContent    = 1 << 15
	defaultHeartbeatMillis  = 1000
	gatewayWriteTimeout     = 5 * time.Second
	gatewayCloseGracePeriod = 100 * time.Millisecond
)

type frame struct {
	Op int             `json:"op"`
	D  json.RawMessage `json:"d"`
	S  *int64          `json:"s"`
	T  *string         `json:"t"`
}

// event is a dispatch kept for a session, to replay on resume.
type event struct {
	seq int64
	raw []byte
}

// session is a gateway session: it outlives its connection so that a
// client can resume it.
type session struct {
	id      string
	token   string
	intents int

	mu        sync.Mutex
	seq       int64
	events    []event
	conn      *gwConn
	resumable bool
}

type gwConn struct {
	ws  *websocket.Conn
	wmu sync.Mutex
	srv *Server
	// sess is set once the connection identified or resumed.
	sess *session
}

func (c *gwConn) write(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.writeRaw(b)
}

func (c *gwConn) writeRaw(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(gatewayWriteTimeout))
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

// close sends a close frame with code and drops the connection.
func (c *gwConn) close(code int, text string) {
	c.wmu.Lock()
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
	c.wmu.Unlock()
	go func() {
		time.Sleep(gatewayCloseGracePeriod)
		_ = c.ws.Close()
	}()
}

func dispatchFrame(seq int64, t string, d any) ([]byte, error) {
	data, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	return json.Marshal(frame{Op: opDispatch, D: data, S: &seq, T: &t})
}

func (s *Server) serveGateway(w http.ResponseWriter, r *http.Request) {
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &gwConn{ws: ws, srv: s}
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.gatewayQueries = append(s.gatewayQueries, r.URL.RawQuery)
	interval := s.heartbeat
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		if sess := c.sess; sess != nil {
			sess.mu.Lock()
			if sess.conn == c {
				sess.conn = nil
			}
			sess.mu.Unlock()
		}
		_ = ws.Close()
	}()
	hello, _ := json.Marshal(map[string]any{"heartbeat_interval": interval.Milliseconds()})
	if err := c.write(frame{Op: opHello, D: hello}); err != nil {
		return
	}
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return
		}
		var f frame
		if err := json.Unmarshal(msg, &f); err != nil {
			c.close(4002, "Error while decoding payload.")
			return
		}
		switch f.Op {
		case opHeartbeat:
			s.mu.Lock()
			s.heartbeats++
			s.mu.Unlock()
			_ = c.write(frame{Op: opHeartbeatAck})
		case opIdentify:
			if !s.identify(c, f.D) {
				return
			}
		case opResume:
			s.resume(c, f.D)
		}
	}
}

func stripBot(token string) string { return strings.TrimPrefix(strings.TrimSpace(token), "Bot ") }

// identify starts a new session; false means the connection was closed.
func (s *Server) identify(c *gwConn, d json.RawMessage) bool {
	var id struct {
		Token   string `json:"token"`
		Intents int    `json:"intents"`
	}
	_ = json.Unmarshal(d, &id)
	token := stripBot(id.Token)
	s.mu.Lock()
	s.identifies++
	s.identifyIntents = append(s.identifyIntents, id.Intents)
	bot, ok := s.bots[token]
	valid := ok && !bot.revoked && !bot.gatewayRejects
	disallowed := id.Intents & privilegedIntents &^ s.allowedPrivileged
	s.mu.Unlock()
	switch {
	case !valid:
		c.close(CloseAuthFailed, "Authentication failed.")
		return false
	case disallowed != 0:
		c.close(CloseDisallowedIntents, "Disallowed intent(s).")
		return false
	}
	sess := &session{id: s.newSessionID(), token: token, intents: id.Intents, resumable: true}
	s.mu.Lock()
	s.sessions = append(s.sessions, sess)
	guilds := make([]Guild, 0, len(s.guilds))
	unavailable := make([]map[string]any, 0, len(s.guilds))
	for _, g := range s.guilds {
		guilds = append(guilds, s.guildPayload(g, id.Intents))
		unavailable = append(unavailable, map[string]any{"id": g.ID, "unavailable": true})
	}
	ready := map[string]any{
		"v": 10, "user": bot.user, "guilds": unavailable, "session_id": sess.id,
		"resume_gateway_url": s.gatewayURL(), "private_channels": []any{},
		"application": map[string]any{"id": bot.appID, "flags": 0},
	}
	s.mu.Unlock()
	sess.mu.Lock()
	sess.conn = c
	c.sess = sess
	s.sendLocked(sess, "READY", ready)
	for _, g := range guilds {
		s.sendLocked(sess, "GUILD_CREATE", g)
	}
	sess.mu.Unlock()
	return true
}

// guildPayload is a guild as GUILD_CREATE sends it to a client with the
// given intents: without the members intent only the bot itself and the
// members needed are listed, as Discord does.
func (s *Server) guildPayload(g *Guild, intents int) Guild {
	out := *g
	out.Channels = append([]Channel(nil), g.Channels...)
	out.Threads = append([]Channel(nil), g.Threads...)
	out.Members = append([]Member(nil), g.Members...)
	out.MemberCount = len(g.Members)
	if intents&intentGuildMembers == 0 {
		out.Members = nil
	}
	for i := range out.Channels {
		out.Channels[i].GuildID = ""
	}
	return out
}

// resume reattaches a connection to its session and replays what it
// missed, or says the session is gone (op 9) so the client identifies.
func (s *Server) resume(c *gwConn, d json.RawMessage) {
	var r struct {
		Token     string `json:"token"`
		SessionID string `json:"session_id"`
		Seq       int64  `json:"seq"`
	}
	_ = json.Unmarshal(d, &r)
	s.mu.Lock()
	s.resumes++
	var sess *session
	for _, x := range s.sessions {
		if x.id == r.SessionID {
			sess = x
		}
	}
	bot, ok := s.bots[stripBot(r.Token)]
	valid := ok && !bot.revoked && !bot.gatewayRejects
	s.mu.Unlock()
	if !valid {
		c.close(CloseAuthFailed, "Authentication failed.")
		return
	}
	if sess == nil || sess.token != stripBot(r.Token) {
		_ = c.write(frame{Op: opInvalidSession, D: json.RawMessage("false")})
		return
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if !sess.resumable {
		_ = c.write(frame{Op: opInvalidSession, D: json.RawMessage("false")})
		return
	}
	if old := sess.conn; old != nil && old != c {
		old.close(4000, "Session resumed elsewhere.")
	}
	sess.conn = c
	c.sess = sess
	for _, e := range sess.events {
		if e.seq > r.Seq {
			_ = c.writeRaw(e.raw)
		}
	}
	s.mu.Lock()
	s.resumed++
	s.mu.Unlock()
	s.sendLocked(sess, "RESUMED", map[string]any{})
}

// sendLocked numbers a dispatch, keeps it for resuming and writes it if
// the session has a connection. sess.mu is held.
func (s *Server) sendLocked(sess *session, t string, d any) {
	sess.seq++
	raw, err := dispatchFrame(sess.seq, t, d)
	if err != nil {
		panic(err)
	}
	sess.events = append(sess.events, event{seq: sess.seq, raw: raw})
	if c := sess.conn; c != nil {
		if err := c.writeRaw(raw); err != nil {
			_ = c.ws.Close()
		}
	}
}

// Dispatch sends an event to every session of every bot, as Discord does
// to each bot that can see it. Sessions whose connection dropped keep the
// event and get it when they resume.
func (s *Server) Dispatch(t string, d any) {
	s.mu.Lock()
	sessions := append([]*session(nil), s.sessions...)
	s.mu.Unlock()
	for _, sess := range sessions {
		sess.mu.Lock()
		if sess.resumable {
			s.sendLocked(sess, t, d)
		}
		sess.mu.Unlock()
	}
}

func (s *Server) liveConns() []*gwConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*gwConn, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, c)
	}
	return out
}

// DropConnections cuts every gateway connection without a close frame, as
// a network failure does. The sessions stay resumable.
func (s *Server) DropConnections() {
	for _, c := range s.liveConns() {
		_ = c.ws.UnderlyingConn().Close()
	}
}

// CloseConnections closes every gateway connection with a close code.
func (s *Server) CloseConnections(code int, text string) {
	for _, c := range s.liveConns() {
		c.close(code, text)
	}
}

// RequestReconnect sends op 7 (Reconnect) on every connection.
func (s *Server) RequestReconnect() {
	for _, c := range s.liveConns() {
		_ = c.write(frame{Op: opReconnect})
	}
}

// InvalidateSessions makes every session unresumable: a client that tries
// to resume gets op 9 and must identify again.
func (s *Server) InvalidateSessions() {
	s.mu.Lock()
	sessions := append([]*session(nil), s.sessions...)
	s.mu.Unlock()
	for _, sess := range sessions {
		sess.mu.Lock()
		sess.resumable = false
		sess.mu.Unlock()
	}
}
