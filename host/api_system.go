package host

import (
	"fmt"
	"net/http"
	"runtime"
	"time"

	"github.com/agenthost/agenthost/sdk"
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

func (d *Daemon) handleVersion(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"version": d.cfg.Version, "protocol": fmt.Sprintf("agenthost.plugin.v%d.%d", sdk.ProtocolVersion, sdk.ProtocolMinor),
		"go": runtime.Version(), "os": runtime.GOOS, "arch": runtime.GOARCH,
	})
}

func (d *Daemon) pluginJSON(p *Plugin) map[string]any {
	st, err := p.State()
	out := map[string]any{"name": p.Name(), "state": string(st), "restarts": p.Restarts(), "bundled": p.Spec().Bundled,
		"pid": p.PID()}
	if !p.Spec().Bundled {
		out["path"] = p.Spec().Path
	}
	if err != nil {
		out["error"] = err.Error()
	}
	if m := p.Manifest(); m != nil {
		b, merr := protojson.MarshalOptions{EmitUnpopulated: false}.Marshal(m)
		if merr == nil {
			out["manifest"] = jsonRaw(b)
		}
	}
	users := []string{}
	for _, a := range d.Agents() {
		if a.reg != nil && !a.idle() && a.reg.has(p) {
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
	for _, p := range d.mgr.Plugins() {
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
		writeError(w, http.StatusNotFound, "PLUGIN_NOT_FOUND", fmt.Sprintf("no plugin named %q", safeText(name, 100)))
		return
	}
	writeJSON(w, http.StatusOK, d.pluginJSON(p))
}

func (d *Daemon) handleTicket(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"ticket": d.api.tickets.issue(), "expiresInSeconds": int(ticketTTL.Seconds())})
}
