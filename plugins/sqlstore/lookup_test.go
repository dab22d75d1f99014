package sqlstore

import (
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
	"github.com/google/uuid"
)

// entityNames returns the first name of each entity.
func entityNames(es []sdk.Entity) []string {
	out := make([]string, len(es))
	for i, e := range es {
		if len(e.Names) > 0 {
			out[i] = e.Names[0]
		}
	}
	return out
}

func upsertNamed(t *testing.T, s *Store, agent string, names ...[]string) []string {
	t.Helper()
	ids := make([]string, len(names))
	es := make([]sdk.Entity, len(names))
	for i, n := range names {
		ids[i] = uuid.NewString()
		es[i] = sdk.Entity{ID: ids[i], Names: n}
	}
	// One a millisecond, so that the order they were stored in is the
	// order of names.
	for _, e := range es {
		time.Sleep(2 * time.Millisecond)
		if err := s.UpsertEntities(ctx, agent, []sdk.Entity{e}); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

func TestSearchEntities(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		agent, other := newAgent(t, s), newAgent(t, s)
		upsertNamed(t, s, agent,
			[]string{"Alice Smith", "alice"},
			[]string{"ÉCOLE Bot"},
			[]string{"Bob"},
			[]string{"100%_real"},
			[]string{"party 🎉 people"},
			[]string{"ab", "cd"},
			[]string{"'); DROP TABLE entities; --"},
			[]string{"مرحبا بالعالم"},
		)
		upsertNamed(t, s, other, []string{"Alice of another agent"})

		search := func(q storage.EntitySearch) []string {
			t.Helper()
			es, err := s.SearchEntities(ctx, agent, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range es {
				if e.AgentID != agent || e.Components != nil {
					t.Fatalf("entity %+v", e)
				}
			}
			return entityNames(es)
		}
		for _, c := range []struct {
			q    storage.EntitySearch
			want []string
		}{
			{storage.EntitySearch{NameContains: "ALI"}, []string{"Alice Smith"}},
			{storage.EntitySearch{NameContains: "smith"}, []string{"Alice Smith"}},
			{storage.EntitySearch{NameContains: "école"}, []string{"ÉCOLE Bot"}},
			{storage.EntitySearch{NameContains: "École BOT"}, []string{"ÉCOLE Bot"}},
			// No wildcards: % and _ are themselves.
			{storage.EntitySearch{NameContains: "%"}, []string{"100%_real"}},
			{storage.EntitySearch{NameContains: "_"}, []string{"100%_real"}},
			{storage.EntitySearch{NameContains: "0%_r"}, []string{"100%_real"}},
			{storage.EntitySearch{NameContains: "🎉"}, []string{"party 🎉 people"}},
			{storage.EntitySearch{NameContains: "بالعالم"}, []string{"مرحبا بالعالم"}},
			{storage.EntitySearch{NameContains: "drop table"}, []string{"'); DROP TABLE entities; --"}},
			{storage.EntitySearch{NameContains: "' OR 1=1 --"}, []string{}},
			// A match must lie within one name.
			{storage.EntitySearch{NameContains: "b\nc"}, []string{}},
			{storage.EntitySearch{NameContains: "cd"}, []string{"ab"}},
			{storage.EntitySearch{NameContains: "nobody"}, []string{}},
			// Exact names, case and all (elizaOS's getEntitiesByNames).
			{storage.EntitySearch{Names: []string{"Bob"}}, []string{"Bob"}},
			{storage.EntitySearch{Names: []string{"bob"}}, []string{}},
			{storage.EntitySearch{Names: []string{"alice", "cd", "nobody"}}, []string{"Alice Smith", "ab"}},
			{storage.EntitySearch{Names: []string{"Alice"}}, []string{}},
			{storage.EntitySearch{Names: []string{"alice", "Bob"}, NameContains: "smi"}, []string{"Alice Smith"}},
			// Nothing asked: every entity, up to the count.
			{storage.EntitySearch{Count: 3}, []string{"Alice Smith", "ÉCOLE Bot", "Bob"}},
		} {
			if got := search(c.q); !reflect.DeepEqual(got, c.want) {
				t.Errorf("%+v: got %q, want %q", c.q, got, c.want)
			}
		}

		// The count: 10 by default, first stored first.
		var many [][]string
		for i := 0; i < 15; i++ {
			many = append(many, []string{fmt.Sprintf("User %02d", i)})
		}
		upsertNamed(t, s, agent, many...)
		if got := search(storage.EntitySearch{NameContains: "user"}); len(got) != DefaultEntitySearchCount || got[0] != "User 00" || got[9] != "User 09" {
			t.Fatalf("default count: %q", got)
		}
		if got := search(storage.EntitySearch{NameContains: "USER 1", Count: 2}); !reflect.DeepEqual(got, []string{"User 10", "User 11"}) {
			t.Fatalf("count 2: %q", got)
		}

		// Names that change are found by their new names only.
		bob := upsertNamed(t, s, agent, []string{"Robert"})[0]
		if err := s.EnsureConnection(ctx, agent, storage.Connection{Room: sdk.Room{ID: uuid.NewString()},
			Entity: sdk.Entity{ID: bob, Names: []string{"Bobby Tables"}}}); err != nil {
			t.Fatal(err)
		}
		if got := search(storage.EntitySearch{NameContains: "bobby"}); !reflect.DeepEqual(got, []string{"Robert"}) {
			t.Fatalf("merged name: %q", got)
		}
		if err := s.UpsertEntities(ctx, agent, []sdk.Entity{{ID: bob, Names: []string{"Rob"}}}); err != nil {
			t.Fatal(err)
		}
		if got := search(storage.EntitySearch{NameContains: "bobby"}); len(got) != 0 {
			t.Fatalf("replaced name still found: %q", got)
		}
		if got := search(storage.EntitySearch{Names: []string{"Rob"}}); !reflect.DeepEqual(got, []string{"Rob"}) {
			t.Fatalf("new name: %q", got)
		}

		// With components.
		if _, _, err := s.CreateComponent(ctx, agent, sdk.Component{EntityID: bob, Type: "contact", Data: map[string]any{"tg": "@rob"}}); err != nil {
			t.Fatal(err)
		}
		es, err := s.SearchEntities(ctx, agent, storage.EntitySearch{NameContains: "rob", WithComponents: true})
		if err != nil || len(es) != 1 || len(es[0].Components) != 1 || es[0].Components[0].Data["tg"] != "@rob" {
			t.Fatalf("with components: %+v %v", es, err)
		}
		es, err = s.SearchEntities(ctx, agent, storage.EntitySearch{Names: []string{"Bob"}, WithComponents: true})
		if err != nil || len(es) != 1 || es[0].Components == nil || len(es[0].Components) != 0 {
			t.Fatalf("without any component: %+v %v", es, err)
		}

		// The tables are all still there.
		if got := search(storage.EntitySearch{Names: []string{"'); DROP TABLE entities; --"}}); len(got) != 1 {
			t.Fatalf("injection name: %q", got)
		}
	})
}

func TestSearchEntitiesBadInput(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		agent := newAgent(t, s)
		for _, c := range []struct {
			q    storage.EntitySearch
			want []string
		}{
			{storage.EntitySearch{NameContains: "a\xffb"}, []string{"query.nameContains", "is not valid UTF-8"}},
			{storage.EntitySearch{Names: []string{"ok", "\xed\xa0\x80"}}, []string{"query.names[1]", "is not valid UTF-8"}},
			{storage.EntitySearch{Count: -1}, []string{"query.count", "negative"}},
			{storage.EntitySearch{Names: make([]string, inChunk+1)}, []string{"query.names", "at most"}},
		} {
			_, err := s.SearchEntities(ctx, agent, c.q)
			wantErr(t, err, c.want...)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("%v does not match ErrInvalid", err)
			}
		}
		_, err := s.SearchEntities(ctx, "' OR 1=1 --", storage.EntitySearch{})
		wantErr(t, err, `agentId: "' OR 1=1 --" is not a UUID`)

		// NUL: stored and found on SQLite; refused by field on PostgreSQL,
		// which cannot hold it.
		nul := "a\x00b"
		ids := []string{uuid.NewString()}
		err = s.UpsertEntities(ctx, agent, []sdk.Entity{{ID: ids[0], Names: []string{"x" + nul}}})
		_, serr := s.SearchEntities(ctx, agent, storage.EntitySearch{NameContains: nul})
		if s.d.allowNUL {
			if err != nil || serr != nil {
				t.Fatal(err, serr)
			}
			es, err := s.SearchEntities(ctx, agent, storage.EntitySearch{NameContains: "A\x00B"})
			if err != nil || len(es) != 1 || es[0].Names[0] != "x"+nul {
				t.Fatalf("NUL name: %+v %v", es, err)
			}
			es, err = s.SearchEntities(ctx, agent, storage.EntitySearch{Names: []string{"x" + nul}})
			if err != nil || len(es) != 1 {
				t.Fatalf("NUL name exactly: %+v %v", es, err)
			}
		} else {
			wantErr(t, err, "entities[0].names[0]", "contains a NUL byte")
			wantErr(t, serr, "query.nameContains", "contains a NUL byte")
			_, serr = s.SearchEntities(ctx, agent, storage.EntitySearch{Names: []string{nul}})
			wantErr(t, serr, "query.names[0]", "contains a NUL byte")
		}
	})
}

func TestEntitiesWithComponents(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		agent := newAgent(t, s)
		world, room := uuid.NewString(), uuid.NewString()
		alice, bob, carol := uuid.NewString(), uuid.NewString(), uuid.NewString()
		connect(t, s, agent, world, room, alice, bob)
		if err := s.UpsertEntities(ctx, agent, []sdk.Entity{{ID: carol, Names: []string{"Carol"}}}); err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, c := range []sdk.Component{
			{EntityID: alice, Type: "contact", Data: map[string]any{"n": 1.0}},
			{EntityID: bob, Type: "account", WorldID: world, SourceEntityID: alice, Data: map[string]any{"id": "b"}},
			{EntityID: alice, Type: "account", RoomID: room, Data: map[string]any{"n": 2.0}},
		} {
			id, _, err := s.CreateComponent(ctx, agent, c)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, id)
		}
		types := func(e sdk.Entity) []string {
			out := []string{}
			for _, c := range e.Components {
				if c.EntityID != e.ID || c.AgentID != agent {
					t.Fatalf("component %+v on entity %s", c, e.ID)
				}
				out = append(out, c.Type)
			}
			return out
		}

		es, err := s.GetEntitiesForRoom(ctx, agent, room)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.AttachComponents(ctx, agent, es); err != nil {
			t.Fatal(err)
		}
		if len(es) != 2 || es[0].ID != alice || !reflect.DeepEqual(types(es[0]), []string{"contact", "account"}) ||
			!reflect.DeepEqual(types(es[1]), []string{"account"}) || es[1].Components[0].SourceEntityID != alice {
			t.Fatalf("room entities: %+v", es)
		}
		if es[0].Components[0].ID != want[0] || es[0].Components[1].ID != want[2] {
			t.Fatalf("component order: %+v", es[0].Components)
		}

		// By ids, one twice and one unknown; without components an empty
		// list, not nil.
		unknown := sdk.Entity{ID: uuid.NewString()}
		es, err = s.GetEntities(ctx, agent, []string{carol, bob})
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, es[1], unknown)
		if err := s.AttachComponents(ctx, agent, es); err != nil {
			t.Fatal(err)
		}
		if es[0].Components == nil || len(es[0].Components) != 0 || len(es[1].Components) != 1 || len(es[2].Components) != 1 ||
			es[3].Components == nil || len(es[3].Components) != 0 {
			t.Fatalf("by ids: %+v", es)
		}
		es[1].Components[0].Type = "changed"
		if es[2].Components[0].Type != "account" {
			t.Fatal("two entries share one slice")
		}
		if err := s.AttachComponents(ctx, agent, nil); err != nil {
			t.Fatal(err)
		}
		err = s.AttachComponents(ctx, agent, []sdk.Entity{{ID: alice}, {ID: "'; DROP TABLE components; --"}})
		wantErr(t, err, `entities[1].id: "'; DROP TABLE components; --" is not a UUID`)

		// More entities than one IN list holds.
		var lots []sdk.Entity
		for i := 0; i < inChunk+3; i++ {
			lots = append(lots, sdk.Entity{ID: uuid.NewString()})
		}
		lots = append(lots, sdk.Entity{ID: alice})
		if err := s.AttachComponents(ctx, agent, lots); err != nil || len(lots[len(lots)-1].Components) != 2 {
			t.Fatalf("%d entities: %v", len(lots), err)
		}
	})
}

// memoryWith stores a memory of table whose content has text (and, if
// thought is set, a thought), with embedding v (none if nil).
func memoryWith(t *testing.T, s *Store, agent, table, text, thought string, v []float32) string {
	t.Helper()
	m := message(uuid.NewString(), uuid.NewString(), text)
	m.Content.Thought = thought
	m.Embedding = v
	return mustCreate(t, s, agent, m, table, false)
}

func TestGetCachedEmbeddings(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		agent, other := newAgent(t, s), newAgent(t, s)
		if got, err := s.GetCachedEmbeddings(ctx, agent, storage.CachedEmbeddingsQuery{Text: "hello"}); err != nil || len(got) != 0 {
			t.Fatalf("no embeddings yet: %v %v", got, err)
		}
		v := func(i int) []float32 { return unit(4, i, 0.5) }
		exact := memoryWith(t, s, agent, sdk.TableMessages, "hello world", "", v(0))
		oneOff := memoryWith(t, s, agent, sdk.TableMessages, "hello world!", "", v(1))
		twoOff := memoryWith(t, s, agent, sdk.TableMessages, "help world", "", v(2))
		memoryWith(t, s, agent, sdk.TableMessages, "goodbye world", "", v(3))
		memoryWith(t, s, agent, sdk.TableMessages, "hello world", "", nil) // no embedding
		fact := memoryWith(t, s, agent, sdk.TableFacts, "hello world", "", v(0))
		thought := memoryWith(t, s, agent, sdk.TableMessages, "", "hello world", v(1))
		memoryWith(t, s, other, sdk.TableMessages, "hello world", "", v(0))

		type hit struct {
			id    string
			score int
		}
		get := func(q storage.CachedEmbeddingsQuery) []hit {
			t.Helper()
			cs, err := s.GetCachedEmbeddings(ctx, agent, q)
			if err != nil {
				t.Fatal(err)
			}
			out := []hit{}
			for _, c := range cs {
				if len(c.Embedding) == 0 {
					t.Fatalf("embedding %v", c.Embedding)
				}
				out = append(out, hit{c.MemoryID, c.LevenshteinScore})
			}
			return out
		}
		for _, c := range []struct {
			q    storage.CachedEmbeddingsQuery
			want []hit
		}{
			{storage.CachedEmbeddingsQuery{Text: "hello world", Table: sdk.TableMessages}, []hit{{exact, 0}}},
			// At the same distance, newest first.
			{storage.CachedEmbeddingsQuery{Text: "hello world"}, []hit{{fact, 0}, {exact, 0}}},
			{storage.CachedEmbeddingsQuery{Text: "hello world", Table: sdk.TableMessages, Threshold: 2}, []hit{{exact, 0}, {oneOff, 1}, {twoOff, 2}}},
			{storage.CachedEmbeddingsQuery{Text: "hello world", Table: sdk.TableMessages, Threshold: 2, Count: 2}, []hit{{exact, 0}, {oneOff, 1}}},
			{storage.CachedEmbeddingsQuery{Text: "hello world", Threshold: 1, Count: 1}, []hit{{fact, 0}}},
			{storage.CachedEmbeddingsQuery{Text: "Hello World", Table: sdk.TableMessages, Threshold: 1}, []hit{}},
			{storage.CachedEmbeddingsQuery{Text: "Hello World", Table: sdk.TableMessages, Threshold: 2}, []hit{{exact, 2}}},
			{storage.CachedEmbeddingsQuery{Text: "hello world", Field: "thought"}, []hit{{thought, 0}}},
			// Not a string: no candidate.
			{storage.CachedEmbeddingsQuery{Text: "hello world", Field: "actions"}, []hit{}},
			{storage.CachedEmbeddingsQuery{Text: "hello world", Field: "nothing_here"}, []hit{}},
			{storage.CachedEmbeddingsQuery{Text: "hello world", Table: "'); DROP TABLE memories; --"}, []hit{}},
		} {
			if got := get(c.q); !reflect.DeepEqual(got, c.want) {
				t.Errorf("%+v: got %v, want %v", c.q, got, c.want)
			}
		}
		got, err := s.GetCachedEmbeddings(ctx, agent, storage.CachedEmbeddingsQuery{Text: "hello world", Table: sdk.TableMessages})
		if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0].Embedding, v(0)) {
			t.Fatalf("the stored vector: %+v %v", got, err)
		}

		// Emoji count as the code points they are made of; right-to-left
		// text, quotes and long texts (past the 255 characters of
		// PostgreSQL's levenshtein) compare like any other.
		family := memoryWith(t, s, agent, sdk.TableDocuments, "👩‍👩‍👧‍👦 family", "", v(0))
		injection := memoryWith(t, s, agent, sdk.TableDocuments, "'); DROP TABLE memories; --", "", v(1))
		rtl := memoryWith(t, s, agent, sdk.TableDocuments, "مرحبا بالعالم", "", v(2))
		long := strings.Repeat("a long text ", 200)
		longID := memoryWith(t, s, agent, sdk.TableDocuments, long, "", v(3))
		for _, c := range []struct {
			text string
			want []hit
		}{
			{"👩‍👩‍👧 family", []hit{{family, 2}}},
			{"'); DROP TABLE memories; --", []hit{{injection, 0}}},
			{"'); DROP TABLE memorie; --", []hit{{injection, 1}}},
			{"مرحبا بالعالم!", []hit{{rtl, 1}}},
			{long[:len(long)-3] + "xyz", []hit{{longID, 2}}},
			{"x" + long[3:], []hit{{longID, 3}}},
		} {
			if got := get(storage.CachedEmbeddingsQuery{Text: c.text, Table: sdk.TableDocuments, Threshold: 3}); !reflect.DeepEqual(got, c.want) {
				t.Errorf("%q: got %v, want %v", c.text, got, c.want)
			}
		}

		// A NUL byte never reaches the database: fine on both backends.
		var nulID string
		if s.d.allowNUL {
			nulID = memoryWith(t, s, agent, sdk.TableFragments, "a\x00b", "", v(0))
		} else {
			nulID = memoryWith(t, s, agent, sdk.TableFragments, "ab", "", v(0))
		}
		want := map[bool]int{true: 0, false: 1}[s.d.allowNUL]
		if got := get(storage.CachedEmbeddingsQuery{Text: "a\x00b", Table: sdk.TableFragments, Threshold: 1}); !reflect.DeepEqual(got, []hit{{nulID, want}}) {
			t.Fatalf("NUL: got %v, want distance %d", got, want)
		}

		// After a change of model, the old vectors are no use.
		if _, _, err := s.SetEmbeddingDimension(ctx, agent, 8); err != nil {
			t.Fatal(err)
		}
		if got := get(storage.CachedEmbeddingsQuery{Text: "hello world"}); len(got) != 0 {
			t.Fatalf("stale vectors returned: %v", got)
		}
		fresh := memoryWith(t, s, agent, sdk.TableMessages, "hello world", "", unit(8, 0, 0))
		if got := get(storage.CachedEmbeddingsQuery{Text: "hello world"}); !reflect.DeepEqual(got, []hit{{fresh, 0}}) {
			t.Fatalf("after the switch: %v", got)
		}
	})
}

func TestGetCachedEmbeddingsBadInput(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		agent := newAgent(t, s)
		memoryWith(t, s, agent, sdk.TableMessages, "x", "", []float32{1, 0})
		for _, c := range []struct {
			q    storage.CachedEmbeddingsQuery
			want []string
		}{
			{storage.CachedEmbeddingsQuery{Text: "a\xffb"}, []string{"query.text", "is not valid UTF-8"}},
			{storage.CachedEmbeddingsQuery{Text: "x", Field: "text'); DROP TABLE memories; --"}, []string{"query.field", "is not a content key"}},
			{storage.CachedEmbeddingsQuery{Text: "x", Field: "$.text"}, []string{"query.field", "is not a content key"}},
			{storage.CachedEmbeddingsQuery{Text: "x", Field: "a.b"}, []string{"query.field", "is not a content key"}},
			{storage.CachedEmbeddingsQuery{Text: "x", Field: strings.Repeat("k", maxContentKey+1)}, []string{"query.field", "bytes long"}},
			{storage.CachedEmbeddingsQuery{Text: "x", Table: "t\xff"}, []string{"query.table", "is not valid UTF-8"}},
			{storage.CachedEmbeddingsQuery{Text: "x", Threshold: -1}, []string{"query.threshold", "is -1"}},
			{storage.CachedEmbeddingsQuery{Text: "x", Threshold: MaxLevenshteinThreshold + 1}, []string{"query.threshold"}},
			{storage.CachedEmbeddingsQuery{Text: "x", Count: -1}, []string{"query.count", "negative"}},
		} {
			_, err := s.GetCachedEmbeddings(ctx, agent, c.q)
			wantErr(t, err, c.want...)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("%v does not match ErrInvalid", err)
			}
		}
		_, err := s.GetCachedEmbeddings(ctx, "x", storage.CachedEmbeddingsQuery{Text: "x"})
		wantErr(t, err, `agentId: "x" is not a UUID`)
		_, err = s.GetCachedEmbeddings(ctx, uuid.NewString(), storage.CachedEmbeddingsQuery{Text: "x"})
		if !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("unknown agent: %v", err)
		}
		// The largest threshold and a 1 MiB text are fine.
		big := strings.Repeat("abcdefg\n", 128*1024)
		id := memoryWith(t, s, agent, sdk.TableMessages, big, "", []float32{0, 1})
		got, err := s.GetCachedEmbeddings(ctx, agent, storage.CachedEmbeddingsQuery{Text: big[1:], Threshold: MaxLevenshteinThreshold})
		if err != nil || len(got) != 1 || got[0].MemoryID != id || got[0].LevenshteinScore != 1 {
			t.Fatalf("1 MiB: %+v %v", got, err)
		}
	})
}

// naiveLevenshtein is the textbook table, for comparison.
func naiveLevenshtein(a, b []rune) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j-1]+cost, prev[j]+1, cur[j-1]+1)
		}
		prev = cur
	}
	return prev[len(b)]
}

func TestLevenshtein(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		a, b  string
		limit int
		want  int // -1: over the limit
	}{
		{"", "", 0, 0},
		{"abc", "", 3, 3},
		{"abc", "", 2, -1},
		{"kitten", "sitting", 3, 3},
		{"kitten", "sitting", 2, -1},
		{"flaw", "lawn", 2, 2},
		{"héllo", "hello", 1, 1},
		{"👩‍👩‍👧‍👦", "👩‍👩‍👧", 2, 2},
		{"same", "same", 0, 0},
	} {
		d, ok := levenshtein([]rune(c.a), []rune(c.b), c.limit)
		if !ok {
			d = -1
		}
		if d != c.want {
			t.Errorf("levenshtein(%q, %q, %d) = %d, want %d", c.a, c.b, c.limit, d, c.want)
		}
	}
	rng := rand.New(rand.NewSource(1))
	word := func() []rune {
		r := make([]rune, rng.Intn(14))
		for i := range r {
			r[i] = rune('a' + rng.Intn(3))
		}
		return r
	}
	for i := 0; i < 20000; i++ {
		a, b, limit := word(), word(), rng.Intn(8)
		want := naiveLevenshtein(a, b)
		d, ok := levenshtein(a, b, limit)
		if ok != (want <= limit) || ok && d != want {
			t.Fatalf("levenshtein(%q, %q, %d) = %d, %v; the distance is %d", string(a), string(b), limit, d, ok, want)
		}
	}
}

func TestRoomsAndParticipantsInBulk(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		agent := newAgent(t, s)
		world, otherWorld := uuid.NewString(), uuid.NewString()
		if err := s.UpsertWorld(ctx, agent, sdk.World{ID: world, Name: "guild"}); err != nil {
			t.Fatal(err)
		}
		r1, r2, r3 := uuid.NewString(), uuid.NewString(), uuid.NewString()
		rooms := []sdk.Room{
			{ID: r1, Name: "general", WorldID: world, Type: sdk.ChannelGroup, Source: "discord", Metadata: map[string]any{"topic": "'); DROP TABLE rooms; --"}},
			{ID: r2, Name: "🎉 party", WorldID: world, Type: sdk.ChannelVoiceGroup},
			{ID: r3, Name: "مرحبا", WorldID: otherWorld, Type: sdk.ChannelGroup},
		}
		if err := s.UpsertRooms(ctx, agent, rooms); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetRooms(ctx, agent, storage.RoomQuery{})
		if err != nil || len(got) != 3 {
			t.Fatalf("rooms: %+v %v", got, err)
		}
		for i := range rooms {
			rooms[i].AgentID = agent
			if !reflect.DeepEqual(got[i], rooms[i]) {
				t.Fatalf("room %d: got %+v, want %+v", i, got[i], rooms[i])
			}
		}
		// A stored room is replaced; one bad room stores none.
		err = s.UpsertRooms(ctx, agent, []sdk.Room{{ID: r1, Name: "renamed", WorldID: world}, {ID: "' OR 1=1 --"}})
		wantErr(t, err, `rooms[1].id: "' OR 1=1 --" is not a UUID`)
		err = s.UpsertRooms(ctx, agent, []sdk.Room{{ID: r1, Name: "renamed", WorldID: world}, {ID: r2, Name: "a\xffb"}})
		wantErr(t, err, "rooms[1].name", "is not valid UTF-8")
		err = s.UpsertRooms(ctx, agent, []sdk.Room{{ID: r1, Name: "renamed", WorldID: world}, {ID: r2, Name: "a\x00b", WorldID: world}})
		if s.d.allowNUL {
			if err != nil {
				t.Fatal(err)
			}
		} else {
			wantErr(t, err, "rooms[1].name", "contains a NUL byte")
			if err := s.UpsertRooms(ctx, agent, []sdk.Room{{ID: r1, Name: "renamed", WorldID: world}}); err != nil {
				t.Fatal(err)
			}
		}
		got, _ = s.GetRooms(ctx, agent, storage.RoomQuery{IDs: []string{r1}})
		if len(got) != 1 || got[0].Name != "renamed" || got[0].Metadata != nil || got[0].Source != "" {
			t.Fatalf("replaced room: %+v", got)
		}
		if err := s.UpsertRooms(ctx, uuid.NewString(), []sdk.Room{{ID: r1}}); !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("unknown agent: %v", err)
		}
		if err := s.UpsertRooms(ctx, agent, nil); err != nil {
			t.Fatal(err)
		}

		// Participants in bulk; those already in keep their state.
		e1, e2, e3 := uuid.NewString(), uuid.NewString(), uuid.NewString()
		if err := s.SetParticipantState(ctx, agent, r1, e1, StateMuted); err != nil {
			t.Fatal(err)
		}
		n, err := s.AddParticipants(ctx, agent, r1, []string{e1, e2, e2, e3})
		if err != nil || n != 2 {
			t.Fatalf("added %d, %v; want 2", n, err)
		}
		if n, err := s.AddParticipants(ctx, agent, r1, []string{e3}); err != nil || n != 0 {
			t.Fatalf("again: added %d, %v", n, err)
		}
		ps, err := s.GetParticipants(ctx, agent, r1)
		if err != nil || !reflect.DeepEqual(ps, []string{e1, e2, e3}) {
			t.Fatalf("participants %v %v", ps, err)
		}
		if st, _ := s.GetParticipantState(ctx, agent, r1, e1); st != StateMuted {
			t.Fatalf("state %q, want MUTED kept", st)
		}
		if _, err := s.AddParticipants(ctx, agent, uuid.NewString(), []string{e1}); !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("unknown room: %v", err)
		}
		_, err = s.AddParticipants(ctx, agent, r1, []string{e1, "x'); DROP TABLE participants; --"})
		wantErr(t, err, "entityIds[1]", "is not a UUID")
		_, err = s.AddParticipants(ctx, agent, "", []string{e1})
		wantErr(t, err, "roomId: is empty")
		if n, err := s.AddParticipants(ctx, agent, r2, []string{e1, e2}); err != nil || n != 2 {
			t.Fatalf("room 2: %d %v", n, err)
		}
		if n, err := s.AddParticipants(ctx, agent, r3, []string{e1}); err != nil || n != 1 {
			t.Fatalf("room 3: %d %v", n, err)
		}

		// The rooms of a world go with their memories; the world and the
		// rooms of other worlds stay.
		mustCreate(t, s, agent, message(r1, e1, "in general"), sdk.TableMessages, false)
		mustCreate(t, s, agent, message(r3, e1, "elsewhere"), sdk.TableMessages, false)
		n, err = s.DeleteRoomsByWorld(ctx, agent, world)
		if err != nil || n != 2 {
			t.Fatalf("deleted %d rooms, %v; want 2", n, err)
		}
		if got, _ := s.GetRooms(ctx, agent, storage.RoomQuery{}); len(got) != 1 || got[0].ID != r3 {
			t.Fatalf("rooms left: %+v", got)
		}
		if ws, _ := s.GetWorlds(ctx, agent, []string{world}); len(ws) != 1 {
			t.Fatal("the world went too")
		}
		if c, _ := s.CountMemories(ctx, agent, r1, "", false); c != 0 {
			t.Fatalf("%d memories left in a deleted room", c)
		}
		if c, _ := s.CountMemories(ctx, agent, r3, "", false); c != 1 {
			t.Fatalf("%d memories in the other world's room", c)
		}
		if ps, _ := s.GetParticipants(ctx, agent, r1); len(ps) != 0 {
			t.Fatalf("participants left: %v", ps)
		}
		if n, err := s.DeleteRoomsByWorld(ctx, agent, world); err != nil || n != 0 {
			t.Fatalf("again: %d %v", n, err)
		}
		_, err = s.DeleteRoomsByWorld(ctx, agent, "'; DELETE FROM rooms; --")
		wantErr(t, err, "worldId", "is not a UUID")
	})
}

// TestSearchNamesMigration: migration 7 fills search_names for the
// entities stored before it.
func TestSearchNamesMigration(t *testing.T) {
	t.Parallel()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			if _, err := s.migrateTo(ctx, 6); err != nil {
				t.Fatal(err)
			}
			agent := newAgent(t, s)
			id := uuid.NewString()
			_, err := s.read().exec(ctx, `INSERT INTO entities (agent_id, id, names, metadata, created_at, updated_at)
				VALUES (?, ?, ?, '{}', 1, 1)`, agent, id, `["Ünïcode Name","other"]`)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := s.Migrate(ctx)
			if err != nil || rep.Applied != len(migrations)-6 {
				t.Fatalf("migrate: %+v %v", rep, err)
			}
			es, err := s.SearchEntities(ctx, agent, storage.EntitySearch{NameContains: "üNÏCODE"})
			if err != nil || len(es) != 1 || es[0].ID != id {
				t.Fatalf("stored before the migration: %+v %v", es, err)
			}
		})
	}
}

// TestGetCachedEmbeddingsMany: more results than one IN list holds, closest
// first.
func TestGetCachedEmbeddingsMany(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		agent := newAgent(t, s)
		seed(t, s, agent, []string{uuid.NewString()}, inChunk+200, 2)
		got, err := s.GetCachedEmbeddings(ctx, agent, storage.CachedEmbeddingsQuery{Text: "message 5", Threshold: 3, Count: 10_000})
		if err != nil || len(got) != inChunk+200 {
			t.Fatalf("%d results, %v", len(got), err)
		}
		for i, c := range got {
			if len(c.Embedding) != 2 || i > 0 && c.LevenshteinScore < got[i-1].LevenshteinScore {
				t.Fatalf("result %d: %+v after %+v", i, c, got[i-1])
			}
		}
		if got[0].LevenshteinScore != 0 || got[len(got)-1].LevenshteinScore != 3 {
			t.Fatalf("scores from %d to %d", got[0].LevenshteinScore, got[len(got)-1].LevenshteinScore)
		}
	})
}
