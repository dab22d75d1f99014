// Command agenthost-plugin-openai serves the OpenAI-compatible model plugin
// as a standalone executable for any plugin folder.
package main

import (
	"github.com/agenthost/agenthost/plugins/openai"
	"github.com/agenthost/agenthost/sdk"
)

func main() { sdk.Serve(openai.New()) }
