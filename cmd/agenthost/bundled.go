package main

import (
	"fmt"
	"sort"

	"github.com/agenthost/agenthost/plugins/bootstrap"
	"github.com/agenthost/agenthost/plugins/discord"
	"github.com/agenthost/agenthost/plugins/offline"
	"github.com/agenthost/agenthost/plugins/openai"
	"github.com/agenthost/agenthost/plugins/sqlstore"
	"github.com/agenthost/agenthost/plugins/telegram"
	"github.com/agenthost/agenthost/sdk"
	"github.com/spf13/cobra"
)

// bundled are the first-party plugins inside the agenthost binary. Each
// still runs as its own process: agenthost starts itself with the hidden
// __plugin subcommand.
var bundled = map[string]func() sdk.Plugin{
	"bootstrap": bootstrap.New,
	"sql":       sqlstore.New,
	"offline":   offline.New,
	"openai":    openai.New,
	"telegram":  telegram.New,
	"discord":   discord.New,
}

// bundledAliases lets characters name bundled plugins by their other names
// before any of them has started.
func bundledAliases() map[string][]string {
	out := map[string][]string{}
	for name, newPlugin := range bundled {
		out[name] = newPlugin().Aliases
	}
	return out
}

func bundledNames() []string {
	names := make([]string, 0, len(bundled))
	for n := range bundled {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func servePluginCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "__plugin NAME",
		Short:  "Serve a bundled plugin (started by the daemon, not by people)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			newPlugin, ok := bundled[args[0]]
			if !ok {
				return fmt.Errorf("no bundled plugin %q (bundled: %v)", args[0], bundledNames())
			}
			sdk.Serve(newPlugin())
			return nil
		},
	}
}
