package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/agenthost/agenthost/host"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
)

func pluginsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "plugins", Short: "Inspect the plugins agenthost finds"}
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List every discovered plugin with its manifest",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := loadEnv()
			if err != nil {
				return err
			}
			self, err := os.Executable()
			if err != nil {
				return err
			}
			specs, warnings, err := host.Discover(self, bundledNames(), host.PluginDirs(func(k string) string { return env[k] }))
			if err != nil {
				return err
			}
			log := newLogger(env)
			for _, w := range warnings {
				log.Warn(w)
			}
			mgr := host.NewManager(host.ManagerConfig{Version: versionString(), DescribeOnly: true}, specs, log)
			defer mgr.Stop()
			type row struct {
				Name     string          `json:"name"`
				Path     string          `json:"path"`
				Bundled  bool            `json:"bundled"`
				Manifest json.RawMessage `json:"manifest,omitempty"`
				Error    string          `json:"error,omitempty"`
				m        *pb.Manifest
			}
			rows := make([]row, len(specs))
			var wg sync.WaitGroup
			for i, p := range mgr.Plugins() {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := row{Name: p.Name(), Path: p.Spec().Path, Bundled: p.Spec().Bundled}
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
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"plugins": rows})
			}
			tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tVERSION\tOFFERS\tWHERE")
			for _, r := range rows {
				where := r.Path
				if r.Bundled {
					where = "bundled"
				}
				if r.Error != "" {
					fmt.Fprintf(tw, "%s\t-\terror: %s\t%s\n", r.Name, r.Error, where)
					continue
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Name, r.m.GetVersion(), offers(r.m), where)
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(list)
	return cmd
}

func offers(m *pb.Manifest) string {
	var parts []string
	count := func(n int, what string) {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, what))
		}
	}
	count(len(m.GetActions()), "actions")
	count(len(m.GetProviders()), "providers")
	count(len(m.GetEvaluators()), "evaluators")
	if len(m.GetModels()) > 0 {
		var ts []string
		for _, md := range m.GetModels() {
			ts = append(ts, md.GetType())
		}
		parts = append(parts, "models "+strings.Join(ts, ","))
	}
	if len(m.GetMessageSources()) > 0 {
		parts = append(parts, "sends to "+strings.Join(m.GetMessageSources(), ","))
	}
	if m.GetDatabase() {
		parts = append(parts, "database")
	}
	return strings.Join(parts, "; ")
}
