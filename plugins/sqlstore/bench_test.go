package sqlstore

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
	"github.com/google/uuid"
)

// benchBackends runs fn once per backend on a fresh, migrated store; fn
// measures with b.Loop, so its setup runs once.
func benchBackends(b *testing.B, fn func(b *testing.B, s *Store)) {
	for _, be := range backends() {
		b.Run(be.name, func(b *testing.B) {
			fn(b, migrated(b, be.open(b)))
		})
	}
}

func randomVector(r *rand.Rand, dim int) []float32 {
	v := make([]float32, dim)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// seed stores n messages spread over rooms, all in one transaction, with
// embeddings of dim values when dim > 0.
func seed(tb testing.TB, s *Store, agent string, rooms []string, n, dim int) {
	tb.Helper()
	if dim > 0 {
		if _, err := s.EnsureEmbeddingDimension(ctx, agent, dim); err != nil {
			tb.Fatal(err)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	user := uuid.NewString()
	vs := s.vectors()
	cols, vals := "", ""
	if vs.write {
		cols, vals = ", embedding_vec", ", ?::"+vs.typ
	}
	err := s.write(ctx, func(q runner) error {
		for i := 0; i < n; i++ {
			var emb, vec any
			if dim > 0 {
				v := randomVector(r, dim)
				emb, vec = encodeVector(v), vectorText(v)
			}
			content := fmt.Sprintf(`{"text":"message %d","source":"bench"}`, i)
			args := []any{uuid.NewString(), agent, sdk.TableMessages, rooms[i%len(rooms)], user, int64(1_700_000_000_000 + i),
				content, false, emb, dim}
			if vs.write {
				args = append(args, vec)
			}
			_, err := q.exec(ctx, `INSERT INTO memories (id, agent_id, type, room_id, world_id, entity_id, created_at,
				content, metadata, is_unique, embedding, embedding_dim`+cols+`) VALUES (?, ?, ?, ?, '', ?, ?, ?, 'null', ?, ?, ?`+vals+`)`, args...)
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	if s.d.name == "postgres" {
		if _, err := s.db.ExecContext(ctx, `ANALYZE memories`); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkCreateMemory stores one message with a 384-value embedding per
// operation, each in its own transaction.
func BenchmarkCreateMemory(b *testing.B) {
	benchBackends(b, func(b *testing.B, s *Store) {
		agent := newAgent(b, s)
		room, user := uuid.NewString(), uuid.NewString()
		r := rand.New(rand.NewPCG(3, 4))
		vectors := make([][]float32, 64)
		for i := range vectors {
			vectors[i] = randomVector(r, 384)
		}
		i := 0
		for b.Loop() {
			m := message(room, user, "a message of ordinary length, about as long as a chat line is")
			m.Embedding = vectors[i%len(vectors)]
			i++
			if _, _, err := s.CreateMemory(ctx, agent, m, sdk.TableMessages, false); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRecentMessages reads the 20 newest messages of a room among 10
// rooms holding 10,000 messages.
func BenchmarkRecentMessages(b *testing.B) {
	benchBackends(b, func(b *testing.B, s *Store) {
		agent := newAgent(b, s)
		rooms := make([]string, 10)
		for i := range rooms {
			rooms[i] = uuid.NewString()
		}
		seed(b, s, agent, rooms, 10_000, 0)
		i := 0
		for b.Loop() {
			got, err := s.GetMemories(ctx, agent, storage.MemoryQuery{Table: sdk.TableMessages, RoomID: rooms[i%len(rooms)]})
			i++
			if err != nil || len(got) != DefaultMemoryCount {
				b.Fatal(len(got), err)
			}
		}
	})
}

// BenchmarkSearch10k ranks 10,000 memories with 384-value embeddings
// against a query and loads the 10 most similar: on SQLite (in Go), on
// PostgreSQL with pgvector when the server has it, and on PostgreSQL in Go.
func BenchmarkSearch10k(b *testing.B) { benchSearch(b, 10_000) }

// BenchmarkSearch100k is BenchmarkSearch10k over 100,000 memories.
func BenchmarkSearch100k(b *testing.B) { benchSearch(b, 100_000) }

func benchSearch(b *testing.B, n int) {
	run := func(b *testing.B, s *Store, agent string) {
		r := rand.New(rand.NewPCG(5, 6))
		for b.Loop() {
			got, err := s.SearchMemories(ctx, agent, storage.SearchQuery{Table: sdk.TableMessages, Embedding: randomVector(r, 384)})
			if err != nil || len(got) != DefaultSearchCount {
				b.Fatal(len(got), err)
			}
		}
	}
	b.Run("sqlite", func(b *testing.B) {
		s := migrated(b, openSQLiteTB(b))
		agent := newAgent(b, s)
		seed(b, s, agent, []string{uuid.NewString(), uuid.NewString()}, n, 384)
		run(b, s, agent)
	})
	b.Run("postgres", func(b *testing.B) {
		s := migrated(b, openPostgresTB(b))
		agent := newAgent(b, s)
		seed(b, s, agent, []string{uuid.NewString(), uuid.NewString()}, n, 384)
		b.Run(strings.ReplaceAll(s.VectorSearch(), " ", "_"), func(b *testing.B) { run(b, s, agent) })
		if s.vectors().search {
			dbMu.Lock()
			u := pgURLs[b]
			dbMu.Unlock()
			g, err := Open(ctx, Config{URL: u, NoPGVector: true})
			if err != nil {
				b.Fatal(err)
			}
			defer g.Close()
			b.Run("in_Go", func(b *testing.B) { run(b, g, agent) })
		}
	})
}

// BenchmarkSearchEntities10k finds one entity by a part of its name among
// 10,000 entities of an agent.
func BenchmarkSearchEntities10k(b *testing.B) {
	benchBackends(b, func(b *testing.B, s *Store) {
		agent := newAgent(b, s)
		es := make([]sdk.Entity, 10_000)
		for i := range es {
			es[i] = sdk.Entity{ID: uuid.NewString(), Names: []string{fmt.Sprintf("User Number %05d", i), fmt.Sprintf("user%05d", i)},
				Metadata: map[string]any{"discord": map[string]any{"id": fmt.Sprint(i)}}}
		}
		if err := s.UpsertEntities(ctx, agent, es); err != nil {
			b.Fatal(err)
		}
		i := 0
		for b.Loop() {
			got, err := s.SearchEntities(ctx, agent, storage.EntitySearch{NameContains: fmt.Sprintf("NUMBER %05d", i%len(es))})
			i += 7919
			if err != nil || len(got) != 1 {
				b.Fatal(len(got), err)
			}
		}
	})
}

// BenchmarkCachedEmbeddings10k looks for the texts within 2 edits of a
// query among 10,000 messages with 384-value embeddings whose texts all
// have about the query's length (the worst case of the length filter).
func BenchmarkCachedEmbeddings10k(b *testing.B) {
	benchBackends(b, func(b *testing.B, s *Store) {
		agent := newAgent(b, s)
		seed(b, s, agent, []string{uuid.NewString()}, 10_000, 384)
		i := 0
		for b.Loop() {
			got, err := s.GetCachedEmbeddings(ctx, agent, storage.CachedEmbeddingsQuery{Text: fmt.Sprintf("message %d", 1000+i%9000), Threshold: 2})
			i += 7919
			if err != nil || len(got) != DefaultCachedEmbeddingsCount || got[0].LevenshteinScore != 0 {
				b.Fatal(len(got), err)
			}
		}
	})
}

// BenchmarkVectorIndex10k is a top-10 search among 10,000 memories with
// 1,536-value embeddings (the size of OpenAI's text-embedding-3-small),
// through the HNSW index and exactly, on each backend. The embeddings are
// clustered around 1,000 topics, as those of real texts are; each query is
// a stored embedding moved a little. It reports the index's recall@10
// against exact search, its build time, the size of its file and the heap
// it takes.
func BenchmarkVectorIndex10k(b *testing.B) { benchIndex(b, 10_000) }

// BenchmarkVectorIndex100k is BenchmarkVectorIndex10k over 100,000
// memories.
func BenchmarkVectorIndex100k(b *testing.B) { benchIndex(b, 100_000) }

func benchIndex(b *testing.B, n int) {
	const dim = 1536
	r := rand.New(rand.NewPCG(21, 22))
	vs := topicVectors(r, n, dim, 1000)
	queries := make([]storage.SearchQuery, 64)
	for i := range queries {
		queries[i] = storage.SearchQuery{Embedding: nearVector(r, vs[r.IntN(n)], 0.5), Count: 10}
	}
	for _, be := range backends() {
		b.Run(be.name, func(b *testing.B) {
			x := newIndexed(b, be, 0)
			s := x.open(b)
			agent := newAgent(b, s)
			seedVectors(b, s, agent, []string{uuid.NewString()}, vs)

			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start, buildCPU := time.Now(), startCPU()
			ix := waitIndex(b, s, agent, dim)
			build := time.Since(start)
			buildCPUs := float64(processCPU()-buildCPU.start) / float64(time.Second)
			runtime.GC()
			runtime.ReadMemStats(&after)
			st, err := os.Stat(s.vix.path(agent))
			if err != nil {
				b.Fatal(err)
			}
			hit, total := 0, 0
			for _, q := range queries[:32] {
				got, err := s.SearchMemories(ctx, agent, q)
				if err != nil {
					b.Fatal(err)
				}
				want, err := s.exactSearch(ctx, s.read(), agent, q, q.Count)
				if err != nil {
					b.Fatal(err)
				}
				in := map[string]bool{}
				for _, m := range got {
					in[m.ID] = true
				}
				for _, m := range want {
					if in[m.ID] {
						hit++
					}
				}
				total += len(want)
			}
			recall := float64(hit) / float64(total)
			b.Run("index", func(b *testing.B) {
				i := 0
				cpu := startCPU()
				for b.Loop() {
					got, err := s.SearchMemories(ctx, agent, queries[i%len(queries)])
					i++
					if err != nil || len(got) != 10 {
						b.Fatal(len(got), err)
					}
				}
				cpu.report(b)
				b.ReportMetric(recall, "recall@10")
				b.ReportMetric(build.Seconds(), "build-s")
				b.ReportMetric(buildCPUs, "build-cpu-s")
				b.ReportMetric(float64(st.Size())/(1<<20), "file-MiB")
				b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/(1<<20), "heap-MiB")
				b.ReportMetric(float64(ix.g.Bytes())/(1<<20), "graph-MiB")
			})
			// A restart: the saved index is loaded, not built.
			s.Close()
			s = x.open(b)
			start = time.Now()
			loaded := waitIndex(b, s, agent, dim)
			load := time.Since(start)
			if loaded.g.Len() != n {
				b.Fatalf("loaded %d memories of %d", loaded.g.Len(), n)
			}
			b.Run("load", func(b *testing.B) {
				for b.Loop() {
				}
				b.ReportMetric(load.Seconds(), "load-s")
			})
			b.Run("exact", func(b *testing.B) {
				i := 0
				cpu := startCPU()
				for b.Loop() {
					got, err := s.exactSearch(ctx, s.read(), agent, queries[i%len(queries)], 10)
					i++
					if err != nil || len(got) != 10 {
						b.Fatal(len(got), err)
					}
				}
				cpu.report(b)
			})
		})
	}
}

// topicVectors are n vectors of dim values around topics centres.
func topicVectors(r *rand.Rand, n, dim, topics int) [][]float32 {
	centres := make([][]float32, topics)
	for i := range centres {
		centres[i] = randomVector(r, dim)
	}
	out := make([][]float32, n)
	for i := range out {
		out[i] = nearVector(r, centres[r.IntN(topics)], 0.7)
	}
	return out
}

// nearVector is v moved by noise of deviation d in every value.
func nearVector(r *rand.Rand, v []float32, d float32) []float32 {
	out := make([]float32, len(v))
	for i := range out {
		out[i] = v[i] + d*float32(r.NormFloat64())
	}
	return out
}

// seedVectors stores one message per vector, in transactions of a
// thousand, as CreateMemory would (with a vector version), and returns
// their ids. With several rooms the first gets every hundredth memory and
// the others share the rest.
func seedVectors(tb testing.TB, s *Store, agent string, rooms []string, vs [][]float32) []string {
	tb.Helper()
	if _, err := s.EnsureEmbeddingDimension(ctx, agent, len(vs[0])); err != nil {
		tb.Fatal(err)
	}
	user := uuid.NewString()
	ids := make([]string, len(vs))
	for start := 0; start < len(vs); start += 1000 {
		err := s.write(ctx, func(q runner) error {
			var version int64
			if err := q.queryRow(ctx, `UPDATE agents SET vector_version = vector_version + 1 WHERE id = ? RETURNING vector_version`, agent).Scan(&version); err != nil {
				return err
			}
			for i := start; i < min(start+1000, len(vs)); i++ {
				room := rooms[0]
				if len(rooms) > 1 && i%100 != 0 {
					room = rooms[1+i%(len(rooms)-1)]
				}
				ids[i] = uuid.NewString()
				_, err := q.exec(ctx, `INSERT INTO memories (id, agent_id, type, room_id, world_id, entity_id, created_at,
					content, metadata, is_unique, embedding, embedding_dim, vector_version) VALUES (?, ?, ?, ?, '', ?, ?, ?, 'null', ?, ?, ?, ?)`,
					ids[i], agent, sdk.TableMessages, room, user, int64(1_700_000_000_000+i),
					fmt.Sprintf(`{"text":"message %d"}`, i), false, encodeVector(vs[i]), len(vs[i]), version)
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	if s.d.name == "postgres" {
		if _, err := s.db.ExecContext(ctx, `ANALYZE memories`); err != nil {
			tb.Fatal(err)
		}
	}
	return ids
}

// cpuClock measures the CPU time of this process (user and system), which
// a busy machine inflates less than the wall clock: PostgreSQL's own work
// is not in it.
type cpuClock struct{ start time.Duration }

func startCPU() cpuClock { return cpuClock{processCPU()} }

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// report adds the CPU time per operation as cpu-ms/op.
func (c cpuClock) report(b *testing.B) {
	b.ReportMetric(float64(processCPU()-c.start)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

// BenchmarkParallelMessageWrites writes what one message of the model path
// writes (two memories with 1,536-value embeddings and a batch of five log
// entries of 4 KB) from ten goroutines at once, on SQLite, whose writes
// take turns: it measures what queued writers cost (see the group commit
// in write.go). One operation is one message; tx/op is how many
// transactions committed it (3 without group commit).
func BenchmarkParallelMessageWrites(b *testing.B) {
	s := migrated(b, openSQLiteTB(b))
	agent := newAgent(b, s)
	r := rand.New(rand.NewPCG(7, 8))
	vectors := make([][]float32, 64)
	for i := range vectors {
		vectors[i] = randomVector(r, 1536)
	}
	body := map[string]any{"prompt": strings.Repeat("x", 4096)}
	b.SetParallelism(max(1, 10/runtime.GOMAXPROCS(0)))
	commits := s.commits.Load()
	clock := startCPU()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		room, user := uuid.NewString(), uuid.NewString()
		i := 0
		for pb.Next() {
			for j := 0; j < 2; j++ {
				m := message(room, user, "a message of ordinary length, about as long as a chat line is")
				m.Embedding = vectors[i%len(vectors)]
				i++
				if _, _, err := s.CreateMemory(ctx, agent, m, sdk.TableMessages, false); err != nil {
					b.Error(err)
					return
				}
			}
			logs := make([]storage.LogEntry, 5)
			for k := range logs {
				logs[k] = storage.LogEntry{AgentID: agent, EntityID: user, RoomID: room, Type: "useModel", Body: body}
			}
			if _, err := s.AddLogs(ctx, logs); err != nil {
				b.Error(err)
				return
			}
		}
	})
	clock.report(b)
	b.ReportMetric(float64(s.commits.Load()-commits)/float64(b.N), "tx/op")
}
