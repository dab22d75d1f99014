package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
)

// A message is stored as soon as it comes and embedded after its reply.
// The reply needs the stored message, not its embedding, and with a model
// server the embedding is a round trip of its own plus a vector of some
// 6 KiB carried through three processes: made before the store, it was
// as long as composing the state and asking for the response, and the
// reply waited for whichever ended last. Now the embedding yields to
// messages as evaluations do (quietGate): a conversation at a human pace
// has it a moment after the reply, messages sent back to back have their
// embeddings made when the burst ends, or every second under a steady
// load.
//
// A stored message waiting for its embedding must not be lost with the
// process. A task, the agent's embedding marker, says since when stored
// messages may lack one ("through", unix ms of their creation) and
// whether any does ("settled" once none does). The first message whose
// embedding waits unsettles the marker before it is stored, once for the
// life of the process; the marker's "through" follows the embeddings as
// they are made, and the agent's orderly stop settles it. At the next
// start, an unsettled marker has the messages created since "through"
// read and those without an embedding embedded.
//
// Only a message created at most embedLag before it is stored waits for
// its embedding: "through" is kept embedLag behind the clock, so a
// message that comes after a marker was written was created after the
// marker's "through", and is read again at the next start if it has to
// be. An older one (a delivery handed over again, a backlog) is embedded
// before it is stored, as all were before.

// embeddingMarker names and tags the task that is the marker.
const embeddingMarker = "bootstrap:embeddings"

const (
	// embedLag is how much older than now a message may be created and
	// still have its embedding made after the reply; see above.
	embedLag = 10 * time.Second
	// markEvery is how far "through" must move before the marker is
	// written again while the agent runs: a restart after a crash reads
	// that much more of the stored messages, a busy agent writes the
	// marker every few seconds rather than after every burst.
	markEvery = 5 * time.Second
	// embedWorkers is how many embeddings are made at once: one at a
	// time, a round trip through three processes each, they fell behind
	// ten senders.
	embedWorkers = 8
	// deferFor is how long the oldest embedding may have waited for the
	// process to be quiet before messages are embedded before they are
	// stored again, beside the state's composition as they were. Messages
	// that keep coming without a pause leave no quiet moment to make
	// their embeddings in, and made later they cost a write and a few
	// crossings more than made in the run: deferring pays when a pause
	// comes, as in a conversation or a burst, not under a steady load.
	deferFor = time.Second
	// embedMaxWait is how long an embedding waits for a quiet moment at
	// most; then it is made among the messages.
	embedMaxWait = 10 * time.Second
	// maxWaiting bounds the messages waiting for their embeddings; more
	// are embedded before they are stored.
	maxWaiting = 256
	// embedTimeout bounds one deferred embedding and its write.
	embedTimeout = time.Minute
	// embedRetryMax bounds the pause after the model or the database
	// failed for now.
	embedRetryMax = 30 * time.Second
	// recoverPage is how many stored messages one read of a recovery
	// returns, and recoverMax how many it reads at most: a crash leaves
	// far fewer waiting, and a marker whose "through" was lost (another
	// plugin of the agent may write tasks) must not have every start read
	// the agent's whole history.
	recoverPage = 500
	recoverMax  = 20 * recoverPage
	// settleIdle is how long an agent has had no message waiting for its
	// embedding before its marker is settled. The daemon's stop ends the
	// plugins without a word to the database, so this is what spares a
	// restart the read of the messages since "through" (and the next
	// message the marker's write, once the agent is busy again).
	settleIdle = time.Minute
)

// laterEmbedding is a stored message waiting for its embedding.
type laterEmbedding struct {
	id, runID, text string
	createdAt       int64 // unix ms, the message's
	queued          time.Time
}

// embedQueue makes one agent's deferred embeddings, oldest first, on a
// goroutine that runs while any wait.
type embedQueue struct {
	a     *sdk.Agent
	store Store // keeps the marker
	gate  *quietGate
	now   func() time.Time
	tune  embedTuning
	// ctx ends when the agent stops; embeddings still waiting then are
	// made at the next start.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	pending []laterEmbedding
	// storing counts, by creation time, the messages being stored whose
	// embedding will wait: they hold "through" back as pending ones do.
	storing map[int64]int
	running bool
	closed  bool
	// batchDone is closed when the batch being made and stored is done;
	// nil between batches.
	batchDone chan struct{}
	// active is when a message last came to wait for its embedding;
	// settle waits for settleIdle after it.
	active time.Time
	settle *time.Timer
	// recovered: the first look read the marker (recover); until then
	// every message is embedded before it is stored.
	recovered bool
	// scanning: a recovery is reading the stored messages; the marker
	// is not moved meanwhile.
	scanning bool

	// markMu orders the writes of the marker.
	markMu sync.Mutex
	marker string // the marker task's id; "" when there is none yet
	// armed: the stored marker is unsettled, so a message may be stored
	// before its embedding is made.
	armed   bool
	through int64 // the marker's stored "through"
}

// embedTuning is what tests change of the queue's constants.
type embedTuning struct {
	settleIdle              time.Duration
	maxWaiting              int
	recoverPage, recoverMax int
}

var defaultEmbedTuning = embedTuning{settleIdle: settleIdle, maxWaiting: maxWaiting, recoverPage: recoverPage, recoverMax: recoverMax}

func newEmbedQueue(a *sdk.Agent, store Store, gate *quietGate, tune embedTuning) *embedQueue {
	ctx, cancel := context.WithCancel(context.Background())
	return &embedQueue{a: a, store: store, gate: gate, now: time.Now, tune: tune,
		ctx: ctx, cancel: cancel, storing: map[int64]int{}}
}

// later reports whether the embedding of a message created at createdAt
// (0: now) may be made after it is stored. When it may, the message
// holds the marker back until done is called, with the embedding to make
// or, when the message was not stored, nil.
func (q *embedQueue) later(ctx context.Context, createdAt int64) (done func(*laterEmbedding), ok bool) {
	now := q.now()
	if createdAt == 0 {
		createdAt = now.UnixMilli()
	}
	q.mu.Lock()
	ok = q.recovered && !q.closed && createdAt >= now.Add(-embedLag).UnixMilli() &&
		len(q.pending)+len(q.storing) < q.tune.maxWaiting && (len(q.pending) == 0 || now.Sub(q.pending[0].queued) < deferFor)
	if ok {
		q.storing[createdAt]++
		q.active = now
	}
	q.mu.Unlock()
	if !ok {
		return nil, false
	}
	release := func() {
		if q.storing[createdAt]--; q.storing[createdAt] == 0 {
			delete(q.storing, createdAt)
		}
	}
	if err := q.arm(ctx); err != nil {
		q.a.Logger(ctx).Warn("could not mark the message's embedding as waiting; it is made before the message is stored", "error", err)
		q.mu.Lock()
		release()
		q.mu.Unlock()
		return nil, false
	}
	return func(e *laterEmbedding) {
		q.mu.Lock()
		defer q.mu.Unlock()
		release()
		if e != nil {
			e.createdAt, e.queued = createdAt, q.now()
			q.pushLocked(*e)
		}
	}, true
}

// pushLocked queues e and starts the goroutine if it is not running.
func (q *embedQueue) pushLocked(e laterEmbedding) {
	q.pending = append(q.pending, e)
	if !q.running && !q.closed {
		q.running = true
		q.wg.Add(1)
		go q.run()
	}
}

// throughLocked is how far the marker may say the stored messages have
// their embeddings: up to the oldest message waiting, or being stored to
// wait, and embedLag behind the clock.
func (q *embedQueue) throughLocked() int64 {
	t := q.now().Add(-embedLag).UnixMilli()
	for _, e := range q.pending {
		t = min(t, e.createdAt)
	}
	for c := range q.storing {
		t = min(t, c)
	}
	return t
}

// arm makes sure the stored marker is unsettled before a message is
// stored without its embedding: the first such message of the process
// writes it, the others find it done.
func (q *embedQueue) arm(ctx context.Context) error {
	q.markMu.Lock()
	defer q.markMu.Unlock()
	if q.armed {
		return nil
	}
	q.mu.Lock()
	through := q.throughLocked()
	q.mu.Unlock()
	if err := q.writeMarker(ctx, through, false); err != nil {
		return err
	}
	q.armed = true
	return nil
}

// writeMarker stores the marker, creating it the first time. Called with
// markMu held.
func (q *embedQueue) writeMarker(ctx context.Context, through int64, settled bool) error {
	meta := map[string]any{"through": through, "settled": settled}
	if q.marker == "" {
		id, err := q.store.CreateTask(ctx, q.a, Task{Name: embeddingMarker, Tags: []string{embeddingMarker},
			Description: "messages stored since `through` may wait for their embeddings", Metadata: meta})
		if err != nil {
			return fmt.Errorf("create the embedding marker: %w", err)
		}
		q.marker = id
	} else if err := q.store.UpdateTask(ctx, q.a, Task{ID: q.marker, Tags: []string{embeddingMarker}, Metadata: meta}); err != nil {
		return fmt.Errorf("update the embedding marker: %w", err)
	}
	q.through = through
	return nil
}

// mark moves the marker's "through" on, when it has moved far enough.
func (q *embedQueue) mark(ctx context.Context) {
	q.markMu.Lock()
	defer q.markMu.Unlock()
	q.mu.Lock()
	through, scanning := q.throughLocked(), q.scanning
	q.mu.Unlock()
	if !q.armed || scanning || through-q.through < markEvery.Milliseconds() {
		return
	}
	if err := q.writeMarker(ctx, through, false); err != nil {
		q.a.Logger(ctx).Debug("could not move the embedding marker on; a restart reads more of the stored messages", "error", err)
	}
}

// run makes the waiting embeddings, oldest first, embedWorkers at a time
// once the process is quiet (quietGate), until none waits.
func (q *embedQueue) run() {
	defer q.wg.Done()
	pause := time.Duration(0)
	for {
		q.mu.Lock()
		if q.closed || len(q.pending) == 0 {
			q.running = false
			if !q.closed {
				q.settleLaterLocked(q.tune.settleIdle)
			}
			q.mu.Unlock()
			return
		}
		first := q.pending[0].queued
		q.mu.Unlock()
		// The gate lets work wait evalMaxWait for a quiet moment; an
		// embedding waits embedMaxWait.
		if q.gate.wait(q.ctx, first.Add(embedMaxWait-q.gate.maxWait)) != nil {
			continue // stopped: the loop ends
		}
		// The gate lets go of everything queued until now; the batch
		// stays among the pending, holding the marker back, until done.
		q.mu.Lock()
		batch := slices.Clone(q.pending[:min(len(q.pending), embedWorkers)])
		done := make(chan struct{})
		q.batchDone = done
		q.mu.Unlock()
		errs := make([]error, len(batch))
		var wg sync.WaitGroup
		for i := range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = q.embed(batch[i])
			}()
		}
		wg.Wait()
		var failed []laterEmbedding
		var err error
		for i := range batch {
			if errs[i] != nil {
				failed, err = append(failed, batch[i]), errs[i]
			}
		}
		q.mu.Lock()
		q.pending = append(failed, q.pending[len(batch):]...)
		q.batchDone = nil
		q.mu.Unlock()
		close(done)
		q.mark(q.ctx)
		if err == nil {
			pause = 0
			continue
		}
		// The model plugin or the database is down: the messages wait,
		// and are tried again after a pause that grows while it fails.
		pause = min(max(2*pause, time.Second), embedRetryMax)
		q.a.Logger(q.ctx).Warn("message embeddings could not be made for now; trying again", "waiting", len(failed), "in", pause, "error", err)
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-q.ctx.Done():
			t.Stop()
		}
	}
}

// settleLaterLocked has the marker settled after d, if the agent is idle
// then.
func (q *embedQueue) settleLaterLocked(d time.Duration) {
	if q.settle != nil {
		q.settle.Stop()
	}
	q.settle = time.AfterFunc(d, q.settleIfIdle)
}

// settleIfIdle settles the marker when nothing waits and nothing came for
// settleIdle; when something came meanwhile, it looks again later.
func (q *embedQueue) settleIfIdle() {
	q.markMu.Lock()
	defer q.markMu.Unlock()
	q.mu.Lock()
	if q.closed || q.running || q.scanning || len(q.pending) > 0 || len(q.storing) > 0 {
		q.mu.Unlock()
		return // the queue schedules the next look when it drains
	}
	if idle := q.now().Sub(q.active); idle < q.tune.settleIdle {
		q.settleLaterLocked(q.tune.settleIdle - idle)
		q.mu.Unlock()
		return
	}
	through := q.throughLocked()
	q.mu.Unlock()
	q.settleLocked(through)
}

// settleLocked writes the marker settled, with markMu held: every message
// stored so far has its embedding.
func (q *embedQueue) settleLocked(through int64) {
	if !q.armed {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := q.writeMarker(ctx, through, true); err != nil {
		q.a.Logger(ctx).Debug("could not settle the embedding marker; the next start reads the messages since it", "error", err)
		return
	}
	q.armed = false
}

// embed makes one message's embedding and stores it. It returns an error
// only when it should be tried again (the model plugin or the database is
// down or hung); other failures leave the message without an embedding,
// as a message whose embedding failed was stored before.
func (q *embedQueue) embed(e laterEmbedding) error {
	ctx, cancel := context.WithTimeout(q.ctx, embedTimeout)
	defer cancel()
	if e.runID != "" {
		ctx = sdk.WithRunID(ctx, e.runID)
	}
	res, err := q.a.UseModel(ctx, sdk.ModelRequest{Type: sdk.ModelTextEmbedding, RunID: e.runID, Text: e.text})
	switch {
	case err != nil && transient(ctx, err):
		return fmt.Errorf("embed message %s: %w", e.id, err)
	case err != nil:
		q.a.Logger(ctx).Warn("embedding a message failed; it stays without one", "message", e.id, "error", err)
		return nil
	}
	_, err = storage.For(q.a).UpdateMemory(ctx, storage.MemoryUpdate{ID: e.id, Embedding: res.Embedding})
	switch {
	case err == nil || errors.Is(err, sdk.ErrNotFound):
		return nil // stored, or the message was deleted meanwhile
	case errors.Is(err, sdk.ErrInvalid) || errors.Is(err, sdk.ErrUnimplemented):
		q.a.Logger(ctx).Warn("storing a message's embedding failed; it stays without one", "message", e.id, "error", err)
		return nil
	}
	return fmt.Errorf("store the embedding of message %s: %w", e.id, err)
}

// transient reports whether a failed call may succeed when tried again
// later: its plugin is down or hung.
func transient(ctx context.Context, err error) bool {
	return errors.Is(err, sdk.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil
}

// close stops the queue. With nothing waiting, the marker is settled, so
// the next start reads nothing; what still waits is made then. (An agent
// stopped with its daemon finds the database gone by now: its marker was
// settled after settleIdle, or the next start reads.)
// closeGrace bounds how long an agent's stop waits for the embeddings
// being made.
const closeGrace = time.Second

func (q *embedQueue) close() {
	q.mu.Lock()
	q.closed = true
	if q.settle != nil {
		q.settle.Stop()
	}
	done := q.batchDone
	q.mu.Unlock()
	if done != nil {
		// The embeddings being made and stored get a moment to land: cut
		// off, a write the database had made would count as failed, and
		// the marker would stay unsettled for the next start to check.
		t := time.NewTimer(closeGrace)
		select {
		case <-done:
		case <-t.C:
		}
		t.Stop()
	}
	q.cancel()
	q.wg.Wait()
	q.markMu.Lock()
	defer q.markMu.Unlock()
	q.mu.Lock()
	idle := len(q.pending) == 0 && len(q.storing) == 0 && !q.scanning
	through := q.throughLocked()
	q.mu.Unlock()
	if idle {
		q.settleLocked(through)
	}
}

// isEmbeddingMarker reports whether t is an agent's embedding marker.
func isEmbeddingMarker(t *Task) bool {
	return t.Name == embeddingMarker && hasTag(t, embeddingMarker)
}

// recoverEmbeddings reads the agent's embedding marker at the first look
// (the task service's, which reads every task) and, when an earlier
// process left messages waiting, queues their embeddings.
func (b *bootstrap) recoverEmbeddings(ctx context.Context, a *sdk.Agent, markers []Task) {
	q := b.state(a).embeds
	if len(markers) == 0 {
		q.mu.Lock()
		q.recovered = true
		q.mu.Unlock()
		return
	}
	keep, settled := markers[0], true
	through := int64(-1)
	for i, m := range markers {
		t, ok := m.Metadata["through"].(float64)
		s, _ := m.Metadata["settled"].(bool)
		if !ok {
			t, s = 0, false // unreadable: read everything
		}
		if through < 0 || int64(t) < through {
			through = int64(t)
		}
		settled = settled && s
		if i > 0 {
			// Two markers come from a process that died as it made the
			// first: one is enough, at the older "through".
			_ = q.store.DeleteTask(ctx, a, m.ID)
		}
	}
	q.markMu.Lock()
	q.marker, q.through, q.armed = keep.ID, through, !settled
	q.markMu.Unlock()
	q.mu.Lock()
	q.recovered, q.scanning = true, !settled
	q.mu.Unlock()
	if settled {
		return
	}
	n, err := b.queueMissingEmbeddings(ctx, a, q, through)
	q.mu.Lock()
	q.scanning = false
	if err == nil && !q.running {
		q.settleLaterLocked(0) // nothing was missing
	}
	q.mu.Unlock()
	if err != nil {
		// The marker stays where it was: the next start reads again.
		a.Logger(ctx).Warn("could not read the messages stored before the last stop that may lack their embeddings", "error", err)
	}
	if n > 0 {
		a.Logger(ctx).Info("embedding messages an earlier process stored without their embeddings", "messages", n)
	}
}

// queueMissingEmbeddings reads the agent's messages created since through
// and queues the embeddings of those stored without one.
func (b *bootstrap) queueMissingEmbeddings(ctx context.Context, a *sdk.Agent, q *embedQueue, through int64) (int, error) {
	seen := map[string]bool{}
	var missing []laterEmbedding
	end := int64(0)
	for {
		ms, err := storage.For(a).GetMemories(ctx, storage.MemoryQuery{Table: sdk.TableMessages, Start: through, End: end, Count: q.tune.recoverPage})
		if err != nil {
			return 0, err
		}
		fresh := 0
		for i := range ms {
			m := &ms[i]
			if seen[m.ID] {
				continue
			}
			seen[m.ID] = true
			fresh++
			if len(m.Embedding) == 0 && m.EntityID != a.ID && m.Content.Text != "" && !isActionResult(m) {
				missing = append(missing, laterEmbedding{id: m.ID, text: m.Content.Text, createdAt: m.CreatedAt})
			}
			if end == 0 || m.CreatedAt < end {
				end = m.CreatedAt
			}
		}
		if len(ms) < q.tune.recoverPage || fresh == 0 {
			break
		}
		if len(seen) >= q.tune.recoverMax {
			a.Logger(ctx).Warn("read the newest messages since the embedding marker only; older ones stay without embeddings",
				"read", len(seen), "since", through)
			break
		}
	}
	// Oldest first, as they were stored.
	slices.Reverse(missing)
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	for _, e := range missing {
		e.queued = now
		q.pushLocked(e)
	}
	return len(missing), nil
}
