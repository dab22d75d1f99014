package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"reflect"
	"runtime/debug"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Instances keeps one value of type T per configured agent: a client, a
// bot connection, per-agent state. Set it as [Plugin.Instances] and the SDK
// does the rest: New makes an agent's value when the agent is configured,
// handlers look it up with Get, and the value is disposed of when the
// agent is unconfigured or the plugin process shuts down.
//
//	bots := &sdk.Instances[*bot]{
//		New: func(ctx context.Context, a *sdk.Agent) (*bot, []string, error) {
//			b, err := dial(ctx, a.Config().String("CHAT_TOKEN"))
//			return b, nil, err
//		},
//	}
//	p := sdk.Plugin{Name: "chat", Instances: bots, Sources: []sdk.Source{{Name: "chat",
//		Send: func(ctx context.Context, a *sdk.Agent, t sdk.Target, c sdk.Content) ([]string, error) {
//			b, err := bots.Get(a)
//			if err != nil {
//				return nil, err
//			}
//			return b.send(ctx, t, c)
//		}}}}
//
// An Instances serves one plugin value: make a new one wherever the plugin
// definition is made. It is safe for concurrent use.
type Instances[T any] struct {
	// New makes an agent's value when the agent is configured, before
	// [Plugin.Configure] runs. Its warnings are the host's to log, as
	// Configure's are; an error stops the agent (New cleans up what it
	// made before failing). New may return the zero T
	// (a nil pointer) for an agent that does without, say one with no
	// token: Get then returns that zero value. An agent configured again
	// has its old value disposed of first.
	New func(ctx context.Context, a *Agent) (T, []string, error)
	// Close disposes of a value when its agent is unconfigured (after
	// [Plugin.Unconfigure] runs) or the plugin shuts down. Without it, a
	// value that is an [io.Closer] is closed. Nil values are skipped.
	Close func(T)

	mu     sync.RWMutex
	values map[string]T
	// pending holds the agents being configured now, each with the turn
	// of its call, so that a value made for an agent that was unconfigured
	// (or configured again) meanwhile is disposed of, not kept.
	pending map[string]uint64
	turn    uint64
	closed  bool

	plugin string
	log    hclog.Logger
}

// Get returns the value made for a's agent. It fails for an agent that was
// never configured in this process, was unconfigured since, or whose New
// has not returned yet.
func (in *Instances[T]) Get(a *Agent) (T, error) {
	in.mu.RLock()
	v, ok := in.values[a.ID]
	in.mu.RUnlock()
	if !ok {
		var zero T
		return zero, fmt.Errorf("%s has no instance for agent %s: the agent is not configured in this plugin process (or was stopped)",
			in.pluginName(), agentLabel(a))
	}
	return v, nil
}

// All yields every configured agent's id and value, in no order. It works
// on a snapshot: the yield function may call Get.
func (in *Instances[T]) All() iter.Seq2[string, T] {
	return func(yield func(string, T) bool) {
		in.mu.RLock()
		ids := make([]string, 0, len(in.values))
		vals := make([]T, 0, len(in.values))
		for id, v := range in.values {
			ids, vals = append(ids, id), append(vals, v)
		}
		in.mu.RUnlock()
		for i := range ids {
			if !yield(ids[i], vals[i]) {
				return
			}
		}
	}
}

func (in *Instances[T]) pluginName() string {
	if in.plugin == "" {
		return "the plugin"
	}
	return "plugin " + in.plugin
}

// instanceKeeper is what the plugin server needs of an [Instances], whatever
// its T.
type instanceKeeper interface {
	bind(plugin string, log hclog.Logger)
	configure(ctx context.Context, a *Agent) ([]string, error)
	unconfigure(agentID string)
	closeAll(ctx context.Context)
}

func (in *Instances[T]) bind(plugin string, log hclog.Logger) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.plugin, in.log = plugin, log
}

func (in *Instances[T]) configure(ctx context.Context, a *Agent) ([]string, error) {
	if in.New == nil {
		return nil, fmt.Errorf("%s: Instances has no New function", in.pluginName())
	}
	in.mu.Lock()
	if in.values == nil {
		in.values, in.pending = map[string]T{}, map[string]uint64{}
	}
	old, hadOld := in.values[a.ID]
	delete(in.values, a.ID)
	in.turn++
	turn := in.turn
	in.pending[a.ID] = turn
	in.mu.Unlock()
	if hadOld {
		in.dispose(a.ID, old)
	}

	v, warnings, err := in.New(ctx, a)
	in.mu.Lock()
	current, closed := in.pending[a.ID] == turn, in.closed
	if current {
		delete(in.pending, a.ID)
		if err == nil && !closed {
			in.values[a.ID] = v
		}
	}
	in.mu.Unlock()
	switch {
	case err != nil:
		return warnings, err
	case closed:
		in.dispose(a.ID, v)
		return warnings, fmt.Errorf("%s is shutting down", in.pluginName())
	case !current:
		in.dispose(a.ID, v)
		return warnings, fmt.Errorf("agent %s was stopped or configured again while %s was configuring it", agentLabel(a), in.pluginName())
	}
	return warnings, nil
}

func (in *Instances[T]) unconfigure(agentID string) {
	in.mu.Lock()
	v, ok := in.values[agentID]
	delete(in.values, agentID)
	delete(in.pending, agentID)
	in.mu.Unlock()
	if ok {
		in.dispose(agentID, v)
	}
}

// closeAll disposes of every value, side by side, and waits until they are
// done or ctx ends. Agents still being configured lose their value when
// New returns.
func (in *Instances[T]) closeAll(ctx context.Context) {
	in.mu.Lock()
	values := in.values
	in.values, in.pending, in.closed = map[string]T{}, map[string]uint64{}, true
	in.mu.Unlock()
	var wg sync.WaitGroup
	for id, v := range values {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in.dispose(id, v)
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		in.logger().Warn("shutting down before every agent's instance was closed", "error", ctx.Err())
	}
}

// dispose runs Close, or io.Closer's Close, on v. A panic or an error is
// logged: the agent is going away either way.
func (in *Instances[T]) dispose(agentID string, v T) {
	if isNil(v) {
		return
	}
	log := in.logger().With("agent_id", agentID)
	defer func() {
		if r := recover(); r != nil {
			log.Error("closing an agent's instance panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	if in.Close != nil {
		in.Close(v)
		return
	}
	if c, ok := any(v).(io.Closer); ok {
		if err := c.Close(); err != nil && !errors.Is(err, context.Canceled) {
			log.Warn("closing an agent's instance failed", "error", err)
		}
	}
}

func (in *Instances[T]) logger() hclog.Logger {
	in.mu.RLock()
	defer in.mu.RUnlock()
	if in.log == nil {
		return hclog.NewNullLogger()
	}
	return in.log
}

// isNil reports whether v is nil or a nil pointer, map, slice, channel,
// function or interface: a value New returned for an agent that does
// without.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Chan, reflect.Func, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

// configure readies the plugin for an agent: the agent's Required
// settings are checked, its instance made, then the plugin's own Configure
// runs. A failure leaves nothing behind.
func (s *pluginServer) configure(ctx context.Context, a *Agent) ([]string, error) {
	if err := s.scope.missingRequired(s.p, a); err != nil {
		return nil, err
	}
	var warnings []string
	if s.p.Instances != nil {
		w, err := s.p.Instances.configure(ctx, a)
		if err != nil {
			return w, err
		}
		warnings = w
	}
	if s.p.Configure != nil {
		w, err := s.p.Configure(ctx, a)
		if err != nil {
			if s.p.Instances != nil {
				s.p.Instances.unconfigure(a.ID)
			}
			return nil, err
		}
		warnings = append(warnings, w...)
	}
	return warnings, nil
}

// detach returns a context that keeps ctx's deadline (or allows
// shutdownGrace) but not its cancellation.
func detach(ctx context.Context) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok {
		return context.WithDeadline(context.WithoutCancel(ctx), dl)
	}
	return context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
}

// shutdownGrace bounds closing the instances when the host set no deadline.
const shutdownGrace = 5 * time.Second
