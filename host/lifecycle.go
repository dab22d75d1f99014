package host

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/character"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

// The agent lifecycle beyond the daemon's start: agents created, started,
// stopped, changed and removed while the daemon runs (through the API, the
// CLI or the web page). A stopped agent stays listed; its plugins forget it
// (Unconfigure) and the Runtime service refuses calls for it.

// Errors of the lifecycle methods.
var (
	ErrAgentNotFound = errors.New("no such agent")
	ErrAgentExists   = errors.New("an agent with this id or name exists")
	// ErrUnknownPlugin: a character names a plugin the daemon did not find.
	ErrUnknownPlugin = errors.New("unknown plugin")
)

// unknownPluginError keeps the resolver's message (which names the plugin
// and lists those found) and matches ErrUnknownPlugin.
type unknownPluginError struct{ err error }

func (e unknownPluginError) Error() string   { return e.err.Error() }
func (e unknownPluginError) Unwrap() []error { return []error{e.err, ErrUnknownPlugin} }

// checkPlugins refuses a character that names a plugin the daemon does not
// have, before anything is stored or stopped: an agent created or changed
// that way could never start.
func (d *Daemon) checkPlugins(ch *sdk.Character) error {
	for _, name := range d.pluginNames(ch) {
		if _, err := d.ResolvePlugin(name); err != nil {
			return fmt.Errorf("agent %s: %w", ch.Name, unknownPluginError{err})
		}
	}
	return nil
}

// idle reports whether the agent is stopped or failed: not running and not
// on its way.
func (a *AgentRuntime) idle() bool {
	st, _ := a.Status()
	return st == AgentStopped || st == AgentFailed
}

// placeholder reports whether a is listed only while the daemon starts
// it: the agent that starts takes its place.
func (a *AgentRuntime) placeholder() bool { return a.started != nil }

// addAgent lists a started agent, in the place of its stopped self if any.
func (d *Daemon) addAgent(a *AgentRuntime) { d.addAgents([]*AgentRuntime{a}) }

// addAgents lists agents under one lock: an agent already listed under
// the same id is replaced in its place, a new one goes last.
func (d *Daemon) addAgents(as []*AgentRuntime) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, a := range as {
		d.listings++
		a.listing = d.listings
		d.byID[a.ID] = a
		if i, ok := d.listedAt[a.ID]; ok {
			d.agents[i] = a
			continue
		}
		d.listedAt[a.ID] = len(d.agents)
		d.agents = append(d.agents, a)
	}
}

// dropAgent forgets an agent that failed to start; its stopped self, if
// listed, stays and says why.
func (d *Daemon) dropAgent(a *AgentRuntime, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if i, ok := d.listedAt[a.ID]; ok {
		x := d.agents[i]
		d.byID[a.ID] = x
		x.setStatus(AgentFailed, err)
		return
	}
	if d.byID[a.ID] == a {
		delete(d.byID, a.ID)
	}
}

// newIdleAgent makes the stopped agent of a character.
func (d *Daemon) newIdleAgent(ch *sdk.Character) (*AgentRuntime, error) {
	charJSON, err := jsonMarshal(ch)
	if err != nil {
		return nil, fmt.Errorf("agent %s: encode character: %w", ch.Name, err)
	}
	return &AgentRuntime{ID: ch.AgentID(), Name: ch.Name, Character: ch, d: d, charJSON: charJSON, status: AgentStopped,
		log: d.log.Named("agent").With("agent", ch.Name), states: newStateCache(256)}, nil
}

// nameTaken reports whether another agent than id has this name.
func (d *Daemon) nameTaken(name, id string) bool {
	for _, a := range d.Agents() {
		if a.ID != id && strings.EqualFold(a.Name, name) {
			return true
		}
	}
	return false
}

// CreateAgent adds an agent for a character, started if start is true.
// Its id or name must be new.
func (d *Daemon) CreateAgent(ctx context.Context, ch *sdk.Character, start bool) (*AgentRuntime, error) {
	d.api.life.Lock()
	defer d.api.life.Unlock()
	if d.agentByID(ch.AgentID()) != nil || d.nameTaken(ch.Name, "") {
		return nil, fmt.Errorf("agent %s (%s): %w", ch.Name, ch.AgentID(), ErrAgentExists)
	}
	if err := d.checkPlugins(ch); err != nil {
		return nil, err
	}
	character.ApplyEnv(ch, d.cfg.Env)
	if start && d.cl == nil {
		a, err := d.StartAgent(ctx, ch)
		if err != nil {
			return nil, err
		}
		d.api.agentChanged(a)
		return a, nil
	}
	a, err := d.newIdleAgent(ch)
	if err != nil {
		return nil, err
	}
	// Stored first: an agent that could not be would be gone after a
	// restart, so it is not created at all. (In a cluster, one created
	// started is stored enabled, and the cluster places it.)
	if err := d.storeAgent(ctx, a, start); err != nil {
		return nil, fmt.Errorf("store agent %s: %w", ch.Name, err)
	}
	d.addAgent(a)
	d.api.agentChanged(a)
	if start {
		return d.placeWanted(ctx, a), nil
	}
	d.agentsChanged()
	return a, nil
}

// StartAgentByName starts a listed agent that is stopped or failed; a
// running one is left as it is.
func (d *Daemon) StartAgentByName(ctx context.Context, idOrName string) (*AgentRuntime, error) {
	d.api.life.Lock()
	defer d.api.life.Unlock()
	a := d.Agent(idOrName)
	if a == nil {
		return nil, fmt.Errorf("agent %q: %w", idOrName, ErrAgentNotFound)
	}
	if !a.idle() {
		return a, nil
	}
	if d.cl != nil && !d.cl.Holds(a.ID) {
		// Placed by the cluster; one held here (it failed to start)
		// starts here again, below.
		if err := d.storeEnabled(ctx, a, true); err != nil {
			return nil, fmt.Errorf("store agent %s enabled: %w", a.Name, err)
		}
		return d.placeWanted(ctx, a), nil
	}
	started, err := d.StartAgent(ctx, a.Character)
	d.api.agentChanged(d.Agent(a.ID))
	if err != nil {
		return nil, err
	}
	return started, nil
}

// StopAgent stops a running agent: it answers no more messages, its
// plugins forget it, and it stays listed so that it can be started again.
// It is stored disabled: it stays stopped after a restart. A failed agent
// becomes stopped.
func (d *Daemon) StopAgent(ctx context.Context, idOrName string) (*AgentRuntime, error) {
	d.api.life.Lock()
	defer d.api.life.Unlock()
	a := d.Agent(idOrName)
	if a == nil {
		return nil, fmt.Errorf("agent %q: %w", idOrName, ErrAgentNotFound)
	}
	d.stopAgent(ctx, a)
	if st, _ := a.Status(); st == AgentFailed {
		a.setStatus(AgentStopped, nil)
		d.api.agentChanged(a)
	}
	if err := d.storeEnabled(ctx, a, false); err != nil {
		a.log.Warn("could not store the agent disabled; it starts again after a restart", "error", err)
	}
	if d.cl != nil {
		d.setWanted(a.ID, false)
		d.agentsChanged()
	}
	return a, nil
}

func (d *Daemon) stopAgent(ctx context.Context, a *AgentRuntime) {
	if a.idle() {
		return
	}
	a.setStatus(AgentStopped, nil)
	if a.registry() != nil {
		for _, p := range a.registry().Plugins {
			p.Unconfigure(ctx, a.ID)
		}
	}
	a.log.Info("agent stopped")
	d.api.agentChanged(a)
}

// RemoveAgent stops an agent and forgets it. Its stored memories stay in
// the database; the stored agent is marked disabled and removed, and is not
// listed after a restart.
func (d *Daemon) RemoveAgent(ctx context.Context, idOrName string) error {
	d.api.life.Lock()
	defer d.api.life.Unlock()
	a := d.Agent(idOrName)
	if a == nil {
		return fmt.Errorf("agent %q: %w", idOrName, ErrAgentNotFound)
	}
	d.stopAgent(ctx, a)
	if err := d.storeRemoved(ctx, a); err != nil {
		a.log.Warn("could not mark the stored agent removed", "error", err)
	}
	d.unlist(a)
	a.log.Info("agent removed")
	d.api.agentRemoved(a)
	if d.cl != nil {
		d.setWanted(a.ID, false)
		d.agentsChanged()
	}
	return nil
}

// redacted stands for a secret's value in what the API shows; a patch that
// sends it back keeps the stored value.
const redacted = "[redacted]"

// UpdateAgent merges patch into the agent's character: top-level keys are
// replaced (null removes one), "settings" and "secrets" are merged key by
// key. The id stays. A running agent is restarted with the new character.
func (d *Daemon) UpdateAgent(ctx context.Context, idOrName string, patch map[string]json.RawMessage) (*AgentRuntime, error) {
	d.api.life.Lock()
	defer d.api.life.Unlock()
	a := d.Agent(idOrName)
	if a == nil {
		return nil, fmt.Errorf("agent %q: %w", idOrName, ErrAgentNotFound)
	}
	merged, err := mergeCharacter(a.charJSON, a.ID, patch)
	if err != nil {
		return nil, err
	}
	ch, err := character.Parse(merged)
	if err != nil {
		return nil, err
	}
	if ch.AgentID() != a.ID {
		return nil, fmt.Errorf("%w: the id of an agent cannot change (%s → %s)", sdk.ErrInvalid, a.ID, ch.AgentID())
	}
	if d.nameTaken(ch.Name, a.ID) {
		return nil, fmt.Errorf("name %q: %w", ch.Name, ErrAgentExists)
	}
	if err := d.checkPlugins(ch); err != nil {
		return nil, err
	}
	character.ApplyEnv(ch, d.cfg.Env)
	// (In a cluster, an agent held here that failed to start is tried
	// again with its new character.)
	wasRunning := !a.idle() || (d.cl != nil && d.cl.Holds(a.ID))
	d.stopAgent(ctx, a)
	idle, err := d.newIdleAgent(ch)
	if err != nil {
		return nil, err
	}
	if !wasRunning {
		if err := d.storeAgent(ctx, idle, false); err != nil {
			return nil, fmt.Errorf("store the changed character of agent %s: %w", ch.Name, err)
		}
		d.addAgent(idle)
		d.api.agentChanged(idle)
		d.agentsChanged()
		return idle, nil
	}
	d.addAgent(idle)
	started, err := d.StartAgent(ctx, ch)
	d.api.agentChanged(d.Agent(a.ID))
	d.agentsChanged()
	if err != nil {
		// Keep the change: the agent is tried with it after a restart.
		if serr := d.storeAgent(ctx, idle, true); serr != nil {
			idle.log.Warn("could not store the changed character", "error", serr)
		}
		return nil, err
	}
	return started, nil
}

// mergeCharacter applies a patch to a character's JSON; see UpdateAgent.
func mergeCharacter(current []byte, id string, patch map[string]json.RawMessage) ([]byte, error) {
	doc := map[string]json.RawMessage{}
	if err := json.Unmarshal(current, &doc); err != nil {
		return nil, fmt.Errorf("stored character: %w", err)
	}
	for k, v := range patch {
		if k == "settings" || k == "secrets" {
			if mv, err := mergeObject(doc[k], v, k == "secrets"); err == nil {
				v = mv
			} else {
				return nil, err
			}
		}
		if isJSONNull(v) {
			delete(doc, k)
			continue
		}
		doc[k] = v
	}
	if _, ok := doc["id"]; !ok {
		doc["id"], _ = json.Marshal(id)
	}
	return json.Marshal(doc)
}

func isJSONNull(v json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(v), []byte("null")) }

// mergeObject merges one level of a JSON object; a value that is not an
// object on either side is replaced whole and left to validation.
func mergeObject(old, patch json.RawMessage, secrets bool) (json.RawMessage, error) {
	var o, p map[string]json.RawMessage
	if json.Unmarshal(patch, &p) != nil || p == nil {
		return patch, nil
	}
	if len(old) == 0 || json.Unmarshal(old, &o) != nil || o == nil {
		o = map[string]json.RawMessage{}
	}
	for k, v := range p {
		switch {
		case isJSONNull(v):
			delete(o, k)
		case isRedacted(v):
			// keep the stored secret
		case k == "secrets" && !secrets:
			mv, err := mergeObject(o[k], v, true)
			if err != nil {
				return nil, err
			}
			o[k] = mv
		default:
			o[k] = v
		}
	}
	return json.Marshal(o)
}

func isRedacted(v json.RawMessage) bool {
	var s string
	return json.Unmarshal(v, &s) == nil && s == redacted
}

// ClearMemories deletes the agent's memories of one room, or of every room
// when roomID is empty, and says how many. Each room that had some is then
// announced to the agent's plugins with CHANNEL_CLEARED, as elizaOS's
// message bus does when a channel is cleared, before the call returns: a
// plugin that keeps a room's messages (bootstrap does, for a moment)
// forgets them before the next message comes.
func (d *Daemon) ClearMemories(ctx context.Context, a *AgentRuntime, roomID string) (int64, error) {
	p, c, err := a.db(ctx)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	rooms := []string{roomID}
	if roomID == "" {
		res, err := c.db.GetRooms(ctx, &pb.GetRoomsRequest{AgentId: a.ID})
		if err != nil {
			return 0, p.callErr(c, "GetRooms", err)
		}
		rooms = rooms[:0]
		for _, r := range res.GetRooms() {
			rooms = append(rooms, r.GetId())
		}
	}
	var n int64
	for _, id := range rooms {
		res, err := c.db.DeleteAllMemories(ctx, &pb.DeleteAllMemoriesRequest{AgentId: a.ID, RoomId: id})
		if err != nil {
			return n, p.callErr(c, "DeleteAllMemories", err)
		}
		n += res.GetDeleted()
		if res.GetDeleted() > 0 {
			a.hostEvent(ctx, sdk.EventChannelCleared, "", nil, map[string]any{"roomId": id})
		}
	}
	return n, nil
}

// unlist forgets an agent: it is no longer listed.
func (d *Daemon) unlist(a *AgentRuntime) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.byID, a.ID)
	i, ok := d.listedAt[a.ID]
	if !ok || d.agents[i] != a {
		return
	}
	delete(d.listedAt, a.ID)
	d.agents = append(d.agents[:i:i], d.agents[i+1:]...)
	for j := i; j < len(d.agents); j++ {
		d.listedAt[d.agents[j].ID] = j
	}
}
