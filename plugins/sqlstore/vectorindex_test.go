package sqlstore

import (
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/agenthost/agenthost/internal/syncbuf"
	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
)

// indexed is a store whose searches use the vector index from min memories
// on, saved under dir; it reopens the same database as b.open.
type indexed struct {
	b   backend
	dir string
	log *syncbuf.Buffer
	min int
}

func newIndexed(t testing.TB, b backend, min int) *indexed {
	return &indexed{b: b, dir: t.TempDir(), log: &syncbuf.Buffer{}, min: min}
}

// open opens the store again, with its index folder and log.
func (x *indexed) open(t testing.TB) *Store {
	t.Helper()
	x.b.open(t) // makes the database of t, if not yet
	cfg := Config{DataDir: x.dir, VectorIndexMin: x.min,
		Logger: hclog.New(&hclog.LoggerOptions{Output: x.log, Level: hclog.Info})}
	if x.b.name == "postgres" {
		dbMu.Lock()
		cfg.URL = pgURLs[t]
		dbMu.Unlock()
	} else {
		dbMu.Lock()
		cfg.DataDir = sqliteDirs[t]
		dbMu.Unlock()
	}
	s, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return migrated(t, s)
}

// waitIndex starts the agent's index, waits for the store's background
// work and returns the index, ready.
func waitIndex(t testing.TB, s *Store, agent string, dim int) *agentIndex {
	t.Helper()
	for range 3 {
		if ix := s.vix.get(agent, dim); ix != nil {
			s.vix.wg.Wait() // its first save
			return ix
		}
		s.vix.wg.Wait()
	}
	t.Fatalf("the index of agent %s is not ready", agent)
	return nil
}

// clustered are n vectors of dim values around a few centres, as the
// embeddings of texts on a few topics are.
func clustered(r *rand.Rand, n, dim int) [][]float32 {
	centres := make([][]float32, 20)
	for i := range centres {
		centres[i] = randomVector(r, dim)
	}
	out := make([][]float32, n)
	for i := range out {
		c := centres[r.IntN(len(centres))]
		v := make([]float32, dim)
		for j := range v {
			v[j] = c[j] + 0.7*float32(r.NormFloat64())
		}
		out[i] = v
	}
	return out
}

// near is v moved a little: a query about what v is about.
func near(r *rand.Rand, v []float32) []float32 {
	q := make([]float32, len(v))
	for i := range q {
		q[i] = v[i] + 0.5*float32(r.NormFloat64())
	}
	return q
}

// recallAgainstExact searches with the index and exactly, and returns the
// share of the exact results the index found; the similarities of what
// both found must be equal.
func recallAgainstExact(t *testing.T, s *Store, agent string, qs []storage.SearchQuery) float64 {
	t.Helper()
	hit, total := 0, 0
	for _, q := range qs {
		got, err := s.SearchMemories(ctx, agent, q)
		if err != nil {
			t.Fatal(err)
		}
		want, err := s.exactSearch(ctx, s.read(), agent, q, q.Count)
		if err != nil {
			t.Fatal(err)
		}
		sims := map[string]float64{}
		for _, m := range want {
			sims[m.ID] = m.Similarity
		}
		for i, m := range got {
			if i > 0 && m.Similarity > got[i-1].Similarity {
				t.Fatalf("results out of order: %v after %v", m.Similarity, got[i-1].Similarity)
			}
			if m.RoomID != q.RoomID && q.RoomID != "" {
				t.Fatalf("memory %s of room %s returned for room %s", m.ID, m.RoomID, q.RoomID)
			}
			if q.Threshold != 0 && m.Similarity < q.Threshold {
				t.Fatalf("similarity %v below the threshold %v", m.Similarity, q.Threshold)
			}
			if w, ok := sims[m.ID]; ok {
				hit++
				if w != m.Similarity {
					t.Fatalf("memory %s: similarity %v by the index, %v exactly", m.ID, m.Similarity, w)
				}
			}
		}
		total += len(want)
	}
	if total == 0 {
		return 1
	}
	return float64(hit) / float64(total)
}

func TestVectorIndexRecall(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			x := newIndexed(t, b, 100)
			s := x.open(t)
			agent := newAgent(t, s)
			rooms := []string{uuid.NewString(), uuid.NewString(), uuid.NewString()}
			r := rand.New(rand.NewPCG(7, 8))
			const dim = 32
			data := map[string][][]float32{"random": nil, "clustered": clustered(r, 700, dim)}
			data["random"] = make([][]float32, 700)
			for i := range data["random"] {
				data["random"][i] = randomVector(r, dim)
			}
			for _, kind := range []string{"clustered", "random"} {
				vs := data[kind]
				a := agent
				if kind == "random" {
					a = newAgent(t, s)
				}
				seedVectors(t, s, a, rooms, vs)
				ix := waitIndex(t, s, a, dim)
				if n := ix.g.Len(); n != len(vs) {
					t.Fatalf("the index holds %d memories of %d", n, len(vs))
				}
				var qs []storage.SearchQuery
				for i := 0; i < 30; i++ {
					qs = append(qs, storage.SearchQuery{Embedding: near(r, vs[r.IntN(len(vs))]), Count: 10})
				}
				// Filters: a small room in a large agent, a large room,
				// a threshold.
				for i := 0; i < 10; i++ {
					v := vs[r.IntN(len(vs))]
					qs = append(qs,
						storage.SearchQuery{Embedding: near(r, v), Count: 5, RoomID: rooms[0], Table: sdk.TableMessages},
						storage.SearchQuery{Embedding: near(r, v), Count: 10, RoomID: rooms[1]},
						storage.SearchQuery{Embedding: near(r, v), Count: 10, Threshold: 0.5})
				}
				before := s.vix.answered.Load()
				rc := recallAgainstExact(t, s, a, qs)
				if n := s.vix.answered.Load() - before; n != int64(len(qs)) {
					t.Fatalf("the index answered %d searches of %d", n, len(qs))
				}
				t.Logf("%s: recall@10 %.3f", kind, rc)
				if rc < 0.95 {
					t.Fatalf("%s: recall %.3f < 0.95", kind, rc)
				}
				// More than the index's pool: exact, and all of them.
				got, err := s.SearchMemories(ctx, a, storage.SearchQuery{Embedding: vs[0], Count: 1 << 20})
				if err != nil || len(got) != len(vs) {
					t.Fatalf("a count of 2^20: %d memories, %v", len(got), err)
				}
				// A filter no memory has finds nothing, quickly.
				got, err = s.SearchMemories(ctx, a, storage.SearchQuery{Embedding: vs[0], RoomID: uuid.NewString()})
				if err != nil || len(got) != 0 {
					t.Fatalf("unknown room: %d %v", len(got), err)
				}
			}
		})
	}
}

// TestVectorIndexFollowsWrites changes the memories under a ready index,
// from this store and from another one on the same database (another
// process, as far as the index can tell), and checks that every search
// sees the changes.
func TestVectorIndexFollowsWrites(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			x := newIndexed(t, b, 50)
			s := x.open(t)
			other := x.open(t)
			agent := newAgent(t, s)
			rooms := []string{uuid.NewString(), uuid.NewString(), uuid.NewString()}
			r := rand.New(rand.NewPCG(9, 10))
			const dim = 48
			vs := clustered(r, 300, dim)
			ids := seedVectors(t, s, agent, rooms, vs)
			waitIndex(t, s, agent, dim)
			top := func(st *Store, v []float32, q storage.SearchQuery) []sdk.Memory {
				t.Helper()
				q.Embedding = v
				if q.Count == 0 {
					q.Count = 3
				}
				got, err := st.SearchMemories(ctx, agent, q)
				if err != nil {
					t.Fatal(err)
				}
				return got
			}

			// A new memory, written by the other store, is found at once.
			fresh := randomVector(r, dim)
			m := message(rooms[1], uuid.NewString(), "fresh")
			m.Embedding = fresh
			freshID := mustCreate(t, other, agent, m, sdk.TableFacts, false)
			if got := top(s, fresh, storage.SearchQuery{}); len(got) == 0 || got[0].ID != freshID {
				t.Fatalf("a new memory is not found: %+v", got)
			}
			// A changed embedding moves the memory.
			moved := randomVector(r, dim)
			if ok, err := other.UpdateMemory(ctx, agent, storage.MemoryUpdate{ID: ids[5], Embedding: moved}); !ok || err != nil {
				t.Fatal(ok, err)
			}
			if got := top(s, moved, storage.SearchQuery{}); got[0].ID != ids[5] {
				t.Fatalf("a re-embedded memory is not found at its new place: %+v", got[0].ID)
			}
			for _, g := range top(s, vs[5], storage.SearchQuery{Count: 10}) {
				if g.ID == ids[5] && g.Similarity > 0.9 {
					t.Fatalf("the memory is still found at its old place (%v)", g.Similarity)
				}
			}
			// A cleared embedding takes the memory out of search.
			if ok, err := other.UpdateMemory(ctx, agent, storage.MemoryUpdate{ID: ids[6], ClearEmbedding: true}); !ok || err != nil {
				t.Fatal(ok, err)
			}
			for _, g := range top(s, vs[6], storage.SearchQuery{Count: 10}) {
				if g.ID == ids[6] {
					t.Fatal("a memory without embedding is found")
				}
			}
			// Deletes, by either store: one memory, many, a room.
			if n, err := other.DeleteMemory(ctx, agent, ids[7]); n != 1 || err != nil {
				t.Fatal(n, err)
			}
			if n, err := s.DeleteManyMemories(ctx, agent, ids[8:10]); n != 2 || err != nil {
				t.Fatal(n, err)
			}
			for _, i := range []int{7, 8, 9} {
				for _, g := range top(s, vs[i], storage.SearchQuery{Count: 10}) {
					if g.ID == ids[i] {
						t.Fatalf("deleted memory %d is found", i)
					}
				}
			}
			if _, err := other.DeleteAllMemories(ctx, agent, rooms[2], ""); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 30; i++ {
				for _, g := range top(s, near(r, vs[r.IntN(len(vs))]), storage.SearchQuery{Count: 10}) {
					if g.RoomID == rooms[2] {
						t.Fatal("a memory of a deleted room is found")
					}
				}
			}
			// What is left is still found as well as exact search finds it.
			var qs []storage.SearchQuery
			for i := 0; i < 30; i++ {
				qs = append(qs, storage.SearchQuery{Embedding: near(r, vs[r.IntN(len(vs))]), Count: 10})
			}
			if rc := recallAgainstExact(t, s, agent, qs); rc < 0.95 {
				t.Fatalf("recall after the deletes %.3f", rc)
			}

			// Concurrent writes and searches: every memory written is
			// found afterwards, each by its own vector.
			var wg sync.WaitGroup
			written := make([][2]any, 40)
			for w := 0; w < 4; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					st := s
					if w%2 == 1 {
						st = other
					}
					rr := rand.New(rand.NewPCG(uint64(w), 1))
					for i := w; i < len(written); i += 4 {
						v := randomVector(rr, dim)
						m := message(rooms[1], uuid.NewString(), "concurrent")
						m.Embedding = v
						id, _, err := st.CreateMemory(ctx, agent, m, sdk.TableMessages, false)
						if err != nil {
							t.Error(err)
							return
						}
						written[i] = [2]any{id, v}
						if _, err := st.SearchMemories(ctx, agent, storage.SearchQuery{Embedding: v, Count: 3}); err != nil {
							t.Error(err)
						}
					}
				}()
			}
			wg.Wait()
			for _, w := range written {
				got := top(s, w[1].([]float32), storage.SearchQuery{Count: 1})
				if len(got) != 1 || got[0].ID != w[0].(string) {
					t.Fatalf("memory %s written concurrently is not found", w[0])
				}
			}

			// Deleting the agent drops its index.
			if _, err := s.DeleteAgent(ctx, agent); err != nil {
				t.Fatal(err)
			}
			if _, err := s.SearchMemories(ctx, agent, storage.SearchQuery{Embedding: fresh}); err == nil {
				t.Fatal("search of a deleted agent")
			}
			s.vix.mu.Lock()
			_, kept := s.vix.agents[agent]
			s.vix.mu.Unlock()
			if kept {
				t.Fatal("the index of a deleted agent is kept")
			}
			if _, err := os.Stat(s.vix.path(agent)); !os.IsNotExist(err) {
				t.Fatalf("the index file of a deleted agent is kept: %v", err)
			}
		})
	}
}

// TestVectorIndexSurvivesRestart closes the store, changes the memories
// while it is closed, and opens it again: the saved index is loaded (not
// built) and catches up; a damaged file is rebuilt with a log line.
func TestVectorIndexSurvivesRestart(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			x := newIndexed(t, b, 50)
			s := x.open(t)
			agent := newAgent(t, s)
			rooms := []string{uuid.NewString(), uuid.NewString(), uuid.NewString()}
			r := rand.New(rand.NewPCG(11, 12))
			const dim = 32
			vs := clustered(r, 400, dim)
			ids := seedVectors(t, s, agent, rooms, vs)
			waitIndex(t, s, agent, dim)
			if _, err := os.Stat(s.vix.path(agent)); err != nil {
				t.Fatalf("the index was not saved: %v", err)
			}
			if !strings.Contains(x.log.String(), "built=400") {
				t.Fatalf("log: %s", x.log)
			}
			s.Close()

			// Meanwhile, without the index: new memories, a deleted one, a
			// re-embedded one.
			w := x.open(t)
			w.vix = nil
			var added []string
			var addedVs [][]float32
			for i := 0; i < 20; i++ {
				v := randomVector(r, dim)
				m := message(rooms[1], uuid.NewString(), "while closed")
				m.Embedding = v
				added = append(added, mustCreate(t, w, agent, m, sdk.TableMessages, false))
				addedVs = append(addedVs, v)
			}
			deletedSeq := mustSeq(t, w, agent, ids[1])
			if n, err := w.DeleteMemory(ctx, agent, ids[1]); n != 1 || err != nil {
				t.Fatal(n, err)
			}
			moved := randomVector(r, dim)
			if ok, err := w.UpdateMemory(ctx, agent, storage.MemoryUpdate{ID: ids[2], Embedding: moved}); !ok || err != nil {
				t.Fatal(ok, err)
			}
			w.Close()

			s = x.open(t)
			ix := waitIndex(t, s, agent, dim)
			if !strings.Contains(x.log.String(), "loaded=419") {
				t.Fatalf("the saved index was not loaded and caught up (400 + 20 - 1 memories):\n%s", x.log)
			}
			if _, ok := ix.live[deletedSeq]; ok {
				t.Fatal("the memory deleted while closed is still in the index")
			}
			for i, v := range addedVs {
				got, err := s.SearchMemories(ctx, agent, storage.SearchQuery{Embedding: v, Count: 1})
				if err != nil || len(got) != 1 || got[0].ID != added[i] {
					t.Fatalf("memory written while closed not found: %+v %v", got, err)
				}
			}
			got, err := s.SearchMemories(ctx, agent, storage.SearchQuery{Embedding: moved, Count: 1})
			if err != nil || len(got) != 1 || got[0].ID != ids[2] {
				t.Fatalf("memory re-embedded while closed not found: %+v %v", got, err)
			}
			path := s.vix.path(agent)
			s.Close()

			// A crash mid-save leaves a temporary file (removed at the next
			// open) and the old file; damage to the file is found.
			saved, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path+".123.tmp", saved[:len(saved)/2], 0o600); err != nil {
				t.Fatal(err)
			}
			saved[len(saved)/3] ^= 0x40
			if err := os.WriteFile(path, saved, 0o600); err != nil {
				t.Fatal(err)
			}
			s = x.open(t)
			if _, err := os.Stat(path + ".123.tmp"); !os.IsNotExist(err) {
				t.Fatal("the temporary file of an interrupted save is left")
			}
			ix = waitIndex(t, s, agent, dim)
			log := x.log.String()
			if !strings.Contains(log, "a saved vector index does not load; rebuilding it from the database") ||
				!strings.Contains(log, "checksum") || !strings.Contains(log, "built=419") {
				t.Fatalf("a damaged file must be rebuilt with a log line:\n%s", log)
			}
			got, err = s.SearchMemories(ctx, agent, storage.SearchQuery{Embedding: moved, Count: 1})
			if err != nil || len(got) != 1 || got[0].ID != ids[2] {
				t.Fatalf("after the rebuild: %+v %v", got, err)
			}
			_ = ix
		})
	}
}

// TestVectorIndexReembed checks that switching the embedding size (what
// `agenthost db reembed` does first) drops the index, which is then built
// from the new embeddings.
func TestVectorIndexReembed(t *testing.T) {
	x := newIndexed(t, backends()[0], 50)
	s := x.open(t)
	agent := newAgent(t, s)
	r := rand.New(rand.NewPCG(13, 14))
	rooms := []string{uuid.NewString(), uuid.NewString()}
	ids := seedVectors(t, s, agent, rooms, clustered(r, 200, 16))
	waitIndex(t, s, agent, 16)
	if _, _, err := s.SetEmbeddingDimension(ctx, agent, 24); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.vix.path(agent)); !os.IsNotExist(err) {
		t.Fatalf("the index of the old embeddings is kept: %v", err)
	}
	nv := clustered(r, len(ids), 24)
	for i, id := range ids {
		if _, err := s.UpdateMemory(ctx, agent, storage.MemoryUpdate{ID: id, Embedding: nv[i]}); err != nil {
			t.Fatal(err)
		}
	}
	ix := waitIndex(t, s, agent, 24)
	if ix.g.Dim() != 24 || ix.g.Len() != len(ids) || ix.g.Deleted() != 0 {
		t.Fatalf("after re-embedding: %d values, %d nodes, %d deleted", ix.g.Dim(), ix.g.Len(), ix.g.Deleted())
	}
	got, err := s.SearchMemories(ctx, agent, storage.SearchQuery{Embedding: nv[3], Count: 1})
	if err != nil || len(got) != 1 || got[0].ID != ids[3] {
		t.Fatalf("%+v %v", got, err)
	}
}

// TestVectorIndexRebuildsAfterDeletes deletes most of an agent's memories
// (a room, through DeleteRoom): the index is rebuilt without them, and
// answers as well as before.
func TestVectorIndexRebuildsAfterDeletes(t *testing.T) {
	x := newIndexed(t, backends()[0], 50)
	s := x.open(t)
	agent := newAgent(t, s)
	world := uuid.NewString()
	rooms := []string{uuid.NewString(), uuid.NewString(), uuid.NewString()}
	for _, room := range rooms {
		connect(t, s, agent, world, room, uuid.NewString())
	}
	r := rand.New(rand.NewPCG(15, 16))
	vs := clustered(r, 600, 24)
	ids := seedVectors(t, s, agent, rooms, vs)
	old := waitIndex(t, s, agent, 24)
	if n, err := s.DeleteRoom(ctx, agent, rooms[2]); n != 1 || err != nil {
		t.Fatal(n, err)
	}
	s.vix.wg.Wait()
	fresh := waitIndex(t, s, agent, 24)
	if fresh == old || fresh.g.Deleted() != 0 || fresh.g.Len() != 300 {
		t.Fatalf("after deleting half: rebuilt %v, %d nodes, %d deleted", fresh != old, fresh.g.Len(), fresh.g.Deleted())
	}
	if !strings.Contains(x.log.String(), "vector index rebuilt") {
		t.Fatalf("log:\n%s", x.log)
	}
	var qs []storage.SearchQuery
	for i := 0; i < 20; i++ {
		qs = append(qs, storage.SearchQuery{Embedding: near(r, vs[r.IntN(len(vs))]), Count: 10})
	}
	if rc := recallAgainstExact(t, s, agent, qs); rc < 0.95 {
		t.Fatalf("recall %.3f", rc)
	}
	_ = ids
}

func mustSeq(t *testing.T, s *Store, agent, id string) int64 {
	t.Helper()
	var seq int64
	if err := s.read().queryRow(ctx, `SELECT seq FROM memories WHERE agent_id = ? AND id = ?`, agent, id).Scan(&seq); err != nil {
		t.Fatal(err)
	}
	return seq
}

// TestVectorSearchSetting checks the host setting that turns the index
// off, and that a wrong value stops the plugin with a clear error.
func TestVectorSearchSetting(t *testing.T) {
	for _, c := range []struct {
		value string
		index bool
		err   string
	}{
		{"", true, ""}, {"index", true, ""}, {"exact", false, ""}, {"fast", false, `VECTOR_SEARCH="fast": want index or exact`},
	} {
		p, db := newPlugin()
		err := p.Init(ctx, sdk.Host{DataDir: t.TempDir(), Settings: map[string]string{VectorSearchSetting: c.value}})
		if c.err != "" {
			wantErr(t, err, c.err)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		s := db.Adapter.(*Store)
		if (s.vix != nil) != c.index {
			t.Errorf("VECTOR_SEARCH=%q: index %v", c.value, s.vix != nil)
		}
		s.Close()
	}
}

// TestVectorIndexSmallAgents checks that an agent below the minimum gets no
// index, in memory or on disk, and gets one once it grows past it.
func TestVectorIndexSmallAgents(t *testing.T) {
	x := newIndexed(t, backends()[0], 50)
	s := x.open(t)
	agent := newAgent(t, s)
	r := rand.New(rand.NewPCG(17, 18))
	vs := clustered(r, 80, 16)
	ids := seedVectors(t, s, agent, []string{uuid.NewString()}, vs[:40])
	for range 2 {
		got, err := s.SearchMemories(ctx, agent, storage.SearchQuery{Embedding: vs[3], Count: 1})
		if err != nil || len(got) != 1 || got[0].ID != ids[3] {
			t.Fatalf("%+v %v", got, err)
		}
	}
	s.vix.wg.Wait()
	s.vix.mu.Lock()
	_, made := s.vix.agents[agent]
	s.vix.mu.Unlock()
	if made || s.vix.answered.Load() != 0 {
		t.Fatal("an agent of 40 memories got an index")
	}
	if _, err := os.Stat(s.vix.path(agent)); !os.IsNotExist(err) {
		t.Fatalf("an agent of 40 memories got an index file: %v", err)
	}
	for _, v := range vs[40:] {
		m := message(uuid.NewString(), uuid.NewString(), "more")
		m.Embedding = v
		ids = append(ids, mustCreate(t, s, agent, m, sdk.TableMessages, false))
	}
	// The next search finds it large enough and starts its index.
	if _, err := s.SearchMemories(ctx, agent, storage.SearchQuery{Embedding: vs[70], Count: 1}); err != nil {
		t.Fatal(err)
	}
	s.vix.wg.Wait()
	s.vix.mu.Lock()
	ix := s.vix.agents[agent]
	s.vix.mu.Unlock()
	if ix == nil || !ix.ready.Load() || ix.g.Len() != 80 {
		t.Fatalf("no index after the agent grew to 80 memories: %+v", ix)
	}
	got, err := s.SearchMemories(ctx, agent, storage.SearchQuery{Embedding: vs[70], Count: 1})
	if err != nil || len(got) != 1 || got[0].ID != ids[70] || s.vix.answered.Load() == 0 {
		t.Fatalf("%+v %v (index answered %d)", got, err, s.vix.answered.Load())
	}
}
