package host

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/agenthost/agenthost/internal/contract"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

// registry is one agent's view of its plugins' manifests: which plugin
// serves which action, provider, evaluator, model, event and source. It is
// the contract's, so that sdk/plugintest resolves names as the host does.
type registry = contract.Registry[*PluginProcess]

// buildRegistry merges the plugins' manifests in the character's order.
func buildRegistry(plugins []*PluginProcess) (*registry, error) { return contract.NewRegistry(plugins) }

// registryOf returns the registry of an agent with these plugins, in this
// order. Agents with the same plugins share one: it depends on the
// plugins' manifests alone and is never changed, and a thousand agents
// need not hold a thousand copies. A plugin that restarts (or changes its
// manifest) gets new registries.
//
// The key also names the plugin set to the plugins (ConfigureRequest's
// plugin_set), so that they too can share what they learn of it.
func (d *Daemon) registryOf(plugins []*PluginProcess) (*registry, string, error) {
	set := pluginSetKey(plugins, (*PluginProcess).Manifest)
	if r, ok := d.registries.Load(set); ok {
		return r.(*registry), set, nil
	}
	r, err := buildRegistry(plugins)
	if err != nil {
		return nil, "", err
	}
	r2, _ := d.registries.LoadOrStore(set, r)
	return r2.(*registry), set, nil
}

// pluginSetKey names plugins with these manifests, in this order. An
// upgrade names the set its new manifest will make before it is in use.
func pluginSetKey(plugins []*PluginProcess, manifest func(*PluginProcess) *pb.Manifest) string {
	var key strings.Builder
	for _, p := range plugins {
		fmt.Fprintf(&key, "%s@%p;", p.Name(), manifest(p))
	}
	sum := sha256.Sum256([]byte(key.String()))
	return hex.EncodeToString(sum[:12])
}

// refreshAgents gives the running agents that use p the registry of its
// manifest now, and the settings it was configured with: after an upgrade,
// or a restart that brought another version.
func (d *Daemon) refreshAgents(p *PluginProcess) {
	for _, a := range d.Agents() {
		reg := a.registry()
		if reg == nil || a.idle() || !reg.Has(p) {
			continue
		}
		nreg, _, err := d.registryOf(reg.Plugins)
		if err != nil {
			a.log.Error("the agent keeps its plugins' old manifests", "plugin", p.Name(), "error", err)
			continue
		}
		a.reg.Store(nreg)
		if s, ok := p.agentSettings(a.ID); ok {
			a.setSettings(p, s)
		}
	}
}
