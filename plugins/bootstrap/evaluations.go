package bootstrap

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
)

// Evaluators run after the reply, not before it: the message's handler
// returns once the reply is sent, so the client has it, and the
// evaluation (reflection above all, a model call of its own) follows in
// the background, in order per room. An evaluation is held as a task
// until it is done, so a process that dies in between evaluates the
// message at its next start; one that can no longer be run (its message
// was deleted) is written to the run's timeline as skipped.

// readRoomKey carries a roomRead to RECENT_MESSAGES when an evaluation's
// state is composed in this process.
type readRoomKey struct{}

// roomRead is a room's recent messages, read a moment ago.
type roomRead struct {
	roomID string
	msgs   []sdk.Memory
}

// pendingEvaluation names (and tags) the task that holds an evaluation.
const pendingEvaluation = "bootstrap:evaluate"

// evaluation is one run's evaluation, waiting for its turn.
type evaluation struct {
	RunID      string       `json:"runId"`
	Message    sdk.Memory   `json:"message"`
	DidRespond bool         `json:"didRespond"`
	Responses  []sdk.Memory `json:"responses,omitempty"`
	taskID     string
}

// evaluations runs one agent's evaluations, one room at a time each.
type evaluations struct {
	// ctx ends when the agent stops: an evaluation cut short stays held
	// and runs again at the next start.
	ctx    context.Context
	cancel context.CancelFunc
	// run runs one evaluation, on a goroutine of its room's.
	run func(context.Context, evaluation)
	// yield holds an evaluation queued at the given time back while
	// messages are handled (quietGate.wait).
	yield func(context.Context, time.Time) error

	mu     sync.Mutex
	queued map[string][]*place // by room
	wg     sync.WaitGroup      // the rooms' goroutines
	prep   sync.WaitGroup      // places not yet filled
	closed bool
}

// place is an evaluation's place in its room's queue. The message's
// handler takes it before it returns and prepares the evaluation after
// (asks the validations, holds it as a task): the reply does not wait for
// that, and the room's evaluations still run in the order of its
// messages.
type place struct {
	// queued is when the run took it: the evaluation yields to messages
	// from then on (quietGate).
	queued time.Time
	e      evaluation
	ready  chan struct{} // closed once e is set, or skip
	skip   bool          // no evaluator runs for this run
}

func newEvaluations(run func(context.Context, evaluation), gate *quietGate) *evaluations {
	ctx, cancel := context.WithCancel(context.Background())
	return &evaluations{ctx: ctx, cancel: cancel, run: run, yield: gate.wait, queued: map[string][]*place{}}
}

// add queues e behind the room's earlier evaluations.
func (q *evaluations) add(e evaluation) {
	if p, _ := q.reserve(e.Message.RoomID); p != nil {
		q.fill(p, &e)
	}
}

// reserve takes the room's next place, and returns with it the readiness
// of the place before it (nil when there is none), which its preparation
// waits for: validations are asked in the order of the room's messages.
// It returns nil once the agent stopped.
func (q *evaluations) reserve(room string) (*place, <-chan struct{}) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil, nil // the agent stopped: the task runs it at the next start
	}
	p := &place{queued: time.Now(), ready: make(chan struct{})}
	q.prep.Add(1) // until fill
	var prev <-chan struct{}
	if n := len(q.queued[room]); n > 0 {
		prev = q.queued[room][n-1].ready
	}
	q.queued[room] = append(q.queued[room], p)
	if len(q.queued[room]) > 1 {
		return p, prev // the room's goroutine will get to it
	}
	q.wg.Add(1)
	go q.runRoom(room)
	return p, prev
}

// fill sets the evaluation of a place, or, with e nil, lets it go. Every
// place reserved is filled once.
func (q *evaluations) fill(p *place, e *evaluation) {
	defer q.prep.Done()
	if e == nil {
		p.skip = true
	} else {
		p.e = *e
	}
	close(p.ready)
}

func (q *evaluations) runRoom(room string) {
	defer q.wg.Done()
	for {
		q.mu.Lock()
		if len(q.queued[room]) == 0 || q.closed {
			delete(q.queued, room)
			q.mu.Unlock()
			return
		}
		next := q.queued[room][0]
		q.mu.Unlock()
		select {
		case <-next.ready:
		case <-q.ctx.Done():
			continue // closed: the loop ends
		}
		if !next.skip && q.yield(q.ctx, next.queued) == nil {
			q.run(q.ctx, next.e)
		}
		q.mu.Lock()
		q.queued[room] = q.queued[room][1:]
		q.mu.Unlock()
	}
}

// close stops taking evaluations and waits for the one running in each
// room and for those being prepared; the rest stay held as tasks.
func (q *evaluations) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cancel()
	q.prep.Wait()
	q.wg.Wait()
}

// holdEvaluation holds the run's evaluation as a task until it is done,
// and returns it.
func (b *bootstrap) holdEvaluation(ctx context.Context, r *run, didRespond bool, responses []sdk.Memory) evaluation {
	e := evaluation{RunID: r.id, Message: *r.msg, DidRespond: didRespond, Responses: responses}
	// The task holds the message without its embedding, a tenth of the
	// size: a recovered evaluation takes it from the stored message.
	held := e
	held.Message.Embedding = nil
	raw, err := json.Marshal(held)
	var meta map[string]any
	if err == nil {
		err = json.Unmarshal(raw, &meta)
	}
	if err == nil {
		e.taskID, err = b.evalStore.CreateTask(ctx, r.a, storage.Task{Name: pendingEvaluation, Tags: []string{pendingEvaluation},
			RoomID: r.msg.RoomID, Description: "evaluate run " + r.id, Metadata: meta})
	}
	if err != nil {
		// Evaluated all the same, only not again after a crash.
		r.log(ctx).Warn("could not hold the evaluation until it is done", "error", err)
	}
	return e
}

// runEvaluation runs the agent's evaluators for one run, with the state
// recomposed for them, and lets go of its task.
func (b *bootstrap) runEvaluation(parent context.Context, a *sdk.Agent, e evaluation) {
	ctx, cancel := context.WithTimeout(sdk.WithRunID(parent, e.RunID), b.settings(a).runTimeout)
	defer cancel()
	log := a.Logger(ctx)
	if !b.anyEvaluatorMayRun(ctx, a, &e.Message, nil, e.DidRespond, false) {
		// An evaluation before it did the work (a reflection covers the
		// room's messages since the last one): the run's timeline says
		// so, without the round trips of asking the evaluators.
		evaluated(a, e.Message.RoomID, e.Message.ID)
		b.recordNotRun(ctx, a, e)
		b.release(ctx, a, e)
		return
	}
	cctx := ctx
	if msgs, ok := roomReadFor(a, e.Message.RoomID, e.Message.ID); ok {
		cctx = context.WithValue(ctx, readRoomKey{}, roomRead{roomID: e.Message.RoomID, msgs: msgs})
	}
	st, err := a.ComposeState(cctx, &e.Message, sdk.ComposeOptions{RunID: e.RunID, OnlyInclude: true,
		Include: []string{"RECENT_MESSAGES", "EVALUATORS"}})
	reflectionStarted(a, e.Message.RoomID, e.Message.ID)
	if err != nil {
		log.Warn("composing the state for the evaluators failed", "error", err)
		st = &sdk.State{}
	}
	outs, err := a.Evaluate(ctx, sdk.EvaluatorCall{Message: &e.Message, State: st, DidRespond: e.DidRespond, Responses: e.Responses, RunID: e.RunID})
	evaluated(a, e.Message.RoomID, e.Message.ID)
	if err != nil {
		log.Warn("evaluators failed", "error", err)
	}
	for _, o := range outs {
		if o.Error != "" {
			log.Warn("evaluator failed", "evaluator", o.Name, "error", o.Error)
		}
	}
	if parent.Err() != nil {
		return // the agent stopped; held for the next start
	}
	b.release(ctx, a, e)
}

// recordNotRun writes in the run's timeline that this plugin's evaluators
// did not run for it, as the host records an evaluator whose validation
// said no.
func (b *bootstrap) recordNotRun(ctx context.Context, a *sdk.Agent, e evaluation) {
	info := b.info(ctx, a)
	if info == nil {
		return
	}
	for _, p := range info.Plugins {
		if p.Name != "bootstrap" {
			continue
		}
		for _, ev := range p.Evaluators {
			err := logNotRun(ctx, a, e, map[string]any{"evaluator": ev.Name, "plugin": p.Name,
				"reason": "an evaluation before it covered its messages"})
			if err != nil {
				a.Logger(ctx).Warn("could not record in the run's timeline that its evaluators had nothing to do", "error", err)
			}
		}
	}
}

// logNotRun writes an evaluator entry of the run's timeline saying that
// it did not run; body says which evaluator and why.
func logNotRun(ctx context.Context, a *sdk.Agent, e evaluation, body map[string]any) error {
	body["runId"], body["messageId"], body["ran"] = e.RunID, e.Message.ID, false
	return storage.For(a).AddLog(ctx, storage.LogEntry{EntityID: e.Message.EntityID, RoomID: e.Message.RoomID, Type: "evaluator", Body: body})
}

// release lets go of a done evaluation's task.
func (b *bootstrap) release(ctx context.Context, a *sdk.Agent, e evaluation) {
	if e.taskID != "" {
		if err := b.evalStore.DeleteTask(ctx, a, e.taskID); err != nil {
			a.Logger(ctx).Warn("could not let go of a done evaluation; it may run again at the next start", "task", e.taskID, "error", err)
		}
	}
}

// isHeldEvaluation reports whether t holds an evaluation.
func isHeldEvaluation(t *Task) bool {
	return t.Name == pendingEvaluation && hasTag(t, pendingEvaluation)
}

// recoverHeld queues the evaluations an earlier process held but did not
// finish (the task service's first look reads them).
func (b *bootstrap) recoverHeld(ctx context.Context, a *sdk.Agent, tasks []Task) {
	for _, t := range tasks {
		var e evaluation
		raw, err := json.Marshal(t.Metadata)
		if err == nil {
			err = json.Unmarshal(raw, &e)
		}
		if err != nil || e.RunID == "" || e.Message.ID == "" {
			a.Logger(ctx).Warn("dropping an unreadable held evaluation", "task", t.ID)
			_ = b.evalStore.DeleteTask(ctx, a, t.ID)
			continue
		}
		e.taskID = t.ID
		got, err := storage.For(a).GetMemoriesByIDs(ctx, []string{e.Message.ID}, "")
		switch {
		case err == nil && len(got) == 0:
			// The message is gone (deleted, its room cleared): nothing to
			// evaluate. The run's timeline says so.
			b.skipEvaluation(ctx, a, e, "its message was deleted before the evaluators ran")
			continue
		case err == nil && len(e.Message.Embedding) == 0:
			e.Message.Embedding = got[0].Embedding
		}
		b.state(a).evals.add(e)
	}
}

// skipEvaluation records in the run's timeline that its evaluators did not
// run, and why, and lets go of the held evaluation.
func (b *bootstrap) skipEvaluation(ctx context.Context, a *sdk.Agent, e evaluation, why string) {
	_ = logNotRun(ctx, a, e, map[string]any{"evaluator": "*", "error": "skipped: " + why})
	_ = b.evalStore.DeleteTask(ctx, a, e.taskID)
}
