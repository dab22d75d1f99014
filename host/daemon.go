package host

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/agenthost/agenthost/sdk"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/hashicorp/go-hclog"
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
}

// Daemon runs agents and their plugins and serves the HTTP API.
type Daemon struct {
	cfg Config
	log hclog.Logger
	mgr *Manager

	mu     sync.RWMutex
	agents []*Agent
	byID   map[string]*Agent

	runs *runRegistry
	logs *logWriter

	httpSrv  *http.Server
	listener net.Listener

	migrated sync.Map // *Plugin → struct{}: migrations run for this process

	// api is the state of the HTTP API, the WebSocket and the metrics.
	api *apiState
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
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	specs, warnings, err := Discover(cfg.Self, cfg.Bundled, cfg.PluginDirs)
	if err != nil {
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
	d := &Daemon{cfg: cfg, log: cfg.Logger, byID: map[string]*Agent{}, runs: &runRegistry{m: map[string]*run{}}}
	d.api = newAPIState(d)
	d.log = d.api.teeLogger(d.log)
	d.logs = newLogWriter(d.log)
	d.logs.onAdd = d.api.timelineEntry
	wd, _ := os.Getwd()
	hostSettings := map[string]string{}
	for _, k := range []string{"POSTGRES_URL", "PGLITE_DATA_DIR", "DATABASE_URL"} {
		if v := cfg.Env[k]; v != "" {
			hostSettings[k] = v
		}
	}
	d.mgr = NewManager(ManagerConfig{
		Version: cfg.Version, DataDir: cfg.DataDir, WorkDir: wd, HostSettings: hostSettings,
		StartTimeout: cfg.StartTimeout,
		Runtime:      func(p *Plugin) pb.RuntimeServer { return &runtimeServer{d: d, plugin: p} },
		DialOptions:  d.api.metrics.pluginDialOptions,
	}, specs, d.log)
	d.mgr.onRestart = d.pluginRestarted
	return d, nil
}

// Manager returns the plugin manager.
func (d *Daemon) Manager() *Manager { return d.mgr }

// Start starts every agent, then the HTTP server. A configured agent that
// fails to start makes Start fail with an error that names it; a stored
// one is listed as failed and the others go on (see startStored).
func (d *Daemon) Start(ctx context.Context) error {
	start := time.Now()
	chars := d.cfg.Characters
	var stored []*pb.Agent
	var storedErr error
	if d.cfg.DefaultCharacter {
		if stored, storedErr = d.storedAgents(ctx); storedErr == nil {
			chars = d.defaultCharacters(stored)
		}
	}
	for _, ch := range chars {
		if _, err := d.StartAgent(ctx, ch); err != nil {
			return err
		}
	}
	if !d.cfg.DefaultCharacter {
		stored, storedErr = d.storedAgents(ctx)
	}
	if storedErr != nil {
		d.log.Warn("could not read the stored agents; only the configured ones run", "error", storedErr)
	} else {
		d.startStored(ctx, stored)
	}
	if d.cfg.Addr != "" {
		lis, err := net.Listen("tcp", d.cfg.Addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w (is another agenthost running? choose another with --port)", d.cfg.Addr, err)
		}
		d.listener = lis
		d.httpSrv = &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := d.httpSrv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				d.log.Error("http server stopped", "error", err)
			}
		}()
	}
	d.log.Info("agenthost ready", "addr", d.Addr(), "agents", len(d.Agents()), "took", time.Since(start).Round(time.Millisecond))
	return nil
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
	if d.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = d.httpSrv.Shutdown(ctx)
		cancel()
	}
	d.api.close()
	d.logs.close()
	d.mgr.Stop()
}

// Agents returns the agents in start order.
func (d *Daemon) Agents() []*Agent {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return append([]*Agent(nil), d.agents...)
}

func (d *Daemon) agentByID(id string) *Agent {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.byID[id]
}

// Agent finds an agent by id or, case-insensitively, by name.
func (d *Daemon) Agent(idOrName string) *Agent {
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

// ResolvePlugin maps a name from a character's plugins list to a known
// plugin: a short name (sql), an elizaOS package name
// (@elizaos/plugin-sql), an executable name (agenthost-plugin-sql) or an
// alias from a manifest.
func (d *Daemon) ResolvePlugin(name string) (*Plugin, error) {
	return resolvePlugin(d.mgr, name)
}

func resolvePlugin(m *Manager, name string) (*Plugin, error) {
	n := strings.TrimSpace(name)
	if p := m.Plugin(n); p != nil {
		return p, nil
	}
	short := n
	if i := strings.LastIndexByte(short, '/'); i >= 0 {
		short = short[i+1:]
	}
	short = strings.TrimPrefix(short, ExecPrefix)
	short = strings.TrimPrefix(short, "plugin-")
	if p := m.Plugin(short); p != nil {
		return p, nil
	}
	for _, p := range m.Plugins() {
		aliases := p.Spec().Aliases
		if man := p.Manifest(); man != nil {
			aliases = append(aliases[:len(aliases):len(aliases)], man.GetAliases()...)
		}
		for _, al := range aliases {
			if al == n {
				return p, nil
			}
		}
	}
	var known []string
	for _, p := range m.Plugins() {
		known = append(known, p.Name())
	}
	sort.Strings(known)
	return nil, fmt.Errorf("unknown plugin %q; the plugins found are: %s (folders searched: bundled, %s)",
		name, strings.Join(known, ", "), strings.Join(m.searchedDirs(), ", "))
}

func (m *Manager) searchedDirs() []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range m.specs {
		if s.Bundled {
			continue
		}
		if dir := filepath.Dir(s.Path); !seen[dir] {
			seen[dir] = true
			out = append(out, dir)
		}
	}
	if len(out) == 0 {
		out = append(out, "no plugin folders with plugins")
	}
	return out
}

// pluginNames decides an agent's plugins: the character's, with the sql and
// bootstrap plugins added first when missing, as elizaOS does.
func (d *Daemon) pluginNames(ch *sdk.Character) []string {
	names := append([]string(nil), ch.Plugins...)
	if len(names) == 0 {
		names = append(names, d.cfg.DefaultPlugins...)
	}
	return names
}

// StartAgent starts the plugins of a character's agent, configures them and
// marks the agent running.
func (d *Daemon) StartAgent(ctx context.Context, ch *sdk.Character) (*Agent, error) {
	id := ch.AgentID()
	if old := d.agentByID(id); old != nil && !old.idle() {
		return nil, fmt.Errorf("agent %s (%s) is already running", ch.Name, id)
	}
	charJSON, err := jsonMarshal(ch)
	if err != nil {
		return nil, fmt.Errorf("agent %s: encode character: %w", ch.Name, err)
	}
	a := &Agent{ID: id, Name: ch.Name, Character: ch, d: d, charJSON: charJSON, status: AgentStarting,
		log: d.log.Named("agent").With("agent", ch.Name), states: newStateCache(256),
		settings: ch.ResolvedSettings(d.cfg.Env)}
	if err := d.startAgent(ctx, a); err != nil {
		a.setStatus(AgentFailed, err)
		d.dropAgent(a, err)
		return nil, fmt.Errorf("start agent %s: %w", ch.Name, err)
	}
	a.setStatus(AgentRunning, nil)
	d.addAgent(a)
	a.log.Info("agent running", "id", a.ID, "plugins", strings.Join(a.Plugins(), ","))
	// Messages a previous host accepted from connectors but did not finish.
	go a.replayInbox(context.WithoutCancel(ctx))
	return a, nil
}

func (d *Daemon) startAgent(ctx context.Context, a *Agent) error {
	var plugins []*Plugin
	seen := map[*Plugin]bool{}
	add := func(name string) error {
		p, err := d.ResolvePlugin(name)
		if err != nil {
			return err
		}
		if !seen[p] {
			seen[p] = true
			plugins = append(plugins, p)
		}
		return nil
	}
	for _, n := range d.pluginNames(a.Character) {
		if err := add(n); err != nil {
			return err
		}
	}
	// Start the listed plugins first: their manifests say whether a
	// database and a message handler are already among them.
	if err := startAll(ctx, plugins); err != nil {
		return err
	}
	var extra []*Plugin
	hasDB, hasHandler := false, false
	for _, p := range plugins {
		m := p.Manifest()
		hasDB = hasDB || m.GetDatabase()
		for _, e := range m.GetEvents() {
			hasHandler = hasHandler || e == sdk.EventMessageReceived
		}
	}
	if !hasDB {
		p, err := d.ResolvePlugin("sql")
		if err != nil {
			return fmt.Errorf("no database plugin: %w", err)
		}
		extra = append(extra, p)
	}
	if !hasHandler && a.settings["IGNORE_BOOTSTRAP"] != "true" {
		if p, err := d.ResolvePlugin("bootstrap"); err == nil && !seen[p] {
			extra = append(extra, p)
		}
	}
	if err := startAll(ctx, extra); err != nil {
		return err
	}
	plugins = append(extra, plugins...)
	reg, err := buildRegistry(plugins)
	if err != nil {
		return err
	}
	if len(reg.models[sdk.ModelTextLarge]) == 0 && len(reg.models[sdk.ModelTextSmall]) == 0 {
		return fmt.Errorf("agent %s has no TEXT model: none of its plugins (%s) serves TEXT_LARGE or TEXT_SMALL; add a model plugin such as \"offline\" or \"openai\" to the character's \"plugins\"",
			a.Name, reg.pluginNames())
	}
	a.reg = reg
	if err := d.migrate(ctx, reg.db); err != nil {
		return err
	}
	_, c, err := a.db(ctx)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, sdk.DefaultCallTimeout)
	defer cancel()
	if _, err := c.db.EnsureAgent(cctx, &pb.EnsureAgentRequest{Agent: &pb.Agent{Id: a.ID, Name: a.Name, CharacterJson: a.charJSON, Enabled: true}}); err != nil {
		return fmt.Errorf("store agent: %w", reg.db.callErr(c, "EnsureAgent", err))
	}
	req := &pb.ConfigureRequest{AgentId: a.ID, CharacterJson: a.charJSON, Settings: a.settings}
	for _, p := range plugins {
		warnings, err := p.Configure(ctx, req)
		if err != nil {
			return fmt.Errorf("configure plugin %s: %w", p.Name(), err)
		}
		for _, w := range warnings {
			a.log.Warn(w, "plugin", p.Name())
		}
	}
	// The agent is reachable by its plugins from here on: the embedding
	// probe and the first state composition call back into the host.
	d.mu.Lock()
	d.byID[a.ID] = a
	d.mu.Unlock()
	a.setStatus(AgentRunning, nil)
	if len(reg.models[sdk.ModelTextEmbedding]) > 0 && !d.cfg.SkipEmbeddingCheck {
		res, err := a.useModel(ctx, &pb.ModelRequest{Type: sdk.ModelTextEmbedding, Probe: true})
		if err != nil {
			return fmt.Errorf("probe the embedding size: %w", err)
		}
		if dim := len(res.GetEmbedding()); dim > 0 {
			prev, err := c.db.EnsureEmbeddingDimension(cctx, &pb.EnsureEmbeddingDimensionRequest{AgentId: a.ID, Dimension: int32(dim)})
			if err != nil {
				return fmt.Errorf("set the embedding size: %w (after a change of embedding model, `agenthost db reembed --agent %s` re-embeds the stored memories)",
					reg.db.callErr(c, "EnsureEmbeddingDimension", err), a.Name)
			}
			if p := prev.GetPrevious(); p != 0 && int(p) != dim {
				a.log.Warn("the embedding model changed size; run `agenthost db reembed` for this agent", "stored", p, "model", dim)
			}
		}
	}
	names := []string{a.Name}
	if u := a.Character.Username; u != "" && u != a.Name {
		names = append(names, u)
	}
	if _, err := c.db.EnsureConnection(cctx, &pb.EnsureConnectionRequest{AgentId: a.ID,
		Entity: &pb.Entity{Id: a.ID, Names: names, AgentId: a.ID},
		Room:   &pb.Room{Id: a.ID, Name: a.Name, AgentId: a.ID, Source: "agenthost", Type: string(sdk.ChannelSelf)},
	}); err != nil {
		return fmt.Errorf("store the agent's own entity and room: %w", reg.db.callErr(c, "EnsureConnection", err))
	}
	return nil
}

func startAll(ctx context.Context, plugins []*Plugin) error {
	errs := make([]error, len(plugins))
	var wg sync.WaitGroup
	for i, p := range plugins {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = p.Start(ctx) }()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// migrate runs the database plugin's migrations once per process.
func (d *Daemon) migrate(ctx context.Context, p *Plugin) error {
	c, err := p.conn(ctx)
	if err != nil {
		return err
	}
	if _, done := d.migrated.Load(c); done {
		return nil
	}
	mctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	res, err := c.db.Migrate(mctx, &pb.MigrateRequest{})
	if err != nil {
		return fmt.Errorf("migrate database: %w", p.callErr(c, "Migrate", err))
	}
	if res.GetApplied() > 0 {
		d.log.Info("database migrated", "backend", res.GetBackend(), "applied", res.GetApplied())
	}
	d.migrated.Store(c, struct{}{})
	return nil
}

func (d *Daemon) pluginRestarted(p *Plugin) {
	if m := p.Manifest(); m != nil && m.GetDatabase() {
		if err := d.migrate(context.Background(), p); err != nil {
			d.log.Error("migrate after restart failed", "plugin", p.Name(), "error", err)
		}
	}
}

// Healthy reports whether every agent is running.
func (d *Daemon) Healthy() bool {
	agents := d.Agents()
	for _, a := range agents {
		if st, _ := a.Status(); st != AgentRunning && st != AgentStopped {
			return false
		}
	}
	return len(agents) > 0 || len(d.cfg.Characters) == 0
}

// publish is where live listeners (the WebSocket) hear replies.
func (d *Daemon) publish(a *Agent, r *run, c *pb.Content) { d.api.reply(a, r, c) }

// runRegistry holds the runs in flight, so Respond finds where to send.
type runRegistry struct {
	mu sync.Mutex
	m  map[string]*run
}

func (r *runRegistry) put(x *run) {
	r.mu.Lock()
	r.m[x.id] = x
	r.mu.Unlock()
}

func (r *runRegistry) get(id string) *run {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[id]
}

func (r *runRegistry) remove(id string) {
	r.mu.Lock()
	delete(r.m, id)
	r.mu.Unlock()
}

// logWriter stores timeline entries in the background so that recording a
// model call never adds a database round trip to the message's path. The
// queue is bounded: when it is full, writers wait rather than drop.
type logWriter struct {
	log hclog.Logger
	// onAdd hears every entry as it is written (the live log stream).
	onAdd func(*Agent, *pb.LogEntry)
	ch    chan logJob
	done  chan struct{}
	once  sync.Once
}

type logJob struct {
	a *Agent
	l *pb.LogEntry
}

func newLogWriter(log hclog.Logger) *logWriter {
	w := &logWriter{log: log, ch: make(chan logJob, 1024), done: make(chan struct{})}
	go w.loop()
	return w
}

func (w *logWriter) add(a *Agent, l *pb.LogEntry) {
	if w.onAdd != nil {
		w.onAdd(a, l)
	}
	defer func() { _ = recover() }() // a send after close during shutdown is dropped
	w.ch <- logJob{a: a, l: l}
}

func (w *logWriter) loop() {
	defer close(w.done)
	for j := range w.ch {
		// Take what else is waiting: one transaction for the lot keeps the
		// timeline from competing with the messages for the database.
		batch := []logJob{j}
	drain:
		for len(batch) < maxLogBatch {
			select {
			case more, ok := <-w.ch:
				if !ok {
					break drain
				}
				batch = append(batch, more)
			default:
				break drain
			}
		}
		w.write(batch)
	}
}

// maxLogBatch bounds one AddLogs call.
const maxLogBatch = 128

func (w *logWriter) write(batch []logJob) {
	// Agents normally share one database plugin; group by it all the same.
	byDB := map[*Plugin][]logJob{}
	var order []*Plugin
	for _, j := range batch {
		if j.a.reg == nil || j.a.reg.db == nil {
			continue
		}
		p := j.a.reg.db
		if _, ok := byDB[p]; !ok {
			order = append(order, p)
		}
		byDB[p] = append(byDB[p], j)
	}
	for _, p := range order {
		jobs := byDB[p]
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := p.conn(ctx)
		if err == nil {
			req := &pb.AddLogsRequest{Logs: make([]*pb.LogEntry, len(jobs))}
			for i, j := range jobs {
				req.Logs[i] = j.l
			}
			_, err = c.db.AddLogs(ctx, req)
			if err != nil {
				err = p.callErr(c, "AddLogs", err)
			}
		}
		cancel()
		if err != nil {
			w.log.Warn("could not store log entries", "count", len(jobs), "first_type", jobs[0].l.GetType(), "error", err)
		}
	}
}

func (w *logWriter) close() {
	w.once.Do(func() { close(w.ch) })
	select {
	case <-w.done:
	case <-time.After(5 * time.Second):
	}
}

// Database starts the database plugin as agents use it (the sql plugin,
// with the data dir and POSTGRES_URL of the daemon's configuration) and
// returns its Database client. It does not migrate. The `agenthost db`
// commands use it.
func (d *Daemon) Database(ctx context.Context) (pb.DatabaseClient, error) {
	p, err := d.ResolvePlugin("sql")
	if err != nil {
		return nil, err
	}
	if err := p.Start(ctx); err != nil {
		return nil, err
	}
	c, err := p.conn(ctx)
	if err != nil {
		return nil, err
	}
	return c.db, nil
}

// Database returns the Database client of the agent's database plugin.
func (a *Agent) Database(ctx context.Context) (pb.DatabaseClient, error) {
	_, c, err := a.db(ctx)
	if err != nil {
		return nil, err
	}
	return c.db, nil
}

// Embed returns the vector of text from the agent's TEXT_EMBEDDING model
// (its size only, when probe is set). Unlike the model calls of a run, it
// is not recorded in the agent's timeline: `agenthost db reembed` makes one
// per stored memory.
func (a *Agent) Embed(ctx context.Context, text string, probe bool) ([]float32, error) {
	if a.reg == nil {
		return nil, fmt.Errorf("agent %s is not started", a.Name)
	}
	p, err := a.reg.model(sdk.ModelTextEmbedding, "")
	if err != nil {
		return nil, fmt.Errorf("agent %s: %w", a.Name, err)
	}
	c, err := p.conn(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := ensureDeadline(ctx, sdk.DefaultCallTimeout)
	defer cancel()
	res, err := c.plugin.UseModel(ctx, &pb.ModelRequest{AgentId: a.ID, Type: sdk.ModelTextEmbedding, Text: text, Probe: probe})
	if err != nil {
		return nil, p.callErr(c, "UseModel "+sdk.ModelTextEmbedding, err)
	}
	return res.GetEmbedding(), nil
}
