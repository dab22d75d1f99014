package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/agenthost/agenthost/host/plugincheck"
	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"
)

func pluginsCheckCmd() *cobra.Command {
	var asJSON, verbose bool
	var timeout time.Duration
	var settings []string
	cmd := &cobra.Command{
		Use:   "check PATH",
		Short: "Hold a plugin executable to the plugin contract",
		Long: `Run a plugin executable alone, as the daemon would start it (confined, with
mutual TLS), against a Runtime of its own, and report each check of the plugin
contract (sdk/proto/README.md) with pass or fail, its time and a reason: the
magic cookie, the handshake line, mutual TLS, health, the manifest, Init,
Configure and Unconfigure, each provider, action and evaluator with sample
input under a deadline, cancellation, a 5 MiB request, invalid input,
graceful shutdown, stdout and stderr.

The exit status is 0 only when every check passes; each failure is printed
last as "check: reason". Run it in your plugin's CI.`,
		Example: `  agenthost plugins check ./agenthost-plugin-weather
  agenthost plugins check --json bin/agenthost-plugin-weather | jq '.checks[] | select(.status != "pass")'
  agenthost plugins check --setting WEATHER_API_KEY=$KEY --timeout 30s ./agenthost-plugin-weather`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			env, self, err := pluginEnv()
			if err != nil {
				return err
			}
			given := map[string]string{}
			for _, s := range settings {
				k, v, ok := strings.Cut(s, "=")
				if !ok || k == "" {
					return fmt.Errorf("--setting %q: give it as KEY=VALUE", s)
				}
				given[k] = v
			}
			log := hclog.NewNullLogger()
			if verbose {
				env["AGENTHOST_LOG_LEVEL"] = "debug"
				log = newLogger(env)
			}
			report, err := plugincheck.Run(cmd.Context(), args[0], plugincheck.Options{Self: self, Env: env, Timeout: timeout,
				Settings: given, Version: versionString(), Log: log})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(report); err != nil {
					return err
				}
			} else if err := report.WriteText(out); err != nil {
				return err
			}
			if failed := report.Failed(); len(failed) > 0 {
				return fmt.Errorf("plugin %s: %d of %d checks did not pass; the first: %s: %s",
					report.Plugin, len(failed), len(report.Checks), failed[0].Name, failed[0].Reason)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "also log what the plugin writes on stderr, as the daemon would")
	cmd.Flags().DurationVar(&timeout, "timeout", plugincheck.DefaultTimeout, "how long each call to the plugin may take")
	cmd.Flags().StringArrayVar(&settings, "setting", nil, "a setting to configure the sample agent with, KEY=VALUE (repeat for several)")
	return cmd
}
