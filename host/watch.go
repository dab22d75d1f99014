package host

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// Hot-plug. The daemon looks at its plugin folders (./plugins,
// ~/.agenthost/plugins, AGENTHOST_PLUGIN_PATH) twice a second. A binary is
// taken once it is executable and its size, modification time and inode
// were the same at two looks in a row: a file still being written, or
// copied and then made executable, is left until it is whole, and one
// renamed over the old file is whole at once. A new plugin is started to
// read its manifest and becomes known (GET /api/plugins/NAME, agents may
// use it); a changed one is upgraded in place (upgrade.go); a removed one
// is reported, and serves the agents that use it until they stop. A binary
// that fails is refused, and not tried again until it changes, plugins.lock
// changes, or a reload asks. ReloadPlugins (POST /api/plugins/reload,
// `agenthost plugins reload`, SIGHUP) looks at once and takes the files as
// they are.

// WatchInterval is how often the plugin folders are looked at.
const WatchInterval = 500 * time.Millisecond

// probeTimeout bounds the start of a new binary, its checks included.
const probeTimeout = 60 * time.Second

// ReloadReport says what a look at the plugin folders changed.
type ReloadReport struct {
	// Added are plugins found, now known.
	Added []string `json:"added"`
	// Upgraded are plugins whose running process was replaced by a
	// process of their new binary.
	Upgraded []string `json:"upgraded"`
	// Updated are plugins with no process running whose new binary was
	// read.
	Updated []string `json:"updated"`
	// Removed are plugins whose binary is gone.
	Removed []string `json:"removed"`
	// Refused are binaries that failed their checks.
	Refused []RefusedBinary `json:"refused"`
}

// RefusedBinary is a binary the daemon did not take, and why.
type RefusedBinary struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

func (r *ReloadReport) empty() bool {
	return len(r.Added)+len(r.Upgraded)+len(r.Updated)+len(r.Removed)+len(r.Refused) == 0
}

// diskFile is a plugin binary as a look at the folders saw it.
type diskFile struct {
	path string
	id   fileID
}

// refusal remembers a refused binary, so that it is not tried again at
// every look.
type refusal struct {
	file   diskFile
	lock   fileID
	reason string
}

type watcher struct {
	m    *Manager
	dirs []string

	// mu makes one look at a time (the poll, a reload).
	mu      sync.Mutex
	last    map[string]diskFile
	gone    map[string]bool // missing at the last look
	refused map[string]refusal
	warned  map[string]bool

	// ctx ends with the daemon: a look under way gives up its starts.
	ctx    context.Context
	cancel context.CancelFunc
	exited chan struct{}
}

// Watch starts looking at the plugin folders dirs every interval; with a
// negative interval, only when asked (ReloadPlugins).
func (m *Manager) Watch(dirs []string, interval time.Duration) {
	abs := make([]string, 0, len(dirs))
	for _, d := range dirs {
		if a, err := filepath.Abs(d); err == nil {
			abs = append(abs, a)
		}
	}
	w := &watcher{m: m, dirs: abs, last: map[string]diskFile{}, gone: map[string]bool{}, refused: map[string]refusal{},
		warned: map[string]bool{}, exited: make(chan struct{})}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	w.last, _ = w.scan()
	m.pmu.Lock()
	m.watch = w
	m.pmu.Unlock()
	if interval <= 0 {
		close(w.exited)
		return
	}
	go w.loop(interval)
}

func (w *watcher) loop(interval time.Duration) {
	defer close(w.exited)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-w.ctx.Done():
			return
		case <-t.C:
			w.mu.Lock()
			rep, _ := w.look(w.ctx, "", false)
			w.mu.Unlock()
			if !rep.empty() {
				w.m.log.Debug("plugin folders changed", "added", rep.Added, "upgraded", rep.Upgraded, "updated", rep.Updated,
					"removed", rep.Removed, "refused", len(rep.Refused))
			}
		}
	}
}

// stop ends the looks. One under way may be starting a binary, which
// go-plugin waits for up to its start timeout: the daemon stops without
// waiting long for it (the process dies with the daemon).
func (w *watcher) stop() {
	w.cancel()
	select {
	case <-w.exited:
	case <-time.After(time.Second):
	}
}

// watcher is the manager's watcher, nil before Watch.
func (m *Manager) watcher() *watcher {
	m.pmu.RLock()
	defer m.pmu.RUnlock()
	return m.watch
}

// ErrPluginNotFound: a reload names a plugin that is neither known nor in
// the plugin folders.
var ErrPluginNotFound = errors.New("no such plugin")

// ReloadPlugins looks at the plugin folders now and takes what changed, or
// only plugin name's binary when name is not empty.
func (m *Manager) ReloadPlugins(ctx context.Context, name string) (*ReloadReport, error) {
	w := m.watcher()
	if w == nil {
		return nil, errors.New("the plugin folders are not watched")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.look(ctx, name, true)
}

// scan lists the plugin binaries in the folders by name, as Discover
// would choose them: the first folder wins a name.
func (w *watcher) scan() (map[string]diskFile, []string) {
	specs, warnings, err := Discover("", nil, w.dirs)
	if err != nil {
		warnings = append(warnings, err.Error())
	}
	out := make(map[string]diskFile, len(specs))
	for _, s := range specs {
		id, err := statFile(s.Path)
		if err != nil {
			continue
		}
		out[s.Name] = diskFile{path: s.Path, id: id}
	}
	return out, warnings
}

// look compares the folders with what the daemon runs and acts on the
// difference. force takes files as they are (a reload): without it, a file
// must look the same twice in a row, and a refused one is not tried again
// until it or plugins.lock changes.
func (w *watcher) look(ctx context.Context, only string, force bool) (*ReloadReport, error) {
	now, warnings := w.scan()
	prev := w.last
	w.last = now
	for _, msg := range warnings {
		if !w.warned[msg] {
			w.warned[msg] = true
			w.m.log.Warn(msg)
		}
	}
	var lockID fileID
	if path := w.m.lockPath(); path != "" {
		lockID, _ = statFile(path)
	}
	rep := &ReloadReport{Added: []string{}, Upgraded: []string{}, Updated: []string{}, Removed: []string{}, Refused: []RefusedBinary{}}
	names := make([]string, 0, len(now))
	for name := range now {
		names = append(names, name)
	}
	sort.Strings(names)
	found := false
	for _, name := range names {
		if only != "" && name != only {
			continue
		}
		found = true
		f := now[name]
		if !f.id.Exec {
			continue
		}
		if old, ok := prev[name]; !force && (!ok || old.path != f.path || !old.id.same(f.id)) {
			continue // not whole yet, maybe
		}
		if r, ok := w.refused[name]; ok && !force && r.file.path == f.path && r.file.id.same(f.id) && r.lock.same(lockID) {
			continue
		}
		delete(w.refused, name)
		w.take(ctx, name, f, rep)
		for _, r := range rep.Refused {
			if r.Name == name {
				w.refused[name] = refusal{file: f, lock: lockID, reason: r.Reason}
			}
		}
	}
	for _, p := range w.m.Plugins() {
		spec := p.Spec()
		if spec.Bundled || spec.Attach != nil || (only != "" && spec.Name != only) {
			continue
		}
		if _, ok := now[spec.Name]; ok {
			delete(w.gone, spec.Name)
			continue
		}
		found = true
		if !force && !w.gone[spec.Name] {
			// Gone twice in a row, or it was a moment between a remove and
			// a copy.
			w.gone[spec.Name] = true
			continue
		}
		delete(w.gone, spec.Name)
		if !p.Removed() {
			w.remove(p)
			rep.Removed = append(rep.Removed, spec.Name)
		}
	}
	if only != "" && !found && w.m.Plugin(only) == nil {
		return rep, fmt.Errorf("plugin %q: %w: no agenthost-plugin-%s in the plugin folders (%s)", only, ErrPluginNotFound, only, w.dirsText())
	}
	return rep, nil
}

func (w *watcher) dirsText() string {
	if len(w.dirs) == 0 {
		return "none"
	}
	out := ""
	for i, d := range w.dirs {
		if i > 0 {
			out += ", "
		}
		out += d
	}
	return out
}

// take acts on the binary f of plugin name when it is not the one the
// daemon has.
func (w *watcher) take(ctx context.Context, name string, f diskFile, rep *ReloadReport) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	refuse := func(err error) {
		rep.Refused = append(rep.Refused, RefusedBinary{Name: name, Path: f.path, Reason: err.Error()})
	}
	p := w.m.Plugin(name)
	if p == nil {
		// A new plugin: read and checked before it is known.
		np := w.m.newPluginProcess(PluginSpec{Name: name, Path: f.path})
		m, _, err := np.probe(ctx)
		if err != nil && givenUp(ctx) {
			return
		}
		if err != nil {
			w.m.log.Error("new plugin binary refused", "plugin", name, "path", f.path, "error", err)
			w.m.refuse(name, f.path, err)
			refuse(err)
			return
		}
		np.described(m, f.id)
		w.m.forgetRefusal(name)
		w.m.add(np)
		w.m.log.Info("plugin found", "plugin", name, "version", m.GetVersion(), "path", f.path)
		rep.Added = append(rep.Added, name)
		return
	}
	spec := p.Spec()
	if spec.Bundled || spec.Attach != nil {
		return // a bundled or attached plugin wins its name (Discover warns)
	}
	p.mu.Lock()
	wasRemoved := p.bin.removed
	p.bin.removed = false
	same := spec.Path == f.path && p.bin.seen.same(f.id)
	if !same {
		p.spec.Path = f.path
	}
	p.mu.Unlock()
	if wasRemoved {
		p.log.Info("plugin binary is back", "path", f.path)
	}
	if same {
		// Tried again only when it was refused: the look was asked for, or
		// plugins.lock changed since (look decides).
		if r := p.LastUpgrade(); r == nil || r.Error == "" {
			return
		}
	}
	_, err := p.upgrade(ctx)
	switch {
	case err == nil:
		rep.Upgraded = append(rep.Upgraded, name)
	case errors.Is(err, errNotRunning):
		if err := p.refresh(ctx); err != nil {
			refuse(err)
			return
		}
		rep.Updated = append(rep.Updated, name)
	default:
		refuse(err)
	}
}

// remove reports a plugin whose binary is gone; see dropRemoved.
func (w *watcher) remove(p *PluginProcess) {
	p.mu.Lock()
	p.bin.removed = true
	users := make([]string, 0, len(p.configured))
	for id := range p.configured {
		users = append(users, id)
	}
	running := p.cur != nil
	p.mu.Unlock()
	sort.Strings(users)
	if running && len(users) > 0 {
		p.log.Warn("plugin binary removed; its process serves the agents that use it until they stop, and no new ones",
			"path", p.Spec().Path, "agents", users)
		return
	}
	p.log.Warn("plugin binary removed; the plugin is no longer known", "path", p.Spec().Path)
	w.m.dropRemoved(p)
}

// refuse remembers why a new binary was not taken, for GET
// /api/plugins/NAME.
func (m *Manager) refuse(name, path string, err error) {
	m.pmu.Lock()
	defer m.pmu.Unlock()
	if m.refusals == nil {
		m.refusals = map[string]RefusedBinary{}
	}
	m.refusals[name] = RefusedBinary{Name: name, Path: path, Reason: err.Error()}
}

func (m *Manager) forgetRefusal(name string) {
	m.pmu.Lock()
	defer m.pmu.Unlock()
	delete(m.refusals, name)
}

// Refusal is why the binary of a plugin the daemon does not know was
// refused, if it was.
func (m *Manager) Refusal(name string) (RefusedBinary, bool) {
	m.pmu.RLock()
	defer m.pmu.RUnlock()
	r, ok := m.refusals[name]
	return r, ok
}
