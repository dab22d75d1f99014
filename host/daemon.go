package host

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agenthost/agenthost/host/cluster"
	"github.com/agenthost/agenthost/internal/contract"
	"github.com/agenthost/agenthost/sdk"
	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
)

// Config is everything the daemon needs to run.
type Config struct {
	Version string
	// Addr is the HTTP listen address, e.g. 127.0.0.1:3000.
	Addr    string
	DataDir string
	// Characters are the agents to run. The stored agents (created over
	// the API) that are enabled run too, after them.
	Characters []*sdk.Character
	// DefaultCharacter says that Characters is the built-in default
	// character, not characters the user gave: when the database stores
	// agents, it runs only if it is stored and enabled.
	DefaultCharacter bool
	// Env is the process environment plus .env: the lowest layer of every
	// agent's settings.
	Env map[string]string
	// Self is the agenthost executable; bundled plugins run as its children.
	Self    string
	Bundled []string
	// BundledAliases are the aliases of bundled plugins, by name.
	BundledAliases map[string][]string
	PluginDirs     []string
	// DefaultPlugins are added to every agent whose character lists no
	// plugins (the built-in default character).
	DefaultPlugins []string
	StartTimeout   time.Duration
	Logger         hclog.Logger
	// SkipEmbeddingCheck starts agents without fixing their embedding size
	// in the database: `agenthost db reembed` starts an agent whose model
	// changed size, to re-embed its memories.
	SkipEmbeddingCheck bool
	// Tool is set by the `agenthost db` commands: they share the data dir
	// with each other but not with a daemon.
	Tool bool
	// NoCreate refuses a data dir that does not exist yet, instead of
	// making it: a command that only looks must not leave one behind.
	NoCreate bool
	// ProviderTimeout bounds one plugin's providers for one state: past
	// it, the message goes on without them. Default
	// AGENTHOST_PROVIDER_TIMEOUT, else contract.DefaultCallTimeout.
	ProviderTimeout time.Duration
	// InsecureNoAuth lets the daemon listen on an address other machines
	// reach without an API key (`agenthost start --insecure-no-auth`).
	InsecureNoAuth bool
	// ReadTimeout bounds the reading of a request, body included, so a
	// client that sends slowly cannot hold connections (default 60s);
	// net/http lifts it once the request is read, so a handler may wait
	// longer. IdleTimeout closes a kept-alive connection left unused
	// (default 120s). There is no write timeout: a message waits for its
	// model, and a WebSocket lives on.
	ReadTimeout, IdleTimeout time.Duration
	// TimelineBuffer bounds the timeline entries kept in memory while the
	// database cannot take them (default 10000).
	TimelineBuffer int
	// Attach are plugin processes started by their authors that the daemon
	// uses instead of starting them (`agenthost start --attach`, see
	// ParseAttach).
	Attach map[string]*goplugin.ReattachConfig
	// WatchInterval is how often the plugin folders are looked at: default
	// AGENTHOST_PLUGIN_WATCH_INTERVAL, else WatchInterval; negative looks
	// only when asked (ReloadPlugins, SIGHUP).
	WatchInterval time.Duration
	// Cluster makes the daemon a node of a cluster (package cluster);
	// nil: it runs alone.
	Cluster *cluster.Config
	// OwnProcess says the daemon is the process's one user: it may set
	// how many threads run Go code (procGovernor). Off for a daemon
	// embedded in another program, or in a test.
	OwnProcess bool
}

// Daemon runs agents and their plugins and serves the HTTP API.
type Daemon struct {
	cfg Config
	log hclog.Logger
	mgr *Manager

	mu     sync.RWMutex
	agents []*AgentRuntime
	byID   map[string]*AgentRuntime
	// listedAt is the place of each agent of agents, by id: listing one
	// more among ten thousand must not look at the others.
	listedAt map[string]int
	// listings counts the agents listed; each remembers its number
	// (AgentRuntime.listing), so that a cluster's re-read of the stored
	// agents forgets none listed after it read them (resyncOnce).
	listings uint64
	// resyncRead, set by a test before the daemon starts, runs between a
	// re-read's read of the stored agents and what it makes of them: the
	// moment an agent created meanwhile is missing from what was read.
	resyncRead func()
	// configuring holds the agents whose plugins are being configured:
	// their plugins may call the Runtime for them from Configure on,
	// before they are listed (see runtimeServer.agent).
	configuring sync.Map // agent id → *AgentRuntime

	runs *runRegistry
	logs *logWriter
	// procs sets how many threads run the daemon's Go code (procs.go).
	procs *procGovernor

	httpSrv  *http.Server
	listener net.Listener

	migrated sync.Map // *PluginProcess → struct{}: migrations run for this process

	// lock keeps other daemons off the data dir while this one lives.
	lock *dataDirLock

	// held counts the messages being handled in the background (those a
	// connector handed over without waiting), which Stop lets finish.
	held sync.WaitGroup

	// starting is set while Start starts the agents.
	starting atomic.Bool
	// probes caches embedding sizes by model plugin and settings.
	probes sync.Map
	// registries holds the registries agents share (registryOf).
	registries sync.Map

	// api is the state of the HTTP API, the WebSocket and the metrics.
	api *apiState
	// inner is the API without its guard, for requests other nodes
	// forward.
	inner http.Handler

	// cl is the daemon's cluster node, nil when it runs alone.
	cl  *cluster.Node
	clu clusterState
}

// New discovers plugins and prepares the daemon; Start runs it.
func New(cfg Config) (*Daemon, error) {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.DataDir == "" {
		cfg.DataDir = ".agenthost"
	}
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
	}
	cfg.DataDir = abs
	if cfg.ProviderTimeout <= 0 {
		cfg.ProviderTimeout = contract.DefaultCallTimeout
		if v := cfg.Env["AGENTHOST_PROVIDER_TIMEOUT"]; v != "" {
			t, err := time.ParseDuration(v)
			if err != nil || t <= 0 {
				return nil, fmt.Errorf("AGENTHOST_PROVIDER_TIMEOUT=%q is not a duration such as 10s", v)
			}
			cfg.ProviderTimeout = t
		}
	}
	if cfg.Cluster != nil && cfg.Env["POSTGRES_URL"] == "" {
		return nil, errors.New("cluster mode (AGENTHOST_NATS_URL) needs POSTGRES_URL: the nodes share their agents through one PostgreSQL, and SQLite in a data dir belongs to one machine")
	}
	lock, err := openDataDir(cfg.DataDir, !cfg.Tool, !cfg.NoCreate)
	if err != nil {
		return nil, err
	}
	if !cfg.Tool {
		lock.note(cfg.Addr)
	}
	specs, warnings, err := Discover(cfg.Self, cfg.Bundled, cfg.PluginDirs)
	if err != nil {
		lock.release()
		return nil, err
	}
	for _, w := range warnings {
		cfg.Logger.Warn(w)
	}
	for i := range specs {
		if specs[i].Bundled {
			specs[i].Aliases = cfg.BundledAliases[specs[i].Name]
		}
	}
	specs = attachSpecs(specs, cfg.Attach)
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 60 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 120 * time.Second
	}
	if cfg.TimelineBuffer <= 0 {
		cfg.TimelineBuffer = 10000
	}
	if cfg.WatchInterval == 0 {
		cfg.WatchInterval = WatchInterval
		if v := cfg.Env["AGENTHOST_PLUGIN_WATCH_INTERVAL"]; v != "" {
			t, err := time.ParseDuration(v)
			switch {
			case v == "0":
				t = -1
			case err != nil || t <= 0:
				lock.release()
				return nil, fmt.Errorf("AGENTHOST_PLUGIN_WATCH_INTERVAL=%q is not a duration such as 2s (0: only on SIGHUP and reload)", v)
			}
			cfg.WatchInterval = t
		}
	}
	d := &Daemon{cfg: cfg, log: cfg.Logger, byID: map[string]*AgentRuntime{}, listedAt: map[string]int{}, runs: &runRegistry{m: map[string]*run{}}, lock: lock,
		clu: clusterState{wanted: map[string]bool{}, done: make(chan struct{})}}
	d.api = newAPIState(d)
	d.log = d.api.teeLogger(d.log)
	d.logs = newLogWriter(d.log, cfg.TimelineBuffer)
	if cfg.OwnProcess {
		d.procs = newProcGovernor(newOneCPU(d.pluginPIDs, func(pid int, err error) {
			d.log.Debug("could not move a process to the daemon's CPU", "pid", pid, "error", err)
		}))
	}
	d.logs.onAdd = d.api.timelineEntry
	wd, _ := os.Getwd()
	hostSettings := map[string]string{}
	for _, k := range []string{"POSTGRES_URL", "PGLITE_DATA_DIR", "DATABASE_URL", "VECTOR_SEARCH"} {
		if v := cfg.Env[k]; v != "" {
			hostSettings[k] = v
		}
	}
	rt := &runtimeServer{d: d}
	d.mgr = NewManager(ManagerConfig{
		Version: cfg.Version, Self: cfg.Self, Env: cfg.Env, DataDir: cfg.DataDir, WorkDir: wd, HostSettings: hostSettings,
		StartTimeout:  cfg.StartTimeout,
		Runtime:       rt,
		Storage:       rt.storage,
		DialOptions:   d.api.metrics.pluginDialOptions,
		OnRuntimeCall: d.api.metrics.runtimeCall,
	}, specs, d.log)
	d.mgr.onRestart = d.pluginRestarted
	d.mgr.takeUp = d.takeUp
	if !cfg.Tool {
		d.log.Info("plugins are confined", "confinement", d.mgr.ConfinementSummary())
	}
	return d, nil
}

// Manager returns the plugin manager.
func (d *Daemon) Manager() *Manager { return d.mgr }

// Start takes the HTTP port and serves at once, then starts the agents
// (startup.go): /healthz says "starting" until they are up. A configured
// agent that fails to start makes Start fail with an error that names it;
// a stored one is listed as failed and the others go on. Cancelling ctx
// (SIGTERM during the start) makes Start return at once.
func (d *Daemon) Start(ctx context.Context) (err error) {
	start := time.Now()
	if err := d.checkExposure(); err != nil {
		return err
	}
	// The port first: a daemon that cannot serve fails before it starts a
	// plugin or touches a database, and so leaves nothing behind.
	d.starting.Store(true)
	defer d.starting.Store(false)
	if !d.cfg.Tool {
		// New binaries are taken while the daemon runs (watch.go).
		d.mgr.Watch(d.cfg.PluginDirs, d.cfg.WatchInterval)
	}
	if d.cfg.Addr != "" {
		lis, err := net.Listen("tcp", d.cfg.Addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w (is another agenthost running? choose another with --port)", d.cfg.Addr, err)
		}
		d.listener = lis
		if !d.cfg.Tool {
			d.lock.note(lis.Addr().String())
		}
		d.api.listen.set(d.cfg.Addr, lis.Addr().String())
		d.httpSrv = &http.Server{Handler: d.Handler(), ReadHeaderTimeout: min(10*time.Second, d.cfg.ReadTimeout),
			ReadTimeout: d.cfg.ReadTimeout, IdleTimeout: d.cfg.IdleTimeout}
		go func() {
			if err := d.httpSrv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				d.log.Error("http server stopped", "error", err)
			}
		}()
	}
	if d.cfg.Cluster != nil {
		if err := d.openCluster(ctx); err != nil {
			return err
		}
	}
	chars := d.cfg.Characters
	stored, storedErr := d.storedAgents(ctx)
	if d.cfg.DefaultCharacter && storedErr == nil {
		chars = d.defaultCharacters(stored)
	}
	if storedErr != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if d.cl != nil {
			return fmt.Errorf("read the stored agents from PostgreSQL: %w", storedErr)
		}
		d.log.Warn("could not read the stored agents; only the configured ones run", "error", storedErr)
		stored = nil
	}
	if d.cl != nil {
		if err := d.clusterStart(ctx, chars, stored); err != nil {
			return err
		}
		d.log.Info("agenthost ready", "addr", d.Addr(), "node", d.cl.ID(), "agents", len(d.Agents()), "took", time.Since(start).Round(time.Millisecond))
		return nil
	}
	var list []pendingStart
	for _, ch := range chars {
		list = append(list, pendingStart{ch: ch})
	}
	list = append(list, d.storedToStart(stored, chars)...)
	if err := d.startAgents(ctx, list); err != nil {
		return err
	}
	d.logAgents(chars, len(stored))
	d.log.Info("agenthost ready", "addr", d.Addr(), "agents", len(d.Agents()), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// checkExposure refuses to serve other machines without an API key: with
// no key, whoever reaches the address runs agents with the operator's
// model keys. --insecure-no-auth overrides it, loudly.
func (d *Daemon) checkExposure() error {
	if d.cfg.Addr == "" || d.api.cfg.apiKey != "" {
		return nil
	}
	host, _, err := net.SplitHostPort(d.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", d.cfg.Addr, err)
	}
	if loopbackOnly(host) {
		return nil
	}
	if d.cfg.InsecureNoAuth {
		d.log.Warn("INSECURE: serving on a non-loopback address WITHOUT an API key (--insecure-no-auth): "+
			"anyone who reaches this address can create agents, read their memories and use your model keys; set AGENTHOST_API_KEY",
			"addr", d.cfg.Addr)
		return nil
	}
	return fmt.Errorf("refusing to listen on %s without an API key: anyone who reaches that address could drive the agents and use your model keys; "+
		"set AGENTHOST_API_KEY (clients send it as the X-API-KEY header), or listen on 127.0.0.1 (SERVER_HOST), "+
		"or pass --insecure-no-auth if every machine that can reach it is trusted", d.cfg.Addr)
}

// loopbackOnly reports whether a listen host reaches this machine only:
// a loopback address, or a name whose every address is one.
func loopbackOnly(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	if host == "" {
		return false
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap().IsLoopback()
	}
	addrs, err := net.LookupHost(host)
	if err != nil || len(addrs) == 0 {
		return false
	}
	for _, s := range addrs {
		if a, err := netip.ParseAddr(s); err != nil || !a.Unmap().IsLoopback() {
			return false
		}
	}
	return true
}

// logAgents says which agents the daemon runs and why: the character files
// given, the built-in default character, or the agents stored in the data
// dir (created over the API, or run before); and which it lists stopped or
// failed.
func (d *Daemon) logAgents(configured []*sdk.Character, nStored int) {
	why := map[string]string{}
	for _, ch := range configured {
		switch {
		case !d.cfg.DefaultCharacter:
			why[ch.AgentID()] = "character file"
		case nStored == 0:
			why[ch.AgentID()] = "built-in default character: no --character given and no agents stored yet"
		default:
			why[ch.AgentID()] = "default character as stored in the data dir"
		}
	}
	var running, stopped, failed []string
	for _, a := range d.Agents() {
		st, err := a.Status()
		switch st {
		case AgentRunning:
			w := why[a.ID]
			if w == "" {
				w = "stored in the data dir"
			}
			running = append(running, fmt.Sprintf("%s (%s)", a.Name, w))
		case AgentFailed:
			failed = append(failed, fmt.Sprintf("%s (%v)", a.Name, err))
		default:
			stopped = append(stopped, a.Name)
		}
	}
	kv := []any{"running", strings.Join(running, ", ")}
	if len(running) == 0 {
		kv[1] = "none: start one with `agenthost agent start NAME` or give --character"
	}
	if len(stopped) > 0 {
		kv = append(kv, "stopped", strings.Join(stopped, ", "))
	}
	if len(failed) > 0 {
		kv = append(kv, "failed", strings.Join(failed, "; "))
	}
	d.log.Info("agents", kv...)
}

// Addr is the HTTP address the daemon listens on.
func (d *Daemon) Addr() string {
	if d.listener == nil {
		return ""
	}
	return d.listener.Addr().String()
}

// Stop stops the HTTP server, the agents and every plugin process.
func (d *Daemon) Stop() {
	// Everything before the plugins go shares one second: a daemon asked
	// to stop is gone within two, its plugins with it, whatever it was
	// doing. What it acknowledged is stored already.
	if d.cl != nil {
		// The agents go to other nodes first; requests here for them
		// follow them there.
		d.cl.Leave()
		close(d.clu.done)
	}
	deadline := time.Now().Add(time.Second)
	if d.httpSrv != nil {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		if d.httpSrv.Shutdown(ctx) != nil {
			// Requests still waiting (for a model, say) were never
			// answered, so nothing of theirs was promised.
			_ = d.httpSrv.Close()
		}
		cancel()
	}
	d.api.close()
	// A message handled in the background gets what is left of the second
	// to finish, and to leave the inbox, before its plugins go; one that
	// takes longer is handled again at the next start.
	done := make(chan struct{})
	go func() { d.held.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Until(deadline)):
	}
	if d.cl != nil {
		d.cl.Close()
	}
	d.logs.close()
	d.mgr.Stop()
	d.lock.release()
}

// background runs fn, a message handled without anyone waiting for it,
// so that Stop can let it finish.
func (d *Daemon) background(fn func()) {
	d.held.Add(1)
	go func() {
		defer d.held.Done()
		fn()
	}()
}

// Agents returns the agents in start order.
func (d *Daemon) Agents() []*AgentRuntime {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return append([]*AgentRuntime(nil), d.agents...)
}

func (d *Daemon) agentByID(id string) *AgentRuntime {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.byID[id]
}

// Agent finds an agent by id or, case-insensitively, by name.
func (d *Daemon) Agent(idOrName string) *AgentRuntime {
	if a := d.agentByID(idOrName); a != nil {
		return a
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	for _, a := range d.agents {
		if strings.EqualFold(a.Name, idOrName) {
			return a
		}
	}
	return nil
}

func (d *Daemon) pluginRestarted(p *PluginProcess) {
	if m := p.Manifest(); m != nil && m.GetDatabase() {
		if err := d.migrate(context.Background(), p); err != nil {
			d.log.Error("migrate after restart failed", "plugin", p.Name(), "error", err)
		}
	}
	// A restart may have brought another version of the binary.
	d.refreshAgents(p)
}

// Healthy reports whether every agent that should run is running: an
// agent that failed makes /api/health and /api/status say "degraded".
// /healthz does not ask: it reports the daemon itself, which serves its
// other agents whatever one of them does.
func (d *Daemon) Healthy() bool {
	agents := d.Agents()
	for _, a := range agents {
		if st, _ := a.Status(); st != AgentRunning && st != AgentStopped {
			return false
		}
	}
	return len(agents) > 0 || len(d.cfg.Characters) == 0
}
