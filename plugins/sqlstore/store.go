package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/dbplugin"
	"github.com/hashicorp/go-hclog"
	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"  // the "postgres" driver
	_ "modernc.org/sqlite" // the "sqlite" driver
)

// FileName is the name of the SQLite database inside Config.DataDir.
const FileName = "agenthost.db"

// busyTimeout is how long a SQLite connection waits for another process's
// write transaction before it gives up.
const busyTimeout = 10 * time.Second

// mmapSize is how much of the SQLite file is read through a memory map:
// none. A page read through the map stays mapped in the process, and
// counts in its memory, until the connection closes: building a vector
// index, which reads every embedding, left the whole table mapped (10 MiB
// after 2,500 messages, up to this size on a large database). Read with
// read(2), a page costs a copy into SQLite's own cache, which is bounded
// (cache_size), and the file's pages stay in the OS page cache. An exact
// vector search over 10,000 rows takes about a tenth longer; a message's
// reads and writes take as long.
const mmapSize = 0

// cacheKiB bounds the pages each SQLite connection keeps (SQLite's default
// is 2,000 KiB). In WAL mode a connection drops its cache whenever another
// one has written since its last read, which on the message path is
// nearly every read: a larger cache held the pages of one burst of reads
// and little more, 4 connections of them (5 MiB of the sql process after
// 2,500 messages).
const cacheKiB = 256

// checkpointPages is how many pages the WAL holds before a commit copies
// them into the database file (SQLite's default is 1,000, 4 MiB). Each
// copy costs two fsyncs, and a page written many times between two copies
// (an index's inner pages, the end of the logs) is copied once: with 4,000
// a message's writes took a tenth less CPU (BenchmarkParallelMessageWrites).
// The WAL file stays about 16 MiB on disk.
const checkpointPages = 4000

// Config selects and locates the database.
type Config struct {
	// DataDir holds the SQLite file (FileName); it is created if missing.
	// It is ignored when URL selects PostgreSQL.
	DataDir string
	// URL, when it is a postgres:// or postgresql:// URL, selects
	// PostgreSQL. Empty means SQLite in DataDir.
	URL string
	// NoPGVector makes search rank in Go even where pgvector is installed
	// (writes still keep its column current). For comparisons and
	// benchmarks.
	NoPGVector bool
	// ExactSearch turns the vector index off: every search compares the
	// query with every candidate memory.
	ExactSearch bool
	// VectorIndexMin is how many memories with embeddings an agent has
	// before its searches use the index; 0 means DefaultVectorIndexMin.
	VectorIndexMin int
	// Logger receives what the vector index says (a file that did not
	// load, a build); nil discards it.
	Logger hclog.Logger
}

// Store is the database of every agent. It implements dbplugin.Adapter
// and is safe for concurrent use.
type Store struct {
	db *sql.DB
	d  *dialect
	// writeMu serializes write transactions when d.serializeWrites;
	// writes then queue in group to share transactions (write.go).
	writeMu sync.Mutex
	group   writeGroup
	// commits counts the write transactions committed, for tests.
	commits atomic.Int64
	// vec is how vector search runs (see vector_pg.go); noPGVector turns
	// pgvector's ranking off.
	vec        atomic.Pointer[vectorSupport]
	noPGVector bool
	// stmts keeps SQLite's statements prepared (nil on PostgreSQL).
	stmts *stmtCache
	// vix are the vector indexes (vectorindex.go); nil with ExactSearch.
	vix *vectorIndexes
}

var _ dbplugin.Adapter = (*Store)(nil)

// Open connects to the database that cfg names. It does not migrate: call
// Migrate before using the store.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	var s *Store
	var err error
	switch {
	case isPostgresURL(cfg.URL):
		s, err = openPostgres(ctx, cfg.URL, cfg.NoPGVector)
	case cfg.URL != "":
		return nil, fmt.Errorf("open database: URL must be a postgres:// or postgresql:// URL (leave it empty for SQLite in DataDir)")
	default:
		s, err = openSQLite(ctx, cfg.DataDir)
	}
	if err != nil {
		return nil, err
	}
	if !cfg.ExactSearch {
		dir := cfg.DataDir
		if dir != "" {
			if dir, err = filepath.Abs(dir); err != nil {
				s.Close()
				return nil, fmt.Errorf("open database: %w", err)
			}
		}
		s.vix = newVectorIndexes(s, dir, cfg.VectorIndexMin, cfg.Logger)
	}
	return s, nil
}

func isPostgresURL(u string) bool {
	l := strings.ToLower(u)
	return strings.HasPrefix(l, "postgres://") || strings.HasPrefix(l, "postgresql://")
}

func openSQLite(ctx context.Context, dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("open sqlite: Config.DataDir is empty")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	path := filepath.Join(abs, FileName)
	// A file: URI with an escaped path, so that any directory name works.
	q := url.Values{}
	q.Set("_txlock", "immediate")
	q.Set("_busy_timeout", fmt.Sprint(busyTimeout.Milliseconds()))
	q.Set("_foreign_keys", "1")
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "NORMAL")
	q.Add("_pragma", fmt.Sprintf("mmap_size(%d)", mmapSize))
	q.Add("_pragma", fmt.Sprintf("cache_size(%d)", -cacheKiB))
	q.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", checkpointPages))
	dsn := "file:" + (&url.URL{Path: filepath.ToSlash(path)}).EscapedPath() + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// Readers run in parallel under WAL; writers take turns anyway.
	db.SetMaxOpenConns(max(4, runtime.GOMAXPROCS(0)))
	db.SetMaxIdleConns(max(4, runtime.GOMAXPROCS(0)))
	s := &Store{db: db, d: sqliteDialect, stmts: newStmtCache(db, maxCachedStmts)}
	if err := s.ping(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: journal mode is %q, not WAL", path, mode)
	}
	// The database holds every character's secrets: only this user may
	// read it, whatever the umask or an earlier version left. SQLite gives
	// the -wal and -shm files it makes later the database file's mode.
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(f, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			db.Close()
			return nil, fmt.Errorf("open sqlite %s: make it private: %w", path, err)
		}
	}
	_ = s.detectVectors(ctx, s.read())
	return s, nil
}

func openPostgres(ctx context.Context, u string, noPGVector bool) (*Store, error) {
	db, err := sqlx.Open("postgres", u)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &Store{db: db.DB, d: postgresDialect, noPGVector: noPGVector}
	if err := s.ping(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open postgres %s: %w", redactURL(u), err)
	}
	if err := s.detectVectors(ctx, s.read()); err != nil {
		db.Close()
		return nil, fmt.Errorf("open postgres %s: %w", redactURL(u), err)
	}
	return s, nil
}

// redactURL hides the password of a database URL for error messages.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return p.Redacted()
}

func (s *Store) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return s.db.PingContext(ctx)
}

// Backend is "sqlite" or "postgres".
func (s *Store) Backend() string { return s.d.name }

// Close stops the vector indexes' background work and closes the
// database.
func (s *Store) Close() error {
	if s.vix != nil {
		s.vix.close()
	}
	if s.stmts != nil {
		s.stmts.close()
	}
	return s.db.Close()
}

// querier is what *sql.DB, *sql.Conn and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// runner runs queries written with '?' placeholders on one backend.
type runner struct {
	q querier
	d *dialect
	// stmts, when set, runs the queries as kept prepared statements; tx is
	// then the transaction q is, if it is one.
	stmts *stmtCache
	tx    *sql.Tx
	// ctx, when set, replaces the context every statement is given: the
	// transaction of a group of writes (write.go) is shared, and one
	// caller's cancelled context would interrupt a statement, after which
	// SQLite rolls the whole transaction back.
	ctx context.Context
}

// use returns the context a statement runs with.
func (r runner) use(ctx context.Context) context.Context {
	if r.ctx != nil {
		return r.ctx
	}
	return ctx
}

// prepared returns the kept statement of q, ready for the runner's
// transaction, and the function to call once its call has returned; nil
// when statements are not kept.
func (r runner) prepared(ctx context.Context, q string) (*sql.Stmt, func(), error) {
	if r.stmts == nil {
		return nil, nil, nil
	}
	st, done, err := r.stmts.get(ctx, q)
	if err != nil || r.tx == nil {
		return st, done, err
	}
	return r.tx.StmtContext(ctx, st), done, nil
}

func (r runner) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return run(r, r.use(ctx), q, args, r.q.ExecContext, (*sql.Stmt).ExecContext)
}

func (r runner) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return run(r, r.use(ctx), q, args, r.q.QueryContext, (*sql.Stmt).QueryContext)
}

// run runs q with args through its kept statement, or directly when
// statements are not kept.
func run[T any](r runner, ctx context.Context, q string, args []any,
	direct func(context.Context, string, ...any) (T, error), kept func(*sql.Stmt, context.Context, ...any) (T, error)) (T, error) {
	q = r.d.rebind(q)
	st, done, err := r.prepared(ctx, q)
	switch {
	case err != nil:
		var zero T
		return zero, err
	case st == nil:
		return direct(ctx, q, args...)
	}
	defer done()
	return kept(st, ctx, args...)
}

func (r runner) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	ctx = r.use(ctx)
	q = r.d.rebind(q)
	st, done, err := r.prepared(ctx, q)
	if err != nil || st == nil {
		// A *sql.Row cannot be made with an error outside database/sql:
		// the unprepared query reports the same one.
		return r.q.QueryRowContext(ctx, q, args...)
	}
	defer done()
	return st.QueryRowContext(ctx, args...)
}

// read runs outside any transaction.
func (s *Store) read() runner { return runner{q: s.db, d: s.d, stmts: s.stmts} }

func now() int64 { return time.Now().UnixMilli() }

// placeholders returns "?, ?, …" for n values.
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}

// limit is a LIMIT clause with n written out. SQLite's planner reads a
// bound LIMIT, so a kept statement whose bound limit changes from one call
// to the next is prepared again each time (a sixth of GetMemories' time);
// counts take a few values, each a statement of its own.
func limit(n int) string { return " LIMIT " + strconv.Itoa(n) }

// inChunk bounds the ids of one IN (…) list, far below every backend's
// limit on parameters.
const inChunk = 500

// requireAgent fails with sdk.ErrNotFound unless the agent is stored.
func requireAgent(ctx context.Context, r runner, agentID string) error {
	var one int
	err := r.queryRow(ctx, `SELECT 1 FROM agents WHERE id = ?`, agentID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return errAgentNotFound(agentID)
	}
	return err
}

func errAgentNotFound(agentID string) error {
	return fmt.Errorf("agent %s: %w (EnsureAgent stores it)", agentID, sdk.ErrNotFound)
}

// ClassifyError marks an error that says the database cannot be reached (a
// refused or broken connection, a server shutting down or terminating the
// session) with sdk.ErrUnavailable, so that the caller learns the database
// is down for now, not that its call was wrong; the connection pool
// replaces broken connections, so calls work again once it is back. Other
// errors are returned as they are. The Database service applies it to
// every error it returns.
func (s *Store) ClassifyError(err error) error {
	if err == nil || errors.Is(err, sdk.ErrUnavailable) || !unreachable(err) {
		return err
	}
	return &unreachableError{backend: s.d.name, err: err}
}

// unreachableError is an error of a database that cannot be reached; it
// matches sdk.ErrUnavailable and the driver's error.
type unreachableError struct {
	backend string
	err     error
}

func (e *unreachableError) Error() string {
	return "the " + e.backend + " database is unreachable: " + e.err.Error()
}

func (e *unreachableError) Unwrap() []error { return []error{e.err, sdk.ErrUnavailable} }

func unreachable(err error) bool {
	var ne net.Error
	switch {
	case err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return false // the caller's deadline, not the database
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, net.ErrClosed), errors.As(err, &ne):
		return true
	}
	c := sqlState(err)
	// 08: connection exception; 57P01-57P03: admin shutdown, crash
	// shutdown, cannot connect now.
	return strings.HasPrefix(c, "08") || c == "57P01" || c == "57P02" || c == "57P03"
}
