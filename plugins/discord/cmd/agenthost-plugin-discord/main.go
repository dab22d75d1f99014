// Command agenthost-plugin-discord serves the Discord connector as a
// standalone executable for any plugin folder.
package main

import (
	"github.com/agenthost/agenthost/plugins/discord"
	"github.com/agenthost/agenthost/sdk"
)

func main() { sdk.Serve(discord.New()) }
