package bootstrap

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/agenthost/agenthost/sdk"
)

// recentCount is how many messages of the room the prompt shows.
const recentCount = 20

var characterProvider = sdk.Provider{
	Name:        "CHARACTER",
	Description: "The agent's name, bio, topics, adjectives and style.",
	Position:    -100,
	Get: func(ctx context.Context, a *sdk.Agent, msg *sdk.Memory, st *sdk.State) (sdk.ProviderResult, error) {
		ch := a.Character
		if ch == nil {
			return sdk.ProviderResult{}, nil
		}
		var b strings.Builder
		fmt.Fprintf(&b, "# About %s\n", ch.Name)
		for _, line := range ch.Bio {
			b.WriteString(line)
			b.WriteByte('\n')
		}
		if len(ch.Topics) > 0 {
			fmt.Fprintf(&b, "\n%s is interested in %s.\n", ch.Name, strings.Join(ch.Topics, ", "))
		}
		if len(ch.Adjectives) > 0 {
			fmt.Fprintf(&b, "%s is %s.\n", ch.Name, strings.Join(ch.Adjectives, ", "))
		}
		style := append(slices.Clone(ch.Style.All), ch.Style.Chat...)
		if len(style) > 0 {
			fmt.Fprintf(&b, "\n# Style of %s's messages\n- %s\n", ch.Name, strings.Join(style, "\n- "))
		}
		return sdk.ProviderResult{
			Text:   strings.TrimRight(b.String(), "\n"),
			Values: map[string]any{"agentName": ch.Name, "bio": strings.Join(ch.Bio, " ")},
		}, nil
	},
}

var recentMessagesProvider = sdk.Provider{
	Name:        "RECENT_MESSAGES",
	Description: "The latest messages of the room, oldest first, with their authors' names.",
	Position:    100,
	Get: func(ctx context.Context, a *sdk.Agent, msg *sdk.Memory, st *sdk.State) (sdk.ProviderResult, error) {
		ms, err := a.GetMemories(ctx, sdk.MemoryQuery{Table: sdk.TableMessages, RoomID: msg.RoomID, Count: recentCount})
		if err != nil {
			return sdk.ProviderResult{}, err
		}
		ids := []string{}
		for _, m := range ms {
			if !slices.Contains(ids, m.EntityID) {
				ids = append(ids, m.EntityID)
			}
		}
		if !slices.Contains(ids, msg.EntityID) {
			ids = append(ids, msg.EntityID)
		}
		names := map[string]string{a.ID: a.Name()}
		if len(ids) > 0 {
			ents, err := a.GetEntities(ctx, ids...)
			if err != nil {
				return sdk.ProviderResult{}, err
			}
			for _, e := range ents {
				if len(e.Names) > 0 && names[e.ID] == "" {
					names[e.ID] = e.Names[0]
				}
			}
		}
		name := func(id string) string {
			if n := names[id]; n != "" {
				return n
			}
			return "User"
		}
		var b strings.Builder
		b.WriteString("# Conversation Messages\n")
		for i := len(ms) - 1; i >= 0; i-- {
			m := ms[i]
			if m.Content.Text == "" {
				continue
			}
			// One line per message keeps the "Name: text" shape that
			// prompts and the offline model rely on.
			fmt.Fprintf(&b, "%s: %s\n", name(m.EntityID), strings.ReplaceAll(m.Content.Text, "\n", " "))
		}
		return sdk.ProviderResult{
			Text:   strings.TrimRight(b.String(), "\n"),
			Values: map[string]any{"senderName": name(msg.EntityID), "recentMessageCount": len(ms)},
		}, nil
	},
}

var timeProvider = sdk.Provider{
	Name:        "TIME",
	Description: "The current date and time in UTC.",
	Position:    50,
	Get: func(ctx context.Context, a *sdk.Agent, msg *sdk.Memory, st *sdk.State) (sdk.ProviderResult, error) {
		now := time.Now().UTC()
		return sdk.ProviderResult{
			Text:   "# Time\nThe current date and time is " + now.Format("Monday, 2 January 2006 15:04 UTC") + ".",
			Values: map[string]any{"time": now.Format(time.RFC3339)},
		}, nil
	},
}
