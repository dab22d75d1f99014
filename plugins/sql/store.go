package sql

import (
	"context"
	dbsql "database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/agenthost/agenthost/sdk"
	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"  // the "postgres" driver
	_ "modernc.org/sqlite" // the "sqlite" driver
)

// FileName is the name of the SQLite database inside Config.DataDir.
const FileName = "agenthost.db"

// busyTimeout is how long a SQLite connection waits for another process's
// write transaction before it gives up.
const busyTimeout = 10 * time.Second

// mmapSize is how much of the SQLite file is read through a memory map.
const mmapSize = 256 << 20

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
}

// Store is the database of every agent. It implements sdk.DatabaseAdapter
// and is safe for concurrent use.
type Store struct {
	db *dbsql.DB
	d  *dialect
	// writeMu serializes write transactions when d.serializeWrites.
	writeMu sync.Mutex
	// vec is how vector search runs (see vector_pg.go); noPGVector turns
	// pgvector's ranking off.
	vec        atomic.Pointer[vectorSupport]
	noPGVector bool
}

var _ sdk.DatabaseAdapter = (*Store)(nil)

// Open connects to the database that cfg names. It does not migrate: call
// Migrate before using the store.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	switch {
	case isPostgresURL(cfg.URL):
		return openPostgres(ctx, cfg.URL, cfg.NoPGVector)
	case cfg.URL != "":
		return nil, fmt.Errorf("open database: URL must be a postgres:// or postgresql:// URL (leave it empty for SQLite in DataDir)")
	default:
		return openSQLite(ctx, cfg.DataDir)
	}
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
	// Reads through a memory map share the OS page cache between the
	// connections and spare a read(2) per page: vector search over 10,000
	// rows takes half the time. Writes still go through write(2).
	q.Add("_pragma", fmt.Sprintf("mmap_size(%d)", mmapSize))
	dsn := "file:" + (&url.URL{Path: filepath.ToSlash(path)}).EscapedPath() + "?" + q.Encode()
	db, err := dbsql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// Readers run in parallel under WAL; writers take turns anyway.
	db.SetMaxOpenConns(max(4, runtime.GOMAXPROCS(0)))
	db.SetMaxIdleConns(max(4, runtime.GOMAXPROCS(0)))
	s := &Store{db: db, d: sqliteDialect}
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

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// querier is what *sql.DB, *sql.Conn and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (dbsql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*dbsql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *dbsql.Row
}

// runner runs queries written with '?' placeholders on one backend.
type runner struct {
	q querier
	d *dialect
}

func (r runner) exec(ctx context.Context, q string, args ...any) (dbsql.Result, error) {
	return r.q.ExecContext(ctx, r.d.rebind(q), args...)
}

func (r runner) query(ctx context.Context, q string, args ...any) (*dbsql.Rows, error) {
	return r.q.QueryContext(ctx, r.d.rebind(q), args...)
}

func (r runner) queryRow(ctx context.Context, q string, args ...any) *dbsql.Row {
	return r.q.QueryRowContext(ctx, r.d.rebind(q), args...)
}

// read runs outside any transaction.
func (s *Store) read() runner { return runner{q: s.db, d: s.d} }

// maxAttempts bounds the re-runs of a transaction that failed on a deadlock
// or a serialization failure.
const maxAttempts = 5

// write runs fn in a write transaction and commits it; any error rolls the
// whole transaction back. fn may run more than once (PostgreSQL deadlocks),
// so it must not have effects outside the transaction.
func (s *Store) write(ctx context.Context, fn func(r runner) error) error {
	return s.writeOn(ctx, s.db, fn)
}

type txBeginner interface {
	BeginTx(ctx context.Context, opts *dbsql.TxOptions) (*dbsql.Tx, error)
}

func (s *Store) writeOn(ctx context.Context, b txBeginner, fn func(r runner) error) error {
	if s.d.serializeWrites {
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
	}
	for attempt := 1; ; attempt++ {
		err := s.tryTx(ctx, b, fn)
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
	if err = fn(runner{q: tx, d: s.d}); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return &commitError{err}
	}
	return nil
}

// commitError is a failed COMMIT: whether the transaction was applied is
// unknown.
type commitError struct{ err error }

func (e *commitError) Error() string { return "commit: " + e.err.Error() }
func (e *commitError) Unwrap() error { return e.err }

func now() int64 { return time.Now().UnixMilli() }

// placeholders returns "?, ?, …" for n values.
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}

// inChunk bounds the ids of one IN (…) list, far below every backend's
// limit on parameters.
const inChunk = 500

// requireAgent fails with sdk.ErrNotFound unless the agent is stored.
func requireAgent(ctx context.Context, r runner, agentID string) error {
	var one int
	err := r.queryRow(ctx, `SELECT 1 FROM agents WHERE id = ?`, agentID).Scan(&one)
	if errors.Is(err, dbsql.ErrNoRows) {
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
