package sqlstore

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/internal/testwait"
	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
	"github.com/google/uuid"
	"modernc.org/sqlite"
)

// The tests of the group commit (write.go) hold a write transaction open,
// queue writes behind it one by one, then let it go: the queued writes
// then run as one group, in one transaction.

// cancels holds the cancel functions that the SQL function
// test_cancel(name) calls, by name.
var cancels sync.Map

func init() {
	sqlite.MustRegisterScalarFunction("test_cancel", 1, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		if c, ok := cancels.Load(args[0]); ok {
			c.(context.CancelFunc)()
		}
		return int64(1), nil
	})
}

// queued returns how many writes wait in the queue.
func (s *Store) queued() int {
	s.group.mu.Lock()
	defer s.group.mu.Unlock()
	return len(s.group.queue)
}

// held is a write transaction held open on a fresh SQLite store with an
// agent: the writes queued behind it form one group when it is let go.
type held struct {
	s       *Store
	agent   string
	release func()
	result  chan error
	// commits is the count of commits before it commits.
	commits int64
}

// hold opens the store and the transaction and returns once it is open.
// prepare runs before the transaction, to store what the test needs.
func hold(t *testing.T, prepare func(s *Store, agent string)) *held {
	t.Helper()
	s := migrated(t, openSQLiteTB(t))
	h := &held{s: s, agent: newAgent(t, s), result: make(chan error, 1)}
	if prepare != nil {
		prepare(s, h.agent)
	}
	h.commits = s.commits.Load()
	opened, wait := make(chan struct{}), make(chan struct{})
	var once sync.Once
	go func() {
		h.result <- s.write(ctx, func(r runner) error {
			once.Do(func() { close(opened) })
			<-wait
			return nil
		})
	}()
	h.release = sync.OnceFunc(func() { close(wait) })
	t.Cleanup(h.release)
	testwait.For(t, 10*time.Second, "the held transaction to open", func() bool {
		select {
		case <-opened:
			return true
		default:
			return false
		}
	})
	return h
}

// run lets the transaction go and waits for its commit.
func (h *held) run(t *testing.T) {
	t.Helper()
	h.release()
	if err := await(t, h.result); err != nil {
		t.Fatal(err)
	}
}

// wantCommits fails unless n transactions committed since the held one
// opened, itself included.
func (h *held) wantCommits(t *testing.T, n int64, why string) {
	t.Helper()
	if got := h.s.commits.Load() - h.commits; got != n {
		t.Fatalf("%d commits; want %d: %s", got, n, why)
	}
}

// enqueue runs call on a goroutine of its own and returns once call's
// write waits in the queue, with the channel of its result.
func enqueue(t *testing.T, s *Store, call func() error) <-chan error {
	t.Helper()
	want := s.queued() + 1
	res := make(chan error, 1)
	go func() { res <- call() }()
	testwait.For(t, 10*time.Second, fmt.Sprintf("%d writes queued", want), func() bool { return s.queued() == want })
	return res
}

// await returns the result that ch delivers.
func await(t *testing.T, ch <-chan error) error {
	t.Helper()
	var err error
	testwait.For(t, 30*time.Second, "a write's result", func() bool {
		select {
		case err = <-ch:
			return true
		default:
			return false
		}
	})
	return err
}

func cached(t *testing.T, s *Store, agent, key string) bool {
	t.Helper()
	_, ok, err := s.GetCache(ctx, agent, key)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// setCache is a write that stores key.
func setCache(s *Store, c context.Context, agent, key string) func() error {
	return func() error { return s.SetCache(c, agent, key, []byte(key), 0) }
}

func TestGroupCommitFormsOneTransaction(t *testing.T) {
	t.Parallel()
	h := hold(t, nil)
	s, agent := h.s, h.agent
	room, user := uuid.NewString(), uuid.NewString()
	const n = 20
	mems := make([]*sdk.Memory, n)
	var results []<-chan error
	for i := range mems {
		mems[i] = message(room, user, fmt.Sprint("message ", i))
		mems[i].ID = uuid.NewString()
		results = append(results, enqueue(t, s, func() error {
			id, created, err := s.CreateMemory(ctx, agent, mems[i], sdk.TableMessages, false)
			if err == nil && (id != mems[i].ID || !created) {
				err = fmt.Errorf("got id %s, created %v; want %s, true", id, created, mems[i].ID)
			}
			return err
		}))
	}
	h.run(t)
	for i, res := range results {
		if err := await(t, res); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	h.wantCommits(t, 2, "the held transaction, then the queued writes in one")
	stored, err := s.GetMemories(ctx, agent, storage.MemoryQuery{Table: sdk.TableMessages, RoomID: room, Count: 2 * n})
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != n {
		t.Fatalf("%d memories stored; want %d", len(stored), n)
	}
	// A lone writer after the group runs at once, on its own.
	if err := setCache(s, ctx, agent, "alone")(); err != nil || s.queued() != 0 {
		t.Fatal(err, s.queued())
	}
}

// TestGroupCommitBoundsAGroup queues more writes than a group takes: they
// commit in as many transactions as groups.
func TestGroupCommitBoundsAGroup(t *testing.T) {
	t.Parallel()
	h := hold(t, nil)
	s, agent := h.s, h.agent
	var results []<-chan error
	for i := 0; i < maxGroup+1; i++ {
		results = append(results, enqueue(t, s, setCache(s, ctx, agent, fmt.Sprint("key ", i))))
	}
	h.run(t)
	for i, res := range results {
		if err := await(t, res); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if !cached(t, s, agent, fmt.Sprint("key ", i)) {
			t.Fatalf("key %d is not stored", i)
		}
	}
	h.wantCommits(t, 3, "the held one, a full group and a group of one")
}

// TestGroupCommitErrorsStayWithTheirCaller runs writes that fail in several
// ways in one group with writes that succeed: each failing caller gets its
// own error, nothing of what it wrote stays, and the others commit.
func TestGroupCommitErrorsStayWithTheirCaller(t *testing.T) {
	t.Parallel()
	room, user := uuid.NewString(), uuid.NewString()
	logID, taskID := uuid.NewString(), uuid.NewString()
	version := func(s *Store, agent string) int64 {
		var v int64
		if err := s.db.QueryRowContext(ctx, `SELECT vector_version FROM agents WHERE id = ?`, agent).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	var v0 int64
	h := hold(t, func(s *Store, agent string) {
		if _, err := s.EnsureEmbeddingDimension(ctx, agent, 4); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AddLogs(ctx, []storage.LogEntry{{ID: logID, AgentID: agent, Type: "t", Body: map[string]any{}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateTask(ctx, agent, storage.Task{ID: taskID, Name: "task"}); err != nil {
			t.Fatal(err)
		}
		v0 = version(s, agent)
	})
	s, agent := h.s, h.agent
	good := func(i int) <-chan error {
		return enqueue(t, s, func() error {
			m := message(room, user, fmt.Sprint("good ", i))
			m.Embedding = unit(4, i, 0.1)
			_, _, err := s.CreateMemory(ctx, agent, m, sdk.TableMessages, false)
			return err
		})
	}
	errMine := errors.New("mine")
	var goods []<-chan error
	goods = append(goods, good(0))
	// The agent's vector version goes up, then the dimension is refused.
	wrongDim := enqueue(t, s, func() error {
		m := message(room, user, "wrong size")
		m.Embedding = unit(3, 0, 0)
		_, _, err := s.CreateMemory(ctx, agent, m, sdk.TableMessages, false)
		return err
	})
	goods = append(goods, good(1))
	dupLog := enqueue(t, s, func() error {
		_, err := s.AddLogs(ctx, []storage.LogEntry{
			{AgentID: agent, Type: "t", Body: map[string]any{"first": true}},
			{ID: logID, AgentID: agent, Type: "t", Body: map[string]any{}},
		})
		return err
	})
	goods = append(goods, good(2))
	dupTask := enqueue(t, s, func() error {
		_, err := s.CreateTask(ctx, agent, storage.Task{ID: taskID, Name: "again"})
		return err
	})
	own := enqueue(t, s, func() error {
		return s.write(ctx, func(r runner) error {
			if _, err := r.exec(ctx, `INSERT INTO cache (agent_id, key, value, created_at) VALUES (?, 'own', x'00', 0)`, agent); err != nil {
				return err
			}
			return fmt.Errorf("after its insert: %w", errMine)
		})
	})
	goods = append(goods, good(3))
	h.run(t)

	wantErr(t, await(t, wrongDim), "has 3 dimensions but agent")
	wantErr(t, await(t, dupLog), "a log with id "+logID+" is stored")
	wantErr(t, await(t, dupTask), "a task with id "+taskID+" is stored")
	if err := await(t, own); !errors.Is(err, errMine) {
		t.Fatalf("the write that failed on its own got %v; want its error", err)
	}
	for i, res := range goods {
		if err := await(t, res); err != nil {
			t.Fatalf("good write %d: %v", i, err)
		}
	}
	h.wantCommits(t, 2, "the held one, then the group rolled back once and committed")
	stored, err := s.GetMemories(ctx, agent, storage.MemoryQuery{Table: sdk.TableMessages, RoomID: room})
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, m := range stored {
		texts = append(texts, m.Content.Text)
	}
	if len(stored) != len(goods) || strings.Contains(strings.Join(texts, ","), "wrong") {
		t.Fatalf("stored %q; want the %d good ones", texts, len(goods))
	}
	if got := version(s, agent) - v0; got != int64(len(goods)) {
		t.Fatalf("vector version went up by %d; want %d: the refused memory's step is undone", got, len(goods))
	}
	logs, err := s.GetLogs(ctx, agent, storage.LogQuery{})
	if err != nil || len(logs) != 1 {
		t.Fatalf("%d logs (%v); want the first one only", len(logs), err)
	}
	if cached(t, s, agent, "own") {
		t.Fatal("the failed write's row is stored")
	}
}

// TestGroupCommitCancelledCallers cancels callers while they wait, after
// their group has taken them and while their own fn runs: the others'
// writes commit.
func TestGroupCommitCancelledCallers(t *testing.T) {
	t.Parallel()
	h := hold(t, nil)
	s, agent := h.s, h.agent

	first := enqueue(t, s, setCache(s, ctx, agent, "first"))

	waitingCtx, cancelWaiting := context.WithCancel(ctx)
	waiting := enqueue(t, s, setCache(s, waitingCtx, agent, "waiting"))
	cancelWaiting()
	if err := await(t, waiting); !errors.Is(err, context.Canceled) {
		t.Fatalf("a caller cancelled in the queue got %v", err)
	}
	if s.queued() != 1 {
		t.Fatalf("%d writes queued; the cancelled one must have left", s.queued())
	}

	// The group takes it, then a write before it cancels it.
	takenCtx, cancelTaken := context.WithCancel(ctx)
	canceller := enqueue(t, s, func() error {
		return s.write(ctx, func(r runner) error {
			cancelTaken()
			_, err := r.exec(ctx, `INSERT INTO cache (agent_id, key, value, created_at) VALUES (?, 'canceller', x'00', 0)`, agent)
			return err
		})
	})
	taken := enqueue(t, s, setCache(s, takenCtx, agent, "taken"))

	// Its context is cancelled while its statement runs (test_cancel): a
	// statement whose context is cancelled is interrupted, and SQLite then
	// rolls back the whole transaction. Its statements must run on.
	midCtx, cancelMid := context.WithCancel(ctx)
	cancels.Store("mid", cancelMid)
	t.Cleanup(func() { cancels.Delete("mid") })
	mid := enqueue(t, s, func() error {
		return s.write(midCtx, func(r runner) error {
			_, err := r.exec(midCtx, `WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 20000)
				INSERT INTO cache (agent_id, key, value, created_at)
				SELECT ?, 'mid', x'00', count(*) FROM c WHERE i > 1 OR test_cancel('mid')`, agent)
			return err
		})
	})
	last := enqueue(t, s, setCache(s, ctx, agent, "last"))

	h.run(t)
	for name, res := range map[string]<-chan error{"first": first, "canceller": canceller, "mid": mid, "last": last} {
		if err := await(t, res); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !cached(t, s, agent, name) {
			t.Fatalf("%s is not stored", name)
		}
	}
	if err := await(t, taken); !errors.Is(err, context.Canceled) {
		t.Fatalf("a caller cancelled before its turn in the group got %v", err)
	}
	for _, key := range []string{"waiting", "taken"} {
		if cached(t, s, agent, key) {
			t.Fatalf("%s is stored", key)
		}
	}
	h.wantCommits(t, 2, "the held one and the group")
}

// TestGroupCommitOutlivesAnEndedTransaction runs, in a group, writes that
// end the shared transaction (as SQLite does itself on some errors): they
// get an error, and the others run again in a new transaction and commit
// once.
func TestGroupCommitOutlivesAnEndedTransaction(t *testing.T) {
	t.Parallel()
	h := hold(t, nil)
	s, agent := h.s, h.agent
	errEnded := errors.New("ended it")
	ender := func(fail bool) func() error {
		return func() error {
			return s.write(ctx, func(r runner) error {
				if _, err := r.exec(ctx, `ROLLBACK`); err != nil {
					return err
				}
				if fail {
					return errEnded
				}
				return nil
			})
		}
	}
	logID := uuid.NewString()
	results := map[string]<-chan error{
		"a": enqueue(t, s, setCache(s, ctx, agent, "a")),
		// A log with a fixed id: run twice, it would fail on its key.
		"log": enqueue(t, s, func() error {
			_, err := s.AddLogs(ctx, []storage.LogEntry{{ID: logID, AgentID: agent, Type: "t", Body: map[string]any{}}})
			return err
		}),
	}
	failing := enqueue(t, s, ender(true))
	results["b"] = enqueue(t, s, setCache(s, ctx, agent, "b"))
	silent := enqueue(t, s, ender(false))
	results["c"] = enqueue(t, s, setCache(s, ctx, agent, "c"))
	h.run(t)
	if err := await(t, failing); !errors.Is(err, errEnded) {
		t.Fatalf("the write that ended the transaction got %v; want its error", err)
	}
	wantErr(t, await(t, silent), "release savepoint")
	for name, res := range results {
		if err := await(t, res); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	for _, key := range []string{"a", "b", "c"} {
		if !cached(t, s, agent, key) {
			t.Fatalf("%s is not stored", key)
		}
	}
	if logs, err := s.GetLogs(ctx, agent, storage.LogQuery{}); err != nil || len(logs) != 1 {
		t.Fatalf("%d logs (%v); want 1", len(logs), err)
	}
	h.wantCommits(t, 2, "the held one, then two of the group ended early and the third committed")
}

// TestGroupCommitPanic: a write that panics in a group does not leave the
// others waiting, and the next writes run.
func TestGroupCommitPanic(t *testing.T) {
	t.Parallel()
	h := hold(t, nil)
	s, agent := h.s, h.agent
	recovered := func(call func() error) func() error {
		return func() (err error) {
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("panicked: %v", p)
				}
			}()
			return call()
		}
	}
	// The first queued write leads the group: the panic of another write
	// of it happens on its goroutine.
	leader := enqueue(t, s, recovered(setCache(s, ctx, agent, "leader")))
	panicking := enqueue(t, s, func() error {
		return s.write(ctx, func(runner) error { panic("boom") })
	})
	other := enqueue(t, s, setCache(s, ctx, agent, "other"))
	h.run(t)
	wantErr(t, await(t, leader), "panicked: boom")
	if err := await(t, other); !errors.Is(err, errAbandoned) {
		t.Fatalf("a write of the panicked group got %v", err)
	}
	if err := await(t, panicking); !errors.Is(err, errAbandoned) {
		t.Fatalf("the panicking write got %v", err)
	}
	if err := setCache(s, ctx, agent, "after")(); err != nil {
		t.Fatal(err)
	}
	if cached(t, s, agent, "leader") || cached(t, s, agent, "other") || !cached(t, s, agent, "after") {
		t.Fatal("want the group undone and the next write stored")
	}
}

// TestConcurrentWritersOneFails runs writers at once, without holding
// anything: whatever groups form, each caller gets its own result.
func TestConcurrentWritersOneFails(t *testing.T) {
	t.Parallel()
	s := migrated(t, openSQLiteTB(t))
	agent := newAgent(t, s)
	taskID := uuid.NewString()
	if _, err := s.CreateTask(ctx, agent, storage.Task{ID: taskID, Name: "task"}); err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 25
	errs := make([][]error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		errs[w] = make([]error, each)
		wg.Go(func() {
			for i := range each {
				if w == 0 && i == each/2 {
					_, errs[w][i] = s.CreateTask(ctx, agent, storage.Task{ID: taskID, Name: "again"})
					continue
				}
				errs[w][i] = setCache(s, ctx, agent, fmt.Sprint(w, "/", i))()
			}
		})
	}
	wg.Wait()
	for w := range writers {
		for i, err := range errs[w] {
			if w == 0 && i == each/2 {
				wantErr(t, err, "a task with id "+taskID+" is stored")
				continue
			}
			if err != nil {
				t.Fatalf("writer %d, write %d: %v", w, i, err)
			}
			if !cached(t, s, agent, fmt.Sprint(w, "/", i)) {
				t.Fatalf("writer %d, write %d is not stored", w, i)
			}
		}
	}
}
