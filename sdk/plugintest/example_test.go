package plugintest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/plugintest"
)

// greeter is a tiny plugin: a provider that tells the time of day and an
// action that greets through the host.
func greeter() sdk.Plugin {
	return sdk.Plugin{
		Name: "greeter",
		Providers: []sdk.Provider{{Name: "TIME_OF_DAY",
			Get: func(context.Context, *sdk.Agent, *sdk.Memory, *sdk.State) (sdk.ProviderResult, error) {
				return sdk.ProviderResult{Text: "It is morning.", Values: map[string]any{"timeOfDay": "morning"}}, nil
			}}},
		Actions: []sdk.Action{{Name: "GREET",
			Validate: func(_ context.Context, _ *sdk.Agent, msg *sdk.Memory, _ *sdk.State) bool {
				return strings.Contains(strings.ToLower(msg.Content.Text), "hello")
			},
			Handler: func(ctx context.Context, a *sdk.Agent, call *sdk.ActionCall) (sdk.ActionResult, error) {
				st, err := a.ComposeState(ctx, call.Message, sdk.ComposeOptions{})
				if err != nil {
					return sdk.ActionResult{}, err
				}
				text := fmt.Sprintf("Good %s, I am %s.", st.Values["timeOfDay"], a.Name())
				if _, err := a.Respond(ctx, call.RunID, sdk.Content{Text: text}, ""); err != nil {
					return sdk.ActionResult{}, err
				}
				return sdk.ActionResult{Success: true, Text: text}, nil
			}}},
	}
}

// testGreeter is a plugin's test: it runs the plugin over the real gRPC
// path, with plugintest's Runtime as the host.
func testGreeter(t *testing.T) {
	c := plugintest.Start(t, greeter())
	ctx := context.Background()
	if _, err := c.Configure(ctx, "agent-1", &sdk.Character{Name: "Eliza", Bio: sdk.StringList{"greets"}}, nil); err != nil {
		t.Fatal(err)
	}
	msg := &sdk.Memory{RoomID: "room-1", Content: sdk.Content{Text: "Hello there"}}

	if valid, err := c.ValidateActions(ctx, "agent-1", []string{"GREET"}, msg); err != nil || len(valid) != 1 {
		t.Fatalf("GREET not offered for %q: %v %v", msg.Content.Text, valid, err)
	}
	res, err := c.RunAction(ctx, "agent-1", "GREET", msg, nil)
	if err != nil || !res.Success {
		t.Fatalf("GREET: %+v, %v", res, err)
	}
	const want = "Good morning, I am Eliza."
	if rs := c.Runtime().Responses(); len(rs) != 1 || rs[0].Text != want {
		t.Errorf("sent to the host: %+v, want %q", rs, want)
	}
}

// Example shows a plugin tested with plugintest. In the plugin's own
// _test.go file the test above is a test function:
//
//	func TestGreeter(t *testing.T) { ... }
//
// This package runs testGreeter as its TestGreeter.
func Example() {
	_ = testGreeter
}
