package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/agenthost/agenthost/host"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
)

func pluginsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "plugins", Short: "Inspect, pin, reload, check and write plugins",
		Long: `Inspect the plugins agenthost finds: the bundled ones, and executables named
agenthost-plugin-NAME in ./plugins, ~/.agenthost/plugins and the folders of
AGENTHOST_PLUGIN_PATH. A running daemon takes a binary dropped into these
folders within two seconds, and upgrades a replaced one in place. check holds a plugin executable to the
plugin contract; new writes a new plugin.`,
		Example: `  agenthost plugins list
  AGENTHOST_PLUGIN_PATH=./bin agenthost plugins list --wide
  agenthost plugins lock
  agenthost plugins reload
  agenthost plugins check ./agenthost-plugin-weather`,
	}
	var asJSON, wide, scan bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List every plugin with its manifest",
		Long: `List every plugin with what it offers. When a daemon answers at AGENTHOST_URL
(default http://localhost:3000), the list is the daemon's: what it knows
now, with each plugin's state. Otherwise, or with --scan, the plugin folders
are scanned, and each plugin is started to read its manifest, then stopped.
The first line on stderr says which.

The table fits 120 columns; --wide shows every model type, whole paths and
each plugin's checksum and whether plugins.lock pins it; --json everything.`,
		Example: `  agenthost plugins list
  agenthost plugins list --wide
  agenthost plugins list --scan
  agenthost plugins list --json | jq '.plugins[] | {name, checksum, locked, actions: [.manifest.actions[]?.name]}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var rows []pluginRow
			source := "scan"
			if !scan {
				got, url, err := daemonPlugins(cmd)
				switch {
				case err == nil:
					rows, source = got, "daemon"
					fmt.Fprintf(cmd.ErrOrStderr(), "plugins known to the daemon at %s\n", url)
				case errors.Is(err, errNoDaemon):
					fmt.Fprintf(cmd.ErrOrStderr(), "no daemon answers at %s: plugins found in the plugin folders\n", url)
				default:
					return err
				}
			}
			if rows == nil {
				var err error
				if rows, err = scanPlugins(); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"source": source, "plugins": rows})
			}
			return printPlugins(out, rows, wide)
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	list.Flags().BoolVar(&wide, "wide", false, "show every model type, whole paths and whole errors, checksums and locks")
	list.Flags().BoolVar(&scan, "scan", false, "scan the plugin folders even when a daemon answers")
	list.Flags().String("url", "", "the daemon's URL (default AGENTHOST_URL or "+defaultURL+")")
	cmd.AddCommand(list, pluginsLockCmd(), pluginsReloadCmd(), pluginsCheckCmd(), pluginsNewCmd())
	return cmd
}

// pluginRow is one plugin as `plugins list` shows it: the daemon's
// GET /api/plugins entry, or what a scan found.
type pluginRow struct {
	Name    string `json:"name"`
	Path    string `json:"path,omitempty"`
	Bundled bool   `json:"bundled"`
	// State, Pid and Agents are the daemon's.
	State  string   `json:"state,omitempty"`
	Pid    int      `json:"pid,omitempty"`
	Agents []string `json:"agents,omitempty"`
	// Confinement says what holds the plugin's processes.
	Confinement string `json:"confinement"`
	// Checksum is the SHA-256 of a third-party plugin's file; Locked says
	// that plugins.lock pins that very file.
	Checksum string          `json:"checksum,omitempty"`
	Locked   bool            `json:"locked"`
	Manifest json.RawMessage `json:"manifest,omitempty"`
	Error    string          `json:"error,omitempty"`
	// Removed, Upgrade and Attached are the daemon's (GET /api/plugins).
	Removed  bool            `json:"removed,omitempty"`
	Upgrade  json.RawMessage `json:"upgrade,omitempty"`
	Attached json.RawMessage `json:"attached,omitempty"`
	m        *pb.Manifest
}

// daemonPlugins asks the daemon at AGENTHOST_URL what it knows.
func daemonPlugins(cmd *cobra.Command) ([]pluginRow, string, error) {
	c, err := newClient(cmd)
	if err != nil {
		return nil, "", err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
	defer cancel()
	var data struct {
		Plugins []pluginRow `json:"plugins"`
	}
	if err := c.do(ctx, "GET", "/api/plugins", nil, &data); err != nil {
		return nil, c.base, err
	}
	for i := range data.Plugins {
		r := &data.Plugins[i]
		if len(r.Manifest) > 0 {
			m := &pb.Manifest{}
			if protojson.Unmarshal(r.Manifest, m) == nil {
				r.m = m
			}
		}
	}
	return data.Plugins, c.base, nil
}

// scanPlugins finds the plugins in the folders and starts each to read its
// manifest, as a daemon would: confined, and held to plugins.lock.
func scanPlugins() ([]pluginRow, error) {
	env, self, err := pluginEnv()
	if err != nil {
		return nil, err
	}
	specs, warnings, err := host.Discover(self, bundledNames(), host.PluginDirs(func(k string) string { return env[k] }))
	if err != nil {
		return nil, err
	}
	log := newLogger(env)
	for _, w := range warnings {
		log.Warn(w)
	}
	wd, _ := os.Getwd()
	lock, lockErr := host.ReadLock(filepath.Join(wd, host.LockFile))
	// Describing runs the plugin's code: it is confined as in the daemon.
	mgr := host.NewManager(host.ManagerConfig{Version: versionString(), DescribeOnly: true, Self: self, Env: env, WorkDir: wd}, specs, log)
	defer mgr.Stop()
	rows := make([]pluginRow, len(specs))
	var wg sync.WaitGroup
	for i, p := range mgr.Plugins() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := pluginRow{Name: p.Name(), Path: p.Spec().Path, Bundled: p.Spec().Bundled, Confinement: p.Confinement()}
			if !r.Bundled {
				if sum, err := host.FileSHA256(r.Path); err == nil {
					r.Checksum = sum
					e := lock.Entry(r.Name)
					r.Locked = lockErr == nil && e != nil && e.SHA256 == sum
				}
			}
			if err := p.Start(context.Background()); err != nil {
				r.Error = err.Error()
			} else {
				r.m = p.Manifest()
				b, _ := protojson.MarshalOptions{UseProtoNames: false}.Marshal(r.m)
				r.Manifest = b
			}
			rows[i] = r
		}()
	}
	wg.Wait()
	return rows, nil
}

func printPlugins(out interface{ Write([]byte) (int, error) }, rows []pluginRow, wide bool) error {
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	head := "NAME\tVERSION\tOFFERS\tWHERE"
	if wide {
		head += "\tSHA-256\tLOCKED"
	}
	fmt.Fprintln(tw, head)
	// Without --wide each cell has a budget that keeps a line under
	// 120 columns.
	cell := func(s string, n int) string {
		if wide {
			return s
		}
		return clip(s, n)
	}
	for _, r := range rows {
		where := r.Path
		switch {
		case r.Bundled:
			where = "bundled"
		case r.Attached != nil:
			where = "attached"
		case !wide:
			where = clipLeft(where, 36)
		}
		if r.Removed {
			where += " (removed)"
		}
		version, offered := "-", ""
		if r.Error != "" {
			offered = "error: " + r.Error
		} else if r.m != nil {
			version, offered = r.m.GetVersion(), offers(r.m, wide)
		} else if r.State != "" {
			offered = r.State
		}
		line := fmt.Sprintf("%s\t%s\t%s\t%s", cell(r.Name, 20), cell(version, 12), cell(offered, 50), where)
		if wide {
			sum, locked := "-", "-"
			if r.Checksum != "" {
				sum, locked = clip(r.Checksum, 17), map[bool]string{true: "yes", false: "no"}[r.Locked]
			}
			line += "\t" + sum + "\t" + locked
		}
		fmt.Fprintln(tw, line)
	}
	return tw.Flush()
}

// offers sums up what a plugin offers; wide lists its model types.
func offers(m *pb.Manifest, wide bool) string {
	var parts []string
	count := func(n int, what string) {
		switch {
		case n == 1:
			parts = append(parts, "1 "+what)
		case n > 1:
			parts = append(parts, fmt.Sprintf("%d %ss", n, what))
		}
	}
	count(len(m.GetActions()), "action")
	count(len(m.GetProviders()), "provider")
	count(len(m.GetEvaluators()), "evaluator")
	if wide && len(m.GetModels()) > 0 {
		var ts []string
		for _, md := range m.GetModels() {
			ts = append(ts, md.GetType())
		}
		parts = append(parts, "models "+strings.Join(ts, ","))
	} else {
		count(len(m.GetModels()), "model type")
	}
	if len(m.GetMessageSources()) > 0 {
		parts = append(parts, "sends to "+strings.Join(m.GetMessageSources(), ","))
	}
	if m.GetDatabase() {
		parts = append(parts, "database")
	}
	return strings.Join(parts, "; ")
}
