package plugintest_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/internal/testwait"
	"github.com/agenthost/agenthost/plugins/sqlstore"
	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/plugintest"
	"github.com/agenthost/agenthost/sdk/storage"
)

// An empty plugin is enough to reach the Runtime through its *sdk.Agent.
func emptyPlugin() sdk.Plugin { return sdk.Plugin{Name: "empty"} }

func ids(ms []sdk.Memory) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

func TestRuntimeMemories(t *testing.T) {
	c, a := startAgent(t, emptyPlugin())
	store := storage.For(a)
	ctx := testCtx(t)

	mk := func(id, room, table string, at int64) *sdk.Memory {
		return &sdk.Memory{ID: id, EntityID: "e1", RoomID: room, CreatedAt: at, Content: sdk.Content{Text: "text " + id},
			Metadata: map[string]any{"i": id}}
	}
	for _, m := range []*sdk.Memory{mk("m1", "r1", "", 1000), mk("m2", "r1", "", 3000), mk("m3", "r2", "", 2000), mk("f1", "r1", sdk.TableFacts, 4000)} {
		table := sdk.TableMessages
		if m.ID == "f1" {
			table = sdk.TableFacts
		}
		id, created, err := store.CreateMemory(ctx, m, table, false)
		if err != nil || id != m.ID || !created {
			t.Fatalf("create %s: %s %v %v", m.ID, id, created, err)
		}
	}
	// A duplicate id is not written again.
	id, created, err := store.CreateMemory(ctx, &sdk.Memory{ID: "m1", Content: sdk.Content{Text: "changed"}}, sdk.TableMessages, false)
	if err != nil || id != "m1" || created {
		t.Errorf("duplicate create: %s %v %v, want created=false", id, created, err)
	}
	// A memory without id, time or table gets them.
	id, created, err = store.CreateMemory(ctx, &sdk.Memory{RoomID: "r3", Content: sdk.Content{Text: "fresh"}}, "", true)
	if err != nil || !created || len(id) != 36 {
		t.Fatalf("create without id: %q %v %v", id, created, err)
	}

	got, err := store.GetMemories(ctx, storage.MemoryQuery{Table: sdk.TableMessages, RoomID: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"m2", "m1"}; !reflect.DeepEqual(ids(got), want) {
		t.Errorf("room r1 messages = %q, want newest first %q", ids(got), want)
	}
	if got[1].Content.Text != "text m1" || got[1].Metadata["i"] != "m1" || got[1].AgentID != agentID || got[1].Table != sdk.TableMessages {
		t.Errorf("stored memory = %#v", got[1])
	}
	got, _ = store.GetMemories(ctx, storage.MemoryQuery{Table: sdk.TableMessages, RoomIDs: []string{"r1", "r2"}, Count: 2})
	if want := []string{"m2", "m3"}; !reflect.DeepEqual(ids(got), want) {
		t.Errorf("rooms r1+r2, count 2 = %q, want %q", ids(got), want)
	}
	got, _ = store.GetMemories(ctx, storage.MemoryQuery{Start: 2000, End: 3000})
	if want := []string{"m2", "m3"}; !reflect.DeepEqual(ids(got), want) {
		t.Errorf("time range = %q, want %q", ids(got), want)
	}
	got, _ = store.GetMemories(ctx, storage.MemoryQuery{Unique: true})
	if len(got) != 1 || got[0].Content.Text != "fresh" || got[0].Table != sdk.TableMessages || got[0].CreatedAt == 0 {
		t.Errorf("unique memories = %#v", got)
	}
	got, _ = store.GetMemories(ctx, storage.MemoryQuery{Table: sdk.TableFacts})
	if want := []string{"f1"}; !reflect.DeepEqual(ids(got), want) {
		t.Errorf("facts = %q", ids(got))
	}

	got, err = store.GetMemoriesByIDs(ctx, []string{"m3", "nope", "m1"}, "")
	if err != nil || !reflect.DeepEqual(ids(got), []string{"m3", "m1"}) {
		t.Errorf("by ids = %q, %v", ids(got), err)
	}
	if n, err := store.CountMemories(ctx, "r1", sdk.TableMessages, false); err != nil || n != 2 {
		t.Errorf("count r1 = %d, %v", n, err)
	}
	if err := store.DeleteMemory(ctx, "m1"); err != nil {
		t.Fatal(err)
	}
	if n, _ := store.CountMemories(ctx, "r1", sdk.TableMessages, false); n != 1 {
		t.Errorf("count after delete = %d", n)
	}
	if all := c.Runtime().Memories(); !reflect.DeepEqual(ids(all)[:3], []string{"m2", "m3", "f1"}) || len(all) != 4 {
		t.Errorf("Memories() = %q", ids(all))
	}

	// Agents do not see each other's memories.
	c.Runtime().AddMemory("agent-2", sdk.Memory{ID: "theirs", RoomID: "r1"})
	got, _ = store.GetMemories(ctx, storage.MemoryQuery{RoomID: "r1"})
	if slices.Contains(ids(got), "theirs") {
		t.Errorf("agent-1 sees agent-2's memory: %q", ids(got))
	}
	if got, _ = store.GetMemoriesByIDs(ctx, []string{"theirs"}, ""); len(got) != 0 {
		t.Errorf("agent-1 got agent-2's memory by id")
	}
}

func TestRuntimeSearchMemories(t *testing.T) {
	c, a := startAgent(t, emptyPlugin())
	ctx := testCtx(t)
	rt := c.Runtime()
	rt.AddMemory(agentID, sdk.Memory{ID: "x", Embedding: []float32{1, 0}, Table: sdk.TableFragments})
	rt.AddMemory(agentID, sdk.Memory{ID: "xy", Embedding: []float32{1, 1}, Table: sdk.TableFragments})
	rt.AddMemory(agentID, sdk.Memory{ID: "y", Embedding: []float32{0, 1}, Table: sdk.TableFragments})
	rt.AddMemory("agent-2", sdk.Memory{ID: "other", Embedding: []float32{1, 0}, Table: sdk.TableFragments})

	got, err := storage.For(a).SearchMemories(ctx, storage.SearchQuery{Table: sdk.TableFragments, Embedding: []float32{1, 0.1}, Threshold: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"x", "xy"}; !reflect.DeepEqual(ids(got), want) {
		t.Errorf("search = %q, want %q", ids(got), want)
	}
	if got[0].Similarity < 0.99 || got[1].Similarity > got[0].Similarity {
		t.Errorf("similarities = %v, %v", got[0].Similarity, got[1].Similarity)
	}
	got, _ = storage.For(a).SearchMemories(ctx, storage.SearchQuery{Embedding: []float32{0, 1}, Count: 1})
	if want := []string{"y"}; !reflect.DeepEqual(ids(got), want) {
		t.Errorf("search count 1 = %q", ids(got))
	}
}

func TestRuntimeEntitiesRoomsWorlds(t *testing.T) {
	_, a := startAgent(t, emptyPlugin())
	store := storage.For(a)
	ctx := testCtx(t)
	conn := storage.Connection{
		Entity: sdk.Entity{ID: "u1", Names: []string{"Ann"}, Metadata: map[string]any{"telegram": map[string]any{"id": "7"}}},
		Room:   sdk.Room{ID: "r1", Name: "general", Source: "telegram", Type: sdk.ChannelGroup, WorldID: "w1"},
		World:  sdk.World{ID: "w1", Name: "Guild", ServerID: "s1"},
	}
	if err := store.EnsureConnection(ctx, conn); err != nil {
		t.Fatal(err)
	}
	conn.Entity = sdk.Entity{ID: "u1", Names: []string{"ann_t", "Ann"}, Metadata: map[string]any{"discord": "x"}}
	if err := store.EnsureConnection(ctx, conn); err != nil {
		t.Fatal(err)
	}
	es, err := store.GetEntities(ctx, "u1", "missing")
	if err != nil || len(es) != 1 {
		t.Fatalf("entities = %#v, %v", es, err)
	}
	if !reflect.DeepEqual(es[0].Names, []string{"Ann", "ann_t"}) || es[0].Metadata["telegram"] == nil || es[0].Metadata["discord"] != "x" {
		t.Errorf("merged entity = %#v", es[0])
	}
	if err := store.UpsertEntities(ctx, sdk.Entity{ID: "u2", Names: []string{"Bob"}}); err != nil {
		t.Fatal(err)
	}
	if es, _ := store.GetEntities(ctx, "u2", "u1"); len(es) != 2 || es[0].Names[0] != "Bob" {
		t.Errorf("entities in order = %#v", es)
	}

	room, err := store.GetRoom(ctx, "r1")
	if err != nil || room.Name != "general" || room.Type != sdk.ChannelGroup || room.WorldID != "w1" {
		t.Errorf("room = %#v, %v", room, err)
	}
	if _, err := store.GetRoom(ctx, "nope"); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("missing room: %v", err)
	}
	if rs, _ := store.GetRooms(ctx, storage.RoomQuery{ParticipantID: "u1"}); len(rs) != 1 || rs[0].ID != "r1" {
		t.Errorf("rooms of u1 = %#v", rs)
	}
	if rs, _ := store.GetRooms(ctx, storage.RoomQuery{WorldID: "w1"}); len(rs) != 1 {
		t.Errorf("rooms of w1 = %#v", rs)
	}
	if ps, _ := store.GetParticipants(ctx, "r1"); !reflect.DeepEqual(ps, []string{"u1", agentID}) {
		t.Errorf("participants = %q", ps)
	}
	if es, err := store.GetEntitiesForRoom(ctx, "r1"); err != nil || len(es) == 0 || es[0].ID != "u1" {
		t.Errorf("entities of r1 = %#v, %v", es, err)
	}
	if ws, _ := store.GetWorlds(ctx, "w1"); len(ws) != 1 || ws[0].Name != "Guild" {
		t.Errorf("worlds = %#v", ws)
	}
	if err := store.UpsertWorld(ctx, sdk.World{ID: "w1", Name: "Renamed"}); err != nil {
		t.Fatal(err)
	}
	if ws, _ := store.GetWorlds(ctx, "w1"); ws[0].Name != "Renamed" {
		t.Errorf("upserted world = %#v", ws)
	}
	if err := store.SetParticipantState(ctx, "r1", agentID, "MUTED"); err != nil {
		t.Fatal(err)
	}
	if st, _ := store.GetParticipantState(ctx, "r1", agentID); st != "MUTED" {
		t.Errorf("participant state = %q", st)
	}
}

func TestRuntimeRecordsWhatThePluginSends(t *testing.T) {
	c, a := startAgent(t, emptyPlugin())
	store := storage.For(a)
	ctx := testCtx(t)
	rt := c.Runtime()

	ids1, err := a.Respond(ctx, "run-1", sdk.Content{Text: "hello"}, "")
	if err != nil || len(ids1) != 1 {
		t.Fatalf("respond: %q %v", ids1, err)
	}
	target := sdk.Target{Source: "discord", ChannelID: "c1"}
	if _, err := a.SendMessage(ctx, target, sdk.Content{Text: "out"}); err != nil {
		t.Fatal(err)
	}
	if err := a.EmitEvent(ctx, sdk.Event{Type: "CUSTOM", Payload: map[string]any{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	if err := store.AddLog(ctx, storage.LogEntry{Type: "action", Body: map[string]any{"ok": true}}); err != nil {
		t.Fatal(err)
	}
	in := sdk.IncomingMessage{Source: "telegram", MessageID: "42", ChannelID: "c", UserID: "u", Content: sdk.Content{Text: "hi"}}
	got, err := a.ReceiveMessage(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if got.MemoryID != sdk.CreateUniqueUUID(agentID, "42") || got.RoomID != sdk.CreateUniqueUUID(agentID, "c") ||
		got.EntityID != sdk.CreateUniqueUUID(agentID, "u") || got.Duplicate {
		t.Errorf("received = %#v", got)
	}
	if again, _ := a.ReceiveMessage(ctx, in); !again.Duplicate {
		t.Error("the same message id twice is not a duplicate")
	}

	if rs := rt.Responses(); len(rs) != 1 || rs[0].Text != "hello" {
		t.Errorf("Responses() = %#v", rs)
	}
	if s := rt.Sent(); len(s) != 1 || s[0].Target != target || s[0].Content.Text != "out" {
		t.Errorf("Sent() = %#v", s)
	}
	if evs := rt.Events(); len(evs) != 1 || evs[0].Type != "CUSTOM" || evs[0].Payload["k"] != "v" {
		t.Errorf("Events() = %#v", evs)
	}
	if ls := rt.Logs(); len(ls) != 1 || ls[0].Type != "action" || ls[0].AgentID != agentID || ls[0].ID == "" || ls[0].Body["ok"] != true {
		t.Errorf("Logs() = %#v", ls)
	}
	if rs := rt.Received(); len(rs) != 2 || rs[0].Content.Text != "hi" {
		t.Errorf("Received() = %#v", rs)
	}

	if err := store.SetCache(ctx, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := store.GetCache(ctx, "k"); err != nil || !ok || string(v) != "v" {
		t.Errorf("cache = %q %v %v", v, ok, err)
	}
	if err := store.SetCache(ctx, "short", []byte("v"), time.Millisecond); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 10*time.Second, "the cache entry of 1 ms to expire", func() bool {
		_, ok, _ := store.GetCache(ctx, "short")
		return !ok
	})
	if _, ok, _ := store.GetCache(ctx, "missing"); ok {
		t.Error("a missing cache entry was found")
	}
}

func TestRuntimeModel(t *testing.T) {
	ctx := testCtx(t)
	t.Run("none configured", func(t *testing.T) {
		_, a := startAgent(t, emptyPlugin())
		_, err := a.GenerateText(ctx, sdk.ModelTextLarge, "hi")
		if err == nil || !strings.Contains(err.Error(), "plugintest: no model configured") {
			t.Errorf("UseModel without a model: %v", err)
		}
		_, err = a.StreamModel(ctx, sdk.ModelRequest{Type: sdk.ModelTextLarge}, nil)
		if err == nil || !strings.Contains(err.Error(), "plugintest: no model configured") {
			t.Errorf("StreamModel without a model: %v", err)
		}
	})
	t.Run("Model func", func(t *testing.T) {
		rt := &plugintest.Runtime{Model: func(_ context.Context, req sdk.ModelRequest) (*sdk.ModelResponse, error) {
			if req.Type == sdk.ModelTextEmbedding {
				return &sdk.ModelResponse{Embedding: []float32{1, 2}}, nil
			}
			if req.Prompt == "fail" {
				return nil, errors.New("quota exceeded")
			}
			return &sdk.ModelResponse{Text: "answer to " + req.Prompt}, nil
		}}
		c, a := startAgent(t, emptyPlugin(), plugintest.WithRuntime(rt))
		if c.Runtime() != rt {
			t.Error("Runtime() is not the one given")
		}
		if s, err := a.GenerateText(ctx, sdk.ModelTextLarge, "q"); err != nil || s != "answer to q" {
			t.Errorf("GenerateText = %q, %v", s, err)
		}
		if v, err := a.Embed(ctx, "x"); err != nil || !reflect.DeepEqual(v, []float32{1, 2}) {
			t.Errorf("Embed = %v, %v", v, err)
		}
		if _, err := a.GenerateText(ctx, sdk.ModelTextLarge, "fail"); err == nil || !strings.Contains(err.Error(), "quota exceeded") {
			t.Errorf("failing model: %v", err)
		}
		var pieces []string
		res, err := a.StreamModel(ctx, sdk.ModelRequest{Type: sdk.ModelTextSmall, Prompt: "s"}, func(s string) error {
			pieces = append(pieces, s)
			return nil
		})
		if err != nil || res.Text != "answer to s" || !reflect.DeepEqual(pieces, []string{"answer to s"}) {
			t.Errorf("StreamModel = %#v %q %v", res, pieces, err)
		}
		if calls := rt.ModelCalls(); len(calls) != 4 || calls[0].Prompt != "q" || calls[1].Text != "x" {
			t.Errorf("ModelCalls() = %#v", calls)
		}
	})
	t.Run("plugin's own model", func(t *testing.T) {
		p := sdk.Plugin{Name: "llm", Models: []sdk.Model{{Type: sdk.ModelTextSmall,
			Handler: func(_ context.Context, _ *sdk.Agent, req *sdk.ModelRequest) (*sdk.ModelResponse, error) {
				return &sdk.ModelResponse{Text: "llm: " + req.Prompt}, nil
			},
			Stream: func(_ context.Context, _ *sdk.Agent, req *sdk.ModelRequest, emit func(string) error) (*sdk.ModelResponse, error) {
				_ = emit("llm: ")
				_ = emit(req.Prompt)
				return &sdk.ModelResponse{Text: "llm: " + req.Prompt}, nil
			}}}}
		_, a := startAgent(t, p)
		res, err := a.UseModel(ctx, sdk.ModelRequest{Type: sdk.ModelTextSmall, Prompt: "p"})
		if err != nil || res.Text != "llm: p" || res.Provider != "llm" {
			t.Errorf("UseModel = %#v, %v", res, err)
		}
		var pieces []string
		res, err = a.StreamModel(ctx, sdk.ModelRequest{Type: sdk.ModelTextSmall, Prompt: "p"}, func(s string) error {
			pieces = append(pieces, s)
			return nil
		})
		if err != nil || res.Text != "llm: p" || res.Provider != "llm" || !reflect.DeepEqual(pieces, []string{"llm: ", "p"}) {
			t.Errorf("StreamModel = %#v %q %v", res, pieces, err)
		}
		if _, err := a.UseModel(ctx, sdk.ModelRequest{Type: sdk.ModelTextSmall, Provider: "other"}); err == nil {
			t.Error("a model of another provider was found")
		}
	})
}

// A bootstrap-like plugin composes state from its own providers, runs the
// actions its response names and its evaluators, all through the Runtime.
func TestRuntimeCallsBackIntoThePlugin(t *testing.T) {
	var mu sync.Mutex
	var evaluated []string
	var previous []sdk.ActionOutcome
	provider := func(name, text string, pos int, dynamic, private bool) sdk.Provider {
		return sdk.Provider{Name: name, Position: pos, Dynamic: dynamic, Private: private,
			Get: func(context.Context, *sdk.Agent, *sdk.Memory, *sdk.State) (sdk.ProviderResult, error) {
				if text == "" {
					return sdk.ProviderResult{}, errors.New("provider down")
				}
				return sdk.ProviderResult{Text: text, Values: map[string]any{name: text}, Data: map[string]any{"from": name}}, nil
			}}
	}
	p := sdk.Plugin{Name: "bootstrap-like",
		Providers: []sdk.Provider{
			provider("TIME", "# Time\nnoon", 10, false, false),
			provider("CHARACTER", "# About Eliza", -5, false, false),
			provider("FACTS", "# Facts", 0, true, false),
			provider("SETTINGS", "# Settings", 1, false, true),
			provider("BROKEN", "", 2, false, false),
		},
		Actions: []sdk.Action{
			{Name: "REPLY", Description: "Reply.", Handler: func(ctx context.Context, a *sdk.Agent, call *sdk.ActionCall) (sdk.ActionResult, error) {
				text := call.Responses[0].Content.Text
				if _, err := a.Respond(ctx, call.RunID, sdk.Content{Text: text}, ""); err != nil {
					return sdk.ActionResult{}, err
				}
				return sdk.ActionResult{Success: true, Text: text}, nil
			}},
			{Name: "FOLLOW_ROOM", Description: "Follow.", Handler: func(_ context.Context, _ *sdk.Agent, call *sdk.ActionCall) (sdk.ActionResult, error) {
				mu.Lock()
				defer mu.Unlock()
				previous = call.Previous
				return sdk.ActionResult{Success: true}, nil
			}},
		},
		Evaluators: []sdk.Evaluator{
			{Name: "REFLECTION", Handler: func(context.Context, *sdk.Agent, *sdk.EvaluatorCall) error {
				mu.Lock()
				defer mu.Unlock()
				evaluated = append(evaluated, "REFLECTION")
				return nil
			}},
			{Name: "ALWAYS", AlwaysRun: true, Handler: func(context.Context, *sdk.Agent, *sdk.EvaluatorCall) error { return errors.New("eval failed") }},
		},
	}
	c, a := startAgent(t, p)
	ctx := testCtx(t)
	msg := &sdk.Memory{ID: "m1", RoomID: "r1", Content: sdk.Content{Text: "hello"}}

	st, err := a.ComposeState(ctx, msg, sdk.ComposeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := "# About Eliza\n\n# Time\nnoon"; st.Text != want {
		t.Errorf("state text = %q, want the default providers in position order: %q", st.Text, want)
	}
	if st.Values["TIME"] != "# Time\nnoon" || st.Values["providers"] != st.Text || st.Values["FACTS"] != nil ||
		st.Values["actionNames"] != "REPLY, FOLLOW_ROOM" || !strings.Contains(st.Values["actionsText"].(string), "- REPLY: Reply.") {
		t.Errorf("state values = %v", st.Values)
	}
	provs, _ := st.Data["providers"].(map[string]any)
	if tm, _ := provs["TIME"].(map[string]any); tm["text"] != "# Time\nnoon" || !reflect.DeepEqual(tm["data"], map[string]any{"from": "TIME"}) {
		t.Errorf("state data = %v", st.Data)
	}
	if _, ok := provs["BROKEN"]; ok {
		t.Error("a failing provider contributed to the state")
	}

	st, _ = a.ComposeState(ctx, msg, sdk.ComposeOptions{Include: []string{"FACTS"}})
	if want := "# About Eliza\n\n# Facts\n\n# Time\nnoon"; st.Text != want {
		t.Errorf("with FACTS: %q, want %q", st.Text, want)
	}
	st, _ = a.ComposeState(ctx, msg, sdk.ComposeOptions{Include: []string{"SETTINGS", "FACTS"}, OnlyInclude: true})
	if want := "# Facts\n\n# Settings"; st.Text != want {
		t.Errorf("only FACTS and SETTINGS: %q, want %q", st.Text, want)
	}

	responses := []sdk.Memory{{Content: sdk.Content{Text: "hi there", Actions: []string{"reply", "FOLLOW_ROOM", "DANCE"}}}}
	outcomes, err := a.ProcessActions(ctx, msg, responses, st, "run-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(outcomes) != 3 || outcomes[0].Name != "REPLY" || !outcomes[0].Result.Success || outcomes[0].Result.Text != "hi there" ||
		outcomes[1].Name != "FOLLOW_ROOM" || !outcomes[1].Result.Success ||
		outcomes[2].Name != "DANCE" || outcomes[2].Result.Success || !strings.Contains(outcomes[2].Result.Error, "DANCE") {
		t.Errorf("outcomes = %#v", outcomes)
	}
	if rs := c.Runtime().Responses(); len(rs) != 1 || rs[0].Text != "hi there" {
		t.Errorf("responses = %#v", rs)
	}
	mu.Lock()
	if len(previous) != 1 || previous[0].Name != "REPLY" || previous[0].Result.Text != "hi there" {
		t.Errorf("FOLLOW_ROOM saw previous = %#v", previous)
	}
	mu.Unlock()

	evs, err := a.Evaluate(ctx, sdk.EvaluatorCall{Message: msg, State: st, DidRespond: true, Responses: responses, RunID: "run-1"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []sdk.EvaluatorOutcome{{Name: "REFLECTION", Ran: true}, {Name: "ALWAYS", Ran: true, Error: "eval failed"}}; !reflect.DeepEqual(evs, want) {
		t.Errorf("evaluate = %#v", evs)
	}
	evs, _ = a.Evaluate(ctx, sdk.EvaluatorCall{Message: msg, DidRespond: false})
	if len(evs) != 1 || evs[0].Name != "ALWAYS" {
		t.Errorf("evaluate without a response = %#v, want only the AlwaysRun one", evs)
	}
}

// Two plugins started with one Runtime see each other's providers,
// actions and models, as they would in one agent.
func TestRuntimeSharedByTwoPlugins(t *testing.T) {
	rt := &plugintest.Runtime{}
	llm := sdk.Plugin{Name: "llm", Models: []sdk.Model{{Type: sdk.ModelTextLarge, Priority: 1,
		Handler: func(context.Context, *sdk.Agent, *sdk.ModelRequest) (*sdk.ModelResponse, error) {
			return &sdk.ModelResponse{Text: "from llm"}, nil
		}}},
		Providers: []sdk.Provider{{Name: "WEATHER", Position: 5, Get: func(context.Context, *sdk.Agent, *sdk.Memory, *sdk.State) (sdk.ProviderResult, error) {
			return sdk.ProviderResult{Text: "sunny"}, nil
		}}}}
	startAgent(t, llm, plugintest.WithRuntime(rt))
	_, a := startAgent(t, sdk.Plugin{Name: "main", Providers: []sdk.Provider{{Name: "TIME", Get: func(context.Context, *sdk.Agent, *sdk.Memory, *sdk.State) (sdk.ProviderResult, error) {
		return sdk.ProviderResult{Text: "noon"}, nil
	}}}}, plugintest.WithRuntime(rt))
	ctx := testCtx(t)
	st, err := a.ComposeState(ctx, &sdk.Memory{}, sdk.ComposeOptions{})
	if err != nil || st.Text != "noon\n\nsunny" {
		t.Errorf("state = %q, %v", st.Text, err)
	}
	res, err := a.UseModel(ctx, sdk.ModelRequest{Type: sdk.ModelTextLarge})
	if err != nil || res.Text != "from llm" || res.Provider != "llm" {
		t.Errorf("model = %#v, %v", res, err)
	}
}

func TestRuntimeIsSafeForConcurrentUse(t *testing.T) {
	c, a := startAgent(t, emptyPlugin())
	store := storage.For(a)
	ctx := testCtx(t)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 10 {
				id := fmt.Sprintf("m-%d-%d", i, j)
				if _, _, err := store.CreateMemory(ctx, &sdk.Memory{ID: id, RoomID: "r"}, sdk.TableMessages, false); err != nil {
					t.Error(err)
					return
				}
				if _, err := store.GetMemories(ctx, storage.MemoryQuery{RoomID: "r", Count: 5}); err != nil {
					t.Error(err)
					return
				}
				_, _ = a.Respond(ctx, "run", sdk.Content{Text: id}, "")
				_ = store.AddLog(ctx, storage.LogEntry{Type: "x"})
				_ = c.Runtime().Memories()
			}
		}()
	}
	wg.Wait()
	if n, _ := store.CountMemories(ctx, "r", "", false); n != 160 {
		t.Errorf("count = %d, want 160", n)
	}
	if len(c.Runtime().Responses()) != 160 || len(c.Runtime().Logs()) != 160 {
		t.Errorf("responses %d, logs %d", len(c.Runtime().Responses()), len(c.Runtime().Logs()))
	}
}

// TestRuntimeResolvesActionsAsTheHost: the names a model writes resolve
// as in the daemon (the host's own code): by simile, and by a part of a
// name that fits one action only; a part that fits two is no action.
func TestRuntimeResolvesActionsAsTheHost(t *testing.T) {
	ran := func(name string) sdk.Action {
		return sdk.Action{Name: name, Similes: map[string][]string{"SEND_MESSAGE": {"DM"}}[name],
			Handler: func(context.Context, *sdk.Agent, *sdk.ActionCall) (sdk.ActionResult, error) {
				return sdk.ActionResult{Success: true, Text: name}, nil
			}}
	}
	_, a := startAgent(t, sdk.Plugin{Name: "actions", Actions: []sdk.Action{ran("SEND_MESSAGE"), ran("MUTE_ROOM"), ran("UNMUTE_ROOM")}})
	responses := []sdk.Memory{{Content: sdk.Content{Actions: []string{"dm", "unmute", "room", "Send-Message"}}}}
	outcomes, err := a.ProcessActions(testCtx(t), &sdk.Memory{ID: "m"}, responses, &sdk.State{}, "run-1")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range outcomes {
		got = append(got, fmt.Sprintf("%s:%v", o.Name, o.Result.Success))
	}
	// "Send-Message" is SEND_MESSAGE again, which runs once per response.
	if want := []string{"SEND_MESSAGE:true", "UNMUTE_ROOM:true", "room:false"}; !reflect.DeepEqual(got, want) {
		t.Errorf("outcomes = %q, want %q", got, want)
	}
}

// TestRuntimeStorageNotKeptInMemory: a storage call the in-memory store
// does not keep fails with sdk.ErrUnimplemented, not silently.
func TestRuntimeStorageNotKeptInMemory(t *testing.T) {
	_, a := startAgent(t, emptyPlugin())
	if _, err := storage.For(a).CreateTask(testCtx(t), storage.Task{Name: "remind"}); !errors.Is(err, sdk.ErrUnimplemented) {
		t.Errorf("CreateTask in memory: %v, want sdk.ErrUnimplemented", err)
	}
}

// TestRuntimeStorageGoesToTheDatabasePlugin: with the sql plugin started on
// the same Runtime, a plugin's storage goes there, as in the daemon: every
// storage call, those the in-memory store does not keep included, and for
// the agent the plugin was configured for only.
func TestRuntimeStorageGoesToTheDatabasePlugin(t *testing.T) {
	rt := &plugintest.Runtime{}
	plugintest.Start(t, sqlstore.New(), plugintest.WithRuntime(rt))
	var agent *sdk.Agent
	p := emptyPlugin()
	p.Configure = func(_ context.Context, a *sdk.Agent) ([]string, error) {
		agent = a
		return nil, nil
	}
	c := plugintest.Start(t, p, plugintest.WithRuntime(rt))
	ctx := testCtx(t)
	const id = "6a1f0c4e-5b1d-4c7e-9a41-0d2f3c5b7e11"
	if _, err := c.Configure(ctx, id, &sdk.Character{Name: "Stored", Bio: sdk.StringList{"x"}}, nil); err != nil {
		t.Fatal(err)
	}
	store := storage.For(agent)
	taskID, err := store.CreateTask(ctx, storage.Task{Name: "remind", Tags: []string{"queue"}})
	if err != nil {
		t.Fatalf("CreateTask through the sql plugin: %v", err)
	}
	task, err := store.GetTask(ctx, taskID)
	if err != nil || task.Name != "remind" || task.AgentID != id {
		t.Errorf("GetTask = %+v, %v", task, err)
	}
	room := sdk.StringToUUID("room")
	if _, _, err := store.CreateMemory(ctx, &sdk.Memory{ID: sdk.StringToUUID("m"), EntityID: id, RoomID: room,
		Content: sdk.Content{Text: "kept in SQLite"}}, sdk.TableMessages, false); err != nil {
		t.Fatalf("CreateMemory: %v", err)
	}
	got, err := store.GetMemories(ctx, storage.MemoryQuery{RoomID: room, Table: sdk.TableMessages})
	if err != nil || len(got) != 1 || got[0].Content.Text != "kept in SQLite" {
		t.Errorf("GetMemories = %+v, %v", got, err)
	}
	if len(rt.Memories()) != 0 {
		t.Errorf("the memory went to memory too: %+v", rt.Memories())
	}
	// After Unconfigure the plugin no longer serves the agent.
	if err := c.Unconfigure(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := store.GetTask(ctx, taskID); !errors.Is(err, sdk.ErrNotFound) {
		t.Errorf("storage for an agent the plugin no longer serves: %v, want sdk.ErrNotFound", err)
	}
}
