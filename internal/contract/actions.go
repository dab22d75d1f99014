package contract

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

// ActionStep is one action of a ProcessActions request.
type ActionStep[P Plugin] struct {
	// Name is the action's registered name, or the name as the response
	// wrote it when no action matches (Entry is then nil).
	Name  string
	Entry *ActionEntry[P]
	// Response is the response that named the action.
	Response *pb.Memory
	// Index counts from 0; PlanStep is "i/n", counting from 1.
	Index    int
	PlanStep string
}

// ActionHooks are what the one running the actions does besides calling
// them: the host announces, logs and stores each; plugintest does nothing
// more.
type ActionHooks[P Plugin] struct {
	// Run calls one action (Entry is never nil) with the state and options
	// the chain made for it.
	Run func(ctx context.Context, step ActionStep[P], st *pb.State, previous []*pb.ActionOutcome, options []byte) (*pb.ActionResult, error)
	// Progress is told the plan and the results so far before each step
	// and once after the last (the host keeps them in the message's state,
	// where the ACTION_STATE provider finds them).
	Progress func(plan map[string]any, results []any)
	// Started and Finished bracket each step.
	Started  func(ctx context.Context, step ActionStep[P])
	Finished func(ctx context.Context, step ActionStep[P], res *pb.ActionResult, took time.Duration)
}

// ActionSteps lists the actions the responses name, in order, resolved
// with ResolveAction. A name the model repeats in one response runs once.
func (r *Registry[P]) ActionSteps(responses []*pb.Memory) []ActionStep[P] {
	var steps []ActionStep[P]
	for _, resp := range responses {
		seen := map[string]bool{}
		for _, name := range resp.GetContent().GetActions() {
			entry := r.ResolveAction(name)
			key := "?" + NormalizeAction(name)
			if entry != nil {
				key, name = entry.Spec.GetName(), entry.Spec.GetName()
			}
			if seen[key] {
				continue
			}
			seen[key] = true
			steps = append(steps, ActionStep[P]{Name: name, Entry: entry, Response: resp})
		}
	}
	for i := range steps {
		steps[i].Index, steps[i].PlanStep = i, fmt.Sprintf("%d/%d", i+1, len(steps))
	}
	return steps
}

// RunActions runs the actions the responses name, in order, each result
// handed to the next: the state an action gets holds the plan, the results
// so far (data.actionPlan, data.actionResults) and the values the earlier
// actions returned. An unknown or failing action is a failed outcome and
// the chain goes on.
func (r *Registry[P]) RunActions(ctx context.Context, req *pb.ProcessActionsRequest, h ActionHooks[P]) *pb.ProcessActionsResponse {
	steps := r.ActionSteps(req.GetResponses())
	values, data := map[string]any{}, map[string]any{}
	_ = json.Unmarshal(req.GetState().GetValuesJson(), &values)
	_ = json.Unmarshal(req.GetState().GetDataJson(), &data)
	planSteps := make([]map[string]any, len(steps))
	for i, s := range steps {
		planSteps[i] = map[string]any{"action": s.Name, "status": "pending"}
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
		if h.Progress != nil {
			h.Progress(plan, results)
		}
		if h.Started != nil {
			h.Started(ctx, s)
		}
		start := time.Now()
		var res *pb.ActionResult
		if s.Entry == nil {
			res = &pb.ActionResult{Success: false, Error: fmt.Sprintf("no action named %q among %d registered actions", s.Name, len(r.Actions))}
		} else {
			st := &pb.State{ValuesJson: JSON(values), DataJson: JSON(data), Text: req.GetState().GetText()}
			opts := JSON(map[string]any{"actionPlan": plan, "context": map[string]any{"previousResults": results}})
			var err error
			res, err = h.Run(ctx, s, st, previous, opts)
			if err != nil {
				res = &pb.ActionResult{Success: false, Error: err.Error()}
			} else if res == nil {
				res = &pb.ActionResult{Success: true}
			}
		}
		o := &pb.ActionOutcome{Name: s.Name, Result: res}
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
		if h.Finished != nil {
			h.Finished(ctx, s, res, time.Since(start))
		}
	}
	if len(steps) > 0 && h.Progress != nil {
		h.Progress(plan, results)
	}
	return out
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
