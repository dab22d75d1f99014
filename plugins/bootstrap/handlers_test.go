package bootstrap

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
	"github.com/google/uuid"
)

// The event handlers over the real gRPC path with plugintest's Runtime as
// the host (its Runtime has no bulk delete, so CHANNEL_CLEARED's one-by-one
// path runs here; the end-to-end tests run the bulk one).

func (f *fixture) emit(t *testing.T, typ string, msg *sdk.Memory, payload map[string]any) error {
	t.Helper()
	return f.c.HandleEvent(context.Background(), agentID, sdk.Event{Type: typ, Source: "test", Message: msg, Payload: payload})
}

func (f *fixture) mustEmit(t *testing.T, typ string, msg *sdk.Memory, payload map[string]any) {
	t.Helper()
	if err := f.emit(t, typ, msg, payload); err != nil {
		t.Fatalf("%s: %v", typ, err)
	}
}

func (f *fixture) entity(t *testing.T, id string) *sdk.Entity {
	t.Helper()
	es, err := storage.For(f.a).GetEntities(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) == 0 {
		return nil
	}
	return &es[0]
}

func (f *fixture) world(t *testing.T, id string) *sdk.World {
	t.Helper()
	ws, err := storage.For(f.a).GetWorlds(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) == 0 {
		return nil
	}
	return &ws[0]
}

func scoped(id string) string { return sdk.CreateUniqueUUID(agentID, id) }

func TestEventSubscriptions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, func(sdk.ModelRequest) string { return "" })
	got := f.c.Manifest().Events
	for _, want := range []string{"MESSAGE_RECEIVED", "VOICE_MESSAGE_RECEIVED", "REACTION_RECEIVED", "MESSAGE_DELETED", "CHANNEL_CLEARED",
		"WORLD_JOINED", "WORLD_CONNECTED", "ENTITY_JOINED", "ENTITY_LEFT", "ENTITY_UPDATED", "POST_GENERATED"} {
		if !slices.Contains(got, want) {
			t.Errorf("bootstrap does not handle %s: %v", want, got)
		}
	}
}

func TestReactionStoredOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, func(sdk.ModelRequest) string { return "" })
	room, ann := uuid.NewString(), uuid.NewString()
	r := &sdk.Memory{ID: uuid.NewString(), EntityID: ann, RoomID: room, Content: sdk.Content{Text: "+1"}}
	f.mustEmit(t, sdk.EventReactionReceived, r, nil)
	f.mustEmit(t, sdk.EventReactionReceived, r, nil)
	// elizaOS's payload.message, with a platform's ids.
	f.mustEmit(t, sdk.EventReactionReceived, nil, map[string]any{"message": map[string]any{
		"id": "r-2", "entityId": "ann", "roomId": "chan", "content": map[string]any{"text": "<3", "inReplyTo": "m-1"}}})
	ms := f.rt.Memories()
	if len(ms) != 2 {
		t.Fatalf("want two reactions stored once each, got %+v", ms)
	}
	if m := ms[0]; m.Content.Text != "+1" || m.Table != sdk.TableMessages || m.AgentID != agentID || m.Content.Source != "test" || m.CreatedAt == 0 {
		t.Errorf("reaction: %+v", m)
	}
	if m := ms[1]; m.ID != scoped("r-2") || m.EntityID != scoped("ann") || m.RoomID != scoped("chan") || m.Content.InReplyTo != scoped("m-1") {
		t.Errorf("a platform's ids must become the agent's: %+v", m)
	}
	if err := f.emit(t, sdk.EventReactionReceived, &sdk.Memory{Content: sdk.Content{Text: "?"}}, nil); err == nil || !strings.Contains(err.Error(), "roomId") {
		t.Errorf("a reaction without a room should fail: %v", err)
	}
	if err := f.emit(t, sdk.EventReactionReceived, nil, nil); err == nil || !strings.Contains(err.Error(), "without a message") {
		t.Errorf("a reaction without a message should fail: %v", err)
	}
}

func TestMessageDeletedAndChannelCleared(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, func(sdk.ModelRequest) string { return "" })
	room, other, ann := uuid.NewString(), uuid.NewString(), uuid.NewString()
	var ids []string
	for i := 0; i < 5; i++ {
		ids = append(ids, f.rt.AddMemory(agentID, sdk.Memory{ID: uuid.NewString(), EntityID: ann, RoomID: room, Content: sdk.Content{Text: "m"}}))
	}
	f.rt.AddMemory(agentID, sdk.Memory{EntityID: ann, RoomID: room, Table: sdk.TableFacts, Content: sdk.Content{Text: "a fact"}})
	f.rt.AddMemory(agentID, sdk.Memory{EntityID: ann, RoomID: other, Content: sdk.Content{Text: "elsewhere"}})

	f.mustEmit(t, sdk.EventMessageDeleted, &sdk.Memory{ID: ids[0]}, nil)
	f.mustEmit(t, sdk.EventMessageDeleted, nil, map[string]any{"message": map[string]any{"id": ids[1]}})
	if n := len(f.rt.Memories()); n != 5 {
		t.Fatalf("want 2 of 7 memories deleted, %d left", n)
	}
	if err := f.emit(t, sdk.EventMessageDeleted, &sdk.Memory{RoomID: room}, nil); err == nil {
		t.Error("deleting a message without id should fail")
	}

	f.mustEmit(t, EventChannelCleared, nil, map[string]any{"roomId": room, "channelId": "general", "memoryCount": 3})
	var left []string
	for _, m := range f.rt.Memories() {
		left = append(left, m.Content.Text)
	}
	if strings.Join(left, "|") != "a fact|elsewhere" {
		t.Errorf("clearing the room should delete its messages only: %q", left)
	}
	if err := f.emit(t, EventChannelCleared, nil, map[string]any{"memoryCount": 3}); err == nil {
		t.Error("CHANNEL_CLEARED without a room should fail")
	}
}

func TestWorldJoinedSync(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, func(sdk.ModelRequest) string { return "" })
	ctx := context.Background()
	owner := uuid.NewString()
	world := uuid.NewString()
	f.mustEmit(t, sdk.EventWorldJoined, nil, map[string]any{
		"world": map[string]any{"id": world, "name": "Guild", "serverId": "g1", "metadata": map[string]any{"ownership": map[string]any{"ownerId": owner}}},
		"rooms": []any{
			map[string]any{"id": "c1", "name": "general", "type": "GROUP", "channelId": "c1"},
			map[string]any{"name": "random", "type": "GROUP", "channelId": "c2"},
			map[string]any{"name": "no id at all"},
		},
		"entities": []any{
			map[string]any{"id": owner, "names": []string{"Owner"}},
			map[string]any{"id": "u2", "names": []string{"Two"}, "metadata": map[string]any{"test": map[string]any{"id": "u2"}}},
			map[string]any{"id": agentID, "names": []string{"the agent itself"}},
		},
	})
	w := f.world(t, world)
	if w == nil || w.Name != "Guild" || w.ServerID != "g1" || ownerOf(w) != owner {
		t.Fatalf("world: %+v", w)
	}
	rooms, err := storage.For(f.a).GetRooms(ctx, storage.RoomQuery{WorldID: world})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]sdk.Room{}
	for _, r := range rooms {
		byID[r.ID] = r
	}
	if r := byID[scoped("c2")]; len(rooms) != 2 || byID[scoped("c1")].Name != "general" || r.Name != "random" || r.Source != "test" || r.ServerID != "g1" || r.ChannelID != "c2" {
		t.Fatalf("rooms: %+v", rooms)
	}
	parts, _ := storage.For(f.a).GetParticipants(ctx, scoped("c1"))
	for _, id := range []string{owner, scoped("u2"), agentID} {
		if !slices.Contains(parts, id) {
			t.Errorf("%s should take part in the first room: %v", id, parts)
		}
	}
	if e := f.entity(t, scoped("u2")); e == nil || e.Names[0] != "Two" {
		t.Errorf("member: %+v", e)
	}
	if e := f.entity(t, agentID); e != nil {
		t.Errorf("the agent is not a member of its own world: %+v", e)
	}

	// WORLD_CONNECTED with the platform's server id only, no rooms: the
	// world is found by it, renamed, its owner kept; members merged.
	f.mustEmit(t, EventWorldConnected, nil, map[string]any{
		"world":    map[string]any{"id": world, "name": "Guild 2"},
		"entities": []any{map[string]any{"id": "u2", "names": []string{"Deux"}, "metadata": map[string]any{"test": map[string]any{"name": "Deux"}}}},
	})
	w = f.world(t, world)
	if w.Name != "Guild 2" || w.ServerID != "g1" || ownerOf(w) != owner {
		t.Errorf("WORLD_CONNECTED lost the stored world: %+v", w)
	}
	e := f.entity(t, scoped("u2"))
	if blk, _ := e.Metadata["test"].(map[string]any); strings.Join(e.Names, ",") != "Two,Deux" || blk["id"] != "u2" || blk["name"] != "Deux" {
		t.Errorf("merged member: %+v", e)
	}
	if err := f.emit(t, sdk.EventWorldJoined, nil, map[string]any{"rooms": []any{}}); err == nil || !strings.Contains(err.Error(), "without a world") {
		t.Errorf("WORLD_JOINED without a world: %v", err)
	}
	if err := f.emit(t, sdk.EventWorldJoined, nil, map[string]any{"world": "not an object"}); err == nil {
		t.Error("a malformed payload should fail")
	}
}

func TestEntityJoinedUpdatedLeft(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, func(sdk.ModelRequest) string { return "" })
	ctx := context.Background()
	world := uuid.NewString()
	f.mustEmit(t, sdk.EventEntityJoined, nil, map[string]any{"entityId": "u1", "worldId": world, "roomId": "c1",
		"metadata": map[string]any{"originalId": "u1", "username": "uno", "displayName": "Uno", "type": "group", "roles": []string{"mod"}}})
	id := scoped("u1")
	e := f.entity(t, id)
	if e == nil || strings.Join(e.Names, ",") != "Uno,uno" || e.Metadata["status"] != entityActive {
		t.Fatalf("joined: %+v", e)
	}
	blk, _ := e.Metadata["test"].(map[string]any)
	if blk["id"] != "u1" || blk["userName"] != "uno" || blk["name"] != "Uno" || blk["roles"] == nil || blk["type"] != nil {
		t.Errorf("the platform's details: %+v", blk)
	}
	room, err := storage.For(f.a).GetRoom(ctx, scoped("c1"))
	if err != nil || room.Type != sdk.ChannelGroup || room.WorldID != world || room.Source != "test" {
		t.Errorf("room: %+v %v", room, err)
	}
	if parts, _ := storage.For(f.a).GetParticipants(ctx, scoped("c1")); !slices.Contains(parts, id) {
		t.Errorf("participants: %v", parts)
	}

	f.mustEmit(t, EventEntityUpdated, nil, map[string]any{"entityId": id, "metadata": map[string]any{"displayName": "Uno Uno"}})
	e = f.entity(t, id)
	if blk, _ := e.Metadata["test"].(map[string]any); !slices.Contains(e.Names, "Uno Uno") || blk["userName"] != "uno" || blk["name"] != "Uno Uno" {
		t.Errorf("updated: %+v", e)
	}

	f.mustEmit(t, EventEntityLeft, nil, map[string]any{"entityId": id, "worldId": world})
	e = f.entity(t, id)
	if e.Metadata["status"] != entityInactive || e.Metadata["leftAt"] == nil || !slices.Contains(e.Names, "Uno Uno") {
		t.Errorf("left: %+v", e)
	}
	// Leaving unknown: nothing to mark, no error.
	f.mustEmit(t, EventEntityLeft, nil, map[string]any{"entityId": uuid.NewString()})
	if err := f.emit(t, EventEntityLeft, nil, nil); err == nil {
		t.Error("ENTITY_LEFT without an entity should fail")
	}
	if err := f.emit(t, sdk.EventEntityJoined, nil, map[string]any{"worldId": world}); err == nil {
		t.Error("ENTITY_JOINED without an entity should fail")
	}

	// A user opening a DM owns its world; a second one does not take it.
	f.mustEmit(t, sdk.EventEntityJoined, nil, map[string]any{"entityId": "u2", "serverId": "dm-u2", "channelId": "dm-u2", "type": "DM"})
	dm := f.world(t, scoped("dm-u2"))
	if dm == nil || ownerOf(dm) != scoped("u2") || roleOf(dm, scoped("u2")) != RoleOwner || dm.Metadata["settings"] == nil {
		t.Fatalf("DM world: %+v", dm)
	}
	f.mustEmit(t, sdk.EventEntityJoined, nil, map[string]any{"entityId": "u3", "serverId": "dm-u2", "channelId": "dm-u2", "type": "DM"})
	if dm = f.world(t, scoped("dm-u2")); ownerOf(dm) != scoped("u2") || roleOf(dm, scoped("u3")) != RoleNone {
		t.Errorf("the DM's owner changed: %+v", dm)
	}
}

func TestVoiceMessageRunsThePipeline(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, func(req sdk.ModelRequest) string { return xmlReply("heard you") })
	room, world, ann := uuid.NewString(), uuid.NewString(), uuid.NewString()
	f.connect(t, room, world, ann, "Ann", sdk.ChannelVoiceDM)
	msg := f.message(room, world, ann, "hello by voice", sdk.ChannelVoiceDM)
	msg.Content.Source = ""
	f.mustEmit(t, EventVoiceMessageReceived, msg, nil)
	if res := f.rt.Responses(); len(res) != 1 || res[0].Text != "heard you" || res[0].Source != "test" {
		t.Fatalf("responses: %+v", res)
	}
	waitRunsEnded(t, f, 1)
	if s, e, _ := runsEnded(f.rt.Events()); s != 1 || e != 1 {
		t.Errorf("runs: started %d, ended %d", s, e)
	}
	var texts []string
	for _, m := range f.rt.Memories() {
		texts = append(texts, m.Content.Text)
	}
	if strings.Join(texts, "|") != "hello by voice|heard you" {
		t.Errorf("stored: %q", texts)
	}
}

func TestPostGenerated(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var prompts []string
	var calls atomic.Int32
	f := newFixture(t, nil, func(req sdk.ModelRequest) string {
		mu.Lock()
		prompts = append(prompts, req.Prompt)
		mu.Unlock()
		switch calls.Add(1) {
		case 1:
			return "<response><thought>t</thought><post>As an AI, I cannot write posts.</post></response>"
		case 2:
			return "```\n<response><thought>bread</thought><post>'fresh bread,\\nwarm hands'</post></response>\n```"
		}
		return "a plain post about rye"
	})
	f.mustEmit(t, EventPostGenerated, nil, map[string]any{"userId": "me", "source": "test"})
	sent := f.rt.Sent()
	if len(sent) != 1 {
		t.Fatalf("want one post sent, got %+v", sent)
	}
	s := sent[0]
	if s.Content.Text != "fresh bread,\nwarm hands" || s.Content.ChannelType != sdk.ChannelFeed || s.Content.Extra["type"] != "post" || s.Content.Thought != "bread" {
		t.Errorf("post: %+v", s.Content)
	}
	feed := scoped("me-home")
	if s.Target.Source != "test" || s.Target.RoomID != feed || s.Target.ChannelID != "me-home" || s.Target.ServerID != "me" {
		t.Errorf("target: %+v", s.Target)
	}
	room, err := storage.For(f.a).GetRoom(context.Background(), feed)
	if err != nil || room.Type != sdk.ChannelFeed || room.Name != "Eliza's Feed" || room.WorldID != scoped("me") {
		t.Errorf("feed room: %+v %v", room, err)
	}
	if w := f.world(t, scoped("me")); w == nil || w.Name != "Eliza's Feed" || w.ServerID != "me" {
		t.Errorf("feed world: %+v", w)
	}
	ms := f.rt.Memories()
	if len(ms) != 1 || ms[0].RoomID != feed || ms[0].EntityID != agentID || ms[0].Content.Text != "fresh bread,\nwarm hands" {
		t.Errorf("stored: %+v", ms)
	}
	mu.Lock()
	if len(prompts) != 2 || !strings.Contains(prompts[0], "<post>") || strings.Contains(prompts[0], "was a refusal") || !strings.Contains(prompts[1], "was a refusal") {
		t.Errorf("prompts: %q", prompts)
	}
	mu.Unlock()

	// A target by source name, and a run the event names: the target wins.
	f.mustEmit(t, EventPostGenerated, nil, map[string]any{"userId": "me", "source": "test", "callback": "test"})
	if sent = f.rt.Sent(); len(sent) != 2 || sent[1].Content.Text != "a plain post about rye" || sent[1].Target.ChannelID != "me-home" {
		t.Errorf("second post: %+v", sent)
	}
	// The same post again is asked for again, then given up.
	err = f.emit(t, EventPostGenerated, nil, map[string]any{"userId": "me", "source": "test"})
	if err == nil || !strings.Contains(err.Error(), "repeated a recent post") {
		t.Errorf("a repeated post: %v", err)
	}
	if n := len(f.rt.Sent()); n != 2 {
		t.Errorf("a repeated post was sent: %d", n)
	}
	// Through the run the event names.
	if err := f.c.HandleEvent(context.Background(), agentID, sdk.Event{Type: EventPostGenerated, RunID: uuid.NewString(),
		Payload: map[string]any{"userId": "other", "source": "test"}}); err != nil {
		t.Fatal(err)
	}
	if res := f.rt.Responses(); len(res) != 1 || res[0].Text != "a plain post about rye" {
		t.Errorf("responses: %+v", res)
	}
}

func TestPostParsing(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"<response><thought>t</thought><post>  \"quoted\"  </post></response>": "quoted",
		"<response><text>from text</text></response>":                          "from text",
		"plain words": "plain words",
		"<response><thought>only a thought</thought></response>": "",
		"<broken>":                "",
		`<post>a\n\n\n\nb</post>`: "a\n\nb",
		"`'nested'`":              "nested",
	} {
		if got, _ := parsePost(in); got != want {
			t.Errorf("parsePost(%q) = %q, want %q", in, got, want)
		}
	}
	for s, want := range map[string]bool{
		"I'm sorry, but I can't help with that.":   true,
		"I cannot create that kind of content":     true,
		"As an AI language model I have no views":  true,
		"I am unable to assist with this request.": true,
		"That would go against my guidelines.":     true,
		"I can't wait for the weekend bake":        false,
		"bread is a promise kept":                  false,
	} {
		if got := isRefusal(s); got != want {
			t.Errorf("isRefusal(%q) = %v", s, got)
		}
	}
}

func TestAgentScoped(t *testing.T) {
	t.Parallel()
	a := &sdk.Agent{ID: agentID}
	id := uuid.NewString()
	if agentScoped(a, id) != id || agentScoped(a, strings.ToUpper(id)) != id {
		t.Error("a UUID is the agent's already")
	}
	if agentScoped(a, "chan-1") != sdk.CreateUniqueUUID(agentID, "chan-1") || agentScoped(a, " ") != "" {
		t.Error("a platform id is scoped; blank stays blank")
	}
}
