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
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agenthost/agenthost/internal/syncbuf"
	"github.com/agenthost/agenthost/internal/sysmon"
	"github.com/agenthost/agenthost/internal/testwait"
)

var bins struct {
	agenthost, scripted, oldproto string
	// hostile and rawhostile attack the host (hostile_e2e_test.go).
	hostile, rawhostile string
	// broken is broken on purpose, as its file name says
	// (plugins_e2e_test.go).
	broken string
	// lastreply holds its handler after its last reply
	// (lastreply_e2e_test.go).
	lastreply string
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
	bins.hostile = build("agenthost-plugin-hostile", "../../internal/testplugin/hostile")
	bins.rawhostile = build("agenthost-plugin-rawhostile", "../../internal/testplugin/rawhostile")
	bins.broken = build("broken", "../../internal/testplugin/broken")
	bins.lastreply = build("agenthost-plugin-lastreply", "../../internal/testplugin/lastreply")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer collects output written from several goroutines.
type syncBuffer = syncbuf.Buffer

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
	// workDir is the daemon's working folder (where plugins.lock is
	// read); a fresh one when empty.
	workDir string
	// args are more arguments of `agenthost start`.
	args []string
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
	// Port 0: the daemon takes a free port itself, and says which in its
	// data dir's lock file. A port picked here and handed over could be
	// taken by another test's connection in between.
	args := []string{"start", "--port", "0", "--data-dir", o.dataDir}
	for _, c := range o.characters {
		args = append(args, "--character", c)
	}
	args = append(args, o.args...)
	cmd := exec.Command(bins.agenthost, args...)
	// An empty work dir and home: no ./plugins, no ~/.agenthost, no .env
	// of the developer's leak into the test.
	cmd.Dir = o.workDir
	if cmd.Dir == "" {
		cmd.Dir = t.TempDir()
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "AGENTHOST_LOG_LEVEL=debug",
		// The scripted test plugin reads and writes the files a test
		// points it at; confined, it may do so only in the test's own
		// folder, granted as an operator grants a plugin a folder.
		"AGENTHOST_PLUGIN_ALLOW_SCRIPTED=" + filepath.Dir(t.TempDir()) + ":rw"}
	if o.pluginDir != "" {
		env = append(env, "AGENTHOST_PLUGIN_PATH="+o.pluginDir)
	}
	cmd.Env = append(env, o.env...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, cmd: cmd, dataDir: o.dataDir, out: out, exited: make(chan struct{})}
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
	d.url = d.waitAddr()
	return d
}

// waitAddr waits until the daemon listens and returns its URL, from the
// lock file it writes in its data dir ("pid=N\naddr=A"): with the address
// asked for (port 0) when it takes the data dir, with the port it got once
// it listens. A daemon that exits first, as some tests want, has no URL.
func (d *daemon) waitAddr() string {
	d.t.Helper()
	lock := filepath.Join(d.dataDir, "daemon.lock")
	var url string
	testwait.For(d.t, 60*time.Second, "the daemon to listen (its address in "+lock+")", func() bool {
		select {
		case <-d.exited:
			return true
		default:
		}
		b, _ := os.ReadFile(lock)
		var pid int
		var addr string
		// The whole of it, up to the last newline: a write half done may be
		// read too.
		if s := string(b); strings.Count(s, "\n") == 2 && strings.HasSuffix(s, "\n") {
			_, _ = fmt.Sscanf(s, "pid=%d\naddr=%s\n", &pid, &addr)
		}
		if pid == d.cmd.Process.Pid && addr != "" && !strings.HasSuffix(addr, ":0") {
			url = "http://" + addr
			return true
		}
		return false
	})
	return url
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// says reports whether the daemon's output comes to hold every one of
// substrs within 10s. The daemon writes a line before it answers the
// request that caused it, but its output reaches d.out through a pipe that
// this process copies a moment later, so a test that looks right after an
// answer has to wait for what it looks for. To check that a line is absent,
// or to count lines, wait first for a later line that proves they have all
// been written.
func (d *daemon) says(substrs ...string) bool {
	return testwait.Poll(10*time.Second, func() bool {
		out := d.out.String()
		for _, s := range substrs {
			if !strings.Contains(out, s) {
				return false
			}
		}
		return true
	})
}

// waitOutput waits for the daemon's output to hold every one of substrs
// (see says), and fails the test if it does not.
func waitOutput(t *testing.T, d *daemon, substrs ...string) {
	t.Helper()
	if !d.says(substrs...) {
		// The daemon's output is logged when the test ends failed.
		t.Fatalf("timed out after 10s waiting for the daemon's output to say %q", substrs)
	}
}

// startDaemon starts the daemon and waits until /healthz says every agent
// runs.
func startDaemon(t *testing.T, o daemonOpts) *daemon {
	t.Helper()
	d := launch(t, o)
	d.waitReady()
	return d
}

// waitReady waits until the daemon is ready: serving, with every agent
// started or failed (/healthz answers 200).
func (d *daemon) waitReady() {
	d.t.Helper()
	ok := testwait.Poll(60*time.Second, func() bool {
		select {
		case <-d.exited:
			d.t.Fatalf("daemon exited before it was ready: %v\n%s", d.exitErr, d.out.String())
		default:
		}
		return healthy(d.url)
	})
	if !ok {
		d.t.Fatalf("daemon not ready in time\n%s", d.out.String())
	}
}

// healthy reports whether the daemon at url answers /healthz with 200.
func healthy(url string) bool {
	res, err := http.Get(url + "/healthz")
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode == http.StatusOK
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

// sigterm stops the daemon with SIGTERM, as an operator does, and fails
// the test unless it exits cleanly within two seconds; it returns what
// the daemon printed.
func (d *daemon) sigterm() string {
	d.t.Helper()
	t0 := time.Now()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		d.t.Fatal(err)
	}
	code, out := d.waitExit(10 * time.Second)
	if took := time.Since(t0); took > 2*time.Second {
		d.t.Errorf("the daemon took %s to stop", took)
	}
	if code != 0 {
		d.t.Errorf("SIGTERM: exit %d\n%s", code, tail(out, 2000))
	}
	return out
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

// sayWhenBack posts a message again and again until the agent answers it:
// after a crash or an outage, the agent is back once it does. It waits up
// to 30 seconds for what, and returns the answer.
func (d *daemon) sayWhenBack(what, agent string, body map[string]string) messagesData {
	d.t.Helper()
	var m messagesData
	testwait.ForNil(d.t, 30*time.Second, what, func() error {
		code, env := d.post("/api/agents/"+agent+"/messages", body)
		if code != http.StatusOK {
			return fmt.Errorf("the last message got %d %+v", code, env.Error)
		}
		return json.Unmarshal(env.Data, &m)
	})
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
	return d.memoriesN(agent, roomID, 50)
}

// memoriesN lists the room's newest n memories (at most 1000).
func (d *daemon) memoriesN(agent, roomID string, n int) []memoryJSON {
	d.t.Helper()
	code, env := d.get(fmt.Sprintf("/api/memory/%s/memories?roomId=%s&count=%d", agent, roomID, n))
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
	if testwait.Poll(timeout, func() bool { return !slices.ContainsFunc(pids, alive) }) {
		return
	}
	for _, p := range pids {
		if alive(p) {
			t.Errorf("plugin process %d (%s) is still running", p, cmdline(p))
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
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
	t.Parallel()
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
	// Ids the host makes sort by time (version 7), so that the message and
	// its reply share the pages of the database's index of ids.
	if mems[1].ID[14] != '7' || mems[0].ID[14] != '7' || mems[0].ID <= mems[1].ID {
		t.Errorf("message %s and reply %s: want version 7 UUIDs, the reply's after the message's", mems[1].ID, mems[0].ID)
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
	t.Parallel()
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

// The daemon starts again as itself, same process, with the Go runtime's
// monitor kept awake (internal/sysmon), and hands the setting to its
// plugins; an operator's GODEBUG keeps its settings, and its own
// schedtrace (0 turns this off) is left as it is.
func TestDaemonKeepsSysmonAwake(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		godebug string
		want    string
	}{
		{"", "GODEBUG=" + sysmon.Setting},
		{"gctrace=0", "GODEBUG=gctrace=0," + sysmon.Setting},
		{"gctrace=0,schedtrace=0", "GODEBUG=gctrace=0,schedtrace=0"},
	} {
		t.Run(c.want, func(t *testing.T) {
			t.Parallel()
			var env []string
			if c.godebug != "" {
				env = []string{"GODEBUG=" + c.godebug}
			}
			d := startDaemon(t, daemonOpts{env: env})
			d.say("Eliza", "hello")
			pids := append([]int{d.cmd.Process.Pid}, children(d.cmd.Process.Pid)...)
			if len(pids) < 4 {
				t.Fatalf("want the daemon and at least 3 plugin processes, got %v", pids)
			}
			for _, pid := range pids {
				b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
				if err != nil {
					t.Fatal(err)
				}
				if vars := strings.Split(string(b), "\x00"); !slices.Contains(vars, c.want) {
					t.Errorf("%s (pid %d) runs without %s: %q", cmdline(pid), pid, c.want, vars)
				}
			}
		})
	}
}

// The daemon runs its Go code on one thread once a message was answered
// with no other in flight (host/procs.go), as /metrics shows; an
// operator's GOMAXPROCS is kept.
func TestDaemonRunsOneMessageOnOneThread(t *testing.T) {
	t.Parallel()
	if runtime.NumCPU() < 2 {
		t.Skip("one CPU: the daemon runs on one thread anyway")
	}
	procs := func(d *daemon) string {
		return strconv.FormatFloat(metricValue(t, d, "go_sched_gomaxprocs_threads"), 'f', -1, 64)
	}
	d := startDaemon(t, daemonOpts{})
	if got, want := procs(d), strconv.Itoa(runtime.NumCPU()); got != want {
		t.Logf("before any message: %s threads (the machine has %s CPUs)", got, want)
	}
	d.say("Eliza", "hello")
	if got := procs(d); got != "1" {
		t.Errorf("after one message alone: %s threads, want 1", got)
	}
	if cpus := treeCPUs(t, d); len(cpus) != 1 || strings.ContainsAny(cpus[0], ",-") {
		t.Errorf("after one message alone: the threads of the daemon and its plugins may run on CPUs %q, want one CPU for all", cpus)
	}
	op := startDaemon(t, daemonOpts{env: []string{"GOMAXPROCS=2"}})
	op.say("Eliza", "hello")
	if got := procs(op); got != "2" {
		t.Errorf("with the operator's GOMAXPROCS=2: %s threads, want 2", got)
	}
	for _, cpus := range treeCPUs(t, op) {
		if !strings.ContainsAny(cpus, ",-") {
			t.Errorf("with the operator's GOMAXPROCS=2: a thread may run on CPU %s only, want every CPU", cpus)
		}
	}
}

// While two messages are in flight, the daemon and its plugins may run on
// every CPU again; once one message at a time has been the rule for a
// moment, on one CPU again.
func TestDaemonSpreadsOutForConcurrentMessages(t *testing.T) {
	t.Parallel()
	if runtime.NumCPU() < 2 {
		t.Skip("one CPU: nothing to spread out to")
	}
	char := scriptedCharacter(t, map[string]any{"SCRIPTED_DELAY_MS": "1500"})
	d := startDaemon(t, daemonOpts{pluginDir: pluginDirWith(t, bins.scripted), characters: []string{char}})
	d.say("Scripty", "alone")
	if cpus := treeCPUs(t, d); len(cpus) != 1 || strings.ContainsAny(cpus[0], ",-") {
		t.Fatalf("after one message alone: CPUs %q, want one CPU for all", cpus)
	}
	var wg sync.WaitGroup
	for _, text := range []string{"first", "second"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.post("/api/agents/Scripty/messages", map[string]string{"text": text, "userName": "tester"})
		}()
	}
	spread := testwait.Poll(1200*time.Millisecond, func() bool {
		for _, cpus := range treeCPUs(t, d) {
			if !strings.ContainsAny(cpus, ",-") {
				return false
			}
		}
		return true
	})
	if !spread {
		t.Errorf("two messages in flight: CPUs %q, want every CPU for every thread", treeCPUs(t, d))
	}
	wg.Wait()
	pinned := testwait.Poll(5*time.Second, func() bool {
		cpus := treeCPUs(t, d)
		return len(cpus) == 1 && !strings.ContainsAny(cpus[0], ",-")
	})
	if !pinned {
		t.Errorf("after the two messages: CPUs %q, want one CPU for all again", treeCPUs(t, d))
	}
}

// treeCPUs lists, sorted and once each, the CPU lists (Cpus_allowed_list)
// of the threads of the daemon and of its plugin processes.
func treeCPUs(t *testing.T, d *daemon) []string {
	t.Helper()
	seen := map[string]bool{}
	for _, pid := range append([]int{d.cmd.Process.Pid}, children(d.cmd.Process.Pid)...) {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
		for _, f := range tasks {
			b, err := os.ReadFile(f)
			if err != nil {
				continue // the thread exited
			}
			if _, v, ok := strings.Cut(string(b), "Cpus_allowed_list:"); ok {
				v, _, _ = strings.Cut(v, "\n")
				seen[strings.TrimSpace(v)] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

func TestHostSIGKILLLeavesNoPlugin(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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
	testwait.For(t, 20*time.Second, "the model call to start", func() bool { return fileExists(started) })
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
	m := d.sayWhenBack("the agent to recover", "Scripty", map[string]string{"text": "and now?"})
	if len(m.Messages) != 1 || m.Messages[0].Text != "scripted reply to: and now?" {
		t.Fatalf("after the restart, want the scripted reply, got %+v", m)
	}
	b, _ = os.ReadFile(filepath.Join(marks, "pid"))
	if newPID, _ := strconv.Atoi(string(b)); newPID == oldPID || newPID == 0 {
		t.Errorf("want a new plugin process, pid %d → %d", oldPID, newPID)
	}
}

func TestBootstrapSIGKILLMidMessage(t *testing.T) {
	t.Parallel()
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
	testwait.For(t, 20*time.Second, "the model call to start", func() bool { return fileExists(filepath.Join(marks, "model-started")) })
	_ = syscall.Kill(bootstrapPID, syscall.SIGKILL)
	select {
	case code := <-done:
		if code != http.StatusBadGateway {
			t.Fatalf("want 502 for the message whose handler died, got %d", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the message in flight hung after bootstrap died")
	}
	d.sayWhenBack("bootstrap to come back", "Scripty", map[string]string{"text": "back?"})
	if alive(bootstrapPID) {
		t.Error("the killed bootstrap process is still there")
	}
}

func TestHostileLogLinesDoNotCrashHost(t *testing.T) {
	t.Parallel()
	char := scriptedCharacter(t, map[string]any{"SCRIPTED_HOSTILE_LOGS": "true"})
	d := startDaemon(t, daemonOpts{pluginDir: pluginDirWith(t, bins.scripted), characters: []string{char}})
	m := d.say("Scripty", "still alive?")
	if len(m.Messages) != 1 || m.Messages[0].Text != "scripted reply to: still alive?" {
		t.Fatalf("got %+v", m)
	}
	if !d.says("plugin log line cut") {
		t.Error("the 300 KiB line should be reported as cut")
	}
	if !d.says("a prefixed line") {
		t.Error("plain stderr lines should reach the host's log")
	}
}

func TestUnknownPluginIsAnError(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
	char := writeCharacter(t, map[string]any{"name": "Mute", "bio": "x", "plugins": []string{"sql", "bootstrap"}})
	d := launch(t, daemonOpts{characters: []string{char}})
	code, out := d.waitExit(30 * time.Second)
	if code == 0 || !strings.Contains(out, "has no TEXT model") {
		t.Fatalf("want an error saying the agent has no TEXT model, got exit %d:\n%s", code, out)
	}
}

func TestOtherProtocolVersionIsRefused(t *testing.T) {
	t.Parallel()
	char := writeCharacter(t, map[string]any{"name": "Old", "bio": "x", "plugins": []string{"sql", "offline", "oldproto"}})
	d := launch(t, daemonOpts{pluginDir: pluginDirWith(t, bins.oldproto), characters: []string{char}})
	code, out := d.waitExit(30 * time.Second)
	if code == 0 || !strings.Contains(out, "plugin oldproto") || !strings.Contains(out, "protocol 2") || !strings.Contains(out, "protocol 1") {
		t.Fatalf("want an error naming the plugin and both protocol versions, got exit %d:\n%s", code, out)
	}
}

func TestBadCharacterFile(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
	cmd := exec.Command(bins.agenthost, "plugins", "list", "--scan", "--json")
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
	t.Parallel()
	out, err := exec.Command(bins.agenthost, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "agenthost.plugin.v1") {
		t.Fatalf("version: %v %s", err, out)
	}
}

// TestHungPluginIsRestarted freezes a plugin with SIGSTOP: it stops
// answering without exiting. The message in flight must fail rather than
// hang, and the host must replace the plugin.
func TestHungPluginIsRestarted(t *testing.T) {
	t.Parallel()
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
	d.sayWhenBack("the agent to recover from a frozen plugin", "Eliza", map[string]string{"text": "and now?"})
	if alive(offlinePID) {
		t.Error("the frozen plugin process was not killed")
	}
}

// TestPluginProcessesAreShared runs two agents on the same plugins: one
// process per plugin serves both, and each agent keeps its own memories.
func TestPluginProcessesAreShared(t *testing.T) {
	t.Parallel()
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
