package host

import (
	"context"
	"strings"

	"github.com/agenthost/agenthost/internal/contract"
	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/character"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

// Agents kept across restarts. Every agent the daemon runs is stored in the
// database (EnsureAgent) with an enabled flag: set when it starts, cleared
// when it is stopped over the API. On start, after the configured
// characters, the daemon starts the stored agents that are enabled and
// lists the others as stopped. An agent removed over the API stays stored
// (its memories with it) but is marked removed, and is not listed again.

// removedKey is the cache entry that marks a stored agent removed over the
// API. It only counts while the stored agent is disabled: creating or
// starting the agent again enables it, and stopping it clears the mark.
const removedKey = "agenthost:removed"

// storeConn returns the database that holds the stored agents: that of a
// started agent, else the sql plugin (started and migrated), the one the
// `agenthost db` commands use.
func (d *Daemon) storeConn(ctx context.Context) (*PluginProcess, *pluginConn, error) {
	for _, a := range d.Agents() {
		if a.registry() != nil && a.registry().DB != nil {
			return a.db(ctx)
		}
	}
	p, err := d.ResolvePlugin("sql")
	if err != nil {
		return nil, nil, err
	}
	if err := p.Start(ctx); err != nil {
		return nil, nil, err
	}
	if err := d.migrate(ctx, p); err != nil {
		return nil, nil, err
	}
	c, err := p.conn(ctx)
	if err != nil {
		return nil, nil, err
	}
	return p, c, nil
}

// agentStore returns the database of the agent: its own database plugin
// once it has been started, else the stored agents' one.
func (d *Daemon) agentStore(ctx context.Context, a *AgentRuntime) (*PluginProcess, *pluginConn, error) {
	if a.registry() != nil && a.registry().DB != nil {
		return a.db(ctx)
	}
	return d.storeConn(ctx)
}

// storedAgents reads the stored agents, oldest first, but those removed
// over the API.
func (d *Daemon) storedAgents(ctx context.Context) ([]*pb.Agent, error) {
	p, c, err := d.storeConn(ctx)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, contract.DefaultCallTimeout)
	defer cancel()
	res, err := c.db.GetAgents(cctx, &pb.GetAgentsRequest{})
	if err != nil {
		return nil, p.callErr(c, "GetAgents", err)
	}
	var out []*pb.Agent
	for _, rec := range res.GetAgents() {
		if rec.GetEnabled() || !d.markedRemoved(ctx, rec.GetId()) {
			out = append(out, rec)
		}
	}
	return out, nil
}

// defaultCharacters decides whether the built-in default character runs:
// as it is built in when the database stores no agent (a first start), as
// it is stored (with the changes made over the API) when it is stored
// enabled, not at all otherwise: the stored agents are then the ones the
// user runs, and a default agent stopped or removed over the API stays so.
func (d *Daemon) defaultCharacters(stored []*pb.Agent) []*sdk.Character {
	if len(stored) == 0 {
		return d.cfg.Characters
	}
	var out []*sdk.Character
	for _, ch := range d.cfg.Characters {
		for _, rec := range stored {
			if rec.GetId() != ch.AgentID() && !strings.EqualFold(rec.GetName(), ch.Name) {
				continue
			}
			if rec.GetEnabled() {
				if sc, err := d.storedCharacter(rec); err == nil {
					ch = sc
				} else {
					d.log.Warn("the stored default character is not valid; running the built-in one", "error", err)
				}
				out = append(out, ch)
			}
			break
		}
	}
	if len(out) == 0 {
		d.log.Info("the database stores agents: running those, not the default character", "stored", len(stored))
	}
	return out
}

// storedCharacter is the character of a stored agent, with its stored id.
func (d *Daemon) storedCharacter(rec *pb.Agent) (*sdk.Character, error) {
	ch, err := character.Parse(rec.GetCharacterJson())
	if err != nil {
		return nil, err
	}
	if id := rec.GetId(); ch.AgentID() != id && sdk.IsUUID(id) {
		ch.ID = id
	}
	character.ApplyEnv(ch, d.cfg.Env)
	return ch, nil
}

// storedToStart lists the stored agents that are not among the
// configured characters: the enabled ones to start, the disabled ones to
// list as stopped. A stored agent whose character is not valid is logged and left
// out.
func (d *Daemon) storedToStart(stored []*pb.Agent, configured []*sdk.Character) []pendingStart {
	taken := map[string]bool{}
	for _, ch := range configured {
		taken[ch.AgentID()] = true
		taken["name:"+strings.ToLower(ch.Name)] = true
	}
	var out []pendingStart
	for _, rec := range stored {
		id, name := rec.GetId(), rec.GetName()
		if taken[id] {
			continue // configured: its character file won
		}
		if taken["name:"+strings.ToLower(name)] {
			d.log.Warn("a stored agent has the name of a configured one; not started", "agent", name, "id", id)
			continue
		}
		ch, err := d.storedCharacter(rec)
		if err != nil {
			d.log.Error("a stored agent's character is not valid; not started", "agent", name, "id", id, "error", err)
			continue
		}
		out = append(out, pendingStart{ch: ch, stored: rec, idle: !rec.GetEnabled()})
	}
	return out
}

// markedRemoved reports whether the stored agent was removed over the API.
func (d *Daemon) markedRemoved(ctx context.Context, id string) bool {
	_, c, err := d.storeConn(ctx)
	if err != nil {
		return false
	}
	cctx, cancel := context.WithTimeout(ctx, contract.DefaultCallTimeout)
	defer cancel()
	res, err := c.db.GetCache(cctx, &pb.GetCacheRequest{AgentId: id, Key: removedKey})
	return err == nil && res.GetFound()
}

// storeAgent stores the agent with its current character, enabled or not:
// whether it runs after a restart.
func (d *Daemon) storeAgent(ctx context.Context, a *AgentRuntime, enabled bool) error {
	p, c, err := d.agentStore(ctx, a)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, contract.DefaultCallTimeout)
	defer cancel()
	if _, err := c.db.EnsureAgent(cctx, &pb.EnsureAgentRequest{Agent: &pb.Agent{Id: a.ID, Name: a.Name, CharacterJson: a.charJSON, Enabled: enabled}}); err != nil {
		return p.callErr(c, "EnsureAgent", err)
	}
	if !enabled {
		d.clearRemoved(cctx, c, a.ID)
	}
	return nil
}

// storeEnabled sets the stored agent's enabled flag, storing the agent
// whole if it is not stored yet.
func (d *Daemon) storeEnabled(ctx context.Context, a *AgentRuntime, enabled bool) error {
	_, c, err := d.agentStore(ctx, a)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, contract.DefaultCallTimeout)
	defer cancel()
	if _, err := c.db.UpdateAgent(cctx, &pb.UpdateAgentRequest{Id: a.ID, Enabled: &enabled}); err != nil {
		// Not stored yet, or a database plugin without UpdateAgent.
		return d.storeAgent(ctx, a, enabled)
	}
	if !enabled {
		d.clearRemoved(cctx, c, a.ID)
	}
	return nil
}

// storeRemoved stores the agent disabled and marked removed: it is not
// listed after a restart, and its memories stay stored.
func (d *Daemon) storeRemoved(ctx context.Context, a *AgentRuntime) error {
	p, c, err := d.agentStore(ctx, a)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, contract.DefaultCallTimeout)
	defer cancel()
	if _, err := c.db.EnsureAgent(cctx, &pb.EnsureAgentRequest{Agent: &pb.Agent{Id: a.ID, Name: a.Name, CharacterJson: a.charJSON, Enabled: false}}); err != nil {
		return p.callErr(c, "EnsureAgent", err)
	}
	if _, err := c.db.SetCache(cctx, &pb.SetCacheRequest{AgentId: a.ID, Key: removedKey, Value: []byte("true")}); err != nil {
		return p.callErr(c, "SetCache", err)
	}
	return nil
}

func (d *Daemon) clearRemoved(ctx context.Context, c *pluginConn, id string) {
	if _, err := c.db.DeleteCache(ctx, &pb.DeleteCacheRequest{AgentId: id, Key: removedKey}); err != nil {
		d.log.Debug("could not clear the removed mark of a stored agent", "id", id, "error", err)
	}
}
