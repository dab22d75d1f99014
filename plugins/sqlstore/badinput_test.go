package sqlstore

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/dbplugin"
	"github.com/agenthost/agenthost/sdk/storage"
	"github.com/google/uuid"
)

// hostile are the texts every text field must store exactly or refuse with
// an error naming the field.
var hostile = []struct {
	name string
	v    string
}{
	{"sql injection", "'); DROP TABLE memories; --"},
	{"quotes and placeholders", `"\' \\ %_ ? $1 :name @p1 ''`},
	{"1 MiB", strings.Repeat("abcdefg\n", 128*1024)},
	{"emoji", "👩‍👩‍👧‍👦 🎉 \U0001F600 \u2028\u2029 <>&"},
	{"right to left", "مرحبا بالعالم שלום עולם \u202eevil\u202c"},
	{"control characters", "\t\r\n\x01\x1b[31m\x7f"},
	{"escape lookalike", `\u0000 \\u0000 \x00`},
	{"NUL", "a\x00b"},
	{"invalid UTF-8", "a\xffb\xc3"},
	{"surrogate bytes", "\xed\xa0\x80"},
}

// verdict says what a backend must do with v in f: "" to store it exactly,
// or the reason it must give.
func verdict(s *Store, f field, v string) string {
	switch {
	case f.key && len(v) > MaxKeyLen:
		return "bytes long; at most"

	case strings.ContainsAny(v, "\xff") || !validUTF8(v):
		return "is not valid UTF-8"
	case strings.IndexByte(v, 0) >= 0 && !s.d.allowNUL:
		return "contains a NUL byte"
	}
	return ""
}

func validUTF8(v string) bool { return strings.ToValidUTF8(v, "\uFFFD") == v }

// field is one place a text can go: store writes v, load reads it back.
type field struct {
	name  string // what the error must name
	key   bool   // at most MaxKeyLen bytes
	store func(t *testing.T, s *Store, agent, v string) error
	load  func(t *testing.T, s *Store, agent string) string
}

func textFields() []field {
	memoryField := func(name string, set func(m *sdk.Memory, v string), get func(m sdk.Memory) string, table string) field {
		room := uuid.NewString()
		return field{
			name: name,
			store: func(t *testing.T, s *Store, agent, v string) error {
				m := message(room, agent, "")
				set(m, v)
				tb := table
				if tb == "" {
					tb = v
				}
				_, _, err := s.CreateMemory(ctx, agent, m, tb, false)
				return err
			},
			load: func(t *testing.T, s *Store, agent string) string {
				got, err := s.GetMemories(ctx, agent, storage.MemoryQuery{RoomID: room})
				if err != nil || len(got) != 1 {
					t.Fatalf("read back: %d memories, %v", len(got), err)
				}
				return get(got[0])
			},
		}
	}
	room := uuid.NewString()
	user := uuid.NewString()
	return []field{
		memoryField("memory.content.text", func(m *sdk.Memory, v string) { m.Content.Text = v },
			func(m sdk.Memory) string { return m.Content.Text }, sdk.TableMessages),
		memoryField("memory.content.attachments[0].title", func(m *sdk.Memory, v string) { m.Content.Attachments = []sdk.Media{{Title: v}} },
			func(m sdk.Memory) string { return m.Content.Attachments[0].Title }, sdk.TableMessages),
		memoryField("memory.content.note[1]", func(m *sdk.Memory, v string) { m.Content.Extra = map[string]any{"note": []any{"ok", v}} },
			func(m sdk.Memory) string { return m.Content.Extra["note"].([]any)[1].(string) }, sdk.TableMessages),
		memoryField("memory.metadata.source", func(m *sdk.Memory, v string) { m.Metadata = map[string]any{"source": v} },
			func(m sdk.Memory) string { return m.Metadata["source"].(string) }, sdk.TableMessages),
		memoryField("memory.metadata[", func(m *sdk.Memory, v string) { m.Metadata = map[string]any{v + "!": true} },
			func(m sdk.Memory) string {
				for k := range m.Metadata {
					return strings.TrimSuffix(k, "!")
				}
				return ""
			}, sdk.TableMessages),
		keyField(memoryField("table", func(*sdk.Memory, string) {}, func(m sdk.Memory) string { return m.Table }, "")),
		{
			name: "entity.names[1]",
			store: func(t *testing.T, s *Store, agent, v string) error {
				return s.EnsureConnection(ctx, agent, storage.Connection{Room: sdk.Room{ID: room}, Entity: sdk.Entity{ID: user, Names: []string{"plain", v}}})
			},
			load: func(t *testing.T, s *Store, agent string) string {
				es, err := s.GetEntities(ctx, agent, []string{user})
				if err != nil || len(es) != 1 {
					t.Fatal(es, err)
				}
				return es[0].Names[1]
			},
		},
		{
			// Found again by SearchEntities, by part and by the whole name.
			name: "entities[0].names[0]",
			store: func(t *testing.T, s *Store, agent, v string) error {
				return s.UpsertEntities(ctx, agent, []sdk.Entity{{ID: user, Names: []string{v}}})
			},
			load: func(t *testing.T, s *Store, agent string) string {
				es, err := s.GetEntities(ctx, agent, []string{user})
				if err != nil || len(es) != 1 {
					t.Fatal(es, err)
				}
				v := es[0].Names[0]
				for _, q := range []storage.EntitySearch{{NameContains: v}, {NameContains: strings.ToUpper(v)}, {Names: []string{v}}} {
					found, err := s.SearchEntities(ctx, agent, q)
					if err != nil || len(found) != 1 || found[0].ID != user {
						t.Fatalf("search %d bytes: %d entities, %v", len(v), len(found), err)
					}
				}
				return v
			},
		},
		{
			// Found again by GetCachedEmbeddings at distance 0.
			name: "memory.content.text",
			store: func(t *testing.T, s *Store, agent, v string) error {
				m := message(room, user, v)
				m.Embedding = []float32{1, 2}
				_, _, err := s.CreateMemory(ctx, agent, m, sdk.TableMessages, false)
				return err
			},
			load: func(t *testing.T, s *Store, agent string) string {
				ms, err := s.GetMemories(ctx, agent, storage.MemoryQuery{RoomID: room})
				if err != nil || len(ms) != 1 {
					t.Fatal(ms, err)
				}
				cs, err := s.GetCachedEmbeddings(ctx, agent, storage.CachedEmbeddingsQuery{Text: ms[0].Content.Text})
				if err != nil || len(cs) != 1 || cs[0].MemoryID != ms[0].ID || cs[0].LevenshteinScore != 0 {
					t.Fatalf("cached embeddings: %+v %v", cs, err)
				}
				return ms[0].Content.Text
			},
		},
		{
			name: "room.name",
			store: func(t *testing.T, s *Store, agent, v string) error {
				return s.UpsertRoom(ctx, agent, sdk.Room{ID: room, Name: v, Metadata: map[string]any{"topic": v}})
			},
			load: func(t *testing.T, s *Store, agent string) string {
				rs, err := s.GetRooms(ctx, agent, storage.RoomQuery{IDs: []string{room}})
				if err != nil || len(rs) != 1 || rs[0].Metadata["topic"] != rs[0].Name {
					t.Fatal(rs, err)
				}
				return rs[0].Name
			},
		},
		{
			name: "world.serverId",
			store: func(t *testing.T, s *Store, agent, v string) error {
				return s.UpsertWorld(ctx, agent, sdk.World{ID: room, ServerID: v})
			},
			load: func(t *testing.T, s *Store, agent string) string {
				ws, err := s.GetWorlds(ctx, agent, []string{room})
				if err != nil || len(ws) != 1 {
					t.Fatal(ws, err)
				}
				return ws[0].ServerID
			},
		},
		{
			name: "log.body.prompt",
			store: func(t *testing.T, s *Store, agent, v string) error {
				_, err := s.AddLog(ctx, storage.LogEntry{AgentID: agent, Type: "useModel", Body: map[string]any{"prompt": v}})
				return err
			},
			load: func(t *testing.T, s *Store, agent string) string {
				ls, err := s.GetLogs(ctx, agent, storage.LogQuery{})
				if err != nil || len(ls) != 1 {
					t.Fatal(ls, err)
				}
				return ls[0].Body["prompt"].(string)
			},
		},
		{
			name: "log.type",
			key:  true,
			store: func(t *testing.T, s *Store, agent, v string) error {
				_, err := s.AddLog(ctx, storage.LogEntry{AgentID: agent, Type: v})
				return err
			},
			load: func(t *testing.T, s *Store, agent string) string {
				ls, err := s.GetLogs(ctx, agent, storage.LogQuery{})
				if err != nil || len(ls) != 1 {
					t.Fatal(ls, err)
				}
				return ls[0].Type
			},
		},
		{
			name: "key",
			key:  true,
			store: func(t *testing.T, s *Store, agent, v string) error {
				return s.SetCache(ctx, agent, v, []byte(v), 0)
			},
			load: func(t *testing.T, s *Store, agent string) string {
				rows, err := s.read().query(ctx, `SELECT key FROM cache WHERE agent_id = ?`, agent)
				if err != nil {
					t.Fatal(err)
				}
				defer rows.Close()
				rows.Next()
				var k string
				if err := rows.Scan(&k); err != nil {
					t.Fatal(err)
				}
				v, ok, err := s.GetCache(ctx, agent, k)
				if err != nil || !ok || string(v) != k {
					t.Fatalf("cache value %q %v %v", v, ok, err)
				}
				return k
			},
		},
		{
			name: "agent.name",
			key:  true,
			store: func(t *testing.T, s *Store, agent, v string) error {
				_, _, err := s.EnsureAgent(ctx, dbplugin.AgentRecord{ID: agent, Name: v})
				return err
			},
			load: func(t *testing.T, s *Store, agent string) string {
				as, err := s.GetAgents(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, a := range as {
					if a.ID == agent {
						return a.Name
					}
				}
				t.Fatal("agent not found")
				return ""
			},
		},
	}
}

func TestBadInputText(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		for _, f := range textFields() {
			for _, h := range hostile {
				t.Run(f.name+"/"+h.name, func(t *testing.T) {
					// An agent of its own per case: nothing else is seen.
					agent := newAgent(t, s)
					err := f.store(t, s, agent, h.v)
					want := verdict(s, f, h.v)
					if want != "" {
						wantErr(t, err, f.name, want)
						if !errors.Is(err, ErrInvalid) {
							t.Fatalf("%v does not match ErrInvalid", err)
						}
						return
					}
					if err != nil {
						t.Fatal(err)
					}
					if got := f.load(t, s, agent); got != h.v {
						t.Fatalf("read back %d bytes %q…, stored %d bytes %q…", len(got), truncate(got), len(h.v), truncate(h.v))
					}
				})
			}
		}
	})
}

func keyField(f field) field {
	f.key = true
	return f
}

func TestBadInputCharacterJSON(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		for _, c := range []struct {
			json string
			want string // "" to store, else the error
		}{
			{`{"name":"x","bio":"'); DROP TABLE agents; --"}`, ""},
			{`{"bio":"\u0000"}`, map[bool]string{true: "", false: "agent.character: contains a NUL character"}[s.d.allowNUL]},
			{`{"bio":"\\u0000"}`, ""},
			{"{\"bio\":\"\xff\"}", "agent.character: is not valid UTF-8"},
			{`[1,`, "agent.character: is not valid JSON"},
		} {
			a, _, err := s.EnsureAgent(ctx, dbplugin.AgentRecord{Name: "c" + uuid.NewString(), CharacterJSON: []byte(c.json)})
			if c.want != "" {
				wantErr(t, err, c.want)
				continue
			}
			if err != nil {
				t.Fatal(c.json, err)
			}
			if s.d == sqliteDialect && string(a.CharacterJSON) != c.json {
				t.Fatalf("character %s read back as %s", c.json, a.CharacterJSON)
			}
		}
	})
}

func TestBadInputIDs(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		agent := newAgent(t, s)
		room, user := uuid.NewString(), uuid.NewString()
		withMemory := func(edit func(m *sdk.Memory)) error {
			m := message(room, user, "x")
			edit(m)
			_, _, err := s.CreateMemory(ctx, agent, m, sdk.TableMessages, false)
			return err
		}
		cases := []struct {
			name string
			err  error
			want string
		}{
			{"memory room", withMemory(func(m *sdk.Memory) { m.RoomID = "x" }), `create memory`},
			{"memory room named", withMemory(func(m *sdk.Memory) { m.RoomID = "x" }), `memory.roomId: "x" is not a UUID`},
			{"memory room empty", withMemory(func(m *sdk.Memory) { m.RoomID = "" }), `memory.roomId: is empty`},
			{"memory entity", withMemory(func(m *sdk.Memory) { m.EntityID = "' OR 1=1 --" }), `memory.entityId: "' OR 1=1 --" is not a UUID`},
			{"memory world", withMemory(func(m *sdk.Memory) { m.WorldID = uuid.NewString() + "0" }), `memory.worldId`},
			{"memory id", withMemory(func(m *sdk.Memory) { m.ID = "{" + uuid.NewString() + "}" }), `memory.id`},
			{"memory id 32 hex", withMemory(func(m *sdk.Memory) { m.ID = strings.ReplaceAll(uuid.NewString(), "-", "") }), `memory.id`},
			{"agent", func() error { _, _, err := s.CreateMemory(ctx, "x", message(room, user, ""), "m", false); return err }(), `agentId: "x" is not a UUID`},
			{"get memories", func() error { _, err := s.GetMemories(ctx, agent, storage.MemoryQuery{RoomID: "x"}); return err }(), `query.roomId: "x"`},
			{"get memories rooms", func() error {
				_, err := s.GetMemories(ctx, agent, storage.MemoryQuery{RoomIDs: []string{room, "x"}})
				return err
			}(), `query.roomIds[1]: "x"`},
			{"by ids", func() error { _, err := s.GetMemoriesByIDs(ctx, agent, []string{"x"}, ""); return err }(), `ids[0]: "x"`},
			{"search", func() error {
				_, err := s.SearchMemories(ctx, agent, storage.SearchQuery{Embedding: []float32{1}, EntityID: "x"})
				return err
			}(), `query.entityId: "x"`},
			{"delete", func() error { _, err := s.DeleteMemory(ctx, agent, "x"); return err }(), `id: "x"`},
			{"count", func() error { _, err := s.CountMemories(ctx, agent, "x", "", false); return err }(), `roomId: "x"`},
			{"connection room", s.EnsureConnection(ctx, agent, storage.Connection{Room: sdk.Room{ID: "x"}}), `room.id: "x"`},
			{"connection world", s.EnsureConnection(ctx, agent, storage.Connection{Room: sdk.Room{ID: room}, World: sdk.World{ID: "x"}}), `world.id: "x"`},
			{"connection room world", s.EnsureConnection(ctx, agent, storage.Connection{Room: sdk.Room{ID: room, WorldID: "x"}}), `room.worldId: "x"`},
			{"entities", func() error { _, err := s.GetEntities(ctx, agent, []string{"x"}); return err }(), `ids[0]: "x"`},
			{"rooms", func() error { _, err := s.GetRooms(ctx, agent, storage.RoomQuery{ParticipantID: "x"}); return err }(), `query.participantId: "x"`},
			{"participant", s.SetParticipantState(ctx, agent, "x", user, ""), `roomId: "x"`},
			{"log", func() error {
				_, err := s.AddLog(ctx, storage.LogEntry{AgentID: agent, Type: "t", RoomID: "x"})
				return err
			}(), `log.roomId: "x"`},
			{"cache", s.SetCache(ctx, "x", "k", nil, 0), `agentId: "x"`},
			{"long", withMemory(func(m *sdk.Memory) { m.RoomID = strings.Repeat("y", 1000) }), `is not a UUID`},
		}
		for _, c := range cases {
			if c.err == nil {
				t.Errorf("%s: no error", c.name)
				continue
			}
			if !strings.Contains(c.err.Error(), c.want) || !errors.Is(c.err, ErrInvalid) {
				t.Errorf("%s: %v, want %q", c.name, c.err, c.want)
			}
		}
		// A UUID in capitals is a UUID, stored and found exactly as given.
		upper := strings.ToUpper(uuid.NewString())
		m := message(room, user, "upper")
		m.ID = upper
		mustCreate(t, s, agent, m, sdk.TableMessages, false)
		got, err := s.GetMemoriesByIDs(ctx, agent, []string{upper}, "")
		if err != nil || len(got) != 1 || got[0].ID != upper {
			t.Fatal(got, err)
		}
	})
}

// TestSizeLimits: one stored document is at most MaxDocument bytes, with an
// error naming the field; a listing stops reading once its documents pass
// maxListing bytes, however many rows it was asked for.
func TestSizeLimits(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		agent := newAgent(t, s)
		room, entity := uuid.NewString(), uuid.NewString()
		_, _, err := s.CreateMemory(ctx, agent, message(room, entity, strings.Repeat("x", MaxDocument+1)), "messages", false)
		wantErr(t, err, "memory.content", "over the limit", "2 MiB")
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("%v does not match ErrInvalid", err)
		}
		big := &sdk.Memory{RoomID: room, EntityID: entity, Content: sdk.Content{Text: "small"},
			Metadata: map[string]any{"blob": strings.Repeat("y", MaxDocument)}}
		_, _, err = s.CreateMemory(ctx, agent, big, "messages", false)
		wantErr(t, err, "memory.metadata", "over the limit")
		_, err = s.AddLogs(ctx, []storage.LogEntry{{AgentID: agent, RoomID: room, EntityID: entity, Type: "run", Body: map[string]any{"x": strings.Repeat("z", MaxDocument)}}})
		wantErr(t, err, "over the limit")

		// 40 memories of 0.9 MiB: asked for all, a listing returns what
		// fits in maxListing, newest first.
		text := strings.Repeat("m", 900<<10) // 0.9 MiB
		for i := range 40 {
			m := message(room, entity, text)
			m.CreatedAt = int64(1000 + i)
			mustCreate(t, s, agent, m, "messages", false)
		}
		got, err := s.GetMemories(ctx, agent, storage.MemoryQuery{RoomID: room, Count: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if want := maxListing / (900 << 10); len(got) < want-1 || len(got) > want+1 {
			t.Fatalf("a listing of 40 documents of 0.9 MiB returned %d, want about %d (%d bytes)", len(got), want, maxListing)
		}
		if got[0].CreatedAt != 1039 {
			t.Errorf("the listing should keep the newest first, starts at %d", got[0].CreatedAt)
		}
	})
}
