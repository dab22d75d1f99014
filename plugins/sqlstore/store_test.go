package sqlstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/internal/testwait"
	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/dbplugin"
	"github.com/agenthost/agenthost/sdk/storage"
	"github.com/google/uuid"
)

var ctx = context.Background()

func TestMigrate(t *testing.T) {
	t.Parallel()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			rep, err := s.MigrationStatus(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Backend != b.name || len(rep.Migrations) != len(migrations) {
				t.Fatalf("status before: %+v", rep)
			}
			for _, m := range rep.Migrations {
				if m.AppliedAt != 0 {
					t.Fatalf("migration %d applied before Migrate", m.Version)
				}
			}

			// Several "processes" migrate the same database at once.
			stores := []*Store{s, b.open(t), b.open(t), b.open(t)}
			reports := make([]dbplugin.MigrationReport, len(stores))
			errs := make([]error, len(stores))
			var wg sync.WaitGroup
			for i, st := range stores {
				wg.Add(1)
				go func() {
					defer wg.Done()
					reports[i], errs[i] = st.Migrate(ctx)
				}()
			}
			wg.Wait()
			applied := 0
			for i := range stores {
				if errs[i] != nil {
					t.Fatal(errs[i])
				}
				applied += reports[i].Applied
			}
			if applied != len(migrations) {
				t.Fatalf("applied %d migrations in all, want %d", applied, len(migrations))
			}
			rep, err = s.Migrate(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Applied != 0 {
				t.Fatalf("second Migrate applied %d", rep.Applied)
			}
			for i, m := range rep.Migrations {
				if m.Version != i+1 || m.Name == "" || m.AppliedAt == 0 {
					t.Fatalf("migration %d: %+v", i, m)
				}
			}
			// The data tables exist.
			newAgent(t, s)
		})
	}
}

func TestAgents(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		id := uuid.NewString()
		a, created, err := s.EnsureAgent(ctx, dbplugin.AgentRecord{ID: id, Name: "Eliza", CharacterJSON: []byte(`{"name":"Eliza"}`), Enabled: true})
		if err != nil || !created {
			t.Fatal(created, err)
		}
		if a.ID != id || a.Name != "Eliza" || !a.Enabled || a.CreatedAt == 0 || a.UpdatedAt == 0 {
			t.Fatalf("stored %+v", a)
		}
		// Same id: updated, not created.
		a2, created, err := s.EnsureAgent(ctx, dbplugin.AgentRecord{ID: id, Name: "Eliza2", CharacterJSON: []byte(`{"name":"Eliza2"}`)})
		if err != nil || created {
			t.Fatal(created, err)
		}
		if a2.ID != id || a2.Name != "Eliza2" || a2.Enabled || a2.CreatedAt != a.CreatedAt {
			t.Fatalf("updated %+v", a2)
		}
		var c map[string]any
		if err := json.Unmarshal(a2.CharacterJSON, &c); err != nil || c["name"] != "Eliza2" {
			t.Fatalf("character %s: %v", a2.CharacterJSON, err)
		}
		// Same name, no id: the stored agent.
		a3, created, err := s.EnsureAgent(ctx, dbplugin.AgentRecord{Name: "Eliza2", Enabled: true})
		if err != nil || created || a3.ID != id || !a3.Enabled || string(a3.CharacterJSON) != "{}" {
			t.Fatalf("by name: %+v %v %v", a3, created, err)
		}
		// A new name without id: the id elizaOS derives from the name.
		a4, created, err := s.EnsureAgent(ctx, dbplugin.AgentRecord{Name: "Bob"})
		if err != nil || !created || a4.ID != sdk.StringToUUID("Bob") {
			t.Fatalf("new: %+v %v %v", a4, created, err)
		}
		// Renaming onto a taken name is refused.
		_, _, err = s.EnsureAgent(ctx, dbplugin.AgentRecord{ID: a4.ID, Name: "Eliza2"})
		wantErr(t, err, `another agent is named "Eliza2"`)

		all, err := s.GetAgents(ctx)
		if err != nil || len(all) != 2 || all[0].ID+all[1].ID != id+a4.ID && all[0].ID+all[1].ID != a4.ID+id {
			t.Fatalf("agents %+v %v", all, err)
		}

		// The same new agent stored by many at once: created once.
		var wg sync.WaitGroup
		var mu sync.Mutex
		ids, creations := map[string]bool{}, 0
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a, created, err := s.EnsureAgent(ctx, dbplugin.AgentRecord{Name: "Racer", Enabled: true})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				ids[a.ID] = true
				if created {
					creations++
				}
			}()
		}
		wg.Wait()
		if len(ids) != 1 || creations != 1 {
			t.Fatalf("concurrent EnsureAgent: ids %v, %d creations", ids, creations)
		}

		_, _, err = s.EnsureAgent(ctx, dbplugin.AgentRecord{Name: ""})
		wantErr(t, err, "agent.name: is empty")
		_, _, err = s.EnsureAgent(ctx, dbplugin.AgentRecord{Name: "x", CharacterJSON: []byte(`{`)})
		wantErr(t, err, "agent.character: is not valid JSON")
		_, _, err = s.EnsureAgent(ctx, dbplugin.AgentRecord{ID: "nope", Name: "x"})
		wantErr(t, err, `agent.id: "nope" is not a UUID`)
	})
}

func TestEmbeddingDimension(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		agent := newAgent(t, s)
		prev, err := s.EnsureEmbeddingDimension(ctx, agent, 384)
		if err != nil || prev != 0 {
			t.Fatal(prev, err)
		}
		prev, err = s.EnsureEmbeddingDimension(ctx, agent, 384)
		if err != nil || prev != 384 {
			t.Fatal(prev, err)
		}
		// No embedded memory yet: the agent may switch.
		prev, err = s.EnsureEmbeddingDimension(ctx, agent, 1536)
		if err != nil || prev != 384 {
			t.Fatal(prev, err)
		}
		room, user := uuid.NewString(), uuid.NewString()
		m := message(room, user, "hi")
		m.Embedding = unit(1536, 0, 0)
		mustCreate(t, s, agent, m, sdk.TableMessages, false)
		prev, err = s.EnsureEmbeddingDimension(ctx, agent, 384)
		wantErr(t, err, "384", "1536")
		if !errors.Is(err, ErrInvalid) || prev != 1536 {
			t.Fatal(prev, err)
		}

		_, err = s.EnsureEmbeddingDimension(ctx, uuid.NewString(), 384)
		if !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("unknown agent: %v", err)
		}
		_, err = s.EnsureEmbeddingDimension(ctx, agent, 0)
		wantErr(t, err, "dimension: is 0")
	})
}

func TestCreateMemory(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		agent := newAgent(t, s)
		room, user, world := uuid.NewString(), uuid.NewString(), uuid.NewString()

		// Defaults: a new id, now.
		before := time.Now().UnixMilli()
		m := message(room, user, "hello")
		m.WorldID = world
		m.Metadata = map[string]any{"type": "message", "n": 1.5}
		m.Content.Actions = []string{"REPLY"}
		m.Content.Extra = map[string]any{"simple": true}
		id, created, err := s.CreateMemory(ctx, agent, m, sdk.TableMessages, false)
		if err != nil || !created {
			t.Fatal(created, err)
		}
		if !sdk.IsUUID(id) || m.ID != id || m.CreatedAt < before || m.CreatedAt > time.Now().UnixMilli() || m.AgentID != agent {
			t.Fatalf("defaults: id %q, memory %+v", id, m)
		}
		got, err := s.GetMemoriesByIDs(ctx, agent, []string{id}, "")
		if err != nil || len(got) != 1 {
			t.Fatal(got, err)
		}
		want := *m
		if !reflect.DeepEqual(got[0], want) {
			t.Fatalf("read back\n got %+v\nwant %+v", got[0], want)
		}

		// The same id again: stored once, the first version kept.
		again := message(room, user, "hello, second delivery")
		again.ID = id
		id2, created, err := s.CreateMemory(ctx, agent, again, sdk.TableMessages, false)
		if err != nil || created || id2 != id {
			t.Fatal(id2, created, err)
		}
		n, err := s.CountMemories(ctx, agent, room, sdk.TableMessages, false)
		if err != nil || n != 1 {
			t.Fatal(n, err)
		}
		got, _ = s.GetMemoriesByIDs(ctx, agent, []string{id}, sdk.TableMessages)
		if got[0].Content.Text != "hello" {
			t.Fatalf("overwritten: %q", got[0].Content.Text)
		}

		// Given id and time are kept.
		fixed := message(room, user, "fixed")
		fixed.ID, fixed.CreatedAt = uuid.NewString(), 12345
		mustCreate(t, s, agent, fixed, sdk.TableFacts, false)
		got, _ = s.GetMemoriesByIDs(ctx, agent, []string{fixed.ID}, sdk.TableFacts)
		if len(got) != 1 || got[0].CreatedAt != 12345 || got[0].Table != sdk.TableFacts {
			t.Fatalf("fixed: %+v", got)
		}
		// Not in another table.
		got, _ = s.GetMemoriesByIDs(ctx, agent, []string{fixed.ID}, sdk.TableMessages)
		if len(got) != 0 {
			t.Fatalf("found in the wrong table: %+v", got)
		}
		// Another agent does not see it, and may store the same id.
		other := newAgent(t, s)
		got, _ = s.GetMemoriesByIDs(ctx, other, []string{fixed.ID}, "")
		if len(got) != 0 {
			t.Fatal("another agent sees the memory")
		}
		o := message(room, user, "other agent")
		o.ID = fixed.ID
		mustCreate(t, s, other, o, sdk.TableFacts, false)

		// An unknown agent.
		_, _, err = s.CreateMemory(ctx, uuid.NewString(), message(room, user, "x"), sdk.TableMessages, false)
		if !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("unknown agent: %v", err)
		}
		// A memory of another agent.
		bad := message(room, user, "x")
		bad.AgentID = other
		_, _, err = s.CreateMemory(ctx, agent, bad, sdk.TableMessages, false)
		wantErr(t, err, "memory.agentId")
	})
}

func TestDimensionMismatch(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		agent := newAgent(t, s)
		room, user := uuid.NewString(), uuid.NewString()
		// The first embedding fixes the dimension.
		m := message(room, user, "a")
		m.Embedding = unit(8, 0, 0)
		mustCreate(t, s, agent, m, sdk.TableMessages, false)
		m = message(room, user, "b")
		m.Embedding = unit(4, 0, 0)
		_, created, err := s.CreateMemory(ctx, agent, m, sdk.TableMessages, false)
		wantErr(t, err, "create memory", "memory.embedding: has 4 dimensions", "stores embeddings of 8")
		if created || !errors.Is(err, ErrInvalid) {
			t.Fatal(created, err)
		}
		// Without an embedding it is fine.
		mustCreate(t, s, agent, message(room, user, "c"), sdk.TableMessages, false)
		n, _ := s.CountMemories(ctx, agent, room, "", false)
		if n != 2 {
			t.Fatalf("count %d", n)
		}
		// A search of another size is refused too.
		_, err = s.SearchMemories(ctx, agent, storage.SearchQuery{Embedding: unit(4, 0, 0)})
		wantErr(t, err, "4 dimensions", "8")
		// Non-finite values are refused.
		m = message(room, user, "d")
		m.Embedding = unit(8, 0, 0)
		m.Embedding[3] = float32(nan())
		_, _, err = s.CreateMemory(ctx, agent, m, sdk.TableMessages, false)
		wantErr(t, err, "memory.embedding[3]")
	})
}

func nan() float64 { var z float64; return z / z }

func TestGetMemories(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		agent := newAgent(t, s)
		roomA, roomB, alice, bob, world := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
		var idsA []string // in creation order
		for i := 0; i < 30; i++ {
			m := message(roomA, alice, fmt.Sprint("a", i))
			m.CreatedAt = 1000 + int64(i/3) // three memories per millisecond
			if i%2 == 0 {
				m.EntityID = bob
			}
			if i%5 == 0 {
				m.WorldID = world
				m.Unique = true
			}
			idsA = append(idsA, mustCreate(t, s, agent, m, sdk.TableMessages, false))
		}
		b := message(roomB, alice, "b")
		b.CreatedAt = 5000
		idB := mustCreate(t, s, agent, b, sdk.TableMessages, false)
		f := message(roomA, alice, "fact")
		f.CreatedAt = 6000
		mustCreate(t, s, agent, f, sdk.TableFacts, false)

		ids := func(ms []sdk.Memory) []string {
			var out []string
			for _, m := range ms {
				out = append(out, m.ID)
			}
			return out
		}
		reversed := func(in []string) []string {
			out := make([]string, len(in))
			for i, v := range in {
				out[len(in)-1-i] = v
			}
			return out
		}
		// Default count 20, newest first, ties latest-stored first.
		got, err := s.GetMemories(ctx, agent, storage.MemoryQuery{Table: sdk.TableMessages, RoomID: roomA})
		if err != nil {
			t.Fatal(err)
		}
		if want := reversed(idsA)[:DefaultMemoryCount]; !reflect.DeepEqual(ids(got), want) {
			t.Fatalf("recent:\n got %v\nwant %v", ids(got), want)
		}
		got, _ = s.GetMemories(ctx, agent, storage.MemoryQuery{Table: sdk.TableMessages, RoomID: roomA, Count: 100})
		if !reflect.DeepEqual(ids(got), reversed(idsA)) {
			t.Fatalf("all: %v", ids(got))
		}
		cases := []struct {
			name string
			q    storage.MemoryQuery
			want int
		}{
			{"count", storage.MemoryQuery{Table: sdk.TableMessages, RoomID: roomA, Count: 5}, 5},
			{"all tables", storage.MemoryQuery{RoomID: roomA, Count: 100}, 31},
			{"rooms", storage.MemoryQuery{Table: sdk.TableMessages, RoomIDs: []string{roomA, roomB}, Count: 100}, 31},
			{"room and rooms", storage.MemoryQuery{Table: sdk.TableMessages, RoomID: roomB, RoomIDs: []string{roomA}, Count: 100}, 31},
			{"entity", storage.MemoryQuery{Table: sdk.TableMessages, EntityID: bob, Count: 100}, 15},
			{"world", storage.MemoryQuery{Table: sdk.TableMessages, WorldID: world, Count: 100}, 6},
			{"unique", storage.MemoryQuery{Table: sdk.TableMessages, Unique: true, Count: 100}, 6},
			{"start", storage.MemoryQuery{Table: sdk.TableMessages, RoomID: roomA, Start: 1008, Count: 100}, 6},
			{"end", storage.MemoryQuery{Table: sdk.TableMessages, RoomID: roomA, End: 1001, Count: 100}, 6},
			{"start end", storage.MemoryQuery{Table: sdk.TableMessages, Start: 1002, End: 1002, Count: 100}, 3},
			{"facts", storage.MemoryQuery{Table: sdk.TableFacts, Count: 100}, 1},
			{"no room", storage.MemoryQuery{RoomID: uuid.NewString()}, 0},
		}
		for _, c := range cases {
			got, err := s.GetMemories(ctx, agent, c.q)
			if err != nil || len(got) != c.want {
				t.Errorf("%s: %d memories, want %d (%v)", c.name, len(got), c.want, err)
			}
			for i := 1; i < len(got); i++ {
				if got[i].CreatedAt > got[i-1].CreatedAt {
					t.Errorf("%s: not newest first", c.name)
				}
			}
		}
		got, _ = s.GetMemories(ctx, agent, storage.MemoryQuery{RoomID: roomB})
		if len(got) != 1 || got[0].ID != idB || got[0].AgentID != agent {
			t.Fatalf("room B: %+v", got)
		}

		// By ids: in the order asked, unknown ids left out.
		byIDs, err := s.GetMemoriesByIDs(ctx, agent, []string{idsA[3], uuid.NewString(), idB, idsA[0], idsA[3]}, "")
		if err != nil || !reflect.DeepEqual(ids(byIDs), []string{idsA[3], idB, idsA[0]}) {
			t.Fatalf("by ids: %v %v", ids(byIDs), err)
		}
		_, err = s.GetMemories(ctx, agent, storage.MemoryQuery{Count: -1})
		wantErr(t, err, "query.count")
	})
}

func TestDeleteAndCount(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		agent := newAgent(t, s)
		room, other, user := uuid.NewString(), uuid.NewString(), uuid.NewString()
		var first string
		for i := 0; i < 5; i++ {
			m := message(room, user, fmt.Sprint(i))
			m.Unique = i < 2
			id := mustCreate(t, s, agent, m, sdk.TableMessages, false)
			if i == 0 {
				first = id
			}
		}
		mustCreate(t, s, agent, message(room, user, "f"), sdk.TableFacts, false)
		mustCreate(t, s, agent, message(other, user, "o"), sdk.TableMessages, false)
		count := func(room, table string, unique bool) int64 {
			t.Helper()
			n, err := s.CountMemories(ctx, agent, room, table, unique)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		if n := count(room, sdk.TableMessages, false); n != 5 {
			t.Fatalf("count %d", n)
		}
		if n := count(room, sdk.TableMessages, true); n != 2 {
			t.Fatalf("unique count %d", n)
		}
		if n := count(room, "", false); n != 6 {
			t.Fatalf("room count %d", n)
		}
		if n := count("", "", false); n != 7 {
			t.Fatalf("agent count %d", n)
		}
		n, err := s.DeleteMemory(ctx, agent, first)
		if err != nil || n != 1 {
			t.Fatal(n, err)
		}
		n, err = s.DeleteMemory(ctx, agent, first)
		if err != nil || n != 0 {
			t.Fatal(n, err)
		}
		n, err = s.DeleteAllMemories(ctx, agent, room, sdk.TableMessages)
		if err != nil || n != 4 {
			t.Fatal(n, err)
		}
		if n := count(room, "", false); n != 1 {
			t.Fatalf("after delete: %d", n)
		}
		n, err = s.DeleteAllMemories(ctx, agent, room, "")
		if err != nil || n != 1 {
			t.Fatal(n, err)
		}
		if n := count("", "", false); n != 1 {
			t.Fatalf("other room touched: %d", n)
		}
		_, err = s.DeleteAllMemories(ctx, agent, "", "")
		wantErr(t, err, "roomId: is empty")
	})
}

func TestSearchMemories(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		const dim = 16
		agent := newAgent(t, s)
		roomA, roomB, alice, bob, world := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
		// Vectors along axis 0 tilted more and more towards axis 1: the
		// similarity to axis 0 falls with i.
		var ids []string
		for i := 0; i < 10; i++ {
			m := message(roomA, alice, fmt.Sprint("m", i))
			m.Embedding = unit(dim, 0, float32(i)*0.25)
			if i%2 == 1 {
				m.RoomID, m.EntityID, m.WorldID = roomB, bob, world
			}
			m.Unique = i < 5
			ids = append(ids, mustCreate(t, s, agent, m, sdk.TableMessages, false))
		}
		far := message(roomA, alice, "orthogonal")
		far.Embedding = unit(dim, 5, 0)
		mustCreate(t, s, agent, far, sdk.TableMessages, false)
		fact := message(roomA, alice, "fact")
		fact.Embedding = unit(dim, 0, 0)
		factID := mustCreate(t, s, agent, fact, sdk.TableFacts, false)
		mustCreate(t, s, agent, message(roomA, alice, "no embedding"), sdk.TableMessages, false)

		q := unit(dim, 0, 0)
		search := func(sq storage.SearchQuery) []string {
			t.Helper()
			sq.Embedding = q
			got, err := s.SearchMemories(ctx, agent, sq)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for i, m := range got {
				if i > 0 && m.Similarity > got[i-1].Similarity {
					t.Fatalf("not most similar first: %v then %v", got[i-1].Similarity, m.Similarity)
				}
				if m.Similarity < -1 || m.Similarity > 1.000001 || len(m.Embedding) != dim {
					t.Fatalf("result %+v", m)
				}
				out = append(out, m.ID)
			}
			return out
		}
		got := search(storage.SearchQuery{Table: sdk.TableMessages, Count: 3})
		if !reflect.DeepEqual(got, ids[:3]) {
			t.Fatalf("top 3: %v, want %v", got, ids[:3])
		}
		res, _ := s.SearchMemories(ctx, agent, storage.SearchQuery{Table: sdk.TableMessages, Embedding: q, Count: 1})
		if len(res) != 1 || res[0].Similarity < 0.999999 || res[0].Content.Text != "m0" {
			t.Fatalf("best: %+v", res)
		}
		// Default count.
		if got := search(storage.SearchQuery{Table: sdk.TableMessages}); len(got) != DefaultSearchCount {
			t.Fatalf("default count: %d", len(got))
		}
		// Threshold: cos(atan(0.25*i)) >= 0.8 keeps i <= 3; the orthogonal
		// one (0) is out.
		if got := search(storage.SearchQuery{Table: sdk.TableMessages, Threshold: 0.8, Count: 100}); !reflect.DeepEqual(got, ids[:4]) {
			t.Fatalf("threshold: %v", got)
		}
		// Threshold 0 is no threshold: every memory with an embedding.
		if got := search(storage.SearchQuery{Table: sdk.TableMessages, Count: 100}); len(got) != 11 {
			t.Fatalf("no threshold: %d", len(got))
		}
		if got := search(storage.SearchQuery{Table: sdk.TableMessages, RoomID: roomB, Count: 100}); !reflect.DeepEqual(got, []string{ids[1], ids[3], ids[5], ids[7], ids[9]}) {
			t.Fatalf("room: %v", got)
		}
		if got := search(storage.SearchQuery{Table: sdk.TableMessages, EntityID: bob, Count: 2}); !reflect.DeepEqual(got, []string{ids[1], ids[3]}) {
			t.Fatalf("entity: %v", got)
		}
		if got := search(storage.SearchQuery{Table: sdk.TableMessages, WorldID: world, Threshold: 0.5, Count: 100}); !reflect.DeepEqual(got, []string{ids[1], ids[3], ids[5]}) {
			t.Fatalf("world: %v", got)
		}
		if got := search(storage.SearchQuery{Table: sdk.TableMessages, Unique: true, Count: 100}); !reflect.DeepEqual(got, ids[:5]) {
			t.Fatalf("unique: %v", got)
		}
		if got := search(storage.SearchQuery{Table: sdk.TableFacts}); !reflect.DeepEqual(got, []string{factID}) {
			t.Fatalf("facts: %v", got)
		}
		if got := search(storage.SearchQuery{Count: 1}); len(got) != 1 || (got[0] != factID && got[0] != ids[0]) {
			t.Fatalf("all tables: %v", got)
		}
		_, err := s.SearchMemories(ctx, agent, storage.SearchQuery{})
		wantErr(t, err, "query.embedding: is empty")
	})
}

func TestUniqueFlag(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		agent := newAgent(t, s)
		room, other, user := uuid.NewString(), uuid.NewString(), uuid.NewString()
		create := func(room string, v []float32, table string) bool {
			t.Helper()
			m := message(room, user, "x")
			m.Embedding = v
			mustCreate(t, s, agent, m, table, true)
			got, _ := s.GetMemoriesByIDs(ctx, agent, []string{m.ID}, "")
			if got[0].Unique != m.Unique {
				t.Fatalf("stored unique %v, reported %v", got[0].Unique, m.Unique)
			}
			return m.Unique
		}
		if !create(room, unit(8, 0, 0), sdk.TableFacts) {
			t.Fatal("first memory not unique")
		}
		// cos = 1/sqrt(1+0.1²) ≈ 0.995: a near-duplicate.
		if create(room, unit(8, 0, 0.1), sdk.TableFacts) {
			t.Fatal("near-duplicate flagged unique")
		}
		// cos ≈ 0.89: different enough.
		if !create(room, unit(8, 0, 0.5), sdk.TableFacts) {
			t.Fatal("distinct memory not unique")
		}
		// Same vector in another room or another table: unique.
		if !create(other, unit(8, 0, 0), sdk.TableFacts) {
			t.Fatal("other room")
		}
		if !create(room, unit(8, 0, 0), sdk.TableMessages) {
			t.Fatal("other table")
		}
		// Without an embedding: unique.
		m := message(room, user, "plain")
		mustCreate(t, s, agent, m, sdk.TableFacts, true)
		if !m.Unique {
			t.Fatal("memory without embedding not unique")
		}
		n, _ := s.CountMemories(ctx, agent, room, sdk.TableFacts, true)
		if n != 3 {
			t.Fatalf("unique facts %d", n)
		}
	})
}

func TestEnsureConnection(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		agent := newAgent(t, s)
		world, room, user := uuid.NewString(), uuid.NewString(), uuid.NewString()
		c := storage.Connection{
			World:  sdk.World{ID: world, Name: "Guild", ServerID: "g1", Metadata: map[string]any{"roles": map[string]any{user: "OWNER"}}},
			Room:   sdk.Room{ID: room, Name: "general", Source: "discord", Type: sdk.ChannelGroup, ChannelID: "c1", ServerID: "g1"},
			Entity: sdk.Entity{ID: user, Names: []string{"alice", "Alice A."}, Metadata: map[string]any{"discord": map[string]any{"id": "u1", "userName": "alice"}}},
		}
		for i := 0; i < 3; i++ {
			if err := s.EnsureConnection(ctx, agent, c); err != nil {
				t.Fatal(err)
			}
		}
		parts, err := s.GetParticipants(ctx, agent, room)
		if err != nil || !reflect.DeepEqual(parts, []string{user, agent}) {
			t.Fatalf("participants %v %v", parts, err)
		}
		rooms, err := s.GetRooms(ctx, agent, storage.RoomQuery{IDs: []string{room}})
		if err != nil || len(rooms) != 1 {
			t.Fatal(rooms, err)
		}
		wantRoom := c.Room
		wantRoom.WorldID, wantRoom.AgentID = world, agent
		if !reflect.DeepEqual(rooms[0], wantRoom) {
			t.Fatalf("room\n got %+v\nwant %+v", rooms[0], wantRoom)
		}
		worlds, err := s.GetWorlds(ctx, agent, []string{world})
		if err != nil || len(worlds) != 1 || worlds[0].Name != "Guild" || worlds[0].ServerID != "g1" {
			t.Fatalf("worlds %+v %v", worlds, err)
		}

		// The user shows up on Telegram under another name: names merged,
		// metadata merged per source, nothing lost.
		c2 := storage.Connection{
			Room: sdk.Room{ID: room},
			Entity: sdk.Entity{ID: user, Names: []string{"Alice A.", "ally", ""}, Metadata: map[string]any{
				"discord":  map[string]any{"name": "Alice"},
				"telegram": map[string]any{"id": "t1"},
				"status":   "online",
			}},
		}
		if err := s.EnsureConnection(ctx, agent, c2); err != nil {
			t.Fatal(err)
		}
		ents, err := s.GetEntities(ctx, agent, []string{user})
		if err != nil || len(ents) != 1 {
			t.Fatal(ents, err)
		}
		if want := []string{"alice", "Alice A.", "ally"}; !reflect.DeepEqual(ents[0].Names, want) {
			t.Fatalf("names %v, want %v", ents[0].Names, want)
		}
		wantMeta := map[string]any{
			"discord":  map[string]any{"id": "u1", "userName": "alice", "name": "Alice"},
			"telegram": map[string]any{"id": "t1"},
			"status":   "online",
		}
		if !reflect.DeepEqual(ents[0].Metadata, wantMeta) || ents[0].AgentID != agent {
			t.Fatalf("metadata %v", ents[0].Metadata)
		}
		// The room kept its fields; the world is untouched.
		rooms, _ = s.GetRooms(ctx, agent, storage.RoomQuery{IDs: []string{room}})
		if !reflect.DeepEqual(rooms[0], wantRoom) {
			t.Fatalf("room changed: %+v", rooms[0])
		}
		worlds, _ = s.GetWorlds(ctx, agent, nil)
		if len(worlds) != 1 || worlds[0].Metadata["roles"].(map[string]any)[user] != "OWNER" {
			t.Fatalf("world changed: %+v", worlds)
		}
		// A renamed room keeps the rest.
		if err := s.EnsureConnection(ctx, agent, storage.Connection{Room: sdk.Room{ID: room, Name: "lobby"}}); err != nil {
			t.Fatal(err)
		}
		rooms, _ = s.GetRooms(ctx, agent, storage.RoomQuery{IDs: []string{room}})
		if rooms[0].Name != "lobby" || rooms[0].ChannelID != "c1" {
			t.Fatalf("renamed room %+v", rooms[0])
		}

		// Many connections at once, each with a name of its own: every name
		// ends up stored, once.
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- s.EnsureConnection(ctx, agent, storage.Connection{
					Room:   sdk.Room{ID: room},
					Entity: sdk.Entity{ID: user, Names: []string{fmt.Sprint("n", i)}},
				})
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		ents, _ = s.GetEntities(ctx, agent, []string{user})
		if len(ents[0].Names) != 23 {
			t.Fatalf("names after concurrent merges: %v", ents[0].Names)
		}
		parts, _ = s.GetParticipants(ctx, agent, room)
		if len(parts) != 2 {
			t.Fatalf("participants %v", parts)
		}

		// Only the room is required; the agent must be stored.
		err = s.EnsureConnection(ctx, agent, storage.Connection{})
		wantErr(t, err, "room.id: is empty")
		err = s.EnsureConnection(ctx, uuid.NewString(), storage.Connection{Room: sdk.Room{ID: uuid.NewString()}})
		if !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("unknown agent: %v", err)
		}
		// A failure leaves nothing half done: a bad entity after a good
		// world and room writes neither.
		w2, r2 := uuid.NewString(), uuid.NewString()
		err = s.EnsureConnection(ctx, agent, storage.Connection{World: sdk.World{ID: w2}, Room: sdk.Room{ID: r2}, Entity: sdk.Entity{ID: "bad"}})
		wantErr(t, err, `entity.id: "bad" is not a UUID`)
		if ws, _ := s.GetWorlds(ctx, agent, []string{w2}); len(ws) != 0 {
			t.Fatal("world written by a failed EnsureConnection")
		}
	})
}

func TestRoomsWorldsEntities(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		agent := newAgent(t, s)
		w1, w2 := uuid.NewString(), uuid.NewString()
		for _, w := range []sdk.World{{ID: w1, Name: "one"}, {ID: w2, Name: "two", Metadata: map[string]any{"k": "v"}}} {
			if err := s.UpsertWorld(ctx, agent, w); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.UpsertWorld(ctx, agent, sdk.World{ID: w1, Name: "uno", ServerID: "s"}); err != nil {
			t.Fatal(err)
		}
		ws, err := s.GetWorlds(ctx, agent, nil)
		if err != nil || len(ws) != 2 || ws[0].Name != "uno" || ws[0].ServerID != "s" || ws[1].Metadata["k"] != "v" {
			t.Fatalf("worlds %+v %v", ws, err)
		}
		ws, _ = s.GetWorlds(ctx, agent, []string{w2, w1})
		if len(ws) != 2 || ws[0].ID != w2 {
			t.Fatalf("worlds by ids %+v", ws)
		}

		r1, r2, r3 := uuid.NewString(), uuid.NewString(), uuid.NewString()
		for _, r := range []sdk.Room{{ID: r1, WorldID: w1, Name: "a"}, {ID: r2, WorldID: w1}, {ID: r3, WorldID: w2, Type: sdk.ChannelDM}} {
			if err := s.UpsertRoom(ctx, agent, r); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.UpsertRoom(ctx, agent, sdk.Room{ID: r1, WorldID: w1, Name: "b", Metadata: map[string]any{"x": 1.0}}); err != nil {
			t.Fatal(err)
		}
		rooms, _ := s.GetRooms(ctx, agent, storage.RoomQuery{WorldID: w1})
		if len(rooms) != 2 {
			t.Fatalf("rooms of w1 %+v", rooms)
		}
		rooms, _ = s.GetRooms(ctx, agent, storage.RoomQuery{WorldID: w1, IDs: []string{r1, r3}})
		if len(rooms) != 1 || rooms[0].ID != r1 || rooms[0].Name != "b" || rooms[0].Metadata["x"] != 1.0 {
			t.Fatalf("room r1 of w1 %+v", rooms)
		}
		all, _ := s.GetRooms(ctx, agent, storage.RoomQuery{})
		if len(all) != 3 {
			t.Fatalf("all rooms %d", len(all))
		}
		user := uuid.NewString()
		if err := s.EnsureConnection(ctx, agent, storage.Connection{Room: sdk.Room{ID: r3}, Entity: sdk.Entity{ID: user}}); err != nil {
			t.Fatal(err)
		}
		if err := s.EnsureConnection(ctx, agent, storage.Connection{Room: sdk.Room{ID: r1}, Entity: sdk.Entity{ID: user}}); err != nil {
			t.Fatal(err)
		}
		rooms, _ = s.GetRooms(ctx, agent, storage.RoomQuery{ParticipantID: user})
		if len(rooms) != 2 || rooms[0].ID+rooms[1].ID != r1+r3 && rooms[0].ID+rooms[1].ID != r3+r1 {
			t.Fatalf("rooms of participant %+v", rooms)
		}
		rooms, _ = s.GetRooms(ctx, agent, storage.RoomQuery{ParticipantID: user, WorldID: w2})
		if len(rooms) != 1 || rooms[0].ID != r3 || rooms[0].Type != sdk.ChannelDM {
			t.Fatalf("rooms of participant in w2 %+v", rooms)
		}

		e1, e2 := uuid.NewString(), uuid.NewString()
		err = s.UpsertEntities(ctx, agent, []sdk.Entity{
			{ID: e1, Names: []string{"one"}},
			{ID: e2, Names: []string{"two"}, Metadata: map[string]any{"a": "b"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.UpsertEntities(ctx, agent, []sdk.Entity{{ID: e1, Names: []string{"uno"}}}); err != nil {
			t.Fatal(err)
		}
		ents, _ := s.GetEntities(ctx, agent, []string{e2, e1, uuid.NewString()})
		if len(ents) != 2 || ents[0].ID != e2 || ents[0].Metadata["a"] != "b" || !reflect.DeepEqual(ents[1].Names, []string{"uno"}) {
			t.Fatalf("entities %+v", ents)
		}
		// One bad entity: none written.
		e3 := uuid.NewString()
		err = s.UpsertEntities(ctx, agent, []sdk.Entity{{ID: e3}, {ID: "x"}})
		wantErr(t, err, `entities[1].id: "x" is not a UUID`)
		if ents, _ := s.GetEntities(ctx, agent, []string{e3}); len(ents) != 0 {
			t.Fatal("partial upsert")
		}
		// Entities without names read back with no names.
		if err := s.UpsertEntities(ctx, agent, []sdk.Entity{{ID: e3}}); err != nil {
			t.Fatal(err)
		}
		ents, _ = s.GetEntities(ctx, agent, []string{e3})
		if len(ents) != 1 || len(ents[0].Names) != 0 {
			t.Fatalf("no names %+v", ents)
		}
	})
}

func TestParticipantState(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		agent := newAgent(t, s)
		room, user := uuid.NewString(), uuid.NewString()
		if err := s.EnsureConnection(ctx, agent, storage.Connection{Room: sdk.Room{ID: room}, Entity: sdk.Entity{ID: user}}); err != nil {
			t.Fatal(err)
		}
		for _, state := range []string{StateFollowed, StateMuted, ""} {
			if err := s.SetParticipantState(ctx, agent, room, agent, state); err != nil {
				t.Fatal(err)
			}
			got, err := s.GetParticipantState(ctx, agent, room, agent)
			if err != nil || got != state {
				t.Fatalf("state %q, want %q (%v)", got, state, err)
			}
		}
		if err := s.SetParticipantState(ctx, agent, room, user, StateMuted); err != nil {
			t.Fatal(err)
		}
		// EnsureConnection keeps the state.
		if err := s.EnsureConnection(ctx, agent, storage.Connection{Room: sdk.Room{ID: room}, Entity: sdk.Entity{ID: user}}); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.GetParticipantState(ctx, agent, room, user); got != StateMuted {
			t.Fatalf("state after EnsureConnection %q", got)
		}
		got, err := s.GetParticipantState(ctx, agent, room, uuid.NewString())
		if err != nil || got != "" {
			t.Fatal(got, err)
		}
		err = s.SetParticipantState(ctx, agent, room, user, "IGNORED")
		wantErr(t, err, `state: is "IGNORED"`)
		err = s.SetParticipantState(ctx, agent, uuid.NewString(), user, StateFollowed)
		if !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("unknown room: %v", err)
		}
		// A new participant through SetParticipantState.
		newcomer := uuid.NewString()
		if err := s.SetParticipantState(ctx, agent, room, newcomer, StateFollowed); err != nil {
			t.Fatal(err)
		}
		parts, _ := s.GetParticipants(ctx, agent, room)
		if len(parts) != 3 || parts[2] != newcomer {
			t.Fatalf("participants %v", parts)
		}
	})
}

func TestLogs(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		agent := newAgent(t, s)
		room, other, user := uuid.NewString(), uuid.NewString(), uuid.NewString()
		var ids []string
		for i := 0; i < 6; i++ {
			l := storage.LogEntry{AgentID: agent, EntityID: user, RoomID: room, Type: "action", Body: map[string]any{"i": float64(i)}, CreatedAt: 100}
			if i%2 == 1 {
				l.Type = "useModel:TEXT_LARGE"
			}
			if i == 5 {
				l.RoomID = other
			}
			id, err := s.AddLog(ctx, l)
			if err != nil || !sdk.IsUUID(id) {
				t.Fatal(id, err)
			}
			ids = append(ids, id)
		}
		logs, err := s.GetLogs(ctx, agent, storage.LogQuery{})
		if err != nil || len(logs) != 6 {
			t.Fatal(len(logs), err)
		}
		for i, l := range logs {
			if l.ID != ids[5-i] || l.AgentID != agent || l.EntityID != user || l.CreatedAt != 100 || l.Body["i"] != float64(5-i) {
				t.Fatalf("log %d: %+v", i, l)
			}
		}
		logs, _ = s.GetLogs(ctx, agent, storage.LogQuery{RoomID: room, Type: "action", Count: 2})
		if len(logs) != 2 || logs[0].ID != ids[4] || logs[1].ID != ids[2] {
			t.Fatalf("filtered %+v", logs)
		}
		now := time.Now().UnixMilli()
		id, err := s.AddLog(ctx, storage.LogEntry{AgentID: agent, Type: "run"})
		if err != nil {
			t.Fatal(err)
		}
		logs, _ = s.GetLogs(ctx, agent, storage.LogQuery{Count: 1})
		if logs[0].ID != id || logs[0].CreatedAt < now || logs[0].Body != nil {
			t.Fatalf("newest %+v", logs[0])
		}
		_, err = s.AddLog(ctx, storage.LogEntry{AgentID: agent, Type: "run", ID: id})
		wantErr(t, err, "a log with this id is stored")
		_, err = s.AddLog(ctx, storage.LogEntry{AgentID: agent})
		wantErr(t, err, "log.type: is empty")
		_, err = s.AddLog(ctx, storage.LogEntry{AgentID: uuid.NewString(), Type: "x"})
		if !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("unknown agent: %v", err)
		}
	})
}

func TestCache(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		agent := newAgent(t, s)
		get := func(key string) ([]byte, bool) {
			t.Helper()
			v, ok, err := s.GetCache(ctx, agent, key)
			if err != nil {
				t.Fatal(err)
			}
			return v, ok
		}
		if _, ok := get("k"); ok {
			t.Fatal("found before set")
		}
		if err := s.SetCache(ctx, agent, "k", []byte{0, 1, 2, 255}, 0); err != nil {
			t.Fatal(err)
		}
		if v, ok := get("k"); !ok || !reflect.DeepEqual(v, []byte{0, 1, 2, 255}) {
			t.Fatal(v, ok)
		}
		if err := s.SetCache(ctx, agent, "k", []byte("v2"), 0); err != nil {
			t.Fatal(err)
		}
		if v, _ := get("k"); string(v) != "v2" {
			t.Fatal(string(v))
		}
		if err := s.SetCache(ctx, agent, "empty", nil, 0); err != nil {
			t.Fatal(err)
		}
		if v, ok := get("empty"); !ok || len(v) != 0 {
			t.Fatal(v, ok)
		}
		// Expiry is honoured on read: an entry is there within its life
		// (a minute: a busy machine cannot outlast it), and gone once a
		// short one has passed.
		if err := s.SetCache(ctx, agent, "long", []byte("x"), 60_000); err != nil {
			t.Fatal(err)
		}
		if _, ok := get("long"); !ok {
			t.Fatal("expired at once")
		}
		if err := s.SetCache(ctx, agent, "short", []byte("x"), 50); err != nil {
			t.Fatal(err)
		}
		testwait.For(t, 10*time.Second, "the entry of 50 ms to expire", func() bool { _, ok := get("short"); return !ok })
		// Setting it again revives it.
		if err := s.SetCache(ctx, agent, "short", []byte("y"), 60_000); err != nil {
			t.Fatal(err)
		}
		if v, ok := get("short"); !ok || string(v) != "y" {
			t.Fatal(v, ok)
		}
		// Other agents have their own cache.
		other := newAgent(t, s)
		if _, ok, _ := s.GetCache(ctx, other, "k"); ok {
			t.Fatal("cache shared between agents")
		}
		if err := s.DeleteCache(ctx, agent, "k"); err != nil {
			t.Fatal(err)
		}
		if _, ok := get("k"); ok {
			t.Fatal("found after delete")
		}
		if err := s.DeleteCache(ctx, agent, "k"); err != nil {
			t.Fatal(err)
		}
		wantErr(t, s.SetCache(ctx, agent, "k", nil, -1), "ttlMillis: is negative")
		wantErr(t, s.SetCache(ctx, agent, "", nil, 0), "key: is empty")
	})
}

func TestConcurrentWrites(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		const writers, each = 16, 40
		agent := newAgent(t, s)
		rooms := []string{uuid.NewString(), uuid.NewString()}
		var wg sync.WaitGroup
		errs := make(chan error, writers*2)
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				user := uuid.NewString()
				for i := 0; i < each; i++ {
					room := rooms[i%2]
					m := message(room, user, fmt.Sprint(w, "-", i))
					m.Embedding = unit(8, w+i, 0.5)
					if _, _, err := s.CreateMemory(ctx, agent, m, sdk.TableMessages, i%3 == 0); err != nil {
						errs <- err
						return
					}
					if i%10 < 2 {
						if err := s.EnsureConnection(ctx, agent, storage.Connection{Room: sdk.Room{ID: room}, Entity: sdk.Entity{ID: user, Names: []string{fmt.Sprint("u", w)}}}); err != nil {
							errs <- err
							return
						}
						if _, err := s.AddLog(ctx, storage.LogEntry{AgentID: agent, RoomID: room, Type: "t"}); err != nil {
							errs <- err
							return
						}
					}
				}
			}()
			// A reader per writer.
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each/4; i++ {
					if _, err := s.GetMemories(ctx, agent, storage.MemoryQuery{Table: sdk.TableMessages, RoomID: rooms[i%2]}); err != nil {
						errs <- err
						return
					}
					if _, err := s.SearchMemories(ctx, agent, storage.SearchQuery{Table: sdk.TableMessages, Embedding: unit(8, i, 0)}); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		// The same message delivered by many goroutines is stored once.
		dup := uuid.NewString()
		var createdCount sync.Map
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m := message(rooms[0], agent, "dup")
				m.ID = dup
				_, created, err := s.CreateMemory(ctx, agent, m, sdk.TableMessages, false)
				if err != nil {
					errs <- err
					return
				}
				if created {
					createdCount.Store(g, true)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		n, err := s.CountMemories(ctx, agent, "", sdk.TableMessages, false)
		if err != nil || n != writers*each+1 {
			t.Fatalf("count %d, want %d (%v)", n, writers*each+1, err)
		}
		created := 0
		createdCount.Range(func(any, any) bool { created++; return true })
		if created != 1 {
			t.Fatalf("duplicate created %d times", created)
		}
		for _, room := range rooms {
			parts, _ := s.GetParticipants(ctx, agent, room)
			if len(parts) != writers+1 {
				t.Fatalf("participants of %s: %d", room, len(parts))
			}
		}
	})
}

// The ids the store gives rows stored without one (memories, logs, tasks)
// sort by the time they were made, so that consecutive rows share the
// pages of the id indexes.
func TestStoredIDsSortByTime(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		agent := newAgent(t, s)
		room := uuid.NewString()
		var ids []string
		for i := range 3 {
			ids = append(ids, mustCreate(t, s, agent, message(room, agent, fmt.Sprint("message ", i)), sdk.TableMessages, false))
			logs, err := s.AddLogs(ctx, []storage.LogEntry{{AgentID: agent, Type: "test", Body: map[string]any{"i": i}}})
			if err != nil {
				t.Fatal(err)
			}
			task, err := s.CreateTask(ctx, agent, storage.Task{Name: "test"})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, logs[0], task)
		}
		for i, id := range ids {
			if id[14] != '7' {
				t.Errorf("id %s is not a version 7 UUID", id)
			}
			if i >= 3 && id <= ids[i-3] {
				t.Errorf("id %s was made after %s and sorts before it", id, ids[i-3])
			}
		}
	})
}
