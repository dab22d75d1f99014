package bootstrap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
	"github.com/google/uuid"
)

// postPayload is POST_GENERATED's. elizaOS's callback is a function; here
// "target" (or "callback") names where the post goes, as a target or as a
// source's name.
type postPayload struct {
	WorldID  string          `json:"worldId"`
	UserID   string          `json:"userId"`
	RoomID   string          `json:"roomId"`
	Source   string          `json:"source"`
	Target   json.RawMessage `json:"target"`
	Callback json.RawMessage `json:"callback"`
}

// postTarget reads a target named by an object or by a source's name.
func postTarget(raw json.RawMessage) (*sdk.Target, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var name string
	if json.Unmarshal(raw, &name) == nil {
		if name = strings.TrimSpace(name); name == "" {
			return nil, nil
		}
		return &sdk.Target{Source: name}, nil
	}
	var t sdk.Target
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	return &t, nil
}

// handlePost writes a post for the agent's feed on a social platform: the
// feed's world and room are ensured (type FEED), state is composed for a
// post (the character's post style and example posts, the feed's recent
// posts), and TEXT_LARGE writes it with the postCreationTemplate. A post
// that repeats a recent one or reads like a model's refusal is asked for
// again, up to RESPONSE_RETRIES times. The post is stored in the feed's
// room and sent with channelType FEED and type "post" to the payload's
// target, or through the host run the event names, or else to the feed on
// the payload's source.
func (b *bootstrap) handlePost(ctx context.Context, a *sdk.Agent, ev *sdk.Event) error {
	db := storage.For(a)
	var p postPayload
	if err := decodePayload(ev, &p); err != nil {
		return fmt.Errorf("%s: %w", ev.Type, err)
	}
	target, err := postTarget(p.Target)
	if err == nil && target == nil {
		target, err = postTarget(p.Callback)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", ev.Type, err)
	}
	source := firstNonEmpty(p.Source, ev.Source)
	if target != nil {
		source = firstNonEmpty(source, target.Source)
	}
	user := firstNonEmpty(p.UserID, source, "feed")
	worldID := agentScoped(a, p.WorldID)
	if worldID == "" {
		worldID = sdk.CreateUniqueUUID(a.ID, user)
	}
	roomID := agentScoped(a, p.RoomID)
	if roomID == "" {
		roomID = sdk.CreateUniqueUUID(a.ID, user+"-home")
	}
	feed := a.Name() + "'s Feed"
	world := sdk.World{ID: worldID, Name: feed, AgentID: a.ID, ServerID: user}
	written(worldKey(a, worldID))
	if ws, err := db.GetWorlds(ctx, worldID); err == nil && len(ws) > 0 {
		world = ws[0] // an existing world stays as it is
	}
	room := sdk.Room{ID: roomID, Name: feed, AgentID: a.ID, Source: source, Type: sdk.ChannelFeed, ChannelID: user + "-home", ServerID: user, WorldID: worldID}
	if r, err := db.GetRoom(ctx, roomID); err == nil && r != nil {
		room = *r
	}
	if err := db.EnsureConnection(ctx, storage.Connection{Room: room, World: world}); err != nil {
		return fmt.Errorf("%s: ensure the feed: %w", ev.Type, err)
	}
	forget(roomKey(a, roomID), worldKey(a, worldID))

	runID := firstNonEmpty(ev.RunID, uuid.NewString())
	// The message the state is composed for: the agent in its feed, with
	// no text. It has no id, so the host caches no state for it.
	msg := &sdk.Memory{EntityID: a.ID, AgentID: a.ID, RoomID: roomID, WorldID: worldID, CreatedAt: time.Now().UnixMilli(),
		Content: sdk.Content{Source: source, ChannelType: sdk.ChannelFeed}}
	st, err := a.ComposeState(ctx, msg, sdk.ComposeOptions{RunID: runID, Include: []string{"PROVIDERS", "CHARACTER", "RECENT_MESSAGES", "ENTITIES"}})
	if err != nil {
		return fmt.Errorf("%s: compose state: %w", ev.Type, err)
	}
	extra := map[string]any{}
	if ents, err := db.GetEntities(ctx, a.ID); err == nil && len(ents) > 0 {
		// The agent's handle on the platform, if the platform told it.
		blk, _ := ents[0].Metadata[source].(map[string]any)
		if u := firstNonEmpty(str(blk["userName"]), str(blk["username"])); u != "" {
			extra["userName"] = u
		}
	}
	recent := b.recentPosts(ctx, a, roomID)
	attempts := b.settings(a).responseRetries
	var post, thought, why string
	for i := 0; i < attempts && post == ""; i++ {
		prompt := renderPrompt(a, "postCreationTemplate", st, extra)
		if why != "" {
			prompt += "\nYour previous post " + why + ". Write a different one.\n"
		}
		res, err := a.UseModel(ctx, sdk.ModelRequest{Type: sdk.ModelTextLarge, RunID: runID, Prompt: prompt, System: system(a)})
		if err != nil {
			return fmt.Errorf("%s: ask the model: %w", ev.Type, err)
		}
		text, th := parsePost(res.Text)
		switch {
		case text == "":
			why = "was empty"
		case recent[normalizePost(text)]:
			why = "repeated a recent post"
		case isRefusal(text):
			why = "was a refusal"
		default:
			post, thought = text, th
			continue
		}
		a.Logger(sdk.WithRunID(ctx, runID)).Warn("unusable post; asking again", "attempt", i+1, "why", why, "post", truncate(text, 200))
	}
	if post == "" {
		return fmt.Errorf("%s: no usable post after %d attempts (the last %s)", ev.Type, attempts, why)
	}
	m := &sdk.Memory{ID: sdk.NewID(), EntityID: a.ID, AgentID: a.ID, RoomID: roomID, WorldID: worldID, CreatedAt: time.Now().UnixMilli(),
		Content: sdk.Content{Text: post, Thought: thought, Source: source, ChannelType: sdk.ChannelFeed,
			Extra: map[string]any{"type": "post", "runId": runID}}}
	_, _, err = db.CreateMemory(ctx, m, sdk.TableMessages, false)
	b.forgetWindow(a, roomID)
	if err != nil {
		return fmt.Errorf("%s: store the post: %w", ev.Type, err)
	}
	if err := b.sendPost(ctx, a, ev.RunID, target, sdk.Target{Source: source, RoomID: roomID, ChannelID: room.ChannelID, ServerID: room.ServerID}, m); err != nil {
		// A post nobody saw is not the agent's: it must not count as posted.
		if derr := db.DeleteMemory(context.WithoutCancel(ctx), m.ID); derr != nil {
			a.Logger(ctx).Warn("forgetting an unsent post failed", "memory", m.ID, "error", derr)
		}
		b.forgetWindow(a, roomID)
		return fmt.Errorf("%s: send the post: %w", ev.Type, err)
	}
	return nil
}

// sendPost delivers a post: to the target the payload named, else through
// the host run the event named, else to the feed.
func (b *bootstrap) sendPost(ctx context.Context, a *sdk.Agent, runID string, target *sdk.Target, feed sdk.Target, m *sdk.Memory) error {
	if target != nil {
		t := *target
		if t.RoomID == "" && t.ChannelID == "" {
			t.RoomID, t.ChannelID, t.ServerID = feed.RoomID, feed.ChannelID, firstNonEmpty(t.ServerID, feed.ServerID)
		}
		_, err := a.SendMessage(ctx, t, m.Content)
		return err
	}
	if runID != "" {
		_, err := a.Respond(ctx, runID, m.Content, m.ID)
		if err == nil || !errors.Is(err, sdk.ErrNotFound) {
			return err
		}
	}
	_, err := a.SendMessage(ctx, feed, m.Content)
	return err
}

// recentPosts returns the room's recent texts, normalized, to catch a
// repeated post.
func (b *bootstrap) recentPosts(ctx context.Context, a *sdk.Agent, roomID string) map[string]bool {
	out := map[string]bool{}
	ms, err := storage.For(a).GetMemories(ctx, storage.MemoryQuery{Table: sdk.TableMessages, RoomID: roomID, Count: b.settings(a).conversationLen, OmitEmbeddings: true})
	if err != nil {
		return out
	}
	for _, m := range ms {
		if t := normalizePost(m.Content.Text); t != "" {
			out[t] = true
		}
	}
	return out
}

// parsePost reads the model's post: <post> of the XML answer, or its
// <text>, or a plain-text answer; tidied (quotes around it removed,
// escaped newlines made real).
func parsePost(s string) (post, thought string) {
	if n := parseXML(s); n != nil && (n.has("post") || n.has("text") || n.has("thought")) {
		post, thought = firstNonEmpty(n.get("post"), n.get("text")), n.get("thought")
	} else if !markupRe.MatchString(s) {
		post = stripFences(s)
	}
	return cleanPost(post), thought
}

var blankLines = regexp.MustCompile(`\n{3,}`)

func cleanPost(s string) string {
	s = strings.TrimSpace(s)
	s = strings.ReplaceAll(s, `\n`, "\n")
	for len(s) >= 2 {
		f, l := s[0], s[len(s)-1]
		if (f == '"' && l == '"') || (f == '\'' && l == '\'') || (f == '`' && l == '`') {
			s = strings.TrimSpace(s[1 : len(s)-1])
			continue
		}
		break
	}
	return strings.TrimSpace(blankLines.ReplaceAllString(s, "\n\n"))
}

func normalizePost(s string) string {
	return strings.ToLower(strings.Join(strings.Fields(s), " "))
}

// refusalRe matches the ways chat models decline to write something.
var refusalRe = regexp.MustCompile(`(?i)(\bas an ai\b|\bas a language model\b|\bi(?:'m| am) (?:not able|unable) to (?:help|assist|create|generate|write|produce|provide|comply)\b|\bi (?:can(?:no|')t|will not|won't) (?:help|assist|create|generate|write|produce|provide|comply)\b|\bi(?:'m| am) not comfortable\b|\bi (?:do not|don't) feel comfortable\b|\bi must (?:decline|refuse)\b|\bagainst my (?:guidelines|policies|programming)\b|\bviolates? (?:my|the) (?:content )?(?:policy|policies|guidelines)\b)`)

// isRefusal reports whether a post reads like a model declining to write
// one.
func isRefusal(s string) bool { return refusalRe.MatchString(s) }
