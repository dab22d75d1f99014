package host

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/agenthost/agenthost/internal/contract"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"google.golang.org/grpc"
)

// In-place upgrade. When the binary of a running plugin changes, the host
// starts the new binary beside the old process and checks it: its
// handshake, its manifest (the same name), its Init with a runtime token
// of its own, and a Configure for every agent the old process serves, made
// for the new manifest (the settings it declares). Only then are new calls
// sent to it. The calls in flight on the old process finish there — every
// connection counts the host's calls on it — and the old process is
// stopped, its token revoked, once they have. A new binary that fails any
// step is refused: the reason is logged and shown in GET /api/plugins/NAME,
// and the old process serves on. The new process is confined exactly as
// the old, under the same limits and grants.
//
// Agents share registries (registry.go): every running agent that uses the
// plugin gets a registry of the new manifest. One whose character needs an
// action or provider the new manifest no longer has gets a warning naming
// it. The other plugins of those agents keep what they asked the host of
// the agent's makeup (DescribeAgent) until the agent restarts.

// probeSlot is the temporary folder of a process that only shows its
// manifest.
const probeSlot = ".probe"

// drainTimeout bounds how long an old process is given to finish its calls
// in flight after an upgrade; past it, it is stopped with them.
const drainTimeout = 5 * time.Minute

// binaryState is what the host knows of a plugin's binary.
type binaryState struct {
	// seen is the identity of the binary last started, read or refused:
	// the watcher acts when the file on disk is another.
	seen fileID
	// manifest is the manifest last read, kept while no process runs.
	manifest *pb.Manifest
	// sum caches the checksum of the file sumOf.
	sum   string
	sumOf fileID
	// removed is set when the binary is gone from the plugin folders.
	removed bool
	// draining are old processes finishing their calls after an upgrade.
	draining []*pluginConn
	// last is the last upgrade, or refusal of a new binary.
	last *Upgrade
	// probeMu makes one probe at a time; probeErr is why the binary
	// probeOf could not be read (the API does not try it again).
	probeMu  sync.Mutex
	probeErr error
	probeOf  fileID
}

// Upgrade is the last upgrade of a plugin, or the refusal of a new binary.
type Upgrade struct {
	At   time.Time
	Path string
	// From and To are the versions; To is empty when the binary was
	// refused before its manifest was read.
	From, To string
	// Error says why the new binary was refused; empty when it was taken
	// up.
	Error    string
	Warnings []string
	// Took is how long the switch took, from the start of the new process
	// to the first call it could take.
	Took time.Duration
}

// LastUpgrade is the plugin's last upgrade or refused binary, or nil.
func (p *PluginProcess) LastUpgrade() *Upgrade {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.bin.last
}

// Removed reports whether the plugin's binary was removed from the plugin
// folders: its process serves the agents that use it until they stop.
func (p *PluginProcess) Removed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.bin.removed
}

// KnownManifest is the manifest of the running process, or else the one
// last read of the binary (nil if it never was).
func (p *PluginProcess) KnownManifest() *pb.Manifest {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur != nil {
		return p.cur.manifest
	}
	return p.bin.manifest
}

// described records the manifest of a binary the host took.
func (p *PluginProcess) described(m *pb.Manifest, file fileID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bin.manifest = m
	if file != (fileID{}) {
		p.bin.seen = file
	}
}

// checksum is the SHA-256 of the plugin's file, computed once per version
// of the file; "" when it cannot be read.
func (p *PluginProcess) checksum() string {
	path := p.Spec().Path
	id, err := statFile(path)
	if err != nil {
		return ""
	}
	p.mu.Lock()
	if p.bin.sum != "" && p.bin.sumOf.same(id) {
		defer p.mu.Unlock()
		return p.bin.sum
	}
	p.mu.Unlock()
	sum, err := FileSHA256(path)
	if err != nil {
		return ""
	}
	p.mu.Lock()
	p.bin.sum, p.bin.sumOf = sum, id
	p.mu.Unlock()
	return sum
}

// agentSettings is what the plugin was configured with for an agent.
func (p *PluginProcess) agentSettings(agentID string) (map[string]string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ac, ok := p.configured[agentID]
	if !ok {
		return nil, false
	}
	return ac.req.GetSettings(), true
}

// configuredFor makes every agent's Configure request again for manifest
// m. p.mu is not held while they are made: a request's settings read the
// manifests of the agent's plugins.
func (p *PluginProcess) configuredFor(m *pb.Manifest) map[string]*agentConfig {
	p.mu.Lock()
	cur := maps.Clone(p.configured)
	p.mu.Unlock()
	out := make(map[string]*agentConfig, len(cur))
	for id, ac := range cur {
		out[id] = &agentConfig{req: ac.redo(m), redo: ac.redo}
	}
	return out
}

// redoConfigured makes the requests again for m, records them and returns
// them (a restart replays them).
func (p *PluginProcess) redoConfigured(m *pb.Manifest) []*pb.ConfigureRequest {
	next := p.configuredFor(m)
	reqs := make([]*pb.ConfigureRequest, 0, len(next))
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, ac := range next {
		if _, still := p.configured[id]; still {
			p.configured[id] = ac
			reqs = append(reqs, ac.req)
		}
	}
	return reqs
}

// tmpSlot picks the temporary folder of a new process: a probe has its
// own; a process that lives beside others of the plugin (an upgrade, an
// old process draining) one that none of them uses.
func (p *PluginProcess) tmpSlot(mode launchMode) string {
	if mode == launchProbe {
		return probeSlot
	}
	dir, err := p.mgr.runtimeDir()
	if err != nil {
		return ""
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	used := map[string]bool{}
	for _, c := range append([]*pluginConn{p.cur}, p.bin.draining...) {
		if c == nil {
			continue
		}
		select {
		case <-c.done:
			// Dead (a restart after a crash): its folder is emptied and
			// used again, so a killed process's socket does not linger.
		default:
			used[c.tmp] = true
		}
	}
	for i := 0; ; i++ {
		slot := ""
		if i > 0 {
			slot = fmt.Sprintf("~%d", i)
		}
		if !used[tmpPath(dir, p.spec.Name, slot)] {
			return slot
		}
	}
}

// probe starts the plugin's binary only to read its manifest, and checks it.
func (p *PluginProcess) probe(ctx context.Context) (*pb.Manifest, fileID, error) {
	p.bin.probeMu.Lock()
	defer p.bin.probeMu.Unlock()
	file, _ := statFile(p.Spec().Path)
	c, err := p.launchFor(ctx, launchProbe)
	if err != nil {
		return nil, file, err
	}
	defer killConn(c, true)
	// launchFor refused a binary whose manifest names another plugin.
	return c.manifest, c.file, nil
}

// errNotRunning: there is no process to upgrade.
var errNotRunning = errors.New("not running")

// upgrade takes up the plugin's new binary in place of its running process
// (see the top of this file). It returns errNotRunning, having done
// nothing, when no process runs.
func (p *PluginProcess) upgrade(ctx context.Context) (*Upgrade, error) {
	p.swap.Lock()
	defer p.swap.Unlock()
	p.mu.Lock()
	old := p.cur
	running := p.state == StateRunning && old != nil && !p.stopping
	p.mu.Unlock()
	if !running {
		return nil, errNotRunning
	}
	spec := p.Spec()
	u := &Upgrade{At: time.Now(), Path: spec.Path, From: old.manifest.GetVersion()}
	refuse := func(c *pluginConn, file fileID, err error) (*Upgrade, error) {
		if c != nil {
			p.stopConn(c)
		}
		u.Error = err.Error()
		p.mu.Lock()
		p.bin.last = u
		if file != (fileID{}) {
			p.bin.seen = file
		}
		p.mu.Unlock()
		p.log.Error("new binary refused; the running process serves on", "path", spec.Path, "pid", old.pid, "error", err)
		return u, err
	}
	c, err := p.launchFor(ctx, launchUpgrade)
	if err != nil && givenUp(ctx) {
		return nil, err
	}
	if err != nil {
		file, _ := statFile(spec.Path)
		return refuse(nil, file, err)
	}
	m := c.manifest
	u.To = m.GetVersion()
	var commit func()
	if p.mgr.takeUp != nil {
		var warnings []string
		commit, warnings, err = p.mgr.takeUp(ctx, p, c)
		if err != nil {
			return refuse(c, c.file, err)
		}
		u.Warnings = warnings
	}
	// No agent is configured on the old process from here until the
	// switch: the new one gets every agent the old one has.
	p.cfgMu.Lock()
	defer p.cfgMu.Unlock()
	next := p.configuredFor(m)
	ids := make([]string, 0, len(next))
	for id := range next {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		cctx, cancel := context.WithTimeout(ctx, describeTimeout)
		res, err := c.plugin.Configure(cctx, next[id].req)
		cancel()
		if err != nil {
			return refuse(c, c.file, fmt.Errorf("configure agent %s: %s", id, statusText(err)))
		}
		for _, w := range res.GetWarnings() {
			p.log.Warn(w, "agent_id", id)
		}
	}
	p.mu.Lock()
	if p.stopping {
		p.mu.Unlock()
		p.stopConn(c)
		return nil, fmt.Errorf("plugin %s: the daemon is stopping", p.spec.Name)
	}
	// Calls from here on go to the new process.
	p.cur, p.configured = c, next
	p.bin.manifest, p.bin.seen, p.bin.last = m, c.file, u
	p.bin.draining = append(p.bin.draining, old)
	switch p.state {
	case StateRestarting:
		// The old process died meanwhile; its restart finds this one.
		close(p.ready)
	case StateFailed:
		p.restarts = nil
	}
	p.state = StateRunning
	p.lastErr = nil
	u.Took = time.Since(u.At)
	p.mu.Unlock()
	if commit != nil {
		commit()
	}
	go p.watch(c)
	for _, w := range u.Warnings {
		p.log.Warn(w)
	}
	p.log.Info("plugin upgraded", "from", u.From, "to", u.To, "pid", c.pid, "old_pid", old.pid, "took", u.Took.Round(time.Millisecond))
	go p.drain(old)
	return u, nil
}

// drain stops an old process once its calls in flight finished.
func (p *PluginProcess) drain(old *pluginConn) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	err := old.calls.wait(ctx)
	cancel()
	p.mu.Lock()
	kept := p.bin.draining[:0]
	mine := false
	for _, c := range p.bin.draining {
		if c == old {
			mine = true
			continue
		}
		kept = append(kept, c)
	}
	p.bin.draining = kept
	p.mu.Unlock()
	if !mine {
		return // Stop took it
	}
	if err != nil {
		p.log.Warn("old process still had calls in flight; stopping it with them", "pid", old.pid, "waited", drainTimeout, "calls", old.calls.count())
	}
	p.stopConn(old)
	p.log.Info("old process stopped", "pid", old.pid, "drained_in", time.Since(start).Round(time.Millisecond))
}

// givenUp reports whether a check of a binary was given up (the daemon
// stops) rather than made: the binary was not judged, and is looked at
// again by the next look at the folder. A check cut short by its own
// deadline did judge it: the binary took too long.
func givenUp(ctx context.Context) bool { return errors.Is(ctx.Err(), context.Canceled) }

// refresh checks a new binary of a plugin that has no process running:
// it is read, and a plugin that had failed gets a fresh start for the
// agents it serves.
func (p *PluginProcess) refresh(ctx context.Context) error {
	m, file, err := p.probe(ctx)
	if err != nil && givenUp(ctx) {
		return err
	}
	p.mu.Lock()
	if file != (fileID{}) {
		p.bin.seen = file
	}
	if err != nil {
		p.bin.last = &Upgrade{At: time.Now(), Path: p.spec.Path, Error: err.Error()}
		p.mu.Unlock()
		p.log.Error("new binary refused", "path", p.Spec().Path, "error", err)
		return err
	}
	from := ""
	if p.bin.manifest != nil {
		from = p.bin.manifest.GetVersion()
	}
	p.bin.manifest = m
	p.bin.last = &Upgrade{At: time.Now(), Path: p.spec.Path, From: from, To: m.GetVersion()}
	restart := p.state == StateFailed && len(p.configured) > 0
	if p.state == StateFailed {
		p.state, p.lastErr, p.restarts = StateStopped, nil, nil
	}
	p.mu.Unlock()
	if restart {
		go func() {
			if err := p.Start(context.Background()); err != nil {
				p.log.Error("the new binary failed to start", "error", err)
			}
		}()
	}
	return nil
}

// inflight counts the host's calls in flight on one process, so that an
// upgrade lets them finish there before it stops the process. go-plugin's
// own streams (stdio, the controller) and health checks are not counted:
// they last as long as the process.
type inflight struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to 0; nil while it is 0
}

func (f *inflight) add() {
	f.mu.Lock()
	if f.n == 0 {
		f.idle = make(chan struct{})
	}
	f.n++
	f.mu.Unlock()
}

func (f *inflight) done() {
	f.mu.Lock()
	f.n--
	if f.n == 0 {
		close(f.idle)
		f.idle = nil
	}
	f.mu.Unlock()
}

func (f *inflight) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// wait returns once no call is in flight.
func (f *inflight) wait(ctx context.Context) error {
	for {
		f.mu.Lock()
		idle := f.idle
		f.mu.Unlock()
		if idle == nil {
			return nil
		}
		select {
		case <-idle:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func counted(method string) bool { return strings.HasPrefix(method, "/agenthost.") }

func (f *inflight) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if !counted(method) {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	f.add()
	defer f.done()
	return invoker(ctx, method, req, reply, cc, opts...)
}

func (f *inflight) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	if !counted(method) {
		return streamer(ctx, desc, cc, method, opts...)
	}
	f.add()
	s, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		f.done()
		return nil, err
	}
	var once sync.Once
	end := func() { once.Do(f.done) }
	// A stream ends with its last message or its context.
	stop := context.AfterFunc(ctx, end)
	return &countedStream{ClientStream: s, end: func() { stop(); end() }}, nil
}

type countedStream struct {
	grpc.ClientStream
	end func()
}

func (s *countedStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err != nil {
		s.end()
	}
	return err
}

// takeUp is the daemon's part of an upgrade, before the switch: a new
// database plugin migrates its schema, and the agents whose character
// needs an action or provider the new manifest dropped are named. commit,
// after the switch, gives the agents that use p registries of the new
// manifest.
func (d *Daemon) takeUp(ctx context.Context, p *PluginProcess, c *pluginConn) (commit func(), warnings []string, err error) {
	m := c.manifest
	if m.GetDatabase() {
		if err := d.migrateConn(ctx, p, c); err != nil {
			return nil, nil, err
		}
	}
	for _, a := range d.Agents() {
		reg := a.registry()
		if reg == nil || a.idle() || !reg.Has(p) {
			continue
		}
		warnings = append(warnings, lostNeeds(a, reg, p, m)...)
	}
	return func() { d.refreshAgents(p) }, warnings, nil
}

// lostNeeds names the actions and providers the agent's character uses (in
// its messageExamples) that p serves now and its new manifest m no longer
// offers.
func lostNeeds(a *AgentRuntime, reg *registry, p *PluginProcess, m *pb.Manifest) []string {
	actions, providers := map[string]bool{}, map[string]bool{}
	for _, conv := range a.Character.MessageExamples {
		for _, msg := range conv {
			for _, n := range msg.Content.Actions {
				actions[n] = true
			}
			for _, n := range msg.Content.Providers {
				providers[n] = true
			}
		}
	}
	offers := map[string]bool{}
	for _, s := range m.GetActions() {
		offers["action:"+contract.NormalizeAction(s.GetName())] = true
		for _, sim := range s.GetSimiles() {
			offers["action:"+contract.NormalizeAction(sim)] = true
		}
	}
	for _, s := range m.GetProviders() {
		offers["provider:"+s.GetName()] = true
	}
	var out []string
	for _, n := range slices.Sorted(maps.Keys(actions)) {
		if e := reg.ResolveAction(n); e != nil && e.Plugin == p && !offers["action:"+contract.NormalizeAction(n)] {
			out = append(out, fmt.Sprintf("agent %s: its character uses action %s, which plugin %s %s no longer offers", a.Name, n, p.Name(), m.GetVersion()))
		}
	}
	for _, n := range slices.Sorted(maps.Keys(providers)) {
		for _, e := range reg.Providers {
			if e.Plugin == p && e.Spec.GetName() == n && !offers["provider:"+n] {
				out = append(out, fmt.Sprintf("agent %s: its character uses provider %s, which plugin %s %s no longer offers", a.Name, n, p.Name(), m.GetVersion()))
			}
		}
	}
	return out
}
