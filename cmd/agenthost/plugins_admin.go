package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/agenthost/agenthost/host"
	"github.com/spf13/cobra"
)

func pluginsLockCmd() *cobra.Command {
	var update string
	cmd := &cobra.Command{
		Use:   "lock",
		Short: "Pin the plugin binaries: write plugins.lock",
		Long: `Write plugins.lock in the working folder: for each third-party plugin found
(in ./plugins, ~/.agenthost/plugins and AGENTHOST_PLUGIN_PATH), its name,
version, path and SHA-256. While plugins.lock exists, a daemon started in
this folder runs only binaries that match it: a plugin missing from it, or
whose file has another checksum, is refused with a log line naming the file
and both checksums, and a process that already runs keeps serving.

--update NAME accepts the binary of one plugin as it is now (a new
version), leaving the others pinned as they were; a running daemon takes it
up at its next look at the plugin folders.`,
		Example: `  agenthost plugins lock
  agenthost plugins lock --update weather`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := loadEnv()
			if err != nil {
				return err
			}
			wd, err := os.Getwd()
			if err != nil {
				return err
			}
			path := filepath.Join(wd, host.LockFile)
			old, err := host.ReadLock(path)
			if err != nil {
				return err
			}
			if update != "" && old == nil {
				return fmt.Errorf("there is no %s to update: `agenthost plugins lock` writes one with every plugin found", path)
			}
			self, err := os.Executable()
			if err != nil {
				return err
			}
			specs, warnings, err := host.Discover(self, nil, host.PluginDirs(func(k string) string { return env[k] }))
			if err != nil {
				return err
			}
			log := newLogger(env)
			for _, w := range warnings {
				log.Warn(w)
			}
			if update != "" {
				specs = slices.DeleteFunc(specs, func(s host.PluginSpec) bool { return s.Name != update })
				if len(specs) == 0 {
					return fmt.Errorf("no plugin %q in the plugin folders: its binary is agenthost-plugin-%s in ./plugins, ~/.agenthost/plugins or AGENTHOST_PLUGIN_PATH", update, update)
				}
			}
			// Reading a version runs the plugin: confined as in the daemon,
			// and whatever the current plugins.lock says of it.
			mgr := host.NewManager(host.ManagerConfig{Version: versionString(), DescribeOnly: true, NoLock: true, Self: self, Env: env, WorkDir: wd}, specs, log)
			defer mgr.Stop()
			next := &host.Lock{}
			if old != nil && update != "" {
				next.Plugins = append(next.Plugins, old.Plugins...)
			}
			var failed []string
			for _, p := range mgr.Plugins() {
				e, err := lockEntry(p)
				if err != nil {
					failed = append(failed, err.Error())
					continue
				}
				next.Set(e)
				was := old.Entry(e.Name)
				switch {
				case was == nil:
					fmt.Fprintf(cmd.OutOrStdout(), "locked %s %s  sha256 %s  %s\n", e.Name, e.Version, e.SHA256, e.Path)
				case was.SHA256 != e.SHA256:
					fmt.Fprintf(cmd.OutOrStdout(), "updated %s %s → %s  sha256 %s  %s\n", e.Name, was.Version, e.Version, e.SHA256, e.Path)
				default:
					fmt.Fprintf(cmd.OutOrStdout(), "unchanged %s %s\n", e.Name, e.Version)
				}
			}
			if update == "" && old != nil {
				for _, e := range old.Plugins {
					if next.Entry(e.Name) == nil {
						fmt.Fprintf(cmd.OutOrStdout(), "dropped %s (no longer found)\n", e.Name)
					}
				}
			}
			if len(failed) > 0 && len(next.Plugins) == 0 && old == nil {
				return fmt.Errorf("nothing to lock: %s", strings.Join(failed, "; "))
			}
			if err := host.WriteLock(path, next); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %d plugins pinned\n", path, len(next.Plugins))
			if len(failed) > 0 {
				return fmt.Errorf("not locked, since they did not start: %s", strings.Join(failed, "; "))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&update, "update", "", "accept the current binary of this plugin only")
	return cmd
}

// lockEntry reads a plugin's version and checksum. The file is hashed
// before and after it runs: a file that changed meanwhile is not pinned.
func lockEntry(p *host.PluginProcess) (host.LockEntry, error) {
	path := p.Spec().Path
	before, err := host.FileSHA256(path)
	if err != nil {
		return host.LockEntry{}, fmt.Errorf("plugin %s: %w", p.Name(), err)
	}
	if err := p.Start(context.Background()); err != nil {
		return host.LockEntry{}, err
	}
	after, err := host.FileSHA256(path)
	if err != nil || after != before {
		return host.LockEntry{}, fmt.Errorf("plugin %s: %s changed while it was read; run the command again", p.Name(), path)
	}
	return host.LockEntry{Name: p.Name(), Version: p.Manifest().GetVersion(), Path: path, SHA256: before}, nil
}

func pluginsReloadCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "reload [NAME]",
		Short: "Have the running daemon look at its plugin folders now",
		Long: `Have the daemon at AGENTHOST_URL look at its plugin folders now, as it does
twice a second by itself (and on SIGHUP), and take the binaries as they are:
new plugins become known, changed binaries are upgraded in place (the new
process is checked and configured for every agent before it takes calls;
calls in flight finish on the old one), removed ones are reported. A binary
refused before is tried again. With NAME, only that plugin's binary.`,
		Example: `  agenthost plugins reload
  agenthost plugins reload weather`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			path := "/api/plugins/reload"
			if len(args) == 1 {
				path = "/api/plugins/" + url.PathEscape(args[0]) + "/reload"
			}
			var rep host.ReloadReport
			if err := c.do(cmd.Context(), "POST", path, nil, &rep); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, l := range []struct {
				what  string
				names []string
			}{{"added", rep.Added}, {"upgraded", rep.Upgraded}, {"updated", rep.Updated}, {"removed", rep.Removed}} {
				if len(l.names) > 0 {
					sort.Strings(l.names)
					fmt.Fprintf(out, "%s: %s\n", l.what, strings.Join(l.names, ", "))
				}
			}
			for _, r := range rep.Refused {
				fmt.Fprintf(out, "refused: %s (%s): %s\n", r.Name, r.Path, r.Reason)
			}
			if len(rep.Refused) > 0 {
				return errors.New("some binaries were refused; the daemon's log and `agenthost plugins list --json` say more")
			}
			if len(rep.Added)+len(rep.Upgraded)+len(rep.Updated)+len(rep.Removed) == 0 {
				fmt.Fprintln(out, "nothing changed")
			}
			return nil
		},
	}
	cmd.Flags().String("url", "", "the daemon's URL (default AGENTHOST_URL or "+defaultURL+")")
	return cmd
}
