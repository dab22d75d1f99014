package host

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/internal/testwait"
	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/character"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/hashicorp/go-hclog"
)

// startOn starts a daemon on dataDir with the characters given, or with
// the built-in default character when chars is nil, as `agenthost start`
// does without --character.
func startOn(t *testing.T, dataDir string, chars []*sdk.Character) *storedDaemon {
	t.Helper()
	def := chars == nil
	if def {
		chars = []*sdk.Character{character.Default()}
	}
	d, err := New(Config{
		Version: "test", DataDir: dataDir, Characters: chars, DefaultCharacter: def,
		Env: map[string]string{"AGENTHOST_RATE_LIMIT": "0"}, Self: agenthostBin,
		Bundled: []string{"bootstrap", "offline", "sql"}, DefaultPlugins: []string{"sql", "bootstrap", "offline"},
		Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: testWriter{t}}),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := d.Start(ctx); err != nil {
		d.Stop()
		t.Fatal(err)
	}
	srv := httptest.NewServer(d.Handler())
	td := &storedDaemon{testDaemon: &testDaemon{t: t, d: d, srv: srv, url: srv.URL}}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			srv.Close()
			d.Stop()
		}
	})
	td.stop = func() {
		stopped = true
		srv.CloseClientConnections()
		srv.Close()
		d.Stop()
	}
	return td
}

// storedDaemon is a test daemon that a test stops to start another on the
// same data dir.
type storedDaemon struct {
	*testDaemon
	stop func()
}

type listedAgent struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Error  string `json:"error"`
}

// statuses lists the agents as name → status.
func (td *testDaemon) statuses() map[string]listedAgent {
	td.t.Helper()
	var list struct {
		Agents []listedAgent `json:"agents"`
	}
	td.ok(200, "GET", "/api/agents", nil, &list)
	out := map[string]listedAgent{}
	for _, a := range list.Agents {
		out[a.Name] = a
	}
	return out
}

func wantStatuses(t *testing.T, got map[string]listedAgent, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("agents %+v, want %v", got, want)
	}
	for name, st := range want {
		if got[name].Status != st {
			t.Errorf("agent %s is %q (%s), want %q", name, got[name].Status, got[name].Error, st)
		}
	}
}

func offlineAgent(name string) map[string]any {
	return map[string]any{"characterJson": map[string]any{"name": name, "bio": "A test agent.", "plugins": []string{"offline"}}, "start": true}
}

// TestStoredAgentsAcrossRestarts: agents created over the API come back
// after a restart as they were left: running, stopped or removed.
func TestStoredAgentsAcrossRestarts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	td := startOn(t, dir, nil)
	td.ok(201, "POST", "/api/agents", offlineAgent("Ada"), nil)
	td.say("Ada", "ann", "remember that I like green tea")
	td.ok(201, "POST", "/api/agents", offlineAgent("Bo"), nil)
	td.ok(200, "POST", "/api/agents/Bo/stop", nil, nil)
	idle := offlineAgent("Cy")
	idle["start"] = false
	td.ok(201, "POST", "/api/agents", idle, nil)
	td.ok(201, "POST", "/api/agents", offlineAgent("Dee"), nil)
	deeRoom := td.say("Dee", "ann", "my name is Ann").RoomID
	td.ok(200, "DELETE", "/api/agents/Dee", nil, nil)
	td.stop()

	td = startOn(t, dir, nil)
	wantStatuses(t, td.statuses(), map[string]string{"Eliza": "running", "Ada": "running", "Bo": "stopped", "Cy": "stopped"})
	td.fails(404, "AGENT_NOT_FOUND", "GET", "/api/agents/Dee", nil)
	td.say("Ada", "ann", "hello again")
	if !td.d.Healthy() {
		t.Error("unhealthy with every stored agent as it was left")
	}
	// The default agent stopped over the API stays stopped; one removed
	// is gone, one started runs.
	td.ok(200, "POST", "/api/agents/Eliza/stop", nil, nil)
	td.ok(200, "DELETE", "/api/agents/Cy", nil, nil)
	td.ok(200, "POST", "/api/agents/Bo/start", nil, nil)
	// A stored agent whose plugin is no longer found.
	_, c, err := td.d.storeConn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	gus := sdk.StringToUUID("Gus")
	if _, err := c.db.EnsureAgent(context.Background(), &pb.EnsureAgentRequest{Agent: &pb.Agent{Id: gus, Name: "Gus", Enabled: true,
		CharacterJson: []byte(`{"name": "Gus", "bio": "x", "plugins": ["offline", "nosuchplugin"]}`)}}); err != nil {
		t.Fatal(err)
	}
	td.stop()

	td = startOn(t, dir, nil)
	got := td.statuses()
	wantStatuses(t, got, map[string]string{"Eliza": "stopped", "Ada": "running", "Bo": "running", "Gus": "failed"})
	if !strings.Contains(got["Gus"].Error, "nosuchplugin") {
		t.Errorf("the failed agent should say why: %q", got["Gus"].Error)
	}
	if td.d.Healthy() {
		t.Error("healthy with a stored agent that failed")
	}
	td.say("Bo", "ann", "hello")
	// Stopping the failed agent keeps it stopped, and the daemon healthy.
	td.ok(200, "POST", "/api/agents/Gus/stop", nil, nil)
	if !td.d.Healthy() {
		t.Error("unhealthy after the failed agent was stopped")
	}
	td.stop()

	td = startOn(t, dir, nil)
	wantStatuses(t, td.statuses(), map[string]string{"Eliza": "stopped", "Ada": "running", "Bo": "running", "Gus": "stopped"})
	// Created again, a removed agent is back with its memories.
	td.ok(201, "POST", "/api/agents", offlineAgent("Dee"), nil)
	if n := len(td.memories("Dee", "roomId="+deeRoom)); n != 2 {
		t.Errorf("the re-created agent has %d memories of its room, want 2", n)
	}
	td.stop()
}

// TestDefaultCharacterWithStoredAgents: without --character the built-in
// default runs only on a first start or when it is stored enabled; a
// character file runs whatever is stored.
func TestDefaultCharacterWithStoredAgents(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ada := &sdk.Character{Name: "Ada", Bio: sdk.StringList{"A test agent."}, Plugins: []string{"offline"}}
	td := startOn(t, dir, []*sdk.Character{ada})
	td.stop()

	td = startOn(t, dir, nil)
	wantStatuses(t, td.statuses(), map[string]string{"Ada": "running"})
	td.say("Ada", "ann", "hello")
	td.ok(200, "POST", "/api/agents/Ada/stop", nil, nil)
	td.stop()

	// Every stored agent stopped: none runs, and the daemon is healthy.
	td = startOn(t, dir, nil)
	wantStatuses(t, td.statuses(), map[string]string{"Ada": "stopped"})
	if !td.d.Healthy() {
		t.Error("unhealthy with every agent stopped over the API")
	}
	td.stop()

	// A character file runs even when it is stored disabled.
	td = startOn(t, dir, []*sdk.Character{ada})
	wantStatuses(t, td.statuses(), map[string]string{"Ada": "running"})
	td.ok(200, "DELETE", "/api/agents/Ada", nil, nil)
	td.stop()

	// Every stored agent removed: as on a first start, the default runs.
	td = startOn(t, dir, nil)
	wantStatuses(t, td.statuses(), map[string]string{"Eliza": "running"})
	if !td.d.Healthy() {
		t.Error("unhealthy with the default character running")
	}
	td.stop()
}

// TestDeleteLog deletes timeline entries one by one.
func TestDeleteLog(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOpt{})
	td.say("Eliza", "ann", "hello")
	type entry struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	}
	var logs struct {
		Logs []entry `json:"logs"`
	}
	testwait.ForNil(t, 10*time.Second, "two log entries after a message", func() error {
		td.ok(200, "GET", "/api/agents/Eliza/logs", nil, &logs)
		if len(logs.Logs) < 2 {
			return errors.New("fewer than two log entries after a message")
		}
		return nil
	})
	first, second := logs.Logs[0], logs.Logs[1]
	var del struct {
		Deleted int64  `json:"deleted"`
		ID      string `json:"id"`
	}
	td.ok(200, "DELETE", "/api/agents/Eliza/logs/"+first.ID, nil, &del)
	if del.Deleted != 1 || del.ID != first.ID {
		t.Errorf("delete = %+v", del)
	}
	td.ok(200, "GET", "/api/agents/Eliza/logs", nil, &logs)
	for _, l := range logs.Logs {
		if l.ID == first.ID {
			t.Errorf("the deleted entry %s is still listed", first.ID)
		}
	}
	td.fails(404, "LOG_NOT_FOUND", "DELETE", "/api/agents/Eliza/logs/"+first.ID, nil)
	td.fails(400, "INVALID_ID", "DELETE", "/api/agents/Eliza/logs/not-a-uuid", nil)
	td.fails(404, "AGENT_NOT_FOUND", "DELETE", "/api/agents/Nobody/logs/"+second.ID, nil)
	// Another agent cannot delete Eliza's entries.
	td.ok(201, "POST", "/api/agents", offlineAgent("Ada"), nil)
	td.fails(404, "LOG_NOT_FOUND", "DELETE", "/api/agents/Ada/logs/"+second.ID, nil)
	td.ok(200, "DELETE", "/api/agents/Eliza/logs/"+strings.ToUpper(second.ID), nil, &del)
	if del.Deleted != 1 {
		t.Errorf("delete by an upper-case id = %+v", del)
	}
}
