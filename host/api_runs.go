package host

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"time"

	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

// The timeline: the host writes a "run" log entry when a message's run
// ends (start, end, duration, status), next to the "useModel:*", "action"
// and "evaluator" entries written as they happen, each with the runId in
// its body. The runs API joins them.

// runStarted announces a run and returns what to call when it ends.
func (d *Daemon) runStarted(r *run) func(error) {
	start := time.Now()
	d.logs.runBegan()
	a := r.agent
	roomID := r.message.GetRoomId()
	d.api.hub.roomEvent(a.ID, roomID, map[string]any{"type": "thinking", "agentId": a.ID, "agentName": a.Name,
		"roomId": roomID, "runId": r.id, "messageId": r.message.GetId()})
	return func(err error) {
		end := time.Now()
		took := end.Sub(start)
		st := "completed"
		if err != nil {
			st = "error"
		}
		r.mu.Lock()
		n := len(r.replies)
		r.mu.Unlock()
		body := map[string]any{"runId": r.id, "messageId": r.message.GetId(), "source": r.source, "status": st,
			"startedAt": start.UnixMilli(), "endedAt": end.UnixMilli(), "durationMs": took.Milliseconds(), "replies": n,
			"text": clip(r.message.GetContent().GetText(), 200)}
		if err != nil {
			body["error"] = err.Error()
		}
		d.logs.add(a, &pb.LogEntry{AgentId: a.ID, RoomId: roomID, EntityId: r.message.GetEntityId(), Type: "run",
			BodyJson: mustJSON(body), CreatedAt: end.UnixMilli()})
		d.logs.runEnded()
		d.api.metrics.runFinished(a.Name, r.source, err, took)
		ev := map[string]any{"type": "run_finished", "agentId": a.ID, "roomId": roomID, "runId": r.id, "status": st,
			"durationMs": took.Milliseconds(), "replies": n, "messageId": r.message.GetId()}
		if err != nil {
			ev["error"] = err.Error()
		}
		d.api.hub.roomEvent(a.ID, roomID, ev)
	}
}

// recordEvaluators writes one "evaluator" entry per evaluator outcome.
func (d *Daemon) recordEvaluators(a *AgentRuntime, req *pb.EvaluateRequest, out *pb.EvaluateResponse, start time.Time) {
	took := time.Since(start).Milliseconds()
	plugins := map[string]string{}
	if a.registry() != nil {
		for _, e := range a.registry().Evaluators {
			plugins[e.Spec.GetName()] = e.Plugin.Name()
		}
	}
	for _, o := range out.GetOutcomes() {
		d.logs.add(a, &pb.LogEntry{AgentId: a.ID, RoomId: req.GetMessage().GetRoomId(), EntityId: req.GetMessage().GetEntityId(),
			Type: "evaluator", CreatedAt: time.Now().UnixMilli(), BodyJson: mustJSON(map[string]any{
				"evaluator": o.GetName(), "plugin": plugins[o.GetName()], "runId": req.GetRunId(), "ran": o.GetRan(),
				"error": o.GetError(), "durationMs": took, "messageId": req.GetMessage().GetId(),
			})})
	}
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

func logJSON(l *pb.LogEntry) map[string]any {
	var body any
	if len(l.GetBodyJson()) > 0 {
		_ = json.Unmarshal(l.GetBodyJson(), &body)
	}
	return map[string]any{"id": l.GetId(), "agentId": l.GetAgentId(), "entityId": l.GetEntityId(), "roomId": l.GetRoomId(),
		"type": l.GetType(), "body": body, "createdAt": l.GetCreatedAt()}
}

func (d *Daemon) getLogs(ctx context.Context, a *AgentRuntime, roomID, typ string, count int) ([]*pb.LogEntry, error) {
	p, c, err := a.db(ctx)
	if err != nil {
		return nil, err
	}
	res, err := c.db.GetLogs(ctx, &pb.GetLogsRequest{AgentId: a.ID, RoomId: roomID, Type: typ, Count: int32(count)})
	if err != nil {
		return nil, p.callErr(c, "GetLogs", err)
	}
	return res.GetLogs(), nil
}

func (d *Daemon) handleLogs(w http.ResponseWriter, r *http.Request) {
	a := d.agentFor(w, r)
	if a == nil {
		return
	}
	q := r.URL.Query()
	roomID, ok := uuidParam(w, "roomId", q.Get("roomId"), false)
	if !ok {
		return
	}
	count, ok := intParam(w, r, "count", 50, 1, 1000)
	if !ok {
		return
	}
	typ := q.Get("type")
	if typ != "" && !logTypeOK(typ) {
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST", `"type" must be a log type such as run, action, evaluator or useModel:TEXT_LARGE`)
		return
	}
	exclude := map[string]bool{}
	for _, t := range strings.Split(q.Get("excludeTypes"), ",") {
		if t = strings.TrimSpace(t); t != "" {
			exclude[t] = true
		}
	}
	logs, err := d.getLogs(r.Context(), a, roomID, typ, count)
	if err != nil {
		writeDBError(w, err)
		return
	}
	out := make([]map[string]any, 0, len(logs))
	for _, l := range logs {
		if !exclude[l.GetType()] {
			out = append(out, logJSON(l))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"logs": out})
}

// handleDeleteLog deletes one of the agent's timeline entries.
func (d *Daemon) handleDeleteLog(w http.ResponseWriter, r *http.Request) {
	d.deleteOne(w, r, "logId", "LOG_NOT_FOUND", "log entry", "DeleteLog",
		func(ctx context.Context, db pb.DatabaseClient, agentID, id string) (int64, error) {
			res, err := db.DeleteLog(ctx, &pb.DeleteLogRequest{AgentId: agentID, Id: id})
			return res.GetDeleted(), err
		})
}

func logTypeOK(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '-' || r == ':' || r == '.' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9')) {
			return false
		}
	}
	return true
}

// runJSON is one run with its steps.
type runJSON struct {
	RunID      string           `json:"runId"`
	MessageID  string           `json:"messageId,omitempty"`
	RoomID     string           `json:"roomId,omitempty"`
	EntityID   string           `json:"entityId,omitempty"`
	Source     string           `json:"source,omitempty"`
	Status     string           `json:"status"`
	Text       string           `json:"text,omitempty"`
	StartedAt  int64            `json:"startedAt"`
	EndedAt    int64            `json:"endedAt,omitempty"`
	DurationMs int64            `json:"durationMs"`
	Replies    int              `json:"replies"`
	Error      string           `json:"error,omitempty"`
	ModelCalls []map[string]any `json:"modelCalls"`
	Actions    []map[string]any `json:"actions"`
	Evaluators []map[string]any `json:"evaluators"`
	// Providers lists the providers that failed, timed out or answered
	// too much, and were left out.
	Providers []map[string]any `json:"providers"`
}

// maxTimeline bounds how many log entries one runs request reads.
const maxTimeline = 5000

// collectRuns joins run entries with the steps logged under their ids.
// Prompts and responses are kept only when full is set.
func collectRuns(runLogs, steps []*pb.LogEntry, full bool) []*runJSON {
	var out []*runJSON
	byID := map[string]*runJSON{}
	for _, l := range runLogs {
		var b struct {
			RunID      string `json:"runId"`
			MessageID  string `json:"messageId"`
			Source     string `json:"source"`
			Status     string `json:"status"`
			Text       string `json:"text"`
			StartedAt  int64  `json:"startedAt"`
			EndedAt    int64  `json:"endedAt"`
			DurationMs int64  `json:"durationMs"`
			Replies    int    `json:"replies"`
			Error      string `json:"error"`
		}
		if json.Unmarshal(l.GetBodyJson(), &b) != nil || b.RunID == "" || byID[b.RunID] != nil {
			continue
		}
		r := &runJSON{RunID: b.RunID, MessageID: b.MessageID, RoomID: l.GetRoomId(), EntityID: l.GetEntityId(), Source: b.Source,
			Status: b.Status, Text: b.Text, StartedAt: b.StartedAt, EndedAt: b.EndedAt, DurationMs: b.DurationMs, Replies: b.Replies,
			Error: b.Error, ModelCalls: []map[string]any{}, Actions: []map[string]any{}, Evaluators: []map[string]any{}, Providers: []map[string]any{}}
		byID[b.RunID] = r
		out = append(out, r)
	}
	// Steps come newest first; a run lists them in the order they happened.
	for i := len(steps) - 1; i >= 0; i-- {
		l := steps[i]
		var body map[string]any
		if json.Unmarshal(l.GetBodyJson(), &body) != nil {
			continue
		}
		id, _ := body["runId"].(string)
		r := byID[id]
		if r == nil {
			continue
		}
		body["at"] = l.GetCreatedAt()
		t := l.GetType()
		switch {
		case strings.HasPrefix(t, "useModel:"):
			if !full {
				delete(body, "prompt")
				if s, ok := body["response"].(string); ok {
					body["response"] = clip(s, 160)
				}
			}
			r.ModelCalls = append(r.ModelCalls, body)
		case t == "action":
			r.Actions = append(r.Actions, body)
		case t == "evaluator":
			r.Evaluators = append(r.Evaluators, body)
		case t == "provider":
			r.Providers = append(r.Providers, body)
		}
	}
	return out
}

// inFlight lists the agent's runs that have not ended.
func (d *Daemon) inFlight(a *AgentRuntime, roomID string) []*runJSON {
	d.runs.mu.Lock()
	defer d.runs.mu.Unlock()
	var out []*runJSON
	for _, r := range d.runs.m {
		if r.agent != a || (roomID != "" && r.message.GetRoomId() != roomID) {
			continue
		}
		started := r.message.GetCreatedAt()
		out = append(out, &runJSON{RunID: r.id, MessageID: r.message.GetId(), RoomID: r.message.GetRoomId(), EntityID: r.message.GetEntityId(),
			Source: r.source, Status: "running", Text: clip(r.message.GetContent().GetText(), 200), StartedAt: started,
			DurationMs: time.Now().UnixMilli() - started, ModelCalls: []map[string]any{}, Actions: []map[string]any{}, Evaluators: []map[string]any{},
			Providers: []map[string]any{}})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StartedAt > out[j].StartedAt })
	return out
}

func (d *Daemon) handleRuns(w http.ResponseWriter, r *http.Request) {
	a := d.agentFor(w, r)
	if a == nil {
		return
	}
	roomID, ok := uuidParam(w, "roomId", r.URL.Query().Get("roomId"), false)
	if !ok {
		return
	}
	count, ok := intParam(w, r, "count", 20, 1, 200)
	if !ok {
		return
	}
	runLogs, err := d.getLogs(r.Context(), a, roomID, "run", count)
	if err != nil {
		writeDBError(w, err)
		return
	}
	steps, err := d.getLogs(r.Context(), a, "", "", min(maxTimeline, count*50))
	if err != nil {
		writeDBError(w, err)
		return
	}
	runs := append(d.inFlight(a, roomID), collectRuns(runLogs, steps, false)...)
	if runs == nil {
		runs = []*runJSON{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"runs": runs})
}

func (d *Daemon) handleRun(w http.ResponseWriter, r *http.Request) {
	a := d.agentFor(w, r)
	if a == nil {
		return
	}
	runID, ok := uuidParam(w, "runId", r.PathValue("runId"), true)
	if !ok {
		return
	}
	for _, x := range d.inFlight(a, "") {
		if x.RunID == runID {
			writeJSON(w, http.StatusOK, x)
			return
		}
	}
	runLogs, err := d.getLogs(r.Context(), a, "", "run", 1000)
	if err != nil {
		writeDBError(w, err)
		return
	}
	var mine []*pb.LogEntry
	for _, l := range runLogs {
		if strings.Contains(string(l.GetBodyJson()), runID) {
			mine = append(mine, l)
		}
	}
	if len(mine) == 0 {
		writeError(w, http.StatusNotFound, "RUN_NOT_FOUND", "agent "+a.Name+" has no recent run "+runID)
		return
	}
	steps, err := d.getLogs(r.Context(), a, "", "", maxTimeline)
	if err != nil {
		writeDBError(w, err)
		return
	}
	for _, x := range collectRuns(mine, steps, true) {
		if x.RunID == runID {
			writeJSON(w, http.StatusOK, x)
			return
		}
	}
	writeError(w, http.StatusNotFound, "RUN_NOT_FOUND", "agent "+a.Name+" has no recent run "+runID)
}
