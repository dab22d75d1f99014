package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/agenthost/agenthost/internal/contract"
	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

func versionString() string {
	v := version
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += "+" + s.Value[:12]
			}
		}
	}
	return v
}

// versionLine is the version with the plugin protocol and the platform.
func versionLine() string {
	return fmt.Sprintf("agenthost %s (plugin protocol agenthost.plugin.v%d.%d, %s %s/%s)",
		versionString(), contract.ProtocolVersion, contract.ProtocolMinor, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version (also: agenthost --version)",
		Example: `  agenthost version
  agenthost --version`,
		Args: cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprintln(cmd.OutOrStdout(), versionLine())
		},
	}
}
