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
)

// idle reports whether the agent is stopped or failed: not running and not
// on its way.
func (a *Agent) idle() bool {
	st, _ := a.Status()
	return st == AgentStopped || st == AgentFailed
}

// addAgent lists a started agent, in the place of its stopped self if any.
func (d *Daemon) addAgent(a *Agent) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.byID[a.ID] = a
	for i, x := range d.agents {
		if x.ID == a.ID {
			d.agents[i] = a
			return
		}
	}
	d.agents = append(d.agents, a)
}

// dropAgent forgets an agent that failed to start; its stopped self, if
// listed, stays and says why.
func (d *Daemon) dropAgent(a *Agent, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, x := range d.agents {
		if x.ID == a.ID {
			d.byID[a.ID] = x
			x.setStatus(AgentFailed, err)
			return
		}
	}
	if d.byID[a.ID] == a {
		delete(d.byID, a.ID)
	}
}

// newIdleAgent makes the stopped agent of a character.
func (d *Daemon) newIdleAgent(ch *sdk.Character) (*Agent, error) {
	charJSON, err := jsonMarshal(ch)
	if err != nil {
		return nil, fmt.Errorf("agent %s: encode character: %w", ch.Name, err)
	}
	return &Agent{ID: ch.AgentID(), Name: ch.Name, Character: ch, d: d, charJSON: charJSON, status: AgentStopped,
		log: d.log.Named("agent").With("agent", ch.Name), states: newStateCache(256),
		settings: ch.ResolvedSettings(d.cfg.Env)}, nil
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
func (d *Daemon) CreateAgent(ctx context.Context, ch *sdk.Character, start bool) (*Agent, error) {
	d.api.life.Lock()
	defer d.api.life.Unlock()
	if d.agentByID(ch.AgentID()) != nil || d.nameTaken(ch.Name, "") {
		return nil, fmt.Errorf("agent %s (%s): %w", ch.Name, ch.AgentID(), ErrAgentExists)
	}
	ch.ApplyEnv(d.cfg.Env)
	if start {
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
	if err := d.storeAgent(ctx, a, false); err != nil {
		a.log.Warn("could not store the agent; it is gone after a restart", "error", err)
	}
	d.addAgent(a)
	d.api.agentChanged(a)
	return a, nil
}

// StartAgentByName starts a listed agent that is stopped or failed; a
// running one is left as it is.
func (d *Daemon) StartAgentByName(ctx context.Context, idOrName string) (*Agent, error) {
	d.api.life.Lock()
	defer d.api.life.Unlock()
	a := d.Agent(idOrName)
	if a == nil {
		return nil, fmt.Errorf("agent %q: %w", idOrName, ErrAgentNotFound)
	}
	if !a.idle() {
		return a, nil
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
func (d *Daemon) StopAgent(ctx context.Context, idOrName string) (*Agent, error) {
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
	return a, nil
}

func (d *Daemon) stopAgent(ctx context.Context, a *Agent) {
	if a.idle() {
		return
	}
	a.setStatus(AgentStopped, nil)
	if a.reg != nil {
		for _, p := range a.reg.plugins {
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
	d.mu.Lock()
	delete(d.byID, a.ID)
	for i, x := range d.agents {
		if x == a {
			d.agents = append(d.agents[:i:i], d.agents[i+1:]...)
			break
		}
	}
	d.mu.Unlock()
	a.log.Info("agent removed")
	d.api.agentRemoved(a)
	return nil
}

// redacted stands for a secret's value in what the API shows; a patch that
// sends it back keeps the stored value.
const redacted = "[redacted]"

// UpdateAgent merges patch into the agent's character: top-level keys are
// replaced (null removes one), "settings" and "secrets" are merged key by
// key. The id stays. A running agent is restarted with the new character.
func (d *Daemon) UpdateAgent(ctx context.Context, idOrName string, patch map[string]json.RawMessage) (*Agent, error) {
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
	ch, err := sdk.ParseCharacter(merged)
	if err != nil {
		return nil, err
	}
	if ch.AgentID() != a.ID {
		return nil, fmt.Errorf("%w: the id of an agent cannot change (%s → %s)", sdk.ErrInvalid, a.ID, ch.AgentID())
	}
	if d.nameTaken(ch.Name, a.ID) {
		return nil, fmt.Errorf("name %q: %w", ch.Name, ErrAgentExists)
	}
	ch.ApplyEnv(d.cfg.Env)
	wasRunning := !a.idle()
	d.stopAgent(ctx, a)
	idle, err := d.newIdleAgent(ch)
	if err != nil {
		return nil, err
	}
	d.addAgent(idle)
	if !wasRunning {
		if err := d.storeAgent(ctx, idle, false); err != nil {
			idle.log.Warn("could not store the changed character", "error", err)
		}
		d.api.agentChanged(idle)
		return idle, nil
	}
	started, err := d.StartAgent(ctx, ch)
	d.api.agentChanged(d.Agent(a.ID))
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
// when roomID is empty, and says how many.
func (d *Daemon) ClearMemories(ctx context.Context, a *Agent, roomID string) (int64, error) {
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
	}
	return n, nil
}
