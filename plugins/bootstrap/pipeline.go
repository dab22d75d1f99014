package bootstrap

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/agenthost/agenthost/sdk"
	"github.com/google/uuid"
)

// handleMessage is the MESSAGE_RECEIVED pipeline.
func handleMessage(ctx context.Context, a *sdk.Agent, ev *sdk.Event) error {
	msg := ev.Message
	if msg == nil {
		return fmt.Errorf("MESSAGE_RECEIVED without a message")
	}
	// The agent's own messages come back from some platforms; answering
	// them would loop.
	if msg.EntityID == a.ID {
		return nil
	}
	msg.AgentID = a.ID
	_, created, err := a.CreateMemory(ctx, msg, sdk.TableMessages, false)
	if err != nil {
		return fmt.Errorf("store incoming message: %w", err)
	}
	if !created {
		// Delivered twice: handled the first time.
		return nil
	}
	st, err := a.ComposeState(ctx, msg, sdk.ComposeOptions{RunID: ev.RunID})
	if err != nil {
		return fmt.Errorf("compose state: %w", err)
	}
	prompt := buildPrompt(a, msg, st)
	res, err := a.UseModel(ctx, sdk.ModelRequest{Type: sdk.ModelTextLarge, RunID: ev.RunID, Prompt: prompt, System: system(a)})
	if err != nil {
		return fmt.Errorf("ask the model: %w", err)
	}
	parsed := parseResponse(res.Text)
	if len(parsed.Actions) == 0 && parsed.Text != "" {
		parsed.Actions = []string{"REPLY"}
	}
	reply := sdk.Memory{
		ID: uuid.NewString(), EntityID: a.ID, AgentID: a.ID, RoomID: msg.RoomID, WorldID: msg.WorldID,
		CreatedAt: time.Now().UnixMilli(),
		Content: sdk.Content{Text: parsed.Text, Thought: parsed.Thought, Actions: parsed.Actions, Providers: parsed.Providers,
			Source: msg.Content.Source, InReplyTo: msg.ID},
	}
	didRespond := false
	if hasAction(parsed.Actions, "REPLY") && strings.TrimSpace(parsed.Text) != "" {
		if err := sendReply(ctx, a, ev.RunID, &reply); err != nil {
			return err
		}
		didRespond = true
	}
	if others := otherActions(parsed.Actions); len(others) > 0 {
		if _, err := a.ProcessActions(ctx, msg, []sdk.Memory{reply}, st, ev.RunID); err != nil {
			return fmt.Errorf("run actions: %w", err)
		}
	}
	if _, err := a.Evaluate(ctx, sdk.EvaluatorCall{Message: msg, State: st, DidRespond: didRespond, Responses: []sdk.Memory{reply}, RunID: ev.RunID}); err != nil {
		return fmt.Errorf("evaluate: %w", err)
	}
	return nil
}

// sendReply stores the reply and sends it back through the message's
// source. The memory is stored first so that a reply a user saw is never
// missing from the history.
func sendReply(ctx context.Context, a *sdk.Agent, runID string, reply *sdk.Memory) error {
	if _, _, err := a.CreateMemory(ctx, reply, sdk.TableMessages, false); err != nil {
		return fmt.Errorf("store reply: %w", err)
	}
	if _, err := a.Respond(ctx, runID, reply.Content, reply.ID); err != nil {
		return fmt.Errorf("send reply: %w", err)
	}
	return nil
}

func system(a *sdk.Agent) string {
	if a.Character != nil && a.Character.System != "" {
		return a.Character.System
	}
	return fmt.Sprintf("You are %s, a helpful conversational agent.", a.Name())
}

func hasAction(actions []string, name string) bool {
	for _, x := range actions {
		if strings.EqualFold(strings.TrimSpace(x), name) {
			return true
		}
	}
	return false
}

// otherActions are the ones the host must run: everything but the replies
// and no-ops bootstrap handles itself.
func otherActions(actions []string) []string {
	var out []string
	for _, x := range actions {
		switch strings.ToUpper(strings.TrimSpace(x)) {
		case "REPLY", "NONE", "IGNORE", "":
		default:
			out = append(out, x)
		}
	}
	return out
}
