package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/agenthost/agenthost/internal/contract"
	"github.com/agenthost/agenthost/sdk"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
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
// their plugin process died. It is of kind Unavailable: the host restarts
// the plugin, so the call may work later.
var ErrPluginCrashed = contract.New(contract.Unavailable, "plugin crashed")

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
	// token is the credential this process presents on Runtime calls; it
	// is revoked when the process ends.
	token string
	// stderr is its log, which also knows how it died.
	stderr *stderrLog
	// cmd is the process the host started (nil when attached): once done
	// is closed, its ProcessState says how it ended.
	cmd *exec.Cmd
	// pidsRefused is how many times its plugin's pids cgroup had refused a
	// process or thread when this process started (-1 without one).
	pidsRefused int64
	// calls counts the host's calls in flight on it (upgrade.go).
	calls *inflight
	// tmp is its temporary folder; file is the binary it was started from.
	tmp  string
	file fileID
	// attached is set for a process the host did not start (--attach):
	// it is neither confined nor killed by the host, only disconnected.
	attached bool
	rpc      goplugin.ClientProtocol
}

// PluginProcess is one plugin as the host manages it: a process that is
// started on first use, shared by every agent that uses it, and restarted
// when it dies. (sdk.Plugin is the other side: what a plugin declares.)
type PluginProcess struct {
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
	// life ends when the plugin is stopped: a process it is launching
	// then (a start, a restart) is killed rather than waited for
	// (launchFor). Start makes a new one.
	life    context.Context
	endLife context.CancelFunc
	// configured holds how each agent was configured, to replay after a
	// restart and to redo for an upgrade.
	configured map[string]*agentConfig
	restartN   int
	// cfgMu is held for reading by Configure and Unconfigure and for
	// writing by an upgrade while it configures the new process and
	// switches to it: no agent is configured on the old process after the
	// new one was configured for those it had.
	cfgMu sync.RWMutex
	// swap is held by whatever replaces the process (a restart, an
	// upgrade), one at a time.
	swap sync.Mutex
	// What the host knows of the binary (see upgrade.go and watch.go).
	bin binaryState
	// calls holds a token per storage call the plugin has in flight on the
	// Runtime (see admit).
	calls chan struct{}
	// limits bound each of its processes (see confinement.go).
	limits   Limits
	lastExit Exit
	// rate paces its Runtime calls (limits.Calls a second); throttle
	// lowers its processes' CPU priority while it goes over that.
	rate     *callRate
	throttle throttle
	// throttled is set while it goes over its call limit; its storage
	// calls then take throttleSlot too, one at a time (see admit).
	throttled    atomic.Bool
	throttleSlot chan struct{}
	// jsonSeen holds the (call, field) pairs whose bad JSON was logged at
	// warn level (jsoncheck.go).
	jsonSeen sync.Map
}

// agentConfig is how the plugin was configured for one agent: the request,
// replayed after a restart, and how to make it again for another manifest
// of the plugin (an upgrade: the settings the new version declares, the
// plugin set it makes).
type agentConfig struct {
	req  *pb.ConfigureRequest
	redo func(*pb.Manifest) *pb.ConfigureRequest
}

// Name is the plugin's short name.
func (p *PluginProcess) Name() string { return p.spec.Name }

// Spec says how the plugin is started.
func (p *PluginProcess) Spec() PluginSpec {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.spec
}

// State reports the plugin's state and its last error.
func (p *PluginProcess) State() (PluginState, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state, p.lastErr
}

// Restarts counts the restarts since the host started.
func (p *PluginProcess) Restarts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.restartN
}

// Manifest returns the manifest of the running process, or nil.
func (p *PluginProcess) Manifest() *pb.Manifest {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		return nil
	}
	return p.cur.manifest
}

// PID is the process id of the running process, or 0.
func (p *PluginProcess) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		return 0
	}
	return p.cur.pid
}

// startedPID is the process id of the running process if the host started
// it (not an attached one), or 0.
func (p *PluginProcess) startedPID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil || p.cur.attached {
		return 0
	}
	return p.cur.pid
}

// lifeContext ends when the plugin is stopped.
func (p *PluginProcess) lifeContext() context.Context {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.life == nil {
		return context.Background()
	}
	return p.life
}

// Start launches the process if it is not running and waits until it is
// ready. It is safe to call from many goroutines.
func (p *PluginProcess) Start(ctx context.Context) error {
	p.mu.Lock()
	switch p.state {
	case StateRunning:
		p.mu.Unlock()
		return nil
	case StateStopped:
		p.state = StateStarting
		ready := make(chan struct{})
		p.ready = ready
		p.stopping = false
		p.life, p.endLife = context.WithCancel(context.Background())
		p.mu.Unlock()
		c, err := p.launch(ctx)
		p.mu.Lock()
		if p.stopping || p.ready != ready {
			// Stop came while the process started (the daemon stopping
			// while a cluster node starts an agent, or a start that failed
			// stopping the plugins still starting) and released the
			// waiters already: what was launched is not kept.
			p.mu.Unlock()
			if c != nil {
				p.mgr.revoke(c.token)
				killConn(c, true)
			}
			if err == nil {
				err = errors.New("it was stopped while it started")
			}
			return err
		}
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
func (p *PluginProcess) conn(ctx context.Context) (*pluginConn, error) {
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

// clientConfig is how the host's go-plugin client starts one process of p
// with cmd and reaches it: the handshake, no environment but cmd's, the
// message limits, and the plugin's stderr through our parser.
// contract.HostTLS adds the TLS once the process's command is known.
// calls, when not nil, counts the calls in flight (an upgrade drains them).
func (p *PluginProcess) clientConfig(cmd *exec.Cmd, stderr *stderrLog, budget *logBudget, calls *inflight) *goplugin.ClientConfig {
	cfg := &goplugin.ClientConfig{
		Cmd:              cmd,
		HandshakeConfig:  contract.Handshake(),
		VersionedPlugins: map[int]goplugin.PluginSet{contract.ProtocolVersion: {contract.PluginSetName: hostGRPCPlugin{}}},
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		SkipHostEnv:      true,
		// go-plugin's own stderr parser can be crashed by a plugin; ours
		// cannot, so go-plugin's logger stays off.
		Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Off, Output: os.Stderr}),
		Stderr: stderr,
		// What the plugin writes to os.Stdout/os.Stderr after its handshake
		// arrives over go-plugin's stdio stream; it is logged, not lost.
		SyncStdout:   newStderrLog(p.log.Named("stdout"), budget),
		SyncStderr:   newStderrLog(p.log, budget),
		StartTimeout: p.mgr.cfg.StartTimeout,
		GRPCDialOptions: append(append([]grpc.DialOption{grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(contract.MaxMessageSize), grpc.MaxCallSendMsgSize(contract.MaxMessageSize)),
			grpc.WithChainUnaryInterceptor(p.checkAnswerJSON)},
			contract.DialWindow()...), p.mgr.dialOptions(p.spec.Name)...),
	}
	if calls != nil {
		cfg.GRPCDialOptions = append(cfg.GRPCDialOptions,
			grpc.WithChainUnaryInterceptor(calls.unary), grpc.WithChainStreamInterceptor(calls.stream))
	}
	return cfg
}

// handshakeErr says why a process did not get through go-plugin's
// handshake. go-plugin's own words blame the architecture or the file's
// permissions whenever the process wrote nothing on stdout; a plugin whose
// interpreter failed (a syntax error, a missing module) said why on stderr,
// and that is what the error and the log show. Call it after the client
// was killed, when the whole of stderr has been read.
func (p *PluginProcess) handshakeErr(err error, stderr *stderrLog) error {
	if m := pluginVersionRE.FindStringSubmatch(err.Error()); m != nil {
		return fmt.Errorf("plugin %s (%s) speaks agenthost plugin protocol %s, but this host speaks protocol %d: rebuild the plugin against a matching SDK",
			p.spec.Name, p.spec.Path, m[1], contract.ProtocolVersion)
	}
	msg, _, _ := strings.Cut(strings.TrimSpace(err.Error()), "\n")
	if rest, ok := strings.CutPrefix(msg, "Unrecognized remote plugin message:"); ok && strings.TrimSpace(rest) == "" ||
		strings.HasPrefix(msg, "plugin exited before we could connect") {
		msg = "it exited before its handshake"
	}
	early := stderr.earlyLines()
	if len(early) == 0 {
		return fmt.Errorf("start plugin %s (%s): %s, and wrote nothing on stderr", p.spec.Name, p.spec.Path, msg)
	}
	p.log.Warn("plugin failed before its handshake; what it wrote on stderr follows", "error", msg, "stderr", strings.Join(early, "\n"))
	last := early[max(0, len(early)-3):]
	return fmt.Errorf("start plugin %s (%s): %s; its stderr ends with: %s", p.spec.Name, p.spec.Path, msg, strings.Join(last, " | "))
}

// launchMode says what a process is started for.
type launchMode int

const (
	// launchServe serves agents: Init, then Configure for every agent the
	// plugin serves.
	launchServe launchMode = iota
	// launchProbe reads the manifest of a binary and nothing more.
	launchProbe
	// launchUpgrade serves agents, configured by the upgrade.
	launchUpgrade
)

// launch starts one process, checks its protocol, describes it, hands it
// the Runtime address and configures it again for every agent it serves.
func (p *PluginProcess) launch(ctx context.Context) (*pluginConn, error) {
	return p.launchFor(ctx, launchServe)
}

func (p *PluginProcess) launchFor(ctx context.Context, mode launchMode) (*pluginConn, error) {
	spec := p.Spec()
	sum, err := p.mgr.admitBinary(spec)
	if err != nil {
		return nil, err
	}
	file, _ := statFile(spec.Path)
	dataDir, tmpDir, err := p.mgr.pluginDirs(p.spec.Name, p.tmpSlot(mode))
	if err != nil {
		return nil, err
	}
	budget := newLogBudget(p.log)
	stderr := newStderrLog(p.log, budget)
	calls := &inflight{}
	cfg := p.clientConfig(nil, stderr, budget, calls)
	// go-plugin's wait for the handshake cannot be cancelled: a plugin that
	// never answers it would hold whoever waits (a daemon asked to stop
	// while it starts) for StartTimeout. The process is bound to a context
	// of its own, which ends when the caller gives up or, for a process
	// that is to serve, when the plugin is stopped; until the handshake is
	// over, that kills it.
	abandonCtx, abandon := context.WithCancelCause(context.Background())
	stopCaller := context.AfterFunc(ctx, func() { abandon(context.Cause(ctx)) })
	stopLife := func() bool { return true }
	if mode == launchServe {
		stopLife = context.AfterFunc(p.lifeContext(), func() { abandon(errors.New("the plugin was stopped")) })
	}
	stopAbandon := func() bool {
		a, b := stopCaller(), stopLife()
		return a && b && abandonCtx.Err() == nil
	}
	defer stopAbandon()
	if spec.Attach != nil {
		attach(cfg, spec.Attach)
	} else {
		cfg.Cmd = p.mgr.command(abandonCtx, p, spec, dataDir, tmpDir, sum)
		if sum != "" && cfg.Cmd.Path == spec.Path {
			// Unconfined, go-plugin checks the file it starts.
			cfg.SecureConfig = secureConfig(sum)
		}
		_, release, err := contract.HostTLS(cfg, cfg.Cmd)
		if err != nil {
			return nil, fmt.Errorf("start plugin %s: %w", p.spec.Name, err)
		}
		defer release()
	}
	client := goplugin.NewClient(cfg)
	token := newRuntimeToken()
	// pid is the plugin's process, the leader of its process group, once
	// go-plugin started it (on this goroutine, in Client).
	var pid int
	end := func() {
		p.mgr.revoke(token)
		endClient(client, pid, p.log)
	}
	fail := func(err error) (*pluginConn, error) {
		end()
		return nil, err
	}
	start := time.Now()
	rpc, err := client.Client()
	if cfg.Cmd != nil && cfg.Cmd.Process != nil {
		pid = cfg.Cmd.Process.Pid
	}
	// From here the process lives on its own (see abandon).
	abandoned := !stopAbandon()
	if err != nil {
		gone := pid > 0 && exited(pid)
		// Ended first: go-plugin has then read the whole of stderr.
		end()
		if abandoned {
			return nil, fmt.Errorf("start plugin %s: given up before its handshake (%w)", p.spec.Name, context.Cause(abandonCtx))
		}
		if gone && strings.HasPrefix(err.Error(), "timeout") {
			// go-plugin waited for output that a process the plugin
			// started kept open, not for the plugin.
			err = errors.New("it exited before its handshake, and a process it started kept its output open until the handshake's timeout")
		}
		return nil, p.handshakeErr(err, stderr)
	}
	if abandoned {
		return fail(fmt.Errorf("start plugin %s: given up during its handshake (%w)", p.spec.Name, context.Cause(abandonCtx)))
	}
	stderr.handshaken()
	raw, err := rpc.Dispense(contract.PluginSetName)
	if err != nil {
		return fail(fmt.Errorf("connect to plugin %s: %w", p.spec.Name, err))
	}
	d := raw.(*dispensed)
	refused, ok := p.mgr.cgroups.refusals(p.spec.Name)
	if !ok {
		refused = -1
	}
	c := &pluginConn{client: client, conn: d.conn, done: d.done, token: token, stderr: stderr, cmd: cfg.Cmd, pidsRefused: refused,
		plugin: pb.NewPluginClient(d.conn), db: pb.NewDatabaseClient(d.conn), health: healthpb.NewHealthClient(d.conn),
		calls: calls, tmp: tmpDir, file: file, attached: spec.Attach != nil, rpc: rpc}
	if rc := client.ReattachConfig(); rc != nil {
		c.pid = rc.Pid
	}
	dctx, cancel := context.WithTimeout(ctx, describeTimeout)
	defer cancel()
	m, err := c.plugin.Describe(dctx, &pb.DescribeRequest{HostProtocolMinor: contract.ProtocolMinor, HostVersion: p.mgr.cfg.Version})
	if err != nil {
		return fail(fmt.Errorf("describe plugin %s: %s", p.spec.Name, statusText(err)))
	}
	if m.GetProtocolMinor() > contract.ProtocolMinor {
		p.log.Warn("plugin speaks a newer protocol minor; its newer features are unavailable",
			"plugin_minor", m.GetProtocolMinor(), "host_minor", contract.ProtocolMinor)
	}
	if m.GetProtocolMinor() < minPluginMinor {
		return fail(fmt.Errorf("plugin %s (%s) was built for agenthost plugin protocol 1.%d, but this host needs 1.%d or newer (minor 1 added the runtime token that every Runtime call must carry): rebuild the plugin against a current SDK",
			p.spec.Name, spec.where(), m.GetProtocolMinor(), minPluginMinor))
	}
	if err := contract.CheckManifestName(p.spec.Name, m); err != nil {
		return fail(fmt.Errorf("plugin %s (%s): %w", p.spec.Name, p.spec.Path, err))
	}
	c.manifest = m
	if mode == launchServe {
		p.described(m, file)
	}
	if p.mgr.cfg.DescribeOnly || mode == launchProbe {
		return c, nil
	}
	addr, err := p.mgr.runtimeAddress()
	if err != nil {
		return fail(err)
	}
	var hostSettings map[string]string
	if p.spec.Bundled && m.GetDatabase() {
		// The database URL is for the first-party database plugin alone.
		hostSettings = p.mgr.cfg.HostSettings
	}
	p.mgr.tokens.Store(token, p)
	if _, err := c.plugin.Init(dctx, &pb.InitRequest{RuntimeAddress: addr, ProtocolMinor: contract.ProtocolMinor,
		HostVersion: p.mgr.cfg.Version, DataDir: dataDir, Settings: hostSettings,
		RuntimeToken: token, Features: contract.Features()}); err != nil {
		return fail(fmt.Errorf("init plugin %s: %s", p.spec.Name, statusText(err)))
	}
	if mode == launchUpgrade {
		return c, nil
	}
	// The requests are made again for this process's manifest: a restart
	// may bring another version.
	replay := p.redoConfigured(m)
	for _, req := range replay {
		if _, err := c.plugin.Configure(dctx, req); err != nil {
			return fail(fmt.Errorf("configure plugin %s again for agent %s: %s", p.spec.Name, req.GetAgentId(), statusText(err)))
		}
	}
	p.log.Debug("plugin started", "pid", c.pid, "version", m.GetVersion(), "took", time.Since(start).Round(time.Millisecond))
	return c, nil
}

// Configure configures the plugin for an agent with the request redo makes
// for the manifest of the running process, and remembers redo for restarts
// and upgrades, which make the request again for theirs.
func (p *PluginProcess) Configure(ctx context.Context, redo func(*pb.Manifest) *pb.ConfigureRequest) ([]string, error) {
	p.cfgMu.RLock()
	defer p.cfgMu.RUnlock()
	c, err := p.conn(ctx)
	if err != nil {
		return nil, err
	}
	req := redo(c.manifest)
	ctx, cancel := context.WithTimeout(ctx, describeTimeout)
	defer cancel()
	res, err := c.plugin.Configure(ctx, req)
	if err != nil {
		return nil, p.callErr(c, "Configure", err)
	}
	p.mu.Lock()
	p.configured[req.GetAgentId()] = &agentConfig{req: req, redo: redo}
	p.mu.Unlock()
	return res.GetWarnings(), nil
}

// Unconfigure tells the plugin an agent stopped. A plugin whose binary was
// removed stops with the last agent that used it.
func (p *PluginProcess) Unconfigure(ctx context.Context, agentID string) {
	p.cfgMu.RLock()
	defer p.cfgMu.RUnlock()
	p.mu.Lock()
	delete(p.configured, agentID)
	unused := p.bin.removed && len(p.configured) == 0
	p.mu.Unlock()
	if unused {
		defer p.mgr.dropRemoved(p)
	}
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
func (p *PluginProcess) watch(c *pluginConn) {
	t := time.NewTicker(healthInterval)
	defer t.Stop()
	fails := 0
	why := ""
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
				why = "it stopped answering health checks: " + statusText(err)
				killConn(c, false)
				break loop
			}
		}
	}
	p.mgr.revoke(c.token)
	if why == "" {
		why = p.exitReason(c)
	}
	p.mu.Lock()
	if p.stopping || p.cur != c {
		p.mu.Unlock()
		return
	}
	if c.attached {
		// The host cannot start what it did not start.
		p.state, p.lastErr = StateFailed, fmt.Errorf("the attached process (pid %d) is gone (%s); start it again and restart the daemon with the line it prints", c.pid, why)
		p.cur = nil
		p.lastExit = Exit{At: time.Now(), Reason: why}
		p.mu.Unlock()
		p.log.Error("attached plugin process is gone", "pid", c.pid, "why", why)
		killConn(c, false)
		return
	}
	p.state = StateRestarting
	p.ready = make(chan struct{})
	p.lastExit = Exit{At: time.Now(), Reason: why}
	p.mu.Unlock()
	// go-plugin kills and reaps what is left; the group kill takes any
	// children the plugin started.
	killConn(c, false)
	p.log.Error("plugin exited; restarting it", "pid", c.pid, "why", why)
	p.restart()
}

// Exit is how a plugin process last ended unasked.
type Exit struct {
	At     time.Time
	Reason string
}

// LastExit says when and why the plugin's process last died or was killed
// by the host (zero if it never did).
func (p *PluginProcess) LastExit() Exit {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastExit
}

// exitReason says why a process ended, from the last fatal line it wrote
// and how it ended. A process over its memory limit dies in one of these
// ways, each named as such: the Go runtime's "fatal error: runtime: out of
// memory", V8's "JavaScript heap out of memory", an allocation failing
// with ENOMEM ("Cannot allocate memory", Python's MemoryError), or a new
// thread whose stack does not fit (cgo's "pthread_create failed: Resource
// temporarily unavailable", which the limit on processes causes too: the
// pids cgroup's count of refusals tells which).
func (p *PluginProcess) exitReason(c *pluginConn) string {
	fatal := ""
	if c.stderr != nil {
		// go-plugin closes done once it read stderr to its end and reaped
		// the process: the last line is in.
		fatal = c.stderr.lastFatal()
	}
	if fatal == "" {
		return "it " + p.howEnded(c)
	}
	switch p.exhausted(c, fatal) {
	case "memory":
		return fmt.Sprintf("it went over its memory limit of %s (%s)", sizeText(p.limits.Memory), fatal)
	case "processes":
		return fmt.Sprintf("it reached its limit of %s processes and threads (%s)", countText(p.limits.Processes), fatal)
	case "memory or processes":
		return fmt.Sprintf("it could not start a thread: it went over its memory limit of %s or reached its limit of %s processes and threads (%s)",
			sizeText(p.limits.Memory), countText(p.limits.Processes), fatal)
	}
	return "it crashed: " + fatal
}

// howEnded says how a process the host started ended ("exited with status
// 2", "was killed by signal killed"), "exited" when the host does not know.
func (p *PluginProcess) howEnded(c *pluginConn) string {
	if c.cmd == nil || c.cmd.ProcessState == nil {
		return "exited"
	}
	ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus)
	switch {
	case ok && ws.Signaled():
		return "was killed by signal " + ws.Signal().String()
	case c.cmd.ProcessState.ExitCode() >= 0:
		return fmt.Sprintf("exited with status %d", c.cmd.ProcessState.ExitCode())
	}
	return "exited"
}

// exhausted says which of the process's limits its fatal line says it ran
// into: "memory", "processes", "memory or processes", or "" for none.
func (p *PluginProcess) exhausted(c *pluginConn, fatal string) string {
	lower := strings.ToLower(fatal)
	memory := p.limits.Memory > 0
	switch {
	case !memory && p.limits.Processes == 0:
		return ""
	case strings.Contains(lower, "out of memory") || strings.Contains(lower, "cannot allocate memory") ||
		strings.Contains(lower, "memoryerror") || strings.Contains(lower, "errno=12"):
		if memory {
			return "memory"
		}
	case strings.Contains(lower, "failed to create new os thread") && strings.Contains(lower, "errno=11"):
		// The Go runtime's own threads take their stacks from its heap:
		// clone refused them for the limit on processes.
		if p.limits.Processes > 0 {
			return "processes"
		}
	case strings.Contains(lower, "pthread_create failed: resource temporarily unavailable"):
		// pthread_create says EAGAIN both when the limit on processes
		// refused the thread and when its stack did not fit in memory.
		switch {
		case p.limits.Processes == 0:
			return "memory"
		case !memory:
			return "processes"
		}
		now, ok := p.mgr.cgroups.refusals(p.spec.Name)
		switch {
		case ok && c.pidsRefused >= 0 && now == c.pidsRefused:
			// The pids cgroup refused nothing while this process lived.
			return "memory"
		case !ok && os.Getuid() == 0:
			// Linux does not apply RLIMIT_NPROC to root.
			return "memory"
		}
		return "memory or processes"
	}
	return ""
}

func (p *PluginProcess) restart() {
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
		done, err := p.relaunch()
		if done {
			return
		}
		p.log.Error("plugin restart failed", "error", err, "retry_in", delay)
		delay = min(delay*2, restartMaxDelay)
	}
}

// relaunch starts the process again after it died; done is false when it
// should be tried again.
func (p *PluginProcess) relaunch() (done bool, err error) {
	p.swap.Lock()
	defer p.swap.Unlock()
	p.mu.Lock()
	if p.state == StateRunning {
		// An upgrade took the dead process's place meanwhile.
		p.mu.Unlock()
		return true, nil
	}
	p.mu.Unlock()
	c, err := p.launch(context.Background())
	p.mu.Lock()
	if p.stopping {
		p.mu.Unlock()
		if c != nil {
			p.mgr.revoke(c.token)
			killConn(c, true)
		}
		return true, nil
	}
	if err == nil {
		p.state, p.cur, p.lastErr = StateRunning, c, nil
		p.restartN++
		close(p.ready)
		p.mu.Unlock()
		p.mgr.restarted(p)
		p.log.Info("plugin restarted", "pid", c.pid)
		go p.watch(c)
		return true, nil
	}
	p.lastErr = err
	p.mu.Unlock()
	return false, err
}

// Stop shuts the process down: our Shutdown RPC cancels calls in flight,
// then go-plugin's Kill asks the process to exit and kills it after two
// seconds.
func (p *PluginProcess) Stop() {
	p.mu.Lock()
	p.stopping = true
	if p.endLife != nil {
		p.endLife()
	}
	c := p.cur
	p.cur = nil
	draining := p.bin.draining
	p.bin.draining = nil
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
	var wg sync.WaitGroup
	for _, old := range append(draining, c) {
		if old != nil {
			wg.Add(1)
			go func() { defer wg.Done(); p.stopConn(old) }()
		}
	}
	wg.Wait()
}

// stopConn ends one process the host is done with: its token is revoked,
// our Shutdown RPC cancels its calls in flight, then it is asked to exit.
func (p *PluginProcess) stopConn(c *pluginConn) {
	p.mgr.revoke(c.token)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_, _ = c.plugin.Shutdown(ctx, &pb.ShutdownRequest{})
	cancel()
	killConn(c, true)
}

// killConn ends a plugin process. Graceful asks it to exit first (go-plugin
// waits two seconds, then kills); otherwise, for a process that stopped
// answering, it is killed at once, since asking would hang.
func killConn(c *pluginConn, graceful bool) {
	if c.attached {
		// Its author's process: disconnect, which ends its serving, and
		// leave the process (and its debugger) alone.
		_ = c.rpc.Close()
		return
	}
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
		awaitKill(done)
	}
	if c.pid > 0 {
		killGroup(c.pid)
	}
}

// killWait bounds the wait for go-plugin's Kill once the plugin's process
// group was killed.
const killWait = 2 * time.Second

// endClient ends go-plugin's client of a process that did not get to
// serve, with every process of its group. go-plugin's Kill waits until
// the plugin's output is closed, and a process the plugin started holds it
// open for as long as it runs (a plugin that forked a child and exited
// held its agent's start, and the daemon's stop, for ever): the group goes
// first.
func endClient(client *goplugin.Client, pid int, log hclog.Logger) {
	if pid > 0 {
		killGroup(pid)
	}
	done := make(chan struct{})
	go func() {
		client.Kill()
		close(done)
	}()
	if !awaitKill(done) {
		log.Error("a process the plugin started outside its process group still holds its output; it is left running", "pid", pid)
	}
}

// awaitKill waits killWait at most for go-plugin's Kill to return (done),
// and reports whether it did. A process the plugin started and moved out
// of its group can keep the plugin's output open: the wait is given up
// rather than hold the daemon.
func awaitKill(done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	case <-time.After(killWait):
		return false
	}
}

// callErr names the plugin and says what happened in words a user can act
// on: a crash, a timeout, or the plugin's own error.
func (p *PluginProcess) callErr(c *pluginConn, method string, err error) error {
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
	}
	if k := contract.KindOfCode(st.Code()); k != contract.Internal {
		return fmt.Errorf("plugin %s: %s: %w", p.spec.Name, st.Message(), k.Err())
	}
	return fmt.Errorf("plugin %s: %s: %s", p.spec.Name, method, statusText(err))
}

func statusText(err error) string {
	if st, ok := status.FromError(err); ok {
		return st.Message()
	}
	return err.Error()
}
