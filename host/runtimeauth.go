package host

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/agenthost/agenthost/internal/contract"
	"github.com/agenthost/agenthost/internal/memtrim"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Every Runtime call is attributed to the plugin process that presents the
// token it received in Init over its own mutually authenticated go-plugin
// connection. Which socket path was dialed says nothing: all plugins share
// one, and a plugin that learns another's socket path gains nothing.

type callerKey struct{}

// callerPlugin is the plugin that made the Runtime call in ctx.
func callerPlugin(ctx context.Context) *PluginProcess {
	p, _ := ctx.Value(callerKey{}).(*PluginProcess)
	return p
}

// authenticate finds the calling plugin by its token.
func (m *Manager) authenticate(ctx context.Context, method string) (context.Context, error) {
	if strings.HasPrefix(method, "/grpc.health.v1.Health/") {
		// Anyone on the socket may ask whether the host is there.
		return ctx, nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	var p *PluginProcess
	for _, v := range md.Get(contract.RuntimeTokenMetadata) {
		tok, ok := strings.CutPrefix(v, "Bearer ")
		if !ok {
			continue
		}
		// The map lookup compares whole tokens; a token is 130 random
		// bits, so timing reveals nothing useful.
		if x, ok := m.tokens.Load(tok); ok {
			p = x.(*PluginProcess)
			break
		}
	}
	if p == nil {
		return ctx, status.Error(codes.Unauthenticated,
			"runtime call without a valid runtime token: present InitRequest.runtime_token as the metadata \"authorization: Bearer <token>\" on every Runtime call (the token of a plugin process is valid while that process lives)")
	}
	waited, err := p.rate.wait(ctx)
	if waited {
		p.overCallLimit()
	}
	if err != nil {
		return ctx, status.Errorf(codes.ResourceExhausted, "plugin %s makes more than %d Runtime calls a second, its limit (AGENTHOST_PLUGIN_LIMITS_%s=calls=N): %v",
			p.Name(), p.limits.Calls, envName(p.Name()), err)
	}
	if m.cfg.OnRuntimeCall != nil {
		m.cfg.OnRuntimeCall(p.Name(), shortMethod(method))
	}
	return context.WithValue(ctx, callerKey{}, p), nil
}

// callRate paces a plugin's Runtime calls: a token bucket of perSecond
// tokens refilled at perSecond a second. A call over it waits its turn, so
// a plugin that floods the host slows itself down, not the other agents.
type callRate struct {
	perSecond float64
	mu        sync.Mutex
	tokens    float64
	last      time.Time
}

func newCallRate(perSecond uint64) *callRate {
	if perSecond == 0 {
		return nil
	}
	return &callRate{perSecond: float64(perSecond), tokens: float64(perSecond), last: time.Now()}
}

// wait takes a token, waiting for one when there is none; waited says it
// had to: the plugin goes over its limit.
func (r *callRate) wait(ctx context.Context) (waited bool, err error) {
	if r == nil {
		return false, nil
	}
	r.mu.Lock()
	now := time.Now()
	r.tokens = min(r.perSecond, r.tokens+now.Sub(r.last).Seconds()*r.perSecond)
	r.last = now
	r.tokens--
	// A negative balance is the queue: this call waits until it is paid.
	delay := time.Duration(-r.tokens / r.perSecond * float64(time.Second))
	r.mu.Unlock()
	if delay <= 0 {
		return false, nil
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return true, nil
	case <-ctx.Done():
		return true, ctx.Err()
	}
}

func (m *Manager) authUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	ctx, err := m.authenticate(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	memtrim.Wake()
	return h(ctx, req)
}

func (m *Manager) authStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	ctx, err := m.authenticate(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return h(srv, &callerStream{ServerStream: ss, ctx: ctx, method: info.FullMethod})
}

type callerStream struct {
	grpc.ServerStream
	ctx    context.Context
	method string
}

func (s *callerStream) Context() context.Context { return s.ctx }

// RecvMsg checks the _json fields of what the plugin sends (jsoncheck.go).
func (s *callerStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return requestJSON(s.ctx, s.method, m)
}

// admit takes one of the plugin's slots for storage calls, waiting while
// they are all taken, so that one plugin's flood of calls queues behind
// itself instead of crowding out the calls other agents' plugins make.
// Only calls that do not call plugins back take a slot: a ComposeState
// holding one while its providers wait for another could deadlock. A
// plugin over its call limit (throttle.go) has one storage call at a time
// go on: the more the host and the database plugin have to do for others,
// the longer each of its calls takes, and the fewer it makes.
func (p *PluginProcess) admit(ctx context.Context) (func(), error) {
	release, err := takeSlot(ctx, p.calls)
	if err != nil {
		return nil, status.Errorf(codes.ResourceExhausted, "plugin %s has %d Runtime calls in flight, the most it may have; this call was given up while waiting: %v",
			p.Name(), cap(p.calls), err)
	}
	if p.throttled.Load() && p.throttleSlot != nil {
		one, err := takeSlot(ctx, p.throttleSlot)
		if err != nil {
			release()
			return nil, status.Errorf(codes.ResourceExhausted, "plugin %s goes over its limit of %d Runtime calls a second, so its storage calls go one at a time; this call was given up while waiting: %v",
				p.Name(), p.limits.Calls, err)
		}
		return func() { one(); release() }, nil
	}
	return release, nil
}

// takeSlot takes a slot of slots, waiting while they are all taken.
func takeSlot(ctx context.Context, slots chan struct{}) (func(), error) {
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, nil
	default:
	}
	select {
	case slots <- struct{}{}:
		return func() { <-slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
