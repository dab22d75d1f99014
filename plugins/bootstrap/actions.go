package bootstrap

import (
	"context"

	"github.com/agenthost/agenthost/sdk"
)

// The pipeline sends REPLY's text itself, before any other action runs; the
// actions below exist so the model sees them offered and the host can
// resolve their names.

var replyAction = sdk.Action{
	Name:        "REPLY",
	Description: "Answer the message with the response text.",
	Similes:     []string{"RESPOND", "ANSWER", "GREET"},
	Handler: func(ctx context.Context, a *sdk.Agent, call *sdk.ActionCall) (sdk.ActionResult, error) {
		return sdk.ActionResult{Success: true}, nil
	},
}

var ignoreAction = sdk.Action{
	Name:        "IGNORE",
	Description: "Stay silent: the message is not for the agent, or the conversation is over.",
	Similes:     []string{"STOP_TALKING", "STAY_SILENT"},
	Handler: func(ctx context.Context, a *sdk.Agent, call *sdk.ActionCall) (sdk.ActionResult, error) {
		return sdk.ActionResult{Success: true}, nil
	},
}

var noneAction = sdk.Action{
	Name:        "NONE",
	Description: "Take no action beyond the reply.",
	Similes:     []string{"NO_ACTION", "NOTHING"},
	Handler: func(ctx context.Context, a *sdk.Agent, call *sdk.ActionCall) (sdk.ActionResult, error) {
		return sdk.ActionResult{Success: true}, nil
	},
}
