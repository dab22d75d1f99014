package host

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

// POST /api/plugins/reload and /api/plugins/{name}/reload look at the
// plugin folders now (watch.go) and answer what changed.

func (d *Daemon) handleReloadPlugins(w http.ResponseWriter, r *http.Request) {
	d.reloadPlugins(w, r, "")
}

func (d *Daemon) handleReloadPlugin(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !agentKeyOK(name) {
		writeError(w, http.StatusBadRequest, "INVALID_ID", fmt.Sprintf("%q is not a plugin name", safeText(name, 60)))
		return
	}
	if p, err := d.ResolvePlugin(name); err == nil {
		name = p.Name()
	}
	d.reloadPlugins(w, r, name)
}

func (d *Daemon) reloadPlugins(w http.ResponseWriter, r *http.Request, name string) {
	rep, err := d.ReloadPlugins(r.Context(), name)
	switch {
	case errors.Is(err, ErrPluginNotFound):
		writeError(w, http.StatusNotFound, "PLUGIN_NOT_FOUND", err.Error())
	case err != nil:
		writeError(w, http.StatusInternalServerError, "RELOAD_FAILED", err.Error())
	default:
		writeJSON(w, http.StatusOK, rep)
	}
}

// ReloadPlugins looks at the plugin folders now and takes what changed:
// new plugins, new binaries (upgraded in place), removed ones; only plugin
// name's when name is not empty.
func (d *Daemon) ReloadPlugins(ctx context.Context, name string) (*ReloadReport, error) {
	rep, err := d.mgr.ReloadPlugins(ctx, name)
	if err == nil {
		d.log.Info("plugin folders looked at", "plugin", name, "added", rep.Added, "upgraded", rep.Upgraded, "updated", rep.Updated,
			"removed", rep.Removed, "refused", len(rep.Refused))
	}
	return rep, err
}

// describeForAPI reads the manifests of the plugins no process of which
// ran yet, side by side, so that the API shows what each offers. Each
// binary is read once (its answer, or its failure, is kept until it
// changes).
func (d *Daemon) describeForAPI(ctx context.Context, plugins []*PluginProcess) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, p := range plugins {
		if p.KnownManifest() != nil || p.Spec().Attach != nil {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = p.readManifest(ctx) }()
	}
	wg.Wait()
}

// readManifest is the manifest of the running process or of the binary,
// read once per version of the file.
func (p *PluginProcess) readManifest(ctx context.Context) (*pb.Manifest, error) {
	if m := p.KnownManifest(); m != nil {
		return m, nil
	}
	file, _ := statFile(p.Spec().Path)
	p.mu.Lock()
	if p.bin.probeErr != nil && p.bin.probeOf.same(file) {
		defer p.mu.Unlock()
		return nil, p.bin.probeErr
	}
	p.mu.Unlock()
	m, read, err := p.probe(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.bin.probeErr, p.bin.probeOf = err, read
		return nil, err
	}
	if p.bin.manifest == nil {
		p.bin.manifest = m
		p.bin.seen = read
	}
	return m, nil
}

// probeError is why the binary could not be read, when that is all the
// host knows of it.
func (p *PluginProcess) probeError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur != nil || p.bin.manifest != nil {
		return nil
	}
	return p.bin.probeErr
}
