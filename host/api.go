package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/agenthost/agenthost/internal/contract"
	"github.com/agenthost/agenthost/sdk"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

// apiState is what the HTTP API, the WebSocket and the metrics keep for
// the life of a daemon.
type apiState struct {
	d       *Daemon
	cfg     apiConfig
	started time.Time
	metrics *metrics
	limiter *rateLimiter
	hub     *hub
	tickets *ticketStore
	// listen is where the daemon listens, for the Host rule.
	listen listenAddr
	// idem remembers keyed messages (api_idempotency.go).
	idem *idemStore
	// life serialises agent starts, stops, updates and removals.
	life sync.Mutex
}

func newAPIState(d *Daemon) *apiState {
	cfg, warnings := loadAPIConfig(d.cfg.Env)
	for _, w := range warnings {
		d.log.Warn(w)
	}
	s := &apiState{d: d, cfg: cfg, started: time.Now(), tickets: &ticketStore{m: map[string]time.Time{}}, idem: newIdemStore()}
	s.metrics = newMetrics(d)
	s.limiter = newRateLimiter(cfg.rate, cfg.burst)
	s.hub = newHub(s)
	return s
}

func (s *apiState) close() {
	if s != nil {
		s.hub.close()
	}
}

// route is one registered HTTP route; the OpenAPI test compares them with
// the document.
type route struct {
	Method, Path string
}

type routeMux struct {
	*http.ServeMux
	routes []route
}

func (m *routeMux) handle(pattern string, h http.HandlerFunc) {
	method, path, _ := strings.Cut(pattern, " ")
	m.routes = append(m.routes, route{Method: method, Path: path})
	m.HandleFunc(pattern, h)
}

// Handler returns the daemon's HTTP face: the API under /api, /healthz,
// /metrics, the WebSocket at /ws and the web page at /.
func (d *Daemon) Handler() http.Handler {
	m := d.apiMux()
	d.inner = m
	return d.api.guard(m)
}

func (d *Daemon) apiMux() *routeMux {
	m := &routeMux{ServeMux: http.NewServeMux()}
	m.handle("GET /healthz", d.handleHealthz)
	m.handle("GET /metrics", d.api.metrics.handler().ServeHTTP)

	// Server.
	m.handle("GET /api/health", d.handleHealth)
	m.handle("GET /api/status", d.handleStatus)
	m.handle("GET /api/version", d.handleVersion)
	m.handle("GET /api/openapi.json", d.handleOpenAPI)
	m.handle("POST /api/auth/ws-ticket", d.handleTicket)
	m.handle("GET /api/plugins", d.handlePlugins)
	m.handle("GET /api/plugins/{name}", d.handlePlugin)
	m.handle("POST /api/plugins/reload", d.handleReloadPlugins)
	m.handle("POST /api/plugins/{name}/reload", d.handleReloadPlugin)
	m.handle("GET /api/cluster", d.handleCluster)

	// Agents.
	m.handle("GET /api/agents", d.handleAgents)
	m.handle("POST /api/agents", d.handleCreateAgent)
	m.handle("GET /api/agents/{agentId}", d.handleGetAgent)
	m.handle("PATCH /api/agents/{agentId}", d.handleUpdateAgent)
	m.handle("DELETE /api/agents/{agentId}", d.handleDeleteAgent)
	m.handle("POST /api/agents/{agentId}/start", d.handleStartAgent)
	m.handle("POST /api/agents/{agentId}/stop", d.handleStopAgent)
	m.handle("POST /api/agents/{agentId}/messages", d.handleMessage)
	m.handle("GET /api/agents/{agentId}/rooms", d.handleRooms)
	m.handle("GET /api/agents/{agentId}/rooms/{roomId}", d.handleRoom)
	m.handle("GET /api/agents/{agentId}/worlds", d.handleWorlds)
	m.handle("GET /api/agents/{agentId}/logs", d.handleLogs)
	m.handle("DELETE /api/agents/{agentId}/logs/{logId}", d.handleDeleteLog)
	m.handle("GET /api/agents/{agentId}/runs", d.handleRuns)
	m.handle("GET /api/agents/{agentId}/runs/{runId}", d.handleRun)

	// Memories.
	m.handle("GET /api/memory/{agentId}/memories", d.handleMemories)
	m.handle("DELETE /api/memory/{agentId}/memories", d.handleClearMemories)
	m.handle("GET /api/memory/{agentId}/rooms/{roomId}/memories", d.handleRoomMemories)
	m.handle("DELETE /api/memory/{agentId}/memories/all/{roomId}", d.handleClearRoom)
	m.handle("DELETE /api/memory/{agentId}/memories/{memoryId}", d.handleDeleteMemory)

	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		// The catch-all wins over a route of another method: say which
		// methods the path has.
		var allowed []string
		for _, method := range []string{"GET", "POST", "PATCH", "DELETE"} {
			probe := r.Clone(r.Context())
			probe.Method = method
			if _, pattern := m.Handler(probe); pattern != "/api/" && pattern != "" {
				allowed = append(allowed, method)
			}
		}
		if len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", fmt.Sprintf("%s %s is not a route; this path takes %s",
				safeText(r.Method, 20), safeText(r.URL.Path, 200), strings.Join(allowed, ", ")))
			return
		}
		writeError(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("no API route %s %s", safeText(r.Method, 20), safeText(r.URL.Path, 200)))
	})
	m.HandleFunc("GET /ws", d.handleWS)
	d.hookRoutes(m.ServeMux)
	d.webRoutes(m.ServeMux)
	return m
}

type envelope struct {
	Success bool       `json:"success"`
	Data    any        `json:"data,omitempty"`
	Error   *errorBody `json:"error,omitempty"`
}

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, code int, data any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(envelope{Success: true, Data: data})
}

func writeError(w http.ResponseWriter, code int, errCode, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(envelope{Success: false, Error: &errorBody{Code: errCode, Message: msg}})
}

// safeText shortens a string from a request for an error message and
// shows control characters escaped.
func safeText(s string, max int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	cut := false
	if utf8.RuneCountInString(s) > max {
		r := []rune(s)
		s, cut = string(r[:max]), true
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) {
			fmt.Fprintf(&b, "\\u%04x", r)
			continue
		}
		b.WriteRune(r)
	}
	if cut {
		b.WriteString("…")
	}
	return b.String()
}

// handleHealthz is the liveness check: the daemon is up and serving. An
// agent that cannot start is not a reason to restart the daemon (it would
// not start after a restart either); /api/health lists it.
//
// While the daemon starts its agents it answers 503 with status
// "starting" and how many are up: it is alive, not ready yet.
func (d *Daemon) handleHealthz(w http.ResponseWriter, r *http.Request) {
	if d.Starting() {
		counts := map[string]int{}
		for _, a := range d.Agents() {
			st, _ := a.Status()
			counts[string(st)]++
		}
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "starting", "version": d.cfg.Version,
			"uptimeSeconds": int64(time.Since(d.api.started).Seconds()), "agents": counts})
		return
	}
	if d.cl != nil && !d.cl.Connected() {
		// Its agents stop (fencing) and it cannot forward: another node
		// should take the traffic.
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "nats-unreachable", "version": d.cfg.Version,
			"uptimeSeconds": int64(time.Since(d.api.started).Seconds()), "node": d.cl.ID(),
			"error": "this cluster node lost NATS: it runs no agent until it reconnects"})
		return
	}
	out := map[string]any{"status": "ok", "version": d.cfg.Version, "uptimeSeconds": int64(time.Since(d.api.started).Seconds())}
	if d.cl != nil {
		out["node"] = d.cl.ID()
	}
	writeJSON(w, http.StatusOK, out)
}

// agentKeyOK says whether a path's agent key can be an id or a name: a UUID
// or a name of at most 128 characters without control characters.
func agentKeyOK(key string) bool {
	if key == "" || len(key) > 512 || !utf8.ValidString(key) || utf8.RuneCountInString(key) > 128 {
		return false
	}
	for _, r := range key {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

func (d *Daemon) agentFor(w http.ResponseWriter, r *http.Request) *AgentRuntime {
	a := d.agentHere(w, r)
	if a != nil && d.cl != nil && d.forward(w, r, a) {
		return nil
	}
	return a
}

// agentHere is the agent of the request's path as this node lists it,
// never forwarded.
func (d *Daemon) agentHere(w http.ResponseWriter, r *http.Request) *AgentRuntime {
	key := r.PathValue("agentId")
	if !agentKeyOK(key) {
		writeError(w, http.StatusBadRequest, "INVALID_ID", fmt.Sprintf("%q is not an agent id or name (a UUID, or a name of 1 to 128 characters without control characters)", safeText(key, 60)))
		return nil
	}
	a := d.Agent(key)
	if a == nil {
		writeError(w, http.StatusNotFound, "AGENT_NOT_FOUND", fmt.Sprintf("no agent with id or name %q", safeText(key, 128)))
		return nil
	}
	// An agent the daemon is still starting is waited for.
	return d.waitStarted(r, a)
}

// uuidParam reads a path or query value that must be a UUID; an empty
// optional one is "".
func uuidParam(w http.ResponseWriter, name, v string, required bool) (string, bool) {
	if v == "" && !required {
		return "", true
	}
	if !sdk.IsUUID(v) {
		writeError(w, http.StatusBadRequest, "INVALID_ID", fmt.Sprintf("%q must be a UUID, got %q", name, safeText(v, 60)))
		return "", false
	}
	return strings.ToLower(v), true
}

// intParam reads an optional integer query value within [min, max].
func intParam(w http.ResponseWriter, r *http.Request, name string, def, min, max int) (int, bool) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < min || n > max {
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST", fmt.Sprintf("%q must be a whole number from %d to %d, got %q", name, min, max, safeText(s, 40)))
		return 0, false
	}
	return n, true
}

type messageRequest struct {
	Text     string `json:"text"`
	UserName string `json:"userName"`
	RoomID   string `json:"roomId"`
}

// maxText bounds a message's text, in bytes.
const maxText = 64 << 10

// validate checks a message request and fills its defaults.
func (m *messageRequest) validate() error {
	if strings.TrimSpace(m.Text) == "" {
		return errors.New(`"text" is required and must not be empty`)
	}
	if len(m.Text) > maxText {
		return fmt.Errorf(`"text" is %d bytes; at most %d`, len(m.Text), maxText)
	}
	if !utf8.ValidString(m.Text) || strings.ContainsRune(m.Text, 0) {
		return errors.New(`"text" must be valid UTF-8 without NUL characters`)
	}
	if m.UserName == "" {
		m.UserName = "user"
	}
	if !agentKeyOK(m.UserName) {
		return fmt.Errorf(`"userName" must be 1 to 128 characters without control characters, got %q`, safeText(m.UserName, 60))
	}
	if m.RoomID != "" {
		if !sdk.IsUUID(m.RoomID) {
			return fmt.Errorf(`"roomId" must be a UUID, got %q`, safeText(m.RoomID, 60))
		}
		m.RoomID = strings.ToLower(m.RoomID)
	}
	return nil
}

type replyJSON struct {
	ID      string   `json:"id"`
	Text    string   `json:"text"`
	Actions []string `json:"actions"`
}

func (d *Daemon) handleMessage(w http.ResponseWriter, r *http.Request) {
	// In a cluster the message goes through the stream to the agent's
	// node (deliver), not through request forwarding.
	a := d.agentHere(w, r)
	if a == nil {
		return
	}
	var req messageRequest
	if !d.decodeBody(w, r, &req) {
		return
	}
	if err := req.validate(); err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST", err.Error())
		return
	}
	in := d.apiIncoming(a, req)
	var res *messageResult
	var replayed bool
	var err error
	if keys := r.Header.Values("Idempotency-Key"); len(keys) > 0 {
		key := keys[0]
		if kerr := idempotencyKeyOK(key, maxIdempotencyKey); kerr != nil || len(keys) > 1 {
			if kerr == nil {
				kerr = errors.New("must be sent once")
			}
			writeError(w, http.StatusBadRequest, "INVALID_REQUEST", "the Idempotency-Key header "+kerr.Error())
			return
		}
		in.messageID = keyedMessageID(a, req.UserName, key)
		res, replayed, err = d.deliverOnce(r.Context(), a, in, key, req.UserName, nil)
	} else {
		res, err = d.deliver(r.Context(), a, in)
	}
	switch {
	case errors.Is(err, ErrIdempotencyKeyReused):
		writeError(w, http.StatusUnprocessableEntity, "IDEMPOTENCY_KEY_REUSED", "Idempotency-Key "+err.Error())
		return
	case err != nil:
		code, errCode, msg := messageFailure(a, err)
		var rf *remoteFailure
		switch {
		case errCode == "DATABASE_UNAVAILABLE":
			w.Header().Set("Retry-After", strconv.Itoa(dbRetryAfter))
		case errors.As(err, &rf) && rf.retryAfter > 0:
			w.Header().Set("Retry-After", strconv.Itoa(rf.retryAfter))
		}
		writeError(w, code, errCode, msg)
		return
	}
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, http.StatusOK, res.data())
}

// messageFailure decides how a message that failed is answered: its
// status, error code and message.
func messageFailure(a *AgentRuntime, err error) (int, string, string) {
	var rf *remoteFailure
	if errors.As(err, &rf) {
		return rf.status, rf.code, rf.msg
	}
	if st, _ := a.Status(); st != AgentRunning {
		return http.StatusServiceUnavailable, "AGENT_NOT_RUNNING", err.Error()
	}
	if down := a.databaseDown(); down != nil {
		return http.StatusServiceUnavailable, "DATABASE_UNAVAILABLE", fmt.Sprintf(
			"the message was not handled: the database is unavailable (%v); send it again in a few seconds", down)
	}
	switch {
	case errors.Is(err, ErrPluginCrashed):
		return http.StatusBadGateway, "PLUGIN_CRASHED", err.Error()
	case errors.Is(err, sdk.ErrUnavailable):
		return http.StatusBadGateway, "PLUGIN_UNAVAILABLE", err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout, "TIMEOUT", err.Error()
	}
	return http.StatusInternalServerError, "MESSAGE_FAILED", err.Error()
}

// apiIncoming gives an API user a stable entity and, unless they name a
// room, a stable DM room with the agent.
func (d *Daemon) apiIncoming(a *AgentRuntime, req messageRequest) *incoming {
	room := req.RoomID
	if room == "" {
		room = apiRoomID(a, req.UserName)
	}
	return &incoming{
		source: "api", messageID: contract.NewID(), entityID: sdk.CreateUniqueUUID(a.ID, "api:"+req.UserName),
		roomID: room, worldID: sdk.CreateUniqueUUID(a.ID, "api"), channelID: room, serverID: "api",
		names: []string{req.UserName}, entityMeta: mustJSON(map[string]any{"api": map[string]any{"userName": req.UserName}}),
		roomName: "API chat with " + req.UserName, worldName: "API", channelType: string(sdk.ChannelDM),
		createdAt: time.Now().UnixMilli(), content: &pb.Content{Text: req.Text, Source: "api"},
	}
}

// apiRoomID is the DM room of an API (or web, or CLI) user with an agent.
func apiRoomID(a *AgentRuntime, userName string) string { return UserRoomID(a.ID, userName) }

// UserRoomID is the room of the direct conversation between an agent and a
// user of the API, the WebSocket, the web page or `agenthost chat` who
// names no room: the same user name is the same conversation everywhere.
func UserRoomID(agentID, userName string) string {
	return sdk.CreateUniqueUUID(agentID, "api-dm:"+userName)
}

// decodeBody reads a JSON object into v: at most the configured size,
// unknown fields refused, one object only.
func (d *Daemon) decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	max := int64(defaultMaxBody)
	if d.api != nil {
		max = d.api.cfg.maxBody
	}
	r.Body = http.MaxBytesReader(w, r.Body, max)
	code, errCode, msg := decodeJSON(r.Body, v, max)
	if code != 0 {
		writeError(w, code, errCode, msg)
		return false
	}
	return true
}

// decodeJSON is the request decoding shared by every route and fuzzed on
// its own: it returns a status, an error code and a message, or 0 when v
// holds the request.
func decodeJSON(body io.Reader, v any, max int64) (int, string, string) {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		var syntax *json.SyntaxError
		var typ *json.UnmarshalTypeError
		var netErr net.Error
		switch {
		case errors.As(err, &tooBig):
			return http.StatusRequestEntityTooLarge, "BODY_TOO_LARGE", fmt.Sprintf("request body is over %d bytes", max)
		case errors.As(err, &netErr) && netErr.Timeout():
			return http.StatusRequestTimeout, "REQUEST_TIMEOUT", "the request body did not arrive in time; send it whole, faster"
		case errors.Is(err, io.EOF):
			return http.StatusBadRequest, "INVALID_REQUEST", "request body is empty; send a JSON object"
		case errors.As(err, &syntax):
			return http.StatusBadRequest, "INVALID_JSON", fmt.Sprintf("request body is not valid JSON (at byte %d): %s", syntax.Offset, syntax.Error())
		case errors.Is(err, io.ErrUnexpectedEOF):
			return http.StatusBadRequest, "INVALID_JSON", "request body is not valid JSON: it ends too early"
		case errors.As(err, &typ):
			field := typ.Field
			if field == "" {
				return http.StatusBadRequest, "INVALID_REQUEST", fmt.Sprintf("request body must be a JSON object, got %s", typ.Value)
			}
			return http.StatusBadRequest, "INVALID_REQUEST", fmt.Sprintf("field %q must be %s, got %s", field, jsonKind(typ.Type.Kind().String()), typ.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return http.StatusBadRequest, "INVALID_REQUEST", "request body has an " + strings.TrimPrefix(err.Error(), "json: ") + " for this route"
		default:
			return http.StatusBadRequest, "INVALID_REQUEST", "request body is not valid JSON for this route: " + safeText(err.Error(), 300)
		}
	}
	if dec.More() {
		return http.StatusBadRequest, "INVALID_JSON", "request body has data after the JSON object"
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); err != io.EOF {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return http.StatusRequestEntityTooLarge, "BODY_TOO_LARGE", fmt.Sprintf("request body is over %d bytes", max)
		}
		return http.StatusBadRequest, "INVALID_JSON", "request body has data after the JSON object"
	}
	return 0, "", ""
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "int", "int32", "int64", "uint", "uint32", "uint64", "float32", "float64":
		return "a number"
	case "slice", "array":
		return "a list"
	case "map", "struct":
		return "an object"
	}
	return "another type"
}

func (d *Daemon) handleMemories(w http.ResponseWriter, r *http.Request) {
	a := d.agentFor(w, r)
	if a == nil {
		return
	}
	roomID, ok := uuidParam(w, "roomId", r.URL.Query().Get("roomId"), false)
	if !ok {
		return
	}
	d.listMemories(w, r, a, roomID)
}

func (d *Daemon) listMemories(w http.ResponseWriter, r *http.Request, a *AgentRuntime, roomID string) {
	q := r.URL.Query()
	count, ok := intParam(w, r, "count", 50, 1, 1000)
	if !ok {
		return
	}
	if q.Get("limit") != "" {
		if count, ok = intParam(w, r, "limit", 50, 1, 1000); !ok {
			return
		}
	}
	entityID, ok := uuidParam(w, "entityId", q.Get("entityId"), false)
	if !ok {
		return
	}
	table := q.Get("tableName")
	if table == "" {
		table = sdk.TableMessages
	}
	if !tableNameOK(table) {
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST", fmt.Sprintf(`"tableName" must be a name of letters, digits and _ (at most 64), got %q`, safeText(table, 60)))
		return
	}
	var end int64
	if s := q.Get("before"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			writeError(w, http.StatusBadRequest, "INVALID_REQUEST", `"before" must be a time in Unix milliseconds`)
			return
		}
		end = n - 1
	}
	p, c, err := a.db(r.Context())
	if err != nil {
		writeDBUnavailable(w, err)
		return
	}
	res, err := c.db.GetMemories(r.Context(), &pb.GetMemoriesRequest{AgentId: a.ID, RoomId: roomID, EntityId: entityID, Table: table, Count: int32(count), End: end})
	if err != nil {
		writeDBError(w, p.callErr(c, "GetMemories", err))
		return
	}
	out := make([]map[string]any, 0, len(res.GetMemories()))
	for _, m := range res.GetMemories() {
		out = append(out, memoryJSON(m))
	}
	writeJSON(w, http.StatusOK, map[string]any{"memories": out})
}

func tableNameOK(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '-' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9')) {
			return false
		}
	}
	return true
}

// writeDBError answers a failed database call: the plugin's own "invalid"
// and "not found" are the client's fault, the rest the database's.
func writeDBError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, sdk.ErrInvalid):
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST", err.Error())
	case errors.Is(err, sdk.ErrNotFound):
		writeError(w, http.StatusNotFound, "NOT_FOUND", err.Error())
	default:
		writeDBUnavailable(w, err)
	}
}

// dbRetryAfter is the Retry-After, in seconds, of an answer that the
// database is unavailable: the sql plugin reconnects as soon as it is back.
const dbRetryAfter = 5

// writeDBUnavailable answers a request that needs the database while it
// cannot be reached: 503, worth retrying.
func writeDBUnavailable(w http.ResponseWriter, err error) {
	w.Header().Set("Retry-After", strconv.Itoa(dbRetryAfter))
	writeError(w, http.StatusServiceUnavailable, "DATABASE_UNAVAILABLE",
		fmt.Sprintf("the database is unavailable; try again in a few seconds: %v", err))
}

// databaseDown asks the agent's database plugin for the agent's record and
// returns why it cannot answer, or nil when it can. A failed message is
// checked with it: the database being down shows up first in whichever
// plugin touched it (bootstrap storing the message, say), and the client
// should hear that it is the database, and that retrying later works.
func (a *AgentRuntime) databaseDown() error { return probeDatabase(a.db, a.ID) }

// storeDown is databaseDown for the database of the stored agents.
func (d *Daemon) storeDown() error {
	return probeDatabase(d.storeConn, sdk.StringToUUID("agenthost:probe"))
}

func probeDatabase(conn func(context.Context) (*PluginProcess, *pluginConn, error), agentID string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	p, c, err := conn(ctx)
	if err != nil {
		return err
	}
	if _, err := c.db.GetAgent(ctx, &pb.GetAgentRequest{Id: agentID}); err != nil {
		err = p.callErr(c, "GetAgent", err)
		if contract.Retryable(err) {
			return err
		}
	}
	return nil
}

// memoryJSON shapes a memory as elizaOS's API does.
func memoryJSON(m *pb.Memory) map[string]any {
	c := m.GetContent()
	content := map[string]any{}
	if ex := c.GetExtraJson(); len(ex) > 0 {
		_ = json.Unmarshal(ex, &content)
	}
	set := func(k, v string) {
		if v != "" {
			content[k] = v
		}
	}
	set("text", c.GetText())
	set("thought", c.GetThought())
	set("source", c.GetSource())
	set("inReplyTo", c.GetInReplyTo())
	set("channelType", c.GetChannelType())
	set("url", c.GetUrl())
	if len(c.GetActions()) > 0 {
		content["actions"] = c.GetActions()
	}
	if len(c.GetProviders()) > 0 {
		content["providers"] = c.GetProviders()
	}
	out := map[string]any{
		"id": m.GetId(), "entityId": m.GetEntityId(), "agentId": m.GetAgentId(), "roomId": m.GetRoomId(),
		"createdAt": m.GetCreatedAt(), "content": content, "unique": m.GetUnique(),
	}
	if m.GetTable() != "" {
		out["type"] = m.GetTable()
	}
	if m.GetWorldId() != "" {
		out["worldId"] = m.GetWorldId()
	}
	if len(m.GetMetadataJson()) > 0 {
		var md map[string]any
		if json.Unmarshal(m.GetMetadataJson(), &md) == nil {
			out["metadata"] = md
		}
	}
	return out
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
