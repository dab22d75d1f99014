package bootstrap

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
)

// providers lists every provider of the plugin. Positions: CHARACTER first,
// the conversation (RECENT_MESSAGES, which ends with the received message)
// last but for ACTION_STATE, so the prompt reads as the offline model
// expects.
func (b *bootstrap) providers() []sdk.Provider {
	return []sdk.Provider{
		{Name: "CHARACTER", Description: "The agent's name, bio, topics, adjectives, style and example messages.", Position: -100, Get: b.characterProvider},
		{Name: "ACTIONS", Description: "The actions the agent may take for this message.", Position: -1, Get: b.actionsProvider},
		{Name: "SHOULD_RESPOND", Description: "Examples of when to answer, stay silent or stop.", Position: -1, Private: true, Get: b.shouldRespondProvider},
		{Name: "ANXIETY", Description: "How to behave in this kind of room.", Get: b.anxietyProvider},
		{Name: "CAPABILITIES", Description: "What the agent's plugins can do.", Get: b.capabilitiesProvider},
		{Name: "PROVIDERS", Description: "The providers the model may ask for.", Get: b.providersProvider},
		{Name: "EVALUATORS", Description: "The evaluators that run after a response.", Private: true, Get: b.evaluatorsProvider},
		{Name: "ROLES", Description: "The roles of the people in the server (group rooms only).", Get: b.rolesProvider},
		{Name: "SETTINGS", Description: "The server's settings and which still need a value.", Get: b.settingsProvider},
		{Name: "CHOICE", Description: "Pending tasks waiting for someone to choose an option.", Get: b.choiceProvider},
		{Name: "ENTITIES", Description: "The people in the room: names, ids and details.", Dynamic: true, Get: b.entitiesProvider},
		{Name: "RELATIONSHIPS", Description: "The sender's relationships with other people.", Dynamic: true, Get: b.relationshipsProvider},
		{Name: "FACTS", Description: "Facts the agent knows that bear on the conversation.", Dynamic: true, Get: b.factsProvider},
		{Name: "WORLD", Description: "The server: its name, rooms and members.", Dynamic: true, Get: b.worldProvider},
		{Name: "ATTACHMENTS", Description: "Files and images shared in the conversation.", Dynamic: true, Get: b.attachmentsProvider},
		{Name: "TIME", Description: "The current date and time in UTC.", Position: 50, Get: b.timeProvider},
		{Name: "RECENT_MESSAGES", Description: "The latest messages of the room, and the message to answer.", Position: 100, Get: b.recentMessagesProvider},
		{Name: "ACTION_STATE", Description: "The plan and results of the actions run so far.", Position: 150, Get: b.actionStateProvider},
	}
}

func shuffled[T any](in []T) []T {
	out := slices.Clone(in)
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func (b *bootstrap) characterProvider(ctx context.Context, a *sdk.Agent, msg *sdk.Memory, st *sdk.State) (sdk.ProviderResult, error) {
	ch := a.Character
	if ch == nil {
		return sdk.ProviderResult{Values: map[string]any{"agentName": a.Name()}}, nil
	}
	post := msg.Content.ChannelType == sdk.ChannelFeed || msg.Content.ChannelType == sdk.ChannelThread
	var parts []string
	values := map[string]any{"agentName": ch.Name, "system": ch.System}

	bio := shuffled([]string(ch.Bio))
	if len(bio) > 10 {
		bio = bio[:10]
	}
	values["bio"] = strings.Join(bio, " ")
	if len(bio) > 0 {
		parts = append(parts, fmt.Sprintf("# About %s\n%s", ch.Name, strings.Join(bio, "\n")))
	}
	if len(ch.Topics) > 0 {
		topics := shuffled(ch.Topics)
		values["topic"] = topics[0]
		others := topics[1:]
		if len(others) > 5 {
			others = others[:5]
		}
		values["topics"] = strings.Join(others, ", ")
		line := fmt.Sprintf("%s is interested in %s", ch.Name, topics[0])
		if len(others) > 0 {
			line += fmt.Sprintf(", and also in %s", strings.Join(others, ", "))
		}
		parts = append(parts, line+".")
	}
	if len(ch.Adjectives) > 0 {
		adj := ch.Adjectives[rand.IntN(len(ch.Adjectives))]
		values["adjective"] = adj
		parts = append(parts, fmt.Sprintf("%s is %s.", ch.Name, adj))
	}
	style := slices.Clone(ch.Style.All)
	if post {
		style = append(style, ch.Style.Post...)
	} else {
		style = append(style, ch.Style.Chat...)
	}
	if len(style) > 0 {
		dirs := "- " + strings.Join(style, "\n- ")
		if post {
			values["postDirections"] = dirs
		} else {
			values["messageDirections"] = dirs
		}
		parts = append(parts, fmt.Sprintf("# Style of %s's messages\n%s", ch.Name, dirs))
	}
	if post && len(ch.PostExamples) > 0 {
		ex := shuffled(ch.PostExamples)
		if len(ex) > 5 {
			ex = ex[:5]
		}
		text := "- " + strings.Join(ex, "\n- ")
		values["characterPostExamples"] = text
		parts = append(parts, fmt.Sprintf("# Example Posts by %s\n%s", ch.Name, text))
	}
	if !post && len(ch.MessageExamples) > 0 {
		convs := shuffled(ch.MessageExamples)
		if len(convs) > 5 {
			convs = convs[:5]
		}
		var blocks []string
		for _, conv := range convs {
			var lines []string
			for _, m := range conv {
				lines = append(lines, fmt.Sprintf("%s: %s", m.Name, strings.ReplaceAll(m.Content.Text, "\n", " ")))
			}
			blocks = append(blocks, strings.Join(lines, "\n"))
		}
		text := strings.Join(blocks, "\n\n")
		values["characterMessageExamples"] = text
		// The heading must not start with "Conversation Messages": these
		// lines are examples, not the conversation.
		parts = append(parts, fmt.Sprintf("# Example Conversations for %s\n%s", ch.Name, text))
	}
	return sdk.ProviderResult{Text: strings.Join(parts, "\n\n"), Values: values}, nil
}

func (b *bootstrap) timeProvider(ctx context.Context, a *sdk.Agent, msg *sdk.Memory, st *sdk.State) (sdk.ProviderResult, error) {
	now := time.Now().UTC()
	return sdk.ProviderResult{
		Text:   "# Time\nThe current date and time is " + now.Format("Monday, 2 January 2006 15:04 UTC") + ".",
		Values: map[string]any{"time": now.Format(time.RFC3339)},
	}, nil
}

// anxiety lines nudge behaviour by kind of room; three are picked at random
// per prompt, as elizaOS does.
var anxiety = map[string][]string{
	"group": {
		"In a group, take part only when the message is for you or you have something useful to add.",
		"When unsure whether a group message is meant for you, prefer IGNORE.",
		"Do not answer a question someone else was asked.",
		"Keep group messages short; several people are reading.",
		"If the people in the room are talking among themselves, let them.",
		"Do not repeat what someone else has just said.",
	},
	"dm": {
		"In a direct conversation, answer what was asked, plainly.",
		"Keep answers short unless more detail is asked for.",
		"Ask at most one question back.",
		"Do not pad answers with pleasantries.",
		"If you do not know, say so.",
	},
	"voice": {
		"Spoken answers must be very brief: a sentence or two.",
		"Avoid lists, links and formatting that cannot be spoken.",
		"Use plain words that are easy to hear.",
	},
}

func (b *bootstrap) anxietyProvider(ctx context.Context, a *sdk.Agent, msg *sdk.Memory, st *sdk.State) (sdk.ProviderResult, error) {
	kind := "group"
	switch msg.Content.ChannelType {
	case sdk.ChannelDM, sdk.ChannelAPI, sdk.ChannelSelf:
		kind = "dm"
	case sdk.ChannelVoiceDM, sdk.ChannelVoiceGroup:
		kind = "voice"
	}
	lines := shuffled(anxiety[kind])
	if len(lines) > 3 {
		lines = lines[:3]
	}
	text := fmt.Sprintf("# Things %s keeps in mind\n- %s", a.Name(), strings.Join(lines, "\n- "))
	return sdk.ProviderResult{Text: text, Values: map[string]any{"anxiety": text}}, nil
}

// shouldRespondExamples teach the should-respond decision. Only the
// should-respond prompt includes them (the provider is private).
var shouldRespondExamples = []string{
	"{{name1}}: Hey {{agentName}}, can you help me with something?\nResult: RESPOND",
	"{{name1}}: Did you see the game last night?\n{{name2}}: Yes, what a finish!\nResult: IGNORE",
	"{{name1}}: {{agentName}}, please be quiet for a while.\nResult: STOP",
	"{{name1}}: Does anyone know how to reset a router?\nResult: RESPOND",
	"{{name1}}: {{name2}}, are you coming tonight?\nResult: IGNORE",
	"{{name1}}: Thanks {{agentName}}, that's all I needed.\nResult: IGNORE",
	"{{name1}}: Stop talking, {{agentName}}.\nResult: STOP",
	"{{name1}}: What do you think, {{agentName}}?\nResult: RESPOND",
	"{{name1}}: lol\nResult: IGNORE",
}

func (b *bootstrap) shouldRespondProvider(ctx context.Context, a *sdk.Agent, msg *sdk.Memory, st *sdk.State) (sdk.ProviderResult, error) {
	ex := shuffled(shouldRespondExamples)[:7]
	text := strings.ReplaceAll("# When to answer\n"+strings.Join(ex, "\n\n"), "{{agentName}}", a.Name())
	return sdk.ProviderResult{Text: text, Values: map[string]any{"shouldRespondExamples": text}}, nil
}

// actionsProvider offers the actions whose validate passes for this
// message: each plugin validates its own, through the host.
func (b *bootstrap) actionsProvider(ctx context.Context, a *sdk.Agent, msg *sdk.Memory, st *sdk.State) (sdk.ProviderResult, error) {
	info := b.info(ctx, a)
	all := info.Actions()
	valid, err := b.validateActions(ctx, a, msg, st, all)
	var offered []sdk.ActionInfo
	if err != nil {
		a.Logger(ctx).Warn("validating actions failed; offering every action", "error", err)
		offered = all
	} else {
		for _, act := range all {
			if slices.Contains(valid, act.Name) {
				offered = append(offered, act)
			}
		}
	}
	if len(offered) == 0 {
		return sdk.ProviderResult{}, nil
	}
	var names []string
	var lines []string
	var data []any
	for _, act := range offered {
		names = append(names, act.Name)
		lines = append(lines, fmt.Sprintf("- %s: %s", act.Name, act.Description))
		data = append(data, map[string]any{"name": act.Name, "description": act.Description, "plugin": act.Plugin})
	}
	text := "# Available Actions\n" + strings.Join(lines, "\n")
	values := map[string]any{"actionNames": strings.Join(names, ", "), "actionsText": text}
	if ex := actionExamples(offered, a.Name(), 10); ex != "" {
		values["actionExamples"] = ex
		text += "\n\n# Action Examples\n" + ex
	}
	return sdk.ProviderResult{Text: text, Values: values, Data: map[string]any{"actions": data}}, nil
}

// actionExamples formats up to n example conversations of the offered
// actions, the agent's lines marked with the actions they take.
func actionExamples(actions []sdk.ActionInfo, agentName string, n int) string {
	var convs [][]sdk.ExampleMessage
	for _, act := range actions {
		convs = append(convs, act.Examples...)
	}
	convs = shuffled(convs)
	if len(convs) > n {
		convs = convs[:n]
	}
	var blocks []string
	for _, conv := range convs {
		var lines []string
		for _, m := range conv {
			name := strings.ReplaceAll(m.Name, "{{agentName}}", agentName)
			text := strings.ReplaceAll(strings.ReplaceAll(m.Content.Text, "\n", " "), "{{agentName}}", agentName)
			line := fmt.Sprintf("%s: %s", name, text)
			if len(m.Content.Actions) > 0 {
				line += fmt.Sprintf(" (actions: %s)", strings.Join(m.Content.Actions, ", "))
			}
			lines = append(lines, line)
		}
		blocks = append(blocks, strings.Join(lines, "\n"))
	}
	return strings.Join(blocks, "\n\n")
}

func (b *bootstrap) providersProvider(ctx context.Context, a *sdk.Agent, msg *sdk.Memory, st *sdk.State) (sdk.ProviderResult, error) {
	var lines []string
	var names []string
	for _, p := range b.info(ctx, a).Providers() {
		if p.Dynamic && !p.Private {
			names = append(names, p.Name)
			lines = append(lines, fmt.Sprintf("- %s: %s", p.Name, p.Description))
		}
	}
	if len(lines) == 0 {
		return sdk.ProviderResult{}, nil
	}
	text := "# Providers\nThese providers can be asked for in <providers> when their context is needed:\n" + strings.Join(lines, "\n")
	return sdk.ProviderResult{Text: text, Values: map[string]any{"dynamicProviders": strings.Join(names, ", ")}}, nil
}

func (b *bootstrap) evaluatorsProvider(ctx context.Context, a *sdk.Agent, msg *sdk.Memory, st *sdk.State) (sdk.ProviderResult, error) {
	var lines []string
	var names []string
	for _, e := range b.info(ctx, a).Evaluators() {
		names = append(names, e.Name)
		lines = append(lines, fmt.Sprintf("- %s: %s", e.Name, e.Description))
	}
	if len(lines) == 0 {
		return sdk.ProviderResult{}, nil
	}
	text := "# Evaluators\n" + strings.Join(lines, "\n")
	return sdk.ProviderResult{Text: text, Values: map[string]any{"evaluatorNames": strings.Join(names, ", "), "evaluators": text}}, nil
}

func (b *bootstrap) capabilitiesProvider(ctx context.Context, a *sdk.Agent, msg *sdk.Memory, st *sdk.State) (sdk.ProviderResult, error) {
	info := b.info(ctx, a)
	var lines []string
	for _, p := range info.Plugins {
		for _, s := range p.Services {
			lines = append(lines, fmt.Sprintf("- %s (%s): %s", s, p.Name, p.Description))
		}
	}
	var models []string
	seen := map[string]bool{}
	for _, p := range info.Plugins {
		for _, m := range p.Models {
			if !seen[m.Type] {
				seen[m.Type] = true
				models = append(models, m.Type)
			}
		}
	}
	sort.Strings(models)
	if len(lines) == 0 && len(models) == 0 {
		return sdk.ProviderResult{}, nil
	}
	var b2 strings.Builder
	fmt.Fprintf(&b2, "# %s's Capabilities", a.Name())
	if len(lines) > 0 {
		b2.WriteString("\n" + strings.Join(lines, "\n"))
	}
	if len(models) > 0 {
		fmt.Fprintf(&b2, "\n%s can use these kinds of model: %s.", a.Name(), strings.Join(models, ", "))
	}
	return sdk.ProviderResult{Text: b2.String(), Values: map[string]any{"capabilities": b2.String(), "modelTypes": strings.Join(models, ", ")}}, nil
}

// maxActionResults bounds the action results RECENT_MESSAGES shows.
const maxActionResults = 12

// recentMessagesProvider writes the conversation of the room, oldest first
// as "Name: text" lines, the results of recent actions, recent exchanges
// with the sender elsewhere, and last the message to answer.
func (b *bootstrap) recentMessagesProvider(ctx context.Context, a *sdk.Agent, msg *sdk.Memory, st *sdk.State) (sdk.ProviderResult, error) {
	// The sender's messages elsewhere are read while this room is: two
	// chains of round trips side by side rather than one after the other.
	elsewhere := make(chan []sdk.Memory, 1)
	go func() { elsewhere <- b.messagesElsewhere(ctx, a, msg) }()
	// The results of the room's recent actions are kept apart from its
	// messages (see sdk.TableActionResults); they are read at the same
	// time.
	done := make(chan []sdk.Memory, 1)
	go func() {
		rs, err := actionResults(ctx, a, msg.RoomID)
		if err != nil {
			a.Logger(ctx).Warn("reading the room's action results failed; the prompt goes without them", "room", msg.RoomID, "error", err)
		}
		done <- rs
	}()
	var ms []sdk.Memory
	var err error
	if r, ok := ctx.Value(readRoomKey{}).(roomRead); ok && r.roomID == msg.RoomID {
		ms = r.msgs
	} else if early, ok := takeEarlyRead(ctx, msg.RoomID); ok {
		ms, err = early()
		ms = withInFlight(ctx, msg.RoomID, ms, recentMessagesQuery(b, a, msg.RoomID).Count)
	} else {
		ms, err = b.recentMessages(ctx, a, msg.RoomID)
		ms = withInFlight(ctx, msg.RoomID, ms, recentMessagesQuery(b, a, msg.RoomID).Count)
	}
	actionResults := <-done
	if err != nil {
		return sdk.ProviderResult{}, err
	}
	ids := []string{msg.EntityID}
	for _, m := range ms {
		ids = append(ids, m.EntityID)
	}
	nm := names(ctx, a, ids...)
	name := func(id string) string {
		if n := nm[id]; n != "" {
			return n
		}
		return "User"
	}
	var convo, results []string
	// Action results stored among the messages by an older host count
	// too.
	messageCount := len(ms)
	ms = append(ms, actionResults...)
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].CreatedAt > ms[j].CreatedAt })
	for i := len(ms) - 1; i >= 0; i-- {
		m := &ms[i]
		if isActionResult(m) {
			status, _ := m.Content.Extra["actionStatus"].(string)
			action, _ := m.Content.Extra["actionName"].(string)
			line := fmt.Sprintf("- %s (%s)", action, status)
			if m.Content.Text != "" {
				line += ": " + oneLine(m.Content.Text)
			}
			results = append(results, line)
			continue
		}
		if strings.TrimSpace(m.Content.Text) == "" {
			continue
		}
		line := fmt.Sprintf("%s: %s", name(m.EntityID), oneLine(m.Content.Text))
		if n := len(m.Content.Attachments); n > 0 {
			line += fmt.Sprintf(" [%d attachment(s)]", n)
		}
		// One line per message keeps the "Name: text" shape that prompts
		// and the offline model rely on.
		convo = append(convo, line)
	}
	if len(results) > maxActionResults {
		results = results[len(results)-maxActionResults:]
	}
	sender := name(msg.EntityID)
	var parts []string
	conversation := "# Conversation Messages\n" + strings.Join(convo, "\n")
	parts = append(parts, conversation)
	if len(results) > 0 {
		parts = append(parts, "# Recent Action Results\n"+strings.Join(results, "\n"))
	}
	values := map[string]any{"recentMessages": conversation, "senderName": sender, "senderId": msg.EntityID,
		"recentMessageCount": messageCount}
	if other := interactionsElsewhere(a, msg, <-elsewhere, nm); other != "" {
		parts = append(parts, other)
		values["recentInteractions"] = other
	}
	if len(results) > 0 {
		values["recentActionResults"] = strings.Join(results, "\n")
	}
	received := ""
	if strings.TrimSpace(msg.Content.Text) != "" {
		received = fmt.Sprintf("# Received Message\n%s: %s", sender, msg.Content.Text)
		parts = append(parts, received)
		values["receivedMessage"] = received
	}
	return sdk.ProviderResult{Text: strings.Join(parts, "\n\n"), Values: values}, nil
}

// messagesElsewhere reads the latest messages in the sender's other rooms.
func (b *bootstrap) messagesElsewhere(ctx context.Context, a *sdk.Agent, msg *sdk.Memory) []sdk.Memory {
	if msg.EntityID == a.ID {
		return nil
	}
	rooms, err := participantRooms(ctx, a, msg.EntityID)
	if err != nil {
		return nil
	}
	var other []string
	for _, r := range rooms {
		if r.ID != msg.RoomID {
			other = append(other, r.ID)
		}
	}
	if len(other) == 0 {
		return nil
	}
	if len(other) > 10 {
		other = other[:10]
	}
	ms, err := storage.For(a).GetMemories(ctx, storage.MemoryQuery{Table: sdk.TableMessages, RoomIDs: other, Count: 10, OmitEmbeddings: true})
	if err != nil {
		return nil
	}
	return ms
}

// actionResults reads the results of the room's recent actions, reused
// until the agent's generation moves on (roomReadKey). The list returned
// must not be changed.
func actionResults(ctx context.Context, a *sdk.Agent, roomID string) ([]sdk.Memory, error) {
	return cachedAs(roomReadKey("results", a, roomID), func() ([]sdk.Memory, error) {
		return storage.For(a).GetMemories(ctx, storage.MemoryQuery{Table: sdk.TableActionResults, RoomID: roomID, Count: maxActionResults, OmitEmbeddings: true})
	})
}

// earlyReadKey carries an earlyRead to the run's first RECENT_MESSAGES.
type earlyReadKey struct{}

// earlyRead is the read of a room's recent messages a run starts as it
// begins, beside the message's store and the reads of prefetch, rather
// than once the state is composed. Only the run's first composition takes
// it: a later one (after the should-respond question, a model call) reads
// the room again, as messages may have come meanwhile.
type earlyRead struct {
	roomID string
	taken  atomic.Bool
	done   chan struct{}
	msgs   []sdk.Memory
	err    error
}

// readRoomEarly starts the read of the room's recent messages and returns
// ctx carrying it. The run's message is being stored meanwhile
// (inFlightKey): RECENT_MESSAGES adds it as the other reads do.
func (b *bootstrap) readRoomEarly(ctx context.Context, a *sdk.Agent, roomID string) context.Context {
	if roomID == "" {
		return ctx
	}
	r := &earlyRead{roomID: roomID, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.msgs, r.err = b.recentMessages(ctx, a, roomID)
	}()
	return context.WithValue(ctx, earlyReadKey{}, r)
}

// takeEarlyRead returns the wait for the run's early read of the room,
// unless another composition of the run took it.
func takeEarlyRead(ctx context.Context, roomID string) (func() ([]sdk.Memory, error), bool) {
	r, ok := ctx.Value(earlyReadKey{}).(*earlyRead)
	if !ok || r.roomID != roomID || !r.taken.CompareAndSwap(false, true) {
		return nil, false
	}
	return func() ([]sdk.Memory, error) {
		<-r.done
		return r.msgs, r.err
	}, true
}

// participantRooms lists the rooms an entity takes part in, reused for
// lookupTTL. The list returned must not be changed.
func participantRooms(ctx context.Context, a *sdk.Agent, entityID string) ([]sdk.Room, error) {
	return cachedAs("prooms\x00"+a.ID+"\x00"+entityID, func() ([]sdk.Room, error) {
		return storage.For(a).GetRooms(ctx, storage.RoomQuery{ParticipantID: entityID})
	})
}

// interactionsElsewhere lists the latest messages between the sender and
// the agent in other rooms.
func interactionsElsewhere(a *sdk.Agent, msg *sdk.Memory, ms []sdk.Memory, nm map[string]string) string {
	var lines []string
	for i := len(ms) - 1; i >= 0; i-- {
		m := &ms[i]
		if (m.EntityID != msg.EntityID && m.EntityID != a.ID) || isActionResult(m) || strings.TrimSpace(m.Content.Text) == "" {
			continue
		}
		n := nm[m.EntityID]
		if n == "" {
			n = "User"
		}
		lines = append(lines, fmt.Sprintf("%s said: %s", n, truncate(oneLine(m.Content.Text), 200)))
	}
	if len(lines) == 0 {
		return ""
	}
	sender := nm[msg.EntityID]
	if sender == "" {
		sender = "the sender"
	}
	return fmt.Sprintf("# Recent Interactions between %s and %s elsewhere\n%s", a.Name(), sender, strings.Join(lines, "\n"))
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

// actionStateProvider shows the plan of the actions in progress and the
// results so far; the host keeps them in the message's state as each
// action finishes.
func (b *bootstrap) actionStateProvider(ctx context.Context, a *sdk.Agent, msg *sdk.Memory, st *sdk.State) (sdk.ProviderResult, error) {
	if st == nil {
		return sdk.ProviderResult{}, nil
	}
	var parts []string
	values := map[string]any{}
	if plan, ok := st.Data["actionPlan"].(map[string]any); ok {
		var b2 strings.Builder
		fmt.Fprintf(&b2, "# Action Plan\nStep %v of %v", plan["currentStep"], plan["totalSteps"])
		if t, _ := plan["thought"].(string); t != "" {
			fmt.Fprintf(&b2, "\nThought: %s", t)
		}
		if steps, ok := plan["steps"].([]any); ok {
			for i, s := range steps {
				if m, ok := s.(map[string]any); ok {
					fmt.Fprintf(&b2, "\n%d. %v (%v)", i+1, m["action"], m["status"])
				}
			}
		}
		parts = append(parts, b2.String())
		values["actionPlan"] = b2.String()
	}
	if res, ok := st.Data["actionResults"].([]any); ok && len(res) > 0 {
		var lines []string
		for _, r := range res {
			m, ok := r.(map[string]any)
			if !ok {
				continue
			}
			line := fmt.Sprintf("- %v: ", m["name"])
			result, _ := m["result"].(map[string]any)
			if ok, _ := result["success"].(bool); ok {
				line += "succeeded"
			} else {
				line += "failed"
			}
			if t, _ := result["text"].(string); t != "" {
				line += ": " + oneLine(t)
			}
			if e, _ := result["error"].(string); e != "" {
				line += " (" + oneLine(e) + ")"
			}
			lines = append(lines, line)
		}
		text := "# Previous Action Results\n" + strings.Join(lines, "\n")
		parts = append(parts, text)
		values["actionResults"] = text
	}
	if len(parts) == 0 {
		return sdk.ProviderResult{}, nil
	}
	return sdk.ProviderResult{Text: strings.Join(parts, "\n\n"), Values: values}, nil
}

// validateActions asks which actions may be offered. This plugin's own
// actions are validated here, side by side; only the other plugins' go
// through the host, which would otherwise call back into this process for
// ours: two round trips fewer on every message.
func (b *bootstrap) validateActions(ctx context.Context, a *sdk.Agent, msg *sdk.Memory, st *sdk.State, all []sdk.ActionInfo) ([]string, error) {
	b.ownOnce.Do(func() {
		b.own = map[string]sdk.Action{}
		for _, act := range b.actions() {
			b.own[act.Name] = act
		}
	})
	var mine, others []string
	for _, act := range all {
		if _, ok := b.own[act.Name]; ok && act.Plugin == "bootstrap" {
			mine = append(mine, act.Name)
		} else {
			others = append(others, act.Name)
		}
	}
	var theirs []string
	var theirErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		if len(others) > 0 {
			theirs, theirErr = a.ValidateActions(ctx, msg, st, others...)
		}
	}()
	ok := make([]bool, len(mine))
	var wg sync.WaitGroup
	for i, name := range mine {
		act := b.own[name]
		if act.Validate == nil {
			ok[i] = true
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					a.Logger(ctx).Error("action validate panicked", "action", name, "panic", fmt.Sprint(r))
					ok[i] = false
				}
			}()
			ok[i] = act.Validate(ctx, a, msg, st)
		}()
	}
	wg.Wait()
	<-done
	if theirErr != nil {
		return nil, theirErr
	}
	valid := theirs
	for i, name := range mine {
		if ok[i] {
			valid = append(valid, name)
		}
	}
	return valid, nil
}
