package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// maxAttempts bounds the re-runs of a transaction that failed on a deadlock
// or a serialization failure.
const maxAttempts = 5

// maxGroup bounds the writes that share one SQLite transaction.
const maxGroup = 64

// write runs fn in a write transaction and commits it; an error of fn
// undoes what fn did and is returned to its caller alone. fn may run more
// than once (PostgreSQL deadlocks, a shared transaction that another write
// ended), so it must not have effects outside the transaction; what
// follows a commit belongs after write returns. On SQLite fn may share its
// transaction with other writes (see writeGroup): it must not begin, end
// or roll back transactions or savepoints itself, nor call write (it would
// wait for its own transaction to end), and its statements run out of
// reach of ctx's cancellation.
func (s *Store) write(ctx context.Context, fn func(r runner) error) error {
	if !s.d.serializeWrites {
		return s.writeOn(ctx, s.db, fn)
	}
	return s.retry(ctx, func() error { return s.writeGrouped(ctx, fn) })
}

type txBeginner interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// writeOn runs fn in a transaction of its own on b: on PostgreSQL, and for
// migrations, which run on a connection of their own.
func (s *Store) writeOn(ctx context.Context, b txBeginner, fn func(r runner) error) error {
	if s.d.serializeWrites {
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
	}
	return s.retry(ctx, func() error { return s.tryTx(ctx, b, fn) })
}

// retry calls try until it succeeds, fails for good or maxAttempts is
// reached.
func (s *Store) retry(ctx context.Context, try func() error) error {
	for attempt := 1; ; attempt++ {
		err := try()
		// A transaction that met a dead session before its COMMIT did not
		// happen and runs again on a fresh one; a failed COMMIT is never
		// run again, since it may have been applied.
		var ce *commitError
		again := s.d.retryable(err) || (unreachable(err) && !errors.As(err, &ce))
		if err == nil || attempt == maxAttempts || !again || ctx.Err() != nil {
			return err
		}
		select {
		case <-time.After(time.Duration(attempt*attempt) * 5 * time.Millisecond):
		case <-ctx.Done():
			return err
		}
	}
}

func (s *Store) tryTx(ctx context.Context, b txBeginner, fn func(r runner) error) (err error) {
	tx, err := b.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	r := runner{q: tx, d: s.d}
	if _, pooled := b.(*sql.DB); pooled {
		// Not on a connection of its own (migrations): its statements may
		// read tables the transaction has just made, which a statement
		// prepared on another connection would not see.
		r.stmts, r.tx = s.stmts, tx
	}
	if err = fn(r); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return &commitError{err}
	}
	s.commits.Add(1)
	return nil
}

// commitError is a failed COMMIT: whether the transaction was applied is
// unknown.
type commitError struct{ err error }

func (e *commitError) Error() string { return "commit: " + e.err.Error() }
func (e *commitError) Unwrap() error { return e.err }

// writeGroup is where SQLite writes wait while another transaction runs.
//
// SQLite has one writer at a time, and under load the writes of the
// messages queue behind each other. Each paid its own BEGIN and COMMIT, and
// each COMMIT wrote the same hot pages (the rightmost leaf of a table, the
// leaves of its indexes) to the log again: COMMIT alone was a sixth of the
// database plugin's CPU. Instead, the writes that arrive while a
// transaction runs wait in the queue, and the next transaction takes them
// all (up to maxGroup) and commits once. A write that finds no transaction
// running runs at once on its caller's goroutine, as a transaction of its
// own: a lone writer waits for nothing.
//
// Each caller still gets its own result. The writes of a group run one
// after the other, as they would have in transactions of their own; when
// one fails, the transaction is rolled back, that write keeps its error
// and the others run again, each in a savepoint that undoes it alone if it
// fails (see lead for why not always).
type writeGroup struct {
	mu sync.Mutex
	// running says that a leader runs a transaction; writes arriving
	// meanwhile join queue.
	running bool
	queue   []*queuedWrite
}

// queuedWrite is one call of write.
type queuedWrite struct {
	ctx context.Context
	fn  func(r runner) error
	// turn receives, once the write has joined the queue, exactly one
	// turn.
	turn chan turn
}

// turn is what a queued write learns: its result, or that it leads group
// (whose first write it is).
type turn struct {
	err   error
	group []*queuedWrite
}

// errAbandoned answers the writes of a group whose transaction was given up
// because another write of it panicked.
var errAbandoned = errors.New("the write transaction was abandoned: another write in it panicked")

// writeGrouped runs fn on SQLite: in a transaction of its own if none is
// running, else in the next group.
func (s *Store) writeGrouped(ctx context.Context, fn func(r runner) error) error {
	g := &s.group
	w := &queuedWrite{ctx: ctx, fn: fn}
	g.mu.Lock()
	if !g.running {
		g.running = true
		g.mu.Unlock()
		return s.lead([]*queuedWrite{w})
	}
	w.turn = make(chan turn, 1)
	g.queue = append(g.queue, w)
	g.mu.Unlock()
	var t turn
	select {
	case t = <-w.turn:
	case <-ctx.Done():
		if g.remove(w) {
			return ctx.Err()
		}
		// Taken into a group already: its leader skips fn, or has run it.
		t = <-w.turn
	}
	if t.group != nil {
		return s.lead(t.group)
	}
	return t.err
}

// remove takes w out of the queue and reports whether it was there.
func (g *writeGroup) remove(w *queuedWrite) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, q := range g.queue {
		if q == w {
			g.queue = append(g.queue[:i], g.queue[i+1:]...)
			return true
		}
	}
	return false
}

// lead runs group, whose first write is the caller's, passes the turn to
// the writes queued meanwhile, answers the others of group and returns the
// caller's result.
func (s *Store) lead(group []*queuedWrite) error {
	errs := make([]error, len(group))
	for i := range errs {
		errs[i] = errAbandoned
	}
	// Deferred so that a panicking fn does not leave the queue stuck.
	defer func() {
		g := &s.group
		g.mu.Lock()
		n := min(len(g.queue), maxGroup)
		next := slices.Clone(g.queue[:n])
		left := copy(g.queue, g.queue[n:])
		clear(g.queue[left:])
		g.queue = g.queue[:left]
		g.running = n > 0
		g.mu.Unlock()
		if n > 0 {
			next[0].turn <- turn{group: next}
		}
		for i, w := range group[1:] {
			w.turn <- turn{err: errs[i+1]}
		}
	}()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if len(group) == 1 {
		// Alone: exactly the transaction it would have had on its own.
		errs[0] = s.tryTx(group[0].ctx, s.db, group[0].fn)
		return errs[0]
	}
	pending := make([]int, len(group))
	for i := range pending {
		pending[i] = i
	}
	// Without savepoints first: in a savepoint, SQLite copies each page a
	// write changes to the sub-journal, a temporary file once it passes 64
	// KiB, and that cost about as much as the COMMITs saved. A write that
	// fails is rare; the transaction is then rolled back and the others
	// run again, each in a savepoint.
	savepoints := false
	for len(pending) > 0 {
		pending = s.tryGroup(group, pending, errs, savepoints)
		savepoints = true
	}
	return errs[0]
}

// tryGroup runs the writes of group that pending lists in one transaction,
// each in a savepoint if savepoints, sets the result of each in errs and
// returns the writes to run again in a new transaction when one failed
// outside a savepoint or ended the transaction (SQLite rolls a whole
// transaction back on some errors: a full disk, an interrupt): those that
// ran before it, and those after it. That write keeps its error, so each
// new transaction has fewer writes.
func (s *Store) tryGroup(group []*queuedWrite, pending []int, errs []error, savepoints bool) (again []int) {
	// No caller's cancellation may reach the shared transaction: the
	// runner gives every statement this context, and each caller's own is
	// looked at before its fn runs.
	ctx := context.WithoutCancel(group[pending[0]].ctx)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		for _, i := range pending {
			errs[i] = fmt.Errorf("begin: %w", err)
		}
		return nil
	}
	done := false
	defer func() {
		if !done {
			_ = tx.Rollback()
		}
	}()
	r := runner{q: tx, d: s.d, stmts: s.stmts, tx: tx, ctx: ctx}
	var ran []int
	for k, i := range pending {
		w := group[i]
		if err := w.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		var err error
		alive := true
		if savepoints {
			alive, err = inSavepoint(ctx, r, w.fn)
		} else if err = w.fn(r); err != nil {
			alive = false // what it wrote goes with the transaction
		}
		switch {
		case err != nil:
			errs[i] = err
		case alive:
			ran = append(ran, i) // errs[i] stays errAbandoned until the COMMIT
		}
		if !alive {
			return append(ran, pending[k+1:]...)
		}
	}
	if len(ran) == 0 {
		return nil
	}
	done = true
	if err := tx.Commit(); err != nil {
		for _, i := range ran {
			errs[i] = &commitError{err}
		}
		return nil
	}
	s.commits.Add(1)
	for _, i := range ran {
		errs[i] = nil
	}
	return nil
}

// inSavepoint runs fn in a savepoint of r's transaction, which it undoes
// if fn fails, and returns whether the transaction is still open and fn's
// error.
func inSavepoint(ctx context.Context, r runner, fn func(r runner) error) (alive bool, err error) {
	if _, err := r.exec(ctx, `SAVEPOINT grouped_write`); err != nil {
		return false, fmt.Errorf("savepoint: %w", err)
	}
	if err = fn(r); err != nil {
		if _, rerr := r.exec(ctx, `ROLLBACK TO grouped_write`); rerr != nil {
			return false, err
		}
	}
	if _, rerr := r.exec(ctx, `RELEASE grouped_write`); rerr != nil {
		if err == nil {
			err = fmt.Errorf("release savepoint: %w", rerr)
		}
		return false, err
	}
	return true, err
}
