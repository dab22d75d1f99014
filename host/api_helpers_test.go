package host

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/character"
	"github.com/hashicorp/go-hclog"
)

// The API tests run a real daemon in the test process, with its plugins as
// real processes: the agenthost binary (built once by TestMain) serves the
// bundled plugins, as in production.

type testDaemon struct {
	t   *testing.T
	d   *Daemon
	srv *httptest.Server
	url string
	key string
	// stop stops the daemon (once); the test's cleanup calls it too.
	stop func()
}

type daemonOpt struct {
	env   map[string]string
	chars []*sdk.Character
	// dataDir is a fresh temp dir when empty.
	dataDir string
	// listen serves on a real listener of the daemon's own (its
	// http.Server, with its timeouts) instead of an httptest server.
	listen bool
	// pluginDirs are searched for third-party plugins (see testPlugins).
	pluginDirs []string
	// cfg adjusts the configuration before the daemon is made.
	cfg func(*Config)
	// logOut gets the daemon's log too.
	logOut io.Writer
}

func startTestDaemon(t *testing.T, o daemonOpt) *testDaemon {
	t.Helper()
	chars := o.chars
	if chars == nil {
		chars = []*sdk.Character{character.Default()}
	}
	env := map[string]string{"AGENTHOST_RATE_LIMIT": "0"}
	for k, v := range o.env {
		env[k] = v
	}
	if o.dataDir == "" {
		o.dataDir = t.TempDir()
	}
	var out io.Writer = testWriter{t}
	if o.logOut != nil {
		out = io.MultiWriter(out, o.logOut)
	}
	cfg := Config{
		Version: "test", DataDir: o.dataDir, Characters: chars, Env: env, Self: agenthostBin,
		Bundled: []string{"bootstrap", "offline", "sql"}, DefaultPlugins: []string{"sql", "bootstrap", "offline"},
		PluginDirs: o.pluginDirs,
		Logger:     hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: out}),
	}
	if o.listen {
		cfg.Addr = "127.0.0.1:0"
	}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := d.Start(ctx); err != nil {
		d.Stop()
		t.Fatal(err)
	}
	td := &testDaemon{t: t, d: d, key: env["AGENTHOST_API_KEY"]}
	var once sync.Once
	if o.listen {
		td.url = "http://" + d.Addr()
		td.stop = func() { once.Do(d.Stop) }
	} else {
		td.srv = httptest.NewServer(d.Handler())
		td.url = td.srv.URL
		td.stop = func() {
			once.Do(func() {
				td.srv.CloseClientConnections()
				td.srv.Close()
				d.Stop()
			})
		}
	}
	t.Cleanup(td.stop)
	return td
}

// testPlugins builds plugins of internal/testplugin (once per test
// binary) into a folder and returns it, for daemonOpt.pluginDirs.
func testPlugins(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range names {
		bin, err := builtTestPlugin(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(bin, filepath.Join(dir, ExecPrefix+name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var (
	testPluginMu    sync.Mutex
	testPluginBuilt = map[string]string{}
)

func builtTestPlugin(name string) (string, error) {
	testPluginMu.Lock()
	defer testPluginMu.Unlock()
	if bin, ok := testPluginBuilt[name]; ok {
		return bin, nil
	}
	bin := filepath.Join(filepath.Dir(agenthostBin), ExecPrefix+name)
	out, err := exec.Command("go", "build", "-o", bin, "../internal/testplugin/"+name).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build test plugin %s: %v\n%s", name, err, out)
	}
	testPluginBuilt[name] = bin
	return bin, nil
}

// testWriter sends the daemon's log to the test's log while it runs.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }() // a line after the test ended
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

type apiEnvelope struct {
	Success bool            `json:"success"`
	Data    json.RawMessage `json:"data"`
	Error   *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (e apiEnvelope) code() string {
	if e.Error == nil {
		return ""
	}
	return e.Error.Code
}

// do sends a request with the daemon's key (if any) and decodes the
// envelope; body may be a string (sent as it is) or a value (as JSON).
func (td *testDaemon) do(method, path string, body any) (int, apiEnvelope) {
	td.t.Helper()
	return td.doKey(method, path, body, td.key)
}

func (td *testDaemon) doKey(method, path string, body any, key string) (int, apiEnvelope) {
	td.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, td.url+path, rd)
	if err != nil {
		td.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("X-API-KEY", key)
	}
	res, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
	if err != nil {
		td.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var env apiEnvelope
	if err := json.Unmarshal(raw, &env); err != nil {
		td.t.Fatalf("%s %s: status %d, not the JSON envelope: %v: %.300s", method, path, res.StatusCode, err, raw)
	}
	if env.Success == (env.Error != nil) {
		td.t.Fatalf("%s %s: envelope has success=%v and error=%v", method, path, env.Success, env.Error)
	}
	return res.StatusCode, env
}

// ok sends a request that must succeed with want and decodes its data.
func (td *testDaemon) ok(want int, method, path string, body, out any) {
	td.t.Helper()
	code, env := td.do(method, path, body)
	if code != want || !env.Success {
		td.t.Fatalf("%s %s: want %d, got %d %+v", method, path, want, code, env.Error)
	}
	if out != nil {
		if err := json.Unmarshal(env.Data, out); err != nil {
			td.t.Fatalf("%s %s: %v: %s", method, path, err, env.Data)
		}
	}
}

// fails sends a request that must fail with the status and error code.
func (td *testDaemon) fails(wantStatus int, wantCode, method, path string, body any) string {
	td.t.Helper()
	code, env := td.do(method, path, body)
	if code != wantStatus || env.code() != wantCode {
		td.t.Fatalf("%s %s: want %d %s, got %d %s (%s)", method, path, wantStatus, wantCode, code, env.code(), env.Data)
	}
	if strings.TrimSpace(env.Error.Message) == "" {
		td.t.Fatalf("%s %s: the error has no message", method, path)
	}
	return env.Error.Message
}

type sayResult struct {
	RoomID    string `json:"roomId"`
	MessageID string `json:"messageId"`
	Messages  []struct {
		ID      string   `json:"id"`
		Text    string   `json:"text"`
		Actions []string `json:"actions"`
	} `json:"messages"`
}

func (td *testDaemon) say(agent, user, text string) sayResult {
	td.t.Helper()
	var out sayResult
	td.ok(200, "POST", "/api/agents/"+agent+"/messages", map[string]string{"text": text, "userName": user}, &out)
	if len(out.Messages) == 0 {
		td.t.Fatalf("no reply to %q", text)
	}
	return out
}

type memoryOut struct {
	ID       string         `json:"id"`
	EntityID string         `json:"entityId"`
	RoomID   string         `json:"roomId"`
	Content  map[string]any `json:"content"`
}

func (td *testDaemon) memories(agent, query string) []memoryOut {
	td.t.Helper()
	var out struct {
		Memories []memoryOut `json:"memories"`
	}
	td.ok(200, "GET", "/api/memory/"+agent+"/memories?"+query, nil, &out)
	return out.Memories
}
