// Command agenthost-plugin-telegram is the telegram plugin as a standalone
// executable, for a plugin folder.
package main

import (
	"github.com/agenthost/agenthost/plugins/telegram"
	"github.com/agenthost/agenthost/sdk"
)

func main() { sdk.Serve(telegram.New()) }
