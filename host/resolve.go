package host

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/agenthost/agenthost/sdk"
)

// ResolvePlugin maps a name from a character's plugins list to a known
// plugin: a short name (sql), an elizaOS package name
// (@elizaos/plugin-sql), an executable name (agenthost-plugin-sql) or an
// alias from a manifest.
func (d *Daemon) ResolvePlugin(name string) (*PluginProcess, error) {
	return resolvePlugin(d.mgr, name)
}

func resolvePlugin(m *Manager, name string) (*PluginProcess, error) {
	n := strings.TrimSpace(name)
	// A plugin whose binary was removed serves the agents that use it
	// until they stop, and no others.
	if p := m.Plugin(n); p != nil && !p.Removed() {
		return p, nil
	}
	for _, p := range m.Plugins() {
		if !p.Removed() && pluginNamed(p, n) {
			return p, nil
		}
	}
	var known []string
	for _, p := range m.Plugins() {
		if !p.Removed() {
			known = append(known, p.Name())
		}
	}
	sort.Strings(known)
	refused := ""
	if r, ok := m.Refusal(n); ok {
		refused = fmt.Sprintf("; its binary %s was refused: %s", r.Path, r.Reason)
	}
	return nil, fmt.Errorf("unknown plugin %q%s; the plugins found are: %s (folders searched: bundled, %s; a binary put there is found within seconds)",
		name, refused, strings.Join(known, ", "), strings.Join(m.searchedDirs(), ", "))
}

func (m *Manager) searchedDirs() []string {
	if w := m.watcher(); w != nil && len(w.dirs) > 0 {
		return w.dirs
	}
	seen := map[string]bool{}
	var out []string
	for _, p := range m.Plugins() {
		s := p.Spec()
		if s.Bundled || s.Attach != nil {
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
