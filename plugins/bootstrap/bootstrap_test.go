package bootstrap

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenthost/agenthost/internal/testwait"
	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/plugintest"
	"github.com/agenthost/agenthost/sdk/storage"
	"github.com/google/uuid"
)

// These tests run the plugin over the real gRPC path with plugintest's
// in-memory Runtime playing the host (the race detector sees the plugin's
// concurrency here; the end-to-end tests in cmd/agenthost run it in its own
// process).

const agentID = "7e1b0a4c-0000-4000-8000-000000000001"

type fixture struct {
	b     *bootstrap
	c     *plugintest.Client
	rt    *plugintest.Runtime
	a     *sdk.Agent // a client of the Runtime, as another plugin process would hold
	model func(req sdk.ModelRequest) string
}

func newFixture(t *testing.T, settings map[string]string, model func(req sdk.ModelRequest) string) *fixture {
	t.Helper()
	f := &fixture{rt: &plugintest.Runtime{}, model: model}
	f.rt.Model = func(ctx context.Context, req sdk.ModelRequest) (*sdk.ModelResponse, error) {
		if req.Type == sdk.ModelTextEmbedding {
			return nil, fmt.Errorf("no embeddings here")
		}
		return &sdk.ModelResponse{Text: f.model(req)}, nil
	}
	f.b = newBootstrap(CacheStore())
	f.c = plugintest.Start(t, f.b.plugin(), plugintest.WithRuntime(f.rt))
	if settings == nil {
		settings = map[string]string{}
	}
	if _, ok := settings[SettingDisableReflexion]; !ok {
		settings[SettingDisableReflexion] = "true"
	}
	if _, err := f.c.Configure(context.Background(), agentID, &sdk.Character{Name: "Eliza", Bio: sdk.StringList{"A test agent."}}, settings); err != nil {
		t.Fatal(err)
	}
	// A second plugin of the agent: it holds the Runtime client the test
	// uses, and a message source, "test".
	probe := sdk.Plugin{Name: "probe",
		Sources: []sdk.Source{{Name: "test", Send: func(ctx context.Context, a *sdk.Agent, t sdk.Target, c sdk.Content) ([]string, error) {
			return []string{"sent"}, nil
		}}},
		Configure: func(ctx context.Context, a *sdk.Agent) ([]string, error) {
			f.a = a
			return nil, nil
		}}
	pc := plugintest.Start(t, probe, plugintest.WithRuntime(f.rt))
	if _, err := pc.Configure(context.Background(), agentID, &sdk.Character{Name: "Eliza"}, nil); err != nil {
		t.Fatal(err)
	}
	return f
}

// connect makes the room, its world and the sender, as the host does for
// an incoming message.
func (f *fixture) connect(t *testing.T, roomID, worldID, userID, userName string, typ sdk.ChannelType) {
	t.Helper()
	c := storage.Connection{Entity: sdk.Entity{ID: userID, Names: []string{userName}},
		Room:  sdk.Room{ID: roomID, Name: "room", Source: "test", Type: typ, WorldID: worldID},
		World: sdk.World{ID: worldID, Name: "World"}}
	if err := storage.For(f.a).EnsureConnection(context.Background(), c); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) message(roomID, worldID, userID, text string, typ sdk.ChannelType) *sdk.Memory {
	return &sdk.Memory{ID: uuid.NewString(), EntityID: userID, RoomID: roomID, WorldID: worldID, CreatedAt: time.Now().UnixMilli(),
		Content: sdk.Content{Text: text, Source: "test", ChannelType: typ}}
}

func (f *fixture) receive(t *testing.T, msg *sdk.Memory) {
	t.Helper()
	if err := f.c.HandleEvent(context.Background(), agentID, sdk.Event{Type: sdk.EventMessageReceived, RunID: uuid.NewString(),
		Source: "test", Message: msg}); err != nil {
		t.Fatal(err)
	}
}

func runsEnded(evs []sdk.Event) (started, ended int, reasons []string) {
	for _, e := range evs {
		switch e.Type {
		case sdk.EventRunStarted:
			started++
		case sdk.EventRunEnded:
			ended++
			r, _ := e.Payload["reason"].(string)
			reasons = append(reasons, r)
		}
	}
	return
}

// waitRunsEnded waits for n RUN_ENDED events: a run that replied sends it
// after its handler returned.
func waitRunsEnded(t *testing.T, f *fixture, n int) {
	t.Helper()
	testwait.For(t, 10*time.Second, fmt.Sprintf("%d RUN_ENDED events", n), func() bool {
		_, e, _ := runsEnded(f.rt.Events())
		return e >= n
	})
}

func xmlReply(text string) string {
	return "<response><thought>t</thought><actions>REPLY</actions><providers></providers><text>" + text + "</text></response>"
}

func TestPipelineDMReply(t *testing.T) {
	t.Parallel()
	var prompt string
	var mu sync.Mutex
	f := newFixture(t, nil, func(req sdk.ModelRequest) string {
		mu.Lock()
		prompt = req.Prompt
		mu.Unlock()
		return xmlReply("hello Ann")
	})
	room, world, ann := uuid.NewString(), uuid.NewString(), uuid.NewString()
	f.connect(t, room, world, ann, "Ann", sdk.ChannelDM)
	f.receive(t, f.message(room, world, ann, "hi there", sdk.ChannelDM))
	res := f.rt.Responses()
	if len(res) != 1 || res[0].Text != "hello Ann" || res[0].Source != "test" {
		t.Fatalf("responses = %+v", res)
	}
	var texts []string
	for _, m := range f.rt.Memories() {
		texts = append(texts, m.Content.Text)
	}
	if strings.Join(texts, "|") != "hi there|hello Ann" {
		t.Errorf("stored = %q", texts)
	}
	for _, want := range []string{"# Agent: Eliza", "# About Eliza", "# Available Actions", "# Conversation Messages\nAnn: hi there", "# Received Message\nAnn: hi there", "<response>"} {
		if !strings.Contains(prompt, want) {
			t.Errorf("prompt lacks %q:\n%s", want, prompt)
		}
	}
	// The offline model takes a prompt naming RESPOND, IGNORE and STOP for
	// the should-respond question: the main prompt, providers included,
	// must never look like it.
	if strings.Contains(prompt, "RESPOND") && strings.Contains(prompt, "IGNORE") && strings.Contains(prompt, "STOP") {
		t.Errorf("the main prompt looks like the should-respond question:\n%s", prompt)
	}
	waitRunsEnded(t, f, 1)
	if s, e, _ := runsEnded(f.rt.Events()); s != 1 || e != 1 {
		t.Errorf("runs: started %d, ended %d", s, e)
	}
}

// Five deliveries of one message at once: stored once, answered once.
func TestPipelineDuplicatesAtOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, func(req sdk.ModelRequest) string { return xmlReply("once") })
	room, world, ann := uuid.NewString(), uuid.NewString(), uuid.NewString()
	f.connect(t, room, world, ann, "Ann", sdk.ChannelDM)
	msg := f.message(room, world, ann, "hello", sdk.ChannelDM)
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.receive(t, msg)
		}()
	}
	wg.Wait()
	if n := len(f.rt.Responses()); n != 1 {
		t.Errorf("%d responses, want 1", n)
	}
	waitRunsEnded(t, f, 5)
	s, e, reasons := runsEnded(f.rt.Events())
	dups := 0
	for _, r := range reasons {
		if r == reasonDuplicate {
			dups++
		}
	}
	if s != 5 || e != 5 || dups != 4 {
		t.Errorf("runs: started %d, ended %d, duplicates %d", s, e, dups)
	}
}

// In a group, TEXT_SMALL decides; IGNORE is stored, not sent.
func TestPipelineGroupIgnore(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, func(req sdk.ModelRequest) string {
		if req.Type == sdk.ModelTextSmall {
			return "<response><name>Eliza</name><reasoning>not for me</reasoning><action>IGNORE</action></response>"
		}
		return xmlReply("should not be sent")
	})
	room, world, ann := uuid.NewString(), uuid.NewString(), uuid.NewString()
	f.connect(t, room, world, ann, "Ann", sdk.ChannelGroup)
	f.receive(t, f.message(room, world, ann, "what a game", sdk.ChannelGroup))
	if n := len(f.rt.Responses()); n != 0 {
		t.Fatalf("%d responses, want none", n)
	}
	ms := f.rt.Memories()
	if len(ms) != 2 || ms[1].Content.Actions[0] != "IGNORE" || !strings.Contains(ms[1].Content.Thought, "not for me") {
		t.Errorf("memories = %+v", ms)
	}
	if _, _, reasons := runsEnded(f.rt.Events()); len(reasons) != 1 || reasons[0] != reasonNotResponding {
		t.Errorf("reasons = %q", reasons)
	}
}

// The task service runs queued tasks once, repeating ones again, with an
// in-process worker, here over the cache store.
func TestTaskService(t *testing.T) {
	var ran sync.Map
	RegisterTaskWorker(TaskWorker{Name: "TEST_WORKER", Execute: func(ctx context.Context, a *sdk.Agent, task *Task, _ map[string]any) error {
		n, _ := ran.LoadOrStore(task.Metadata["label"], new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		return nil
	}})
	f := newFixture(t, map[string]string{SettingTaskTick: "20"}, func(req sdk.ModelRequest) string { return "" })
	a := f.a
	store := CacheStore()
	ctx := context.Background()
	for _, task := range []Task{
		{Name: "TEST_WORKER", Tags: []string{"queue"}, Metadata: map[string]any{"label": "once"}},
		{Name: "TEST_WORKER", Tags: []string{"queue", "repeat"}, Metadata: map[string]any{"label": "repeat", "updateInterval": 30.0}},
		{Name: "TEST_WORKER", Tags: []string{"later"}, Metadata: map[string]any{"label": "unqueued"}},
		{Name: "NOBODY", Tags: []string{"queue"}, Metadata: map[string]any{"label": "no worker"}},
	} {
		if _, err := store.CreateTask(ctx, a, task); err != nil {
			t.Fatal(err)
		}
	}
	count := func(label string) int64 {
		if n, ok := ran.Load(label); ok {
			return n.(*atomic.Int64).Load()
		}
		return 0
	}
	testwait.ForNil(t, 10*time.Second, "the repeating task to run 3 times", func() error {
		if n := count("repeat"); n < 3 {
			return fmt.Errorf("it ran %d times", n)
		}
		return nil
	})
	if count("once") != 1 || count("unqueued") != 0 {
		t.Errorf("once ran %d times, unqueued %d", count("once"), count("unqueued"))
	}
	left, err := store.Tasks(ctx, a, TaskQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 3 {
		t.Errorf("want the one-shot task deleted and 3 left, got %d", len(left))
	}
}

// Two CacheStores of one process (the task service's and a worker's) share
// the task index: creates through one and deletes through the other lose
// no task.
func TestCacheStoresOfOneProcessShareTheTaskIndex(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, func(req sdk.ModelRequest) string { return "" })
	ctx := context.Background()
	one, two := CacheStore(), CacheStore()
	doomed := make([]string, 20)
	for i := range doomed {
		id, err := one.CreateTask(ctx, f.a, Task{Name: "DOOMED"})
		if err != nil {
			t.Fatal(err)
		}
		doomed[i] = id
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range 20 {
			if _, err := one.CreateTask(ctx, f.a, Task{Name: "KEPT", Metadata: map[string]any{"i": float64(i)}}); err != nil {
				t.Error(err)
			}
		}
	}()
	go func() {
		defer wg.Done()
		for _, id := range doomed {
			if err := two.DeleteTask(ctx, f.a, id); err != nil {
				t.Error(err)
			}
		}
	}()
	wg.Wait()
	left, err := two.Tasks(ctx, f.a, TaskQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 20 {
		t.Fatalf("want the 20 new tasks and none of the deleted, got %d", len(left))
	}
	for _, task := range left {
		if task.Name != "KEPT" {
			t.Errorf("a deleted task is back: %+v", task)
		}
	}
}

// UPDATE_ROLE follows elizaOS's hierarchy: an owner makes an admin, an
// admin cannot make an owner.
func TestUpdateRole(t *testing.T) {
	t.Parallel()
	answer := ""
	f := newFixture(t, nil, func(req sdk.ModelRequest) string { return answer })
	a := f.a
	room, world := uuid.NewString(), uuid.NewString()
	owner, bob, cat := uuid.NewString(), uuid.NewString(), uuid.NewString()
	ctx := context.Background()
	for _, u := range []struct{ id, name string }{{owner, "Olga"}, {bob, "Bob"}, {cat, "Cat"}} {
		f.connect(t, room, world, u.id, u.name, sdk.ChannelGroup)
	}
	if err := storage.For(a).UpsertWorld(ctx, sdk.World{ID: world, Name: "World", Metadata: map[string]any{"ownership": map[string]any{"ownerId": owner}}}); err != nil {
		t.Fatal(err)
	}
	role := func(id string) string {
		ws, _ := storage.For(a).GetWorlds(ctx, world)
		return roleOf(&ws[0], id)
	}
	answer = "<response><assignments><assignment><entityId>Bob</entityId><newRole>ADMIN</newRole></assignment></assignments></response>"
	res, err := f.c.RunAction(ctx, agentID, "UPDATE_ROLE", f.message(room, world, owner, "make Bob an admin", sdk.ChannelGroup), nil)
	if err != nil || !res.Success || role(bob) != RoleAdmin {
		t.Fatalf("owner → Bob admin: %+v %v, role %s", res, err, role(bob))
	}
	answer = "<response><assignments><assignment><entityId>" + cat + "</entityId><newRole>OWNER</newRole></assignment></assignments></response>"
	res, _ = f.c.RunAction(ctx, agentID, "UPDATE_ROLE", f.message(room, world, bob, "make Cat the owner", sdk.ChannelGroup), nil)
	if res.Success || role(cat) != RoleNone || !strings.Contains(res.Text, "cannot") {
		t.Errorf("an admin must not make an owner: %+v, role %s", res, role(cat))
	}
	if n := len(f.rt.Responses()); n != 2 {
		t.Errorf("each change is answered: %d responses", n)
	}
}

// UPDATE_SETTINGS saves values the owner gives in a DM and asks for the
// next required setting.
func TestUpdateSettings(t *testing.T) {
	t.Parallel()
	answer := "<response><settings><setting><key>botName</key><value>Robo</value></setting><setting><key>unknown</key><value>x</value></setting></settings></response>"
	f := newFixture(t, nil, func(req sdk.ModelRequest) string { return answer })
	a := f.a
	room, world, owner := uuid.NewString(), uuid.NewString(), uuid.NewString()
	ctx := context.Background()
	f.connect(t, room, world, owner, "Olga", sdk.ChannelDM)
	settings := map[string]any{
		"botName":  map[string]any{"name": "Bot name", "description": "What to call the bot", "required": true},
		"greeting": map[string]any{"name": "Greeting", "description": "How to greet newcomers", "required": true},
	}
	if err := storage.For(a).UpsertWorld(ctx, sdk.World{ID: world, Metadata: map[string]any{"ownership": map[string]any{"ownerId": owner}, "settings": settings}}); err != nil {
		t.Fatal(err)
	}
	msg := f.message(room, world, owner, "call the bot Robo", sdk.ChannelDM)
	valid, err := f.c.ValidateActions(ctx, agentID, []string{"UPDATE_SETTINGS", "UPDATE_ROLE"}, msg)
	if err != nil || len(valid) != 1 || valid[0] != "UPDATE_SETTINGS" {
		t.Fatalf("valid = %v %v", valid, err)
	}
	res, err := f.c.RunAction(ctx, agentID, "UPDATE_SETTINGS", msg, nil)
	if err != nil || !res.Success {
		t.Fatalf("%+v %v", res, err)
	}
	ws, _ := storage.For(a).GetWorlds(ctx, world)
	if v := worldSettings(&ws[0])["botName"]["value"]; v != "Robo" {
		t.Errorf("botName = %v", v)
	}
	if r := f.rt.Responses(); len(r) != 1 || !strings.Contains(r[0].Text, "Next I need greeting") {
		t.Errorf("responses = %+v", r)
	}
	// Someone else in the same DM world may not.
	other := uuid.NewString()
	f.connect(t, room, world, other, "Eve", sdk.ChannelDM)
	if valid, _ := f.c.ValidateActions(ctx, agentID, []string{"UPDATE_SETTINGS"}, f.message(room, world, other, "x", sdk.ChannelDM)); len(valid) != 0 {
		t.Error("only the owner may update settings")
	}
}

// SEND_MESSAGE sends what the model extracted (not the incoming text) to a
// person's DM room on the named source.
func TestSendMessage(t *testing.T) {
	t.Parallel()
	source := "test"
	f := newFixture(t, nil, func(req sdk.ModelRequest) string {
		return "<response><targetType>user</targetType><source>" + source + "</source><target>Bob</target><message>meeting moved to 3pm</message></response>"
	})
	room, world, ann, bob := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	dm := uuid.NewString()
	f.connect(t, room, world, ann, "Ann", sdk.ChannelGroup)
	f.connect(t, room, world, bob, "Bob", sdk.ChannelGroup)
	if err := storage.For(f.a).EnsureConnection(context.Background(), storage.Connection{Entity: sdk.Entity{ID: bob, Names: []string{"Bob"}},
		Room: sdk.Room{ID: dm, Source: "test", Type: sdk.ChannelDM, ChannelID: "dm-bob", WorldID: world}}); err != nil {
		t.Fatal(err)
	}
	msg := f.message(room, world, ann, "tell Bob the meeting moved to 3pm", sdk.ChannelGroup)
	if valid, _ := f.c.ValidateActions(context.Background(), agentID, []string{"SEND_MESSAGE"}, msg); len(valid) != 1 {
		t.Fatalf("SEND_MESSAGE should be offered to an agent with a message source: %v", valid)
	}
	res, err := f.c.RunAction(context.Background(), agentID, "SEND_MESSAGE", msg, nil)
	if err != nil || !res.Success {
		t.Fatalf("%+v %v", res, err)
	}
	sent := f.rt.Sent()
	if len(sent) != 1 || sent[0].Content.Text != "meeting moved to 3pm" || sent[0].Target.RoomID != dm ||
		sent[0].Target.ChannelID != "dm-bob" || sent[0].Target.EntityID != bob {
		t.Errorf("sent = %+v", sent)
	}
	source = "carrier-pigeon"
	if res, _ := f.c.RunAction(context.Background(), agentID, "SEND_MESSAGE", msg, nil); res.Success || !strings.Contains(res.Error, "cannot send") {
		t.Errorf("an unknown source must fail: %+v", res)
	}
}

// A bad setting does not stop the agent's message handling: it is a
// warning that names it, and the default is used.
func TestBadSettingIsAWarning(t *testing.T) {
	t.Parallel()
	c := plugintest.Start(t, NewWithStore(CacheStore()))
	w, err := c.Configure(context.Background(), agentID, &sdk.Character{Name: "Eliza"},
		map[string]string{SettingConversationLen: "lots", SettingRespondToBots: "sometimes", SettingDisableReflexion: "true"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`setting CONVERSATION_LENGTH: "lots" is not a whole number of at least 1; using the default, 32`,
		`setting RESPOND_TO_AGENTS: "sometimes" is not true or false; using the default, false`}
	if strings.Join(w, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings = %q, want %q", w, want)
	}
}
