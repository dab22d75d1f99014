package bootstrap

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/agenthost/agenthost/sdk"
)

// actions lists every action of the plugin.
func (b *bootstrap) actions() []sdk.Action {
	return []sdk.Action{
		{
			Name:        "REPLY",
			Description: "Answer the message with the response text. Put it first when other actions follow.",
			Similes:     []string{"GREET", "REPLY_TO_MESSAGE", "SEND_REPLY", "RESPOND", "RESPONSE", "ANSWER"},
			Examples: [][]sdk.ExampleMessage{{
				{Name: "{{name1}}", Content: sdk.Content{Text: "Hello there!"}},
				{Name: "{{agentName}}", Content: sdk.Content{Text: "Hi! What can I do for you?", Actions: []string{"REPLY"}}},
			}},
			Handler: b.replyAction,
		},
		{
			Name:        "IGNORE",
			Description: "Stay silent: the message is not for the agent, or the conversation is over. Use it alone.",
			Similes:     []string{"STOP_TALKING", "STOP_CHATTING", "STOP_CONVERSATION", "STAY_SILENT"},
			Examples: [][]sdk.ExampleMessage{{
				{Name: "{{name1}}", Content: sdk.Content{Text: "ok, bye"}},
				{Name: "{{agentName}}", Content: sdk.Content{Actions: []string{"IGNORE"}}},
			}},
			Handler: b.ignoreAction,
		},
		{
			Name:        "NONE",
			Description: "Take no action beyond the reply.",
			Similes:     []string{"NO_ACTION", "NO_RESPONSE", "NO_REACTION", "NOTHING"},
			Handler: func(ctx context.Context, a *sdk.Agent, call *sdk.ActionCall) (sdk.ActionResult, error) {
				return sdk.ActionResult{Success: true}, nil
			},
		},
		b.roomStateAction(roomStateSpec{
			name:        "FOLLOW_ROOM",
			description: "Follow this room: take part in its conversation from now on without being named.",
			similes:     []string{"FOLLOW_CHAT", "FOLLOW_CHANNEL", "FOLLOW_CONVERSATION", "FOLLOW_THREAD"},
			valid: func(state, text string) bool {
				if state == "FOLLOWED" || state == "MUTED" {
					return false
				}
				t := strings.ToLower(text)
				for _, w := range []string{"follow", "participate", "engage", "listen", "take interest", "join"} {
					if strings.Contains(t, w) {
						return true
					}
				}
				return false
			},
			question: "Should {{agentName}} start following this room, taking part in it without being named?",
			newState: "FOLLOWED",
			done:     "Now following this room.",
			example:  "{{agentName}}, please join in on this channel from now on.",
		}),
		b.roomStateAction(roomStateSpec{
			name:        "UNFOLLOW_ROOM",
			description: "Stop following this room: take part again only when named.",
			similes:     []string{"UNFOLLOW_CHAT", "UNFOLLOW_CHANNEL", "UNFOLLOW_CONVERSATION", "UNFOLLOW_THREAD"},
			valid:       func(state, text string) bool { return state == "FOLLOWED" },
			question:    "Should {{agentName}} stop following this room and answer only when named?",
			newState:    "",
			done:        "No longer following this room.",
		}),
		b.roomStateAction(roomStateSpec{
			name:        "MUTE_ROOM",
			description: "Mute this room: ignore its messages unless the agent is named.",
			similes:     []string{"MUTE_CHAT", "MUTE_CHANNEL", "MUTE_CONVERSATION", "MUTE_THREAD"},
			valid:       func(state, text string) bool { return state != "MUTED" },
			question:    "Should {{agentName}} mute this room, ignoring its messages unless named?",
			newState:    "MUTED",
			done:        "Muted this room.",
			example:     "{{agentName}}, please be quiet in here for now.",
		}),
		b.roomStateAction(roomStateSpec{
			name:        "UNMUTE_ROOM",
			description: "Unmute this room: take part in it again.",
			similes:     []string{"UNMUTE_CHAT", "UNMUTE_CHANNEL", "UNMUTE_CONVERSATION", "UNMUTE_THREAD"},
			valid:       func(state, text string) bool { return state == "MUTED" },
			question:    "Should {{agentName}} unmute this room and take part in it again?",
			newState:    "",
			done:        "Unmuted this room.",
		}),
		b.sendMessageAction(),
		b.updateContactAction(),
		b.chooseOptionAction(),
		b.updateRoleAction(),
		b.updateSettingsAction(),
		b.generateImageAction(),
	}
}

// replyAction sends the response's text. It asks the model again only when
// there is no text yet, or when the model asked for providers the text was
// written without; otherwise a chain with REPLY costs no second model call
// (elizaOS always made one, and users saw two replies).
func (b *bootstrap) replyAction(ctx context.Context, a *sdk.Agent, call *sdk.ActionCall) (sdk.ActionResult, error) {
	msg := call.Message
	var text, thought string
	var providers []string
	if len(call.Responses) > 0 {
		c := call.Responses[0].Content
		text, thought, providers = c.Text, c.Thought, c.Providers
	}
	if strings.TrimSpace(text) == "" || len(providers) > 0 {
		st, err := a.ComposeState(ctx, msg, sdk.ComposeOptions{RunID: call.RunID,
			Include: append(append([]string(nil), providers...), "RECENT_MESSAGES", "ACTION_STATE")})
		if err != nil {
			st = call.State
		}
		prompt := renderPrompt(a, "replyTemplate", st, map[string]any{"replyThought": thought})
		res, err := a.UseModel(ctx, sdk.ModelRequest{Type: sdk.ModelTextLarge, RunID: call.RunID, Prompt: prompt, System: system(a)})
		if err != nil {
			return sdk.ActionResult{}, fmt.Errorf("write the reply: %w", err)
		}
		if n := parseXML(res.Text); n != nil {
			if m := firstNonEmpty(n.get("message"), n.get("text")); m != "" {
				text = m
			}
			if t := n.get("thought"); t != "" {
				thought = t
			}
		} else if t := strings.TrimSpace(res.Text); t != "" {
			text = stripFences(t)
		}
	}
	if strings.TrimSpace(text) == "" {
		return sdk.ActionResult{Success: false, Error: "the model wrote no reply"}, nil
	}
	reply, err := b.sendReply(ctx, a, call.RunID, msg, sdk.Content{Text: text, Thought: thought, Actions: []string{"REPLY"}})
	if err != nil {
		return sdk.ActionResult{}, err
	}
	if reply == nil {
		return sdk.ActionResult{Success: true, Text: "reply dropped: a newer message arrived", Values: map[string]any{"replyDropped": true}}, nil
	}
	return sdk.ActionResult{Success: true, Text: text,
		Values: map[string]any{"lastReply": text, "lastReplyTime": time.Now().UnixMilli()},
		Data:   map[string]any{"messageId": reply.ID}}, nil
}

func (b *bootstrap) ignoreAction(ctx context.Context, a *sdk.Agent, call *sdk.ActionCall) (sdk.ActionResult, error) {
	why := ""
	if len(call.Responses) > 0 {
		why = call.Responses[0].Content.Thought
	}
	b.recordIgnore(ctx, a, call.Message, call.RunID, why)
	return sdk.ActionResult{Success: true, Values: map[string]any{"ignored": true}}, nil
}

// roomStateSpec describes one of the follow/mute actions.
type roomStateSpec struct {
	name, description string
	similes           []string
	valid             func(state, text string) bool
	question          string
	newState          string
	done              string
	example           string
}

// roomStateAction builds a follow/mute action: offered when the room's
// state allows it, confirmed with TEXT_SMALL, then set on the agent's
// participation in the room.
func (b *bootstrap) roomStateAction(s roomStateSpec) sdk.Action {
	act := sdk.Action{Name: s.name, Description: s.description, Similes: s.similes}
	if s.example != "" {
		act.Examples = [][]sdk.ExampleMessage{{
			{Name: "{{name1}}", Content: sdk.Content{Text: s.example}},
			{Name: "{{agentName}}", Content: sdk.Content{Text: "Understood.", Actions: []string{"REPLY", s.name}}},
		}}
	}
	act.Validate = func(ctx context.Context, a *sdk.Agent, msg *sdk.Memory, st *sdk.State) bool {
		state, err := cachedParticipantState(ctx, a, msg.RoomID, a.ID)
		if err != nil {
			return false
		}
		return s.valid(state, msg.Content.Text)
	}
	act.Handler = func(ctx context.Context, a *sdk.Agent, call *sdk.ActionCall) (sdk.ActionResult, error) {
		msg := call.Message
		question := strings.ReplaceAll(s.question, "{{agentName}}", a.Name())
		prompt := renderPrompt(a, "roomStateTemplate", call.State, map[string]any{"question": question})
		res, err := a.UseModel(ctx, sdk.ModelRequest{Type: sdk.ModelTextSmall, RunID: call.RunID, Prompt: prompt, System: system(a)})
		if err != nil {
			return sdk.ActionResult{}, fmt.Errorf("confirm %s: %w", s.name, err)
		}
		if !parseYesNo(res.Text) {
			return sdk.ActionResult{Success: false, Text: "not confirmed", Error: s.name + " was not confirmed"}, nil
		}
		if err := setParticipantState(ctx, a, msg.RoomID, a.ID, s.newState); err != nil {
			return sdk.ActionResult{}, err
		}
		state := s.newState
		if state == "" {
			state = "NONE"
		}
		return sdk.ActionResult{Success: true, Text: s.done, Values: map[string]any{"roomState": state}}, nil
	}
	return act
}
