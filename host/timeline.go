package host

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agenthost/agenthost/internal/contract"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/hashicorp/go-hclog"
)

// logWriter stores timeline entries in the background so that recording a
// model call never adds a database round trip to the message's path.
// Entries wait in a queue of at most max. While the database takes them, a
// full queue makes writers wait: nothing is dropped under load. While it
// cannot (PostgreSQL gone, the sql plugin down), the entries stay queued
// and the writer tries again, with backoff, until the database is back; a
// full queue then drops the newest entries and counts them, so an outage
// costs memory up to the bound and never holds up a message.
//
// A message makes about seven entries over its few milliseconds (its run,
// its events, each model call); the writer lets the first one wait
// logLinger for the others, so that they go in one AddLogs call rather
// than one each. That call was, one entry at a time, the database
// plugin's most frequent. A batch then waits, up to logDefer more, for a
// quiet moment, logQuiet with no run in flight: its transaction (a
// millisecond or more, with the prompts of several model calls) holds
// SQLite's one writer, and a message that stores itself or its reply
// meanwhile waited for it. The moment between two messages of a
// conversation sent one after the other is not one: a batch written then
// held up the next message's store, every fifth message. Under steady load
// there is no quiet moment, and batches go when they are full or have
// waited logDefer.
type logWriter struct {
	log hclog.Logger
	// onAdd hears every entry as it is written (the live log stream).
	onAdd func(*AgentRuntime, *pb.LogEntry)
	max   int
	// retry is the first wait after a failed write; it doubles up to
	// maxLogRetry.
	retry time.Duration
	// linger is how long the first entry of a batch waits for others.
	linger time.Duration

	mu   sync.Mutex
	cond *sync.Cond
	// queue holds the entries not stored yet, oldest first.
	queue []logJob
	// failing is the error of the last write while the database cannot
	// take entries; nil while it can.
	failing error
	dropped int
	closed  bool
	stop    chan struct{}
	// full cuts the linger short: a batch's worth is waiting.
	full chan struct{}
	done chan struct{}
	// runs counts the runs in flight; quiet hears when the last one ends,
	// and lastEnd (unix nanoseconds) is when one last ended.
	runs    atomic.Int64
	lastEnd atomic.Int64
	quiet   chan struct{}
	// deferFor is how long a batch waits for quietFor without a run in
	// flight (logDefer, logQuiet).
	deferFor, quietFor time.Duration
	// store writes a batch (write; a test's own).
	store func([]logJob) ([]logJob, error)
}

type logJob struct {
	a *AgentRuntime
	l *pb.LogEntry
}

const (
	// maxLogBatch bounds one AddLogs call.
	maxLogBatch = 128
	maxLogRetry = 5 * time.Second
	logLinger   = 20 * time.Millisecond
	logDefer    = 250 * time.Millisecond
	logQuiet    = 20 * time.Millisecond
)

func newLogWriter(log hclog.Logger, max int) *logWriter {
	w := &logWriter{log: log, max: max, retry: 250 * time.Millisecond, linger: logLinger, deferFor: logDefer, quietFor: logQuiet,
		stop: make(chan struct{}), full: make(chan struct{}, 1), done: make(chan struct{}), quiet: make(chan struct{}, 1)}
	w.cond = sync.NewCond(&w.mu)
	w.store = w.write
	go w.loop()
	return w
}

// runBegan and runEnded bracket each run (Daemon.runStarted).
func (w *logWriter) runBegan() { w.runs.Add(1) }

func (w *logWriter) runEnded() {
	w.lastEnd.Store(time.Now().UnixNano())
	if w.runs.Add(-1) == 0 {
		select {
		case w.quiet <- struct{}{}:
		default:
		}
	}
}

func (w *logWriter) add(a *AgentRuntime, l *pb.LogEntry) {
	if w.onAdd != nil {
		w.onAdd(a, l)
	}
	w.mu.Lock()
	for len(w.queue) >= w.max && w.failing == nil && !w.closed {
		w.cond.Wait()
	}
	first := false
	switch {
	case w.closed:
		// Shutting down: close has given up on what is left.
	case len(w.queue) >= w.max:
		first = w.dropped == 0
		w.dropped++
	default:
		w.queue = append(w.queue, logJob{a: a, l: l})
		w.cond.Broadcast()
		if len(w.queue) == maxLogBatch {
			select {
			case w.full <- struct{}{}:
			default:
			}
		}
	}
	w.mu.Unlock()
	if first {
		w.log.Warn("the timeline buffer is full and the database is still unavailable: newer timeline entries are dropped; how many is logged when the database is back",
			"buffer", w.max)
	}
}

func (w *logWriter) loop() {
	defer close(w.done)
	wait := w.retry
	for {
		w.mu.Lock()
		for len(w.queue) == 0 && !w.closed {
			w.cond.Wait()
		}
		if len(w.queue) == 0 {
			w.mu.Unlock()
			return
		}
		if len(w.queue) < maxLogBatch && w.failing == nil && !w.closed && w.linger > 0 {
			// Let the rest of the message's entries join this one.
			w.mu.Unlock()
			t := time.NewTimer(w.linger)
			select {
			case <-t.C:
			case <-w.full:
			case <-w.stop:
			}
			t.Stop()
			w.mu.Lock()
		}
		if len(w.queue) < maxLogBatch && w.failing == nil && !w.closed && w.deferFor > 0 {
			deferFor, quietFor := w.deferFor, w.quietFor
			w.mu.Unlock()
			w.awaitQuiet(deferFor, quietFor)
			w.mu.Lock()
		}
		// Take what is waiting, up to a batch: one transaction for the lot
		// keeps the timeline from competing with the messages for the
		// database.
		n := min(len(w.queue), maxLogBatch)
		batch := append([]logJob(nil), w.queue[:n]...)
		closing := w.closed
		w.mu.Unlock()

		failed, err := w.store(batch)

		w.mu.Lock()
		w.queue = append(failed, w.queue[n:]...)
		wasFailing, dropped, waiting := w.failing != nil, w.dropped, len(w.queue)
		if err == nil {
			w.failing, w.dropped = nil, 0
		} else {
			w.failing = err
		}
		w.cond.Broadcast()
		w.mu.Unlock()

		switch {
		case err == nil && wasFailing && dropped > 0:
			wait = w.retry
			w.log.Warn("the database takes timeline entries again; those that waited are stored, but some were dropped because the buffer was full",
				"dropped", dropped, "buffer", w.max)
		case err == nil && wasFailing:
			wait = w.retry
			w.log.Info("the database takes timeline entries again; those that waited are stored", "waiting", waiting)
		case err != nil && closing:
			w.log.Warn("timeline entries are lost: the database is unavailable as the daemon stops", "lost", waiting+dropped, "error", err)
			return
		case err != nil:
			if !wasFailing {
				w.log.Warn("the database cannot take timeline entries; they wait in memory and are stored when it is back",
					"waiting", waiting, "buffer", w.max, "error", err)
			}
			select {
			case <-time.After(wait):
			case <-w.stop:
			}
			wait = min(2*wait, maxLogRetry)
		}
	}
}

// awaitQuiet returns once no run has been in flight for quietFor, or
// deferFor has passed, or a batch is full, or the writer stops.
func (w *logWriter) awaitQuiet(deferFor, quietFor time.Duration) {
	// A quiet heard before now is stale: forget it before looking at the
	// runs, so that the end of one still in flight is heard.
	select {
	case <-w.quiet:
	default:
	}
	deadline := time.NewTimer(deferFor)
	defer deadline.Stop()
	again := time.NewTimer(time.Hour)
	defer again.Stop()
	for {
		wait := time.Hour // until the last run in flight ends
		if w.runs.Load() == 0 {
			idle := time.Since(time.Unix(0, w.lastEnd.Load()))
			if idle >= quietFor {
				return
			}
			wait = quietFor - idle
		}
		again.Reset(wait)
		select {
		case <-deadline.C:
			return
		case <-w.full:
			return
		case <-w.stop:
			return
		case <-w.quiet:
		case <-again.C:
		}
	}
}

// write stores a batch. It returns the entries to try again (the database
// was unavailable for them) and that error; entries the database refused
// for what they are are logged and dropped, not tried forever.
func (w *logWriter) write(batch []logJob) ([]logJob, error) {
	// Agents normally share one database plugin; group by it all the same.
	byDB := map[*PluginProcess][]logJob{}
	var order []*PluginProcess
	for _, j := range batch {
		if j.a.registry() == nil || j.a.registry().DB == nil {
			continue
		}
		p := j.a.registry().DB
		if _, ok := byDB[p]; !ok {
			order = append(order, p)
		}
		byDB[p] = append(byDB[p], j)
	}
	var again []logJob
	var unavailable error
	for _, p := range order {
		jobs := byDB[p]
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := p.conn(ctx)
		retry := err != nil // the plugin is not running (yet)
		if err == nil {
			req := &pb.AddLogsRequest{Logs: make([]*pb.LogEntry, len(jobs))}
			for i, j := range jobs {
				req.Logs[i] = j.l
			}
			if _, err = c.db.AddLogs(ctx, req); err != nil {
				err = p.callErr(c, "AddLogs", err)
				retry = contract.Retryable(err)
			}
		}
		cancel()
		switch {
		case err == nil:
		case retry:
			again = append(again, jobs...)
			unavailable = err
		default:
			w.log.Warn("could not store timeline entries; they are dropped", "count", len(jobs), "first_type", jobs[0].l.GetType(), "error", err)
		}
	}
	return again, unavailable
}

func (w *logWriter) close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.stop)
		w.cond.Broadcast()
	}
	w.mu.Unlock()
	select {
	case <-w.done:
	case <-time.After(5 * time.Second):
	}
}
