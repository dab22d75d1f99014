package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/agenthost/agenthost/internal/contract"
	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
)

// Why a run ended without a response; RUN_ENDED carries it as "reason".
const (
	reasonOwnMessage    = "own message"
	reasonDuplicate     = "duplicate delivery"
	reasonAgentMessage  = "message from another agent"
	reasonAgentTurns    = "agent turn limit reached"
	reasonMuted         = "room muted"
	reasonNotResponding = "decided not to respond"
	reasonStale         = "a newer message arrived in the room"
	reasonNoResponse    = "no usable response from the model"
	reasonNoMessage     = "event without a message"
)

// The room types and sources whose messages are always answered, without
// asking the model first.
var (
	defaultBypassTypes   = []string{string(sdk.ChannelDM), string(sdk.ChannelVoiceDM), string(sdk.ChannelSelf), string(sdk.ChannelAPI)}
	defaultBypassSources = []string{"client_chat", "api", "web"}
)

// run is one message being handled.
type run struct {
	b      *bootstrap
	a      *sdk.Agent
	id     string
	msg    *sdk.Memory
	start  time.Time
	source string
	reason string
	// replied: the run sent its one reply and ran no actions.
	replied bool
	// writes are the run's writes behind (writeBehind), made once it
	// has replied and waited for before it ends.
	writes []*pendingWrite
}

// log is the agent's logger with the run's id, which the host may not
// have given (a run bootstrap started itself).
func (r *run) log(ctx context.Context) hclog.Logger { return r.a.Logger(sdk.WithRunID(ctx, r.id)) }

func (r *run) payload(status string) map[string]any {
	p := map[string]any{"runId": r.id, "status": status, "startTime": r.start.UnixMilli(), "source": r.source}
	if r.msg != nil {
		p["messageId"] = r.msg.ID
		p["roomId"] = r.msg.RoomID
		p["entityId"] = r.msg.EntityID
	}
	return p
}

// emit sends a run event. It uses a context of its own so that the end of
// a run that timed out or was cancelled is still told.
func (r *run) emit(ctx context.Context, typ string, p map[string]any) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := r.a.EmitEvent(ctx, sdk.Event{Type: typ, RunID: r.id, Source: r.source, Message: r.msg, Payload: p}); err != nil {
		r.log(ctx).Warn("emit run event failed", "event", typ, "error", err)
	}
}

// handleMessage is the MESSAGE_RECEIVED pipeline. Every path out of it,
// early or not, ends the run with RUN_ENDED.
func (b *bootstrap) handleMessage(ctx context.Context, a *sdk.Agent, ev *sdk.Event) (err error) {
	// A message may queue tasks (its actions may): the task service looks
	// when the run ends, not while it runs, which would put a read of the
	// tasks beside the message's own.
	defer b.state(a).tasks.poke()
	defer b.scheduler().handling()()
	r := &run{b: b, a: a, id: ev.RunID, msg: ev.Message, start: time.Now(), source: ev.Source}
	if r.id == "" {
		r.id = uuid.NewString()
	}
	if r.msg != nil && r.source == "" {
		r.source = r.msg.Content.Source
	}
	// RUN_STARTED goes out beside the work, not before it; RUN_ENDED waits
	// for it, so listeners still see the two in order.
	started := make(chan struct{})
	startPayload := r.payload("started")
	var startMsg *sdk.Memory
	if r.msg != nil {
		// The pipeline changes the message as it goes; the event gets its
		// ids and text as they were at the start.
		startMsg = &sdk.Memory{ID: r.msg.ID, EntityID: r.msg.EntityID, AgentID: r.msg.AgentID, RoomID: r.msg.RoomID,
			WorldID: r.msg.WorldID, CreatedAt: r.msg.CreatedAt, Content: sdk.Content{Text: r.msg.Content.Text, Source: r.msg.Content.Source}}
	}
	go func() {
		defer close(started)
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := a.EmitEvent(ctx, sdk.Event{Type: sdk.EventRunStarted, RunID: r.id, Source: r.source, Message: startMsg, Payload: startPayload}); err != nil {
			r.log(ctx).Warn("emit run event failed", "event", sdk.EventRunStarted, "error", err)
		}
	}()
	timeout := b.settings(a).runTimeout
	if dl, ok := ctx.Deadline(); ok {
		// End the run before the caller's deadline cuts it off, so that
		// RUN_TIMEOUT and RUN_ENDED are still sent.
		if left := time.Until(dl) - 2*time.Second; left < timeout {
			timeout = max(left, 100*time.Millisecond)
		}
	}
	deadline := time.Now().Add(timeout)
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	defer b.endRun(a, r.id)
	defer func() {
		<-started
		for _, w := range r.writes {
			w.wait()
		}
		status := "completed"
		p := r.payload(status)
		if err == nil && wctx.Err() != nil && ctx.Err() == nil {
			err = fmt.Errorf("run %s: %w", r.id, wctx.Err())
		}
		// A call cut off by the run's deadline may come back a moment
		// before the deadline fires here: an error that late is the
		// timeout too.
		timedOut := ctx.Err() == nil && (errors.Is(wctx.Err(), context.DeadlineExceeded) || time.Until(deadline) < 100*time.Millisecond)
		if err != nil {
			status = "error"
			if timedOut {
				status = "timeout"
				err = fmt.Errorf("run %s timed out after %s: %w", r.id, timeout.Round(time.Millisecond), context.DeadlineExceeded)
				tp := r.payload("timeout")
				tp["endTime"] = time.Now().UnixMilli()
				tp["error"] = err.Error()
				r.emit(ctx, sdk.EventRunTimeout, tp)
			}
			p["error"] = err.Error()
		}
		p["status"] = status
		end := time.Now()
		p["endTime"] = end.UnixMilli()
		p["duration"] = end.Sub(r.start).Milliseconds()
		if r.reason != "" {
			p["reason"] = r.reason
		}
		if r.reason == reasonDuplicate {
			// The host tells whoever delivered the message twice.
			p["duplicate"] = true
		}
		if r.replied && err == nil && b.info(ctx, a).Listens(sdk.EventRunEnded) {
			// The host hands the reply to whoever waits for the run (an
			// HTTP client) when this handler returns: RUN_ENDED follows
			// it rather than holding it up for a call to the host. With
			// nobody listening, it goes back with the answer (see
			// sdk.Agent.EmitEvent), no call at all.
			go r.emit(ctx, sdk.EventRunEnded, p)
			return
		}
		r.emit(ctx, sdk.EventRunEnded, p)
	}()
	if r.msg == nil {
		r.reason = reasonNoMessage
		return errors.New("MESSAGE_RECEIVED without a message")
	}
	return b.process(wctx, r)
}

// process does the work of a run.
func (b *bootstrap) process(ctx context.Context, r *run) error {
	a, msg := r.a, r.msg
	// The agent's own messages come back from some platforms; answering
	// them would loop.
	if msg.EntityID == a.ID {
		r.reason = reasonOwnMessage
		return nil
	}
	msg.AgentID = a.ID
	if msg.Table == "" {
		msg.Table = sdk.TableMessages
	}
	b.prefetch(ctx, a, msg)
	release, likelyDup := b.claimMessage(ctx, a, msg.ID)
	info := b.info(ctx, a)
	b.enrichAttachments(ctx, r, info)
	// The message is embedded and stored while the state is composed and
	// the response generated: with a model server, the embedding call
	// alone is a round trip as long as a short answer, and neither needs
	// the other. The providers see the message as if stored already
	// (withInFlight). That holds only for providers running here; when
	// another plugin's would run, and for a bot's message, which is
	// checked against the stored room first, the message is stored before
	// anything else, as is a message this process has stored before
	// (likelyDup): the store, not this process's memory, judges a
	// duplicate, since the host may have deleted a message stored but never
	// answered to hand it over again. Nothing is sent before the message is
	// stored: a delivery only the store finds a duplicate (one from before
	// a restart) drops its response, one model call spent, and the first
	// delivery answers, once. The should-respond question, asked in rooms
	// where the agent may keep quiet, waits for the store.
	stored := make(chan error, 1)
	sctx := ctx
	storeMsg := func() {
		err := b.storeIncoming(sctx, r, info)
		release(err == nil)
		stored <- err
	}
	storeErr := sync.OnceValue(func() error { return <-stored })
	// settle waits for the message to be stored; false means the run
	// ends here (an error, or a duplicate delivery).
	settle := func() (bool, error) {
		err := storeErr()
		return err == nil && r.reason != reasonDuplicate, err
	}
	// composeFailed is the run's error when its state could not be
	// composed: the store's, if that failed too.
	composeFailed := func(err error) error {
		if _, serr := settle(); serr != nil {
			return serr
		}
		return fmt.Errorf("compose state: %w", err)
	}
	if likelyDup || authorIsBot(msg) || !composesHere(info) {
		storeMsg()
		if ok, err := settle(); !ok {
			return err
		}
	} else {
		go storeMsg()
		ctx = context.WithValue(ctx, inFlightKey{}, *msg)
		ctx = b.readRoomEarly(ctx, a, msg.RoomID)
	}
	if authorIsBot(msg) {
		if !b.settings(a).respondToBots {
			r.reason = reasonAgentMessage
			return nil
		}
		if n, err := b.agentTurns(ctx, a, msg); err == nil && n > b.settings(a).maxAgentTurns {
			r.reason = reasonAgentTurns
			return nil
		}
		b.startRun(a, msg.RoomID, r.id)
	}
	named := mentions(a, msg.Content.Text)
	roomState, _ := cachedParticipantState(ctx, a, msg.RoomID, a.ID)
	if roomState == "MUTED" && !named {
		if ok, err := settle(); !ok {
			return err
		}
		r.reason = reasonMuted
		return nil
	}
	room, _ := cachedRoom(ctx, a, msg.RoomID)
	channelType := msg.Content.ChannelType
	if room != nil && room.Type != "" {
		channelType = room.Type
	}
	if channelType == sdk.ChannelDM {
		b.ensureDMOwner(ctx, r, room)
	}

	respond := named || bypass(a, channelType, msg.Content.Source)
	if !respond {
		st, err := a.ComposeState(ctx, msg, sdk.ComposeOptions{RunID: r.id, OnlyInclude: true,
			Include: []string{"ANXIETY", "SHOULD_RESPOND", "ENTITIES", "CHARACTER", "RECENT_MESSAGES", "ACTIONS"}})
		if err != nil {
			return composeFailed(err)
		}
		if ok, err := settle(); !ok {
			return err
		}
		prompt := renderPrompt(a, "shouldRespondTemplate", st, map[string]any{"roomFollowed": roomState == "FOLLOWED"})
		res, err := a.UseModel(ctx, sdk.ModelRequest{Type: sdk.ModelTextSmall, RunID: r.id, Prompt: prompt, System: system(a)})
		if err != nil {
			return fmt.Errorf("ask whether to respond: %w", err)
		}
		var why string
		respond, why = shouldRespondDecision(res.Text)
		if !respond {
			r.reason = reasonNotResponding
			b.recordIgnore(ctx, a, msg, r.id, why)
			b.evaluate(ctx, r, st, false, nil)
			return nil
		}
	}

	st, err := a.ComposeState(ctx, msg, sdk.ComposeOptions{RunID: r.id, Include: []string{"ACTIONS"}})
	if err != nil {
		return composeFailed(err)
	}
	resp, ok, err := b.generateResponse(ctx, r, st)
	if stored, serr := settle(); !stored {
		return serr
	}
	if err != nil {
		return err
	}
	if !ok {
		r.reason = reasonNoResponse
		return nil
	}
	if b.stale(a, r.id) {
		r.reason = reasonStale
		return nil
	}
	resp.Actions = normalizeIgnore(canonicalActions(info, resp.Actions), resp.Text)
	if len(resp.Providers) > 0 {
		// The model asked for more context: compose again with those
		// providers (dynamic ones included) for the actions to use.
		if st2, err := a.ComposeState(ctx, msg, sdk.ComposeOptions{RunID: r.id, Include: resp.Providers}); err == nil {
			st = st2
		} else {
			r.log(ctx).Warn("composing the requested providers failed", "providers", resp.Providers, "error", err)
		}
	}
	reply := sdk.Memory{
		ID: sdk.NewID(), EntityID: a.ID, AgentID: a.ID, RoomID: msg.RoomID, WorldID: msg.WorldID,
		CreatedAt: time.Now().UnixMilli(),
		Content: sdk.Content{Text: resp.Text, Thought: resp.Thought, Actions: resp.Actions, Providers: resp.Providers,
			Source: msg.Content.Source, InReplyTo: msg.ID},
	}
	simple := len(resp.Actions) == 1 && resp.Actions[0] == "REPLY" && len(resp.Providers) == 0 && strings.TrimSpace(resp.Text) != ""
	if simple {
		// One REPLY with its text: send it, without a second model call.
		if err := b.sendOnlyReply(ctx, a, r.id, msg, reply.Content); err != nil {
			return err
		}
		r.replied = true
	} else {
		_, err := a.ProcessActions(ctx, msg, []sdk.Memory{reply}, st, r.id)
		b.actionsRan(a, msg.RoomID)
		if err != nil {
			return fmt.Errorf("run actions: %w", err)
		}
	}
	b.evaluate(ctx, r, st, true, []sdk.Memory{reply})
	return nil
}

// maxHandled bounds the message ids an agent's state remembers as stored.
const maxHandled = 4096

// claimMessage tells the run whether its message is likely a duplicate
// (dup), so that it asks the store before the model. While a first
// delivery's message is being stored, a second waits for the outcome: it
// is likely a duplicate once the message is stored, and handles it itself
// if storing failed. A message this process stored earlier is likely a
// duplicate. The store remains the judge (storeIncoming): the host deletes
// a message that was stored but never answered before it hands it over
// again. release tells the outcome.
func (b *bootstrap) claimMessage(ctx context.Context, a *sdk.Agent, id string) (release func(stored bool), dup bool) {
	if id == "" {
		return func(bool) {}, false
	}
	return b.state(a).claim(ctx, id)
}

func (st *agentState) claim(ctx context.Context, id string) (release func(stored bool), dup bool) {
	for {
		st.mu.Lock()
		if st.handled.Get(id) {
			st.mu.Unlock()
			return func(bool) {}, true
		}
		wait, ok := st.handling[id]
		if !ok {
			done := make(chan struct{})
			st.handling[id] = done
			st.mu.Unlock()
			return func(stored bool) {
				st.mu.Lock()
				delete(st.handling, id)
				if stored {
					st.handled.Put(id, true)
				}
				st.mu.Unlock()
				close(done)
			}, false
		}
		st.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			// The store decides.
			return func(bool) {}, false
		}
	}
}

// inFlightKey carries the run's message, while it is being stored, to this
// plugin's providers (see withInFlight).
type inFlightKey struct{}

// withInFlight adds the run's message to a room's recent messages (newest
// first, at most limit) when it is still being stored as they are read,
// so that the prompt shows it as it would once stored.
func withInFlight(ctx context.Context, roomID string, ms []sdk.Memory, limit int) []sdk.Memory {
	m, ok := ctx.Value(inFlightKey{}).(sdk.Memory)
	if !ok || m.RoomID != roomID {
		return ms
	}
	if slices.ContainsFunc(ms, func(x sdk.Memory) bool { return x.ID == m.ID }) {
		return ms
	}
	m.Embedding = nil
	// A copy: the list read may be shared.
	return insertNewest(slices.Clone(ms), m, limit)
}

// composesHere reports whether every provider of the agent is this
// plugin's own, so that its state is composed in this process.
func composesHere(info *sdk.AgentInfo) bool {
	if info == nil {
		return false
	}
	for _, p := range info.Plugins {
		if p.Name != "bootstrap" && len(p.Providers) > 0 {
			return false
		}
	}
	return true
}

// storeIncoming stores the run's message; a message stored already marks
// the run a duplicate. When the agent has a model for it, the message's
// embedding is made after the reply (embeddings.go) or, for a message
// created a while ago, before it is stored. It works on a copy: the run's
// message is read meanwhile.
func (b *bootstrap) storeIncoming(ctx context.Context, r *run, info *sdk.AgentInfo) error {
	a, msg := r.a, *r.msg
	var later func(*laterEmbedding)
	if msg.Content.Text != "" && len(msg.Embedding) == 0 && info.HasModel(sdk.ModelTextEmbedding) {
		var deferred bool
		if later, deferred = b.state(a).embeds.later(ctx, msg.CreatedAt); !deferred {
			if err := embedNow(ctx, r, &msg); err != nil {
				return err
			}
		}
	}
	id, created, err := storage.For(a).CreateMemory(ctx, &msg, sdk.TableMessages, false)
	if later != nil {
		if err == nil && created {
			later(&laterEmbedding{id: id, runID: r.id, text: msg.Content.Text})
		} else {
			later(nil)
		}
	}
	if err != nil {
		b.forgetWindow(a, msg.RoomID)
		return fmt.Errorf("store incoming message: %w", err)
	}
	if !created {
		// Delivered twice: the first delivery handles it, exactly once.
		r.reason = reasonDuplicate
		return nil
	}
	msg.ID = id
	b.windowStored(a, &msg)
	countStored(a, msg.RoomID)
	if !authorIsBot(&msg) {
		// The run is the room's latest (see stale) from the moment its
		// message is stored: of deliveries of one message at once, only
		// the one that stored it. A bot's counts once it is answered.
		b.startRun(a, msg.RoomID, r.id)
	}
	return nil
}

// embedNow makes msg's embedding before it is stored.
func embedNow(ctx context.Context, r *run, msg *sdk.Memory) error {
	res, err := r.a.UseModel(ctx, sdk.ModelRequest{Type: sdk.ModelTextEmbedding, RunID: r.id, Text: msg.Content.Text})
	switch {
	case err != nil && transient(ctx, err):
		// The model plugin is down or hung: fail the run, as a failing
		// text model does, rather than answer from a half-working agent.
		return fmt.Errorf("embed the message: %w", err)
	case err != nil:
		r.log(ctx).Warn("embedding the message failed; it is stored without one", "error", err)
	default:
		msg.Embedding = res.Embedding
	}
	return nil
}

// generateResponse asks TEXT_LARGE for the main response. An answer with
// broken markup, or none, is asked for again; a plain-text answer is a
// reply.
func (b *bootstrap) generateResponse(ctx context.Context, r *run, st *sdk.State) (response, bool, error) {
	a := r.a
	prompt := renderPrompt(a, "messageHandlerTemplate", st, nil)
	attempts := b.settings(a).responseRetries
	for i := 0; i < attempts; i++ {
		p := prompt
		if i > 0 {
			p += "\nYour previous answer could not be read. Answer with the XML block only, with <actions> and <text>.\n"
		}
		res, err := a.UseModel(ctx, sdk.ModelRequest{Type: sdk.ModelTextLarge, RunID: r.id, Prompt: p, System: system(a)})
		if err != nil {
			// A failing model (down, crashed, out of time) fails the run:
			// asking again is the model plugin's business.
			return response{}, false, fmt.Errorf("ask the model: %w", err)
		}
		resp, kind := parseResponse(res.Text)
		switch kind {
		case answerXML, answerPlain:
			if len(resp.Actions) == 0 && resp.Text != "" {
				resp.Actions = []string{"REPLY"}
			}
			return resp, true, nil
		}
		r.log(ctx).Warn("unusable model answer; asking again", "attempt", i+1, "answer", truncate(res.Text, 200))
	}
	return response{}, false, nil
}

// evaluate hands the run's evaluation to the agent's evaluation queue
// (evaluations.go) when any evaluator would run. The handler returns at
// once: the validations (a read of the room, every few messages) and the
// task that holds the evaluation follow on a goroutine, so the client has
// the reply without waiting for them, as before it did not wait for the
// evaluators themselves.
func (b *bootstrap) evaluate(ctx context.Context, r *run, st *sdk.State, didRespond bool, responses []sdk.Memory) {
	if ctx.Err() != nil {
		return
	}
	q := b.state(r.a).evals
	p, prev := q.reserve(r.msg.RoomID)
	if p == nil {
		// The agent is stopping: hold the evaluation, if it is to run,
		// for the next start, as the handler's last act.
		if b.anyEvaluatorMayRun(ctx, r.a, r.msg, st, didRespond, true) {
			b.holdEvaluation(ctx, r, didRespond, responses)
		}
		return
	}
	base := context.WithoutCancel(ctx)
	go func() {
		if prev != nil {
			select {
			case <-prev:
			case <-q.ctx.Done():
				q.fill(p, nil) // the agent stopped
				return
			}
		}
		// The wait for the room's earlier evaluation does not count
		// against the calls' deadline.
		ctx, cancel := context.WithTimeout(base, contract.DefaultCallTimeout)
		defer cancel()
		defer context.AfterFunc(q.ctx, cancel)()
		if ctx.Err() != nil || !b.anyEvaluatorMayRun(ctx, r.a, r.msg, st, didRespond, true) {
			q.fill(p, nil)
			return
		}
		e := b.holdEvaluation(ctx, r, didRespond, responses)
		q.fill(p, &e)
	}()
}

// anyEvaluatorMayRun saves the recomposed state and the round trip when no
// evaluator would run: when every evaluator of the agent is this plugin's
// own, their validations are asked here first, as the evaluation is
// scheduled and again before it runs (an evaluation held back while
// messages were handled may find its work done by one before it). Another
// plugin's evaluator is always given its chance.
func (b *bootstrap) anyEvaluatorMayRun(ctx context.Context, a *sdk.Agent, msg *sdk.Memory, st *sdk.State, didRespond, scheduling bool) bool {
	info := b.info(ctx, a)
	if info == nil {
		return true
	}
	for _, p := range info.Plugins {
		for _, e := range p.Evaluators {
			if p.Name != "bootstrap" {
				return true
			}
			own := b.ownEvaluator(e.Name)
			if own == nil || own.Validate == nil {
				return true
			}
			vctx := ctx
			if scheduling {
				vctx = context.WithValue(ctx, schedulingKey{}, true)
			}
			if (didRespond || own.AlwaysRun) && own.Validate(vctx, a, msg, st) {
				return true
			}
		}
	}
	return false
}

func (b *bootstrap) ownEvaluator(name string) *sdk.Evaluator {
	if e := b.reflectionEvaluator(); e.Name == name {
		return &e
	}
	return nil
}

// sendReply stores the agent's message and sends it back through the
// message's source. The memory is stored first so that a reply a user saw
// is never missing from the history. A run that a newer message made stale
// sends nothing.
func (b *bootstrap) sendReply(ctx context.Context, a *sdk.Agent, runID string, msg *sdk.Memory, c sdk.Content) (*sdk.Memory, error) {
	if b.stale(a, runID) {
		return nil, nil
	}
	if c.Source == "" {
		c.Source = msg.Content.Source
	}
	if c.InReplyTo == "" {
		c.InReplyTo = msg.ID
	}
	reply := &sdk.Memory{ID: sdk.NewID(), EntityID: a.ID, AgentID: a.ID, RoomID: msg.RoomID, WorldID: msg.WorldID,
		CreatedAt: time.Now().UnixMilli(), Content: c}
	if _, _, err := storage.For(a).CreateMemory(ctx, reply, sdk.TableMessages, false); err != nil {
		b.forgetWindow(a, reply.RoomID)
		return nil, fmt.Errorf("store reply: %w", err)
	}
	b.windowStored(a, reply)
	countStored(a, reply.RoomID)
	if err := b.respond(ctx, a, runID, reply); err != nil {
		return nil, fmt.Errorf("send reply: %w", err)
	}
	return reply, nil
}

// sendOnlyReply sends the one reply of a run that runs no actions. The
// host stores a reply that comes without a memory id in the run's room
// before it sends it, as sendReply would: one call to the host instead of
// two. A run the host does not hold (one an event started) goes through
// sendReply.
func (b *bootstrap) sendOnlyReply(ctx context.Context, a *sdk.Agent, runID string, msg *sdk.Memory, c sdk.Content) error {
	if _, evRun := b.eventRuns.Load(a.ID + "\x00" + runID); evRun || msg.RoomID == "" {
		_, err := b.sendReply(ctx, a, runID, msg, c)
		return err
	}
	if b.stale(a, runID) {
		return nil
	}
	if c.Source == "" {
		c.Source = msg.Content.Source
	}
	if c.InReplyTo == "" {
		c.InReplyTo = msg.ID
	}
	// The host stores the reply as it sends it, stamped no earlier than
	// now: in the room's window it goes before the messages stamped
	// before, as in the database.
	at, mark := time.Now().UnixMilli(), b.markWindow(a, msg.RoomID)
	if _, err := a.RespondLast(ctx, runID, c, ""); err != nil {
		b.forgetWindow(a, msg.RoomID)
		return fmt.Errorf("send reply: %w", err)
	}
	b.windowStoredSince(a, &sdk.Memory{EntityID: a.ID, AgentID: a.ID, RoomID: msg.RoomID, WorldID: msg.WorldID,
		CreatedAt: at, Content: c, Table: sdk.TableMessages}, mark)
	countStored(a, msg.RoomID)
	return nil
}

// recordIgnore stores the decision not to respond, as elizaOS does. It is
// not sent anywhere: a platform has nothing to show for silence.
func (b *bootstrap) recordIgnore(ctx context.Context, a *sdk.Agent, msg *sdk.Memory, runID, why string) {
	thought := "decided not to respond"
	if why != "" {
		thought += ": " + why
	}
	m := &sdk.Memory{ID: sdk.NewID(), EntityID: a.ID, AgentID: a.ID, RoomID: msg.RoomID, WorldID: msg.WorldID,
		CreatedAt: time.Now().UnixMilli(),
		Content: sdk.Content{Thought: thought, Actions: []string{"IGNORE"}, Source: msg.Content.Source, InReplyTo: msg.ID,
			Extra: map[string]any{"runId": runID}}}
	if _, _, err := storage.For(a).CreateMemory(ctx, m, sdk.TableMessages, false); err != nil {
		b.forgetWindow(a, m.RoomID)
		a.Logger(sdk.WithRunID(ctx, runID)).Warn("storing the ignore decision failed", "error", err)
		return
	}
	b.windowStored(a, m)
}

// startRun makes runID the newest run of the room.
func (b *bootstrap) startRun(a *sdk.Agent, roomID, runID string) {
	st := b.state(a)
	st.mu.Lock()
	st.latest[roomID] = runID
	st.runs[runID] = roomID
	st.mu.Unlock()
}

// stale reports whether a newer message of the room started a run after
// runID did. Runs that are not pipeline runs (tasks) are never stale.
func (b *bootstrap) stale(a *sdk.Agent, runID string) bool {
	st := b.state(a)
	st.mu.Lock()
	defer st.mu.Unlock()
	room, ok := st.runs[runID]
	return ok && st.latest[room] != runID
}

// endRun forgets a finished run.
func (b *bootstrap) endRun(a *sdk.Agent, runID string) {
	st := b.state(a)
	st.mu.Lock()
	defer st.mu.Unlock()
	if room, ok := st.runs[runID]; ok {
		if st.latest[room] == runID {
			delete(st.latest, room)
		}
		delete(st.runs, runID)
	}
}

// authorIsBot reports whether the host marked the message as written by a
// bot or another agent.
func authorIsBot(m *sdk.Memory) bool {
	v, _ := m.Metadata["authorIsBot"].(bool)
	return v
}

// agentTurns counts the messages of bots and other agents in the room since
// the last message of a person.
func (b *bootstrap) agentTurns(ctx context.Context, a *sdk.Agent, msg *sdk.Memory) (int, error) {
	limit := b.settings(a).maxAgentTurns
	ms, err := storage.For(a).GetMemories(ctx, storage.MemoryQuery{Table: sdk.TableMessages, RoomID: msg.RoomID, Count: 4*limit + 8, OmitEmbeddings: true})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range ms {
		switch {
		case m.EntityID == a.ID || isActionResult(&m) || m.Content.Text == "":
			continue
		case authorIsBot(&m):
			n++
		default:
			return n, nil
		}
	}
	return n, nil
}

// mentions reports whether text names the agent (its name or user name) as
// a word, with or without an @.
func mentions(a *sdk.Agent, text string) bool {
	names := []string{a.Name()}
	if a.Character != nil && a.Character.Username != "" {
		names = append(names, a.Character.Username)
	}
	low := strings.ToLower(text)
	for _, n := range names {
		n = strings.ToLower(strings.TrimSpace(n))
		if n == "" {
			continue
		}
		for i := 0; ; {
			j := strings.Index(low[i:], n)
			if j < 0 {
				break
			}
			at := i + j
			end := at + len(n)
			before, after := ' ', ' '
			if at > 0 {
				before = lastRune(low[:at])
			}
			if end < len(low) {
				after = []rune(low[end:])[0]
			}
			if !isWordRune(before) && !isWordRune(after) {
				return true
			}
			i = at + 1
		}
	}
	return false
}

func lastRune(s string) rune {
	r := []rune(s)
	return r[len(r)-1]
}

func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' }

// bypass reports whether messages of this room type or source are always
// answered.
func bypass(a *sdk.Agent, channelType sdk.ChannelType, source string) bool {
	types := append(slices.Clone(defaultBypassTypes), a.Config().List(SettingBypassTypes)...)
	for _, t := range types {
		if strings.EqualFold(t, string(channelType)) {
			return true
		}
	}
	src := strings.ToLower(source)
	for _, s := range append(slices.Clone(defaultBypassSources), a.Config().List(SettingBypassSources)...) {
		if s = strings.ToLower(s); s != "" && strings.Contains(src, s) {
			return true
		}
	}
	return false
}

// canonicalActions maps the model's action names to the agent's, as the
// host resolves them (by name without regard to case, spaces, dashes or
// underscores, then by simile, then by an unambiguous part of a name).
// Unknown names stay as they are (the host records them as failed).
func canonicalActions(info *sdk.AgentInfo, names []string) []string {
	actions := info.Actions()
	var out []string
	for _, n := range names {
		out = append(out, canonicalAction(actions, n))
	}
	return dedupeNames(out)
}

func canonicalAction(actions []sdk.ActionInfo, name string) string {
	if len(actions) == 0 {
		// Without the agent's list, at least agree on case.
		return strings.ToUpper(strings.TrimSpace(name))
	}
	i := contract.ResolveActionName(name, len(actions), func(i int) (string, []string) { return actions[i].Name, actions[i].Similes })
	if i < 0 {
		return name
	}
	return actions[i].Name
}

func normalizeIgnore(actions []string, text string) []string {
	if !slices.Contains(actions, "IGNORE") || len(actions) == 1 {
		return actions
	}
	if strings.TrimSpace(text) == "" {
		return []string{"IGNORE"}
	}
	out := slices.DeleteFunc(slices.Clone(actions), func(s string) bool { return s == "IGNORE" })
	if len(out) == 0 {
		out = []string{"REPLY"}
	}
	return out
}

func system(a *sdk.Agent) string {
	if a.Character != nil && a.Character.System != "" {
		return a.Character.System
	}
	return fmt.Sprintf("You are %s, a helpful conversational agent.", a.Name())
}

// isActionResult reports whether a memory records an action's result.
func isActionResult(m *sdk.Memory) bool {
	t, _ := m.Content.Extra["type"].(string)
	return t == "action_result"
}
