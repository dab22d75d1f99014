package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/agenthost/agenthost/sdk"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/google/uuid"
)

// maxBody bounds a request body; a bigger one is refused, not read.
const maxBody = 1 << 20

// Handler returns the daemon's HTTP API.
func (d *Daemon) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", d.handleHealth)
	mux.HandleFunc("GET /api/agents", d.handleAgents)
	mux.HandleFunc("POST /api/agents/{agentId}/messages", d.handleMessage)
	mux.HandleFunc("GET /api/memory/{agentId}/memories", d.handleMemories)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "NOT_FOUND", fmt.Sprintf("no API route %s %s", r.Method, r.URL.Path))
	})
	return mux
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
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(envelope{Success: true, Data: data})
}

func writeError(w http.ResponseWriter, code int, errCode, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(envelope{Success: false, Error: &errorBody{Code: errCode, Message: msg}})
}

func (d *Daemon) handleHealth(w http.ResponseWriter, r *http.Request) {
	if !d.Healthy() {
		writeError(w, http.StatusServiceUnavailable, "NOT_READY", "not every agent is running yet")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "agents": len(d.Agents()), "version": d.cfg.Version})
}

type agentJSON struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Status string `json:"status"`
}

func (d *Daemon) handleAgents(w http.ResponseWriter, r *http.Request) {
	out := []agentJSON{}
	for _, a := range d.Agents() {
		st, _ := a.Status()
		out = append(out, agentJSON{ID: a.ID, Name: a.Name, Status: string(st)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"agents": out})
}

func (d *Daemon) agentFor(w http.ResponseWriter, r *http.Request) *Agent {
	key := r.PathValue("agentId")
	a := d.Agent(key)
	if a == nil {
		writeError(w, http.StatusNotFound, "AGENT_NOT_FOUND", fmt.Sprintf("no agent with id or name %q", key))
	}
	return a
}

type messageRequest struct {
	Text     string `json:"text"`
	UserName string `json:"userName"`
	RoomID   string `json:"roomId"`
}

type replyJSON struct {
	ID      string   `json:"id"`
	Text    string   `json:"text"`
	Actions []string `json:"actions"`
}

func (d *Daemon) handleMessage(w http.ResponseWriter, r *http.Request) {
	a := d.agentFor(w, r)
	if a == nil {
		return
	}
	var req messageRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if strings.TrimSpace(req.Text) == "" {
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST", `"text" is required and must not be empty`)
		return
	}
	if req.UserName == "" {
		req.UserName = "user"
	}
	if req.RoomID != "" && !sdk.IsUUID(req.RoomID) {
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST", fmt.Sprintf(`"roomId" must be a UUID, got %q`, req.RoomID))
		return
	}
	in := d.apiIncoming(a, req)
	_, replies, err := a.receive(r.Context(), in)
	if err != nil {
		code, errCode := http.StatusInternalServerError, "MESSAGE_FAILED"
		switch {
		case errors.Is(err, ErrPluginCrashed):
			code, errCode = http.StatusBadGateway, "PLUGIN_CRASHED"
		case errors.Is(err, sdk.ErrUnavailable):
			code, errCode = http.StatusBadGateway, "PLUGIN_UNAVAILABLE"
		case errors.Is(err, context.DeadlineExceeded):
			code, errCode = http.StatusGatewayTimeout, "TIMEOUT"
		}
		if st, _ := a.Status(); st != AgentRunning {
			code, errCode = http.StatusServiceUnavailable, "AGENT_NOT_RUNNING"
		}
		writeError(w, code, errCode, err.Error())
		return
	}
	out := []replyJSON{}
	for _, rp := range replies {
		actions := rp.content.GetActions()
		if actions == nil {
			actions = []string{}
		}
		out = append(out, replyJSON{ID: rp.id, Text: rp.content.GetText(), Actions: actions})
	}
	writeJSON(w, http.StatusOK, map[string]any{"messages": out, "roomId": in.roomID, "messageId": in.messageID})
}

// apiIncoming gives an API user a stable entity and, unless they name a
// room, a stable DM room with the agent.
func (d *Daemon) apiIncoming(a *Agent, req messageRequest) *incoming {
	room := req.RoomID
	if room == "" {
		room = sdk.CreateUniqueUUID(a.ID, "api-dm:"+req.UserName)
	}
	return &incoming{
		source: "api", messageID: uuid.NewString(), entityID: sdk.CreateUniqueUUID(a.ID, "api:"+req.UserName),
		roomID: room, worldID: sdk.CreateUniqueUUID(a.ID, "api"), channelID: room, serverID: "api",
		names: []string{req.UserName}, entityMeta: mustJSON(map[string]any{"api": map[string]any{"userName": req.UserName}}),
		roomName: "API chat with " + req.UserName, worldName: "API", channelType: string(sdk.ChannelDM),
		createdAt: time.Now().UnixMilli(), content: &pb.Content{Text: req.Text, Source: "api"},
	}
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			writeError(w, http.StatusRequestEntityTooLarge, "BODY_TOO_LARGE", fmt.Sprintf("request body is over %d bytes", maxBody))
		case errors.Is(err, io.EOF):
			writeError(w, http.StatusBadRequest, "INVALID_REQUEST", "request body is empty; send a JSON object")
		default:
			writeError(w, http.StatusBadRequest, "INVALID_REQUEST", "request body is not valid JSON for this route: "+err.Error())
		}
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST", "request body has data after the JSON object")
		return false
	}
	return true
}

func (d *Daemon) handleMemories(w http.ResponseWriter, r *http.Request) {
	a := d.agentFor(w, r)
	if a == nil {
		return
	}
	q := r.URL.Query()
	roomID := q.Get("roomId")
	if roomID != "" && !sdk.IsUUID(roomID) {
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST", fmt.Sprintf(`"roomId" must be a UUID, got %q`, roomID))
		return
	}
	count := 50
	if s := q.Get("count"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "INVALID_REQUEST", `"count" must be a number from 1 to 1000`)
			return
		}
		count = n
	}
	table := q.Get("tableName")
	if table == "" {
		table = sdk.TableMessages
	}
	p, c, err := a.db(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "DATABASE_UNAVAILABLE", err.Error())
		return
	}
	res, err := c.db.GetMemories(r.Context(), &pb.GetMemoriesRequest{AgentId: a.ID, RoomId: roomID, Table: table, Count: int32(count)})
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "DATABASE_UNAVAILABLE", p.callErr(c, "GetMemories", err).Error())
		return
	}
	out := make([]map[string]any, 0, len(res.GetMemories()))
	for _, m := range res.GetMemories() {
		out = append(out, memoryJSON(m))
	}
	writeJSON(w, http.StatusOK, map[string]any{"memories": out})
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
