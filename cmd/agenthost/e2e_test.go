//go:build linux

package main

// End-to-end tests: they build the real agenthost binary and test plugins,
// start the daemon as a process, talk to it over HTTP and kill processes
// with real signals.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	typescriptplugin "github.com/agenthost/agenthost/examples/typescript-plugin"
)

var bins struct {
	agenthost, scripted, oldproto string
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "agenthost-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	build := func(out, pkg string) string {
		path := filepath.Join(dir, out)
		cmd := exec.Command("go", "build", "-o", path, pkg)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n", pkg, err)
			os.Exit(1)
		}
		return path
	}
	bins.agenthost = build("agenthost", ".")
	bins.scripted = build("agenthost-plugin-scripted", "../../internal/testplugin/scripted")
	bins.oldproto = build("agenthost-plugin-oldproto", "../../internal/testplugin/oldproto")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer collects a process's output for failure messages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type daemon struct {
	t       *testing.T
	cmd     *exec.Cmd
	url     string
	dataDir string
	out     *syncBuffer
	exited  chan struct{}
	exitErr error
}

type daemonOpts struct {
	dataDir    string
	pluginDir  string
	characters []string
	env        []string
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// launch starts `agenthost start` without waiting for it to be ready.
func launch(t *testing.T, o daemonOpts) *daemon {
	t.Helper()
	if o.dataDir == "" {
		o.dataDir = t.TempDir()
	}
	port := freePort(t)
	args := []string{"start", "--port", strconv.Itoa(port), "--data-dir", o.dataDir}
	for _, c := range o.characters {
		args = append(args, "--character", c)
	}
	cmd := exec.Command(bins.agenthost, args...)
	// An empty work dir and home: no ./plugins, no ~/.agenthost, no .env
	// of the developer's leak into the test.
	cmd.Dir = t.TempDir()
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "AGENTHOST_LOG_LEVEL=debug"}
	if o.pluginDir != "" {
		env = append(env, "AGENTHOST_PLUGIN_PATH="+o.pluginDir)
	}
	cmd.Env = append(env, o.env...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, cmd: cmd, url: fmt.Sprintf("http://127.0.0.1:%d", port), dataDir: o.dataDir, out: out, exited: make(chan struct{})}
	go func() { d.exitErr = cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("daemon output:\n%s", tail(out.String(), 6000))
		}
	})
	return d
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// startDaemon starts the daemon and waits until /healthz says every agent
// runs.
func startDaemon(t *testing.T, o daemonOpts) *daemon {
	t.Helper()
	d := launch(t, o)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-d.exited:
			t.Fatalf("daemon exited before it was ready: %v\n%s", d.exitErr, d.out.String())
		default:
		}
		res, err := http.Get(d.url + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return d
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("daemon not ready in time\n%s", d.out.String())
	return nil
}

// waitExit waits for a daemon that is expected to stop by itself.
func (d *daemon) waitExit(timeout time.Duration) (int, string) {
	d.t.Helper()
	select {
	case <-d.exited:
	case <-time.After(timeout):
		d.t.Fatalf("daemon still running after %s\n%s", timeout, d.out.String())
	}
	return d.cmd.ProcessState.ExitCode(), d.out.String()
}

type envelope struct {
	Success bool            `json:"success"`
	Data    json.RawMessage `json:"data"`
	Error   *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

type messagesData struct {
	RoomID   string `json:"roomId"`
	Messages []struct {
		ID      string   `json:"id"`
		Text    string   `json:"text"`
		Actions []string `json:"actions"`
	} `json:"messages"`
}

func (d *daemon) post(path string, body any) (int, envelope) {
	d.t.Helper()
	b, _ := json.Marshal(body)
	client := &http.Client{Timeout: 60 * time.Second}
	res, err := client.Post(d.url+path, "application/json", bytes.NewReader(b))
	if err != nil {
		d.t.Fatalf("POST %s: %v", path, err)
	}
	defer res.Body.Close()
	return res.StatusCode, decodeEnvelope(d.t, res.Body)
}

func (d *daemon) get(path string) (int, envelope) {
	d.t.Helper()
	res, err := http.Get(d.url + path)
	if err != nil {
		d.t.Fatalf("GET %s: %v", path, err)
	}
	defer res.Body.Close()
	return res.StatusCode, decodeEnvelope(d.t, res.Body)
}

func decodeEnvelope(t *testing.T, r io.Reader) envelope {
	t.Helper()
	raw, _ := io.ReadAll(r)
	var e envelope
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatalf("response is not the JSON envelope: %v: %s", err, raw)
	}
	return e
}

func (d *daemon) say(agent, text string) messagesData {
	d.t.Helper()
	code, env := d.post("/api/agents/"+agent+"/messages", map[string]string{"text": text, "userName": "tester"})
	if code != http.StatusOK || !env.Success {
		d.t.Fatalf("message %q: status %d: %+v", text, code, env.Error)
	}
	var m messagesData
	if err := json.Unmarshal(env.Data, &m); err != nil {
		d.t.Fatal(err)
	}
	return m
}

type memoryJSON struct {
	ID       string `json:"id"`
	EntityID string `json:"entityId"`
	Content  struct {
		Text string `json:"text"`
	} `json:"content"`
	CreatedAt int64 `json:"createdAt"`
}

func (d *daemon) memories(agent, roomID string) []memoryJSON {
	d.t.Helper()
	code, env := d.get("/api/memory/" + agent + "/memories?roomId=" + roomID)
	if code != http.StatusOK {
		d.t.Fatalf("memories: status %d: %+v", code, env.Error)
	}
	var data struct {
		Memories []memoryJSON `json:"memories"`
	}
	if err := json.Unmarshal(env.Data, &data); err != nil {
		d.t.Fatal(err)
	}
	return data.Memories
}

// children lists the processes whose parent is pid.
func children(pid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid(n) == pid {
			out = append(out, n)
		}
	}
	return out
}

func ppid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// The command name may hold spaces and parentheses: fields start after
	// the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return -1
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.ReplaceAll(string(b), "\x00", " ")
}

// alive reports whether pid runs and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && len(s) > i+2 && s[i+2] != 'Z'
}

func waitGone(t *testing.T, pids []int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		left := 0
		for _, p := range pids {
			if alive(p) {
				left++
			}
		}
		if left == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, p := range pids {
		if alive(p) {
			t.Errorf("plugin process %d (%s) is still running", p, cmdline(p))
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	}
}

func pluginDirWith(t *testing.T, bins ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, b := range bins {
		if err := os.Symlink(b, filepath.Join(dir, filepath.Base(b))); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func writeCharacter(t *testing.T, v map[string]any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "character.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestMessageEndToEnd(t *testing.T) {
	d := startDaemon(t, daemonOpts{})
	code, env := d.get("/api/agents")
	if code != http.StatusOK {
		t.Fatalf("agents: %d", code)
	}
	var agents struct {
		Agents []struct{ ID, Name, Status string } `json:"agents"`
	}
	if err := json.Unmarshal(env.Data, &agents); err != nil {
		t.Fatal(err)
	}
	if len(agents.Agents) != 1 || agents.Agents[0].Name != "Eliza" || agents.Agents[0].Status != "running" {
		t.Fatalf("agents = %+v", agents.Agents)
	}
	// elizaOS's stringToUuid("Eliza"): the same agent id as elizaOS gives.
	if got, want := agents.Agents[0].ID, "b850bc30-45f8-0041-a00a-83df46d8555d"; got != want {
		t.Errorf("agent id = %s, want elizaOS's %s", got, want)
	}
	m := d.say("Eliza", "I am feeling sad about my job")
	if len(m.Messages) != 1 || strings.TrimSpace(m.Messages[0].Text) == "" {
		t.Fatalf("want one non-empty reply, got %+v", m)
	}
	if !strings.Contains(strings.ToLower(m.Messages[0].Text), "your job") {
		t.Errorf("ELIZA should reflect 'my job' as 'your job': %q", m.Messages[0].Text)
	}
	mems := d.memories(agents.Agents[0].ID, m.RoomID)
	if len(mems) != 2 {
		t.Fatalf("want the message and the reply stored, got %d: %+v", len(mems), mems)
	}
	if mems[0].ID != m.Messages[0].ID || mems[0].Content.Text != m.Messages[0].Text {
		t.Errorf("newest memory should be the reply %q, got %+v", m.Messages[0].Text, mems[0])
	}
	if mems[1].Content.Text != "I am feeling sad about my job" {
		t.Errorf("oldest memory should be the message, got %+v", mems[1])
	}
	// The second message in the same room continues the conversation.
	code, env = d.post("/api/agents/Eliza/messages", map[string]string{"text": "Yes, it is my boss", "roomId": m.RoomID, "userName": "tester"})
	if code != http.StatusOK {
		t.Fatalf("second message: %d %+v", code, env.Error)
	}
	if n := len(d.memories("Eliza", m.RoomID)); n != 4 {
		t.Errorf("want 4 memories after two exchanges, got %d", n)
	}
}

func TestRestartKeepsMemories(t *testing.T) {
	dataDir := t.TempDir()
	d := startDaemon(t, daemonOpts{dataDir: dataDir})
	m := d.say("Eliza", "Remember that I like green tea")
	pids := children(d.cmd.Process.Pid)
	if len(pids) < 3 {
		t.Fatalf("want at least 3 plugin processes, got %v", pids)
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, out := d.waitExit(20 * time.Second); code != 0 {
		t.Fatalf("SIGTERM: exit code %d\n%s", code, out)
	}
	waitGone(t, pids, 5*time.Second)

	d2 := startDaemon(t, daemonOpts{dataDir: dataDir})
	mems := d2.memories("Eliza", m.RoomID)
	if len(mems) != 2 || mems[1].Content.Text != "Remember that I like green tea" {
		t.Fatalf("after a restart on the same data dir, want the earlier exchange, got %+v", mems)
	}
}

func TestHostSIGKILLLeavesNoPlugin(t *testing.T) {
	d := startDaemon(t, daemonOpts{})
	d.say("Eliza", "hello")
	pids := children(d.cmd.Process.Pid)
	if len(pids) < 3 {
		t.Fatalf("want at least 3 plugin processes, got %v", pids)
	}
	if err := d.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pids, 5*time.Second)
}

func TestSIGINTStopsEverything(t *testing.T) {
	d := startDaemon(t, daemonOpts{})
	pids := children(d.cmd.Process.Pid)
	if err := d.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if code, out := d.waitExit(20 * time.Second); code != 0 {
		t.Fatalf("SIGINT: exit code %d\n%s", code, out)
	}
	waitGone(t, pids, 5*time.Second)
}

// scriptedCharacter is an agent whose model is the scripted test plugin.
func scriptedCharacter(t *testing.T, settings map[string]any, extraPlugins ...string) string {
	plugins := append([]string{"@elizaos/plugin-sql", "@elizaos/plugin-bootstrap", "scripted"}, extraPlugins...)
	return writeCharacter(t, map[string]any{"name": "Scripty", "bio": "A test agent.", "plugins": plugins, "settings": settings})
}

func TestModelPluginSIGKILLMidMessage(t *testing.T) {
	marks := t.TempDir()
	char := scriptedCharacter(t, map[string]any{"SCRIPTED_DELAY_MS": "2000", "SCRIPTED_MARK_DIR": marks})
	d := startDaemon(t, daemonOpts{pluginDir: pluginDirWith(t, bins.scripted), characters: []string{char}})

	type result struct {
		code int
		env  envelope
	}
	done := make(chan result, 1)
	go func() {
		code, env := d.post("/api/agents/Scripty/messages", map[string]string{"text": "are you there?"})
		done <- result{code, env}
	}()
	started := filepath.Join(marks, "model-started")
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(started); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the model call never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, _ := os.ReadFile(filepath.Join(marks, "pid"))
	oldPID, _ := strconv.Atoi(string(b))
	if err := syscall.Kill(oldPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.code != http.StatusBadGateway || r.env.Error == nil || !strings.Contains(r.env.Error.Message, "plugin scripted crashed") {
			t.Fatalf("want 502 saying the scripted plugin crashed, got %d %+v", r.code, r.env.Error)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the message in flight hung after its model plugin died")
	}
	// The host restarts the plugin and configures it again for the agent.
	_ = os.Remove(started)
	var m messagesData
	deadline = time.Now().Add(30 * time.Second)
	for {
		code, env := d.post("/api/agents/Scripty/messages", map[string]string{"text": "and now?"})
		if code == http.StatusOK {
			_ = json.Unmarshal(env.Data, &m)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent did not recover: %d %+v", code, env.Error)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(m.Messages) != 1 || m.Messages[0].Text != "scripted reply to: and now?" {
		t.Fatalf("after the restart, want the scripted reply, got %+v", m)
	}
	b, _ = os.ReadFile(filepath.Join(marks, "pid"))
	if newPID, _ := strconv.Atoi(string(b)); newPID == oldPID || newPID == 0 {
		t.Errorf("want a new plugin process, pid %d → %d", oldPID, newPID)
	}
}

func TestBootstrapSIGKILLMidMessage(t *testing.T) {
	marks := t.TempDir()
	char := scriptedCharacter(t, map[string]any{"SCRIPTED_DELAY_MS": "1500", "SCRIPTED_MARK_DIR": marks})
	d := startDaemon(t, daemonOpts{pluginDir: pluginDirWith(t, bins.scripted), characters: []string{char}})
	var bootstrapPID int
	for _, p := range children(d.cmd.Process.Pid) {
		if strings.Contains(cmdline(p), "__plugin bootstrap") {
			bootstrapPID = p
		}
	}
	if bootstrapPID == 0 {
		t.Fatal("no bootstrap process among the daemon's children")
	}
	done := make(chan int, 1)
	go func() {
		code, _ := d.post("/api/agents/Scripty/messages", map[string]string{"text": "hello?"})
		done <- code
	}()
	for deadline := time.Now().Add(20 * time.Second); ; {
		if _, err := os.Stat(filepath.Join(marks, "model-started")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the model call never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(bootstrapPID, syscall.SIGKILL)
	select {
	case code := <-done:
		if code != http.StatusBadGateway {
			t.Fatalf("want 502 for the message whose handler died, got %d", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the message in flight hung after bootstrap died")
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		code, _ := d.post("/api/agents/Scripty/messages", map[string]string{"text": "back?"})
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bootstrap did not come back: %d", code)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if alive(bootstrapPID) {
		t.Error("the killed bootstrap process is still there")
	}
}

func TestHostileLogLinesDoNotCrashHost(t *testing.T) {
	char := scriptedCharacter(t, map[string]any{"SCRIPTED_HOSTILE_LOGS": "true"})
	d := startDaemon(t, daemonOpts{pluginDir: pluginDirWith(t, bins.scripted), characters: []string{char}})
	m := d.say("Scripty", "still alive?")
	if len(m.Messages) != 1 || m.Messages[0].Text != "scripted reply to: still alive?" {
		t.Fatalf("got %+v", m)
	}
	out := d.out.String()
	if !strings.Contains(out, "plugin log line cut") {
		t.Error("the 300 KiB line should be reported as cut")
	}
	if !strings.Contains(out, "a prefixed line") {
		t.Error("plain stderr lines should reach the host's log")
	}
}

func TestUnknownPluginIsAnError(t *testing.T) {
	char := writeCharacter(t, map[string]any{"name": "Lost", "bio": "x", "plugins": []string{"@elizaos/plugin-sql", "nonexistent"}})
	d := launch(t, daemonOpts{characters: []string{char}})
	code, out := d.waitExit(30 * time.Second)
	if code == 0 || !strings.Contains(out, `unknown plugin "nonexistent"`) || !strings.Contains(out, "the plugins found are: bootstrap, ") {
		t.Fatalf("want an error naming the plugin and listing those found, got exit %d:\n%s", code, out)
	}
	for _, name := range bundledNames() {
		if !strings.Contains(out, name) {
			t.Errorf("the error should list the bundled plugin %s", name)
		}
	}
}

func TestNoTextModelIsAnError(t *testing.T) {
	char := writeCharacter(t, map[string]any{"name": "Mute", "bio": "x", "plugins": []string{"sql", "bootstrap"}})
	d := launch(t, daemonOpts{characters: []string{char}})
	code, out := d.waitExit(30 * time.Second)
	if code == 0 || !strings.Contains(out, "has no TEXT model") {
		t.Fatalf("want an error saying the agent has no TEXT model, got exit %d:\n%s", code, out)
	}
}

func TestOtherProtocolVersionIsRefused(t *testing.T) {
	char := writeCharacter(t, map[string]any{"name": "Old", "bio": "x", "plugins": []string{"sql", "offline", "oldproto"}})
	d := launch(t, daemonOpts{pluginDir: pluginDirWith(t, bins.oldproto), characters: []string{char}})
	code, out := d.waitExit(30 * time.Second)
	if code == 0 || !strings.Contains(out, "plugin oldproto") || !strings.Contains(out, "protocol 2") || !strings.Contains(out, "protocol 1") {
		t.Fatalf("want an error naming the plugin and both protocol versions, got exit %d:\n%s", code, out)
	}
}

func TestBadCharacterFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "broken.json")
	if err := os.WriteFile(path, []byte("{\n  \"name\": \"Broken\",\n  \"bio\": [1, 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := launch(t, daemonOpts{characters: []string{path}})
	code, out := d.waitExit(10 * time.Second)
	if code == 0 || !strings.Contains(out, path) {
		t.Fatalf("want an error naming the character file, got exit %d:\n%s", code, out)
	}
}

func TestPluginsListJSON(t *testing.T) {
	cmd := exec.Command(bins.agenthost, "plugins", "list", "--json")
	cmd.Dir = t.TempDir()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "AGENTHOST_PLUGIN_PATH=" + pluginDirWith(t, bins.scripted)}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("plugins list: %v\n%s", err, out)
	}
	var res struct {
		Plugins []struct {
			Name     string `json:"name"`
			Bundled  bool   `json:"bundled"`
			Error    string `json:"error"`
			Manifest struct {
				Name     string `json:"name"`
				Database bool   `json:"database"`
				Models   []struct {
					Type string `json:"type"`
				} `json:"models"`
				Events []string `json:"events"`
			} `json:"manifest"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	byName := map[string]int{}
	for i, p := range res.Plugins {
		if p.Error != "" {
			t.Errorf("plugin %s: %s", p.Name, p.Error)
		}
		byName[p.Name] = i
	}
	for _, want := range []string{"bootstrap", "sql", "offline", "scripted"} {
		if _, ok := byName[want]; !ok {
			t.Fatalf("plugins list lacks %s: %s", want, out)
		}
	}
	if !res.Plugins[byName["sql"]].Manifest.Database {
		t.Error("sql should declare itself a database adapter")
	}
	if p := res.Plugins[byName["scripted"]]; p.Bundled || len(p.Manifest.Models) != 2 {
		t.Errorf("scripted: %+v", p)
	}
	if ev := res.Plugins[byName["bootstrap"]].Manifest.Events; !slices.Contains(ev, "MESSAGE_RECEIVED") {
		t.Errorf("bootstrap events = %v", ev)
	}
}

func TestVersion(t *testing.T) {
	out, err := exec.Command(bins.agenthost, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "agenthost.plugin.v1") {
		t.Fatalf("version: %v %s", err, out)
	}
}

// TestTypeScriptPlugin loads the TypeScript example as a drop-in executable:
// its provider's text must reach the prompt, and its action must run.
func TestTypeScriptPlugin(t *testing.T) {
	launcher, err := typescriptplugin.Build(filepath.Join("..", "..", "examples", "typescript-plugin"))
	if err != nil {
		t.Fatal(err)
	}
	launcher, _ = filepath.Abs(launcher)
	const providerText = "The TypeScript example provider says hello from Node."
	char := scriptedCharacter(t, map[string]any{
		"SCRIPTED_ACTIONS": "REPLY,TS_EXAMPLE_ACTION",
		"SCRIPTED_PROBE":   providerText,
	}, "typescript-example")
	d := startDaemon(t, daemonOpts{pluginDir: pluginDirWith(t, bins.scripted, launcher), characters: []string{char}})
	code, env := d.get("/api/agents")
	if code != http.StatusOK {
		t.Fatal(code)
	}
	var agents struct {
		Agents []struct{ ID string } `json:"agents"`
	}
	_ = json.Unmarshal(env.Data, &agents)
	m := d.say("Scripty", "run the node action")
	if len(m.Messages) != 2 {
		t.Fatalf("want the reply and the action's message, got %+v", m.Messages)
	}
	if want := "scripted reply to: run the node action [probe seen: true]"; m.Messages[0].Text != want {
		t.Errorf("the composed state should hold the TypeScript provider's text: reply = %q, want %q", m.Messages[0].Text, want)
	}
	if want := "TS_EXAMPLE_ACTION ran in Node for agent " + agents.Agents[0].ID; m.Messages[1].Text != want {
		t.Errorf("the TypeScript action's message = %q, want %q", m.Messages[1].Text, want)
	}
}

// TestHungPluginIsRestarted freezes a plugin with SIGSTOP: it stops
// answering without exiting. The message in flight must fail rather than
// hang, and the host must replace the plugin.
func TestHungPluginIsRestarted(t *testing.T) {
	d := startDaemon(t, daemonOpts{})
	var offlinePID int
	for _, p := range children(d.cmd.Process.Pid) {
		if strings.Contains(cmdline(p), "__plugin offline") {
			offlinePID = p
		}
	}
	if offlinePID == 0 {
		t.Fatal("no offline plugin process")
	}
	if err := syscall.Kill(offlinePID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(offlinePID, syscall.SIGKILL)
	done := make(chan int, 1)
	go func() {
		code, _ := d.post("/api/agents/Eliza/messages", map[string]string{"text": "anyone home?"})
		done <- code
	}()
	select {
	case code := <-done:
		if code == http.StatusOK {
			t.Fatal("a frozen model plugin cannot have answered")
		}
	case <-time.After(40 * time.Second):
		t.Fatal("the message hung on a frozen plugin")
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		code, _ := d.post("/api/agents/Eliza/messages", map[string]string{"text": "and now?"})
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent did not recover from a frozen plugin: %d", code)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if alive(offlinePID) {
		t.Error("the frozen plugin process was not killed")
	}
}

// TestPluginProcessesAreShared runs two agents on the same plugins: one
// process per plugin serves both, and each agent keeps its own memories.
func TestPluginProcessesAreShared(t *testing.T) {
	a := writeCharacter(t, map[string]any{"name": "Ada", "bio": "first", "plugins": []string{"sql", "bootstrap", "offline"}})
	b := writeCharacter(t, map[string]any{"name": "Bob", "bio": "second", "plugins": []string{"@elizaos/plugin-sql", "@elizaos/plugin-bootstrap", "offline"}})
	d := startDaemon(t, daemonOpts{characters: []string{a, b}})
	if n := len(children(d.cmd.Process.Pid)); n != 3 {
		t.Errorf("two agents on three plugins should cost three processes, got %d", n)
	}
	ma := d.say("Ada", "I dream about the sea")
	mb := d.say("Bob", "I dream about the sea")
	if ma.RoomID == mb.RoomID {
		t.Error("each agent must map the same user to its own room")
	}
	if n := len(d.memories("Ada", ma.RoomID)); n != 2 {
		t.Errorf("Ada has %d memories in her room, want 2", n)
	}
	if n := len(d.memories("Bob", ma.RoomID)); n != 0 {
		t.Errorf("Bob must not see Ada's room, got %d memories", n)
	}
}
