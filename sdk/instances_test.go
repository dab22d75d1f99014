package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/plugintest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// These tests run plugins over the real gRPC path with plugintest: the
// instances are made, found and disposed of by the SDK's server, as in the
// daemon.

// conn is a per-agent value that records its own disposal.
type conn struct {
	agent  string
	closed atomic.Int32
}

func (c *conn) Close() error {
	c.closed.Add(1)
	return nil
}

// connPlugin is a plugin whose WHO action answers with the name its agent's
// instance was made for.
func connPlugin(in *sdk.Instances[*conn]) sdk.Plugin {
	return sdk.Plugin{Name: "conns", Instances: in,
		Actions: []sdk.Action{{Name: "WHO", Handler: func(ctx context.Context, a *sdk.Agent, call *sdk.ActionCall) (sdk.ActionResult, error) {
			c, err := in.Get(a)
			if err != nil {
				return sdk.ActionResult{}, err
			}
			return sdk.ActionResult{Success: true, Text: c.agent}, nil
		}}}}
}

// recorder makes conns and remembers every one it made, by agent id.
type recorder struct {
	mu   sync.Mutex
	made map[string][]*conn
}

func (r *recorder) new(_ context.Context, a *sdk.Agent) (*conn, []string, error) {
	c := &conn{agent: a.Name()}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.made == nil {
		r.made = map[string][]*conn{}
	}
	r.made[a.ID] = append(r.made[a.ID], c)
	return c, []string{"made for " + a.Name()}, nil
}

func (r *recorder) all(agentID string) []*conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*conn(nil), r.made[agentID]...)
}

func who(t *testing.T, c *plugintest.Client, agentID string) (string, error) {
	t.Helper()
	res, err := c.RunAction(t.Context(), agentID, "WHO", &sdk.Memory{RoomID: "room"}, nil)
	if err != nil {
		return "", err
	}
	if !res.Success {
		return "", errors.New(res.Error)
	}
	return res.Text, nil
}

func TestInstancesLiveFromConfigureToUnconfigure(t *testing.T) {
	r := &recorder{}
	c := plugintest.Start(t, connPlugin(&sdk.Instances[*conn]{New: r.new}))
	ctx := t.Context()
	w, err := c.Configure(ctx, "a1", &sdk.Character{Name: "Ada"}, nil)
	if err != nil || len(w) != 1 || w[0] != "made for Ada" {
		t.Fatalf("configure: %v, warnings %q (New's warnings should reach the host)", err, w)
	}
	if _, err := c.Configure(ctx, "a2", &sdk.Character{Name: "Bob"}, nil); err != nil {
		t.Fatal(err)
	}
	for id, name := range map[string]string{"a1": "Ada", "a2": "Bob"} {
		if got, err := who(t, c, id); err != nil || got != name {
			t.Errorf("agent %s: WHO = %q, %v; want its own instance, %s", id, got, err, name)
		}
	}

	if err := c.Unconfigure(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if n := r.all("a1")[0].closed.Load(); n != 1 {
		t.Errorf("a1's instance closed %d times at Unconfigure, want 1", n)
	}
	if r.all("a2")[0].closed.Load() != 0 {
		t.Error("unconfiguring a1 closed a2's instance")
	}
	if _, err := who(t, c, "a1"); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("a call for an unconfigured agent: %v, want FailedPrecondition", err)
	}

	// Configured again: the old value goes, a new one comes.
	if _, err := c.Configure(ctx, "a2", &sdk.Character{Name: "Bob"}, nil); err != nil {
		t.Fatal(err)
	}
	made := r.all("a2")
	if len(made) != 2 || made[0].closed.Load() != 1 || made[1].closed.Load() != 0 {
		t.Fatalf("configuring a2 again: %d made, first closed %d times; want the first closed and a second one open", len(made), made[0].closed.Load())
	}

	// Shutdown closes what is left.
	if err := c.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if n := made[1].closed.Load(); n != 1 {
		t.Errorf("a2's instance closed %d times at Shutdown, want 1", n)
	}
}

func TestInstancesNewErrorStopsTheAgent(t *testing.T) {
	var configured atomic.Bool
	in := &sdk.Instances[*conn]{New: func(ctx context.Context, a *sdk.Agent) (*conn, []string, error) {
		return nil, nil, fmt.Errorf("the token of %s was refused", a.Name())
	}}
	p := connPlugin(in)
	p.Configure = func(context.Context, *sdk.Agent) ([]string, error) {
		configured.Store(true)
		return nil, nil
	}
	c := plugintest.Start(t, p)
	_, err := c.Configure(t.Context(), "a1", &sdk.Character{Name: "Ada"}, nil)
	if err == nil || !strings.Contains(err.Error(), "the token of Ada was refused") {
		t.Fatalf("configure: %v, want New's error", err)
	}
	if configured.Load() {
		t.Error("the plugin's Configure ran after New failed")
	}
	if _, err := who(t, c, "a1"); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("the agent should not be configured: %v", err)
	}
}

func TestInstancesDisposedWhenConfigureFails(t *testing.T) {
	r := &recorder{}
	var closed atomic.Int32
	in := &sdk.Instances[*conn]{New: r.new, Close: func(c *conn) { closed.Add(1) }}
	p := connPlugin(in)
	p.Configure = func(ctx context.Context, a *sdk.Agent) ([]string, error) {
		if _, err := in.Get(a); err != nil {
			t.Errorf("Configure should find the instance New made: %v", err)
		}
		return nil, errors.New("no room for this agent")
	}
	c := plugintest.Start(t, p)
	if _, err := c.Configure(t.Context(), "a1", &sdk.Character{Name: "Ada"}, nil); err == nil {
		t.Fatal("want Configure's error")
	}
	if len(r.all("a1")) != 1 || closed.Load() != 1 {
		t.Errorf("made %d, Close called %d times; want the instance disposed of (with Close, not io.Closer)", len(r.all("a1")), closed.Load())
	}
	if r.all("a1")[0].closed.Load() != 0 {
		t.Error("io.Closer's Close ran although Instances.Close is set")
	}
}

func TestInstancesNilValueIsKeptAndNotClosed(t *testing.T) {
	in := &sdk.Instances[*conn]{New: func(context.Context, *sdk.Agent) (*conn, []string, error) {
		return nil, []string{"no token: not online"}, nil
	}}
	var got *conn
	var getErr error
	p := connPlugin(in)
	p.Events = []sdk.EventHandler{{Type: "PING", Handle: func(ctx context.Context, a *sdk.Agent, ev *sdk.Event) error {
		got, getErr = in.Get(a)
		return nil
	}}}
	c := plugintest.Start(t, p)
	if _, err := c.Configure(t.Context(), "a1", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.HandleEvent(t.Context(), "a1", sdk.Event{Type: "PING"}); err != nil {
		t.Fatal(err)
	}
	if got != nil || getErr != nil {
		t.Errorf("Get = %v, %v; want the nil New returned, and no error", got, getErr)
	}
	// Disposal skips the nil value instead of calling Close on it.
	if err := c.Unconfigure(t.Context(), "a1"); err != nil {
		t.Fatal(err)
	}
}

// An agent stopped while its New is still running must not keep the value
// New then returns: nobody would ever dispose of it.
func TestInstancesUnconfigureDuringNew(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	made := make(chan *conn, 1)
	in := &sdk.Instances[*conn]{New: func(ctx context.Context, a *sdk.Agent) (*conn, []string, error) {
		close(entered)
		<-release
		c := &conn{agent: a.Name()}
		made <- c
		return c, nil, nil
	}}
	c := plugintest.Start(t, connPlugin(in))
	errc := make(chan error, 1)
	go func() {
		_, err := c.Configure(context.Background(), "a1", &sdk.Character{Name: "Ada"}, nil)
		errc <- err
	}()
	<-entered
	if err := c.Unconfigure(t.Context(), "a1"); err != nil {
		t.Fatal(err)
	}
	close(release)
	err := <-errc
	if err == nil || !strings.Contains(err.Error(), "was stopped or configured again") {
		t.Fatalf("configure: %v, want an error saying the agent was stopped meanwhile", err)
	}
	if v := <-made; v.closed.Load() != 1 {
		t.Errorf("the late value was closed %d times, want 1", v.closed.Load())
	}
	if _, err := who(t, c, "a1"); err == nil {
		t.Error("the agent should not be configured")
	}
}

func TestInstancesConcurrentAgents(t *testing.T) {
	r := &recorder{}
	in := &sdk.Instances[*conn]{New: r.new}
	c := plugintest.Start(t, connPlugin(in))
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, name := fmt.Sprintf("agent-%d", i), fmt.Sprintf("A%d", i)
			for round := range 3 {
				if _, err := c.Configure(ctx, id, &sdk.Character{Name: name}, nil); err != nil {
					errs <- err
					return
				}
				if got, err := who(t, c, id); err != nil || got != name {
					errs <- fmt.Errorf("%s round %d: WHO = %q, %v", id, round, got, err)
				}
				if round < 2 {
					if err := c.Unconfigure(ctx, id); err != nil {
						errs <- err
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	n := 0
	for id, v := range in.All() {
		n++
		made := r.all(id)
		if v != made[len(made)-1] || v.closed.Load() != 0 {
			t.Errorf("%s: All gives a value that is not its latest open one", id)
		}
		for _, old := range made[:len(made)-1] {
			if old.closed.Load() != 1 {
				t.Errorf("%s: an old instance was closed %d times, want 1", id, old.closed.Load())
			}
		}
	}
	if n != 20 {
		t.Errorf("All yields %d agents, want 20", n)
	}
}

func TestInstancesGetForAnUnknownAgent(t *testing.T) {
	in := &sdk.Instances[*conn]{New: (&recorder{}).new}
	_, err := in.Get(&sdk.Agent{ID: "a9", Character: &sdk.Character{Name: "Nobody"}})
	if err == nil || !strings.Contains(err.Error(), "Nobody (a9)") || !strings.Contains(err.Error(), "not configured") {
		t.Errorf("Get for an agent never configured: %v; want an error naming the agent and saying it is not configured", err)
	}
}
