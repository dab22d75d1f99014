// Command lastreply is a test plugin that handles MESSAGE_RECEIVED on its
// own: it sends its one reply with RespondLast, then holds the handler
// until the file its LASTREPLY_GATE setting names exists. A test sees
// whether the host answers the message's caller at the last reply or
// only once the handler returns.
package main

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/agenthost/agenthost/sdk"
)

func main() {
	sdk.Serve(sdk.Plugin{
		Name:     "lastreply",
		Version:  "0.0.1",
		Settings: []sdk.Setting{{Name: "LASTREPLY_GATE", Description: "The file whose appearance lets the handler return."}},
		Events:   []sdk.EventHandler{{Type: sdk.EventMessageReceived, Handle: handle}},
	})
}

func handle(ctx context.Context, a *sdk.Agent, ev *sdk.Event) error {
	c := sdk.Content{Text: "got: " + ev.Message.Content.Text, Source: ev.Message.Content.Source, InReplyTo: ev.Message.ID}
	if _, err := a.RespondLast(ctx, ev.RunID, c, ""); err != nil {
		return err
	}
	gate := a.Setting("LASTREPLY_GATE")
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if _, err := os.Stat(gate); err == nil || gate == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.New("the gate never opened")
		case <-t.C:
		}
	}
}
