package host

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/coder/websocket"
	"github.com/hashicorp/go-hclog"
)

// The WebSocket at /ws speaks JSON text frames, one object per frame, each
// with a "type". See the README's "WebSocket" section for the protocol.

const (
	wsReadLimit    = 128 << 10
	wsSendQueue    = 256
	wsWriteTimeout = 10 * time.Second
	wsPingEvery    = 30 * time.Second
	wsMaxInFlight  = 4
	wsMaxRooms     = 64
	wsMaxClientID  = 128
)

type roomKey struct{ agent, room string }

type hub struct {
	s       *apiState
	mu      sync.Mutex
	conns   map[*wsConn]struct{}
	closed  bool
	logSubs atomic.Int32
}

func newHub(s *apiState) *hub { return &hub{s: s, conns: map[*wsConn]struct{}{}} }

func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}

func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	conns := make([]*wsConn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		c.shut(websocket.StatusGoingAway, "the daemon is stopping")
	}
}

func (h *hub) add(c *wsConn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.conns[c] = struct{}{}
	h.s.metrics.wsConns.Inc()
	return true
}

func (h *hub) remove(c *wsConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.conns[c]; ok {
		delete(h.conns, c)
		h.s.metrics.wsConns.Dec()
		if c.logLevel.Load() != 0 {
			h.logSubs.Add(-1)
		}
	}
}

// each calls f for every connection that keep selects.
func (h *hub) each(keep func(*wsConn) bool, ev map[string]any) {
	if h == nil {
		return
	}
	h.mu.Lock()
	var to []*wsConn
	for c := range h.conns {
		if keep(c) {
			to = append(to, c)
		}
	}
	h.mu.Unlock()
	if len(to) == 0 {
		return
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return
	}
	for _, c := range to {
		c.enqueue(b)
	}
}

// roomEvent goes to the connections that joined the agent's room, on
// every node of a cluster.
func (h *hub) roomEvent(agentID, roomID string, ev map[string]any) {
	if h != nil && h.s.d.cl != nil {
		h.s.d.cl.PublishEvent(mustJSON(map[string]any{"agentId": agentID, "roomId": roomID, "event": ev}))
	}
	h.localRoomEvent(agentID, roomID, ev)
}

// localRoomEvent goes to the connections of this node in the room.
func (h *hub) localRoomEvent(agentID, roomID string, ev map[string]any) {
	k := roomKey{agentID, roomID}
	h.each(func(c *wsConn) bool { return c.inRoom(k) }, ev)
}

func (h *hub) broadcast(ev map[string]any) {
	h.each(func(*wsConn) bool { return true }, ev)
}

// reply is the daemon's publish hook: a reply of a run, as it is made.
func (s *apiState) reply(a *AgentRuntime, r *run, c *pb.Content) {
	if s == nil {
		return
	}
	s.metrics.reply(a.Name, r.source)
	r.mu.Lock()
	id := ""
	if n := len(r.replies); n > 0 {
		id = r.replies[n-1].id
	}
	r.mu.Unlock()
	actions := c.GetActions()
	if actions == nil {
		actions = []string{}
	}
	roomID := r.message.GetRoomId()
	s.hub.roomEvent(a.ID, roomID, map[string]any{"type": "reply", "agentId": a.ID, "agentName": a.Name, "roomId": roomID,
		"runId": r.id, "id": id, "text": c.GetText(), "actions": actions, "inReplyTo": r.message.GetId(),
		"createdAt": time.Now().UnixMilli()})
}

func (s *apiState) agentChanged(a *AgentRuntime) {
	if s == nil || a == nil {
		return
	}
	s.hub.broadcast(map[string]any{"type": "agent_status", "agent": agentSummary(a)})
}

func (s *apiState) agentRemoved(a *AgentRuntime) {
	if s == nil {
		return
	}
	s.hub.broadcast(map[string]any{"type": "agent_removed", "agentId": a.ID, "name": a.Name})
}

// timelineEntry streams a timeline entry (run, model call, action,
// evaluator) to the log subscribers.
func (s *apiState) timelineEntry(a *AgentRuntime, l *pb.LogEntry) {
	if s == nil || s.hub.logSubs.Load() == 0 {
		return
	}
	var body any
	_ = json.Unmarshal(l.GetBodyJson(), &body)
	if m, ok := body.(map[string]any); ok {
		if p, ok := m["prompt"].(string); ok {
			m["prompt"] = clip(p, 400)
		}
	}
	ev := map[string]any{"type": "log", "kind": "timeline", "agentId": a.ID, "agentName": a.Name, "logType": l.GetType(),
		"roomId": l.GetRoomId(), "body": body, "time": l.GetCreatedAt(), "level": "info"}
	s.hub.each(func(c *wsConn) bool { return c.wantsLog(hclog.Info, a.ID, a.Name) }, ev)
}

// hostLog streams a line of the daemon's own log.
func (h *hub) hostLog(level hclog.Level, name, msg string, args []any) {
	if h == nil || h.logSubs.Load() == 0 {
		return
	}
	fields := map[string]any{}
	agentName := ""
	for i := 0; i+1 < len(args); i += 2 {
		k := fmt.Sprint(args[i])
		v := args[i+1]
		switch x := v.(type) {
		case error:
			v = x.Error()
		case fmt.Stringer:
			v = x.String()
		case string, bool, int, int64, int32, float64, uint, uint64:
		default:
			v = fmt.Sprint(x)
		}
		if s, ok := v.(string); ok {
			v = clip(s, 2000)
		}
		fields[k] = v
		if k == "agent" {
			agentName, _ = v.(string)
		}
	}
	ev := map[string]any{"type": "log", "kind": "host", "level": strings.ToLower(level.String()), "name": name,
		"message": clip(msg, 2000), "fields": fields, "time": time.Now().UnixMilli()}
	h.each(func(c *wsConn) bool { return c.wantsLog(level, "", agentName) }, ev)
}

// teeLogger copies the daemon's log lines to the WebSocket's log stream.
type teeLogger struct {
	hclog.Logger
	hub *hub
}

func (s *apiState) teeLogger(l hclog.Logger) hclog.Logger { return &teeLogger{Logger: l, hub: s.hub} }

func (t *teeLogger) args(extra []any) []any {
	implied := t.Logger.ImpliedArgs()
	if len(implied) == 0 {
		return extra
	}
	return append(append([]any(nil), implied...), extra...)
}

func (t *teeLogger) Log(level hclog.Level, msg string, args ...any) {
	t.Logger.Log(level, msg, args...)
	t.hub.hostLog(level, t.Logger.Name(), msg, t.args(args))
}
func (t *teeLogger) Trace(msg string, args ...any) { t.Log(hclog.Trace, msg, args...) }
func (t *teeLogger) Debug(msg string, args ...any) { t.Log(hclog.Debug, msg, args...) }
func (t *teeLogger) Info(msg string, args ...any)  { t.Log(hclog.Info, msg, args...) }
func (t *teeLogger) Warn(msg string, args ...any)  { t.Log(hclog.Warn, msg, args...) }
func (t *teeLogger) Error(msg string, args ...any) { t.Log(hclog.Error, msg, args...) }
func (t *teeLogger) With(args ...any) hclog.Logger {
	return &teeLogger{Logger: t.Logger.With(args...), hub: t.hub}
}
func (t *teeLogger) Named(name string) hclog.Logger {
	return &teeLogger{Logger: t.Logger.Named(name), hub: t.hub}
}
func (t *teeLogger) ResetNamed(name string) hclog.Logger {
	return &teeLogger{Logger: t.Logger.ResetNamed(name), hub: t.hub}
}

// wsConn is one WebSocket client.
type wsConn struct {
	h      *hub
	c      *websocket.Conn
	ip     string
	send   chan []byte
	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once

	mu       sync.Mutex
	rooms    map[roomKey]bool
	logAgent string // agent id or name the log stream is limited to

	logLevel atomic.Int32 // 0: not subscribed; else hclog.Level+1
	inFlight atomic.Int32
}

// joinRoom adds a room to those the connection hears, up to wsMaxRooms;
// it reports whether the connection is in the room.
func (c *wsConn) joinRoom(k roomKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.rooms[k] && len(c.rooms) >= wsMaxRooms {
		return false
	}
	c.rooms[k] = true
	return true
}

func (c *wsConn) inRoom(k roomKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rooms[k]
}

func (c *wsConn) wantsLog(level hclog.Level, agentID, agentName string) bool {
	min := c.logLevel.Load()
	if min == 0 || int32(level)+1 < min {
		return false
	}
	c.mu.Lock()
	filter := c.logAgent
	c.mu.Unlock()
	if filter == "" {
		return true
	}
	return filter == agentID || (agentName != "" && strings.EqualFold(filter, agentName))
}

// enqueue never blocks the daemon: a client too slow to take its events is
// disconnected.
func (c *wsConn) enqueue(b []byte) {
	select {
	case <-c.ctx.Done():
	case c.send <- b:
	default:
		go c.shut(websocket.StatusPolicyViolation, "too slow: events were piling up")
	}
}

func (c *wsConn) sendJSON(ev map[string]any) {
	b, err := json.Marshal(ev)
	if err == nil {
		c.enqueue(b)
	}
}

func (c *wsConn) shut(code websocket.StatusCode, reason string) {
	c.once.Do(func() {
		c.h.remove(c)
		// The close frame first: cancelling a context the connection has
		// read with drops it without one, and the client would not hear
		// why. A client that does not answer the close (too slow, or
		// hostile) is dropped a second later all the same.
		closed := make(chan struct{})
		go func() {
			_ = c.c.Close(code, reason)
			close(closed)
		}()
		go func() {
			select {
			case <-closed:
			case <-time.After(time.Second):
			}
			c.cancel()
		}()
	})
}

func (d *Daemon) handleWS(w http.ResponseWriter, r *http.Request) {
	// The guard has checked the Origin (api_browser.go), by the same rule
	// as every other request; the library's own check would differ from it
	// behind a proxy that changes the scheme.
	wc, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	wc.SetReadLimit(wsReadLimit)
	ctx, cancel := context.WithCancel(context.Background())
	c := &wsConn{h: d.api.hub, c: wc, ip: d.api.clientIP(r), send: make(chan []byte, wsSendQueue), ctx: ctx, cancel: cancel,
		rooms: map[roomKey]bool{}}
	if !d.api.hub.add(c) {
		cancel()
		_ = wc.Close(websocket.StatusGoingAway, "the daemon is stopping")
		return
	}
	defer c.shut(websocket.StatusNormalClosure, "")
	go c.writeLoop()
	agents := []agentJSON{}
	for _, a := range d.Agents() {
		agents = append(agents, agentSummary(a))
	}
	c.sendJSON(map[string]any{"type": "hello", "version": d.cfg.Version, "agents": agents})
	for {
		typ, data, err := wc.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) || ctx.Err() != nil {
				return
			}
			if strings.Contains(err.Error(), "read limited") {
				c.shut(websocket.StatusMessageTooBig, fmt.Sprintf("a frame is limited to %d bytes", wsReadLimit))
			}
			return
		}
		if typ != websocket.MessageText {
			c.sendJSON(wsError("", "INVALID_MESSAGE", "send JSON text frames"))
			continue
		}
		if !utf8.Valid(data) {
			// RFC 6455 §8.1: a text frame that is not UTF-8 fails the
			// connection.
			c.shut(websocket.StatusInvalidFramePayloadData, "a text frame must be valid UTF-8")
			return
		}
		d.wsHandle(c, data)
	}
}

func (c *wsConn) writeLoop() {
	t := time.NewTicker(wsPingEvery)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case b := <-c.send:
			ctx, cancel := context.WithTimeout(c.ctx, wsWriteTimeout)
			err := c.c.Write(ctx, websocket.MessageText, b)
			cancel()
			if err != nil {
				c.shut(websocket.StatusGoingAway, "write failed")
				return
			}
		case <-t.C:
			ctx, cancel := context.WithTimeout(c.ctx, wsWriteTimeout)
			err := c.c.Ping(ctx)
			cancel()
			if err != nil {
				c.shut(websocket.StatusGoingAway, "ping failed")
				return
			}
		}
	}
}

// wsRequest is every field a client frame may carry.
type wsRequest struct {
	Type            string `json:"type"`
	AgentID         string `json:"agentId"`
	RoomID          string `json:"roomId"`
	UserName        string `json:"userName"`
	Text            string `json:"text"`
	ClientMessageID string `json:"clientMessageId"`
	Level           string `json:"level"`
}

func wsError(clientID, code, msg string) map[string]any {
	ev := map[string]any{"type": "error", "code": code, "message": msg}
	if clientID != "" {
		ev["clientMessageId"] = clientID
	}
	return ev
}

// decodeWS decodes a client frame strictly: the same rules as request
// bodies.
func decodeWS(data []byte) (*wsRequest, string, string) {
	var req wsRequest
	if code, errCode, msg := decodeJSON(bytes.NewReader(data), &req, wsReadLimit); code != 0 {
		return nil, errCode, strings.Replace(msg, "request body", "frame", 1)
	}
	if len(req.ClientMessageID) > wsMaxClientID {
		return nil, "INVALID_MESSAGE", fmt.Sprintf(`"clientMessageId" is limited to %d characters`, wsMaxClientID)
	}
	return &req, "", ""
}

func (d *Daemon) wsHandle(c *wsConn, data []byte) {
	req, code, msg := decodeWS(data)
	if req == nil {
		c.sendJSON(wsError("", code, msg))
		return
	}
	cid := req.ClientMessageID
	agent := func() *AgentRuntime {
		key := req.AgentID
		if key == "" {
			if agents := d.Agents(); len(agents) > 0 {
				return agents[0]
			}
		}
		if !agentKeyOK(key) {
			c.sendJSON(wsError(cid, "INVALID_ID", fmt.Sprintf("%q is not an agent id or name", safeText(key, 60))))
			return nil
		}
		a := d.Agent(key)
		if a == nil {
			c.sendJSON(wsError(cid, "AGENT_NOT_FOUND", fmt.Sprintf("no agent with id or name %q", safeText(key, 128))))
		}
		return a
	}
	switch req.Type {
	case "ping":
		c.sendJSON(map[string]any{"type": "pong", "time": time.Now().UnixMilli()})
	case "join":
		a := agent()
		if a == nil {
			return
		}
		m := messageRequest{Text: "x", UserName: req.UserName, RoomID: req.RoomID}
		if err := m.validate(); err != nil {
			c.sendJSON(wsError(cid, "INVALID_MESSAGE", err.Error()))
			return
		}
		room := m.RoomID
		if room == "" {
			room = apiRoomID(a, m.UserName)
		}
		if !c.joinRoom(roomKey{a.ID, room}) {
			c.sendJSON(tooManyRooms(cid))
			return
		}
		c.sendJSON(map[string]any{"type": "joined", "agentId": a.ID, "agentName": a.Name, "roomId": room, "userName": m.UserName})
	case "leave":
		a := agent()
		if a == nil {
			return
		}
		c.mu.Lock()
		delete(c.rooms, roomKey{a.ID, strings.ToLower(req.RoomID)})
		c.mu.Unlock()
		c.sendJSON(map[string]any{"type": "left", "agentId": a.ID, "roomId": req.RoomID})
	case "message":
		d.wsMessage(c, req, agent)
	case "subscribe_logs":
		level := hclog.Info
		if req.Level != "" {
			level = hclog.LevelFromString(req.Level)
			if level == hclog.NoLevel || level == hclog.Off {
				c.sendJSON(wsError(cid, "INVALID_MESSAGE", `"level" must be trace, debug, info, warn or error`))
				return
			}
		}
		c.mu.Lock()
		c.logAgent = req.AgentID
		c.mu.Unlock()
		if c.logLevel.Swap(int32(level)+1) == 0 {
			c.h.logSubs.Add(1)
		}
		c.sendJSON(map[string]any{"type": "logs_subscribed", "level": strings.ToLower(level.String()), "agentId": req.AgentID})
	case "unsubscribe_logs":
		if c.logLevel.Swap(0) != 0 {
			c.h.logSubs.Add(-1)
		}
		c.sendJSON(map[string]any{"type": "logs_unsubscribed"})
	default:
		c.sendJSON(wsError(cid, "UNKNOWN_TYPE", fmt.Sprintf("unknown frame type %q; use join, leave, message, subscribe_logs, unsubscribe_logs or ping", safeText(req.Type, 40))))
	}
}

func tooManyRooms(cid string) map[string]any {
	return wsError(cid, "TOO_MANY_ROOMS", fmt.Sprintf("a connection may be in at most %d rooms (a message to a room joins it); leave one first", wsMaxRooms))
}

func (d *Daemon) wsMessage(c *wsConn, req *wsRequest, agent func() *AgentRuntime) {
	cid := req.ClientMessageID
	a := agent()
	if a == nil {
		return
	}
	m := messageRequest{Text: req.Text, UserName: req.UserName, RoomID: req.RoomID}
	if err := m.validate(); err != nil {
		c.sendJSON(wsError(cid, "INVALID_MESSAGE", err.Error()))
		return
	}
	if cid != "" {
		if err := idempotencyKeyOK(cid, wsMaxClientID); err != nil {
			c.sendJSON(wsError("", "INVALID_MESSAGE", `"clientMessageId" `+err.Error()))
			return
		}
	}
	if !d.api.allow(c.ip) {
		d.api.metrics.rateLimited.Inc()
		c.sendJSON(wsError(cid, "RATE_LIMITED", "too many requests from this client; slow down"))
		return
	}
	in := d.apiIncoming(a, m)
	// A message to a room joins it: it counts against the cap as a join.
	if !c.joinRoom(roomKey{a.ID, in.roomID}) {
		c.sendJSON(tooManyRooms(cid))
		return
	}
	if c.inFlight.Add(1) > wsMaxInFlight {
		c.inFlight.Add(-1)
		c.sendJSON(wsError(cid, "BUSY", fmt.Sprintf("at most %d messages per connection may wait for replies at once", wsMaxInFlight)))
		return
	}
	announce := func(in *incoming) {
		c.sendJSON(map[string]any{"type": "ack", "clientMessageId": cid, "messageId": in.messageID, "roomId": in.roomID, "agentId": a.ID})
		d.api.hub.roomEvent(a.ID, in.roomID, map[string]any{"type": "message", "id": in.messageID, "agentId": a.ID, "roomId": in.roomID,
			"userName": m.UserName, "text": m.Text, "createdAt": in.createdAt, "clientMessageId": cid})
	}
	if cid != "" {
		// clientMessageId is the message's idempotency key.
		in.messageID = keyedMessageID(a, m.UserName, cid)
	} else {
		announce(in)
	}
	go func() {
		defer c.inFlight.Add(-1)
		// The run goes on if the client leaves: the reply is stored.
		ctx := context.Background()
		var res *messageResult
		var replayed bool
		var err error
		if cid != "" {
			res, replayed, err = d.deliverOnce(ctx, a, in, cid, m.UserName, announce)
		} else {
			res, err = d.deliver(ctx, a, in)
		}
		switch {
		case c.ctx.Err() != nil:
		case errors.Is(err, ErrIdempotencyKeyReused):
			c.sendJSON(wsError(cid, "IDEMPOTENCY_KEY_REUSED", `"clientMessageId" `+err.Error()))
		case err != nil:
			_, code, msg := messageFailure(a, err)
			c.sendJSON(wsError(cid, code, msg))
		case replayed || res.Restored:
			c.replay(a, cid, res, replayed)
		}
	}()
}

// replay sends a connection the answer to a message it sent again: the
// ack (unless sent already), the replies, with the ids they had the first
// time, and the run's end; each is marked "replayed" and goes to this
// connection only.
func (c *wsConn) replay(a *AgentRuntime, cid string, res *messageResult, ack bool) {
	base := func(typ string) map[string]any {
		ev := map[string]any{"type": typ, "agentId": a.ID, "roomId": res.RoomID, "messageId": res.MessageID, "clientMessageId": cid, "replayed": true}
		if res.RunID != "" {
			ev["runId"] = res.RunID
		}
		return ev
	}
	if ack {
		c.sendJSON(base("ack"))
	}
	for _, rp := range res.Replies {
		ev := base("reply")
		ev["agentName"], ev["id"], ev["text"], ev["actions"], ev["inReplyTo"] = a.Name, rp.ID, rp.Text, rp.Actions, res.MessageID
		c.sendJSON(ev)
	}
	ev := base("run_finished")
	ev["status"], ev["replies"] = "completed", len(res.Replies)
	if res.Duplicate {
		ev["duplicate"] = true
	}
	c.sendJSON(ev)
}
