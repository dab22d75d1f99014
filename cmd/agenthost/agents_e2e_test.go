//go:build linux

package main

// Agents created over the API outlive the daemon: they are stored, and the
// next daemon on the same data dir starts them again as they were left.

import (
	"encoding/json"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

type storedAgentJSON struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Error  string `json:"error"`
}

// agentStatuses lists the daemon's agents by name.
func agentStatuses(t *testing.T, d *daemon) map[string]storedAgentJSON {
	t.Helper()
	code, env := d.get("/api/agents")
	if code != http.StatusOK {
		t.Fatalf("list agents: %d %+v", code, env.Error)
	}
	var data struct {
		Agents []storedAgentJSON `json:"agents"`
	}
	if err := json.Unmarshal(env.Data, &data); err != nil {
		t.Fatal(err)
	}
	out := map[string]storedAgentJSON{}
	for _, a := range data.Agents {
		out[a.Name] = a
	}
	return out
}

func wantAgentStatuses(t *testing.T, got map[string]storedAgentJSON, want map[string]string) {
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

// mustPost sends a request that must answer want.
func mustPost(t *testing.T, d *daemon, want int, path string, body any) {
	t.Helper()
	if code, env := d.post(path, body); code != want {
		t.Fatalf("POST %s: want %d, got %d %+v", path, want, code, env.Error)
	}
}

func deleteAPI(t *testing.T, d *daemon, path string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodDelete, d.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("DELETE %s: %v", path, err)
	}
	res.Body.Close()
	return res.StatusCode
}

// sigtermAndWait stops the daemon as an operator does and waits for it.
func sigtermAndWait(t *testing.T, d *daemon) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, out := d.waitExit(20 * time.Second); code != 0 {
		t.Fatalf("SIGTERM: exit code %d\n%s", code, tail(out, 3000))
	}
}

func healthStatus(t *testing.T, d *daemon) int {
	t.Helper()
	res, err := http.Get(d.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func newAgent(name string, start bool, plugins []string, settings map[string]any) map[string]any {
	ch := map[string]any{"name": name, "bio": "A test agent.", "plugins": plugins}
	if settings != nil {
		ch["settings"] = settings
	}
	return map[string]any{"characterJson": ch, "start": start}
}

func TestAPIAgentsSurviveRestart(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	plugins := pluginDirWith(t, bins.scripted)
	d := startDaemon(t, daemonOpts{dataDir: dataDir, pluginDir: plugins})
	mustPost(t, d, http.StatusCreated, "/api/agents", newAgent("Ada", true, []string{"offline"}, nil))
	adaRoom := d.say("Ada", "Remember that I like green tea").RoomID
	mustPost(t, d, http.StatusCreated, "/api/agents", newAgent("Sam", true, []string{"scripted"}, map[string]any{"SCRIPTED_REPLY": "Sam heard: %s"}))
	if m := d.say("Sam", "ping"); !strings.Contains(m.Messages[0].Text, "Sam heard: ping") {
		t.Fatalf("Sam answered %+v", m.Messages)
	}
	mustPost(t, d, http.StatusCreated, "/api/agents", newAgent("Bo", true, []string{"offline"}, nil))
	mustPost(t, d, http.StatusOK, "/api/agents/Bo/stop", nil)
	mustPost(t, d, http.StatusCreated, "/api/agents", newAgent("Dee", true, []string{"offline"}, nil))
	if code := deleteAPI(t, d, "/api/agents/Dee"); code != http.StatusOK {
		t.Fatalf("delete Dee: %d", code)
	}
	sigtermAndWait(t, d)

	// Restarted on the same data dir: as they were left.
	d = startDaemon(t, daemonOpts{dataDir: dataDir, pluginDir: plugins})
	wantAgentStatuses(t, agentStatuses(t, d), map[string]string{"Eliza": "running", "Ada": "running", "Sam": "running", "Bo": "stopped"})
	if code, _ := d.get("/api/agents/Dee"); code != http.StatusNotFound {
		t.Errorf("the deleted agent is back: GET answers %d", code)
	}
	if m := d.say("Sam", "pong"); !strings.Contains(m.Messages[0].Text, "Sam heard: pong") {
		t.Errorf("Sam answered %+v after the restart", m.Messages)
	}
	d.say("Ada", "What do I like?")
	if n := len(d.memories("Ada", adaRoom)); n != 4 {
		t.Errorf("Ada's room holds %d memories after a restart and a second exchange, want 4", n)
	}
	sigtermAndWait(t, d)

	// Sam's plugin is gone: Sam fails with the reason, the others run.
	d = launch(t, daemonOpts{dataDir: dataDir})
	d.waitReady()
	got := agentStatuses(t, d)
	wantAgentStatuses(t, got, map[string]string{"Eliza": "running", "Ada": "running", "Sam": "failed", "Bo": "stopped"})
	if !strings.Contains(got["Sam"].Error, `unknown plugin "scripted"`) {
		t.Errorf("Sam's error should name the missing plugin: %q", got["Sam"].Error)
	}
	if !d.says("a stored agent failed to start", `unknown plugin \"scripted\"`) {
		t.Errorf("the log should say which agent failed and why:\n%s", tail(d.out.String(), 3000))
	}
	// The daemon itself is healthy; the detailed health says which agent
	// failed.
	if code := healthStatus(t, d); code != http.StatusOK {
		t.Errorf("healthz = %d with a stored agent failed, want 200: the daemon serves the others", code)
	}
	if code, env := d.get("/api/health"); code != http.StatusOK || !strings.Contains(string(env.Data), `"degraded"`) || !strings.Contains(string(env.Data), "Sam") {
		t.Errorf("/api/health with a stored agent failed: %d %s", code, env.Data)
	}
	d.say("Ada", "still there?")
	d.say("Eliza", "hello")
	// Stopped over the API, the failed agent stays stopped.
	mustPost(t, d, http.StatusOK, "/api/agents/Sam/stop", nil)
	if code, env := d.get("/api/health"); code != http.StatusOK || !strings.Contains(string(env.Data), `"status":"ok"`) {
		t.Errorf("/api/health once the failed agent is stopped: %d %s", code, env.Data)
	}
	sigtermAndWait(t, d)

	d = startDaemon(t, daemonOpts{dataDir: dataDir})
	wantAgentStatuses(t, agentStatuses(t, d), map[string]string{"Eliza": "running", "Ada": "running", "Sam": "stopped", "Bo": "stopped"})
}

// TestDefaultCharacterGivesWayToStoredAgents: without --character, a data
// dir that stores agents runs those, not the built-in Eliza.
func TestDefaultCharacterGivesWayToStoredAgents(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	ada := writeCharacter(t, map[string]any{"name": "Ada", "bio": "A test agent.", "plugins": []string{"offline"}})
	d := startDaemon(t, daemonOpts{dataDir: dataDir, characters: []string{ada}})
	sigtermAndWait(t, d)

	d = startDaemon(t, daemonOpts{dataDir: dataDir})
	wantAgentStatuses(t, agentStatuses(t, d), map[string]string{"Ada": "running"})
	d.say("Ada", "hello")
	if code, _ := d.get("/api/agents/Eliza"); code != http.StatusNotFound {
		t.Errorf("the default character runs next to the stored agents: GET Eliza answers %d", code)
	}
	// Created over the API, an Eliza is stored like any agent and runs from
	// then on, as it was created.
	mustPost(t, d, http.StatusCreated, "/api/agents", newAgent("Eliza", true, []string{}, nil))
	sigtermAndWait(t, d)

	d = startDaemon(t, daemonOpts{dataDir: dataDir})
	wantAgentStatuses(t, agentStatuses(t, d), map[string]string{"Ada": "running", "Eliza": "running"})
	d.say("Eliza", "hello")
	_, env := d.get("/api/agents/Eliza")
	if !strings.Contains(string(env.Data), "A test agent.") {
		t.Errorf("Eliza runs with another character than the one created: %s", env.Data)
	}
}
