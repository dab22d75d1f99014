package bootstrap

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
)

func (b *bootstrap) entitiesProvider(ctx context.Context, a *sdk.Agent, msg *sdk.Memory, st *sdk.State) (sdk.ProviderResult, error) {
	text, data, err := b.describeEntities(ctx, a, msg.RoomID)
	if err != nil || text == "" {
		return sdk.ProviderResult{}, err
	}
	text = "# People in the Room\n" + text
	return sdk.ProviderResult{Text: text, Values: map[string]any{"entities": text}, Data: map[string]any{"entities": data}}, nil
}

// roomEntities returns the room's participants with their components. On
// the database store that is one call; a message's reflection used to make
// one for the participants, one for their entities and one per entity for
// its components, each a crossing to the host and on to the database.
func (b *bootstrap) roomEntities(ctx context.Context, a *sdk.Agent, roomID string) ([]sdk.Entity, error) {
	if _, ok := b.evalStore.(dbStore); ok {
		return storage.For(a).GetEntitiesForRoomWithComponents(ctx, roomID)
	}
	ents, err := storage.For(a).GetEntitiesForRoom(ctx, roomID)
	if err != nil {
		return nil, err
	}
	for i := range ents {
		// A component the store cannot read leaves the entity without
		// details, as a missing one would: the names are what matter.
		ents[i].Components, _ = b.store.Components(ctx, a, ents[i].ID)
	}
	return ents, nil
}

// describeEntities lists the participants of a room with their names, ids
// and stored details.
func (b *bootstrap) describeEntities(ctx context.Context, a *sdk.Agent, roomID string) (string, []any, error) {
	ents, err := b.cachedRoomEntities(ctx, a, roomID)
	if err != nil || len(ents) == 0 {
		return "", nil, err
	}
	var blocks []string
	var data []any
	for i := range ents {
		e := &ents[i]
		var lines []string
		name := entityName(e)
		if e.ID == a.ID {
			name = a.Name()
		}
		lines = append(lines, fmt.Sprintf("%s\nID: %s", name, e.ID))
		if len(e.Names) > 1 {
			lines = append(lines, "Also known as: "+strings.Join(e.Names[1:], ", "))
		}
		entry := map[string]any{"id": e.ID, "names": e.Names}
		if cs := e.Components; len(cs) > 0 {
			var comp []string
			for _, c := range cs {
				d, _ := json.Marshal(c.Data)
				comp = append(comp, fmt.Sprintf("%s: %s", c.Type, d))
			}
			lines = append(lines, "Details: "+strings.Join(comp, "; "))
			entry["components"] = cs
		}
		blocks = append(blocks, strings.Join(lines, "\n"))
		data = append(data, entry)
	}
	return strings.Join(blocks, "\n\n"), data, nil
}

func (b *bootstrap) relationshipsProvider(ctx context.Context, a *sdk.Agent, msg *sdk.Memory, st *sdk.State) (sdk.ProviderResult, error) {
	rs, err := b.cachedRelationships(ctx, a, msg.EntityID)
	if err != nil || len(rs) == 0 {
		return sdk.ProviderResult{}, err
	}
	rs = append([]Relationship(nil), rs...) // sorted below; the cached one stays as read
	sort.SliceStable(rs, func(i, j int) bool { return interactions(&rs[i]) > interactions(&rs[j]) })
	if len(rs) > 30 {
		rs = rs[:30]
	}
	var ids []string
	for _, r := range rs {
		ids = append(ids, r.SourceEntityID, r.TargetEntityID)
	}
	nm := names(ctx, a, ids...)
	sender := nm[msg.EntityID]
	if sender == "" {
		sender = "the sender"
	}
	var lines []string
	for _, r := range rs {
		other := r.TargetEntityID
		if other == msg.EntityID {
			other = r.SourceEntityID
		}
		n := nm[other]
		if n == "" {
			n = other
		}
		line := fmt.Sprintf("- %s", n)
		if len(r.Tags) > 0 {
			line += ": " + strings.Join(r.Tags, ", ")
		}
		line += fmt.Sprintf(" (%d interactions)", interactions(&r))
		lines = append(lines, line)
	}
	text := fmt.Sprintf("# %s has seen %s interact with\n%s", a.Name(), sender, strings.Join(lines, "\n"))
	return sdk.ProviderResult{Text: text, Values: map[string]any{"relationships": text}}, nil
}

// factsProvider recalls facts by meaning: the latest messages are embedded
// and the facts of the room and of the sender searched, then ranked by how
// many words they share with the message. Without an embedding model it
// lists the room's latest facts.
func (b *bootstrap) factsProvider(ctx context.Context, a *sdk.Agent, msg *sdk.Memory, st *sdk.State) (sdk.ProviderResult, error) {
	recent, err := storage.For(a).GetMemories(ctx, storage.MemoryQuery{Table: sdk.TableMessages, RoomID: msg.RoomID, Count: 5, OmitEmbeddings: true})
	if err != nil {
		return sdk.ProviderResult{}, err
	}
	recent = withInFlight(ctx, msg.RoomID, recent, 5)
	var texts []string
	for i := len(recent) - 1; i >= 0; i-- {
		if !isActionResult(&recent[i]) && recent[i].Content.Text != "" {
			texts = append(texts, recent[i].Content.Text)
		}
	}
	if len(texts) == 0 || texts[len(texts)-1] != msg.Content.Text {
		texts = append(texts, msg.Content.Text)
	}
	var facts []sdk.Memory
	if b.info(ctx, a).HasModel(sdk.ModelTextEmbedding) {
		emb, err := a.Embed(ctx, strings.Join(texts, "\n"))
		if err == nil {
			threshold := b.settings(a).factsThreshold
			byRoom, err1 := storage.For(a).SearchMemories(ctx, storage.SearchQuery{Table: sdk.TableFacts, Embedding: emb, RoomID: msg.RoomID, Count: 6, Threshold: threshold})
			bySender, err2 := storage.For(a).SearchMemories(ctx, storage.SearchQuery{Table: sdk.TableFacts, Embedding: emb, EntityID: msg.EntityID, Count: 6, Threshold: threshold})
			if err1 != nil && err2 != nil {
				return sdk.ProviderResult{}, err1
			}
			facts = mergeFacts(byRoom, bySender)
		}
	}
	if len(facts) == 0 {
		facts, _ = storage.For(a).GetMemories(ctx, storage.MemoryQuery{Table: sdk.TableFacts, RoomID: msg.RoomID, Count: 6, OmitEmbeddings: true})
	}
	if len(facts) == 0 {
		return sdk.ProviderResult{}, nil
	}
	rankByOverlap(facts, msg.Content.Text)
	var lines []string
	for _, f := range facts {
		lines = append(lines, "- "+oneLine(f.Content.Text))
	}
	text := fmt.Sprintf("# Facts %s knows\n%s", a.Name(), strings.Join(lines, "\n"))
	return sdk.ProviderResult{Text: text, Values: map[string]any{"facts": text}}, nil
}

func mergeFacts(lists ...[]sdk.Memory) []sdk.Memory {
	var out []sdk.Memory
	seen := map[string]bool{}
	for _, l := range lists {
		for _, m := range l {
			if !seen[m.ID] {
				seen[m.ID] = true
				out = append(out, m)
			}
		}
	}
	return out
}

// rankByOverlap orders facts by their similarity plus the share of the
// query's words they contain: a keyword rerank of the vector results.
func rankByOverlap(facts []sdk.Memory, query string) {
	words := map[string]bool{}
	for _, w := range strings.Fields(strings.ToLower(query)) {
		if w = strings.Trim(w, ".,!?;:'\"()"); len(w) > 2 {
			words[w] = true
		}
	}
	score := func(m *sdk.Memory) float64 {
		s := m.Similarity
		if len(words) == 0 {
			return s
		}
		hit := 0
		for _, w := range strings.Fields(strings.ToLower(m.Content.Text)) {
			if words[strings.Trim(w, ".,!?;:'\"()")] {
				hit++
			}
		}
		return s + float64(hit)/float64(len(words))
	}
	sort.SliceStable(facts, func(i, j int) bool { return score(&facts[i]) > score(&facts[j]) })
}

func (b *bootstrap) worldProvider(ctx context.Context, a *sdk.Agent, msg *sdk.Memory, st *sdk.State) (sdk.ProviderResult, error) {
	room, world := roomAndWorld(ctx, a, msg)
	if world == nil {
		return sdk.ProviderResult{}, nil
	}
	rooms, err := storage.For(a).GetRooms(ctx, storage.RoomQuery{WorldID: world.ID})
	if err != nil {
		return sdk.ProviderResult{}, err
	}
	byType := map[string][]string{}
	var types []string
	for _, r := range rooms {
		t := string(r.Type)
		if t == "" {
			t = "OTHER"
		}
		if _, ok := byType[t]; !ok {
			types = append(types, t)
		}
		n := r.Name
		if n == "" {
			n = r.ID
		}
		if ids, err := storage.For(a).GetParticipants(ctx, r.ID); err == nil {
			n += fmt.Sprintf(" (%d members)", len(ids))
		}
		if room != nil && r.ID == room.ID {
			n += " (this room)"
		}
		byType[t] = append(byType[t], n)
	}
	sort.Strings(types)
	name := world.Name
	if name == "" {
		name = world.ServerID
	}
	var b2 strings.Builder
	fmt.Fprintf(&b2, "# World: %s", name)
	for _, t := range types {
		fmt.Fprintf(&b2, "\n## %s rooms\n- %s", t, strings.Join(byType[t], "\n- "))
	}
	return sdk.ProviderResult{Text: b2.String(), Values: map[string]any{"worldName": name, "world": b2.String()}}, nil
}

// attachmentsProvider lists the attachments of the message and of the
// room's messages of the last hour; older ones show without their text.
func (b *bootstrap) attachmentsProvider(ctx context.Context, a *sdk.Agent, msg *sdk.Memory, st *sdk.State) (sdk.ProviderResult, error) {
	all := append([]sdk.Media(nil), msg.Content.Attachments...)
	seen := map[string]bool{}
	for _, m := range all {
		seen[m.ID+m.URL] = true
	}
	hourAgo := time.Now().Add(-time.Hour).UnixMilli()
	recent, err := storage.For(a).GetMemories(ctx, storage.MemoryQuery{Table: sdk.TableMessages, RoomID: msg.RoomID, Count: b.settings(a).conversationLen, OmitEmbeddings: true})
	if err == nil {
		for _, m := range recent {
			for _, att := range m.Content.Attachments {
				if seen[att.ID+att.URL] {
					continue
				}
				seen[att.ID+att.URL] = true
				if m.CreatedAt < hourAgo {
					att.Text = ""
				}
				all = append(all, att)
			}
		}
	}
	if len(all) == 0 {
		return sdk.ProviderResult{}, nil
	}
	var blocks []string
	for _, m := range all {
		var lines []string
		lines = append(lines, fmt.Sprintf("ID: %s", m.ID))
		if m.Title != "" {
			lines = append(lines, "Name: "+m.Title)
		}
		lines = append(lines, "URL: "+m.URL)
		if m.ContentType != "" {
			lines = append(lines, "Type: "+m.ContentType)
		}
		if m.Source != "" {
			lines = append(lines, "Source: "+m.Source)
		}
		if m.Description != "" {
			lines = append(lines, "Description: "+m.Description)
		}
		if m.Text != "" {
			lines = append(lines, "Text: "+truncate(m.Text, 4000))
		}
		blocks = append(blocks, strings.Join(lines, "\n"))
	}
	text := "# Attachments\n" + strings.Join(blocks, "\n\n")
	return sdk.ProviderResult{Text: text, Values: map[string]any{"attachments": text}}, nil
}

func (b *bootstrap) rolesProvider(ctx context.Context, a *sdk.Agent, msg *sdk.Memory, st *sdk.State) (sdk.ProviderResult, error) {
	if msg.Content.ChannelType != sdk.ChannelGroup && msg.Content.ChannelType != sdk.ChannelWorld {
		return sdk.ProviderResult{}, nil
	}
	_, world := roomAndWorld(ctx, a, msg)
	if world == nil {
		return sdk.ProviderResult{}, nil
	}
	roles, _ := world.Metadata["roles"].(map[string]any)
	if own, ok := world.Metadata["ownership"].(map[string]any); ok {
		if id, _ := own["ownerId"].(string); id != "" {
			if roles == nil {
				roles = map[string]any{}
			}
			if _, ok := roles[id]; !ok {
				roles[id] = RoleOwner
			}
		}
	}
	if len(roles) == 0 {
		return sdk.ProviderResult{}, nil
	}
	var ids []string
	for id := range roles {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	nm := names(ctx, a, ids...)
	byRole := map[string][]string{}
	for _, id := range ids {
		r, _ := roles[id].(string)
		n := nm[id]
		if n == "" {
			n = id
		}
		byRole[strings.ToUpper(r)] = append(byRole[strings.ToUpper(r)], fmt.Sprintf("%s (%s)", n, id))
	}
	var b2 strings.Builder
	fmt.Fprintf(&b2, "# Roles in %s", firstNonEmpty(world.Name, world.ServerID, "this server"))
	for _, r := range []string{RoleOwner, RoleAdmin, RoleNone} {
		if len(byRole[r]) == 0 {
			continue
		}
		label := map[string]string{RoleOwner: "Owners", RoleAdmin: "Administrators", RoleNone: "Members"}[r]
		fmt.Fprintf(&b2, "\n## %s\n- %s", label, strings.Join(byRole[r], "\n- "))
	}
	return sdk.ProviderResult{Text: b2.String(), Values: map[string]any{"roles": b2.String()}}, nil
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// settingsProvider shows the server's onboarding settings: in a DM with
// the owner, every setting and which required ones are still unset; in a
// group, only the public ones. Secret values are never shown.
func (b *bootstrap) settingsProvider(ctx context.Context, a *sdk.Agent, msg *sdk.Memory, st *sdk.State) (sdk.ProviderResult, error) {
	_, world := roomAndWorld(ctx, a, msg)
	settings := worldSettings(world)
	if len(settings) == 0 {
		return sdk.ProviderResult{}, nil
	}
	dm := msg.Content.ChannelType == sdk.ChannelDM
	owner := roleOf(world, msg.EntityID) == RoleOwner
	if owner && !dm {
		// Found again from a DM, where the owner configures it.
		b.rememberOwnedWorld(ctx, a, msg.EntityID, world.ID)
	}
	text, missing := formatSettings(settings, dm && owner)
	if text == "" {
		return sdk.ProviderResult{}, nil
	}
	head := fmt.Sprintf("# Settings of %s", firstNonEmpty(world.Name, world.ServerID, "this server"))
	if dm && owner && len(missing) > 0 {
		head += fmt.Sprintf("\n%s still needs: %s. Ask for them one at a time.", a.Name(), strings.Join(missing, ", "))
	} else if dm && owner {
		head += "\nEvery required setting has a value."
	}
	text = head + "\n" + text
	return sdk.ProviderResult{Text: text, Values: map[string]any{"settings": text}}, nil
}

// formatSettings lists settings by key; all of them for an owner, else the
// public ones. It returns the text and the required settings without a
// value.
func formatSettings(settings map[string]map[string]any, all bool) (string, []string) {
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var lines, missing []string
	for _, k := range keys {
		s := settings[k]
		public, _ := s["public"].(bool)
		if !all && !public {
			continue
		}
		name, _ := s["name"].(string)
		desc, _ := s["description"].(string)
		required, _ := s["required"].(bool)
		secret, _ := s["secret"].(bool)
		val := s["value"]
		shown := "(not set)"
		if val != nil && val != "" {
			shown = valueString(val)
			if secret {
				shown = "****"
			}
		} else if required {
			missing = append(missing, k)
		}
		line := fmt.Sprintf("- %s", k)
		if name != "" && name != k {
			line += fmt.Sprintf(" (%s)", name)
		}
		line += ": " + shown
		if required {
			line += " [required]"
		}
		if desc != "" {
			line += " — " + desc
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n"), missing
}

func (b *bootstrap) choiceProvider(ctx context.Context, a *sdk.Agent, msg *sdk.Memory, st *sdk.State) (sdk.ProviderResult, error) {
	tasks, err := b.pendingChoices(ctx, a, msg.RoomID)
	if err != nil || len(tasks) == 0 {
		return sdk.ProviderResult{}, err
	}
	text := "# Pending Choices\n" + formatChoices(tasks) + "\nSomeone with the right role can choose an option with CHOOSE_OPTION."
	return sdk.ProviderResult{Text: text, Values: map[string]any{"pendingChoices": text}}, nil
}

// pendingChoices are the room's tasks waiting for a choice.
func (b *bootstrap) pendingChoices(ctx context.Context, a *sdk.Agent, roomID string) ([]Task, error) {
	tasks, err := cachedAs(roomReadKey("choices", a, roomID), func() ([]Task, error) {
		return b.store.Tasks(ctx, a, TaskQuery{RoomID: roomID, Tags: []string{"AWAITING_CHOICE"}})
	})
	if err != nil {
		return nil, err
	}
	var out []Task
	for _, t := range tasks {
		if len(taskOptions(&t)) > 0 {
			out = append(out, t)
		}
	}
	return out, nil
}

func formatChoices(tasks []Task) string {
	var blocks []string
	for _, t := range tasks {
		var lines []string
		lines = append(lines, fmt.Sprintf("Task %s: %s", shortID(t.ID), firstNonEmpty(t.Description, t.Name)))
		for _, o := range taskOptions(&t) {
			line := "- " + o.Name
			if o.Description != "" {
				line += ": " + o.Description
			}
			lines = append(lines, line)
		}
		blocks = append(blocks, strings.Join(lines, "\n"))
	}
	return strings.Join(blocks, "\n\n")
}

// shortID is the first block of a UUID, how prompts name tasks.
func shortID(id string) string {
	if i := strings.IndexByte(id, '-'); i > 0 {
		return id[:i]
	}
	return id
}
