package host

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/agenthost/agenthost/internal/contract"
	"github.com/agenthost/agenthost/sdk"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// hostEvent tells the plugins subscribed to an event the host raises
// (ACTION_*, EVALUATOR_*). A failing subscriber is logged, never fatal.
func (a *AgentRuntime) hostEvent(ctx context.Context, typ, runID string, msg *pb.Memory, payload map[string]any) {
	if err := a.emit(ctx, &pb.HandleEventRequest{Type: typ, RunId: runID, Source: msg.GetContent().GetSource(),
		Message: msg, PayloadJson: mustJSON(payload)}); err != nil {
		a.log.Warn("event handler failed", "event", typ, "runId", runID, "error", err)
	}
}

// evaluate runs the agent's evaluators, one call per plugin.
func (a *AgentRuntime) evaluate(ctx context.Context, req *pb.EvaluateRequest) (*pb.EvaluateResponse, error) {
	run := a.registry().EvaluatorsToRun(req.GetDidRespond())
	out := &pb.EvaluateResponse{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	ctx, cancel := ensureDeadline(ctx, contract.DefaultRunTimeout)
	defer cancel()
	defer a.d.recordEvaluators(a, req, out, time.Now())
	defer func() {
		// Evaluators that run after their run (bootstrap's) had the state
		// composed again for them; once they are done it is garbage, as a
		// finished run's is, and not left for the cache to push out.
		if a.d.runs.get(req.GetRunId()) == nil {
			a.states.Drop(req.GetMessage().GetId())
		}
	}()
	ids := map[string]string{}
	for _, p := range run.Order {
		for _, n := range run.Names[p] {
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
	for _, p := range run.Order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			names := run.Names[p]
			c, err := p.conn(ctx)
			var res *pb.RunEvaluatorsResponse
			if err == nil {
				res, err = c.plugin.RunEvaluators(ctx, &pb.RunEvaluatorsRequest{AgentId: a.ID, Names: names, Message: req.GetMessage(),
					State: req.GetState(), DidRespond: req.GetDidRespond(), Responses: req.GetResponses(), RunId: req.GetRunId()}, resultLimit(len(names)))
				switch {
				case status.Code(err) == codes.ResourceExhausted:
					err = fmt.Errorf("plugin %s's evaluators returned more than %s each, the limit of an evaluator's result", p.Name(), byteText(maxResultSize))
				case err != nil:
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
func (a *AgentRuntime) emit(ctx context.Context, req *pb.HandleEventRequest) error {
	if a.log.IsDebug() {
		a.log.Debug("event", "type", req.GetType(), "runId", req.GetRunId(), "payload", string(req.GetPayloadJson()))
	}
	if req.GetType() == sdk.EventRunEnded {
		a.noteRunEnded(req)
	}
	subs := a.registry().Events[req.GetType()]
	if len(subs) == 0 {
		return nil
	}
	req.AgentId = a.ID
	ctx, cancel := ensureDeadline(ctx, contract.DefaultRunTimeout)
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
