package host

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/agenthost/agenthost/sdk"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// PluginState is where a plugin process is in its life.
type PluginState string

// The states of a plugin.
const (
	StateStopped    PluginState = "stopped"
	StateStarting   PluginState = "starting"
	StateRunning    PluginState = "running"
	StateRestarting PluginState = "restarting"
	StateFailed     PluginState = "failed"
)

// ErrPluginCrashed is wrapped by errors of calls that were in flight when
// their plugin process died.
var ErrPluginCrashed = errors.New("plugin crashed")

// Supervision policy. A plugin that keeps dying is restarted with growing
// pauses; after restartBudget restarts within restartWindow it is marked
// failed and left alone, so a broken binary cannot spin the machine.
const (
	healthInterval   = 2 * time.Second
	healthTimeout    = 3 * time.Second
	healthMaxFails   = 2
	restartBaseDelay = 200 * time.Millisecond
	restartMaxDelay  = 30 * time.Second
	restartBudget    = 10
	restartWindow    = 5 * time.Minute
	describeTimeout  = 20 * time.Second
)

// pluginConn is one running process of a plugin.
type pluginConn struct {
	client   *goplugin.Client
	conn     *grpc.ClientConn
	plugin   pb.PluginClient
	db       pb.DatabaseClient
	health   healthpb.HealthClient
	manifest *pb.Manifest
	// done is closed when the process exits.
	done <-chan struct{}
	pid  int
}

// Plugin is one plugin as the host manages it: a process that is started on
// first use, shared by every agent that uses it, and restarted when it dies.
type Plugin struct {
	spec PluginSpec
	mgr  *Manager
	log  hclog.Logger

	mu       sync.Mutex
	state    PluginState
	cur      *pluginConn
	ready    chan struct{} // closed when state leaves starting/restarting
	lastErr  error
	restarts []time.Time
	stopping bool
	// configured holds each agent's Configure request, to replay after a
	// restart.
	configured map[string]*pb.ConfigureRequest
	restartN   int
}

// Name is the plugin's short name.
func (p *Plugin) Name() string { return p.spec.Name }

// Spec says how the plugin is started.
func (p *Plugin) Spec() PluginSpec { return p.spec }

// State reports the plugin's state and its last error.
func (p *Plugin) State() (PluginState, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state, p.lastErr
}

// Restarts counts the restarts since the host started.
func (p *Plugin) Restarts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.restartN
}

// Manifest returns the manifest of the running process, or nil.
func (p *Plugin) Manifest() *pb.Manifest {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		return nil
	}
	return p.cur.manifest
}

// PID is the process id of the running process, or 0.
func (p *Plugin) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		return 0
	}
	return p.cur.pid
}

// Start launches the process if it is not running and waits until it is
// ready. It is safe to call from many goroutines.
func (p *Plugin) Start(ctx context.Context) error {
	p.mu.Lock()
	switch p.state {
	case StateRunning:
		p.mu.Unlock()
		return nil
	case StateStopped:
		p.state = StateStarting
		p.ready = make(chan struct{})
		p.stopping = false
		p.mu.Unlock()
		c, err := p.launch(ctx)
		p.mu.Lock()
		if err != nil {
			p.state, p.lastErr = StateStopped, err
		} else {
			p.state, p.cur, p.lastErr = StateRunning, c, nil
			go p.watch(c)
		}
		close(p.ready)
		p.mu.Unlock()
		return err
	}
	p.mu.Unlock()
	_, err := p.conn(ctx)
	return err
}

// conn returns the running process, waiting while the plugin starts or
// restarts.
func (p *Plugin) conn(ctx context.Context) (*pluginConn, error) {
	for {
		p.mu.Lock()
		st, c, ready, lastErr := p.state, p.cur, p.ready, p.lastErr
		p.mu.Unlock()
		switch st {
		case StateRunning:
			return c, nil
		case StateFailed:
			return nil, fmt.Errorf("plugin %s is disabled after failing %d times in %s: %w", p.spec.Name, restartBudget, restartWindow, lastErr)
		case StateStopped:
			if lastErr != nil {
				return nil, fmt.Errorf("plugin %s is not running: %w", p.spec.Name, lastErr)
			}
			return nil, fmt.Errorf("plugin %s is not running", p.spec.Name)
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return nil, fmt.Errorf("plugin %s is %s: %w", p.spec.Name, st, ctx.Err())
		}
	}
}

// hostGRPCPlugin is the host half of go-plugin's plugin: it hands back the
// raw connection and the context that go-plugin cancels when the process
// exits.
type hostGRPCPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
}

type dispensed struct {
	conn *grpc.ClientConn
	done <-chan struct{}
}

func (hostGRPCPlugin) GRPCServer(*goplugin.GRPCBroker, *grpc.Server) error {
	return errors.New("the host does not serve plugins")
}

func (hostGRPCPlugin) GRPCClient(ctx context.Context, _ *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &dispensed{conn: c, done: ctx.Done()}, nil
}

var pluginVersionRE = regexp.MustCompile(`Plugin version: (\d+)`)

// launch starts one process, checks its protocol, describes it, hands it
// the Runtime address and configures it again for every agent it serves.
func (p *Plugin) launch(ctx context.Context) (*pluginConn, error) {
	cmd := exec.Command(p.spec.Path, p.spec.Args...)
	cmd.Env = p.mgr.pluginEnv()
	cmd.Dir = p.mgr.cfg.WorkDir
	setProcAttrs(cmd)
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake(),
		VersionedPlugins: map[int]goplugin.PluginSet{sdk.ProtocolVersion: {sdk.PluginSetName: hostGRPCPlugin{}}},
		Cmd:              cmd,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		AutoMTLS:         true,
		SkipHostEnv:      true,
		// go-plugin's own stderr parser can be crashed by a plugin; ours
		// cannot, so go-plugin's logger stays off.
		Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Off, Output: os.Stderr}),
		Stderr: newStderrLog(p.log),
		// What the plugin writes to os.Stdout/os.Stderr after its handshake
		// arrives over go-plugin's stdio stream; it is logged, not lost.
		SyncStdout:   newStderrLog(p.log.Named("stdout")),
		SyncStderr:   newStderrLog(p.log),
		StartTimeout: p.mgr.cfg.StartTimeout,
		GRPCDialOptions: append([]grpc.DialOption{grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(sdk.MaxMessageSize), grpc.MaxCallSendMsgSize(sdk.MaxMessageSize))},
			p.mgr.dialOptions(p.spec.Name)...),
	})
	fail := func(err error) (*pluginConn, error) {
		client.Kill()
		return nil, err
	}
	start := time.Now()
	rpc, err := client.Client()
	if err != nil {
		if m := pluginVersionRE.FindStringSubmatch(err.Error()); m != nil {
			return fail(fmt.Errorf("plugin %s (%s) speaks agenthost plugin protocol %s, but this host speaks protocol %d: rebuild the plugin against a matching SDK",
				p.spec.Name, p.spec.Path, m[1], sdk.ProtocolVersion))
		}
		return fail(fmt.Errorf("start plugin %s (%s): %w", p.spec.Name, p.spec.Path, err))
	}
	raw, err := rpc.Dispense(sdk.PluginSetName)
	if err != nil {
		return fail(fmt.Errorf("connect to plugin %s: %w", p.spec.Name, err))
	}
	d := raw.(*dispensed)
	c := &pluginConn{client: client, conn: d.conn, done: d.done,
		plugin: pb.NewPluginClient(d.conn), db: pb.NewDatabaseClient(d.conn), health: healthpb.NewHealthClient(d.conn)}
	if rc := client.ReattachConfig(); rc != nil {
		c.pid = rc.Pid
	}
	dctx, cancel := context.WithTimeout(ctx, describeTimeout)
	defer cancel()
	m, err := c.plugin.Describe(dctx, &pb.DescribeRequest{HostProtocolMinor: sdk.ProtocolMinor, HostVersion: p.mgr.cfg.Version})
	if err != nil {
		return fail(fmt.Errorf("describe plugin %s: %s", p.spec.Name, statusText(err)))
	}
	if m.GetProtocolMinor() > sdk.ProtocolMinor {
		p.log.Warn("plugin speaks a newer protocol minor; its newer features are unavailable",
			"plugin_minor", m.GetProtocolMinor(), "host_minor", sdk.ProtocolMinor)
	}
	c.manifest = m
	if p.mgr.cfg.DescribeOnly {
		return c, nil
	}
	addr, err := p.mgr.runtimeAddress(p)
	if err != nil {
		return fail(err)
	}
	if _, err := c.plugin.Init(dctx, &pb.InitRequest{RuntimeAddress: addr, ProtocolMinor: sdk.ProtocolMinor,
		HostVersion: p.mgr.cfg.Version, DataDir: p.mgr.cfg.DataDir, Settings: p.mgr.cfg.HostSettings}); err != nil {
		return fail(fmt.Errorf("init plugin %s: %s", p.spec.Name, statusText(err)))
	}
	p.mu.Lock()
	replay := make([]*pb.ConfigureRequest, 0, len(p.configured))
	for _, req := range p.configured {
		replay = append(replay, req)
	}
	p.mu.Unlock()
	for _, req := range replay {
		if _, err := c.plugin.Configure(dctx, req); err != nil {
			return fail(fmt.Errorf("configure plugin %s again for agent %s: %s", p.spec.Name, req.GetAgentId(), statusText(err)))
		}
	}
	p.log.Debug("plugin started", "pid", c.pid, "version", m.GetVersion(), "took", time.Since(start).Round(time.Millisecond))
	return c, nil
}

// Configure configures the plugin for an agent and remembers the request
// for restarts.
func (p *Plugin) Configure(ctx context.Context, req *pb.ConfigureRequest) ([]string, error) {
	c, err := p.conn(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, describeTimeout)
	defer cancel()
	res, err := c.plugin.Configure(ctx, req)
	if err != nil {
		return nil, p.callErr(c, "Configure", err)
	}
	p.mu.Lock()
	p.configured[req.GetAgentId()] = req
	p.mu.Unlock()
	return res.GetWarnings(), nil
}

// Unconfigure tells the plugin an agent stopped.
func (p *Plugin) Unconfigure(ctx context.Context, agentID string) {
	p.mu.Lock()
	delete(p.configured, agentID)
	p.mu.Unlock()
	c, err := p.conn(ctx)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, _ = c.plugin.Unconfigure(ctx, &pb.UnconfigureRequest{AgentId: agentID})
}

// watch supervises one process: it notices an exit or a plugin that stops
// answering health checks, and restarts it.
func (p *Plugin) watch(c *pluginConn) {
	t := time.NewTicker(healthInterval)
	defer t.Stop()
	fails := 0
loop:
	for {
		select {
		case <-c.done:
			break loop
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), healthTimeout)
			_, err := c.health.Check(ctx, &healthpb.HealthCheckRequest{Service: "plugin"})
			cancel()
			if err == nil {
				fails = 0
				continue
			}
			fails++
			if fails >= healthMaxFails {
				p.log.Error("plugin stopped answering; killing it", "pid", c.pid, "error", statusText(err))
				killConn(c, false)
				break loop
			}
		}
	}
	p.mu.Lock()
	if p.stopping || p.cur != c {
		p.mu.Unlock()
		return
	}
	p.state = StateRestarting
	p.ready = make(chan struct{})
	p.mu.Unlock()
	// go-plugin kills and reaps what is left; the group kill takes any
	// children the plugin started.
	killConn(c, false)
	p.log.Error("plugin exited; restarting it", "pid", c.pid)
	p.restart()
}

func (p *Plugin) restart() {
	delay := restartBaseDelay
	for {
		p.mu.Lock()
		now := time.Now()
		kept := p.restarts[:0]
		for _, t := range p.restarts {
			if now.Sub(t) < restartWindow {
				kept = append(kept, t)
			}
		}
		p.restarts = append(kept, now)
		if len(p.restarts) > restartBudget {
			p.state = StateFailed
			if p.lastErr == nil {
				p.lastErr = errors.New("it kept exiting")
			}
			close(p.ready)
			p.mu.Unlock()
			p.log.Error("plugin disabled: too many restarts", "restarts", restartBudget, "window", restartWindow)
			return
		}
		stopping := p.stopping
		p.mu.Unlock()
		if stopping {
			return
		}
		time.Sleep(delay)
		c, err := p.launch(context.Background())
		p.mu.Lock()
		if p.stopping {
			p.mu.Unlock()
			if c != nil {
				killConn(c, true)
			}
			return
		}
		if err == nil {
			p.state, p.cur, p.lastErr = StateRunning, c, nil
			p.restartN++
			close(p.ready)
			p.mu.Unlock()
			p.mgr.restarted(p)
			p.log.Info("plugin restarted", "pid", c.pid)
			go p.watch(c)
			return
		}
		p.lastErr = err
		p.mu.Unlock()
		p.log.Error("plugin restart failed", "error", err, "retry_in", delay)
		delay = min(delay*2, restartMaxDelay)
	}
}

// Stop shuts the process down: our Shutdown RPC cancels calls in flight,
// then go-plugin's Kill asks the process to exit and kills it after two
// seconds.
func (p *Plugin) Stop() {
	p.mu.Lock()
	p.stopping = true
	c := p.cur
	p.cur = nil
	if p.state != StateStopped {
		p.state = StateStopped
		if p.ready != nil {
			select {
			case <-p.ready:
			default:
				close(p.ready)
			}
		}
	}
	p.mu.Unlock()
	if c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_, _ = c.plugin.Shutdown(ctx, &pb.ShutdownRequest{})
	cancel()
	killConn(c, true)
}

// killConn ends a plugin process. Graceful asks it to exit first (go-plugin
// waits two seconds, then kills); otherwise, for a process that stopped
// answering, it is killed at once, since asking would hang.
func killConn(c *pluginConn, graceful bool) {
	if !graceful && c.pid > 0 {
		killGroup(c.pid)
	}
	done := make(chan struct{})
	go func() {
		c.client.Kill()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		// Still not gone: a wedged process ignores the polite request.
		if c.pid > 0 {
			killGroup(c.pid)
		}
		<-done
	}
	if c.pid > 0 {
		killGroup(c.pid)
	}
}

// callErr names the plugin and says what happened in words a user can act
// on: a crash, a timeout, or the plugin's own error.
func (p *Plugin) callErr(c *pluginConn, method string, err error) error {
	if err == nil {
		return nil
	}
	st, _ := status.FromError(err)
	switch st.Code() {
	case codes.Unavailable, codes.Canceled:
		// A dead process shows up as Unavailable; give the exit a moment to
		// be noticed before deciding.
		select {
		case <-c.done:
			return fmt.Errorf("plugin %s crashed during %s; the host is restarting it: %w", p.spec.Name, method, ErrPluginCrashed)
		case <-time.After(200 * time.Millisecond):
		}
		// The plugin lives but a plugin it called did not.
		return fmt.Errorf("plugin %s: %s: %w", p.spec.Name, st.Message(), sdk.ErrUnavailable)
	case codes.DeadlineExceeded:
		return fmt.Errorf("plugin %s did not finish %s in time: %w", p.spec.Name, method, context.DeadlineExceeded)
	case codes.NotFound:
		return fmt.Errorf("plugin %s: %s: %w", p.spec.Name, st.Message(), sdk.ErrNotFound)
	case codes.InvalidArgument:
		return fmt.Errorf("plugin %s: %s: %w", p.spec.Name, st.Message(), sdk.ErrInvalid)
	}
	return fmt.Errorf("plugin %s: %s: %s", p.spec.Name, method, statusText(err))
}

func statusText(err error) string {
	if st, ok := status.FromError(err); ok {
		return st.Message()
	}
	return err.Error()
}

// Manager owns every plugin process of a daemon.
type Manager struct {
	cfg ManagerConfig
	log hclog.Logger

	mu      sync.Mutex
	plugins map[string]*Plugin
	specs   []PluginSpec
	sockDir string
	servers map[string]*grpc.Server
	// onRestart is called after a plugin came back, e.g. to re-run
	// migrations.
	onRestart func(*Plugin)
}

// ManagerConfig configures plugin processes.
type ManagerConfig struct {
	Version      string
	DataDir      string
	WorkDir      string
	HostSettings map[string]string
	StartTimeout time.Duration
	// EnvAllow lists the environment variables a plugin process inherits;
	// nothing else of the host's environment reaches it.
	EnvAllow []string
	// Runtime builds the Runtime service served to one plugin.
	Runtime func(p *Plugin) pb.RuntimeServer
	// DescribeOnly starts plugins only to read their manifests.
	DescribeOnly bool
	// DialOptions adds options to the connection to a plugin, e.g. the
	// interceptors that measure its calls.
	DialOptions func(plugin string) []grpc.DialOption
}

func (m *Manager) dialOptions(plugin string) []grpc.DialOption {
	if m.cfg.DialOptions == nil {
		return nil
	}
	return m.cfg.DialOptions(plugin)
}

// DefaultEnvAllow is what a plugin inherits from the host's environment.
// API keys are not on it: a plugin gets the settings of the agents it
// serves through Configure.
var DefaultEnvAllow = []string{
	"PATH", "HOME", "USER", "LOGNAME", "TMPDIR", "TZ", "LANG", "LC_ALL", "LC_CTYPE",
	"SSL_CERT_FILE", "SSL_CERT_DIR", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
	"http_proxy", "https_proxy", "no_proxy", "AGENTHOST_LOG_LEVEL", "AGENTHOST_PROTO_DIR",
	"NODE_OPTIONS", "NODE_PATH", "GOGC", "GOMEMLIMIT", "GODEBUG",
}

// NewManager makes a manager for the given plugin specs.
func NewManager(cfg ManagerConfig, specs []PluginSpec, log hclog.Logger) *Manager {
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if cfg.EnvAllow == nil {
		cfg.EnvAllow = DefaultEnvAllow
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	m := &Manager{cfg: cfg, log: log, plugins: map[string]*Plugin{}, specs: specs, servers: map[string]*grpc.Server{}}
	for _, s := range specs {
		m.plugins[s.Name] = &Plugin{spec: s, mgr: m, state: StateStopped, configured: map[string]*pb.ConfigureRequest{},
			log: log.Named("plugin").Named(s.Name)}
	}
	return m
}

// Plugins returns every known plugin in discovery order.
func (m *Manager) Plugins() []*Plugin {
	out := make([]*Plugin, 0, len(m.specs))
	for _, s := range m.specs {
		out = append(out, m.plugins[s.Name])
	}
	return out
}

// Plugin returns a plugin by its short name.
func (m *Manager) Plugin(name string) *Plugin { return m.plugins[name] }

func (m *Manager) pluginEnv() []string {
	var env []string
	for _, k := range m.cfg.EnvAllow {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// runtimeAddress serves the Runtime service for p on its own unix socket,
// once per plugin for the life of the host, and returns the address.
func (m *Manager) runtimeAddress(p *Plugin) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sockDir == "" {
		dir, err := os.MkdirTemp("", "agenthost-")
		if err != nil {
			return "", fmt.Errorf("make runtime socket folder: %w", err)
		}
		// Only this user may reach the sockets.
		if err := os.Chmod(dir, 0o700); err != nil {
			return "", err
		}
		m.sockDir = dir
	}
	path := filepath.Join(m.sockDir, p.spec.Name+".sock")
	if _, ok := m.servers[p.spec.Name]; ok {
		return "unix://" + path, nil
	}
	if m.cfg.Runtime == nil {
		return "", nil
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return "", fmt.Errorf("listen for plugin %s's runtime: %w", p.spec.Name, err)
	}
	s := grpc.NewServer(grpc.MaxRecvMsgSize(sdk.MaxMessageSize), grpc.MaxSendMsgSize(sdk.MaxMessageSize),
		grpc.ChainUnaryInterceptor(recoverUnary(m.log)))
	pb.RegisterRuntimeServer(s, m.cfg.Runtime(p))
	// Plugins in any language can check that the host is there.
	healthpb.RegisterHealthServer(s, health.NewServer())
	m.servers[p.spec.Name] = s
	go func() { _ = s.Serve(lis) }()
	return "unix://" + path, nil
}

func (m *Manager) restarted(p *Plugin) {
	if m.onRestart != nil {
		m.onRestart(p)
	}
}

// Stop shuts every plugin down, in parallel, and removes the sockets.
func (m *Manager) Stop() {
	var wg sync.WaitGroup
	for _, p := range m.plugins {
		wg.Add(1)
		go func() { defer wg.Done(); p.Stop() }()
	}
	wg.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.servers {
		s.Stop()
	}
	if m.sockDir != "" {
		_ = os.RemoveAll(m.sockDir)
	}
}
