// Command agenthost-plugin-weather is the smallest useful agenthost plugin
// in Go: a provider that adds the weather to the agent's prompts and an
// action, WAVE, that answers with a message of its own. Build it, put the
// binary in ./plugins, and list "weather" in a character's plugins.
package main

import (
	"context"

	"github.com/agenthost/agenthost/sdk"
)

func main() {
	sdk.Serve(sdk.Plugin{
		Name:    "weather",
		Version: "0.1.0",
		// An agent's settings come from its character (settings, secrets)
		// or the daemon's environment; the host sends only those declared.
		Settings: []sdk.Setting{{Name: "WEATHER_CITY", Description: "The city whose weather the agent knows.", Default: "Oslo"}},
		Providers: []sdk.Provider{{
			Name: "WEATHER",
			Get: func(ctx context.Context, a *sdk.Agent, msg *sdk.Memory, st *sdk.State) (sdk.ProviderResult, error) {
				city := a.Config().String("WEATHER_CITY") // "Oslo" unless set
				return sdk.ProviderResult{Text: "# Weather\nIt is sunny in " + city + "."}, nil
			},
		}},
		Actions: []sdk.Action{{
			Name:        "WAVE",
			Description: "Wave at the user.",
			Similes:     []string{"WAVE_HELLO", "WAVE_GOODBYE"},
			Handler: func(ctx context.Context, a *sdk.Agent, call *sdk.ActionCall) (sdk.ActionResult, error) {
				// Respond sends the message to wherever the user wrote
				// from; the host stores it in the room's history.
				_, err := a.Respond(ctx, call.RunID, sdk.Content{Text: "*waves*"}, "")
				// The line carries agent_id, agent_name and run_id.
				a.Logger(ctx).Info("waved", "ok", err == nil)
				return sdk.ActionResult{Success: err == nil}, err
			},
		}},
	})
}
