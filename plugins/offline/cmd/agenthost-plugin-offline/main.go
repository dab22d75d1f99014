// Command agenthost-plugin-offline serves the offline model plugin as a
// standalone executable for any plugin folder.
package main

import (
	"github.com/agenthost/agenthost/plugins/offline"
	"github.com/agenthost/agenthost/sdk"
)

func main() { sdk.Serve(offline.New()) }
