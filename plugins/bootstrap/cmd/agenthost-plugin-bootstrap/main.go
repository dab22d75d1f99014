// Command agenthost-plugin-bootstrap serves the bootstrap plugin as a
// standalone executable for any plugin folder.
package main

import (
	"github.com/agenthost/agenthost/plugins/bootstrap"
	"github.com/agenthost/agenthost/sdk"
)

func main() { sdk.Serve(bootstrap.New()) }
