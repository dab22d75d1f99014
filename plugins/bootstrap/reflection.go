package bootstrap

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
)

// reflectionKey + room id holds the id of the last message reflected on.
func reflectionKey(roomID string) string { return roomID + "-reflection-last-processed" }

func (b *bootstrap) reflectionEvaluator() sdk.Evaluator {
	return sdk.Evaluator{
		Name:        "REFLECTION",
		Description: "Every few messages, note new facts about the people in the conversation and how they relate.",
		Similes:     []string{"REFLECT", "SELF_REFLECT", "EVALUATE_INTERACTION"},
		Validate: func(ctx context.Context, a *sdk.Agent, msg *sdk.Memory, st *sdk.State) bool {
			s := b.settings(a)
			if s.disableReflection {
				return false
			}
			interval := s.reflectionEvery
			scheduling := ctx.Value(schedulingKey{}) != nil
			p, ok := pendingOf(a, msg.RoomID)
			if ok && p.msgID == msg.ID {
				// Its evaluation runs now: the room was counted when it
				// was queued, and only this room's evaluations, which run
				// one at a time in order, reflect on it; unless one of
				// them, held back with it while messages were handled,
				// reflected since (quietGate).
				n, known := knownSince(a, msg.RoomID)
				return !known || n >= interval
			}
			if scheduling && ok && (!p.started || p.n < interval) {
				// A reflection is already queued for the room. One that
				// has not started (evaluations yield to messages) reads
				// the room when it does, and covers these messages; one
				// under way covers the messages before it, and the next
				// is queued once the room has had its interval since.
				return false
			}
			if n, ok := knownSince(a, msg.RoomID); ok && n < interval {
				return false
			}
			n, read, err := b.messagesSinceReflection(ctx, a, msg.RoomID)
			if err != nil {
				return false
			}
			setSince(a, msg.RoomID, n)
			if n < interval {
				return false
			}
			if scheduling {
				setPending(a, msg.RoomID, msg.ID, read)
			}
			return true
		},
		Handler: b.reflect,
	}
}

// schedulingKey marks the context of a validation asked before an
// evaluation is queued (anyEvaluatorMayRun), as opposed to the one the
// evaluation itself runs.
type schedulingKey struct{}

// pendingReflection remembers, per agent and room, the message whose
// queued evaluation will reflect, and how many messages this plugin stored
// since. While that evaluation waits its turn (evaluations run after the
// reply, one at a time per room), the room's count since the last
// reflection stays above the interval: without this, every message until
// then would read the room again, be held as a task and be evaluated only
// for its validation to find, once the queued one has reflected, nothing
// to do. The entry goes when that evaluation is done, run or not.
var pendingReflection = struct {
	mu sync.Mutex
	m  map[string]pending
}{m: map[string]pending{}}

type pending struct {
	msgID string
	// n counts the messages stored since it was queued, or since it
	// started once started.
	n       int
	started bool
	// read is the room's recent messages as the validation read them,
	// for the evaluation's RECENT_MESSAGES while n is 0 (see
	// roomReadFor).
	read []sdk.Memory
}

func setPending(a *sdk.Agent, roomID, msgID string, read []sdk.Memory) {
	pendingReflection.mu.Lock()
	if len(pendingReflection.m) > 16384 {
		pendingReflection.m = map[string]pending{}
	}
	pendingReflection.m[sinceKey(a, roomID)] = pending{msgID: msgID, read: read}
	pendingReflection.mu.Unlock()
}

// roomReadFor returns the room's recent messages read when msgID's
// evaluation was queued, if this plugin stored none in the room since:
// the evaluation, which runs at once unless an earlier one of the room's
// is still running, shows the conversation the reflection was decided on
// without reading it again. A message another plugin stored in the room
// in between (the host stores this plugin's replies, counted here) is not
// in it.
func roomReadFor(a *sdk.Agent, roomID, msgID string) ([]sdk.Memory, bool) {
	pendingReflection.mu.Lock()
	defer pendingReflection.mu.Unlock()
	p, ok := pendingReflection.m[sinceKey(a, roomID)]
	if !ok || p.msgID != msgID || p.n != 0 || p.read == nil {
		return nil, false
	}
	return slices.Clone(p.read), true
}

// reflectionStarted tells the room's pending reflection, if msgID's
// evaluation is it, that its state is composed: the messages stored from
// now on are not in it.
func reflectionStarted(a *sdk.Agent, roomID, msgID string) {
	pendingReflection.mu.Lock()
	defer pendingReflection.mu.Unlock()
	k := sinceKey(a, roomID)
	if p, ok := pendingReflection.m[k]; ok && p.msgID == msgID {
		p.started, p.n, p.read = true, 0, nil
		pendingReflection.m[k] = p
	}
}

func pendingOf(a *sdk.Agent, roomID string) (pending, bool) {
	pendingReflection.mu.Lock()
	defer pendingReflection.mu.Unlock()
	p, ok := pendingReflection.m[sinceKey(a, roomID)]
	return p, ok
}

// evaluated lets go of the room's pending reflection once the evaluation of
// msgID, which set it, is done. The messages stored since it was queued
// all came after msgID: they are a lower bound of the count since the
// last reflection, which the reflection reset to none.
func evaluated(a *sdk.Agent, roomID, msgID string) {
	pendingReflection.mu.Lock()
	p, ok := pendingReflection.m[sinceKey(a, roomID)]
	ok = ok && p.msgID == msgID
	if ok {
		delete(pendingReflection.m, sinceKey(a, roomID))
	}
	pendingReflection.mu.Unlock()
	if !ok {
		return
	}
	sinceReflection.mu.Lock()
	if n, known := sinceReflection.m[sinceKey(a, roomID)]; known && n < p.n {
		sinceReflection.m[sinceKey(a, roomID)] = p.n
	}
	sinceReflection.mu.Unlock()
}

// lastReflected remembers, per agent and room, the id of the last message
// reflected on, as stored under reflectionKey: only this plugin writes it
// (markReflected), so once read or written it need not be read again.
var lastReflected = struct {
	mu sync.Mutex
	m  map[string]string
}{m: map[string]string{}}

func lastReflectedOn(a *sdk.Agent, roomID string) (string, bool) {
	lastReflected.mu.Lock()
	defer lastReflected.mu.Unlock()
	id, ok := lastReflected.m[sinceKey(a, roomID)]
	return id, ok
}

func setLastReflected(a *sdk.Agent, roomID, msgID string) {
	lastReflected.mu.Lock()
	if len(lastReflected.m) > 16384 {
		lastReflected.m = map[string]string{}
	}
	lastReflected.m[sinceKey(a, roomID)] = msgID
	lastReflected.mu.Unlock()
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
	pendingReflection.mu.Lock()
	if p, ok := pendingReflection.m[sinceKey(a, roomID)]; ok {
		p.n++
		p.read = nil
		pendingReflection.m[sinceKey(a, roomID)] = p
	}
	pendingReflection.mu.Unlock()
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
// reflected on; read is the room's recent messages it read.
func (b *bootstrap) messagesSinceReflection(ctx context.Context, a *sdk.Agent, roomID string) (n int, read []sdk.Memory, err error) {
	last, known := lastReflectedOn(a, roomID)
	if !known {
		if _, err := getJSON(ctx, a, reflectionKey(roomID), &last); err != nil {
			return 0, nil, err
		}
		setLastReflected(a, roomID, last)
	}
	ms, err := storage.For(a).GetMemories(ctx, recentMessagesQuery(b, a, roomID))
	if err != nil {
		return 0, nil, err
	}
	for _, m := range ms {
		if m.ID == last {
			break
		}
		if isActionResult(&m) || strings.TrimSpace(m.Content.Text) == "" {
			continue
		}
		n++
	}
	return n, ms, nil
}

// recentMessagesQuery reads the room's recent messages, as RECENT_MESSAGES
// shows them.
func recentMessagesQuery(b *bootstrap, a *sdk.Agent, roomID string) storage.MemoryQuery {
	return storage.MemoryQuery{Table: sdk.TableMessages, RoomID: roomID, Count: b.settings(a).conversationLen, OmitEmbeddings: true}
}

// reflect asks TEXT_SMALL what the conversation taught: new facts are
// stored in "facts" (with an embedding, when the agent has a model for it)
// and relationships are created or strengthened.
func (b *bootstrap) reflect(ctx context.Context, a *sdk.Agent, call *sdk.EvaluatorCall) error {
	msg := call.Message
	people, _, _ := b.describeEntities(ctx, a, msg.RoomID)
	known, err := cachedKnownFacts(ctx, a, msg.RoomID)
	if err != nil {
		return err
	}
	var knownLines []string
	for _, f := range known {
		knownLines = append(knownLines, "- "+oneLine(f.Content.Text))
	}
	rels, _ := b.cachedRelationships(ctx, a, msg.EntityID)
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
	setLastReflected(a, msg.RoomID, msg.ID)
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
		m := &sdk.Memory{ID: sdk.NewID(), EntityID: msg.EntityID, AgentID: a.ID, RoomID: msg.RoomID, WorldID: msg.WorldID,
			CreatedAt: time.Now().UnixMilli(), Content: sdk.Content{Text: claim},
			Metadata: map[string]any{"type": "custom", "source": "reflection", "factType": firstNonEmpty(f.get("type"), "fact"), "messageId": msg.ID}}
		if embed {
			if res, err := a.UseModel(ctx, sdk.ModelRequest{Type: sdk.ModelTextEmbedding, RunID: runID, Text: claim}); err == nil {
				m.Embedding = res.Embedding
			}
		}
		_, _, err := storage.For(a).CreateMemory(ctx, m, sdk.TableFacts, true)
		forgetKnownFacts(a, msg.RoomID)
		if err != nil {
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
