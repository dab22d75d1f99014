package host

import (
	"context"
	"encoding/json"
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
	emitted := make([][]*pb.EmittedEvent, len(subs))
	since := time.Now()
	var wg sync.WaitGroup
	for i, p := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := p.conn(ctx)
			if err == nil {
				var res *pb.HandleEventResponse
				res, err = c.plugin.HandleEvent(ctx, req)
				if err != nil {
					err = p.callErr(c, "event "+req.GetType(), err)
				} else {
					emitted[i] = res.GetEmitted()
				}
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, evs := range emitted {
		a.recordEmitted(subs[i], evs, since)
	}
	return errors.Join(errs...)
}

// recordEmitted records the events a plugin's handler handed back with its
// answer (HandleEventResponse.emitted), as EmitEvent would have: in the
// timeline, and RUN_ENDED's word on a duplicate delivery. Their times are
// the plugin's, kept within the call. Nobody listened for them when they
// were emitted, so they are not delivered.
func (a *AgentRuntime) recordEmitted(p *PluginProcess, evs []*pb.EmittedEvent, since time.Time) {
	if len(evs) > contract.MaxEmitted {
		a.log.Warn("a plugin handed back more events than the host takes from one answer; the rest are dropped",
			"plugin", p.Name(), "events", len(evs), "taken", contract.MaxEmitted)
		evs = evs[:contract.MaxEmitted]
	}
	now := time.Now()
	for _, e := range evs {
		if e.GetType() == "" {
			continue
		}
		at := time.UnixMilli(e.GetEmittedAt())
		if at.Before(since.Truncate(time.Millisecond)) || at.After(now) {
			at = now
		}
		ev := &pb.HandleEventRequest{AgentId: a.ID, Type: e.GetType(), RunId: e.GetRunId(), Source: e.GetSource(),
			Message: e.GetMessage(), PayloadJson: e.GetPayloadJson()}
		if a.log.IsDebug() {
			a.log.Debug("event", "type", ev.GetType(), "runId", ev.GetRunId(), "payload", string(ev.GetPayloadJson()), "handedBack", true)
		}
		a.recordEvent(p.Name(), ev, at)
		if ev.GetType() == sdk.EventRunEnded {
			a.noteRunEnded(ev)
		}
	}
}

// recordEvent keeps what a plugin announces (RUN_STARTED, RUN_ENDED with
// why a run stopped, ...) in the timeline, next to the runs, model calls
// and actions. The payload is passed on as it came, split into keys only.
func (a *AgentRuntime) recordEvent(plugin string, ev *pb.HandleEventRequest, at time.Time) {
	body := map[string]json.RawMessage{}
	if json.Unmarshal(ev.GetPayloadJson(), &body) != nil || body == nil {
		body = map[string]json.RawMessage{}
	}
	body["event"], body["runId"], body["source"], body["plugin"] = mustJSON(ev.GetType()), mustJSON(ev.GetRunId()), mustJSON(ev.GetSource()), mustJSON(plugin)
	a.d.logs.add(a, &pb.LogEntry{AgentId: a.ID, RoomId: ev.GetMessage().GetRoomId(), EntityId: ev.GetMessage().GetEntityId(),
		Type: "event", BodyJson: mustJSON(body), CreatedAt: at.UnixMilli()})
}
