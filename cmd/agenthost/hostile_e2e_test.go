//go:build linux

package main

// Plugins are untrusted code. These tests run hostile plugins of our own
// (internal/testplugin/hostile through the SDK, rawhostile from the
// protocol alone) in the real daemon, next to a victim agent that does not
// list them, and check that every attack fails: acting as another plugin
// or for another agent, reading what is not theirs (settings, secrets,
// files, other processes), and the limits.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/host"
	"github.com/agenthost/agenthost/host/confine"
	"github.com/agenthost/agenthost/internal/contract"
	"github.com/agenthost/agenthost/internal/testwait"
	"github.com/agenthost/agenthost/plugins/openai/openaitest"
	"github.com/agenthost/agenthost/plugins/sqlstore"
)

// hostileCalls is the hostile plugin's limit of Runtime calls a second.
const hostileCalls = 200

// hostileDaemon runs Victim (offline only) and Mallory, whose plugins
// include the hostile ones, with secrets in the daemon's environment.
func hostileDaemon(t *testing.T, extraEnv ...string) (d *daemon, victim, mallory string) {
	t.Helper()
	victimFile := writeCharacter(t, map[string]any{"name": "Victim", "bio": "Holds secrets.", "plugins": []string{"offline"},
		"secrets": map[string]any{"VICTIM_TOKEN": "victim-character-secret"}})
	malloryFile := writeCharacter(t, map[string]any{"name": "Mallory", "bio": "Up to no good.",
		"plugins": []string{"offline", "hostile", "rawhostile"}})
	env := append([]string{
		"OPENAI_API_KEY=sk-daemon-secret", "AWS_SECRET_ACCESS_KEY=aws-daemon-secret", "RAWHOSTILE_MODE=declared",
		"AGENTHOST_PLUGIN_LIMITS_HOSTILE=memory=256m,processes=32,calls=" + strconv.Itoa(hostileCalls), "AGENTHOST_PROVIDER_TIMEOUT=2s",
	}, extraEnv...)
	d = startDaemon(t, daemonOpts{characters: []string{victimFile, malloryFile}, env: env,
		pluginDir: pluginDirWith(t, bins.hostile, bins.rawhostile)})
	return d, agentIDOf(t, d, "Victim"), agentIDOf(t, d, "Mallory")
}

func agentIDOf(t *testing.T, d *daemon, name string) string {
	t.Helper()
	code, env := d.get("/api/agents/" + name)
	var a struct{ ID string }
	if code != http.StatusOK || json.Unmarshal(env.Data, &a) != nil || a.ID == "" {
		t.Fatalf("agent %s: %d %+v", name, code, env.Error)
	}
	return a.ID
}

// hook calls a hostile plugin's hook for an agent and returns its report.
func hook(t *testing.T, d *daemon, plugin, agent, path string) map[string]string {
	t.Helper()
	res, err := http.Get(d.url + "/hooks/" + plugin + "/" + agent + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var report map[string]string
	if res.StatusCode != http.StatusOK || json.NewDecoder(res.Body).Decode(&report) != nil {
		t.Fatalf("hook %s%s: %d", plugin, path, res.StatusCode)
	}
	return report
}

// allRefused fails for every attack of report that was not refused.
func allRefused(t *testing.T, report map[string]string) {
	t.Helper()
	if len(report) == 0 {
		t.Fatal("the report is empty: no attack ran")
	}
	for attack, result := range report {
		if !strings.HasPrefix(result, "refused") {
			t.Errorf("%s: %s", attack, result)
		}
	}
}

func TestHostilePluginsReachOnlyTheirOwn(t *testing.T) {
	t.Parallel()
	d, victim, mallory := hostileDaemon(t)
	m := d.say("Victim", "My secret plan is to sail at dawn")
	mems := d.memories("Victim", m.RoomID)
	if len(mems) < 2 {
		t.Fatalf("Victim's room: %+v", mems)
	}
	secret := mems[len(mems)-1]

	t.Run("the Runtime knows who calls", func(t *testing.T) {
		report := hook(t, d, "rawhostile", mallory, "/runtime?victim="+victim)
		allRefused(t, report)
		if r := report["no token/GetSettings own agent"]; !strings.Contains(r, "Unauthenticated") {
			t.Errorf("a call without the token: %s, want Unauthenticated", r)
		}
		if r := report["forged token/GetMemories victim"]; !strings.Contains(r, "Unauthenticated") {
			t.Errorf("a call with a made-up token: %s, want Unauthenticated", r)
		}
		if r := report["own token, victim/ReceiveMessage"]; !strings.Contains(r, "NotFound") {
			t.Errorf("injecting a message into Victim: %s, want NotFound", r)
		}
		// Nothing the attacks tried reached Victim.
		if after := d.memories("Victim", m.RoomID); len(after) != len(mems) {
			t.Errorf("Victim's room changed from %d to %d memories", len(mems), len(after))
		}
	})

	t.Run("storage stays within its own agent", func(t *testing.T) {
		allRefused(t, hook(t, d, "rawhostile", mallory,
			fmt.Sprintf("/scope?mem=%s&room=%s&entity=%s", secret.ID, m.RoomID, secret.EntityID)))
		after := d.memories("Victim", m.RoomID)
		if len(after) != len(mems) || after[len(after)-1].Content.Text != secret.Content.Text {
			t.Errorf("Victim's memory was changed: %+v", after)
		}
	})

	t.Run("other plugins' sockets take only the host", func(t *testing.T) {
		report := hook(t, d, "rawhostile", mallory, "/sockets")
		allRefused(t, report)
		sql := false
		for attack := range report {
			sql = sql || strings.Contains(attack, "/sql/") && strings.HasSuffix(attack, "plain/GetAgents")
		}
		if !sql {
			t.Errorf("the sql plugin's socket was not among those attacked: %v", slices.Sorted(maps.Keys(report)))
		}
	})

	t.Run("settings are what the manifest declares", func(t *testing.T) {
		report := hook(t, d, "rawhostile", mallory, "/settings")
		for key := range report {
			if key != "configure:RAWHOSTILE_MODE" && key != "runtime:RAWHOSTILE_MODE" {
				t.Errorf("the plugin was given %s", key)
			}
		}
		if report["configure:RAWHOSTILE_MODE"] == "" || report["runtime:RAWHOSTILE_MODE"] == "" {
			t.Errorf("the declared setting should reach the plugin: %v", report)
		}
	})

	t.Run("files and processes of the daemon are out of reach", func(t *testing.T) {
		pid := d.cmd.Process.Pid
		cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cwd, ".env"), []byte("OPENAI_API_KEY=sk-in-dotenv\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		read := []string{
			filepath.Join(d.dataDir, "daemon.lock"),
			filepath.Join(host.PluginDir(d.dataDir, "sql"), sqlstore.FileName),
			filepath.Join(host.PluginDir(d.dataDir, "rawhostile")),
			fmt.Sprintf("/proc/%d/environ", pid),
			fmt.Sprintf("/proc/%d/cmdline", pluginPID(t, d, "sql")) + "x", // a file that does not exist is refused too
			fmt.Sprintf("/proc/%d/environ", pluginPID(t, d, "sql")),
			filepath.Join(cwd, ".env"),
			"/etc/shadow",
		}
		write := []string{
			filepath.Join(d.dataDir, "planted"),
			filepath.Join(host.PluginDir(d.dataDir, "sql"), "planted"),
			filepath.Join(host.PluginDir(d.dataDir, "rawhostile"), "planted"),
			filepath.Join(cwd, "planted"),
		}
		report := hook(t, d, "hostile", mallory, "/files?read="+strings.Join(read, ",")+"&write="+strings.Join(write, ","))
		if confine.LandlockABI() > 0 {
			allRefused(t, report)
		} else {
			t.Logf("the kernel has no Landlock: file confinement is not checked (%v)", report)
		}
		allRefused(t, hook(t, d, "hostile", mallory, fmt.Sprintf("/signal?pid=%d", pid)))
		own := hook(t, d, "hostile", mallory, "/own")
		for what, result := range own {
			if !strings.HasPrefix(result, "ALLOWED") {
				t.Errorf("%s: %s, want it to work", what, result)
			}
		}
		if _, ok := own["own folder "+host.PluginDir(d.dataDir, "hostile")]; !ok {
			t.Errorf("Init should hand the plugin its own folder, got %v", own)
		}
	})

	t.Run("processes are limited", func(t *testing.T) {
		report := hook(t, d, "hostile", mallory, "/fork?n=100")
		var n int
		fmt.Sscan(report["started"], &n)
		if n >= 32 || report["stopped by"] == "" {
			t.Errorf("a plugin limited to 32 processes started %s of 100 (%s)", report["started"], report["stopped by"])
		}
	})

	t.Run("logs cannot forge the host's lines and are rationed", func(t *testing.T) {
		hook(t, d, "hostile", mallory, "/logs?n=5000")
		waitOutput(t, d, "lines of the plugin's log")
		for _, line := range strings.Split(d.out.String(), "\n") {
			if strings.Contains(line, "forged") && !strings.Contains(line, "agenthost.plugin.hostile") {
				t.Errorf("a plugin's line passed for another's: %q", line)
			}
			if strings.Contains(line, "agenthost.plugin.hostile") && strings.Contains(line, " agent=Victim") {
				t.Errorf("a plugin's line claims to be about Victim: %q", line)
			}
		}
		if n := strings.Count(d.out.String(), "flood line"); n >= 5000 {
			t.Errorf("all %d lines of the flood reached the log", n)
		}
	})

	t.Run("events handed back with an answer are bounded and dated by the host", func(t *testing.T) {
		before := time.Now()
		if got := hook(t, d, "rawhostile", mallory, "/emitted")["EmitEvent RAWHOSTILE_PING"]; !strings.HasPrefix(got, "ALLOWED") {
			t.Fatalf("emitting RAWHOSTILE_PING: %s", got)
		}
		waitOutput(t, d, "more events than the host takes from one answer")
		type entry struct {
			Body      map[string]any `json:"body"`
			CreatedAt int64          `json:"createdAt"`
		}
		var flood []entry
		testwait.For(t, 20*time.Second, "the handed-back events in the timeline", func() bool {
			code, env := d.get("/api/agents/" + mallory + "/logs?type=event&count=1000")
			var data struct{ Logs []entry }
			if code != http.StatusOK || json.Unmarshal(env.Data, &data) != nil {
				return false
			}
			flood = flood[:0]
			for _, l := range data.Logs {
				if l.Body["event"] == "RAWHOSTILE_FLOOD" {
					flood = append(flood, l)
				}
			}
			return len(flood) >= contract.MaxEmitted-1
		})
		// 1,002 handed back, of which the host takes 64: a RUN_ENDED and
		// 63 floods, the first of those with its bad payload dropped.
		if len(flood) != contract.MaxEmitted-1 {
			t.Errorf("%d RAWHOSTILE_FLOOD entries in the timeline, want %d", len(flood), contract.MaxEmitted-1)
		}
		for _, l := range flood {
			if at := time.UnixMilli(l.CreatedAt); at.Before(before.Add(-time.Second)) || at.After(time.Now()) {
				t.Errorf("an event dated %s by the plugin is in the timeline at %s", "2126", at)
				break
			}
			if l.Body["plugin"] != "rawhostile" {
				t.Errorf("a handed-back event is in the timeline as %v's", l.Body["plugin"])
				break
			}
		}
		waitOutput(t, d, "payload_json")
	})

	t.Run("the confinement is reported", func(t *testing.T) {
		code, env := d.get("/api/plugins/hostile")
		var p struct{ Confinement string }
		if code != http.StatusOK || json.Unmarshal(env.Data, &p) != nil {
			t.Fatalf("GET /api/plugins/hostile: %d", code)
		}
		want := "none: the kernel has no Landlock"
		if abi := confine.LandlockABI(); abi > 0 {
			want = fmt.Sprintf("landlock abi %d", abi)
		}
		if !strings.HasPrefix(p.Confinement, want) || !strings.Contains(p.Confinement, "memory 256 MiB") {
			t.Errorf("confinement = %q, want %q and the limits", p.Confinement, want)
		}
	})

	t.Run("a flood of Runtime calls is paced and runs at the lowest CPU priority", func(t *testing.T) {
		pid := pluginPID(t, d, "hostile")
		const workers = 16
		hook(t, d, "hostile", mallory, fmt.Sprintf("/flood?seconds=3&workers=%d", workers))
		testwait.For(t, 10*time.Second, "the flooding plugin to run at the lowest CPU priority", func() bool { return niceOf(pid) == 19 })
		if m := d.say("Victim", "Are you there?"); len(m.Messages) == 0 {
			t.Error("Victim stopped answering during the flood")
		}
		var report map[string]string
		testwait.For(t, 30*time.Second, "the flood to end", func() bool {
			report = hook(t, d, "hostile", mallory, "/flooded")
			return report["running"] == "false"
		})
		calls, _ := strconv.Atoi(report["calls"])
		secs, _ := strconv.ParseFloat(report["seconds"], 64)
		// The host lets a second's worth of calls through at once, then the
		// limit a second; each worker may have had one more call admitted
		// before the flood's end that came back after it.
		if most := hostileCalls*(1+secs) + workers; calls == 0 || float64(calls) > most {
			t.Errorf("the flood made %d calls in %.1f s, want 1 to %.0f (a limit of %d a second): %v", calls, secs, most, hostileCalls, report)
		}
		t.Logf("the flood: %v", report)
		if os.Geteuid() != 0 {
			t.Logf("not root: a priority lowered cannot be raised again, so it is not checked")
			return
		}
		testwait.For(t, 30*time.Second, "the plugin's CPU priority to come back after the flood", func() bool { return niceOf(pid) == 0 })
	})

	t.Run("over its memory limit a plugin is restarted, saying why", func(t *testing.T) {
		before := pluginPID(t, d, "hostile")
		res, err := http.Get(d.url + "/hooks/hostile/" + mallory + "/memory?mb=400")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				t.Fatal("the plugin allocated 400 MiB under a limit of 256")
			}
		}
		var p struct {
			State    string
			PID      int
			LastExit struct{ Reason string }
		}
		testwait.ForNil(t, 30*time.Second, "the plugin to be restarted with a reason", func() error {
			_, env := d.get("/api/plugins/hostile")
			_ = json.Unmarshal(env.Data, &p)
			if p.State == "running" && p.PID != before && p.LastExit.Reason != "" {
				return nil
			}
			return fmt.Errorf("the plugin is %+v", p)
		})
		if !strings.Contains(p.LastExit.Reason, "memory limit of 256 MiB") {
			t.Errorf("last exit = %q, want it to name the memory limit", p.LastExit.Reason)
		}
		// The victim never noticed.
		if m := d.say("Victim", "Still there?"); len(m.Messages) == 0 {
			t.Error("Victim stopped answering")
		}
	})
}

// niceOf is the nice value of a process (-100 when it cannot be read).
func niceOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -100
	}
	// Fields start after the command name's last ')'; nice is the 19th.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 17 {
		return -100
	}
	n, err := strconv.Atoi(f[16])
	if err != nil {
		return -100
	}
	return n
}

// pluginPID is the pid of a plugin's process, from the API.
func pluginPID(t *testing.T, d *daemon, name string) int {
	t.Helper()
	_, env := d.get("/api/plugins/" + name)
	var p struct{ PID int }
	_ = json.Unmarshal(env.Data, &p)
	if p.PID == 0 {
		t.Fatalf("plugin %s has no process", name)
	}
	return p.PID
}

// TestHostileProvidersAreBounded: a provider that answers 60 MB is left
// out, one that never answers is given up at its deadline; the messages
// are answered and their runs say why.
func TestHostileProvidersAreBounded(t *testing.T) {
	t.Parallel()
	// Room for the plugin to build its 60 MB answer: the limit under test
	// is the host's.
	// A deadline long enough for the 60 MB answer to arrive whole on a busy
	// machine: what is checked is that the host refuses it by size.
	d, _, _ := hostileDaemon(t, "AGENTHOST_PLUGIN_LIMITS_HOSTILE=memory=1g", "AGENTHOST_PROVIDER_TIMEOUT=8s")
	for _, c := range []struct{ mode, why string }{
		{"big", "over the limit of 1.0 MiB"},
		{"hang", "did not answer within 8s"},
	} {
		name := "Prov" + c.mode
		mustPost(t, d, http.StatusCreated, "/api/agents", newAgent(name, true, []string{"offline", "hostile"},
			map[string]any{"HOSTILE_PROVIDER": c.mode}))
		m := d.say(name, "Hello there")
		if len(m.Messages) == 0 {
			t.Fatalf("%s: the message was not answered", c.mode)
		}
		var runs struct {
			Runs []struct {
				Status    string
				Providers []struct {
					Plugin string
					Error  string
				}
			}
		}
		// The timeline is written in the background, a moment after the
		// reply.
		testwait.For(t, 10*time.Second, "the run of "+name+" to end", func() bool {
			code, env := d.get("/api/agents/" + name + "/runs?roomId=" + m.RoomID)
			if code != http.StatusOK || json.Unmarshal(env.Data, &runs) != nil {
				t.Fatalf("%s: runs: %d %+v", c.mode, code, env.Error)
			}
			return len(runs.Runs) > 0 && runs.Runs[0].Status != "running"
		})
		if len(runs.Runs) == 0 {
			t.Fatalf("%s: no run recorded", c.mode)
		}
		r := runs.Runs[0]
		if r.Status != "completed" || len(r.Providers) == 0 || r.Providers[0].Plugin != "hostile" || !strings.Contains(r.Providers[0].Error, c.why) {
			t.Errorf("%s: the run should complete and list the left-out provider (%q): %+v", c.mode, c.why, r)
		}
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int
			fmt.Sscan(strings.TrimSpace(v), &kb)
			// A 60 MB answer read whole and copied into the state took the
			// host to gigabytes.
			if kb > 400<<10 {
				t.Errorf("the daemon's peak memory is %d MiB after a 60 MB provider answer", kb>>10)
			}
		}
	}
}

// TestEnvironmentKeyStaysWithTheOperatorsEndpoint: an agent created over
// the API that points the openai plugin at another server does not get
// the daemon's OPENAI_API_KEY sent there; an address the operator allows
// does.
func TestEnvironmentKeyStaysWithTheOperatorsEndpoint(t *testing.T) {
	t.Parallel()
	attacker := openaitest.Start(t)
	attacker.APIKey = "" // it answers anyone, and keeps what it is sent
	allowed := openaitest.Start(t)
	allowed.APIKey = "sk-daemon-secret"
	d := startDaemon(t, daemonOpts{env: []string{"OPENAI_API_KEY=sk-daemon-secret", "AGENTHOST_ALLOWED_ENDPOINTS=" + allowed.URL}})
	for _, c := range []struct {
		name string
		srv  *openaitest.Server
		key  bool
	}{{"Exfil", attacker, false}, {"Allowed", allowed, true}} {
		mustPost(t, d, http.StatusCreated, "/api/agents", newAgent(c.name, true, []string{"openai"},
			map[string]any{"OPENAI_BASE_URL": c.srv.URL}))
		d.post("/api/agents/"+c.name+"/messages", map[string]string{"text": "Hello"})
		reqs := c.srv.Requests("")
		if len(reqs) == 0 {
			t.Fatalf("%s: the model server got no request", c.name)
		}
		for _, r := range reqs {
			got := strings.Contains(r.Header.Get("Authorization"), "sk-daemon-secret")
			if got != c.key {
				t.Errorf("%s: the daemon's key sent to %s: %v, want %v", c.name, c.srv.URL, got, c.key)
			}
		}
	}
	waitOutput(t, d, "AGENTHOST_ALLOWED_ENDPOINTS")
}
