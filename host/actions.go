package host

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/agenthost/agenthost/internal/contract"
	"github.com/agenthost/agenthost/sdk"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// processActions runs the actions the responses name, in order, each
// result handed to the next: the state an action gets holds the plan, the
// results so far (data.actionPlan, data.actionResults) and the values the
// earlier actions returned, and so does the message's cached state, where
// the ACTION_STATE provider finds them. Each action is announced
// (ACTION_STARTED, ACTION_COMPLETED), logged, and recorded as an
// action_result memory of the room. A name the model repeats in one
// response runs once. An unknown or failing action is recorded and the
// chain goes on.
func (a *AgentRuntime) processActions(ctx context.Context, req *pb.ProcessActionsRequest) (*pb.ProcessActionsResponse, error) {
	msg := req.GetMessage()
	events := map[int]map[string]any{}
	plugin := func(s contract.ActionStep[*PluginProcess]) string {
		if s.Entry == nil {
			return ""
		}
		return s.Entry.Plugin.Name()
	}
	return a.registry().RunActions(ctx, req, contract.ActionHooks[*PluginProcess]{
		Run: func(ctx context.Context, s contract.ActionStep[*PluginProcess], st *pb.State, previous []*pb.ActionOutcome, options []byte) (*pb.ActionResult, error) {
			return a.runAction(ctx, s.Entry, req, s.Response, previous, st, options)
		},
		Progress: func(plan map[string]any, results []any) {
			a.states.merge(msg.GetId(), map[string]any{"actionPlan": plan, "actionResults": results})
		},
		Started: func(ctx context.Context, s contract.ActionStep[*PluginProcess]) {
			ev := map[string]any{"actionId": uuid.NewString(), "actionName": s.Name, "runId": req.GetRunId(), "messageId": msg.GetId(),
				"roomId": msg.GetRoomId(), "startTime": time.Now().UnixMilli(), "planStep": s.PlanStep}
			events[s.Index] = ev
			a.hostEvent(ctx, sdk.EventActionStarted, req.GetRunId(), msg, ev)
		},
		Finished: func(ctx context.Context, s contract.ActionStep[*PluginProcess], res *pb.ActionResult, took time.Duration) {
			a.storeActionResult(ctx, req, s.Name, res, s.PlanStep)
			a.d.logs.add(a, &pb.LogEntry{AgentId: a.ID, RoomId: msg.GetRoomId(), EntityId: msg.GetEntityId(),
				Type: "action", CreatedAt: time.Now().UnixMilli(), BodyJson: mustJSON(map[string]any{
					"action": s.Name, "plugin": plugin(s), "runId": req.GetRunId(),
					"success": res.GetSuccess(), "error": res.GetError(), "durationMs": took.Milliseconds(),
					"messageId": msg.GetId(), "planStep": s.PlanStep,
				})})
			ev := events[s.Index]
			ev["completed"], ev["success"], ev["durationMs"] = true, res.GetSuccess(), took.Milliseconds()
			if res.GetError() != "" {
				ev["error"] = res.GetError()
			}
			a.hostEvent(ctx, sdk.EventActionCompleted, req.GetRunId(), msg, ev)
		},
	}), nil
}

// storeActionResult records an action's outcome as an action_result memory
// of the message's room, as elizaOS does, so later prompts can show what
// the agent did. It goes to the action_results table, not among the
// messages: a room's messages are what was said in it, each once, and an
// action's result is neither (what an action said went through respond).
func (a *AgentRuntime) storeActionResult(ctx context.Context, req *pb.ProcessActionsRequest, name string, res *pb.ActionResult, planStep string) {
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
		"runId": req.GetRunId(), "planStep": planStep}
	m := &pb.Memory{Id: contract.NewID(), EntityId: a.ID, AgentId: a.ID, RoomId: msg.GetRoomId(), WorldId: msg.GetWorldId(),
		CreatedAt: time.Now().UnixMilli(), Table: sdk.TableActionResults,
		Content: &pb.Content{Text: text, Actions: []string{name}, Source: msg.GetContent().GetSource(), ExtraJson: mustJSON(extra)}}
	if err := a.createMemory(ctx, m); err != nil {
		a.log.Warn("could not store an action result", "action", name, "runId", req.GetRunId(), "error", err)
	}
}

// createMemory stores m in its table through the agent's database plugin.
func (a *AgentRuntime) createMemory(ctx context.Context, m *pb.Memory) error {
	p, c, err := a.db(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := ensureDeadline(ctx, contract.DefaultCallTimeout)
	defer cancel()
	if _, err := c.db.CreateMemory(ctx, &pb.CreateMemoryRequest{AgentId: a.ID, Memory: m, Table: m.GetTable()}); err != nil {
		return p.callErr(c, "CreateMemory", err)
	}
	return nil
}

func (a *AgentRuntime) runAction(ctx context.Context, e *contract.ActionEntry[*PluginProcess], req *pb.ProcessActionsRequest, resp *pb.Memory, previous []*pb.ActionOutcome, st *pb.State, options []byte) (*pb.ActionResult, error) {
	c, err := e.Plugin.conn(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := ensureDeadline(ctx, contract.DefaultRunTimeout)
	defer cancel()
	res, err := c.plugin.RunAction(ctx, &pb.RunActionRequest{AgentId: a.ID, Name: e.Spec.GetName(), Message: req.GetMessage(),
		State: st, Responses: []*pb.Memory{resp}, RunId: req.GetRunId(), Previous: previous, OptionsJson: options}, resultLimit(1))
	if status.Code(err) == codes.ResourceExhausted {
		return nil, fmt.Errorf("action %s of plugin %s returned more than %s, the limit of an action's result", e.Spec.GetName(), e.Plugin.Name(), byteText(maxResultSize))
	}
	if err != nil {
		return nil, e.Plugin.callErr(c, "action "+e.Spec.GetName(), err)
	}
	if res.GetResult() == nil {
		return &pb.ActionResult{Success: true}, nil
	}
	if n := proto.Size(res.GetResult()); n > maxResultSize {
		return nil, fmt.Errorf("action %s of plugin %s returned %s, over the limit of %s an action's result", e.Spec.GetName(), e.Plugin.Name(), byteText(n), byteText(maxResultSize))
	}
	return res.GetResult(), nil
}

// validateActions asks each plugin which of its actions may be offered for
// the message, one call per plugin, and answers in the agent's order. A
// plugin that does not implement validation offers all its actions; one
// that fails offers none.
func (a *AgentRuntime) validateActions(ctx context.Context, req *pb.ValidateActionsRequest) *pb.ValidateActionsResponse {
	ask := a.registry().ActionsToValidate(req.GetNames())
	ctx, cancel := ensureDeadline(ctx, contract.DefaultCallTimeout)
	defer cancel()
	valid := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range ask.Order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			names := ask.Names[p]
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
	return &pb.ValidateActionsResponse{Valid: a.registry().ValidActions(req.GetNames(), valid)}
}
