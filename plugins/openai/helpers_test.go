package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/internal/testwait"
	"github.com/agenthost/agenthost/plugins/openai/openaitest"
	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/plugintest"
	"github.com/hashicorp/go-hclog"
)

// logBuffer collects the plugin's JSON log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// entries returns the log lines whose message is msg, decoded.
func (l *logBuffer) entries(msg string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(l.b.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["@message"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// env is one test's fake API, plugin and agent.
type env struct {
	t   *testing.T
	srv *openaitest.Server
	c   *plugintest.Client
	log *logBuffer
	p   *provider
}

const agentID = "agent-1"

// testCharacter is a character that passes the SDK's validation.
func testCharacter(plugins ...string) *sdk.Character {
	return &sdk.Character{Name: "Ada", Bio: sdk.StringList{"Ada is a test agent."}, System: "You are Ada, a test agent.", Plugins: plugins}
}

// start runs the fake API and the plugin over real gRPC, with the backoff
// shortened so that retries without Retry-After take milliseconds.
func start(t *testing.T) *env {
	t.Helper()
	return startEnv(t, true)
}

// startEnv is start, with or without the listener.
func startEnv(t *testing.T, listener bool) *env {
	t.Helper()
	srv := openaitest.Start(t)
	logs := &logBuffer{}
	p := newProvider(hclog.New(&hclog.LoggerOptions{Name: Name, Output: logs, JSONFormat: true, Level: hclog.Debug}))
	p.retry.backoffBase, p.retry.backoffMax = 5*time.Millisecond, 20*time.Millisecond
	// The agent has a plugin that listens for MODEL_USED: without one the
	// plugin does not emit it (TestNoModelUsedWithoutListener).
	rt := &plugintest.Runtime{}
	c := plugintest.Start(t, p.plugin(), plugintest.WithRuntime(rt))
	if listener {
		startListener(t, rt)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("plugin log:\n%s", logs.String())
		}
	})
	return &env{t: t, srv: srv, c: c, log: logs, p: p}
}

// startListener adds to rt's agent a plugin that listens for MODEL_USED.
func startListener(t *testing.T, rt *plugintest.Runtime) {
	plugintest.Start(t, sdk.Plugin{Name: "listener", Events: []sdk.EventHandler{{Type: sdk.EventModelUsed,
		Handle: func(context.Context, *sdk.Agent, *sdk.Event) error { return nil }}}}, plugintest.WithRuntime(rt))
}

// settings are the settings that point an agent at the fake API.
func (e *env) settings(extra ...string) map[string]string {
	s := map[string]string{SettingAPIKey: e.srv.APIKey, SettingBaseURL: e.srv.URL}
	for i := 0; i+1 < len(extra); i += 2 {
		s[extra[i]] = extra[i+1]
	}
	return s
}

func (e *env) configure(settings map[string]string, ch *sdk.Character) []string {
	e.t.Helper()
	if ch == nil {
		ch = testCharacter()
	}
	w, err := e.c.Configure(context.Background(), agentID, ch, settings)
	if err != nil {
		e.t.Fatalf("configure: %v", err)
	}
	return w
}

func (e *env) use(req sdk.ModelRequest) (*sdk.ModelResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return e.c.UseModel(ctx, agentID, req)
}

func (e *env) mustUse(req sdk.ModelRequest) *sdk.ModelResponse {
	e.t.Helper()
	res, err := e.use(req)
	if err != nil {
		e.t.Fatalf("%s: %v", req.Type, err)
	}
	return res
}

// events waits until the plugin has emitted n MODEL_USED events (they are
// sent in the background) and returns them.
func (e *env) events(n int) []sdk.Event {
	e.t.Helper()
	var got []sdk.Event
	testwait.ForNil(e.t, 10*time.Second, fmt.Sprintf("%d MODEL_USED events", n), func() error {
		got = got[:0]
		for _, ev := range e.c.Runtime().Events() {
			if ev.Type == sdk.EventModelUsed {
				got = append(got, ev)
			}
		}
		if len(got) < n {
			return fmt.Errorf("got %d: %+v", len(got), got)
		}
		return nil
	})
	return got
}

func ptr[T any](v T) *T { return &v }
