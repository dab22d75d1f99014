//go:build linux

package main

// Plugins dropped in, upgraded, refused, removed and pinned while the daemon
// runs: the real daemon with real binaries, variants of the versioned test
// plugin built with -ldflags -X.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/agenthost/agenthost/host"
	"github.com/agenthost/agenthost/internal/testwait"
)

var versionedBuilt = struct {
	sync.Mutex
	m map[string]string
}{m: map[string]string{}}

// versioned builds the versioned test plugin with main.VAR=VALUE for each
// of flags (once per test binary).
func versioned(t *testing.T, flags ...string) string {
	t.Helper()
	key := strings.Join(flags, ",")
	versionedBuilt.Lock()
	defer versionedBuilt.Unlock()
	if p, ok := versionedBuilt.m[key]; ok {
		return p
	}
	var ld []string
	for _, f := range flags {
		ld = append(ld, "-X main."+f)
	}
	out := filepath.Join(filepath.Dir(bins.agenthost), "versioned-"+strings.NewReplacer("=", "-", ",", "_").Replace(key))
	cmd := exec.Command("go", "build", "-ldflags", strings.Join(ld, " "), "-o", out, "../../internal/testplugin/versioned")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build versioned %s: %v\n%s", key, err, b)
	}
	versionedBuilt.m[key] = out
	return out
}

// install puts a binary into dir as agenthost-plugin-NAME as a deploy
// does: written beside it, then renamed over it.
func install(t *testing.T, src, dir, name string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, ".new-"+name)
	if err := os.WriteFile(tmp, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "agenthost-plugin-"+name)); err != nil {
		t.Fatal(err)
	}
}

// versionedEnv lets the confined test plugin write the marks of the test's
// folders.
func versionedEnv(t *testing.T, more ...string) []string {
	return append([]string{"AGENTHOST_PLUGIN_ALLOW_VERSIONED=" + filepath.Dir(t.TempDir()) + ":rw"}, more...)
}

type pluginInfo struct {
	Name     string
	State    string
	Pid      int
	Checksum string
	Locked   bool
	Removed  bool
	Error    string
	Agents   []string
	Manifest struct {
		Name    string
		Version string
	}
	Upgrade *struct {
		From, To, Error string
		Refused         bool
		Warnings        []string
		TookMs          int64
	}
}

// plugin is GET /api/plugins/NAME: the status and, on 404, the message.
func (d *daemon) plugin(name string) (int, pluginInfo, string) {
	d.t.Helper()
	code, env := d.get("/api/plugins/" + name)
	var p pluginInfo
	if code == http.StatusOK {
		if err := json.Unmarshal(env.Data, &p); err != nil {
			d.t.Fatal(err)
		}
	}
	msg := ""
	if env.Error != nil {
		msg = env.Error.Code + ": " + env.Error.Message
	}
	return code, p, msg
}

// versionedAgent creates and starts an agent of the versioned plugin. Its
// character uses the action and the provider that only version 1 offers.
func versionedAgent(t *testing.T, d *daemon, name string, settings map[string]any, plugin ...string) {
	t.Helper()
	if len(plugin) == 0 {
		plugin = []string{"versioned"}
	}
	if settings == nil {
		settings = map[string]any{}
	}
	ch := map[string]any{"name": name, "bio": "Answers with its model's version.", "plugins": append([]string{"sql", "bootstrap"}, plugin...),
		"settings": settings,
		"messageExamples": [][]map[string]any{{
			{"name": "{{user1}}", "content": map[string]any{"text": "news?"}},
			{"name": name, "content": map[string]any{"text": "here", "actions": []string{"V1_ONLY"}, "providers": []string{"V1_NEWS"}}},
		}}}
	code, env := d.post("/api/agents", map[string]any{"characterJson": ch, "start": true})
	if code != http.StatusCreated && code != http.StatusOK {
		t.Fatalf("create agent %s: %d %+v", name, code, env.Error)
	}
}

// startVersioned starts a daemon whose plugin folder holds version 1 of
// the versioned plugin, and an agent of it; it returns the folder.
func startVersioned(t *testing.T, agent string, settings map[string]any) (string, *daemon) {
	t.Helper()
	dir := t.TempDir()
	install(t, versioned(t), dir, "versioned")
	d := startDaemon(t, daemonOpts{pluginDir: dir, env: versionedEnv(t)})
	versionedAgent(t, d, agent, settings)
	return dir, d
}

var versionRE = regexp.MustCompile(`^version (\d+) pid (\d+)$`)

// answer is one message sent to an agent and what came back.
type answer struct {
	sender, text string
	status       int
	err          string
	replies      []string
	replyIDs     []string
	room         string
	at           time.Time
}

func (a answer) version() (string, int) {
	if len(a.replies) != 1 {
		return "", 0
	}
	m := versionRE.FindStringSubmatch(a.replies[0])
	if m == nil {
		return "", 0
	}
	pid, _ := strconv.Atoi(m[2])
	return m[1], pid
}

// send posts a message from a goroutine: it reports instead of failing.
func send(url, agent, user, text string) answer {
	a := answer{sender: user, text: text}
	b, _ := json.Marshal(map[string]string{"text": text, "userName": user})
	res, err := (&http.Client{Timeout: 2 * time.Minute}).Post(url+"/api/agents/"+agent+"/messages", "application/json", bytes.NewReader(b))
	a.at = time.Now()
	if err != nil {
		a.err = err.Error()
		return a
	}
	defer res.Body.Close()
	a.status = res.StatusCode
	raw, _ := io.ReadAll(res.Body)
	var env struct {
		Data messagesData
	}
	if err := json.Unmarshal(raw, &env); err != nil || res.StatusCode != http.StatusOK {
		a.err = string(raw)
		return a
	}
	a.room = env.Data.RoomID
	for _, m := range env.Data.Messages {
		a.replies = append(a.replies, m.Text)
		a.replyIDs = append(a.replyIDs, m.ID)
	}
	return a
}

// TestPluginDroppedIn: a binary dropped into a plugin folder of a running
// daemon becomes known and is used by a new agent; one still being written
// is never taken.
func TestPluginDroppedIn(t *testing.T) {
	dir := t.TempDir()
	d := startDaemon(t, daemonOpts{pluginDir: dir, env: versionedEnv(t)})
	if code, _, _ := d.plugin("versioned"); code != http.StatusNotFound {
		t.Fatalf("GET /api/plugins/versioned before it is there: %d", code)
	}
	code, env := d.post("/api/agents", map[string]any{"characterJson": map[string]any{"name": "Early", "bio": "x",
		"plugins": []string{"sql", "bootstrap", "versioned"}}, "start": true})
	if code != http.StatusBadRequest || env.Error.Code != "UNKNOWN_PLUGIN" || !strings.Contains(env.Error.Message, `"versioned"`) {
		t.Fatalf("an agent of a plugin not yet there: %d %+v", code, env.Error)
	}

	// A binary written in place, half of it so far: never taken.
	b, err := os.ReadFile(versioned(t))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "agenthost-plugin-versioned"), os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b[:len(b)/2]); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 20*time.Second, "the daemon to refuse the half-written binary", func() bool {
		_, _, msg := d.plugin("versioned")
		return strings.Contains(msg, "was refused")
	})
	if code, _, msg := d.plugin("versioned"); code != http.StatusNotFound {
		t.Fatalf("a half-written binary is known: %d %s", code, msg)
	}
	// An agent of it is refused, saying why.
	code, env = d.post("/api/agents", map[string]any{"characterJson": map[string]any{"name": "Early", "bio": "x",
		"plugins": []string{"sql", "bootstrap", "versioned"}}, "start": true})
	if code != http.StatusBadRequest || !strings.Contains(env.Error.Message, "agenthost-plugin-versioned was refused") {
		t.Fatalf("an agent of a refused plugin: %d %+v", code, env.Error)
	}
	if _, err := f.Write(b[len(b)/2:]); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	written := time.Now()
	var info pluginInfo
	testwait.For(t, 20*time.Second, "the complete binary to be known", func() bool {
		code, p, _ := d.plugin("versioned")
		info = p
		return code == http.StatusOK
	})
	t.Logf("a binary written in place was known %s after its write completed", time.Since(written).Round(time.Millisecond))
	if info.Manifest.Version != "1" || info.State != "stopped" || info.Checksum == "" || info.Locked {
		t.Fatalf("the new plugin: %+v", info)
	}

	// A binary renamed into the folder, as a deploy does, used by a new
	// agent: how long from the rename to the agent's first answer.
	second := versioned(t, "name=second", "version=7")
	dropped := time.Now()
	install(t, second, dir, "second")
	testwait.For(t, 20*time.Second, "the dropped-in binary to be known", func() bool {
		code, _, _ := d.plugin("second")
		return code == http.StatusOK
	})
	known := time.Since(dropped)
	versionedAgent(t, d, "Newcomer", nil, "second")
	a := send(d.url, "Newcomer", "ann", "hello")
	if v, _ := a.version(); v != "7" {
		t.Fatalf("the new agent's answer: %+v", a)
	}
	t.Logf("a dropped-in binary was known %s after its rename, and a new agent had answered with it %s after it",
		known.Round(time.Millisecond), time.Since(dropped).Round(time.Millisecond))

	// `plugins list` asks the daemon, and says so.
	stdout, stderr, exit := cli(t, d.url, "", "", "plugins", "list", "--json")
	if exit != 0 || !strings.Contains(stderr, "plugins known to the daemon at "+d.url) {
		t.Fatalf("plugins list: exit %d\n%s", exit, stderr)
	}
	var list struct {
		Source  string
		Plugins []struct {
			Name, State, Checksum string
			Locked                bool
		}
	}
	if err := json.Unmarshal([]byte(stdout), &list); err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for _, p := range list.Plugins {
		names[p.Name] = p.State + " " + p.Checksum
	}
	if list.Source != "daemon" || !strings.HasPrefix(names["second"], "running ") || !strings.HasPrefix(names["versioned"], "stopped "+info.Checksum) {
		t.Fatalf("plugins list via the daemon: %s", stdout)
	}
}

// TestUpgradeUnderLoad: a binary renamed over a running plugin's is taken
// up while three senders keep messages coming: every message is answered
// once, none is lost, the calls in flight finish on the old process, and
// the old process goes once they have.
func TestUpgradeUnderLoad(t *testing.T) {
	v2 := versioned(t, "version=2")
	marks, slowMarks := t.TempDir(), t.TempDir()
	hold := filepath.Join(t.TempDir(), "release")
	dir, d := startVersioned(t, "Fast", map[string]any{"VERSIONED_DELAY_MS": "20", "VERSIONED_MARK_DIR": marks})
	versionedAgent(t, d, "Slow", map[string]any{"VERSIONED_HOLD": hold, "VERSIONED_MARK_DIR": slowMarks})
	_, before, _ := d.plugin("versioned")
	oldPid := before.Pid

	var (
		mu       sync.Mutex
		answers  []answer
		renamed  atomic.Bool
		after    atomic.Int64 // messages sent after the rename
		fromNew  atomic.Int64 // answers of the new version
		answered atomic.Int64
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	for s := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := fmt.Sprintf("sender%d", s)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if renamed.Load() {
					after.Add(1)
				}
				a := send(d.url, "Fast", user, fmt.Sprintf("%s message %d", user, i))
				if v, _ := a.version(); v == "2" {
					fromNew.Add(1)
				}
				answered.Add(1)
				mu.Lock()
				answers = append(answers, a)
				mu.Unlock()
			}
		}()
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	testwait.For(t, 60*time.Second, "the first answers", func() bool { return answered.Load() >= 10 })

	// A message held in flight on the old process through the switch.
	slow := make(chan answer, 1)
	go func() { slow <- send(d.url, "Slow", "patient", "take your time") }()
	testwait.For(t, 60*time.Second, "the held call to reach the old process", func() bool {
		_, err := os.Stat(filepath.Join(slowMarks, "first-call-v1"))
		return err == nil
	})

	t0 := time.Now()
	renamed.Store(true)
	install(t, v2, dir, "versioned")
	var now pluginInfo
	testwait.For(t, 60*time.Second, "the upgrade", func() bool {
		_, now, _ = d.plugin("versioned")
		return now.Manifest.Version == "2"
	})
	testwait.For(t, 60*time.Second, "30 messages sent after the rename and 10 answers of the new version", func() bool {
		return after.Load() >= 30 && fromNew.Load() >= 10
	})
	if !alive(oldPid) {
		t.Fatalf("the old process %d is gone while a call is in flight on it", oldPid)
	}
	if err := os.WriteFile(hold, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	held := <-slow
	close(stop)
	wg.Wait()
	testwait.For(t, 30*time.Second, "the old process to stop once its calls finished", func() bool { return !alive(oldPid) })

	if v, pid := held.version(); held.status != http.StatusOK || v != "1" || pid != oldPid {
		t.Fatalf("the call in flight during the switch should finish on the old process %d: %+v", oldPid, held)
	}
	newPid := now.Pid
	if newPid == oldPid || newPid == 0 || now.Upgrade == nil || now.Upgrade.From != "1" || now.Upgrade.To != "2" || now.Upgrade.Refused {
		t.Fatalf("after the upgrade: %+v", now)
	}
	warned := strings.Join(now.Upgrade.Warnings, "\n")
	for _, want := range []string{"agent Fast", "agent Slow", "action V1_ONLY", "provider V1_NEWS"} {
		if !strings.Contains(warned, want) {
			t.Errorf("the upgrade's warnings should name %q: %q", want, warned)
		}
	}
	if !d.says("V1_ONLY, which plugin versioned 2 no longer offers") {
		t.Error("the log should warn of the dropped action")
	}

	// Every message answered once, by one process or the other, and each
	// sender's switched once.
	byRoom := map[string][]answer{}
	for _, a := range answers {
		v, pid := a.version()
		if a.status != http.StatusOK || v == "" || (v == "1") != (pid == oldPid) || (v == "2") != (pid == newPid) {
			t.Fatalf("message %q of %s: status %d, replies %q, error %s", a.text, a.sender, a.status, a.replies, a.err)
		}
		byRoom[a.room] = append(byRoom[a.room], a)
	}
	if len(byRoom) != 3 {
		t.Fatalf("want three senders' rooms, got %d", len(byRoom))
	}
	for room, list := range byRoom {
		seenNew := false
		for _, a := range list {
			v, _ := a.version()
			if v == "1" && seenNew {
				t.Errorf("%s was answered by the old process after the new one answered %s", a.text, a.sender)
			}
			seenNew = seenNew || v == "2"
		}
		// The room holds each message and each reply once.
		texts, ids := map[string]int{}, map[string]int{}
		for _, m := range d.memoriesN("Fast", room, 1000) {
			texts[m.Content.Text]++
			ids[m.ID]++
		}
		for _, a := range list {
			if texts[a.text] != 1 {
				t.Errorf("room %s holds %q %d times", room, a.text, texts[a.text])
			}
			if ids[a.replyIDs[0]] != 1 {
				t.Errorf("room %s holds the reply to %q %d times", room, a.text, ids[a.replyIDs[0]])
			}
		}
		if n := len(ids); n != 2*len(list) {
			t.Errorf("room %s holds %d memories for %d messages and their replies", room, n, len(list))
		}
	}
	t.Logf("%d messages from 3 senders, %d sent after the rename, %d answered by the new version", len(answers), after.Load(), fromNew.Load())
	if raw, err := os.ReadFile(filepath.Join(marks, "first-call-v2")); err == nil {
		ns, _ := strconv.ParseInt(string(raw), 10, 64)
		t.Logf("upgrade cost: %s from the rename to the first call on the new process (the switch itself took %d ms)",
			time.Unix(0, ns).Sub(t0).Round(time.Millisecond), now.Upgrade.TookMs)
	}
}

// TestBrokenUpgradeIsRefused: a new binary that fails its checks is
// refused with the reason in the log and the API, and the old process
// serves on; a good one after it is taken.
func TestBrokenUpgradeIsRefused(t *testing.T) {
	dir, d := startVersioned(t, "Steady", nil)
	_, before, _ := d.plugin("versioned")
	for _, c := range []struct {
		flags []string
		want  string
	}{
		{[]string{"broken=exit"}, "start plugin versioned"},
		{[]string{"name=impostor"}, `its manifest names it "impostor"`},
		{[]string{"version=3", "require=VERSIONED_LICENCE"}, "VERSIONED_LICENCE"},
	} {
		bin := versioned(t, c.flags...)
		step := time.Now()
		install(t, bin, dir, "versioned")
		var now pluginInfo
		testwait.For(t, 30*time.Second, "the refusal of "+strings.Join(c.flags, " "), func() bool {
			_, now, _ = d.plugin("versioned")
			return now.Upgrade != nil && now.Upgrade.Refused && strings.Contains(now.Upgrade.Error, c.want)
		})
		if now.Pid != before.Pid || now.Manifest.Version != "1" || now.State != "running" {
			t.Fatalf("after refusing %v the old process should serve on: %+v", c.flags, now)
		}
		if v, pid := send(d.url, "Steady", "ann", "still there?").version(); v != "1" || pid != before.Pid {
			t.Fatalf("after refusing %v: answered by version %q pid %d", c.flags, v, pid)
		}
		// This binary's refusal, with its reason (quoted in the log): the
		// earlier binaries' refusals are in the log already.
		why := strings.ReplaceAll(c.want, `"`, `\"`)
		if !testwait.Poll(10*time.Second, func() bool {
			for _, l := range strings.Split(d.out.String(), "\n") {
				if strings.Contains(l, "new binary refused; the running process serves on") && strings.Contains(l, why) {
					return true
				}
			}
			return false
		}) {
			t.Fatalf("the log should say the binary %v was refused, and why", c.flags)
		}
		t.Logf("%v refused in %s", c.flags, time.Since(step))
	}
	install(t, versioned(t, "version=2"), dir, "versioned")
	testwait.For(t, 30*time.Second, "the good binary to be taken", func() bool {
		_, now, _ := d.plugin("versioned")
		return now.Manifest.Version == "2" && now.Upgrade != nil && !now.Upgrade.Refused
	})
	if v, _ := send(d.url, "Steady", "ann", "and now?").version(); v != "2" {
		t.Fatalf("after the good binary: version %q", v)
	}
}

// TestSIGTERMWhileAnUpgradeHangs: a new binary that never answers its
// handshake does not hold the daemon's stop, and a stop is not taken for
// the binary's refusal: it was given up, not judged.
func TestSIGTERMWhileAnUpgradeHangs(t *testing.T) {
	dir, dataDir := t.TempDir(), t.TempDir()
	install(t, versioned(t), dir, "versioned")
	d := startDaemon(t, daemonOpts{dataDir: dataDir, pluginDir: dir, env: versionedEnv(t)})
	versionedAgent(t, d, "Steady", nil)
	mute := filepath.Join(t.TempDir(), "mute")
	if err := os.WriteFile(mute, []byte("#!/bin/sh\necho $$ > upgrade-pid\nexec sleep 300\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	install(t, mute, dir, "versioned")
	pid := testwait.ForPID(t, 30*time.Second, filepath.Join(host.PluginDir(dataDir, "versioned"), "upgrade-pid"))
	out := d.sigterm()
	waitGone(t, []int{pid}, 2*time.Second)
	if strings.Contains(out, "binary refused") {
		t.Errorf("the stop was logged as the binary's refusal:\n%s", tail(out, 2000))
	}
}

// TestPluginsLock: under plugins.lock a tampered binary is refused, naming
// the file and both checksums, while the locked process serves on; `plugins
// lock --update` accepts it.
func TestPluginsLock(t *testing.T) {
	dir, work := t.TempDir(), t.TempDir()
	install(t, versioned(t), dir, "versioned")
	lockCLI := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bins.agenthost, append([]string{"plugins", "lock"}, args...)...)
		cmd.Dir = work
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "AGENTHOST_PLUGIN_PATH=" + dir}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("plugins lock %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	out := lockCLI()
	sum1 := sha256sum(t, filepath.Join(dir, "agenthost-plugin-versioned"))
	if !strings.Contains(out, "locked versioned 1  sha256 "+sum1) {
		t.Fatalf("plugins lock: %s", out)
	}
	var lock struct {
		Plugins []struct{ Name, Version, Path, SHA256 string }
	}
	raw, err := os.ReadFile(filepath.Join(work, "plugins.lock"))
	if err != nil || json.Unmarshal(raw, &lock) != nil || len(lock.Plugins) != 1 || lock.Plugins[0].SHA256 != sum1 ||
		lock.Plugins[0].Version != "1" || lock.Plugins[0].Path != filepath.Join(dir, "agenthost-plugin-versioned") {
		t.Fatalf("plugins.lock: %v %s", err, raw)
	}

	d := startDaemon(t, daemonOpts{pluginDir: dir, workDir: work, env: versionedEnv(t)})
	versionedAgent(t, d, "Pinned", nil)
	_, info, _ := d.plugin("versioned")
	if !info.Locked || info.Checksum != sum1 || info.State != "running" {
		t.Fatalf("the locked plugin: %+v", info)
	}

	// Tampered: refused, the locked process serves on.
	install(t, versioned(t, "version=2"), dir, "versioned")
	sum2 := sha256sum(t, filepath.Join(dir, "agenthost-plugin-versioned"))
	testwait.For(t, 30*time.Second, "the tampered binary to be refused", func() bool {
		_, info, _ = d.plugin("versioned")
		return info.Upgrade != nil && info.Upgrade.Refused
	})
	waitOutput(t, d, "plugin binary refused: it does not match plugins.lock")
	logLine := ""
	for _, l := range strings.Split(d.out.String(), "\n") {
		if strings.Contains(l, "plugin binary refused: it does not match plugins.lock") {
			logLine = l
		}
	}
	for _, want := range []string{"file=" + filepath.Join(dir, "agenthost-plugin-versioned"), "expected_sha256=" + sum1, "actual_sha256=" + sum2} {
		if !strings.Contains(logLine, want) {
			t.Errorf("the refusal's log line should hold %s: %q", want, logLine)
		}
	}
	if info.Pid == 0 || info.Manifest.Version != "1" || info.Checksum != sum2 || info.Locked {
		t.Fatalf("after the tampered binary: %+v", info)
	}
	if v, _ := send(d.url, "Pinned", "ann", "hi").version(); v != "1" {
		t.Fatalf("the locked process should serve on, answered by version %q", v)
	}
	// A scan refuses it too.
	cmd := exec.Command(bins.agenthost, "plugins", "list", "--scan", "--json")
	cmd.Dir = work
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "AGENTHOST_PLUGIN_PATH=" + dir}
	scanned, _ := cmd.Output()
	if !strings.Contains(string(scanned), "but "+filepath.Join(work, "plugins.lock")+" expects "+sum1) {
		t.Errorf("plugins list --scan should show the refusal: %s", scanned)
	}

	// Accepted: the daemon takes it up at its next look.
	if out := lockCLI("--update", "versioned"); !strings.Contains(out, "updated versioned 1 → 2  sha256 "+sum2) {
		t.Fatalf("plugins lock --update: %s", out)
	}
	testwait.For(t, 30*time.Second, "the accepted binary to be taken up", func() bool {
		_, info, _ = d.plugin("versioned")
		return info.Manifest.Version == "2" && info.Locked
	})
	if v, _ := send(d.url, "Pinned", "ann", "and now?").version(); v != "2" {
		t.Fatalf("after --update: version %q", v)
	}
}

// sha256sum is the checksum of a file, as the coreutils tool says it.
func sha256sum(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("sha256sum", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(out))[0]
}

// TestReloadAndSIGHUP: with the folders not watched, the reload endpoint,
// `plugins reload` and SIGHUP look at them.
func TestReloadAndSIGHUP(t *testing.T) {
	dir := t.TempDir()
	d := startDaemon(t, daemonOpts{pluginDir: dir, env: versionedEnv(t, "AGENTHOST_PLUGIN_WATCH_INTERVAL=0")})
	reload := func(path string) (int, map[string]json.RawMessage, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, d.url+path, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		env := decodeEnvelope(t, res.Body)
		var rep map[string]json.RawMessage
		_ = json.Unmarshal(env.Data, &rep)
		msg := ""
		if env.Error != nil {
			msg = env.Error.Message
		}
		return res.StatusCode, rep, msg
	}

	install(t, versioned(t), dir, "versioned")
	if code, rep, _ := reload("/api/plugins/reload"); code != http.StatusOK || string(rep["added"]) != `["versioned"]` {
		t.Fatalf("POST /api/plugins/reload: %d %s", code, rep)
	}
	if code, _, _ := d.plugin("versioned"); code != http.StatusOK {
		t.Fatalf("after the reload: %d", code)
	}
	if code, rep, _ := reload("/api/plugins/versioned/reload"); code != http.StatusOK || string(rep["upgraded"]) != "[]" || string(rep["added"]) != "[]" {
		t.Fatalf("a reload with nothing changed: %d %s", code, rep)
	}
	if code, _, msg := reload("/api/plugins/nosuch/reload"); code != http.StatusNotFound || !strings.Contains(msg, "agenthost-plugin-nosuch") {
		t.Fatalf("a reload of no plugin: %d %s", code, msg)
	}
	if stdout, stderr, code := cli(t, d.url, "", "", "plugins", "reload"); code != 0 || !strings.Contains(stdout, "nothing changed") {
		t.Fatalf("plugins reload: %d %s %s", code, stdout, stderr)
	}

	// SIGHUP takes a new plugin and reports a removed one.
	install(t, versioned(t, "name=other"), dir, "other")
	if err := os.Remove(filepath.Join(dir, "agenthost-plugin-versioned")); err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 30*time.Second, "SIGHUP to take the new plugin", func() bool {
		code, _, _ := d.plugin("other")
		return code == http.StatusOK
	})
	testwait.For(t, 30*time.Second, "SIGHUP to drop the removed plugin", func() bool {
		code, _, _ := d.plugin("versioned")
		return code == http.StatusNotFound
	})
	if _, stderr, code := cli(t, d.url, "", "", "plugins", "reload", "other"); code != 0 {
		t.Fatalf("plugins reload other: %d %s", code, stderr)
	}
	select {
	case <-d.exited:
		t.Fatal("SIGHUP stopped the daemon")
	default:
	}
}

// TestRemovedPluginAndUnknownPatch: a removed binary's process serves the
// agent that uses it until that agent stops; a change naming a plugin the
// daemon does not know is refused whole and leaves the running agent
// running.
func TestRemovedPluginAndUnknownPatch(t *testing.T) {
	dir, d := startVersioned(t, "Sunny", nil)
	_, info, _ := d.plugin("versioned")
	pid := info.Pid

	if err := os.Remove(filepath.Join(dir, "agenthost-plugin-versioned")); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 30*time.Second, "the removal to be reported", func() bool {
		_, info, _ = d.plugin("versioned")
		return info.Removed
	})
	if !d.says("plugin binary removed; its process serves the agents that use it until they stop") {
		t.Error("the log should report the removed binary")
	}
	if v, p := send(d.url, "Sunny", "ann", "still with me?").version(); v != "1" || p != pid {
		t.Fatalf("the removed binary's process should serve on: version %q pid %d", v, p)
	}
	code, env := d.post("/api/agents", map[string]any{"characterJson": map[string]any{"name": "Late", "bio": "x",
		"plugins": []string{"sql", "bootstrap", "versioned"}}})
	if code != http.StatusBadRequest || env.Error.Code != "UNKNOWN_PLUGIN" {
		t.Fatalf("a new agent of a removed plugin: %d %+v", code, env.Error)
	}

	// A PATCH naming an unknown plugin: 400, nothing changed.
	req, _ := http.NewRequest(http.MethodPatch, d.url+"/api/agents/Sunny", strings.NewReader(`{"plugins":["sql","bootstrap","offline","weather2"],"bio":"changed"}`))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	penv := decodeEnvelope(t, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest || penv.Error.Code != "UNKNOWN_PLUGIN" || !strings.Contains(penv.Error.Message, `"weather2"`) ||
		!strings.Contains(penv.Error.Message, "bootstrap, ") {
		t.Fatalf("PATCH with an unknown plugin: %d %+v", res.StatusCode, penv.Error)
	}
	_, stderr, exit := cli(t, d.url, "", "", "agent", "set", "Sunny", "-c", `{"plugins":["sql","bootstrap","weather2"]}`)
	if exit == 0 || !strings.Contains(stderr, `unknown plugin "weather2"`) {
		t.Fatalf("agent set with an unknown plugin: exit %d %s", exit, stderr)
	}
	statuses := agentStatuses(t, d)
	if statuses["Sunny"].Status != "running" {
		t.Fatalf("the refused changes touched the agent: %+v", statuses["Sunny"])
	}
	if v, p := send(d.url, "Sunny", "ann", "and now?").version(); v != "1" || p != pid {
		t.Fatalf("after the refused changes: version %q pid %d", v, p)
	}

	// The agent stops: the process goes, and the plugin with it.
	mustPost(t, d, http.StatusOK, "/api/agents/Sunny/stop", nil)
	testwait.For(t, 30*time.Second, "the removed plugin's process to stop with its last agent", func() bool { return !alive(pid) })
	if code, _, _ := d.plugin("versioned"); code != http.StatusNotFound {
		t.Fatalf("the removed plugin is still known after its last agent stopped: %d", code)
	}
}

// TestAttachDebugProcess: a plugin started by hand with
// AGENTHOST_PLUGIN_DEBUG=1 prints its reattach line, and a daemon started
// with --attach uses that process instead of starting one.
func TestAttachDebugProcess(t *testing.T) {
	plugin := exec.Command(versioned(t, "version=9"))
	plugin.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "AGENTHOST_PLUGIN_DEBUG=1"}
	stderr, err := plugin.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := plugin.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	t.Cleanup(func() {
		_ = plugin.Process.Kill()
		<-exited
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if l := strings.TrimSpace(sc.Text()); strings.HasPrefix(l, "agenthost start --attach '") {
				lines <- strings.TrimSuffix(strings.TrimPrefix(l, "agenthost start --attach '"), "'")
			}
		}
		_ = plugin.Wait()
		close(exited)
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(30 * time.Second):
		t.Fatal("the plugin printed no reattach line")
	}
	if !strings.HasPrefix(line, "versioned={") {
		t.Fatalf("reattach line: %q", line)
	}

	dataDir := t.TempDir()
	d := launch(t, daemonOpts{dataDir: dataDir, env: versionedEnv(t), args: []string{"--attach", line}})
	testwait.For(t, 60*time.Second, "the daemon", func() bool {
		res, err := http.Get(d.url + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
	versionedAgent(t, d, "Debugged", nil)
	if v, pid := send(d.url, "Debugged", "dev", "hello").version(); v != "9" || pid != plugin.Process.Pid {
		t.Fatalf("the agent should use the attached process %d: version %q pid %d", plugin.Process.Pid, v, pid)
	}
	_, info, _ := d.plugin("versioned")
	if info.Pid != plugin.Process.Pid {
		t.Errorf("GET /api/plugins/versioned: %+v", info)
	}
	// The daemon done with it, the plugin exits.
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the attached plugin did not exit when the daemon stopped")
	}
}
