package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/agenthost/agenthost/sdk"
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

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "agenthost %s (plugin protocol agenthost.plugin.v%d.%d, %s %s/%s)\n",
				versionString(), sdk.ProtocolVersion, sdk.ProtocolMinor, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		},
	}
}
