package sqlstore

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/dbplugin"
	"github.com/agenthost/agenthost/sdk/storage"
	"github.com/google/uuid"
)

// connect stores a room with the given entities as participants.
func connect(t *testing.T, s *Store, agent, world, room string, entities ...string) {
	t.Helper()
	for _, e := range entities {
		err := s.EnsureConnection(ctx, agent, storage.Connection{
			World: sdk.World{ID: world}, Room: sdk.Room{ID: room, Type: sdk.ChannelGroup},
			Entity: sdk.Entity{ID: e, Names: []string{"name-" + e[:4]}},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestAgentUpdateDelete(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		a, _, err := s.EnsureAgent(ctx, dbplugin.AgentRecord{Name: "Ada", Enabled: true,
			CharacterJSON: []byte(`{"name":"Ada","bio":["x"],"settings":{"model":"a","voice":{"id":1,"speed":2},"drop":true}}`)})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.GetAgent(ctx, a.ID)
		if err != nil || got.Name != "Ada" {
			t.Fatalf("get agent: %+v %v", got, err)
		}
		_, err = s.GetAgent(ctx, uuid.NewString())
		if !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("unknown agent: %v", err)
		}
		// Settings merge deeply; null deletes.
		off := false
		up, err := s.UpdateAgent(ctx, a.ID, dbplugin.AgentUpdate{Enabled: &off,
			CharacterPatch: []byte(`{"settings":{"model":"b","voice":{"speed":3},"drop":null},"topics":["go"]}`)})
		if err != nil {
			t.Fatal(err)
		}
		want := `{"bio":["x"],"name":"Ada","settings":{"model":"b","voice":{"id":1,"speed":3}},"topics":["go"]}`
		if !jsonEqual(t, up.CharacterJSON, []byte(want)) || up.Enabled {
			t.Fatalf("updated = %s enabled=%v, want %s", up.CharacterJSON, up.Enabled, want)
		}
		// A new name reaches the character, and the other way round.
		name := "Ada Lovelace"
		up, err = s.UpdateAgent(ctx, a.ID, dbplugin.AgentUpdate{Name: &name})
		if err != nil || up.Name != name || !jsonEqual(t, up.CharacterJSON, []byte(`{"bio":["x"],"name":"Ada Lovelace","settings":{"model":"b","voice":{"id":1,"speed":3}},"topics":["go"]}`)) {
			t.Fatalf("rename: %+v %s %v", up, up.CharacterJSON, err)
		}
		up, err = s.UpdateAgent(ctx, a.ID, dbplugin.AgentUpdate{CharacterPatch: []byte(`{"name":"Countess"}`)})
		if err != nil || up.Name != "Countess" {
			t.Fatalf("rename through the patch: %+v %v", up, err)
		}
		other := newAgent(t, s)
		taken := "Countess"
		_, err = s.UpdateAgent(ctx, other, dbplugin.AgentUpdate{Name: &taken})
		wantErr(t, err, "agent.name", "another agent is named")
		_, err = s.UpdateAgent(ctx, a.ID, dbplugin.AgentUpdate{CharacterPatch: []byte(`{"x":`)})
		wantErr(t, err, "characterPatch", "not valid JSON")
		_, err = s.UpdateAgent(ctx, uuid.NewString(), dbplugin.AgentUpdate{Enabled: &off})
		if !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("update unknown: %v", err)
		}

		// Deleting an agent deletes everything it stores.
		room, user := uuid.NewString(), uuid.NewString()
		connect(t, s, a.ID, uuid.NewString(), room, user)
		mustCreate(t, s, a.ID, message(room, user, "hi"), sdk.TableMessages, false)
		if _, _, err := s.CreateComponent(ctx, a.ID, sdk.Component{EntityID: user, Type: "contact"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateTask(ctx, a.ID, storage.Task{Name: "t"}); err != nil {
			t.Fatal(err)
		}
		if err := s.SetCache(ctx, a.ID, "k", []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
		ok, err := s.DeleteAgent(ctx, a.ID)
		if err != nil || !ok {
			t.Fatalf("delete: %v %v", ok, err)
		}
		for _, table := range []string{"memories", "entities", "rooms", "worlds", "participants", "components", "tasks", "cache", "logs"} {
			var n int
			if err := s.read().queryRow(ctx, `SELECT count(*) FROM `+table+` WHERE agent_id = ?`, a.ID).Scan(&n); err != nil || n != 0 {
				t.Errorf("%s rows left: %d %v", table, n, err)
			}
		}
		if ok, err := s.DeleteAgent(ctx, a.ID); err != nil || ok {
			t.Fatalf("second delete: %v %v", ok, err)
		}
		if _, err := s.GetAgent(ctx, other); err != nil {
			t.Fatalf("the other agent must stay: %v", err)
		}
	})
}

func TestUpdateMemory(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		agent := newAgent(t, s)
		room, user := uuid.NewString(), uuid.NewString()
		m := message(room, user, "first")
		m.Metadata = map[string]any{"type": "message", "keep": "yes", "drop": 1}
		m.Embedding = unit(4, 0, 0)
		id := mustCreate(t, s, agent, m, sdk.TableMessages, false)

		found, err := s.UpdateMemory(ctx, agent, storage.MemoryUpdate{ID: id, Content: &sdk.Content{Text: "edited", Source: "api"},
			Metadata: map[string]any{"drop": nil, "added": true}, Embedding: unit(4, 1, 0)})
		if err != nil || !found {
			t.Fatalf("update: %v %v", found, err)
		}
		got, _ := s.GetMemoriesByIDs(ctx, agent, []string{id}, "")
		if len(got) != 1 {
			t.Fatal(got)
		}
		g := got[0]
		if g.Content.Text != "edited" || g.Content.Source != "api" || g.CreatedAt != m.CreatedAt {
			t.Fatalf("content %+v created %d/%d", g.Content, g.CreatedAt, m.CreatedAt)
		}
		if !reflect.DeepEqual(g.Metadata, map[string]any{"type": "message", "keep": "yes", "added": true}) {
			t.Fatalf("metadata %v", g.Metadata)
		}
		if !reflect.DeepEqual(g.Embedding, unit(4, 1, 0)) {
			t.Fatalf("embedding %v", g.Embedding)
		}
		// Search sees the new vector.
		res, err := s.SearchMemories(ctx, agent, storage.SearchQuery{Embedding: unit(4, 1, 0), Threshold: 0.99})
		if err != nil || len(res) != 1 || res[0].ID != id {
			t.Fatalf("search after update: %+v %v", res, err)
		}
		// Only the metadata: the rest stays.
		if _, err := s.UpdateMemory(ctx, agent, storage.MemoryUpdate{ID: id, Metadata: map[string]any{"keep": "still"}}); err != nil {
			t.Fatal(err)
		}
		got, _ = s.GetMemoriesByIDs(ctx, agent, []string{id}, "")
		if got[0].Content.Text != "edited" || got[0].Metadata["keep"] != "still" || len(got[0].Embedding) != 4 {
			t.Fatalf("partial update: %+v", got[0])
		}
		_, err = s.UpdateMemory(ctx, agent, storage.MemoryUpdate{ID: id, Embedding: unit(3, 0, 0)})
		wantErr(t, err, "memory.embedding", "has 3 dimensions", "stores embeddings of 4")
		if found, err := s.UpdateMemory(ctx, agent, storage.MemoryUpdate{ID: id, ClearEmbedding: true}); err != nil || !found {
			t.Fatal(found, err)
		}
		if res, _ := s.SearchMemories(ctx, agent, storage.SearchQuery{Embedding: unit(4, 1, 0)}); len(res) != 0 {
			t.Fatalf("a cleared embedding is still found: %+v", res)
		}
		found, err = s.UpdateMemory(ctx, agent, storage.MemoryUpdate{ID: uuid.NewString(), Content: &sdk.Content{Text: "x"}})
		if err != nil || found {
			t.Fatalf("unknown memory: %v %v", found, err)
		}
		_, err = s.UpdateMemory(ctx, agent, storage.MemoryUpdate{ID: "nope"})
		wantErr(t, err, "memory.id", `"nope" is not a UUID`)
		_, err = s.UpdateMemory(ctx, agent, storage.MemoryUpdate{ID: id, Content: &sdk.Content{Text: "bad \xff"}})
		wantErr(t, err, "memory.content.text", "not valid UTF-8")
	})
}

func TestDeleteManyAndBatchedGets(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		agent := newAgent(t, s)
		rooms := []string{uuid.NewString(), uuid.NewString(), uuid.NewString()}
		user := uuid.NewString()
		var ids []string
		for i := 0; i < 30; i++ {
			m := message(rooms[i%3], user, "m")
			m.CreatedAt = int64(1000 + i)
			ids = append(ids, mustCreate(t, s, agent, m, sdk.TableMessages, i%2 == 0))
		}
		// Several rooms at once, newest first, one count for all.
		got, err := s.GetMemories(ctx, agent, storage.MemoryQuery{Table: sdk.TableMessages, RoomIDs: rooms[:2], Count: 5})
		if err != nil || len(got) != 5 {
			t.Fatalf("by room ids: %d %v", len(got), err)
		}
		for i, m := range got {
			if m.RoomID == rooms[2] || (i > 0 && m.CreatedAt > got[i-1].CreatedAt) {
				t.Fatalf("by room ids: %+v", got)
			}
		}
		if n, _ := s.CountMemories(ctx, agent, "", sdk.TableMessages, true); n != 15 {
			t.Fatalf("unique count %d", n)
		}
		n, err := s.DeleteManyMemories(ctx, agent, append(ids[:10], uuid.NewString()))
		if err != nil || n != 10 {
			t.Fatalf("delete many: %d %v", n, err)
		}
		if c, _ := s.CountMemories(ctx, agent, "", "", false); c != 20 {
			t.Fatalf("left %d", c)
		}
		// One bad id refuses the whole call: nothing is deleted.
		_, err = s.DeleteManyMemories(ctx, agent, []string{ids[10], "bad"})
		wantErr(t, err, "ids[1]", "is not a UUID")
		if c, _ := s.CountMemories(ctx, agent, "", "", false); c != 20 {
			t.Fatalf("a refused call deleted rows: %d left", c)
		}
		// Rooms of several participants.
		a, b := uuid.NewString(), uuid.NewString()
		connect(t, s, agent, "", rooms[0], a)
		connect(t, s, agent, "", rooms[1], b)
		connect(t, s, agent, "", rooms[2], uuid.NewString())
		rs, err := s.GetRooms(ctx, agent, storage.RoomQuery{ParticipantIDs: []string{a, b}})
		if err != nil || len(rs) != 2 || rs[0].ID != rooms[0] || rs[1].ID != rooms[1] {
			t.Fatalf("rooms of participants: %+v %v", rs, err)
		}
		es, err := s.GetEntitiesForRoom(ctx, agent, rooms[0])
		if err != nil || len(es) != 1 || es[0].ID != a { // the agent itself takes part but is no stored entity here
			t.Fatalf("entities for room: %+v %v", es, err)
		}
	})
}

func TestDeleteRoomWorldEntityParticipant(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		agent := newAgent(t, s)
		world, room1, room2 := uuid.NewString(), uuid.NewString(), uuid.NewString()
		u1, u2 := uuid.NewString(), uuid.NewString()
		connect(t, s, agent, world, room1, u1, u2)
		connect(t, s, agent, world, room2, u1)
		mustCreate(t, s, agent, message(room1, u1, "a"), sdk.TableMessages, false)
		mustCreate(t, s, agent, message(room2, u1, "b"), sdk.TableMessages, false)
		if _, err := s.AddLog(ctx, storage.LogEntry{AgentID: agent, RoomID: room1, Type: "run"}); err != nil {
			t.Fatal(err)
		}
		ok, err := s.RemoveParticipant(ctx, agent, room1, u2)
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		if ok, _ := s.RemoveParticipant(ctx, agent, room1, u2); ok {
			t.Fatal("removed twice")
		}
		if ps, _ := s.GetParticipants(ctx, agent, room1); len(ps) != 2 { // u1 and the agent
			t.Fatalf("participants %v", ps)
		}
		if n, err := s.DeleteRoom(ctx, agent, room1); err != nil || n != 1 {
			t.Fatal(n, err)
		}
		if c, _ := s.CountMemories(ctx, agent, room1, "", false); c != 0 {
			t.Fatal("memories of a deleted room left")
		}
		if ls, _ := s.GetLogs(ctx, agent, storage.LogQuery{RoomID: room1}); len(ls) != 0 {
			t.Fatal("logs of a deleted room left")
		}
		if ps, _ := s.GetParticipants(ctx, agent, room1); len(ps) != 0 {
			t.Fatal("participants of a deleted room left")
		}
		if c, _ := s.CountMemories(ctx, agent, room2, "", false); c != 1 {
			t.Fatal("another room lost its memories")
		}
		// An entity goes with its components, relationships, participations.
		if _, _, err := s.CreateComponent(ctx, agent, sdk.Component{EntityID: u1, Type: "x"}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.CreateRelationship(ctx, agent, storage.Relationship{SourceEntityID: u1, TargetEntityID: u2}); err != nil {
			t.Fatal(err)
		}
		if n, err := s.DeleteEntity(ctx, agent, u1); err != nil || n != 1 {
			t.Fatal(n, err)
		}
		if cs, _ := s.GetComponents(ctx, agent, storage.ComponentQuery{EntityIDs: []string{u1}}); len(cs) != 0 {
			t.Fatal("components left")
		}
		if rs, _ := s.GetRelationships(ctx, agent, storage.RelationshipQuery{EntityID: u2}); len(rs) != 0 {
			t.Fatal("relationships left")
		}
		if ps, _ := s.GetParticipants(ctx, agent, room2); len(ps) != 1 {
			t.Fatalf("participations left: %v", ps)
		}
		// A world goes with its rooms.
		if n, err := s.DeleteWorld(ctx, agent, world); err != nil || n != 1 {
			t.Fatal(n, err)
		}
		if rs, _ := s.GetRooms(ctx, agent, storage.RoomQuery{WorldID: world}); len(rs) != 0 {
			t.Fatalf("rooms of a deleted world: %+v", rs)
		}
		if c, _ := s.CountMemories(ctx, agent, "", "", false); c != 0 {
			t.Fatal("memories of a deleted world left")
		}
		if ws, _ := s.GetWorlds(ctx, agent, nil); len(ws) != 0 {
			t.Fatal("world left")
		}
	})
}

func TestComponents(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		agent := newAgent(t, s)
		world, room := uuid.NewString(), uuid.NewString()
		u1, u2 := uuid.NewString(), uuid.NewString()
		connect(t, s, agent, world, room, u1, u2)
		c := sdk.Component{EntityID: u1, WorldID: world, RoomID: room, SourceEntityID: u2, Type: "contact_info",
			Data: map[string]any{"telegram": "@ada", "nested": map[string]any{"n": 1.5}}}
		id, created, err := s.CreateComponent(ctx, agent, c)
		if err != nil || !created {
			t.Fatal(err)
		}
		c.ID = id
		if _, created, _ := s.CreateComponent(ctx, agent, c); created {
			t.Fatal("created twice")
		}
		if _, _, err := s.CreateComponent(ctx, agent, sdk.Component{EntityID: u2, Type: "other"}); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetComponents(ctx, agent, storage.ComponentQuery{EntityIDs: []string{u1}, Type: "contact_info", WorldID: world, SourceEntityID: u2})
		if err != nil || len(got) != 1 {
			t.Fatalf("get: %+v %v", got, err)
		}
		c.AgentID, c.CreatedAt = agent, got[0].CreatedAt
		if !reflect.DeepEqual(got[0], c) {
			t.Fatalf("got %+v\nwant %+v", got[0], c)
		}
		if all, _ := s.GetComponents(ctx, agent, storage.ComponentQuery{EntityIDs: []string{u1, u2}}); len(all) != 2 {
			t.Fatalf("batched: %+v", all)
		}
		if none, _ := s.GetComponents(ctx, agent, storage.ComponentQuery{EntityIDs: []string{u1}, Type: "contact_info", WorldID: uuid.NewString()}); len(none) != 0 {
			t.Fatal("world filter ignored")
		}
		c.Data = map[string]any{"telegram": "@lovelace"}
		if err := s.UpdateComponent(ctx, agent, c); err != nil {
			t.Fatal(err)
		}
		got, _ = s.GetComponents(ctx, agent, storage.ComponentQuery{EntityIDs: []string{u1}})
		if got[0].Data["telegram"] != "@lovelace" || got[0].Data["nested"] != nil {
			t.Fatalf("after update: %+v", got[0].Data)
		}
		err = s.UpdateComponent(ctx, agent, sdk.Component{ID: uuid.NewString(), EntityID: u1, Type: "x"})
		if !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("update unknown: %v", err)
		}
		_, _, err = s.CreateComponent(ctx, agent, sdk.Component{EntityID: uuid.NewString(), Type: "x"})
		if !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("component of an unknown entity: %v", err)
		}
		_, _, err = s.CreateComponent(ctx, agent, sdk.Component{EntityID: u1})
		wantErr(t, err, "component.type", "is empty")
		_, err = s.GetComponents(ctx, agent, storage.ComponentQuery{})
		wantErr(t, err, "query.entityIds", "is empty")
		if n, err := s.DeleteComponent(ctx, agent, id); err != nil || n != 1 {
			t.Fatal(n, err)
		}
	})
}

func TestRelationships(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		agent := newAgent(t, s)
		room := uuid.NewString()
		a, b, c := uuid.NewString(), uuid.NewString(), uuid.NewString()
		connect(t, s, agent, "", room, a, b, c)
		id, created, err := s.CreateRelationship(ctx, agent, storage.Relationship{SourceEntityID: a, TargetEntityID: b,
			Tags: []string{"friend", "colleague"}, Metadata: map[string]any{"interactions": 1.0}})
		if err != nil || !created {
			t.Fatal(err)
		}
		// One per direction: the second create reports the stored one.
		id2, created, err := s.CreateRelationship(ctx, agent, storage.Relationship{SourceEntityID: a, TargetEntityID: b, Tags: []string{"x"}})
		if err != nil || created || id2 != id {
			t.Fatalf("second create: %s %v %v", id2, created, err)
		}
		if _, _, err := s.CreateRelationship(ctx, agent, storage.Relationship{SourceEntityID: c, TargetEntityID: a, Tags: []string{"rival"}}); err != nil {
			t.Fatal(err)
		}
		// Either end, tags "any of".
		got, err := s.GetRelationships(ctx, agent, storage.RelationshipQuery{EntityID: a})
		if err != nil || len(got) != 2 {
			t.Fatalf("of a: %+v %v", got, err)
		}
		got, _ = s.GetRelationships(ctx, agent, storage.RelationshipQuery{EntityID: a, Tags: []string{"rival", "enemy"}})
		if len(got) != 1 || got[0].SourceEntityID != c {
			t.Fatalf("tag filter: %+v", got)
		}
		got, _ = s.GetRelationships(ctx, agent, storage.RelationshipQuery{SourceEntityID: a, TargetEntityID: b})
		if len(got) != 1 || !reflect.DeepEqual(got[0].Tags, []string{"friend", "colleague"}) || got[0].Metadata["interactions"] != 1.0 {
			t.Fatalf("one: %+v", got)
		}
		err = s.UpdateRelationship(ctx, agent, storage.Relationship{SourceEntityID: a, TargetEntityID: b, Tags: []string{"friend"},
			Metadata: map[string]any{"interactions": 2.0}})
		if err != nil {
			t.Fatal(err)
		}
		got, _ = s.GetRelationships(ctx, agent, storage.RelationshipQuery{SourceEntityID: a, TargetEntityID: b})
		if !reflect.DeepEqual(got[0].Tags, []string{"friend"}) || got[0].Metadata["interactions"] != 2.0 || got[0].ID != id {
			t.Fatalf("after update: %+v", got[0])
		}
		err = s.UpdateRelationship(ctx, agent, storage.Relationship{SourceEntityID: b, TargetEntityID: a})
		if !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("update of a missing direction: %v", err)
		}
		_, _, err = s.CreateRelationship(ctx, agent, storage.Relationship{SourceEntityID: a, TargetEntityID: uuid.NewString()})
		if !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("to an unknown entity: %v", err)
		}
		_, err = s.GetRelationships(ctx, agent, storage.RelationshipQuery{})
		wantErr(t, err, "query", "names no entity")
		_, _, err = s.CreateRelationship(ctx, agent, storage.Relationship{SourceEntityID: a, TargetEntityID: c, Tags: []string{"ok", "\xff"}})
		wantErr(t, err, "relationship.tags[1]", "not valid UTF-8")
	})
}

func TestTasks(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		agent := newAgent(t, s)
		room := uuid.NewString()
		id, err := s.CreateTask(ctx, agent, storage.Task{Name: "CHOOSE", Description: "pick one", RoomID: room,
			Tags: []string{"queue", "AWAITING_CHOICE"}, Metadata: map[string]any{"options": []any{map[string]any{"name": "a"}}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateTask(ctx, agent, storage.Task{Name: "REPEAT", Tags: []string{"queue", "repeat"},
			Metadata: map[string]any{"updateInterval": 1000.0}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateTask(ctx, agent, storage.Task{ID: id, Name: "again"}); err == nil {
			t.Fatal("a task id stored twice")
		}
		got, err := s.GetTask(ctx, agent, id)
		if err != nil || got.Name != "CHOOSE" || got.RoomID != room || got.CreatedAt == 0 || got.UpdatedAt != got.CreatedAt {
			t.Fatalf("get: %+v %v", got, err)
		}
		// Tags: every one of them.
		ts, _ := s.GetTasks(ctx, agent, storage.TaskQuery{Tags: []string{"queue"}})
		if len(ts) != 2 {
			t.Fatalf("queue: %+v", ts)
		}
		ts, _ = s.GetTasks(ctx, agent, storage.TaskQuery{Tags: []string{"queue", "repeat"}})
		if len(ts) != 1 || ts[0].Name != "REPEAT" {
			t.Fatalf("queue+repeat: %+v", ts)
		}
		ts, _ = s.GetTasks(ctx, agent, storage.TaskQuery{RoomID: room})
		if len(ts) != 1 || ts[0].ID != id {
			t.Fatalf("by room: %+v", ts)
		}
		ts, _ = s.GetTasks(ctx, agent, storage.TaskQuery{Name: "REPEAT"})
		if len(ts) != 1 {
			t.Fatalf("by name: %+v", ts)
		}
		desc := "picked"
		if err := s.UpdateTask(ctx, agent, id, storage.TaskUpdate{Description: &desc, Tags: []string{}, Metadata: map[string]any{"choice": "a"}}); err != nil {
			t.Fatal(err)
		}
		got, _ = s.GetTask(ctx, agent, id)
		if got.Description != "picked" || len(got.Tags) != 0 || got.Tags == nil || !reflect.DeepEqual(got.Metadata, map[string]any{"choice": "a"}) || got.Name != "CHOOSE" {
			t.Fatalf("after update: %+v", got)
		}
		if err := s.UpdateTask(ctx, agent, uuid.NewString(), storage.TaskUpdate{Description: &desc}); !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("update unknown: %v", err)
		}
		empty := ""
		wantErr(t, s.UpdateTask(ctx, agent, id, storage.TaskUpdate{Name: &empty}), "task.name", "is empty")
		if n, err := s.DeleteTask(ctx, agent, id); err != nil || n != 1 {
			t.Fatal(n, err)
		}
		if _, err := s.GetTask(ctx, agent, id); !errors.Is(err, sdk.ErrNotFound) {
			t.Fatalf("deleted task: %v", err)
		}
	})
}

func TestLogsEntityOffsetDelete(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		agent := newAgent(t, s)
		user := uuid.NewString()
		var ids []string
		for i := 0; i < 5; i++ {
			e := ""
			if i%2 == 0 {
				e = user
			}
			id, err := s.AddLog(ctx, storage.LogEntry{AgentID: agent, EntityID: e, Type: "action", CreatedAt: int64(100 + i), Body: map[string]any{"i": float64(i)}})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		ls, _ := s.GetLogs(ctx, agent, storage.LogQuery{EntityID: user})
		if len(ls) != 3 {
			t.Fatalf("by entity: %d", len(ls))
		}
		ls, _ = s.GetLogs(ctx, agent, storage.LogQuery{Count: 2, Offset: 1})
		if len(ls) != 2 || ls[0].ID != ids[3] || ls[1].ID != ids[2] {
			t.Fatalf("offset: %+v", ls)
		}
		if n, err := s.DeleteLog(ctx, agent, ids[4]); err != nil || n != 1 {
			t.Fatal(n, err)
		}
		if ls, _ := s.GetLogs(ctx, agent, storage.LogQuery{}); len(ls) != 4 || ls[0].ID != ids[3] {
			t.Fatalf("after delete: %+v", ls)
		}
		_, err := s.GetLogs(ctx, agent, storage.LogQuery{Offset: -1})
		wantErr(t, err, "query.offset", "is negative")
	})
}

// World roles and settings live in the world's metadata, as in elizaOS;
// an update keeps nested values exactly.
func TestWorldRolesAndSettings(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		agent := newAgent(t, s)
		owner := uuid.NewString()
		w := sdk.World{ID: uuid.NewString(), Name: "guild", ServerID: "123", Metadata: map[string]any{
			"ownership": map[string]any{"ownerId": owner},
			"roles":     map[string]any{owner: "OWNER", uuid.NewString(): "ADMIN"},
			"settings": map[string]any{"GREETING": map[string]any{"name": "Greeting", "value": "hi", "required": true,
				"secret": false, "dependsOn": []any{}}},
		}}
		if err := s.UpsertWorld(ctx, agent, w); err != nil {
			t.Fatal(err)
		}
		w.Metadata["roles"].(map[string]any)[owner] = "ADMIN"
		if err := s.UpsertWorld(ctx, agent, w); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetWorlds(ctx, agent, []string{w.ID})
		if err != nil || len(got) != 1 {
			t.Fatal(got, err)
		}
		w.AgentID = agent
		if !reflect.DeepEqual(got[0], w) {
			t.Fatalf("got %+v\nwant %+v", got[0], w)
		}
	})
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%v: %s", err, a)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return reflect.DeepEqual(x, y)
}
