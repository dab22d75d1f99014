package host

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/character"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/hashicorp/go-hclog"
)

// AgentStatus is where an agent is in its life.
type AgentStatus string

// The states of an agent.
const (
	AgentStarting AgentStatus = "starting"
	AgentRunning  AgentStatus = "running"
	AgentStopped  AgentStatus = "stopped"
	AgentFailed   AgentStatus = "failed"
)

// AgentRuntime is one agent as the daemon runs it: its character, its
// plugins' registry and the runs in flight. (sdk.Agent is a plugin's
// handle on it.)
type AgentRuntime struct {
	ID        string
	Name      string
	Character *sdk.Character

	d        *Daemon
	log      hclog.Logger
	charJSON []byte
	// listing is its number among the agents the daemon listed (under
	// d.mu).
	listing uint64
	// reg is the registry of its plugins' manifests, replaced when one of
	// them is upgraded (registry.go).
	reg atomic.Pointer[registry]

	mu     sync.Mutex
	status AgentStatus
	err    error
	// pluginSettings is what each plugin was given (see settingsFor).
	pluginSettings map[*PluginProcess]map[string]string

	states *stateCache
	// ensured skips storing a conversation's sender and room again.
	ensured ensuredCache
	// started is set on the placeholder listed while the daemon starts
	// the agent, and closed once the start ended (see startup.go).
	started chan struct{}
}

// setting resolves one of the character's settings for the host's own
// use, as elizaOS does (secrets, settings, settings.secrets, then the
// environment).
func (a *AgentRuntime) setting(key string) string {
	v, _ := character.Setting(a.Character, key, a.d.cfg.Env)
	return v
}

// registry is the agent's view of its plugins' manifests, or nil before it
// started.
func (a *AgentRuntime) registry() *registry { return a.reg.Load() }

// settingsOf is what plugin p was given for the agent.
func (a *AgentRuntime) settingsOf(p *PluginProcess) map[string]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pluginSettings[p]
}

func (a *AgentRuntime) setSettings(p *PluginProcess, s map[string]string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pluginSettings == nil {
		a.pluginSettings = map[*PluginProcess]map[string]string{}
	}
	a.pluginSettings[p] = s
}

// Status reports the agent's status and, if it failed, why.
func (a *AgentRuntime) Status() (AgentStatus, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.status, a.err
}

func (a *AgentRuntime) setStatus(s AgentStatus, err error) {
	a.mu.Lock()
	a.status, a.err = s, err
	a.mu.Unlock()
}

// Plugins names the agent's plugins in order.
func (a *AgentRuntime) Plugins() []string {
	if a.registry() == nil {
		return nil
	}
	out := make([]string, len(a.registry().Plugins))
	for i, p := range a.registry().Plugins {
		out[i] = p.Name()
	}
	return out
}

// db returns the database plugin's client.
func (a *AgentRuntime) db(ctx context.Context) (*PluginProcess, *pluginConn, error) {
	if a.registry() == nil || a.registry().DB == nil {
		return nil, nil, fmt.Errorf("agent %s has no database plugin", a.Name)
	}
	c, err := a.registry().DB.conn(ctx)
	return a.registry().DB, c, err
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
func (a *AgentRuntime) Database(ctx context.Context) (pb.DatabaseClient, error) {
	_, c, err := a.db(ctx)
	if err != nil {
		return nil, err
	}
	return c.db, nil
}
