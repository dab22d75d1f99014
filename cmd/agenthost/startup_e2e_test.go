//go:build linux

package main

// A daemon with many stored agents listens before they run, answers for
// an agent that is still starting once it runs, and stops at once when
// asked to, even in the middle of starting them.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agenthost/agenthost/host"
	"github.com/agenthost/agenthost/internal/testwait"
	"github.com/agenthost/agenthost/plugins/sqlstore"
	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/dbplugin"
)

// storeAgents stores n enabled agents (offline model) in a new data dir,
// as agents created over the API are stored.
func storeAgents(t *testing.T, n int) string {
	t.Helper()
	dataDir := t.TempDir()
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, sqlstore.Config{DataDir: host.PluginDir(dataDir, "sql")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		name := fmt.Sprintf("agent-%04d", i)
		js, _ := json.Marshal(map[string]any{"name": name, "bio": "one of many", "plugins": []string{"offline"}})
		if _, _, err := store.EnsureAgent(ctx, dbplugin.AgentRecord{ID: sdk.StringToUUID(name), Name: name, CharacterJSON: js, Enabled: true}); err != nil {
			t.Fatal(err)
		}
	}
	return dataDir
}

// healthz reads /healthz: its code and status.
func healthz(d *daemon) (int, string) {
	res, err := http.Get(d.url + "/healthz")
	if err != nil {
		return 0, ""
	}
	defer res.Body.Close()
	var env struct {
		Data struct{ Status string }
	}
	_ = json.NewDecoder(res.Body).Decode(&env)
	return res.StatusCode, env.Data.Status
}

// TestListensWhileAgentsStart: the daemon answers while its 300 stored
// agents start — /healthz says starting, the agents are listed as
// starting — and a message to one that has not started yet waits for it
// and is answered.
func TestListensWhileAgentsStart(t *testing.T) {
	dataDir := storeAgents(t, 300)
	d := launch(t, daemonOpts{dataDir: dataDir})
	var sawStarting, sawListedStarting bool
	testwait.For(t, 60*time.Second, "the daemon to answer while starting", func() bool {
		code, status := healthz(d)
		if code == http.StatusServiceUnavailable && status == "starting" {
			sawStarting = true
			if _, env := d.get("/api/agents"); strings.Contains(string(env.Data), `"starting"`) {
				sawListedStarting = true
			}
		}
		return sawListedStarting || code == http.StatusOK
	})
	if !sawStarting || !sawListedStarting {
		t.Fatalf("the daemon did not answer while its agents started (healthz starting: %v, agents listed starting: %v)", sawStarting, sawListedStarting)
	}
	// The last agent is started last: ask it now.
	m := d.say("agent-0299", "hello, are you up?")
	if len(m.Messages) == 0 {
		t.Fatal("the message to a starting agent was not answered")
	}
	testwait.For(t, 60*time.Second, "the daemon to finish starting", func() bool {
		code, status := healthz(d)
		return code == http.StatusOK && status == "ok"
	})
}

// TestSIGTERMWhileAPluginHangs: a plugin that never answers go-plugin's
// handshake does not hold the daemon's stop. SIGTERM ends the daemon at
// once, and the plugin's process with it; before, the daemon went on
// waiting for the handshake's timeout (30 s).
func TestSIGTERMWhileAPluginHangs(t *testing.T) {
	plugins, dataDir := t.TempDir(), t.TempDir()
	// It says it runs (in its own folder, the one it may write) and waits.
	script := "#!/bin/sh\necho $$ > pid\nexec sleep 300\n"
	if err := os.WriteFile(filepath.Join(plugins, "agenthost-plugin-mute"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	char := writeCharacter(t, map[string]any{"name": "Mute", "bio": "Waits.", "plugins": []string{"offline", "mute"}})
	d := launch(t, daemonOpts{dataDir: dataDir, pluginDir: plugins, characters: []string{char}})
	pidFile := filepath.Join(host.PluginDir(dataDir, "mute"), "pid")
	pid := testwait.ForPID(t, 30*time.Second, pidFile)
	d.sigterm()
	waitGone(t, []int{pid}, 2*time.Second)
}

// TestEscapedPluginChildGoesWithTheDaemon: a process a plugin started and
// moved out of its process group (setsid) outlives the group's kill; in
// the plugin's pids cgroup, the daemon's stop kills it too.
func TestEscapedPluginChildGoesWithTheDaemon(t *testing.T) {
	plugins, dataDir := t.TempDir(), t.TempDir()
	script := "#!/bin/sh\nsetsid sleep 300 </dev/null >/dev/null 2>&1 &\necho $! > child-pid\nexec sleep 300\n"
	if err := os.WriteFile(filepath.Join(plugins, "agenthost-plugin-escape"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	char := writeCharacter(t, map[string]any{"name": "Escape", "bio": "Leaves.", "plugins": []string{"offline", "escape"}})
	d := launch(t, daemonOpts{dataDir: dataDir, pluginDir: plugins, characters: []string{char}})
	child := testwait.ForPID(t, 30*time.Second, filepath.Join(host.PluginDir(dataDir, "escape"), "child-pid"))
	t.Cleanup(func() { _ = syscall.Kill(child, syscall.SIGKILL) })
	cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", child))
	d.sigterm()
	if !strings.Contains(string(cg), "/agenthost-") {
		t.Skipf("the daemon has no pids cgroup for its plugins here (it needs to run as root or with a delegated cgroup); the child's cgroups: %s", cg)
	}
	waitGone(t, []int{child}, 2*time.Second)
}

// TestSIGTERMWhileAgentsStart: SIGTERM in the middle of starting 300
// stored agents ends the daemon and every plugin within 2 seconds.
func TestSIGTERMWhileAgentsStart(t *testing.T) {
	dataDir := storeAgents(t, 300)
	d := launch(t, daemonOpts{dataDir: dataDir})
	testwait.For(t, 60*time.Second, "the daemon to answer", func() bool { code, _ := healthz(d); return code != 0 })
	// Some agents run, the others are starting.
	testwait.For(t, 30*time.Second, "the first agents to run", func() bool {
		_, env := d.get("/api/agents")
		return strings.Contains(string(env.Data), `"running"`)
	})
	plugins := children(d.cmd.Process.Pid)
	if code, status := healthz(d); code != http.StatusServiceUnavailable || status != "starting" {
		t.Logf("the daemon had already finished starting (%d %s); the stop is checked all the same", code, status)
	}
	t0 := time.Now()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code, out := d.waitExit(10 * time.Second)
	took := time.Since(t0)
	if code != 0 {
		t.Errorf("SIGTERM while starting: exit %d\n%s", code, tail(out, 2000))
	}
	waitGone(t, plugins, 2*time.Second-min(took, 2*time.Second))
	if took > 2*time.Second {
		t.Errorf("the daemon took %s to stop", took)
	}
}
