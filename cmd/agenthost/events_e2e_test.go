//go:build linux

package main

// End-to-end tests of bootstrap's event handlers other than
// MESSAGE_RECEIVED: the scripted test plugin emits each event as a
// platform plugin would (through the host, to the real bootstrap process),
// and the tests check what was stored, changed or deleted through the HTTP
// API (entities, which have no HTTP API, through the scripted plugin) and
// what was sent through the platform's outbox.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/internal/testwait"
	"github.com/agenthost/agenthost/sdk"
)

// eventAgent is a scripted agent whose platform also emits events
// (SCRIPTED_EVENTS) and reports outcomes (SCRIPTED_RESULTS).
type eventAgent struct {
	*bootAgent
	events, results string
	seq             int
	d               *daemon
}

func newEventAgent(t *testing.T, name string, rules []rule, settings map[string]any) *eventAgent {
	t.Helper()
	b := newBootAgent(t, name, rules, settings)
	dir := t.TempDir()
	e := &eventAgent{bootAgent: b, events: filepath.Join(dir, "events"), results: filepath.Join(dir, "results.jsonl")}
	if err := os.Mkdir(e.events, 0o755); err != nil {
		t.Fatal(err)
	}
	b.settings["SCRIPTED_EVENTS"], b.settings["SCRIPTED_RESULTS"] = e.events, e.results
	return e
}

// start runs the daemon with the agent; extra adds top-level character
// fields (postExamples, style).
func (e *eventAgent) start(extra map[string]any) {
	e.t.Helper()
	ch := map[string]any{"name": e.name, "bio": []string{e.name + " is a test agent."}, "plugins": e.plugins, "settings": e.settings}
	for k, v := range extra {
		ch[k] = v
	}
	e.d = startDaemon(e.t, daemonOpts{pluginDir: pluginDirWith(e.t, bins.scripted), characters: []string{writeCharacter(e.t, ch)}})
}

// do runs ops on the platform, in order, and returns their outcomes.
func (e *eventAgent) do(ops ...map[string]any) []map[string]any {
	e.t.Helper()
	e.seq++
	name := fmt.Sprintf("%04d.json", e.seq)
	raw, err := json.Marshal(ops)
	if err != nil {
		e.t.Fatal(err)
	}
	tmp := filepath.Join(e.events, name+".tmp")
	if err := os.WriteFile(tmp, raw, 0o644); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(e.events, name)); err != nil {
		e.t.Fatal(err)
	}
	var out []map[string]any
	testwait.For(e.t, 60*time.Second, "the outcome of "+name, func() bool {
		out = out[:0]
		for _, r := range readJSONL(e.t, e.results) {
			if r["file"] == name {
				out = append(out, r)
			}
		}
		return len(out) == len(ops)
	})
	return out
}

// emit emits one event and fails the test if a handler failed.
func (e *eventAgent) emit(typ string, msg *sdk.Memory, payload map[string]any) {
	e.t.Helper()
	op := map[string]any{"emit": typ, "payload": payload}
	if msg != nil {
		op["message"] = msg
	}
	if r := e.do(op)[0]; r["error"] != nil {
		e.t.Fatalf("%s failed: %v", typ, r["error"])
	}
}

// emitErr emits one event and returns the handlers' error, if any.
func (e *eventAgent) emitErr(typ string, payload map[string]any) string {
	e.t.Helper()
	s, _ := e.do(map[string]any{"emit": typ, "payload": payload})[0]["error"].(string)
	return s
}

// entity reads an entity through the platform; nil if there is none.
func (e *eventAgent) entity(id string) *sdk.Entity {
	e.t.Helper()
	r := e.do(map[string]any{"entities": []string{id}})[0]
	if r["error"] != nil {
		e.t.Fatalf("read entity: %v", r["error"])
	}
	raw, _ := json.Marshal(r["entities"])
	var es []sdk.Entity
	if err := json.Unmarshal(raw, &es); err != nil {
		e.t.Fatal(err)
	}
	if len(es) == 0 {
		return nil
	}
	return &es[0]
}

func (e *eventAgent) scoped(id string) string { return sdk.CreateUniqueUUID(e.id, id) }

// TestEventsReactionDeleteClear: a reaction is stored once however often it
// arrives (with the agent's ids or the platform's); a deleted message's
// memory goes; a cleared channel loses its messages.
func TestEventsReactionDeleteClear(t *testing.T) {
	t.Parallel()
	ag := newEventAgent(t, "Scripty", nil, nil)
	ag.start(nil)
	d := ag.d
	ag.deliver(groupMsg("m1", "ann", "Scripty, bake me some bread"))
	d.waitEnded(ag.id, 1)
	testwait.For(t, 10*time.Second, "the reply", func() bool { return len(ag.sent()) == 1 })
	room, ann, m1 := ag.scoped("general"), ag.scoped("ann"), ag.scoped("m1")
	if n := len(d.roomMemories(ag.id, room, "")); n != 2 {
		t.Fatalf("want the message and the reply stored, got %d memories", n)
	}

	reaction := &sdk.Memory{ID: ag.scoped("r1"), EntityID: ann, RoomID: room,
		Content: sdk.Content{Text: "+1", Source: "scripted", InReplyTo: m1}}
	ag.emit(sdk.EventReactionReceived, reaction, nil)
	ag.emit(sdk.EventReactionReceived, reaction, nil) // delivered twice
	// elizaOS's shape (payload.message) with the platform's own ids.
	ag.emit(sdk.EventReactionReceived, nil, map[string]any{"message": map[string]any{
		"id": "r2", "entityId": "ann", "roomId": "general", "content": map[string]any{"text": "<3", "inReplyTo": "m1"}}})
	mems := d.roomMemories(ag.id, room, "messages")
	if countText(mems, "+1") != 1 || countText(mems, "<3") != 1 || len(mems) != 4 {
		t.Fatalf("want each reaction stored once beside the message and reply, got %+v", mems)
	}
	for _, m := range mems {
		if m.text() == "<3" && (m.ID != ag.scoped("r2") || m.EntityID != ann || m.Content["inReplyTo"] != m1 || m.Content["source"] != "scripted") {
			t.Errorf("the platform's ids must become the agent's: %+v", m)
		}
	}

	ag.emit(sdk.EventMessageDeleted, &sdk.Memory{ID: m1, RoomID: room}, nil)
	ag.emit(sdk.EventMessageDeleted, nil, map[string]any{"message": map[string]any{"id": "r2"}})
	mems = d.roomMemories(ag.id, room, "")
	if countText(mems, "Scripty, bake me some bread") != 0 || countText(mems, "<3") != 0 || len(mems) != 2 {
		t.Fatalf("the deleted messages should be gone, and only they: %+v", mems)
	}
	if e := ag.emitErr(sdk.EventMessageDeleted, nil); !strings.Contains(e, "without a message") {
		t.Errorf("MESSAGE_DELETED without a message should fail, got %q", e)
	}

	// Another room is not touched by clearing this one.
	ag.deliver(sdk.IncomingMessage{Source: "scripted", MessageID: "dm1", ChannelID: "dm-ann", ServerID: "dm-ann", UserID: "ann",
		UserName: "ann", Content: sdk.Content{Text: "just us"}, ChannelType: sdk.ChannelDM})
	d.waitEnded(ag.id, 2)
	ag.emit("CHANNEL_CLEARED", nil, map[string]any{"roomId": room, "channelId": "general", "memoryCount": 2})
	if mems := d.roomMemories(ag.id, room, ""); len(mems) != 0 {
		t.Errorf("the cleared room still has %+v", mems)
	}
	if mems := d.roomMemories(ag.id, ag.scoped("dm-ann"), ""); countText(mems, "just us") != 1 {
		t.Errorf("clearing one room emptied another: %+v", mems)
	}
	// The channel's platform id alone names the room too.
	ag.emit("CHANNEL_CLEARED", nil, map[string]any{"channelId": "dm-ann"})
	if mems := d.roomMemories(ag.id, ag.scoped("dm-ann"), ""); len(mems) != 0 {
		t.Errorf("the DM was not cleared: %+v", mems)
	}
}

type worldJSON struct {
	ID       string         `json:"id"`
	Name     string         `json:"name"`
	ServerID string         `json:"serverId"`
	Metadata map[string]any `json:"metadata"`
}

func (d *daemon) worlds(agentID string) map[string]worldJSON {
	d.t.Helper()
	code, env := d.get("/api/agents/" + agentID + "/worlds")
	if code != http.StatusOK {
		d.t.Fatalf("worlds: %d %+v", code, env.Error)
	}
	var data struct {
		Worlds []worldJSON `json:"worlds"`
	}
	if err := json.Unmarshal(env.Data, &data); err != nil {
		d.t.Fatal(err)
	}
	out := map[string]worldJSON{}
	for _, w := range data.Worlds {
		out[w.ID] = w
	}
	return out
}

type roomOut struct {
	ID           string   `json:"id"`
	Name         string   `json:"name"`
	Type         string   `json:"type"`
	ChannelID    string   `json:"channelId"`
	WorldID      string   `json:"worldId"`
	Source       string   `json:"source"`
	Participants []string `json:"participants"`
}

func (d *daemon) room(agentID, roomID string) roomOut {
	d.t.Helper()
	code, env := d.get("/api/agents/" + agentID + "/rooms/" + roomID)
	if code != http.StatusOK {
		d.t.Fatalf("room %s: %d %+v", roomID, code, env.Error)
	}
	var r roomOut
	if err := json.Unmarshal(env.Data, &r); err != nil {
		d.t.Fatal(err)
	}
	return r
}

func (d *daemon) worldRooms(agentID, worldID string) []roomOut {
	d.t.Helper()
	code, env := d.get("/api/agents/" + agentID + "/rooms?worldId=" + worldID)
	if code != http.StatusOK {
		d.t.Fatalf("rooms: %d %+v", code, env.Error)
	}
	var data struct {
		Rooms []roomOut `json:"rooms"`
	}
	if err := json.Unmarshal(env.Data, &data); err != nil {
		d.t.Fatal(err)
	}
	return data.Rooms
}

// TestEventsWorldAndEntities: WORLD_JOINED stores the world, its rooms and
// its members (participants of the first room); WORLD_CONNECTED updates it
// without losing what was stored; ENTITY_JOINED, ENTITY_UPDATED and
// ENTITY_LEFT keep a member in sync, a member who left marked inactive; a
// user joining a DM owns its world.
func TestEventsWorldAndEntities(t *testing.T) {
	t.Parallel()
	ag := newEventAgent(t, "Scripty", nil, nil)
	ag.start(nil)
	d := ag.d
	world, chanA, chanB := ag.scoped("guild-9"), ag.scoped("chan-a"), ag.scoped("chan-b")
	u1, u2 := ag.scoped("u1"), ag.scoped("u2")
	ag.emit(sdk.EventWorldJoined, nil, map[string]any{
		"source": "scripted",
		"world": map[string]any{"id": world, "name": "Guild Nine", "serverId": "guild-9",
			"metadata": map[string]any{"ownership": map[string]any{"ownerId": u1}, "roles": map[string]any{u1: "OWNER"}}},
		"rooms": []any{
			map[string]any{"id": chanA, "name": "a", "type": "GROUP", "channelId": "chan-a"},
			map[string]any{"name": "b", "type": "GROUP", "channelId": "chan-b"}, // the platform's id only
		},
		"entities": []any{
			map[string]any{"id": u1, "names": []string{"Uno"}, "metadata": map[string]any{"scripted": map[string]any{"id": "u1", "userName": "uno"}}},
			map[string]any{"id": "u2", "names": []string{"Dos"}},
		},
	})
	w, ok := d.worlds(ag.id)[world]
	if !ok || w.Name != "Guild Nine" || w.ServerID != "guild-9" {
		t.Fatalf("world not stored: %+v", d.worlds(ag.id))
	}
	rooms := d.worldRooms(ag.id, world)
	if len(rooms) != 2 {
		t.Fatalf("want the world's 2 rooms, got %+v", rooms)
	}
	a, b := d.room(ag.id, chanA), d.room(ag.id, chanB)
	if a.Type != "GROUP" || a.Source != "scripted" || a.ChannelID != "chan-a" || b.Name != "b" || b.WorldID != world {
		t.Errorf("rooms: %+v %+v", a, b)
	}
	for _, id := range []string{u1, u2, ag.id} {
		if !slices.Contains(a.Participants, id) {
			t.Errorf("%s should take part in the first room: %v", id, a.Participants)
		}
	}
	if e := ag.entity(u2); e == nil || !slices.Contains(e.Names, "Dos") {
		t.Errorf("member u2: %+v", e)
	}

	// Reconnecting renames the world; its owner and roles stay.
	ag.emit("WORLD_CONNECTED", nil, map[string]any{"world": map[string]any{"id": world, "name": "Guild 9"},
		"entities": []any{map[string]any{"id": u1, "names": []string{"Uno!"}}}})
	w = d.worlds(ag.id)[world]
	if own, _ := w.Metadata["ownership"].(map[string]any); w.Name != "Guild 9" || own["ownerId"] != u1 {
		t.Errorf("WORLD_CONNECTED lost what was stored: %+v", w)
	}
	if e := ag.entity(u1); e == nil || !slices.Contains(e.Names, "Uno") || !slices.Contains(e.Names, "Uno!") {
		t.Errorf("member names should be merged: %+v", e)
	}

	// A user joins a room of the world, with the platform's ids.
	u3 := ag.scoped("u3")
	ag.emit(sdk.EventEntityJoined, nil, map[string]any{"entityId": "u3", "worldId": world, "channelId": "chan-b",
		"metadata": map[string]any{"originalId": "u3", "username": "tres", "displayName": "Tres", "type": "GROUP"}})
	e := ag.entity(u3)
	if e == nil || !slices.Contains(e.Names, "Tres") || !slices.Contains(e.Names, "tres") || e.Metadata["status"] != "ACTIVE" {
		t.Fatalf("joined entity: %+v", e)
	}
	if blk, _ := e.Metadata["scripted"].(map[string]any); blk["userName"] != "tres" || blk["id"] != "u3" {
		t.Errorf("the platform's details should be under its name: %+v", e.Metadata)
	}
	if r := d.room(ag.id, chanB); !slices.Contains(r.Participants, u3) {
		t.Errorf("u3 should take part in chan-b: %v", r.Participants)
	}
	ag.emit("ENTITY_UPDATED", nil, map[string]any{"entityId": u3, "source": "scripted", "metadata": map[string]any{"displayName": "Tres Tres"}})
	e = ag.entity(u3)
	if blk, _ := e.Metadata["scripted"].(map[string]any); !slices.Contains(e.Names, "Tres Tres") || blk["userName"] != "tres" || blk["name"] != "Tres Tres" {
		t.Errorf("updated entity: %+v", e)
	}
	ag.emit("ENTITY_LEFT", nil, map[string]any{"entityId": u3, "worldId": world})
	e = ag.entity(u3)
	if e == nil || e.Metadata["status"] != "INACTIVE" || e.Metadata["leftAt"] == nil || !slices.Contains(e.Names, "Tres Tres") {
		t.Errorf("an entity that left should be kept, marked inactive: %+v", e)
	}
	ag.emit(sdk.EventEntityJoined, nil, map[string]any{"entityId": u3, "worldId": world, "roomId": chanB, "source": "scripted"})
	if e = ag.entity(u3); e.Metadata["status"] != "ACTIVE" {
		t.Errorf("an entity that joins again is active: %+v", e.Metadata)
	}

	// A user opening a DM owns its world.
	u4 := ag.scoped("u4")
	ag.emit(sdk.EventEntityJoined, nil, map[string]any{"entityId": "u4", "serverId": "dm-u4", "channelId": "dm-u4", "source": "scripted",
		"metadata": map[string]any{"username": "cuatro", "type": "DM"}})
	dw := d.worlds(ag.id)[ag.scoped("dm-u4")]
	own, _ := dw.Metadata["ownership"].(map[string]any)
	roles, _ := dw.Metadata["roles"].(map[string]any)
	if own["ownerId"] != u4 || roles[u4] != "OWNER" {
		t.Errorf("the DM's world should be the user's: %+v", dw)
	}
	if r := d.room(ag.id, ag.scoped("dm-u4")); r.Type != "DM" || !slices.Contains(r.Participants, u4) {
		t.Errorf("DM room: %+v", r)
	}
	if e := ag.emitErr(sdk.EventWorldJoined, map[string]any{"rooms": []any{}}); !strings.Contains(e, "without a world") {
		t.Errorf("WORLD_JOINED without a world should fail, got %q", e)
	}
}

// TestEventsVoiceMessage: a voice message goes through the message
// pipeline, and the reply goes back to its channel although no host run
// carries it.
func TestEventsVoiceMessage(t *testing.T) {
	t.Parallel()
	ag := newEventAgent(t, "Scripty", nil, nil)
	ag.start(nil)
	d := ag.d
	ann, room := ag.scoped("ann"), ag.scoped("voice-1")
	ag.emit(sdk.EventEntityJoined, nil, map[string]any{"entityId": "ann", "serverId": "guild-1", "channelId": "voice-1", "source": "scripted",
		"metadata": map[string]any{"username": "ann", "type": "VOICE_DM"}})
	ag.emit("VOICE_MESSAGE_RECEIVED", &sdk.Memory{ID: ag.scoped("v1"), EntityID: ann, RoomID: room,
		Content: sdk.Content{Text: "hello by voice", Source: "scripted", ChannelType: sdk.ChannelVoiceDM}}, nil)
	evs := d.waitEnded(ag.id, 1)
	checkRunsEnded(t, evs)
	if e := ended(evs)[0]; e.Status != "completed" || e.Reason != "" {
		t.Errorf("the voice run: %+v", e)
	}
	sent := ag.sent()
	if len(sent) != 1 || sentText(sent[0]) != "scripted reply to: hello by voice" {
		t.Fatalf("want the reply sent, got %+v", sent)
	}
	if tg, _ := sent[0]["target"].(map[string]any); tg["channelId"] != "voice-1" || tg["source"] != "scripted" {
		t.Errorf("the reply should go to the voice channel: %v", sent[0]["target"])
	}
	mems := d.roomMemories(ag.id, room, "")
	if countText(mems, "hello by voice") != 1 || countText(mems, "scripted reply to: hello by voice") != 1 {
		t.Errorf("stored: %+v", mems)
	}
	// Delivered twice, handled once.
	ag.emit("VOICE_MESSAGE_RECEIVED", &sdk.Memory{ID: ag.scoped("v1"), EntityID: ann, RoomID: room,
		Content: sdk.Content{Text: "hello by voice", Source: "scripted", ChannelType: sdk.ChannelVoiceDM}}, nil)
	evs = d.waitEnded(ag.id, 2)
	if e := ended(evs)[1]; e.Reason != "duplicate delivery" {
		t.Errorf("a second delivery should end as a duplicate: %+v", e)
	}
	if n := len(ag.sent()); n != 1 {
		t.Errorf("want one reply, got %d", n)
	}
}

// TestEventsPostGenerated: a post is written from the character's post
// style and examples, asked again when the model refuses or repeats a
// recent post, stored in the feed and sent with channelType FEED and type
// post, to the feed or to the target the payload names.
func TestEventsPostGenerated(t *testing.T) {
	t.Parallel()
	post := func(text string) string {
		return "<response><thought>about bread</thought><post>" + text + "</post><imagePrompt></imagePrompt></response>"
	}
	ag := newEventAgent(t, "Poster", []rule{
		{Model: "TEXT_LARGE", Contains: []string{"<post>", "write in lowercase", "# Example Posts by Poster", "flour, water, patience."},
			NotContains: []string{"# Received Message"}, Times: 1, Answer: post("I'm sorry, but I can't help with that request.")},
		{Model: "TEXT_LARGE", Contains: []string{"<post>"}, Times: 4, Answer: post(`"the oven is warm again"`)},
		{Model: "TEXT_LARGE", Contains: []string{"<post>"}, Answer: post("a new loaf")},
	}, nil)
	ag.start(map[string]any{"postExamples": []string{"flour, water, patience.", "bread is a promise kept."},
		"style": map[string]any{"post": []string{"write in lowercase"}}})
	d := ag.d
	feed := ag.scoped("poster-1-home")
	ag.emit("POST_GENERATED", nil, map[string]any{"userId": "poster-1", "source": "scripted"})
	prompts := ag.promptsOf("TEXT_LARGE")
	if len(prompts) != 2 {
		t.Fatalf("want the refusal asked again once, got %d calls", len(prompts))
	}
	if p, _ := prompts[1]["prompt"].(string); !strings.Contains(p, "was a refusal") {
		t.Errorf("the second prompt should say why:\n%s", p)
	}
	sent := ag.sent()
	if len(sent) != 1 || sentText(sent[0]) != "the oven is warm again" {
		t.Fatalf("want the post sent, got %+v", sent)
	}
	c, _ := sent[0]["content"].(map[string]any)
	tg, _ := sent[0]["target"].(map[string]any)
	if c["channelType"] != "FEED" || c["type"] != "post" || tg["source"] != "scripted" || tg["channelId"] != "poster-1-home" {
		t.Errorf("post sent as %v to %v", c, tg)
	}
	mems := d.roomMemories(ag.id, feed, "")
	if len(mems) != 1 || mems[0].text() != "the oven is warm again" || mems[0].EntityID != ag.id {
		t.Fatalf("the post should be stored in the feed: %+v", mems)
	}
	if r := d.room(ag.id, feed); r.Type != "FEED" || r.Name != "Poster's Feed" {
		t.Errorf("feed room: %+v", r)
	}

	// The model says the same again: asked three times, then given up.
	if e := ag.emitErr("POST_GENERATED", map[string]any{"userId": "poster-1", "source": "scripted"}); !strings.Contains(e, "no usable post") {
		t.Errorf("a repeated post should fail after the retries, got %q", e)
	}
	if n := len(ag.sent()); n != 1 {
		t.Errorf("a repeated post must not be sent: %d sent", n)
	}
	// A target in the payload.
	ag.emit("POST_GENERATED", nil, map[string]any{"userId": "poster-1", "source": "scripted",
		"target": map[string]any{"source": "scripted", "channelId": "timeline-2"}})
	sent = ag.sent()
	if len(sent) != 2 || sentText(sent[1]) != "a new loaf" {
		t.Fatalf("want the second post sent, got %+v", sent)
	}
	if tg, _ := sent[1]["target"].(map[string]any); tg["channelId"] != "timeline-2" {
		t.Errorf("the post should go to the payload's target: %v", sent[1]["target"])
	}
	if mems := d.roomMemories(ag.id, feed, ""); len(mems) != 2 {
		t.Errorf("want the two posts sent stored, got %+v", mems)
	}
	// A post that cannot be sent is not kept.
	if e := ag.emitErr("POST_GENERATED", map[string]any{"userId": "poster-2", "source": "nowhere"}); !strings.Contains(e, "send the post") {
		t.Errorf("a post to a source no plugin serves should fail, got %q", e)
	}
	if mems := d.roomMemories(ag.id, ag.scoped("poster-2-home"), ""); len(mems) != 0 {
		t.Errorf("an unsent post was kept: %+v", mems)
	}
}

// TestEventsDuplicateReported: the host tells a connector that a message
// it delivered again was a duplicate.
func TestEventsDuplicateReported(t *testing.T) {
	t.Parallel()
	ag := newEventAgent(t, "Scripty", nil, nil)
	ag.start(nil)
	msg := groupMsg("dup-9", "ann", "Scripty, once please")
	results := func() []map[string]any {
		var out []map[string]any
		for _, r := range readJSONL(t, ag.results) {
			if r["delivered"] == "dup-9" {
				out = append(out, r)
			}
		}
		return out
	}
	ag.deliver(msg)
	testwait.For(t, 30*time.Second, "the first delivery", func() bool { return len(results()) == 1 })
	ag.deliver(msg)
	testwait.For(t, 30*time.Second, "the second delivery", func() bool { return len(results()) == 2 })
	rs := results()
	if rs[0]["duplicate"] != false || rs[0]["replies"] != float64(1) {
		t.Errorf("the first delivery: %v", rs[0])
	}
	if rs[1]["duplicate"] != true || rs[1]["replies"] != float64(0) || rs[1]["error"] != nil {
		t.Errorf("the second delivery should be reported a duplicate: %v", rs[1])
	}
}
