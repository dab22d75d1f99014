// Command agenthost-plugin-sql serves the sql plugin as a standalone
// executable for any plugin folder.
package main

import (
	"github.com/agenthost/agenthost/plugins/sqlstore"
	"github.com/agenthost/agenthost/sdk"
)

func main() { sdk.Serve(sqlstore.New()) }
