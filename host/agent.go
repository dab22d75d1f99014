package host

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/agenthost/agenthost/sdk"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// AgentStatus is where an agent is in its life.
type AgentStatus string

// The states of an agent.
const (
	AgentStarting AgentStatus = "starting"
	AgentRunning  AgentStatus = "running"
	AgentStopped  AgentStatus = "stopped"
	AgentFailed   AgentStatus = "failed"
)

// Agent is one running agent: its character, its plugins' registry and the
// runs in flight.
type Agent struct {
	ID        string
	Name      string
	Character *sdk.Character

	d        *Daemon
	log      hclog.Logger
	charJSON []byte
	settings map[string]string
	reg      *registry

	mu     sync.Mutex
	status AgentStatus
	err    error

	states *stateCache
	// ensured skips storing a conversation's sender and room again.
	ensured ensuredCache
}

// Status reports the agent's status and, if it failed, why.
func (a *Agent) Status() (AgentStatus, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.status, a.err
}

func (a *Agent) setStatus(s AgentStatus, err error) {
	a.mu.Lock()
	a.status, a.err = s, err
	a.mu.Unlock()
}

// Plugins names the agent's plugins in order.
func (a *Agent) Plugins() []string {
	if a.reg == nil {
		return nil
	}
	out := make([]string, len(a.reg.plugins))
	for i, p := range a.reg.plugins {
		out[i] = p.Name()
	}
	return out
}

// db returns the database plugin's client.
func (a *Agent) db(ctx context.Context) (*Plugin, *pluginConn, error) {
	if a.reg == nil || a.reg.db == nil {
		return nil, nil, fmt.Errorf("agent %s has no database plugin", a.Name)
	}
	c, err := a.reg.db.conn(ctx)
	return a.reg.db, c, err
}

// modelPlugin finds the plugin that serves the request's model type for
// this agent and stamps the request with the agent.
func (a *Agent) modelPlugin(ctx context.Context, req *pb.ModelRequest) (*Plugin, *pluginConn, error) {
	p, err := a.reg.model(req.GetType(), req.GetProvider())
	if err != nil {
		return nil, nil, fmt.Errorf("agent %s: %w", a.Name, err)
	}
	c, err := p.conn(ctx)
	if err != nil {
		return nil, nil, err
	}
	req.AgentId = a.ID
	return p, c, nil
}

// useModel calls the best model of a type and records the call.
func (a *Agent) useModel(ctx context.Context, req *pb.ModelRequest) (*pb.ModelResponse, error) {
	p, c, err := a.modelPlugin(ctx, req)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	ctx, cancel := ensureDeadline(ctx, sdk.DefaultRunTimeout)
	defer cancel()
	res, err := c.plugin.UseModel(ctx, req)
	took := time.Since(start)
	if err != nil {
		err = p.callErr(c, "UseModel "+req.GetType(), err)
		a.recordModel(req, nil, p.Name(), took, err)
		return nil, err
	}
	res.Provider = p.Name()
	a.recordModel(req, res, p.Name(), took, nil)
	return res, nil
}

// streamModel is useModel with the text passed to send as the model makes
// it; the last chunk carries the whole response.
func (a *Agent) streamModel(ctx context.Context, req *pb.ModelRequest, send func(*pb.ModelChunk) error) error {
	p, c, err := a.modelPlugin(ctx, req)
	if err != nil {
		return err
	}
	start := time.Now()
	ctx, cancel := ensureDeadline(ctx, sdk.DefaultRunTimeout)
	defer cancel()
	stream, err := c.plugin.StreamModel(ctx, req)
	if err != nil {
		err = p.callErr(c, "StreamModel "+req.GetType(), err)
		a.recordModel(req, nil, p.Name(), time.Since(start), err)
		return err
	}
	for {
		chunk, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("plugin %s ended the %s stream without a final answer", p.Name(), req.GetType())
			} else {
				err = p.callErr(c, "StreamModel "+req.GetType(), err)
			}
			a.recordModel(req, nil, p.Name(), time.Since(start), err)
			return err
		}
		if f := chunk.GetFinal(); f != nil {
			f.Provider = p.Name()
			a.recordModel(req, f, p.Name(), time.Since(start), nil)
			return send(chunk)
		}
		if err := send(chunk); err != nil {
			return err
		}
	}
}

// recordModel writes the model call to the timeline without holding up the
// caller.
func (a *Agent) recordModel(req *pb.ModelRequest, res *pb.ModelResponse, provider string, took time.Duration, err error) {
	body := map[string]any{
		"modelType": req.GetType(), "provider": provider, "runId": req.GetRunId(),
		"durationMs": took.Milliseconds(),
	}
	if req.GetType() == sdk.ModelTextEmbedding {
		body["response"] = "[array]"
	} else {
		body["prompt"] = req.GetPrompt()
		if res != nil {
			body["response"] = res.GetText()
		}
	}
	if res != nil {
		body["model"] = res.GetModel()
		if u := res.GetUsage(); u != nil {
			body["tokens"] = map[string]any{"prompt": u.GetPromptTokens(), "completion": u.GetCompletionTokens(), "total": u.GetTotalTokens()}
		}
	}
	if err != nil {
		body["error"] = err.Error()
	}
	a.d.logs.add(a, &pb.LogEntry{AgentId: a.ID, Type: "useModel:" + req.GetType(), BodyJson: mustJSON(body), CreatedAt: time.Now().UnixMilli()})
	a.d.api.metrics.modelCall(provider, req.GetType(), res, err, took)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"encodeError": err.Error()})
	}
	return b
}

// composeState runs the selected providers, batched into one call per
// plugin, and merges their results in position order.
func (a *Agent) composeState(ctx context.Context, req *pb.ComposeStateRequest) (*pb.State, error) {
	include := map[string]bool{}
	for _, n := range req.GetInclude() {
		include[n] = true
	}
	var selected []providerEntry
	for _, e := range a.reg.providers {
		name := e.spec.GetName()
		if req.GetOnlyInclude() {
			if include[name] {
				selected = append(selected, e)
			}
			continue
		}
		if include[name] || (!e.spec.GetPrivate() && !e.spec.GetDynamic()) {
			selected = append(selected, e)
		}
	}
	msgID := req.GetMessage().GetId()
	var cached *pb.State
	if !req.GetSkipCache() && msgID != "" {
		cached = a.states.get(msgID)
	}
	byPlugin := map[*Plugin][]string{}
	var order []*Plugin
	for _, e := range selected {
		if _, ok := byPlugin[e.plugin]; !ok {
			order = append(order, e.plugin)
		}
		byPlugin[e.plugin] = append(byPlugin[e.plugin], e.spec.GetName())
	}
	results := map[string]*pb.ProviderResult{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	ctx, cancel := ensureDeadline(ctx, sdk.DefaultCallTimeout)
	defer cancel()
	for _, p := range order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			names := byPlugin[p]
			c, err := p.conn(ctx)
			var res *pb.GetProvidersResponse
			if err == nil {
				res, err = c.plugin.GetProviders(ctx, &pb.GetProvidersRequest{AgentId: a.ID, Names: names,
					Message: req.GetMessage(), State: cached, RunId: req.GetRunId()})
				if err != nil {
					err = p.callErr(c, "GetProviders", err)
				}
			}
			if err != nil {
				// A failing provider contributes nothing; the message is
				// still answered.
				a.log.Warn("providers failed", "plugin", p.Name(), "providers", strings.Join(names, ","), "error", err)
				return
			}
			mu.Lock()
			for _, r := range res.GetResults() {
				if r.GetError() != "" {
					a.log.Warn("provider failed", "plugin", p.Name(), "provider", r.GetName(), "error", r.GetError())
					continue
				}
				results[r.GetName()] = r
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	st := mergeState(cached, selected, results, a.reg.actionValues())
	if msgID != "" {
		a.states.put(msgID, st)
	}
	return st, nil
}

// mergeState joins provider results in position order. Values of earlier
// cached providers stay unless a selected provider sets them again.
func mergeState(cached *pb.State, selected []providerEntry, results map[string]*pb.ProviderResult, extra map[string]any) *pb.State {
	values := map[string]any{}
	for k, v := range extra {
		values[k] = v
	}
	data := map[string]any{}
	providersData := map[string]any{}
	if cached != nil {
		_ = json.Unmarshal(cached.GetValuesJson(), &values)
		_ = json.Unmarshal(cached.GetDataJson(), &data)
		if pd, ok := data["providers"].(map[string]any); ok {
			providersData = pd
		}
	}
	var texts []string
	for _, e := range selected {
		r := results[e.spec.GetName()]
		if r == nil {
			continue
		}
		if t := strings.TrimSpace(r.GetText()); t != "" {
			texts = append(texts, r.GetText())
		}
		var v map[string]any
		if len(r.GetValuesJson()) > 0 && json.Unmarshal(r.GetValuesJson(), &v) == nil {
			for k, x := range v {
				values[k] = x
			}
		}
		entry := map[string]any{"text": r.GetText()}
		if v != nil {
			entry["values"] = v
		}
		var dd map[string]any
		if len(r.GetDataJson()) > 0 && json.Unmarshal(r.GetDataJson(), &dd) == nil {
			entry["data"] = dd
		}
		providersData[e.spec.GetName()] = entry
	}
	text := strings.Join(texts, "\n\n")
	values["providers"] = text
	data["providers"] = providersData
	return &pb.State{ValuesJson: mustJSON(values), DataJson: mustJSON(data), Text: text}
}

// processActions runs the actions the responses name, in order, each
// result handed to the next: the state an action gets holds the plan, the
// results so far (data.actionPlan, data.actionResults) and the values the
// earlier actions returned, and so does the message's cached state, where
// the ACTION_STATE provider finds them. Each action is announced
// (ACTION_STARTED, ACTION_COMPLETED), logged, and recorded as an
// action_result memory of the room. A name the model repeats in one
// response runs once. An unknown or failing action is recorded and the
// chain goes on.
func (a *Agent) processActions(ctx context.Context, req *pb.ProcessActionsRequest) (*pb.ProcessActionsResponse, error) {
	type step struct {
		name  string
		entry *actionEntry
		resp  *pb.Memory
	}
	var steps []step
	for _, resp := range req.GetResponses() {
		seen := map[string]bool{}
		for _, name := range resp.GetContent().GetActions() {
			entry := a.reg.resolveAction(name)
			key := "?" + normalizeAction(name)
			if entry != nil {
				key, name = entry.spec.GetName(), entry.spec.GetName()
			}
			if seen[key] {
				continue
			}
			seen[key] = true
			steps = append(steps, step{name: name, entry: entry, resp: resp})
		}
	}
	msg := req.GetMessage()
	values, data := map[string]any{}, map[string]any{}
	_ = json.Unmarshal(req.GetState().GetValuesJson(), &values)
	_ = json.Unmarshal(req.GetState().GetDataJson(), &data)
	planSteps := make([]map[string]any, len(steps))
	for i, s := range steps {
		planSteps[i] = map[string]any{"action": s.name, "status": "pending"}
	}
	thought := ""
	if rs := req.GetResponses(); len(rs) > 0 {
		thought = rs[0].GetContent().GetThought()
	}
	plan := map[string]any{"runId": req.GetRunId(), "totalSteps": len(steps), "currentStep": 0, "steps": planSteps,
		"thought": thought, "startTime": time.Now().UnixMilli()}
	out := &pb.ProcessActionsResponse{}
	var previous []*pb.ActionOutcome
	var results []any
	for i, s := range steps {
		plan["currentStep"] = i + 1
		planSteps[i]["status"] = "running"
		data["actionPlan"], data["actionResults"] = plan, results
		a.states.merge(msg.GetId(), map[string]any{"actionPlan": plan, "actionResults": results})
		start := time.Now()
		ev := map[string]any{"actionId": uuid.NewString(), "actionName": s.name, "runId": req.GetRunId(), "messageId": msg.GetId(),
			"roomId": msg.GetRoomId(), "startTime": start.UnixMilli(), "planStep": fmt.Sprintf("%d/%d", i+1, len(steps))}
		a.hostEvent(ctx, sdk.EventActionStarted, req.GetRunId(), msg, ev)
		var res *pb.ActionResult
		plugin := ""
		if s.entry == nil {
			res = &pb.ActionResult{Success: false, Error: fmt.Sprintf("no action named %q among %d registered actions", s.name, len(a.reg.actions))}
		} else {
			plugin = s.entry.plugin.Name()
			st := &pb.State{ValuesJson: mustJSON(values), DataJson: mustJSON(data), Text: req.GetState().GetText()}
			opts := mustJSON(map[string]any{"actionPlan": plan, "context": map[string]any{"previousResults": results}})
			var err error
			res, err = a.runAction(ctx, s.entry, req, s.resp, previous, st, opts)
			if err != nil {
				res = &pb.ActionResult{Success: false, Error: err.Error()}
			}
		}
		o := &pb.ActionOutcome{Name: s.name, Result: res}
		out.Results = append(out.Results, o)
		previous = append(previous, o)
		results = append(results, outcomeJSON(o))
		var v map[string]any
		if json.Unmarshal(res.GetValuesJson(), &v) == nil {
			for k, x := range v {
				values[k] = x
			}
		}
		planSteps[i]["status"] = "completed"
		if !res.GetSuccess() {
			planSteps[i]["status"] = "failed"
			planSteps[i]["error"] = res.GetError()
		}
		took := time.Since(start)
		a.storeActionResult(ctx, req, s.name, res, i+1, len(steps))
		a.d.logs.add(a, &pb.LogEntry{AgentId: a.ID, RoomId: msg.GetRoomId(), EntityId: msg.GetEntityId(),
			Type: "action", CreatedAt: time.Now().UnixMilli(), BodyJson: mustJSON(map[string]any{
				"action": s.name, "plugin": plugin, "runId": req.GetRunId(),
				"success": res.GetSuccess(), "error": res.GetError(), "durationMs": took.Milliseconds(),
				"messageId": msg.GetId(), "planStep": fmt.Sprintf("%d/%d", i+1, len(steps)),
			})})
		ev["completed"], ev["success"], ev["durationMs"] = true, res.GetSuccess(), took.Milliseconds()
		if res.GetError() != "" {
			ev["error"] = res.GetError()
		}
		a.hostEvent(ctx, sdk.EventActionCompleted, req.GetRunId(), msg, ev)
	}
	if len(steps) > 0 {
		a.states.merge(msg.GetId(), map[string]any{"actionPlan": plan, "actionResults": results})
	}
	return out, nil
}

func outcomeJSON(o *pb.ActionOutcome) map[string]any {
	r := o.GetResult()
	res := map[string]any{"success": r.GetSuccess()}
	if r.GetText() != "" {
		res["text"] = r.GetText()
	}
	if r.GetError() != "" {
		res["error"] = r.GetError()
	}
	var v map[string]any
	if json.Unmarshal(r.GetValuesJson(), &v) == nil && len(v) > 0 {
		res["values"] = v
	}
	return map[string]any{"name": o.GetName(), "result": res}
}

// storeActionResult records an action's outcome as an action_result memory
// in the message's room, as elizaOS does, so later prompts can show what
// the agent did.
func (a *Agent) storeActionResult(ctx context.Context, req *pb.ProcessActionsRequest, name string, res *pb.ActionResult, step, total int) {
	msg := req.GetMessage()
	if msg.GetRoomId() == "" {
		return
	}
	text := res.GetText()
	if text == "" {
		text = "Executed action: " + name
		if !res.GetSuccess() {
			text = fmt.Sprintf("Action %s failed: %s", name, res.GetError())
		}
	}
	status := "completed"
	if !res.GetSuccess() {
		status = "failed"
	}
	result := map[string]any{"success": res.GetSuccess()}
	if res.GetText() != "" {
		result["text"] = res.GetText()
	}
	if res.GetError() != "" {
		result["error"] = res.GetError()
	}
	extra := map[string]any{"type": "action_result", "actionName": name, "actionStatus": status, "actionResult": result,
		"runId": req.GetRunId(), "planStep": fmt.Sprintf("%d/%d", step, total)}
	m := &pb.Memory{Id: uuid.NewString(), EntityId: a.ID, AgentId: a.ID, RoomId: msg.GetRoomId(), WorldId: msg.GetWorldId(),
		CreatedAt: time.Now().UnixMilli(), Table: sdk.TableMessages,
		Content: &pb.Content{Text: text, Actions: []string{name}, Source: msg.GetContent().GetSource(), ExtraJson: mustJSON(extra)}}
	p, c, err := a.db(ctx)
	if err == nil {
		dctx, cancel := ensureDeadline(ctx, sdk.DefaultCallTimeout)
		_, err = c.db.CreateMemory(dctx, &pb.CreateMemoryRequest{AgentId: a.ID, Memory: m, Table: sdk.TableMessages})
		cancel()
		if err != nil {
			err = p.callErr(c, "CreateMemory", err)
		}
	}
	if err != nil {
		a.log.Warn("could not store an action result", "action", name, "runId", req.GetRunId(), "error", err)
	}
}

func (a *Agent) runAction(ctx context.Context, e *actionEntry, req *pb.ProcessActionsRequest, resp *pb.Memory, previous []*pb.ActionOutcome, st *pb.State, options []byte) (*pb.ActionResult, error) {
	c, err := e.plugin.conn(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := ensureDeadline(ctx, sdk.DefaultRunTimeout)
	defer cancel()
	res, err := c.plugin.RunAction(ctx, &pb.RunActionRequest{AgentId: a.ID, Name: e.spec.GetName(), Message: req.GetMessage(),
		State: st, Responses: []*pb.Memory{resp}, RunId: req.GetRunId(), Previous: previous, OptionsJson: options})
	if err != nil {
		return nil, e.plugin.callErr(c, "action "+e.spec.GetName(), err)
	}
	if res.GetResult() == nil {
		return &pb.ActionResult{Success: true}, nil
	}
	return res.GetResult(), nil
}

// validateActions asks each plugin which of its actions may be offered for
// the message, one call per plugin, and answers in the agent's order. A
// plugin that does not implement validation offers all its actions; one
// that fails offers none.
func (a *Agent) validateActions(ctx context.Context, req *pb.ValidateActionsRequest) *pb.ValidateActionsResponse {
	want := map[string]bool{}
	for _, n := range req.GetNames() {
		want[n] = true
	}
	byPlugin := map[*Plugin][]string{}
	var order []*Plugin
	for _, e := range a.reg.actions {
		if len(want) > 0 && !want[e.spec.GetName()] {
			continue
		}
		if _, ok := byPlugin[e.plugin]; !ok {
			order = append(order, e.plugin)
		}
		byPlugin[e.plugin] = append(byPlugin[e.plugin], e.spec.GetName())
	}
	ctx, cancel := ensureDeadline(ctx, sdk.DefaultCallTimeout)
	defer cancel()
	valid := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			names := byPlugin[p]
			c, err := p.conn(ctx)
			var res *pb.ValidateActionsResponse
			if err == nil {
				res, err = c.plugin.ValidateActions(ctx, &pb.ValidateActionsRequest{AgentId: a.ID, Names: names,
					Message: req.GetMessage(), State: req.GetState()})
				if status.Code(err) == codes.Unimplemented {
					res, err = &pb.ValidateActionsResponse{Valid: names}, nil
				} else if err != nil {
					err = p.callErr(c, "ValidateActions", err)
				}
			}
			if err != nil {
				a.log.Warn("validating actions failed; they are not offered", "plugin", p.Name(), "error", err)
				return
			}
			mu.Lock()
			for _, n := range res.GetValid() {
				valid[n] = true
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	out := &pb.ValidateActionsResponse{}
	for _, e := range a.reg.actions {
		if valid[e.spec.GetName()] && (len(want) == 0 || want[e.spec.GetName()]) {
			out.Valid = append(out.Valid, e.spec.GetName())
		}
	}
	return out
}

// hostEvent tells the plugins subscribed to an event the host raises
// (ACTION_*, EVALUATOR_*). A failing subscriber is logged, never fatal.
func (a *Agent) hostEvent(ctx context.Context, typ, runID string, msg *pb.Memory, payload map[string]any) {
	if err := a.emit(ctx, &pb.HandleEventRequest{Type: typ, RunId: runID, Source: msg.GetContent().GetSource(),
		Message: msg, PayloadJson: mustJSON(payload)}); err != nil {
		a.log.Warn("event handler failed", "event", typ, "runId", runID, "error", err)
	}
}

// evaluate runs the agent's evaluators, one call per plugin.
func (a *Agent) evaluate(ctx context.Context, req *pb.EvaluateRequest) (*pb.EvaluateResponse, error) {
	byPlugin := map[*Plugin][]string{}
	var order []*Plugin
	for _, e := range a.reg.evaluators {
		if !req.GetDidRespond() && !e.spec.GetAlwaysRun() {
			continue
		}
		if _, ok := byPlugin[e.plugin]; !ok {
			order = append(order, e.plugin)
		}
		byPlugin[e.plugin] = append(byPlugin[e.plugin], e.spec.GetName())
	}
	out := &pb.EvaluateResponse{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	ctx, cancel := ensureDeadline(ctx, sdk.DefaultRunTimeout)
	defer cancel()
	defer a.d.recordEvaluators(a, req, out, time.Now())
	ids := map[string]string{}
	for _, p := range order {
		for _, n := range byPlugin[p] {
			ids[n] = uuid.NewString()
			a.hostEvent(ctx, sdk.EventEvaluatorStarted, req.GetRunId(), req.GetMessage(), map[string]any{"evaluatorId": ids[n],
				"evaluatorName": n, "runId": req.GetRunId(), "messageId": req.GetMessage().GetId(), "startTime": time.Now().UnixMilli()})
		}
	}
	defer func() {
		for _, o := range out.GetOutcomes() {
			p := map[string]any{"evaluatorId": ids[o.GetName()], "evaluatorName": o.GetName(), "runId": req.GetRunId(),
				"messageId": req.GetMessage().GetId(), "completed": true, "ran": o.GetRan()}
			if o.GetError() != "" {
				p["error"] = o.GetError()
			}
			a.hostEvent(ctx, sdk.EventEvaluatorCompleted, req.GetRunId(), req.GetMessage(), p)
		}
	}()
	for _, p := range order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			names := byPlugin[p]
			c, err := p.conn(ctx)
			var res *pb.RunEvaluatorsResponse
			if err == nil {
				res, err = c.plugin.RunEvaluators(ctx, &pb.RunEvaluatorsRequest{AgentId: a.ID, Names: names, Message: req.GetMessage(),
					State: req.GetState(), DidRespond: req.GetDidRespond(), Responses: req.GetResponses(), RunId: req.GetRunId()})
				if err != nil {
					err = p.callErr(c, "RunEvaluators", err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				for _, n := range names {
					out.Outcomes = append(out.Outcomes, &pb.EvaluatorOutcome{Name: n, Error: err.Error()})
				}
				return
			}
			out.Outcomes = append(out.Outcomes, res.GetOutcomes()...)
		}()
	}
	wg.Wait()
	return out, nil
}

// emit hands an event to every plugin of the agent subscribed to it and
// waits for them.
func (a *Agent) emit(ctx context.Context, req *pb.HandleEventRequest) error {
	if a.log.IsDebug() {
		a.log.Debug("event", "type", req.GetType(), "runId", req.GetRunId(), "payload", string(req.GetPayloadJson()))
	}
	if req.GetType() == sdk.EventRunEnded {
		a.noteRunEnded(req)
	}
	subs := a.reg.events[req.GetType()]
	if len(subs) == 0 {
		return nil
	}
	req.AgentId = a.ID
	ctx, cancel := ensureDeadline(ctx, sdk.DefaultRunTimeout)
	defer cancel()
	errs := make([]error, len(subs))
	var wg sync.WaitGroup
	for i, p := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := p.conn(ctx)
			if err == nil {
				_, err = c.plugin.HandleEvent(ctx, req)
				if err != nil {
					err = p.callErr(c, "event "+req.GetType(), err)
				}
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// run is one message being handled: where replies go and who waits.
type run struct {
	id      string
	agent   *Agent
	source  string
	target  *pb.Target
	message *pb.Memory

	mu      sync.Mutex
	replies []reply
	// duplicate: the handler found the message handled already (a
	// RUN_ENDED of this run said so).
	duplicate bool
}

// noteRunEnded marks a run in flight as a duplicate delivery when its
// RUN_ENDED says so: reason "duplicate…" (bootstrap's "duplicate
// delivery") or "duplicate": true.
func (a *Agent) noteRunEnded(req *pb.HandleEventRequest) {
	r := a.d.runs.get(req.GetRunId())
	if r == nil || r.agent != a {
		return
	}
	var p struct {
		Reason    string `json:"reason"`
		Duplicate bool   `json:"duplicate"`
	}
	if json.Unmarshal(req.GetPayloadJson(), &p) != nil {
		return
	}
	if p.Duplicate || strings.HasPrefix(strings.ToLower(p.Reason), "duplicate") {
		r.mu.Lock()
		r.duplicate = true
		r.mu.Unlock()
	}
}

// reply is one answer of a run, with the id of its stored memory if the
// responding plugin stored it.
type reply struct {
	id      string
	content *pb.Content
}

// receive maps an incoming message to the agent's ids, makes sure the
// world, room and sender exist, and emits MESSAGE_RECEIVED.
func (a *Agent) receive(ctx context.Context, in *incoming) (*pb.ReceiveMessageResponse, []reply, error) {
	if st, _ := a.Status(); st != AgentRunning {
		return nil, nil, fmt.Errorf("agent %s is %s, not running", a.Name, st)
	}
	p, c, err := a.db(ctx)
	if err != nil {
		return nil, nil, err
	}
	conn := &pb.EnsureConnectionRequest{AgentId: a.ID,
		Entity: &pb.Entity{Id: in.entityID, Names: in.names, MetadataJson: in.entityMeta, AgentId: a.ID},
		Room:   &pb.Room{Id: in.roomID, Name: in.roomName, AgentId: a.ID, Source: in.source, Type: in.channelType, ChannelId: in.channelID, ServerId: in.serverID, WorldId: in.worldID},
		World:  &pb.World{Id: in.worldID, Name: in.worldName, AgentId: a.ID, ServerId: in.serverID},
	}
	if key, fresh := a.ensured.check(conn); !fresh {
		dctx, cancel := ensureDeadline(ctx, sdk.DefaultCallTimeout)
		_, err = c.db.EnsureConnection(dctx, conn)
		cancel()
		if err != nil {
			return nil, nil, fmt.Errorf("store the sender and room: %w", p.callErr(c, "EnsureConnection", err))
		}
		a.ensured.remember(key)
	}
	content := in.content
	if content == nil {
		content = &pb.Content{}
	}
	content.Source = in.source
	if content.GetChannelType() == "" {
		content.ChannelType = in.channelType
	}
	msg := &pb.Memory{Id: in.messageID, EntityId: in.entityID, AgentId: a.ID, RoomId: in.roomID, WorldId: in.worldID,
		CreatedAt: in.createdAt, Content: content, Table: sdk.TableMessages}
	if in.authorIsBot {
		// Handlers see who wrote it: agents do not answer bots by default.
		msg.MetadataJson = mustJSON(map[string]any{"authorIsBot": true})
	}
	r := &run{id: uuid.NewString(), agent: a, source: in.source, message: msg,
		target: &pb.Target{Source: in.source, RoomId: in.roomID, ChannelId: in.channelID, ServerId: in.serverID, EntityId: in.entityID, ThreadId: in.threadID}}
	a.d.runs.put(r)
	defer a.d.runs.remove(r.id)
	defer a.states.drop(msg.GetId())
	var runErr error
	finish := a.d.runStarted(r)
	defer func() { finish(runErr) }()
	res := &pb.ReceiveMessageResponse{MemoryId: msg.GetId(), RoomId: in.roomID, WorldId: in.worldID, EntityId: in.entityID, RunId: r.id}
	if len(a.reg.events[sdk.EventMessageReceived]) == 0 {
		a.log.Warn("no plugin of this agent handles MESSAGE_RECEIVED; the message is ignored (add the bootstrap plugin)")
		return res, nil, nil
	}
	if err := a.emit(ctx, &pb.HandleEventRequest{Type: sdk.EventMessageReceived, RunId: r.id, Source: in.source, Message: msg}); err != nil {
		runErr = err
		return nil, nil, fmt.Errorf("handle message: %w", err)
	}
	r.mu.Lock()
	replies := r.replies
	res.Duplicate = r.duplicate
	r.mu.Unlock()
	for _, rp := range replies {
		res.Replies = append(res.Replies, rp.content)
	}
	return res, replies, nil
}

// respond delivers a reply of a run: to its platform through the plugin
// serving the run's source, and to whoever waits for the run.
func (a *Agent) respond(ctx context.Context, req *pb.RespondRequest) (*pb.RespondResponse, error) {
	r := a.d.runs.get(req.GetRunId())
	if r == nil || r.agent != a {
		return nil, fmt.Errorf("respond: run %q of agent %s is not in flight (it finished or never existed): %w", req.GetRunId(), a.Name, sdk.ErrNotFound)
	}
	r.mu.Lock()
	r.replies = append(r.replies, reply{id: req.GetMemoryId(), content: req.GetContent()})
	r.mu.Unlock()
	res := &pb.RespondResponse{}
	if req.GetMemoryId() != "" {
		res.MessageIds = []string{req.GetMemoryId()}
	}
	if p := a.reg.sources[r.source]; p != nil {
		sent, err := a.send(ctx, p, r.target, req.GetContent())
		if err != nil {
			return nil, err
		}
		res.MessageIds = sent
	}
	a.d.publish(a, r, req.GetContent())
	return res, nil
}

// sendMessage routes content to the plugin that serves the target's source.
func (a *Agent) sendMessage(ctx context.Context, req *pb.SendMessageRequest) (*pb.SendMessageResponse, error) {
	src := req.GetTarget().GetSource()
	p := a.reg.sources[src]
	if p == nil {
		return nil, fmt.Errorf("send message: no plugin of agent %s sends to source %q: %w", a.Name, src, sdk.ErrInvalid)
	}
	ids, err := a.send(ctx, p, req.GetTarget(), req.GetContent())
	if err != nil {
		return nil, err
	}
	return &pb.SendMessageResponse{MessageIds: ids}, nil
}

func (a *Agent) send(ctx context.Context, p *Plugin, t *pb.Target, content *pb.Content) ([]string, error) {
	ctx, cancel := ensureDeadline(ctx, sdk.DefaultCallTimeout)
	defer cancel()
	res, err := p.sendOnce(ctx, &pb.SendMessageRequest{AgentId: a.ID, Target: t, Content: content, DeliveryId: uuid.NewString()})
	if err != nil {
		return nil, err
	}
	return res.GetMessageIds(), nil
}

// incoming is a message with its ids already mapped to the agent's.
type incoming struct {
	source, messageID, entityID, roomID, worldID string
	channelID, serverID, threadID                string
	names                                        []string
	entityMeta                                   []byte
	roomName, worldName, channelType             string
	createdAt                                    int64
	content                                      *pb.Content
	// authorIsBot: the platform says a bot or another agent wrote it.
	authorIsBot bool
}

// mapIncoming turns a connector's platform ids into the agent's ids with
// elizaOS's createUniqueUuid, so the same user in the same chat is the same
// entity and room across restarts.
func (a *Agent) mapIncoming(req *pb.ReceiveMessageRequest) *incoming {
	in := &incoming{source: req.GetSource(), channelID: req.GetChannelId(), serverID: req.GetServerId(), threadID: req.GetThreadId(),
		roomName: req.GetRoomName(), worldName: req.GetWorldName(), channelType: req.GetChannelType(), createdAt: req.GetCreatedAt(),
		content: req.GetContent()}
	user := req.GetUserId()
	if user == "" {
		user = req.GetUserName()
	}
	in.entityID = sdk.CreateUniqueUUID(a.ID, user)
	room := req.GetChannelId()
	if req.GetThreadId() != "" {
		room = req.GetThreadId()
	}
	if room == "" {
		room = user
	}
	in.roomID = sdk.CreateUniqueUUID(a.ID, room)
	server := req.GetServerId()
	if server == "" {
		server = req.GetSource()
	}
	in.worldID = sdk.CreateUniqueUUID(a.ID, server)
	if req.GetMessageId() != "" {
		in.messageID = sdk.CreateUniqueUUID(a.ID, req.GetMessageId())
	} else {
		in.messageID = uuid.NewString()
	}
	for _, n := range []string{req.GetDisplayName(), req.GetUserName()} {
		if n != "" && !contains(in.names, n) {
			in.names = append(in.names, n)
		}
	}
	meta := map[string]any{}
	if req.GetSource() != "" {
		m := map[string]any{"id": req.GetUserId(), "userName": req.GetUserName(), "name": req.GetDisplayName()}
		if req.GetAuthorIsBot() {
			m["isBot"] = true
		}
		meta[req.GetSource()] = m
	}
	in.authorIsBot = req.GetAuthorIsBot()
	in.entityMeta = mustJSON(meta)
	if in.createdAt == 0 {
		in.createdAt = time.Now().UnixMilli()
	}
	if in.content != nil && req.GetInReplyTo() != "" {
		in.content.InReplyTo = sdk.CreateUniqueUUID(a.ID, req.GetInReplyTo())
	}
	return in
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func ensureDeadline(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

// ensuredCache remembers the connections (sender, room, world) stored in
// the last few seconds. A conversation sends the same one with every
// message, and storing it is idempotent, so an identical request seen a
// moment ago is skipped: one database round trip less per message. Any
// difference in names or metadata is a different request and is stored.
type ensuredCache struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]time.Time
}

// ensuredTTL is how long a stored connection is trusted.
const ensuredTTL = 10 * time.Second

func (c *ensuredCache) check(req *pb.EnsureConnectionRequest) ([sha256.Size]byte, bool) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		return [sha256.Size]byte{}, false
	}
	key := sha256.Sum256(b)
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.m[key]
	return key, ok && time.Since(at) < ensuredTTL
}

func (c *ensuredCache) remember(key [sha256.Size]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) > 4096 {
		c.m = map[[sha256.Size]byte]time.Time{}
	}
	c.m[key] = time.Now()
}

// forget drops everything, e.g. after rooms or entities were deleted.
func (c *ensuredCache) forget() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}

// stateCache keeps the last composed state per message, bounded: elizaOS's
// never evicts and grows with every message.
type stateCache struct {
	mu    sync.Mutex
	max   int
	order []string
	m     map[string]*pb.State
}

func newStateCache(max int) *stateCache {
	return &stateCache{max: max, m: map[string]*pb.State{}}
}

func (c *stateCache) get(id string) *pb.State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[id]
}

func (c *stateCache) put(id string, st *pb.State) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[id]; !ok {
		c.order = append(c.order, id)
	}
	c.m[id] = st
	for len(c.m) > c.max && len(c.order) > 0 {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
	if len(c.order) > 2*c.max+16 {
		// Dropped entries leave their ids behind; keep the live ones only.
		live := c.order[:0]
		for _, k := range c.order {
			if _, ok := c.m[k]; ok {
				live = append(live, k)
			}
		}
		c.order = live
	}
}

// drop forgets a message's state once its run is over: the cache exists
// for the recompositions within a run, and a finished run's state is
// garbage.
func (c *stateCache) drop(id string) {
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}

// merge sets keys of the data of a message's cached state (creating the
// entry if there is none), so providers composed later for the message see
// them.
func (c *stateCache) merge(id string, data map[string]any) {
	if id == "" {
		return
	}
	c.mu.Lock()
	st := c.m[id]
	c.mu.Unlock()
	d := map[string]any{}
	var values []byte
	text := ""
	if st != nil {
		_ = json.Unmarshal(st.GetDataJson(), &d)
		values, text = st.GetValuesJson(), st.GetText()
	}
	for k, v := range data {
		d[k] = v
	}
	c.put(id, &pb.State{ValuesJson: values, DataJson: mustJSON(d), Text: text})
}

// Len reports how many states are cached.
func (c *stateCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
