package sql

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/sdk"
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
			got, err := s.GetMemories(ctx, agent, sdk.MemoryQuery{Table: sdk.TableMessages, RoomID: rooms[i%len(rooms)]})
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
			got, err := s.SearchMemories(ctx, agent, sdk.SearchQuery{Table: sdk.TableMessages, Embedding: randomVector(r, 384)})
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
			got, err := s.SearchEntities(ctx, agent, sdk.EntitySearch{NameContains: fmt.Sprintf("NUMBER %05d", i%len(es))})
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
			got, err := s.GetCachedEmbeddings(ctx, agent, sdk.CachedEmbeddingsQuery{Text: fmt.Sprintf("message %d", 1000+i%9000), Threshold: 2})
			i += 7919
			if err != nil || len(got) != DefaultCachedEmbeddingsCount || got[0].LevenshteinScore != 0 {
				b.Fatal(len(got), err)
			}
		}
	})
}
