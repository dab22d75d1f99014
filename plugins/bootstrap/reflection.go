package bootstrap

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/agenthost/agenthost/sdk"
	"github.com/google/uuid"
)

// reflectionKey + room id holds the id of the last message reflected on.
func reflectionKey(roomID string) string { return roomID + "-reflection-last-processed" }

// reflectionInterval is how many new messages of a room make a reflection:
// REFLECTION_INTERVAL, else a quarter of the conversation length, as
// elizaOS does.
func reflectionInterval(a *sdk.Agent) int {
	if n := settingInt(a, SettingReflectionEvery, 0); n > 0 {
		return n
	}
	return (conversationLength(a) + 3) / 4
}

func (b *bootstrap) reflectionEvaluator() sdk.Evaluator {
	return sdk.Evaluator{
		Name:        "REFLECTION",
		Description: "Every few messages, note new facts about the people in the conversation and how they relate.",
		Similes:     []string{"REFLECT", "SELF_REFLECT", "EVALUATE_INTERACTION"},
		Validate: func(ctx context.Context, a *sdk.Agent, msg *sdk.Memory, st *sdk.State) bool {
			if settingBool(a, SettingDisableReflexion) {
				return false
			}
			interval := reflectionInterval(a)
			if n, ok := knownSince(a, msg.RoomID); ok && n < interval {
				return false
			}
			n, err := b.messagesSinceReflection(ctx, a, msg.RoomID)
			if err != nil {
				return false
			}
			setSince(a, msg.RoomID, n)
			return n >= interval
		},
		Handler: b.reflect,
	}
}

// sinceReflection remembers, per agent and room, how many messages this
// plugin stored since the last reflection, so the evaluator's validation
// need not read the room on every message. It is only a lower bound (other
// plugins may store messages too): when it reaches the interval the room is
// counted for real.
var sinceReflection = struct {
	mu sync.Mutex
	m  map[string]int
}{m: map[string]int{}}

func sinceKey(a *sdk.Agent, roomID string) string { return a.ID + "\x00" + roomID }

// countStored notes one more message stored in a room.
func countStored(a *sdk.Agent, roomID string) {
	sinceReflection.mu.Lock()
	if n, ok := sinceReflection.m[sinceKey(a, roomID)]; ok {
		sinceReflection.m[sinceKey(a, roomID)] = n + 1
	}
	sinceReflection.mu.Unlock()
}

// setSince records a count read from the database (or 0 after a
// reflection). The map is bounded: past a limit it starts again empty,
// which only costs a database count per room.
func setSince(a *sdk.Agent, roomID string, n int) {
	sinceReflection.mu.Lock()
	if len(sinceReflection.m) > 16384 {
		sinceReflection.m = map[string]int{}
	}
	sinceReflection.m[sinceKey(a, roomID)] = n
	sinceReflection.mu.Unlock()
}

func knownSince(a *sdk.Agent, roomID string) (int, bool) {
	sinceReflection.mu.Lock()
	defer sinceReflection.mu.Unlock()
	n, ok := sinceReflection.m[sinceKey(a, roomID)]
	return n, ok
}

// messagesSinceReflection counts the room's messages after the last one
// reflected on.
func (b *bootstrap) messagesSinceReflection(ctx context.Context, a *sdk.Agent, roomID string) (int, error) {
	var last string
	if _, err := getJSON(ctx, a, reflectionKey(roomID), &last); err != nil {
		return 0, err
	}
	ms, err := a.GetMemories(ctx, sdk.MemoryQuery{Table: sdk.TableMessages, RoomID: roomID, Count: conversationLength(a), OmitEmbeddings: true})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range ms {
		if m.ID == last {
			break
		}
		if isActionResult(&m) || strings.TrimSpace(m.Content.Text) == "" {
			continue
		}
		n++
	}
	return n, nil
}

// reflect asks TEXT_SMALL what the conversation taught: new facts are
// stored in "facts" (with an embedding, when the agent has a model for it)
// and relationships are created or strengthened.
func (b *bootstrap) reflect(ctx context.Context, a *sdk.Agent, call *sdk.EvaluatorCall) error {
	msg := call.Message
	people, _, _ := b.describeEntities(ctx, a, msg.RoomID)
	known, err := a.GetMemories(ctx, sdk.MemoryQuery{Table: sdk.TableFacts, RoomID: msg.RoomID, Count: 30, OmitEmbeddings: true})
	if err != nil {
		return err
	}
	var knownLines []string
	for _, f := range known {
		knownLines = append(knownLines, "- "+oneLine(f.Content.Text))
	}
	rels, _ := b.store.Relationships(ctx, a, msg.EntityID)
	var relLines []string
	for _, r := range rels {
		relLines = append(relLines, fmt.Sprintf("- %s → %s: %s (%d interactions)", r.SourceEntityID, r.TargetEntityID, strings.Join(r.Tags, ", "), interactions(&r)))
	}
	recent := ""
	if call.State != nil {
		recent, _ = call.State.Values["recentMessages"].(string)
	}
	if recent == "" {
		if res, err := b.recentMessagesProvider(ctx, a, msg, nil); err == nil {
			recent, _ = res.Values["recentMessages"].(string)
		}
	}
	bio := ""
	if a.Character != nil {
		bio = strings.Join(a.Character.Bio, "\n")
	}
	extra := map[string]any{"entitiesInRoom": people, "knownFacts": strings.Join(knownLines, "\n"),
		"existingRelationships": strings.Join(relLines, "\n"), "recentMessages": recent, "bio": bio}
	prompt := renderPrompt(a, "reflectionTemplate", call.State, extra)
	res, err := a.UseModel(ctx, sdk.ModelRequest{Type: sdk.ModelTextSmall, RunID: call.RunID, Prompt: prompt, System: system(a)})
	if err != nil {
		return fmt.Errorf("reflect: %w", err)
	}
	n := parseXML(res.Text)
	if n == nil {
		// Nothing readable: try again after the next few messages.
		return b.markReflected(ctx, a, msg)
	}
	if err := b.storeFacts(ctx, a, msg, call.RunID, n.child("facts"), known); err != nil {
		return err
	}
	if err := b.storeRelationships(ctx, a, msg, n.child("relationships")); err != nil {
		return err
	}
	return b.markReflected(ctx, a, msg)
}

func (b *bootstrap) markReflected(ctx context.Context, a *sdk.Agent, msg *sdk.Memory) error {
	if err := setJSON(ctx, a, reflectionKey(msg.RoomID), msg.ID); err != nil {
		return err
	}
	setSince(a, msg.RoomID, 0)
	return nil
}

func (b *bootstrap) storeFacts(ctx context.Context, a *sdk.Agent, msg *sdk.Memory, runID string, facts *node, known []sdk.Memory) error {
	if facts == nil {
		return nil
	}
	seen := map[string]bool{}
	for _, f := range known {
		seen[strings.ToLower(strings.TrimSpace(f.Content.Text))] = true
	}
	var bio string
	if a.Character != nil {
		bio = strings.ToLower(strings.Join(a.Character.Bio, " "))
	}
	embed := b.info(ctx, a).HasModel(sdk.ModelTextEmbedding)
	for _, f := range facts.all("fact") {
		claim := strings.TrimSpace(f.get("claim"))
		if claim == "" && len(f.Children) == 0 {
			claim = f.Text
		}
		key := strings.ToLower(claim)
		if claim == "" || seen[key] || strings.EqualFold(f.get("already_known"), "true") ||
			strings.EqualFold(f.get("in_bio"), "true") || (bio != "" && strings.Contains(bio, key)) {
			continue
		}
		seen[key] = true
		m := &sdk.Memory{ID: uuid.NewString(), EntityID: msg.EntityID, AgentID: a.ID, RoomID: msg.RoomID, WorldID: msg.WorldID,
			CreatedAt: time.Now().UnixMilli(), Content: sdk.Content{Text: claim},
			Metadata: map[string]any{"type": "custom", "source": "reflection", "factType": firstNonEmpty(f.get("type"), "fact"), "messageId": msg.ID}}
		if embed {
			if res, err := a.UseModel(ctx, sdk.ModelRequest{Type: sdk.ModelTextEmbedding, RunID: runID, Text: claim}); err == nil {
				m.Embedding = res.Embedding
			}
		}
		if _, _, err := a.CreateMemory(ctx, m, sdk.TableFacts, true); err != nil {
			return fmt.Errorf("store fact: %w", err)
		}
	}
	return nil
}

func (b *bootstrap) storeRelationships(ctx context.Context, a *sdk.Agent, msg *sdk.Memory, rels *node) error {
	if rels == nil {
		return nil
	}
	for _, r := range rels.all("relationship") {
		src := resolveEntity(ctx, a, msg, r.get("sourceEntityId"))
		dst := resolveEntity(ctx, a, msg, r.get("targetEntityId"))
		if src == nil || dst == nil || src.ID == dst.ID {
			continue
		}
		tags := splitList(r.get("tags"))
		existing, err := b.store.Relationships(ctx, a, src.ID)
		if err != nil {
			return err
		}
		var rel *Relationship
		for i := range existing {
			if existing[i].SourceEntityID == src.ID && existing[i].TargetEntityID == dst.ID {
				rel = &existing[i]
				break
			}
		}
		if rel == nil {
			rel = &Relationship{SourceEntityID: src.ID, TargetEntityID: dst.ID, Metadata: map[string]any{}}
		}
		if rel.Metadata == nil {
			rel.Metadata = map[string]any{}
		}
		rel.Metadata["interactions"] = interactions(rel) + 1
		for _, t := range tags {
			if !slices.Contains(rel.Tags, t) {
				rel.Tags = append(rel.Tags, t)
			}
		}
		if err := b.store.SaveRelationship(ctx, a, *rel); err != nil {
			return err
		}
	}
	return nil
}
