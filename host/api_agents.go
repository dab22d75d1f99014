package host

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/character"
)

type agentJSON struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Username string   `json:"username,omitempty"`
	Status   string   `json:"status"`
	Error    string   `json:"error,omitempty"`
	Bio      []string `json:"bio"`
	Plugins  []string `json:"plugins"`
	// Node is the cluster node that runs the agent (in a cluster).
	Node string `json:"node,omitempty"`
}

func agentSummary(a *AgentRuntime) agentJSON {
	st, err := a.Status()
	node := ""
	if a.d != nil && a.d.cl != nil {
		st, node = a.d.clusterStatus(a, st)
	}
	out := agentJSON{ID: a.ID, Name: a.Name, Username: a.Character.Username, Status: string(st), Bio: a.Character.Bio, Plugins: a.Plugins(), Node: node}
	if out.Bio == nil {
		out.Bio = []string{}
	}
	if out.Plugins == nil {
		out.Plugins = []string{}
	}
	if err != nil {
		out.Error = err.Error()
	}
	return out
}

// agentDetail is an agent with its character, secrets redacted.
func agentDetail(a *AgentRuntime) map[string]any {
	s := agentSummary(a)
	var ch map[string]any
	_ = json.Unmarshal(a.charJSON, &ch)
	redactSecrets(ch)
	out := map[string]any{"id": s.ID, "name": s.Name, "status": s.Status, "plugins": s.Plugins, "character": ch}
	if s.Node != "" {
		out["node"] = s.Node
	}
	if s.Error != "" {
		out["error"] = s.Error
	}
	return out
}

func redactSecrets(ch map[string]any) {
	hide := func(m map[string]any) {
		for k := range m {
			m[k] = redacted
		}
	}
	if sec, ok := ch["secrets"].(map[string]any); ok {
		hide(sec)
	}
	if set, ok := ch["settings"].(map[string]any); ok {
		if sec, ok := set["secrets"].(map[string]any); ok {
			hide(sec)
		}
	}
}

func (d *Daemon) handleAgents(w http.ResponseWriter, r *http.Request) {
	out := []agentJSON{}
	for _, a := range d.Agents() {
		out = append(out, agentSummary(a))
	}
	writeJSON(w, http.StatusOK, map[string]any{"agents": out})
}

func (d *Daemon) handleGetAgent(w http.ResponseWriter, r *http.Request) {
	a := d.agentFor(w, r)
	if a == nil {
		return
	}
	writeJSON(w, http.StatusOK, agentDetail(a))
}

// createAgentRequest names the character as elizaOS's API does: under
// "characterJson", "character" or "agent".
type createAgentRequest struct {
	CharacterJSON json.RawMessage `json:"characterJson"`
	Character     json.RawMessage `json:"character"`
	Agent         json.RawMessage `json:"agent"`
	Start         bool            `json:"start"`
}

// character validates the request's character.
func (c *createAgentRequest) character() (*sdk.Character, error) {
	var raw json.RawMessage
	n := 0
	for _, r := range []json.RawMessage{c.CharacterJSON, c.Character, c.Agent} {
		if len(r) > 0 && !isJSONNull(r) {
			raw = r
			n++
		}
	}
	switch n {
	case 0:
		return nil, errors.New(`request body needs the character as "characterJson": {"name": …, "bio": …}`)
	case 1:
	default:
		return nil, errors.New(`give the character once: as "characterJson", "character" or "agent"`)
	}
	return character.Parse(raw)
}

func (d *Daemon) handleCreateAgent(w http.ResponseWriter, r *http.Request) {
	var req createAgentRequest
	if !d.decodeBody(w, r, &req) {
		return
	}
	ch, err := req.character()
	if err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_CHARACTER", err.Error())
		return
	}
	a, err := d.CreateAgent(r.Context(), ch, req.Start)
	if err != nil {
		d.writeLifecycleError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, agentDetail(a))
}

func (d *Daemon) handleUpdateAgent(w http.ResponseWriter, r *http.Request) {
	a := d.agentFor(w, r)
	if a == nil {
		return
	}
	var patch map[string]json.RawMessage
	if !d.decodeBody(w, r, &patch) {
		return
	}
	if patch == nil {
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST", "request body must be a JSON object of character fields to change")
		return
	}
	// elizaOS's client sends {"characterJson": {...}} or the fields.
	if inner, ok := patch["characterJson"]; ok && len(patch) == 1 {
		patch = nil
		if err := json.Unmarshal(inner, &patch); err != nil || patch == nil {
			writeError(w, http.StatusBadRequest, "INVALID_REQUEST", `"characterJson" must be an object of character fields`)
			return
		}
	}
	updated, err := d.UpdateAgent(r.Context(), a.ID, patch)
	if err != nil {
		d.writeLifecycleError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, agentDetail(updated))
}

func (d *Daemon) handleDeleteAgent(w http.ResponseWriter, r *http.Request) {
	a := d.agentFor(w, r)
	if a == nil {
		return
	}
	if err := d.RemoveAgent(r.Context(), a.ID); err != nil {
		d.writeLifecycleError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": a.ID, "name": a.Name, "removed": true})
}

func (d *Daemon) handleStartAgent(w http.ResponseWriter, r *http.Request) {
	a := d.agentFor(w, r)
	if a == nil {
		return
	}
	started, err := d.StartAgentByName(r.Context(), a.ID)
	if err != nil {
		d.writeLifecycleError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, agentSummary(started))
}

func (d *Daemon) handleStopAgent(w http.ResponseWriter, r *http.Request) {
	a := d.agentFor(w, r)
	if a == nil {
		return
	}
	stopped, err := d.StopAgent(r.Context(), a.ID)
	if err != nil {
		d.writeLifecycleError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, agentSummary(stopped))
}

func (d *Daemon) writeLifecycleError(w http.ResponseWriter, err error) {
	var ce *character.Error
	switch {
	case errors.Is(err, ErrAgentNotFound):
		writeError(w, http.StatusNotFound, "AGENT_NOT_FOUND", err.Error())
	case errors.Is(err, ErrAgentExists):
		writeError(w, http.StatusConflict, "AGENT_EXISTS", err.Error())
	case errors.Is(err, ErrUnknownPlugin):
		writeError(w, http.StatusBadRequest, "UNKNOWN_PLUGIN", err.Error())
	case errors.As(err, &ce), errors.Is(err, sdk.ErrInvalid):
		writeError(w, http.StatusBadRequest, "INVALID_CHARACTER", err.Error())
	default:
		if down := d.storeDown(); down != nil {
			writeDBUnavailable(w, fmt.Errorf("%v (the database: %v)", err, down))
			return
		}
		writeError(w, http.StatusInternalServerError, "AGENT_START_FAILED", fmt.Sprint(err))
	}
}
