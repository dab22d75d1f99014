// Command agenthost is the agenthost CLI: `agenthost start` runs the daemon
// with its agents and plugins; other subcommands inspect plugins and talk to
// a running daemon.
package main

import (
	"fmt"
	"os"

	"github.com/agenthost/agenthost/host"
	"github.com/agenthost/agenthost/host/confine"
	"github.com/spf13/cobra"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == host.ConfineSubcommand {
		// The daemon starting a plugin: confine it and exec it, before
		// anything else of the CLI runs.
		confine.Main(os.Args[2:])
	}
	if err := rootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "agenthost:", err)
		os.Exit(1)
	}
}

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "agenthost",
		Short: "Run AI agents whose every plugin is its own process",
		Long: `agenthost runs AI agents in the spirit of elizaOS as one daemon in which every
plugin (message handling, the database, models, chat platforms, your own) is
its own process. "agenthost start" runs the daemon; the other commands talk to
a running daemon, inspect plugins or look after the database.`,
		Example: `  agenthost start                          # the daemon, with the default agent Eliza
  agenthost chat                           # talk to it from the terminal
  agenthost agent start --path bob.json    # add an agent from a character file
  agenthost plugins list`,
		Version:       versionString(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// --version says what `agenthost version` says.
	root.SetVersionTemplate(versionLine() + "\n")
	root.AddCommand(startCmd(), pluginsCmd(), versionCmd(), servePluginCmd(), agentCmd(), chatCmd(), dbCmd(), clusterCmd())
	return root
}
