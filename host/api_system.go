package host

import (
	"fmt"
	"net/http"
	"runtime"
	"time"

	"github.com/agenthost/agenthost/internal/contract"
	"google.golang.org/protobuf/encoding/protojson"
)

func (d *Daemon) handleStatus(w http.ResponseWriter, r *http.Request) {
	counts := map[string]int{}
	agents := d.Agents()
	for _, a := range agents {
		st, _ := a.Status()
		counts[string(st)]++
	}
	plugins := map[string]int{}
	for _, p := range d.mgr.Plugins() {
		st, _ := p.State()
		plugins[string(st)]++
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"status": map[bool]string{true: "ok", false: "degraded"}[d.Healthy()], "version": d.cfg.Version,
		"startedAt": d.api.started.UnixMilli(), "uptimeSeconds": int64(time.Since(d.api.started).Seconds()),
		"agentCount": len(agents), "agents": counts, "plugins": plugins, "websocketClients": d.api.hub.count(),
		"authRequired": d.api.cfg.apiKey != "",
	})
}

// handleHealth is the detailed health: "degraded" while an agent that
// should run does not, with each failed agent and plugin and why.
func (d *Daemon) handleHealth(w http.ResponseWriter, r *http.Request) {
	failedAgents := []map[string]any{}
	agents := d.Agents()
	for _, a := range agents {
		if st, err := a.Status(); st == AgentFailed {
			f := map[string]any{"id": a.ID, "name": a.Name, "status": string(st)}
			if err != nil {
				f["error"] = err.Error()
			}
			failedAgents = append(failedAgents, f)
		}
	}
	failedPlugins := []map[string]any{}
	for _, p := range d.mgr.Plugins() {
		if st, err := p.State(); st == StateFailed {
			f := map[string]any{"name": p.Name()}
			if err != nil {
				f["error"] = err.Error()
			}
			failedPlugins = append(failedPlugins, f)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"status": map[bool]string{true: "ok", false: "degraded"}[d.Healthy()], "version": d.cfg.Version,
		"uptimeSeconds": int64(time.Since(d.api.started).Seconds()), "agents": len(agents),
		"failedAgents": failedAgents, "failedPlugins": failedPlugins,
	})
}

func (d *Daemon) handleVersion(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"version": d.cfg.Version, "protocol": fmt.Sprintf("agenthost.plugin.v%d.%d", contract.ProtocolVersion, contract.ProtocolMinor),
		"go": runtime.Version(), "os": runtime.GOOS, "arch": runtime.GOARCH,
	})
}

func (d *Daemon) pluginJSON(p *PluginProcess) map[string]any {
	st, err := p.State()
	spec := p.Spec()
	out := map[string]any{"name": p.Name(), "state": string(st), "restarts": p.Restarts(), "bundled": spec.Bundled,
		"pid": p.PID()}
	if !spec.Bundled && spec.Attach == nil {
		out["path"] = spec.Path
	}
	if err != nil {
		out["error"] = err.Error()
	} else if perr := p.probeError(); perr != nil {
		// Its binary could not be read (describeForAPI).
		out["error"] = perr.Error()
	}
	sum, locked := d.mgr.lockState(p)
	if sum != "" {
		out["checksum"] = sum
	}
	out["locked"] = locked
	if p.Removed() {
		out["removed"] = true
	}
	if a := spec.Attach; a != nil {
		out["attached"] = map[string]any{"pid": a.Pid, "address": a.Addr.String()}
	}
	if u := p.LastUpgrade(); u != nil {
		up := map[string]any{"at": u.At.UnixMilli(), "path": u.Path, "from": u.From, "to": u.To, "tookMs": u.Took.Milliseconds()}
		if u.Error != "" {
			up["refused"] = true
			up["error"] = u.Error
		}
		if len(u.Warnings) > 0 {
			up["warnings"] = u.Warnings
		}
		out["upgrade"] = up
	}
	out["confinement"] = p.Confinement()
	if e := p.LastExit(); !e.At.IsZero() {
		out["lastExit"] = map[string]any{"at": e.At.UnixMilli(), "reason": e.Reason}
	}
	if m := p.KnownManifest(); m != nil {
		b, merr := protojson.MarshalOptions{EmitUnpopulated: false}.Marshal(m)
		if merr == nil {
			out["manifest"] = jsonRaw(b)
		}
	}
	users := []string{}
	for _, a := range d.Agents() {
		if reg := a.registry(); reg != nil && !a.idle() && reg.Has(p) {
			users = append(users, a.Name)
		}
	}
	out["agents"] = users
	return out
}

type jsonRaw []byte

func (j jsonRaw) MarshalJSON() ([]byte, error) { return j, nil }

func (d *Daemon) handlePlugins(w http.ResponseWriter, r *http.Request) {
	out := []map[string]any{}
	plugins := d.mgr.Plugins()
	d.describeForAPI(r.Context(), plugins)
	for _, p := range plugins {
		out = append(out, d.pluginJSON(p))
	}
	writeJSON(w, http.StatusOK, map[string]any{"plugins": out})
}

func (d *Daemon) handlePlugin(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	p := d.mgr.Plugin(name)
	if p == nil {
		if !agentKeyOK(name) {
			writeError(w, http.StatusBadRequest, "INVALID_ID", fmt.Sprintf("%q is not a plugin name", safeText(name, 60)))
			return
		}
		p, _ = d.ResolvePlugin(name)
	}
	if p == nil {
		msg := fmt.Sprintf("no plugin named %q", safeText(name, 100))
		if ref, ok := d.mgr.Refusal(name); ok {
			msg += fmt.Sprintf(": its binary %s was refused: %s", ref.Path, ref.Reason)
		}
		writeError(w, http.StatusNotFound, "PLUGIN_NOT_FOUND", msg)
		return
	}
	d.describeForAPI(r.Context(), []*PluginProcess{p})
	writeJSON(w, http.StatusOK, d.pluginJSON(p))
}

func (d *Daemon) handleTicket(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"ticket": d.api.tickets.issue(), "expiresInSeconds": int(ticketTTL.Seconds())})
}
