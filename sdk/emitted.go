package sdk

import (
	"context"
	"sync"
	"time"

	"github.com/agenthost/agenthost/internal/contract"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

// Events a handler emits that no plugin of the agent listens for go back
// with the handler's answer (HandleEventResponse.emitted) rather than in a
// call to the host each: a message's RUN_STARTED and RUN_ENDED were two of
// its dozen crossings, for the timeline alone.

// emittedKey carries the handler's emittedEvents in its context.
type emittedKey struct{}

// emittedEvents collects the events of one HandleEvent call.
type emittedEvents struct {
	agentID string
	mu      sync.Mutex
	events  []*pb.EmittedEvent
	closed  bool
}

// add keeps ev for the answer; false when the answer is gone already (a
// goroutine of the handler emitting late), ev is another agent's, or the
// answer holds as many as the host takes.
func (e *emittedEvents) add(agentID string, ev Event) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || agentID != e.agentID || len(e.events) >= contract.MaxEmitted {
		return false
	}
	e.events = append(e.events, &pb.EmittedEvent{Type: ev.Type, RunId: ev.RunID, Source: ev.Source,
		Message: memoryToProto(ev.Message), PayloadJson: encodeMap(ev.Payload), EmittedAt: time.Now().UnixMilli()})
	return true
}

// take ends the collection and returns what was collected.
func (e *emittedEvents) take() []*pb.EmittedEvent {
	if e == nil {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	return e.events
}

// deferEmit keeps ev for the answer of the handler that ctx belongs to,
// when nobody listens for its type; false when it must be emitted now.
func (a *Agent) deferEmit(ctx context.Context, ev Event) bool {
	col, ok := ctx.Value(emittedKey{}).(*emittedEvents)
	if !ok {
		return false
	}
	info, err := a.DescribeAgent(ctx)
	if err != nil || info.Listens(ev.Type) {
		return false
	}
	return col.add(a.ID, ev)
}

// emitNow sends events collected for an answer that will not be given
// (the handler failed) with EmitEvent, so that the timeline still has them.
func (a *Agent) emitNow(ctx context.Context, evs []*pb.EmittedEvent) {
	ctx = context.WithoutCancel(ctx)
	for _, e := range evs {
		if err := a.emitCall(ctx, &pb.EmitEventRequest{AgentId: a.ID, Type: e.GetType(), Source: e.GetSource(),
			Message: e.GetMessage(), PayloadJson: e.GetPayloadJson(), RunId: e.GetRunId()}); err != nil {
			a.Logger(ctx).Warn("emit event failed", "event", e.GetType(), "error", err)
		}
	}
}
