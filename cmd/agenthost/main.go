// Command agenthost is the agenthost CLI: `agenthost start` runs the daemon
// with its agents and plugins; other subcommands inspect plugins and talk to
// a running daemon.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := rootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "agenthost:", err)
		os.Exit(1)
	}
}

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "agenthost",
		Short:         "Run AI agents whose every plugin is its own process",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(startCmd(), pluginsCmd(), versionCmd(), servePluginCmd(), agentCmd(), chatCmd(), dbCmd())
	return root
}
