package host

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agenthost/agenthost/internal/contract"
	"github.com/agenthost/agenthost/internal/sysmon"
	"github.com/agenthost/agenthost/internal/testwait"
	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/character"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

func TestAPIAgentLifecycle(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOpt{})

	var list struct {
		Agents []agentJSON `json:"agents"`
	}
	td.ok(200, "GET", "/api/agents", nil, &list)
	if len(list.Agents) != 1 || list.Agents[0].Name != "Eliza" || list.Agents[0].Status != "running" {
		t.Fatalf("agents = %+v", list.Agents)
	}
	if want := []string{"sql", "bootstrap", "offline"}; strings.Join(list.Agents[0].Plugins, ",") != strings.Join(want, ",") {
		t.Errorf("plugins = %v, want %v", list.Agents[0].Plugins, want)
	}

	// Create from a character JSON, not started.
	char := map[string]any{"name": "Ada", "bio": []string{"A careful tester."}, "plugins": []string{"sql", "bootstrap", "offline"},
		"secrets": map[string]any{"TOKEN": "s3cret"}, "settings": map[string]any{"mood": "calm"}}
	var created struct {
		ID        string         `json:"id"`
		Name      string         `json:"name"`
		Status    string         `json:"status"`
		Character map[string]any `json:"character"`
	}
	td.ok(201, "POST", "/api/agents", map[string]any{"characterJson": char}, &created)
	if created.Name != "Ada" || created.Status != "stopped" || created.ID != sdk.StringToUUID("Ada") {
		t.Fatalf("created = %+v", created)
	}
	if sec := created.Character["secrets"].(map[string]any); sec["TOKEN"] != redacted {
		t.Errorf("secrets must be redacted, got %v", sec)
	}
	td.fails(409, "AGENT_EXISTS", "POST", "/api/agents", map[string]any{"characterJson": char})
	td.fails(409, "AGENT_EXISTS", "POST", "/api/agents", map[string]any{"character": map[string]any{"name": "ada", "bio": "x", "id": "5f4f0a40-2c1e-4c5b-9d7e-1a2b3c4d5e6f"}})

	// A stopped agent does not answer; the daemon stays healthy.
	td.fails(503, "AGENT_NOT_RUNNING", "POST", "/api/agents/Ada/messages", map[string]string{"text": "hi"})
	td.ok(200, "GET", "/healthz", nil, nil)

	// Start it and talk.
	var st agentJSON
	td.ok(200, "POST", "/api/agents/Ada/start", nil, &st)
	if st.Status != "running" {
		t.Fatalf("after start: %+v", st)
	}
	r := td.say("Ada", "tester", "I am feeling sad about my job")
	if !strings.Contains(strings.ToLower(r.Messages[0].Text), "your job") {
		t.Errorf("reply = %q", r.Messages[0].Text)
	}
	// Starting a running agent is a no-op.
	td.ok(200, "POST", "/api/agents/Ada/start", nil, &st)

	// Update: the bio changes, the secret stays, the agent restarts.
	var upd struct {
		Status    string         `json:"status"`
		Character map[string]any `json:"character"`
	}
	td.ok(200, "PATCH", "/api/agents/Ada", map[string]any{"bio": "A changed tester.", "secrets": map[string]any{"TOKEN": redacted, "OTHER": "x"}}, &upd)
	if upd.Status != "running" || fmt.Sprint(upd.Character["bio"]) != "[A changed tester.]" {
		t.Fatalf("after update: %+v", upd)
	}
	a := td.d.Agent("Ada")
	if v, _ := character.Setting(a.Character, "TOKEN", nil); v != "s3cret" {
		t.Errorf("a redacted secret sent back must keep its value, got %q", v)
	}
	if v, _ := character.Setting(a.Character, "OTHER", nil); v != "x" {
		t.Errorf("new secret = %q", v)
	}
	td.fails(400, "INVALID_CHARACTER", "PATCH", "/api/agents/Ada", map[string]any{"bio": 42})
	td.fails(400, "INVALID_CHARACTER", "PATCH", "/api/agents/Ada", map[string]any{"id": "5f4f0a40-2c1e-4c5b-9d7e-1a2b3c4d5e6f"})
	td.fails(409, "AGENT_EXISTS", "PATCH", "/api/agents/Ada", map[string]any{"name": "Eliza"})
	// Its memories survive the restart.
	if mems := td.memories("Ada", "roomId="+r.RoomID); len(mems) != 2 {
		t.Errorf("after the update, want the 2 memories of the first exchange, got %d", len(mems))
	}

	// Stop: listed as stopped, refuses messages.
	td.ok(200, "POST", "/api/agents/Ada/stop", nil, &st)
	if st.Status != "stopped" {
		t.Fatalf("after stop: %+v", st)
	}
	td.fails(503, "AGENT_NOT_RUNNING", "POST", "/api/agents/Ada/messages", map[string]string{"text": "hi"})
	// A stopped agent's stored data still reads.
	if mems := td.memories("Ada", "roomId="+r.RoomID); len(mems) != 2 {
		t.Errorf("a stopped agent's memories: got %d", len(mems))
	}
	td.ok(200, "POST", "/api/agents/Ada/start", nil, &st)
	td.say("Ada", "tester", "hello again")

	// Get by id and by name.
	var got struct {
		ID      string   `json:"id"`
		Plugins []string `json:"plugins"`
	}
	td.ok(200, "GET", "/api/agents/"+created.ID, nil, &got)
	if got.ID != created.ID || len(got.Plugins) != 3 {
		t.Errorf("get = %+v", got)
	}

	// Delete.
	td.ok(200, "DELETE", "/api/agents/Ada", nil, nil)
	td.fails(404, "AGENT_NOT_FOUND", "GET", "/api/agents/Ada", nil)
	td.ok(200, "GET", "/api/agents", nil, &list)
	if len(list.Agents) != 1 {
		t.Errorf("after delete: %+v", list.Agents)
	}
	// Created and started in one call.
	td.ok(201, "POST", "/api/agents", map[string]any{"agent": map[string]any{"name": "Bea", "bio": "x", "plugins": []string{"offline"}}, "start": true}, &created)
	if created.Status != "running" {
		t.Fatalf("start=true: %+v", created)
	}
	td.say("Bea", "u", "hello")
}

func TestAPIMemoriesRoomsWorlds(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOpt{})
	r1 := td.say("Eliza", "alice", "I like green tea")
	r2 := td.say("Eliza", "alice", "and also black tea")
	if r1.RoomID != r2.RoomID || r1.RoomID != UserRoomID(sdk.StringToUUID("Eliza"), "alice") {
		t.Fatalf("one user, one room: %s %s", r1.RoomID, r2.RoomID)
	}
	rb := td.say("Eliza", "bob", "hello from bob")

	mems := td.memories("Eliza", "roomId="+r1.RoomID)
	if len(mems) != 4 {
		t.Fatalf("alice's room: want 4 memories, got %d", len(mems))
	}
	// The room path form, count and before.
	var byRoom struct {
		Memories []memoryOut `json:"memories"`
	}
	td.ok(200, "GET", "/api/memory/Eliza/rooms/"+r1.RoomID+"/memories?count=2", nil, &byRoom)
	if len(byRoom.Memories) != 2 || byRoom.Memories[0].ID != mems[0].ID {
		t.Fatalf("count=2: %+v", byRoom.Memories)
	}
	// Every memory of the agent, any room.
	if all := td.memories("Eliza", "count=100"); len(all) < 6 {
		t.Errorf("all rooms: got %d memories", len(all))
	}

	// Delete one.
	td.ok(200, "DELETE", "/api/memory/Eliza/memories/"+mems[0].ID, nil, nil)
	td.fails(404, "MEMORY_NOT_FOUND", "DELETE", "/api/memory/Eliza/memories/"+mems[0].ID, nil)
	if n := len(td.memories("Eliza", "roomId="+r1.RoomID)); n != 3 {
		t.Errorf("after deleting one: %d", n)
	}

	// Rooms and worlds.
	var rooms struct {
		Rooms []map[string]any `json:"rooms"`
	}
	td.ok(200, "GET", "/api/agents/Eliza/rooms", nil, &rooms)
	ids := map[string]bool{}
	for _, r := range rooms.Rooms {
		ids[r["id"].(string)] = true
	}
	if !ids[r1.RoomID] || !ids[rb.RoomID] {
		t.Errorf("rooms %v lack alice's or bob's", ids)
	}
	var room map[string]any
	td.ok(200, "GET", "/api/agents/Eliza/rooms/"+r1.RoomID, nil, &room)
	if room["type"] != "DM" || len(room["participants"].([]any)) != 2 {
		t.Errorf("room = %v", room)
	}
	td.fails(404, "ROOM_NOT_FOUND", "GET", "/api/agents/Eliza/rooms/"+"00000000-0000-0000-0000-000000000001", nil)
	var worlds struct {
		Worlds []map[string]any `json:"worlds"`
	}
	td.ok(200, "GET", "/api/agents/Eliza/worlds", nil, &worlds)
	found := false
	for _, w := range worlds.Worlds {
		found = found || w["name"] == "API"
	}
	if !found {
		t.Errorf("worlds = %v", worlds.Worlds)
	}
	td.ok(200, "GET", "/api/agents/Eliza/rooms?worldId="+room["worldId"].(string), &rooms, &rooms)

	// Clear a room: bob's stays.
	var del struct {
		Deleted int64 `json:"deleted"`
	}
	td.ok(200, "DELETE", "/api/memory/Eliza/memories/all/"+r1.RoomID, nil, &del)
	if del.Deleted != 3 || len(td.memories("Eliza", "roomId="+r1.RoomID)) != 0 {
		t.Errorf("clear room: deleted %d", del.Deleted)
	}
	if n := len(td.memories("Eliza", "roomId="+rb.RoomID)); n != 2 {
		t.Errorf("bob's room after clearing alice's: %d", n)
	}
	// Clear everything.
	td.ok(200, "DELETE", "/api/memory/Eliza/memories", nil, &del)
	if del.Deleted < 2 || len(td.memories("Eliza", "count=100")) != 0 {
		t.Errorf("clear all: deleted %d", del.Deleted)
	}
}

func TestAPIRunsAndLogs(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOpt{})
	r := td.say("Eliza", "carol", "Why do I always forget my keys?")
	var runs struct {
		Runs []runJSON `json:"runs"`
	}
	testwait.ForNil(t, 10*time.Second, "the run and its steps", func() error {
		td.ok(200, "GET", "/api/agents/Eliza/runs?roomId="+r.RoomID, nil, &runs)
		if len(runs.Runs) != 1 {
			return fmt.Errorf("want 1 run, got %d", len(runs.Runs))
		}
		if len(runs.Runs[0].ModelCalls) == 0 || runs.Runs[0].Status == "running" {
			// The reply goes back before the handler returns: the
			// run may end a moment after.
			return fmt.Errorf("run without its steps or its end yet: %+v", runs.Runs[0])
		}
		return nil
	})
	run := runs.Runs[0]
	if run.Status != "completed" || run.MessageID != r.MessageID || run.Replies != 1 || run.Source != "api" {
		t.Errorf("run = %+v", run)
	}
	if d := run.EndedAt - run.StartedAt - run.DurationMs; run.EndedAt < run.StartedAt || d < -1 || d > 1 {
		t.Errorf("timings: start %d end %d duration %d", run.StartedAt, run.EndedAt, run.DurationMs)
	}
	types := map[string]bool{}
	for _, m := range run.ModelCalls {
		types[fmt.Sprint(m["modelType"])] = true
		if m["provider"] != "offline" || m["durationMs"] == nil {
			t.Errorf("model call = %v", m)
		}
		if _, ok := m["prompt"]; ok {
			t.Error("the run list must not carry prompts")
		}
	}
	if !types["TEXT_LARGE"] && !types["TEXT_SMALL"] {
		t.Errorf("model calls = %v", run.ModelCalls)
	}
	for _, a := range run.Actions {
		if a["action"] == "" || a["success"] == nil || a["durationMs"] == nil {
			t.Errorf("action = %v", a)
		}
	}

	// One run in full: prompts included.
	var one runJSON
	td.ok(200, "GET", "/api/agents/Eliza/runs/"+run.RunID, nil, &one)
	if one.RunID != run.RunID || len(one.ModelCalls) == 0 {
		t.Fatalf("run = %+v", one)
	}
	hasPrompt := false
	for _, m := range one.ModelCalls {
		if p, _ := m["prompt"].(string); strings.Contains(p, "forget my keys") {
			hasPrompt = true
		}
	}
	if !hasPrompt {
		t.Errorf("the full run should carry the prompt with the message: %v", one.ModelCalls)
	}
	td.fails(404, "RUN_NOT_FOUND", "GET", "/api/agents/Eliza/runs/00000000-0000-0000-0000-000000000009", nil)

	// Logs, by type and excluding types.
	var logs struct {
		Logs []map[string]any `json:"logs"`
	}
	td.ok(200, "GET", "/api/agents/Eliza/logs?type=run", nil, &logs)
	if len(logs.Logs) != 1 || logs.Logs[0]["type"] != "run" || logs.Logs[0]["roomId"] != r.RoomID {
		t.Fatalf("run logs = %v", logs.Logs)
	}
	td.ok(200, "GET", "/api/agents/Eliza/logs?count=200&excludeTypes=action,run", nil, &logs)
	for _, l := range logs.Logs {
		if ty := l["type"].(string); ty == "action" || ty == "run" {
			t.Errorf("excluded type listed: %v", ty)
		}
	}
}

func TestAPIServerAndPlugins(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOpt{})
	var health map[string]any
	td.ok(200, "GET", "/api/health", nil, &health)
	if health["status"] != "ok" {
		t.Errorf("health = %v", health)
	}
	var status map[string]any
	td.ok(200, "GET", "/api/status", nil, &status)
	if status["agentCount"] != float64(1) || status["version"] != "test" || status["authRequired"] != false {
		t.Errorf("status = %v", status)
	}
	var version map[string]any
	td.ok(200, "GET", "/api/version", nil, &version)
	if version["protocol"] != "agenthost.plugin.v1."+fmt.Sprint(contract.ProtocolMinor) {
		t.Errorf("version = %v", version)
	}
	var plugins struct {
		Plugins []struct {
			Name     string          `json:"name"`
			State    string          `json:"state"`
			PID      int             `json:"pid"`
			Restarts int             `json:"restarts"`
			Agents   []string        `json:"agents"`
			Manifest json.RawMessage `json:"manifest"`
		} `json:"plugins"`
	}
	td.ok(200, "GET", "/api/plugins", nil, &plugins)
	if len(plugins.Plugins) != 3 {
		t.Fatalf("plugins = %+v", plugins.Plugins)
	}
	for _, p := range plugins.Plugins {
		if p.State != "running" || p.PID == 0 || len(p.Agents) != 1 || p.Agents[0] != "Eliza" {
			t.Errorf("plugin %+v", p)
		}
		var m map[string]any
		if err := json.Unmarshal(p.Manifest, &m); err != nil || m["name"] != p.Name {
			t.Errorf("plugin %s manifest %s", p.Name, p.Manifest)
		}
	}
	var one map[string]any
	td.ok(200, "GET", "/api/plugins/@elizaos%2Fplugin-sql", nil, &one)
	if one["name"] != "sql" {
		t.Errorf("by alias: %v", one)
	}
	td.fails(404, "PLUGIN_NOT_FOUND", "GET", "/api/plugins/nope", nil)
	td.fails(404, "NOT_FOUND", "GET", "/api/nothing/here", nil)
	msg := td.fails(405, "METHOD_NOT_ALLOWED", "PUT", "/api/agents", "{}")
	if !strings.Contains(msg, "GET, POST") {
		t.Errorf("405 should list the methods: %s", msg)
	}
}

// A real plugin process starts with the GOMAXPROCS the daemon chose for it
// (pluginProcs, or the operator's), which its Go runtime reads as it starts.
func TestPluginProcessGetsGOMAXPROCS(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	want := "GOMAXPROCS=" + strconv.Itoa(pluginProcs())
	if v := os.Getenv("GOMAXPROCS"); v != "" {
		want = "GOMAXPROCS=" + v // the operator's, as it is
	}
	if env := offlineEnviron(t); !slices.Contains(env, want) {
		t.Errorf("the offline plugin's environment lacks %s: %q", want, env)
	}
}

// offlineEnviron is the environment of a real offline plugin process.
func offlineEnviron(t *testing.T) []string {
	t.Helper()
	td := startTestDaemon(t, daemonOpt{})
	pid := td.d.Manager().Plugin("offline").PID()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(string(b), "\x00")
}

// A real plugin process starts with the Go runtime's monitor kept awake
// (internal/sysmon): GODEBUG names schedtrace, the operator's value or
// sysmon.Setting, and keeps the operator's other settings.
func TestPluginProcessKeepsSysmonAwake(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	want := sysmon.With([]string{"GODEBUG=" + os.Getenv("GODEBUG")})[0]
	if env := offlineEnviron(t); !slices.Contains(env, want) {
		t.Errorf("the offline plugin's environment lacks %s: %q", want, env)
	}
}

func TestPluginRestartShowsInAPI(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOpt{})
	p := td.d.Manager().Plugin("offline")
	pid := p.PID()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testwait.ForNil(t, 30*time.Second, "the offline plugin to be restarted", func() error {
		var one struct {
			State    string `json:"state"`
			Restarts int    `json:"restarts"`
			PID      int    `json:"pid"`
		}
		td.ok(200, "GET", "/api/plugins/offline", nil, &one)
		if one.State != "running" || one.Restarts != 1 || one.PID == pid {
			return fmt.Errorf("after a kill: %+v", one)
		}
		return nil
	})
	td.say("Eliza", "dave", "are you back?")
}

// TestUnknownPluginIsRefused: creating or changing an agent to use a plugin
// the daemon does not have is a 400 that names it and lists the known
// ones; nothing is stored, and a running agent runs on untouched.
func TestUnknownPluginIsRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	td := startTestDaemon(t, daemonOpt{dataDir: dir})
	pid := td.d.Manager().Plugin("offline").PID()
	before := td.say("Eliza", "ann", "hello")

	for _, body := range []map[string]any{
		{"characterJson": map[string]any{"name": "Mal", "bio": "x", "plugins": []string{"offline", "nosuchplugin"}}, "start": true},
		{"characterJson": map[string]any{"name": "Mal", "bio": "x", "plugins": []string{"@elizaos/plugin-nosuchplugin"}}},
	} {
		msg := td.fails(400, "UNKNOWN_PLUGIN", "POST", "/api/agents", body)
		if !strings.Contains(msg, "nosuchplugin") || !strings.Contains(msg, "bootstrap, offline, sql") {
			t.Errorf("the error should name the plugin and list the known ones: %s", msg)
		}
	}
	td.fails(404, "AGENT_NOT_FOUND", "GET", "/api/agents/Mal", nil)

	// A change to the running agent.
	msg := td.fails(400, "UNKNOWN_PLUGIN", "PATCH", "/api/agents/Eliza", map[string]any{"plugins": []string{"offline", "nosuchplugin"}, "bio": "changed"})
	if !strings.Contains(msg, "nosuchplugin") {
		t.Errorf("PATCH error: %s", msg)
	}
	var eliza struct {
		Status    string         `json:"status"`
		Plugins   []string       `json:"plugins"`
		Character map[string]any `json:"character"`
	}
	td.ok(200, "GET", "/api/agents/Eliza", nil, &eliza)
	if eliza.Status != "running" || strings.Contains(fmt.Sprint(eliza.Character), "nosuchplugin") || fmt.Sprint(eliza.Character["bio"]) == "changed" {
		t.Fatalf("the refused change touched the agent: %+v", eliza)
	}
	if p := td.d.Manager().Plugin("offline").PID(); p != pid {
		t.Errorf("the agent's plugins were restarted: pid %d → %d", pid, p)
	}
	after := td.say("Eliza", "ann", "still here?")
	if after.RoomID != before.RoomID {
		t.Errorf("rooms differ: %s %s", before.RoomID, after.RoomID)
	}
	td.ok(200, "GET", "/healthz", nil, nil)
	var health map[string]any
	td.ok(200, "GET", "/api/health", nil, &health)
	if health["status"] != "ok" {
		t.Errorf("health after refused changes: %v", health)
	}
	// A stopped agent, too.
	td.ok(200, "POST", "/api/agents/Eliza/stop", nil, nil)
	td.fails(400, "UNKNOWN_PLUGIN", "PATCH", "/api/agents/Eliza", map[string]any{"plugins": []string{"nosuchplugin"}})

	// Nothing of it was stored: a daemon on the same data dir sees Eliza as
	// she was (stopped) and no Mal.
	td.stop()
	td = startTestDaemon(t, daemonOpt{dataDir: dir})
	wantStatuses(t, td.statuses(), map[string]string{"Eliza": "running"})
	td.ok(200, "GET", "/api/agents/Eliza", nil, &eliza)
	if strings.Contains(fmt.Sprint(eliza.Character), "nosuchplugin") {
		t.Errorf("the refused change was stored: %+v", eliza.Character)
	}
}

// TestHealthzIsTheDaemonsOwn: a stored agent that can never start (its
// plugin is gone) is listed with its reason in /api/health, which says
// "degraded", while /healthz — the daemon's liveness — stays 200.
func TestHealthzIsTheDaemonsOwn(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	td := startOn(t, dir, nil)
	_, c, err := td.d.storeConn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	gus := sdk.StringToUUID("Gus")
	if _, err := c.db.EnsureAgent(context.Background(), &pb.EnsureAgentRequest{Agent: &pb.Agent{Id: gus, Name: "Gus", Enabled: true,
		CharacterJson: []byte(`{"name": "Gus", "bio": "x", "plugins": ["offline", "gonenow"]}`)}}); err != nil {
		t.Fatal(err)
	}
	td.stop()

	td = startOn(t, dir, nil)
	wantStatuses(t, td.statuses(), map[string]string{"Eliza": "running", "Gus": "failed"})
	var live map[string]any
	td.ok(200, "GET", "/healthz", nil, &live)
	if live["status"] != "ok" {
		t.Errorf("healthz = %v", live)
	}
	var health struct {
		Status       string `json:"status"`
		Agents       int    `json:"agents"`
		FailedAgents []struct {
			ID, Name, Status, Error string
		} `json:"failedAgents"`
		FailedPlugins []map[string]any `json:"failedPlugins"`
	}
	td.ok(200, "GET", "/api/health", nil, &health)
	if health.Status != "degraded" || health.Agents != 2 || len(health.FailedAgents) != 1 || len(health.FailedPlugins) != 0 {
		t.Fatalf("health = %+v", health)
	}
	if f := health.FailedAgents[0]; f.Name != "Gus" || f.ID != gus || f.Status != "failed" || !strings.Contains(f.Error, "gonenow") {
		t.Errorf("the failed agent should be listed with why: %+v", f)
	}
	td.say("Eliza", "ann", "the others run")
	td.ok(200, "POST", "/api/agents/Gus/stop", nil, nil)
	td.ok(200, "GET", "/api/health", nil, &health)
	if health.Status != "ok" || len(health.FailedAgents) != 0 {
		t.Errorf("after stopping the failed agent: %+v", health)
	}
}

// TestStaleSocketRemovedOnRestart: a plugin killed with SIGKILL leaves its
// socket behind in PLUGIN_UNIX_SOCKET_DIR, the folder the host gives it;
// the host empties that folder before the next process starts in it.
func TestStaleSocketRemovedOnRestart(t *testing.T) {
	td := startTestDaemon(t, daemonOpt{})
	m := td.d.Manager()
	p := m.Plugin("offline")
	dir := filepath.Join(m.rtDir, "p", "offline")
	sockets := func() []string {
		entries, _ := os.ReadDir(dir)
		var out []string
		for _, e := range entries {
			if e.Type()&os.ModeSocket != 0 {
				out = append(out, e.Name())
			}
		}
		return out
	}
	before := sockets()
	if len(before) != 1 {
		t.Fatalf("want the plugin's one socket in %s, got %v", dir, before)
	}
	pid := p.PID()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testwait.ForNil(t, 30*time.Second, "the plugin restarted", func() error {
		if st, _ := p.State(); st != StateRunning || p.PID() == pid {
			return fmt.Errorf("the plugin was not restarted: %s", st)
		}
		return nil
	})
	after := sockets()
	if len(after) != 1 || after[0] == before[0] {
		t.Errorf("after the restart the folder holds %v; the killed process's %s should be gone and the new one's there", after, before[0])
	}
}

// TestDeletedMessagesLeaveTheNextPrompt deletes a message over the API,
// then clears its room, each right before the next message: the
// conversation that message's prompt shows has lost them at once.
// Bootstrap keeps a room's recent messages for two seconds; the host tells
// the agent's plugins of the deletions (MESSAGE_DELETED, CHANNEL_CLEARED),
// as elizaOS's message bus does, before it answers.
func TestDeletedMessagesLeaveTheNextPrompt(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOpt{})
	first := td.say("Eliza", "dora", "I keep a diary about whales")
	td.say("Eliza", "dora", "I saw a heron today")
	td.ok(200, "DELETE", "/api/memory/Eliza/memories/"+first.MessageID, nil, nil)
	r := td.say("Eliza", "dora", "What do you remember")
	convo := td.conversation(r)
	// The agent's answer to it stays (the offline model echoes it).
	if strings.Contains(convo, "dora: I keep a diary") || !strings.Contains(convo, "dora: I saw a heron") {
		t.Errorf("after the first message was deleted, the next prompt's conversation is:\n%s", convo)
	}
	td.ok(200, "DELETE", "/api/memory/Eliza/memories/all/"+r.RoomID, nil, nil)
	r = td.say("Eliza", "dora", "Anything else")
	if convo := td.conversation(r); strings.Contains(convo, "heron") || strings.Contains(convo, "remember") ||
		!strings.Contains(convo, "Anything else") {
		t.Errorf("after the room was cleared, the next prompt's conversation is:\n%s", convo)
	}
}

// conversation is the "# Conversation Messages" part of the prompt the
// run of the message r sent asked the model with.
func (td *testDaemon) conversation(r sayResult) string {
	td.t.Helper()
	var convo string
	testwait.ForNil(td.t, 10*time.Second, "the run's prompt in the timeline", func() error {
		var runs struct {
			Runs []runJSON `json:"runs"`
		}
		td.ok(200, "GET", "/api/agents/Eliza/runs?roomId="+r.RoomID, nil, &runs)
		for _, run := range runs.Runs {
			if run.MessageID != r.MessageID {
				continue
			}
			// A run still in flight is listed before the timeline has it.
			code, env := td.do("GET", "/api/agents/Eliza/runs/"+run.RunID, nil)
			var one runJSON
			if code != 200 || json.Unmarshal(env.Data, &one) != nil {
				continue
			}
			for _, m := range one.ModelCalls {
				p, _ := m["prompt"].(string)
				if _, c, ok := strings.Cut(p, "# Conversation Messages\n"); ok {
					convo, _, _ = strings.Cut(c, "\n\n")
					return nil
				}
			}
		}
		return fmt.Errorf("no prompt with the conversation yet for message %s", r.MessageID)
	})
	return convo
}
