package host

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/agenthost/agenthost/internal/contract"
	"github.com/agenthost/agenthost/sdk"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

// The daemon listens first and starts its agents after: /healthz answers
// "starting" (503) until every agent that should run has started or
// failed, GET /api/agents lists them as starting, and a request for an
// agent that is still starting waits for it (startWait at most). Agents
// start side by side, startParallel at a time: most of a start is waiting
// for plugins and the database.

// startParallel bounds the agents starting at once.
const startParallel = 16

// startWait bounds how long a request waits for a starting agent.
const startWait = 30 * time.Second

// pendingStart is an agent the daemon is about to start.
type pendingStart struct {
	ch     *sdk.Character
	stored *pb.Agent     // nil for a character file
	holder *AgentRuntime // the placeholder listed meanwhile
	idle   bool          // stored disabled: listed as stopped, not started
}

// startAgents starts the agents of a starting daemon side by side. It
// returns the first error of a character given on the command line (the
// daemon does not run without it); a stored agent that fails is listed as
// failed and the others go on. Cancelling ctx (SIGTERM) stops it from
// starting more.
func (d *Daemon) startAgents(ctx context.Context, list []pendingStart) error {
	// Agents are listed in the order given (configured, then stored
	// oldest first), whatever order they come up in.
	// They are listed all at once, so that a request never finds some
	// listed as starting and a later one not yet known.
	listed := make([]*AgentRuntime, 0, len(list))
	for i := range list {
		ph, err := d.newIdleAgent(list[i].ch)
		if err != nil {
			continue
		}
		if !list[i].idle {
			ph.status = AgentStarting
			ph.started = make(chan struct{})
			list[i].holder = ph
		}
		listed = append(listed, ph)
	}
	d.addAgents(listed)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		slots    = make(chan struct{}, startParallel)
	)
	for _, ps := range list {
		if ps.holder == nil {
			continue
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			ps.holder.setStatus(AgentStopped, fmt.Errorf("not started: the daemon is stopping"))
			close(ps.holder.started)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			defer close(ps.holder.started)
			_, err := d.startCharacter(ctx, ps.ch, ps.stored)
			if err == nil {
				return
			}
			if ps.stored == nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				return
			}
			if ctx.Err() == nil {
				d.log.Error("a stored agent failed to start; the others go on", "agent", ps.ch.Name, "id", ps.ch.AgentID(), "error", err)
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return fmt.Errorf("starting the agents: %w", ctx.Err())
	}
	return firstErr
}

// waitStarted waits, within startWait or the request, for an agent the
// daemon is still starting, and returns the agent as it is then.
func (d *Daemon) waitStarted(r *http.Request, a *AgentRuntime) *AgentRuntime {
	if !a.placeholder() {
		return a
	}
	t := time.NewTimer(startWait)
	defer t.Stop()
	select {
	case <-a.started:
	case <-t.C:
		return a
	case <-r.Context().Done():
		return a
	}
	if now := d.agentByID(a.ID); now != nil {
		return now
	}
	return a
}

// Starting reports whether the daemon is still starting its agents.
func (d *Daemon) Starting() bool { return d.starting.Load() }

// embeddingSize asks the agent's embedding model for the size of its
// vectors. Agents whose embedding plugin has the same settings share the
// answer: a daemon starting a thousand agents on one model asks once.
func (d *Daemon) embeddingSize(ctx context.Context, a *AgentRuntime) (int, error) {
	p, err := a.registry().Model(sdk.ModelTextEmbedding, "")
	if err != nil {
		return 0, err
	}
	key := probeKey(p, a.settingsOf(p))
	if dim, ok := d.probes.Load(key); ok {
		return dim.(int), nil
	}
	res, err := a.useModel(ctx, &pb.ModelRequest{Type: sdk.ModelTextEmbedding, Probe: true})
	if err != nil {
		return 0, err
	}
	dim := len(res.GetEmbedding())
	if dim > 0 {
		d.probes.Store(key, dim)
	}
	return dim, nil
}

// probeKey names a plugin process with the settings it was given.
func probeKey(p *PluginProcess, settings map[string]string) string {
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d\x00", p.Name(), p.PID())
	for _, k := range keys {
		b, _ := json.Marshal([2]string{k, settings[k]})
		h.Write(b)
	}
	return string(h.Sum(nil))
}

// StartAgent starts the plugins of a character's agent, configures them and
// marks the agent running.
func (d *Daemon) StartAgent(ctx context.Context, ch *sdk.Character) (*AgentRuntime, error) {
	return d.startCharacter(ctx, ch, nil)
}

// startCharacter starts a character's agent. stored is its stored record
// when the daemon starts it from the database, which it need not store
// again if nothing changed. A placeholder listed while the daemon starts
// (see startup.go) is replaced.
func (d *Daemon) startCharacter(ctx context.Context, ch *sdk.Character, stored *pb.Agent) (*AgentRuntime, error) {
	id := ch.AgentID()
	if old := d.agentByID(id); old != nil && !old.idle() && !old.placeholder() {
		return nil, fmt.Errorf("agent %s (%s) is already running", ch.Name, id)
	}
	charJSON, err := jsonMarshal(ch)
	if err != nil {
		return nil, fmt.Errorf("agent %s: encode character: %w", ch.Name, err)
	}
	a := &AgentRuntime{ID: id, Name: ch.Name, Character: ch, d: d, charJSON: charJSON, status: AgentStarting,
		log: d.log.Named("agent").With("agent", ch.Name), states: newStateCache(256)}
	if err := d.startAgent(ctx, a, stored); err != nil {
		a.setStatus(AgentFailed, err)
		d.dropAgent(a, err)
		return nil, fmt.Errorf("start agent %s: %w", ch.Name, err)
	}
	a.setStatus(AgentRunning, nil)
	d.addAgent(a)
	if stored != nil {
		// Many start at once; the start log sums them up.
		a.log.Debug("agent running", "id", a.ID, "plugins", strings.Join(a.Plugins(), ","))
	} else {
		a.log.Info("agent running", "id", a.ID, "plugins", strings.Join(a.Plugins(), ","))
	}
	// Messages a previous host accepted from connectors but did not finish.
	go a.replayInbox(context.WithoutCancel(ctx))
	return a, nil
}

func (d *Daemon) startAgent(ctx context.Context, a *AgentRuntime, stored *pb.Agent) error {
	var plugins []*PluginProcess
	seen := map[*PluginProcess]bool{}
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
	var extra []*PluginProcess
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
	if !hasHandler && a.setting("IGNORE_BOOTSTRAP") != "true" {
		if p, err := d.ResolvePlugin("bootstrap"); err == nil && !seen[p] {
			extra = append(extra, p)
		}
	}
	if err := startAll(ctx, extra); err != nil {
		return err
	}
	plugins = append(extra, plugins...)
	reg, pluginSet, err := d.registryOf(plugins)
	if err != nil {
		return err
	}
	if len(reg.Models[sdk.ModelTextLarge]) == 0 && len(reg.Models[sdk.ModelTextSmall]) == 0 {
		return fmt.Errorf("agent %s has no TEXT model: none of its plugins (%s) serves TEXT_LARGE or TEXT_SMALL; add a model plugin such as \"offline\" or \"openai\" to the character's \"plugins\"",
			a.Name, reg.PluginNames())
	}
	a.reg.Store(reg)
	if err := d.migrate(ctx, reg.DB); err != nil {
		return err
	}
	_, c, err := a.db(ctx)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, contract.DefaultCallTimeout)
	defer cancel()
	// An enabled stored agent is started from its stored record, and is
	// stored as it is: its record, its own entity and room and its
	// embedding size were stored when it first started. A daemon starting
	// a thousand of them writes nothing for them.
	restart := stored != nil && stored.GetEnabled() && stored.GetName() == a.Name
	if !restart {
		if _, err := c.db.EnsureAgent(cctx, &pb.EnsureAgentRequest{Agent: &pb.Agent{Id: a.ID, Name: a.Name, CharacterJson: a.charJSON, Enabled: true}}); err != nil {
			return fmt.Errorf("store agent: %w", reg.DB.callErr(c, "EnsureAgent", err))
		}
	}
	// Each plugin is told what is its: its settings, and the character
	// without secrets.
	pluginChar, err := pluginCharacterJSON(a.Character)
	if err != nil {
		return fmt.Errorf("agent %s: encode character: %w", a.Name, err)
	}
	endpoints := allowedEndpoints(d.cfg.Env)
	for _, p := range plugins {
		settings, warnings := settingsFor(a.Character, p, p.Manifest(), d.cfg.Env, endpoints)
		for _, w := range warnings {
			a.log.Warn(w)
		}
		// Known before Configure: the plugin may ask for them from it.
		a.setSettings(p, settings)
	}
	// The plugins are configured side by side: they do not depend on each
	// other, and an agent waits for the slowest instead of their sum. Each
	// request is made for the manifest of the process it goes to, which an
	// upgrade may change (upgrade.go): the settings it declares, the
	// plugin set it makes.
	// A plugin may call the Runtime for the agent from its Configure on:
	// settings, its manifests, storage.
	d.configuring.Store(a.ID, a)
	defer d.configuring.CompareAndDelete(a.ID, a)
	errs := make([]error, len(plugins))
	var wg sync.WaitGroup
	for i, p := range plugins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			warnings, err := p.Configure(ctx, func(m *pb.Manifest) *pb.ConfigureRequest {
				settings, _ := settingsFor(a.Character, p, m, d.cfg.Env, endpoints)
				set := pluginSetKey(plugins, func(x *PluginProcess) *pb.Manifest {
					if x == p {
						return m
					}
					return x.Manifest()
				})
				return &pb.ConfigureRequest{AgentId: a.ID, CharacterJson: pluginChar, Settings: settings, PluginSet: set}
			})
			if err != nil {
				errs[i] = fmt.Errorf("configure plugin %s: %w", p.Name(), err)
				return
			}
			if s, ok := p.agentSettings(a.ID); ok {
				a.setSettings(p, s)
			}
			for _, w := range warnings {
				a.log.Warn(w, "plugin", p.Name())
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if set := pluginSetKey(plugins, (*PluginProcess).Manifest); set != pluginSet {
		// A plugin was upgraded while the agent started.
		if reg, _, err = d.registryOf(plugins); err != nil {
			return err
		}
		a.reg.Store(reg)
	}
	// The agent is reachable by its plugins from here on: the embedding
	// probe and the first state composition call back into the host.
	d.mu.Lock()
	d.byID[a.ID] = a
	d.mu.Unlock()
	a.setStatus(AgentRunning, nil)
	if len(reg.Models[sdk.ModelTextEmbedding]) > 0 && !d.cfg.SkipEmbeddingCheck {
		dim, err := d.embeddingSize(ctx, a)
		if err != nil {
			return fmt.Errorf("probe the embedding size: %w", err)
		}
		if dim > 0 && (!restart || int(stored.GetEmbeddingDimension()) != dim) {
			prev, err := c.db.EnsureEmbeddingDimension(cctx, &pb.EnsureEmbeddingDimensionRequest{AgentId: a.ID, Dimension: int32(dim)})
			if err != nil {
				return fmt.Errorf("set the embedding size: %w (after a change of embedding model, `agenthost db reembed --agent %s` re-embeds the stored memories)",
					reg.DB.callErr(c, "EnsureEmbeddingDimension", err), a.Name)
			}
			if p := prev.GetPrevious(); p != 0 && int(p) != dim {
				a.log.Warn("the embedding model changed size; run `agenthost db reembed` for this agent", "stored", p, "model", dim)
			}
		}
	}
	if restart && stored.GetEmbeddingDimension() != 0 {
		// Its own entity and room were stored at its first start (the
		// embedding size is stored right after them).
		return nil
	}
	names := []string{a.Name}
	if u := a.Character.Username; u != "" && u != a.Name {
		names = append(names, u)
	}
	if _, err := c.db.EnsureConnection(cctx, &pb.EnsureConnectionRequest{AgentId: a.ID,
		Entity: &pb.Entity{Id: a.ID, Names: names, AgentId: a.ID},
		Room:   &pb.Room{Id: a.ID, Name: a.Name, AgentId: a.ID, Source: "agenthost", Type: string(sdk.ChannelSelf)},
	}); err != nil {
		return fmt.Errorf("store the agent's own entity and room: %w", reg.DB.callErr(c, "EnsureConnection", err))
	}
	return nil
}

func startAll(ctx context.Context, plugins []*PluginProcess) error {
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
func (d *Daemon) migrate(ctx context.Context, p *PluginProcess) error {
	c, err := p.conn(ctx)
	if err != nil {
		return err
	}
	return d.migrateConn(ctx, p, c)
}

// migrateConn runs the migrations of one process of the database plugin:
// an upgrade's before calls go to it.
func (d *Daemon) migrateConn(ctx context.Context, p *PluginProcess, c *pluginConn) error {
	if _, done := d.migrated.Load(c); done {
		return nil
	}
	mctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	res, err := c.db.Migrate(mctx, &pb.MigrateRequest{})
	if err != nil {
		return fmt.Errorf("migrate database: %w", p.callErr(c, "Migrate", err))
	}
	if r := res.GetReport(); r.GetApplied() > 0 {
		d.log.Info("database migrated", "backend", r.GetBackend(), "applied", r.GetApplied())
	}
	d.migrated.Store(c, struct{}{})
	return nil
}
