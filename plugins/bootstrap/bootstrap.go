package bootstrap

import (
	"github.com/agenthost/agenthost/sdk"
)

// Version is the plugin's version.
const Version = "0.1.0"

// New returns the bootstrap plugin.
func New() sdk.Plugin {
	return sdk.Plugin{
		Name:        "bootstrap",
		Version:     Version,
		Description: "Core message handling: should-respond, state, the response, actions and evaluators.",
		Aliases:     []string{"@elizaos/plugin-bootstrap"},
		Events: []sdk.EventHandler{
			{Type: sdk.EventMessageReceived, Handle: handleMessage},
		},
		Providers: []sdk.Provider{
			characterProvider,
			recentMessagesProvider,
			timeProvider,
		},
		Actions: []sdk.Action{
			replyAction,
			ignoreAction,
			noneAction,
		},
	}
}
