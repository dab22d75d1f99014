package sdk_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/plugintest"
	"github.com/google/uuid"
)

// A state composed in the plugin's process is kept for later compositions
// about the same message while an event about it is being handled, and
// only then: a composition for a message nobody handles (an evaluation
// after the reply, an HTTP request, a task) must not be kept, or every
// such message would leave its state in the process until the bound
// pushed it out.
func TestLocalStateKeptOnlyWhileHandled(t *testing.T) {
	var firstRan atomic.Int64
	// twice composes FIRST, then SECOND alone, and says whether the second
	// state still holds what FIRST put in the first.
	twice := func(ctx context.Context, a *sdk.Agent, msg *sdk.Memory) (bool, error) {
		if _, err := a.ComposeState(ctx, msg, sdk.ComposeOptions{OnlyInclude: true, Include: []string{"FIRST"}}); err != nil {
			return false, err
		}
		st, err := a.ComposeState(ctx, msg, sdk.ComposeOptions{OnlyInclude: true, Include: []string{"SECOND"}})
		if err != nil {
			return false, err
		}
		_, kept := st.Values["first"]
		return kept, nil
	}
	inEvent := make(chan bool, 4)
	p := sdk.Plugin{Name: "keeper",
		Providers: []sdk.Provider{
			{Name: "FIRST", Dynamic: true, Get: func(context.Context, *sdk.Agent, *sdk.Memory, *sdk.State) (sdk.ProviderResult, error) {
				return sdk.ProviderResult{Values: map[string]any{"first": firstRan.Add(1)}}, nil
			}},
			{Name: "SECOND", Dynamic: true, Get: func(context.Context, *sdk.Agent, *sdk.Memory, *sdk.State) (sdk.ProviderResult, error) {
				return sdk.ProviderResult{Values: map[string]any{"second": true}}, nil
			}},
		},
		Events: []sdk.EventHandler{{Type: sdk.EventMessageReceived, Handle: func(ctx context.Context, a *sdk.Agent, ev *sdk.Event) error {
			kept, err := twice(ctx, a, ev.Message)
			inEvent <- kept
			return err
		}}},
		HTTP: func(ctx context.Context, a *sdk.Agent, req *sdk.HTTPRequest) (*sdk.HTTPResponse, error) {
			msg := &sdk.Memory{ID: req.Path[1:], EntityID: uuid.NewString(), RoomID: uuid.NewString(), Content: sdk.Content{Text: "hi"}}
			kept, err := twice(ctx, a, msg)
			if err != nil {
				return nil, err
			}
			return &sdk.HTTPResponse{Status: 200, Body: []byte(fmt.Sprint(kept))}, nil
		},
	}
	c := plugintest.Start(t, p)
	ctx := context.Background()
	agent := uuid.NewString()
	if _, err := c.Configure(ctx, agent, &sdk.Character{Name: "Eliza"}, nil); err != nil {
		t.Fatal(err)
	}
	msgID := uuid.NewString()
	msg := &sdk.Memory{ID: msgID, EntityID: uuid.NewString(), RoomID: uuid.NewString(), Content: sdk.Content{Text: "hi"}}
	if err := c.HandleEvent(ctx, agent, sdk.Event{Type: sdk.EventMessageReceived, Message: msg}); err != nil {
		t.Fatal(err)
	}
	if !<-inEvent {
		t.Error("while the message was handled, a second composition lost what the first one's provider gave")
	}
	// The same message, after its handler returned, and then twice more
	// through a path that handles no event: nothing of the earlier
	// compositions may come back.
	for i := range 2 {
		res, err := c.HandleHTTP(ctx, agent, &sdk.HTTPRequest{Method: "GET", Path: "/" + msgID})
		if err != nil {
			t.Fatal(err)
		}
		if string(res.Body) != "false" {
			t.Errorf("composition %d outside any handler found the state of an earlier one: it was kept", i+1)
		}
	}
	if n := firstRan.Load(); n != 3 {
		t.Errorf("FIRST ran %d times, want 3", n)
	}
}
