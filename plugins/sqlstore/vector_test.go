package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/dbplugin"
	"github.com/agenthost/agenthost/sdk/storage"
	"github.com/google/uuid"
)

// pgVectorAvailable asks the test server whether it has pgvector.
func pgVectorAvailable(t *testing.T, s *Store) bool {
	t.Helper()
	var n int
	if err := s.read().queryRow(ctx, `SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// openPostgresGo opens a second store on t's PostgreSQL schema that ranks
// in Go even where pgvector is installed.
func openPostgresGo(t *testing.T) *Store {
	t.Helper()
	openPostgresTB(t) // makes the schema
	dbMu.Lock()
	u := pgURLs[t]
	dbMu.Unlock()
	s, err := Open(ctx, Config{URL: u, NoPGVector: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestVectorSearchPath checks which path similarity search takes. It never
// skips: where the server has pgvector the store must use it, and where it
// has not, the store must say it falls back to Go and why.
func TestVectorSearchPath(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		s := migrated(t, openSQLiteTB(t))
		if got := s.VectorSearch(); !strings.HasPrefix(got, "in Go") {
			t.Fatalf("SQLite: %q", got)
		}
		rep, _ := s.MigrationStatus(ctx)
		if want := "HNSW index (8-bit vectors, saved in "; !strings.HasPrefix(rep.VectorSearch, want) ||
			!strings.HasSuffix(rep.VectorSearch, "; exact search: "+s.VectorSearch()) {
			t.Fatalf("report says %q", rep.VectorSearch)
		}
	})
	t.Run("postgres", func(t *testing.T) {
		s := openPostgresTB(t)
		before := s.VectorSearch()
		if !strings.HasPrefix(before, "in Go") {
			t.Fatalf("before Migrate, with no memories table: %q", before)
		}
		migrated(t, s)
		got := s.VectorSearch()
		if pgVectorAvailable(t, s) {
			t.Logf("the server has pgvector: %s", got)
			if !strings.HasPrefix(got, "pgvector ") || !s.vectors().search || !s.vectors().write {
				t.Fatalf("pgvector is available but the store says %q", got)
			}
			g := openPostgresGo(t)
			if got := g.VectorSearch(); !strings.Contains(got, "turned off") || g.vectors().search || !g.vectors().write {
				t.Fatalf("NoPGVector store: %q %+v", got, g.vectors())
			}
		} else {
			t.Logf("the server has no pgvector: the Go path is checked: %s", got)
			if got != "in Go: the server has no vector extension (pgvector)" || s.vectors().search || s.vectors().write {
				t.Fatalf("without pgvector the store says %q", got)
			}
		}
		rep, err := s.MigrationStatus(ctx)
		if err != nil || rep.VectorSearch != "HNSW index (8-bit vectors, in memory) from 1000 memories; exact search: "+got {
			t.Fatalf("report: %q %v", rep.VectorSearch, err)
		}
	})
}

// searchCase is a query run against every store of TestSearchSameEverywhere.
type searchCase struct {
	name string
	q    storage.SearchQuery
}

// TestSearchSameEverywhere stores the same memories in SQLite and in
// PostgreSQL and runs the same searches through every path there is (Go on
// SQLite, Go on PostgreSQL, pgvector when the server has it): each must
// return the same memories in the same order with the same similarities.
// The data holds ties, zero vectors, near-duplicates, memories of another
// size and every filter.
func TestSearchSameEverywhere(t *testing.T) {
	t.Parallel()
	type path struct {
		name string
		s    *Store
	}
	sq := migrated(t, openSQLiteTB(t))
	pg := migrated(t, openPostgresTB(t))
	paths := []path{{"sqlite/go", sq}, {"postgres/" + pg.VectorSearch(), pg}, {"postgres/go", openPostgresGo(t)}}
	if pgVectorAvailable(t, pg) && !pg.vectors().search {
		t.Fatal("pgvector is available but not used")
	}

	const dim = 16
	agentRec := dbplugin.AgentRecord{ID: uuid.NewString(), Name: "same", CharacterJSON: []byte(`{}`), Enabled: true}
	rooms := []string{uuid.NewString(), uuid.NewString(), uuid.NewString()}
	worlds := []string{uuid.NewString(), uuid.NewString()}
	users := []string{uuid.NewString(), uuid.NewString()}
	r := rand.New(rand.NewPCG(7, 8))
	var mems []sdk.Memory
	base := randomVector(r, dim)
	for i := 0; i < 400; i++ {
		v := randomVector(r, dim)
		switch {
		case i%50 == 0:
			v = make([]float32, dim) // zero vector
		case i%7 == 0:
			v = append([]float32(nil), base...) // exact ties
		case i%11 == 0:
			for k := range v { // near-duplicates of base
				v[k] = base[k] + float32(r.NormFloat64()*0.01)
			}
		}
		table := sdk.TableMessages
		if i%5 == 0 {
			table = sdk.TableFacts
		}
		mems = append(mems, sdk.Memory{ID: uuid.NewString(), RoomID: rooms[i%3], WorldID: worlds[i%2], EntityID: users[i%2],
			CreatedAt: int64(1_000 + i/3), Content: sdk.Content{Text: fmt.Sprint("m", i)}, Embedding: v, Table: table})
	}
	for _, p := range paths[:2] { // the third shares the second's database
		if _, _, err := p.s.EnsureAgent(ctx, agentRec); err != nil {
			t.Fatal(err)
		}
		for i := range mems {
			m := mems[i]
			if _, _, err := p.s.CreateMemory(ctx, agentRec.ID, &m, m.Table, i%3 == 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	agent := agentRec.ID
	// The unique flags (near-duplicate detection) agree.
	flags := func(s *Store) map[string]bool {
		out := map[string]bool{}
		ms, err := s.GetMemories(ctx, agent, storage.MemoryQuery{Count: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			out[m.ID] = m.Unique
		}
		return out
	}
	f0, f1 := flags(sq), flags(pg)
	if !reflect.DeepEqual(f0, f1) {
		t.Fatal("the unique flags differ between SQLite and PostgreSQL")
	}
	dups := 0
	for i, m := range mems {
		if i%3 == 0 && !f0[m.ID] {
			dups++
		}
	}
	if dups == 0 {
		t.Fatal("the data should hold near-duplicates")
	}

	cases := []searchCase{
		{"all", storage.SearchQuery{Embedding: base, Count: 30}},
		{"default count", storage.SearchQuery{Embedding: randomVector(r, dim)}},
		{"table", storage.SearchQuery{Embedding: base, Table: sdk.TableFacts, Count: 25}},
		{"room", storage.SearchQuery{Embedding: randomVector(r, dim), RoomID: rooms[1], Count: 50}},
		{"world", storage.SearchQuery{Embedding: randomVector(r, dim), WorldID: worlds[0], Count: 20}},
		{"entity", storage.SearchQuery{Embedding: randomVector(r, dim), EntityID: users[1], Count: 20}},
		{"unique", storage.SearchQuery{Embedding: base, Unique: true, Count: 40}},
		{"threshold", storage.SearchQuery{Embedding: base, Threshold: 0.5, Count: 500}},
		{"high threshold", storage.SearchQuery{Embedding: base, Threshold: 0.95, Count: 500}},
		{"negative threshold", storage.SearchQuery{Embedding: randomVector(r, dim), Threshold: -0.2, Count: 500}},
		{"all of them", storage.SearchQuery{Embedding: randomVector(r, dim), Count: 1000}},
		{"filters together", storage.SearchQuery{Embedding: base, Table: sdk.TableMessages, RoomID: rooms[0], WorldID: worlds[1],
			EntityID: users[1], Threshold: 0.1, Count: 100}},
		{"zero query", storage.SearchQuery{Embedding: make([]float32, dim), Count: 5}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var want []sdk.Memory
			for i, p := range paths {
				got, err := p.s.SearchMemories(ctx, agent, c.q)
				if err != nil {
					t.Fatalf("%s: %v", p.name, err)
				}
				if i == 0 {
					want = got
					if len(want) == 0 && c.name != "high threshold" {
						t.Fatalf("%s found nothing", p.name)
					}
					for k := 1; k < len(got); k++ {
						if got[k].Similarity > got[k-1].Similarity {
							t.Fatalf("not ordered by similarity at %d", k)
						}
					}
					continue
				}
				if len(got) != len(want) {
					t.Fatalf("%s returned %d memories, %s %d", p.name, len(got), paths[0].name, len(want))
				}
				for k := range got {
					if got[k].ID != want[k].ID || got[k].Similarity != want[k].Similarity {
						t.Fatalf("%s differs from %s at %d: %s %.17g vs %s %.17g", p.name, paths[0].name, k,
							got[k].ID, got[k].Similarity, want[k].ID, want[k].Similarity)
					}
				}
			}
		})
	}
	// Memories of the old size take no part once the agent switches.
	for _, p := range paths[:2] {
		if _, stale, err := p.s.SetEmbeddingDimension(ctx, agent, 8); err != nil || stale != int64(len(mems)) {
			t.Fatalf("%s: switch: %d %v", p.name, stale, err)
		}
		m := message(rooms[0], users[0], "eight")
		m.Embedding = unit(8, 0, 0)
		if _, _, err := p.s.CreateMemory(ctx, agent, m, sdk.TableMessages, true); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range paths {
		got, err := p.s.SearchMemories(ctx, agent, storage.SearchQuery{Embedding: unit(8, 0, 0.1)})
		if err != nil || len(got) != 1 || got[0].Content.Text != "eight" {
			t.Fatalf("%s after the switch: %+v %v", p.name, got, err)
		}
		_, err = p.s.SearchMemories(ctx, agent, storage.SearchQuery{Embedding: base})
		wantErr(t, err, "query.embedding", "has 16 dimensions", "stores embeddings of 8")
	}
}

// TestPGVectorBackfill: memories stored before pgvector was there (here:
// its column dropped) are copied into it by the next Migrate, and search
// finds them through pgvector.
func TestPGVectorBackfill(t *testing.T) {
	t.Parallel()
	s := migrated(t, openPostgresTB(t))
	if !pgVectorAvailable(t, s) {
		if s.vectors().write {
			t.Fatal("no pgvector on the server, yet the store writes its column")
		}
		t.Log("the server has no pgvector: the fallback is checked by TestVectorSearchPath; no column to fill here")
		return
	}
	agent := newAgent(t, s)
	room := uuid.NewString()
	for i := 0; i < 1500; i++ {
		m := message(room, agent, fmt.Sprint(i))
		m.Embedding = unit(8, i, float32(i%10)/10)
		mustCreate(t, s, agent, m, sdk.TableMessages, false)
	}
	if _, err := s.db.ExecContext(ctx, `ALTER TABLE memories DROP COLUMN embedding_vec`); err != nil {
		t.Fatal(err)
	}
	s2 := openPostgresTB(t)
	if s2.vectors().search {
		t.Fatal("without the column, search cannot use pgvector")
	}
	want, err := s2.SearchMemories(ctx, agent, storage.SearchQuery{Embedding: unit(8, 3, 0.3), Count: 20})
	if err != nil {
		t.Fatal(err)
	}
	migrated(t, s2)
	if !s2.vectors().search {
		t.Fatalf("after Migrate: %s", s2.VectorSearch())
	}
	var missing int
	if err := s2.read().queryRow(ctx, `SELECT count(*) FROM memories WHERE embedding_dim > 0 AND embedding_vec IS NULL`).Scan(&missing); err != nil || missing != 0 {
		t.Fatalf("%d memories without embedding_vec (%v)", missing, err)
	}
	got, err := s2.SearchMemories(ctx, agent, storage.SearchQuery{Embedding: unit(8, 3, 0.3), Count: 20})
	if err != nil || !reflect.DeepEqual(ids(got), ids(want)) {
		t.Fatalf("after the backfill: %v %v, want %v", ids(got), err, ids(want))
	}
}

func ids(ms []sdk.Memory) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

// TestMigrationAltersTable: a database at version 4, with memories in it,
// gets migration 5, which adds columns to memories and fills them from the
// stored rows, in one transaction.
func TestMigrationAltersTable(t *testing.T) {
	t.Parallel()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			rep, err := s.migrateTo(ctx, 4)
			if err != nil || rep.Applied != 4 {
				t.Fatalf("to 4: %+v %v", rep, err)
			}
			agent := newAgent(t, s)
			room := uuid.NewString()
			// Rows as version 4 wrote them.
			for i, emb := range [][]float32{nil, unit(4, 0, 0)} {
				var blob any
				if emb != nil {
					blob = encodeVector(emb)
				}
				_, err := s.read().exec(ctx, `INSERT INTO memories (id, agent_id, type, room_id, world_id, entity_id, created_at,
					content, metadata, is_unique, embedding, embedding_dim) VALUES (?, ?, 'messages', ?, '', ?, ?, '{"text":"old"}', '{}', ?, ?, ?)`,
					uuid.NewString(), agent, room, agent, int64(5000+i), false, blob, len(emb))
				if err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.EnsureEmbeddingDimension(ctx, agent, 4); err != nil {
				t.Fatal(err)
			}
			rep, err = s.Migrate(ctx)
			if err != nil || rep.Applied != len(migrations)-4 {
				t.Fatalf("the rest: %+v %v", rep, err)
			}
			rows, err := s.read().query(ctx, `SELECT created_at, updated_at, embedded_at, embedding_dim FROM memories WHERE agent_id = ? ORDER BY created_at`, agent)
			if err != nil {
				t.Fatal(err)
			}
			var got [][4]int64
			for rows.Next() {
				var r [4]int64
				if err := rows.Scan(&r[0], &r[1], &r[2], &r[3]); err != nil {
					t.Fatal(err)
				}
				got = append(got, r)
			}
			rows.Close()
			want := [][4]int64{{5000, 5000, 0, 0}, {5001, 5001, 5001, 4}}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("rows after the alter: %v, want %v", got, want)
			}
			// The old rows read back, and the new columns work.
			ms, err := s.GetMemories(ctx, agent, storage.MemoryQuery{RoomID: room})
			if err != nil || len(ms) != 2 || ms[0].Content.Text != "old" {
				t.Fatalf("%+v %v", ms, err)
			}
			todo, err := s.GetMemoriesToReembed(ctx, agent, 5002, 10)
			if err != nil || len(todo) != 1 || todo[0].CreatedAt != 5001 {
				t.Fatalf("to re-embed: %+v %v", todo, err)
			}
		})
	}
}

// The environment of the child processes of TestMigrateProcesses.
const migrateChildEnv = "AGENTHOST_SQL_TEST_MIGRATE_URL"

// migrateChild migrates the database of its environment and prints how many
// migrations it applied.
func migrateChild(u string) int {
	s, err := Open(context.Background(), Config{URL: u, DataDir: os.Getenv(childDirEnv + "_MIGRATE")})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Close()
	rep, err := s.Migrate(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(rep.Applied)
	return 0
}

// TestMigrateProcesses starts several processes that migrate one fresh
// database at once (PostgreSQL: the advisory lock; SQLite: the write
// lock). Each migration is applied exactly once, none fails.
func TestMigrateProcesses(t *testing.T) {
	t.Parallel()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			env := []string{}
			var s *Store
			if b.name == "postgres" {
				s = openPostgresTB(t)
				dbMu.Lock()
				env = append(env, migrateChildEnv+"="+pgURLs[t])
				dbMu.Unlock()
			} else {
				s = openSQLiteTB(t)
				dbMu.Lock()
				env = append(env, migrateChildEnv+"=sqlite", childDirEnv+"_MIGRATE="+sqliteDirs[t])
				dbMu.Unlock()
			}
			const procs = 4
			outs := make([]string, procs)
			errs := make([]error, procs)
			var wg sync.WaitGroup
			for i := 0; i < procs; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cmd := exec.Command(os.Args[0], "-test.run=^$")
					cmd.Env = append(os.Environ(), env...)
					out, err := cmd.Output()
					outs[i], errs[i] = strings.TrimSpace(string(out)), err
					if ee, ok := err.(*exec.ExitError); ok {
						errs[i] = fmt.Errorf("%v: %s", err, ee.Stderr)
					}
				}()
			}
			wg.Wait()
			total := 0
			for i := range outs {
				if errs[i] != nil {
					t.Fatalf("process %d: %v", i, errs[i])
				}
				var n int
				fmt.Sscan(outs[i], &n)
				total += n
			}
			if total != len(migrations) {
				t.Fatalf("the processes applied %d migrations in all (%v), want %d", total, outs, len(migrations))
			}
			rep, err := s.MigrationStatus(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range rep.Migrations {
				if m.AppliedAt == 0 {
					t.Fatalf("migration %d not applied", m.Version)
				}
			}
		})
	}
}

// TestReembedFlow is what `agenthost db reembed` does, on the store: switch
// the size, then walk the memories to re-embed until none is left.
func TestReembedFlow(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		agent := newAgent(t, s)
		room := uuid.NewString()
		for i := 0; i < 25; i++ {
			m := message(room, agent, fmt.Sprint("m", i))
			if i%5 != 4 {
				m.Embedding = unit(4, i, 0.5)
			}
			mustCreate(t, s, agent, m, sdk.TableMessages, false)
		}
		// Another size is refused with both sizes named…
		_, err := s.EnsureEmbeddingDimension(ctx, agent, 6)
		wantErr(t, err, "is 6 but the agent stores 4", "agenthost db reembed")
		// …unless switched on purpose.
		prev, stale, err := s.SetEmbeddingDimension(ctx, agent, 6)
		if err != nil || prev != 4 || stale != 20 {
			t.Fatalf("switch: %d %d %v", prev, stale, err)
		}
		start := now()
		done := 0
		for {
			batch, err := s.GetMemoriesToReembed(ctx, agent, start, 7)
			if err != nil {
				t.Fatal(err)
			}
			if len(batch) == 0 {
				break
			}
			for _, m := range batch {
				if len(m.Embedding) != 4 {
					t.Fatalf("listed a memory of size %d", len(m.Embedding))
				}
				if _, err := s.UpdateMemory(ctx, agent, storage.MemoryUpdate{ID: m.ID, Embedding: unit(6, done, 0.5)}); err != nil {
					t.Fatal(err)
				}
				done++
			}
			if done > 100 {
				t.Fatal("the walk does not end")
			}
		}
		if done != 20 {
			t.Fatalf("re-embedded %d, want 20", done)
		}
		if _, stale, _ := s.SetEmbeddingDimension(ctx, agent, 6); stale != 0 {
			t.Fatalf("%d stale after the walk", stale)
		}
		got, err := s.SearchMemories(ctx, agent, storage.SearchQuery{Embedding: unit(6, 0, 0.5), Count: 100})
		if err != nil || len(got) != 20 {
			t.Fatalf("search after: %d %v", len(got), err)
		}
		_, err = s.GetMemoriesToReembed(ctx, agent, 0, 0)
		wantErr(t, err, "limit", "between 1 and")
	})
}

// TestPostgresConnectionsTerminated ends every server session of the store
// (pg_terminate_backend, as a restart or an administrator does): a call
// that meets a dead session fails with an error matching
// sdk.ErrUnavailable, and the next calls work on fresh sessions.
func TestPostgresConnectionsTerminated(t *testing.T) {
	t.Parallel()
	openPostgresTB(t)
	dbMu.Lock()
	u := pgURLs[t] + "&application_name=agenthost_terminate_test"
	dbMu.Unlock()
	s, err := Open(ctx, Config{URL: u})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	migrated(t, s)
	agent := newAgent(t, s)
	room := uuid.NewString()
	// Several idle sessions in the pool.
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mustCreate(t, s, agent, message(room, agent, "before"), sdk.TableMessages, false)
		}()
	}
	wg.Wait()
	admin, err := Open(ctx, Config{URL: postgresTestURL(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var n int
	err = admin.read().queryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'agenthost_terminate_test'`).Scan(&n)
	if err != nil || n == 0 {
		t.Fatalf("terminated %d sessions: %v", n, err)
	}
	failed := 0
	for i := 0; i < 10; i++ {
		_, _, err := s.CreateMemory(ctx, agent, message(room, agent, fmt.Sprint("after ", i)), sdk.TableMessages, false)
		if err != nil {
			failed++
			err = s.ClassifyError(err)
			if !errors.Is(err, sdk.ErrUnavailable) || !strings.Contains(err.Error(), "the postgres database is unreachable") {
				t.Fatalf("a dead session gave %v", err)
			}
		}
	}
	if c, _ := s.CountMemories(ctx, agent, room, "", false); c != int64(4+10-failed) {
		t.Fatalf("%d memories, want %d", c, 4+10-failed)
	}
	t.Logf("%d of %d sessions ended; %d calls failed on them, then the pool reconnected", n, n, failed)
	if err := s.ClassifyError(errors.New("syntax")); errors.Is(err, sdk.ErrUnavailable) {
		t.Fatal("an ordinary error marked unavailable")
	}
}
