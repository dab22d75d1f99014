package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/dbplugin"
	"github.com/google/uuid"
)

// defaultPostgresURL is the test server; POSTGRES_TEST_URL overrides it, and
// POSTGRES_TEST_URL=off skips the PostgreSQL runs, except under CI.
const defaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// backend opens a fresh, empty store of one kind for a test.
type backend struct {
	name string
	// open returns a store that is not migrated yet; every call for the
	// same tb opens the same database.
	open func(tb testing.TB) *Store
}

func backends() []backend {
	return []backend{
		{"sqlite", openSQLiteTB},
		{"postgres", openPostgresTB},
	}
}

// eachBackend runs fn against a fresh, migrated store of every backend.
func eachBackend(t *testing.T, fn func(t *testing.T, s *Store)) {
	t.Helper()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			fn(t, migrated(t, b.open(t)))
		})
	}
}

func migrated(tb testing.TB, s *Store) *Store {
	tb.Helper()
	if _, err := s.Migrate(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return s
}

// The databases of a test, so that a second open reaches the same one.
var (
	dbMu       sync.Mutex
	sqliteDirs = map[testing.TB]string{}
	pgURLs     = map[testing.TB]string{}
)

func openSQLiteTB(tb testing.TB) *Store {
	tb.Helper()
	dbMu.Lock()
	dir, ok := sqliteDirs[tb]
	if !ok {
		dir = tb.TempDir()
		sqliteDirs[tb] = dir
		tb.Cleanup(func() { dbMu.Lock(); delete(sqliteDirs, tb); dbMu.Unlock() })
	}
	dbMu.Unlock()
	s, err := Open(context.Background(), Config{DataDir: dir})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func postgresTestURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("POSTGRES_TEST_URL")
	if u == "off" {
		if os.Getenv("CI") != "" {
			tb.Fatal("POSTGRES_TEST_URL=off, but CI is set: the PostgreSQL suite must run in CI")
		}
		tb.Skip("POSTGRES_TEST_URL=off")
	}
	if u == "" {
		u = defaultPostgresURL
	}
	return u
}

// openPostgresTB opens a store in a schema of its own,
// agenthost_test_<random>, dropped when the test ends. The server must be
// reachable: a test never skips because it is not.
func openPostgresTB(tb testing.TB) *Store {
	tb.Helper()
	dbMu.Lock()
	defer dbMu.Unlock()
	u, ok := pgURLs[tb]
	if !ok {
		base := postgresTestURL(tb)
		admin, err := sql.Open("postgres", base)
		if err != nil {
			tb.Fatalf("postgres %s: %v", redactURL(base), err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = admin.PingContext(ctx)
		if sqlState(err) == "3D000" { // invalid_catalog_name: a fresh server
			err = createDatabase(ctx, base)
			if err == nil {
				err = admin.PingContext(ctx)
			}
		}
		if err != nil {
			admin.Close()
			tb.Fatalf("PostgreSQL at %s is unreachable (start it, or set POSTGRES_TEST_URL=off to skip locally): %v", redactURL(base), err)
		}
		var b [6]byte
		rand.Read(b[:])
		schema := "agenthost_test_" + hex.EncodeToString(b[:])
		if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
			admin.Close()
			tb.Fatal(err)
		}
		tb.Cleanup(func() {
			if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
				tb.Errorf("drop schema %s: %v", schema, err)
			}
			admin.Close()
		})
		p, err := url.Parse(base)
		if err != nil {
			tb.Fatal(err)
		}
		q := p.Query()
		q.Set("search_path", schema)
		p.RawQuery = q.Encode()
		u = p.String()
		pgURLs[tb] = u
		tb.Cleanup(func() { dbMu.Lock(); delete(pgURLs, tb); dbMu.Unlock() })
	}
	s, err := Open(context.Background(), Config{URL: u})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// newAgent stores an agent with a random name and returns its id.
func newAgent(tb testing.TB, s *Store) string {
	tb.Helper()
	a, _, err := s.EnsureAgent(context.Background(), dbplugin.AgentRecord{
		ID: uuid.NewString(), Name: "agent-" + uuid.NewString()[:8], CharacterJSON: []byte(`{"bio":"test"}`), Enabled: true,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return a.ID
}

// message is a memory for room by entity with text.
func message(room, entity, text string) *sdk.Memory {
	return &sdk.Memory{RoomID: room, EntityID: entity, Content: sdk.Content{Text: text}}
}

func mustCreate(tb testing.TB, s *Store, agentID string, m *sdk.Memory, table string, unique bool) string {
	tb.Helper()
	id, created, err := s.CreateMemory(context.Background(), agentID, m, table, unique)
	if err != nil {
		tb.Fatal(err)
	}
	if !created {
		tb.Fatalf("memory %s was not created", id)
	}
	return id
}

// wantErr fails unless err is non-nil and its message contains every part.
func wantErr(tb testing.TB, err error, parts ...string) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("no error; want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			tb.Fatalf("error %q does not contain %q", err, p)
		}
	}
}

// unit is a vector of dim values pointing mostly along axis, turned towards
// axis+1 by tilt.
func unit(dim, axis int, tilt float32) []float32 {
	v := make([]float32, dim)
	v[axis%dim] = 1
	v[(axis+1)%dim] = tilt
	return v
}

// createDatabase creates the database that u names, through the server's
// postgres database.
func createDatabase(ctx context.Context, u string) error {
	p, err := url.Parse(u)
	if err != nil {
		return err
	}
	name := strings.TrimPrefix(p.Path, "/")
	p.Path = "/postgres"
	db, err := sql.Open("postgres", p.String())
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, "CREATE DATABASE "+pqQuoteIdent(name))
	if sqlState(err) == "42P04" { // duplicate_database: created meanwhile
		err = nil
	}
	return err
}

func pqQuoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
