package bootstrap

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
	"github.com/google/uuid"
)

// ask renders a template and asks a text model; the answer's first XML
// block is returned (nil when the model wrote none).
func ask(ctx context.Context, a *sdk.Agent, call *sdk.ActionCall, model, template string, extra map[string]any) (*node, string, error) {
	prompt := renderPrompt(a, template, call.State, extra)
	res, err := a.UseModel(ctx, sdk.ModelRequest{Type: model, RunID: call.RunID, Prompt: prompt, System: system(a)})
	if err != nil {
		return nil, "", err
	}
	return parseXML(res.Text), res.Text, nil
}

func (b *bootstrap) sendMessageAction() sdk.Action {
	return sdk.Action{
		Name:        "SEND_MESSAGE",
		Description: "Send a message to another person or room, on a platform the agent is connected to.",
		Similes:     []string{"DM", "MESSAGE", "SEND_DM", "POST_MESSAGE", "DIRECT_MESSAGE"},
		Examples: [][]sdk.ExampleMessage{{
			{Name: "{{name1}}", Content: sdk.Content{Text: "Tell {{name2}} in the general room that the meeting moved to 3pm."}},
			{Name: "{{agentName}}", Content: sdk.Content{Text: "I'll let them know.", Actions: []string{"REPLY", "SEND_MESSAGE"}}},
		}},
		Validate: func(ctx context.Context, a *sdk.Agent, msg *sdk.Memory, st *sdk.State) bool {
			return len(b.info(ctx, a).Sources()) > 0
		},
		Handler: func(ctx context.Context, a *sdk.Agent, call *sdk.ActionCall) (sdk.ActionResult, error) {
			msg := call.Message
			sources := b.info(ctx, a).Sources()
			n, _, err := ask(ctx, a, call, sdk.ModelTextSmall, "sendMessageTemplate", map[string]any{"sources": strings.Join(sources, ", ")})
			if err != nil {
				return sdk.ActionResult{}, fmt.Errorf("work out the message: %w", err)
			}
			if n == nil || n.get("message") == "" || n.get("target") == "" {
				return sdk.ActionResult{Success: false, Error: "could not tell what to send, or to whom"}, nil
			}
			source := strings.ToLower(firstNonEmpty(n.get("source"), msg.Content.Source))
			if !slices.Contains(sources, source) {
				return sdk.ActionResult{Success: false, Error: fmt.Sprintf("cannot send to %q: the agent sends to %s", source, strings.Join(sources, ", "))}, nil
			}
			target, label, err := b.sendTarget(ctx, a, msg, source, strings.ToLower(n.get("targetType")), n.get("target"))
			if err != nil {
				return sdk.ActionResult{Success: false, Error: err.Error()}, nil
			}
			content := sdk.Content{Text: n.get("message"), Source: source}
			if _, err := a.SendMessage(ctx, target, content); err != nil {
				return sdk.ActionResult{Success: false, Error: fmt.Sprintf("send to %s: %v", label, err)}, nil
			}
			if target.RoomID != "" {
				// The room's history shows what the agent said there.
				m := &sdk.Memory{ID: sdk.NewID(), EntityID: a.ID, AgentID: a.ID, RoomID: target.RoomID,
					CreatedAt: time.Now().UnixMilli(), Content: content}
				if _, _, err := storage.For(a).CreateMemory(ctx, m, sdk.TableMessages, false); err != nil {
					a.Logger(ctx).Warn("storing a sent message failed", "room", target.RoomID, "error", err)
				}
				b.forgetWindow(a, target.RoomID)
			}
			return sdk.ActionResult{Success: true, Text: fmt.Sprintf("Sent the message to %s on %s.", label, source),
				Values: map[string]any{"sentTo": label, "sentSource": source}}, nil
		},
	}
}

// sendTarget resolves a person (to their DM room on the source when there
// is one) or a room of the world by name.
func (b *bootstrap) sendTarget(ctx context.Context, a *sdk.Agent, msg *sdk.Memory, source, kind, ref string) (sdk.Target, string, error) {
	if kind != "room" {
		if e := resolveEntity(ctx, a, msg, ref); e != nil {
			t := sdk.Target{Source: source, EntityID: e.ID}
			if rooms, err := storage.For(a).GetRooms(ctx, storage.RoomQuery{ParticipantID: e.ID}); err == nil {
				for _, r := range rooms {
					if r.Type == sdk.ChannelDM && r.Source == source {
						t.RoomID, t.ChannelID, t.ServerID = r.ID, r.ChannelID, r.ServerID
						break
					}
				}
			}
			return t, entityName(e), nil
		}
		if kind == "user" {
			return sdk.Target{}, "", fmt.Errorf("no one named %q is known here", ref)
		}
	}
	room, _ := cachedRoom(ctx, a, msg.RoomID)
	worldID := msg.WorldID
	if room != nil && room.WorldID != "" {
		worldID = room.WorldID
	}
	want := strings.ToLower(strings.TrimPrefix(strings.TrimSpace(ref), "#"))
	if worldID != "" {
		rooms, err := storage.For(a).GetRooms(ctx, storage.RoomQuery{WorldID: worldID})
		if err == nil {
			for _, r := range rooms {
				if strings.ToLower(strings.TrimPrefix(r.Name, "#")) == want || r.ID == ref || r.ChannelID == ref {
					src := r.Source
					if src == "" {
						src = source
					}
					return sdk.Target{Source: src, RoomID: r.ID, ChannelID: r.ChannelID, ServerID: r.ServerID}, "#" + strings.TrimPrefix(r.Name, "#"), nil
				}
			}
		}
	}
	return sdk.Target{}, "", fmt.Errorf("no room named %q in this server", ref)
}

func (b *bootstrap) updateContactAction() sdk.Action {
	return sdk.Action{
		Name:        "UPDATE_CONTACT",
		Description: "Save, change or remove someone's contact details on a platform (user name, address, number).",
		Similes:     []string{"UPDATE_ENTITY", "SAVE_CONTACT", "ADD_CONTACT"},
		Examples: [][]sdk.ExampleMessage{{
			{Name: "{{name1}}", Content: sdk.Content{Text: "My telegram is @ada_l, please note it."}},
			{Name: "{{agentName}}", Content: sdk.Content{Text: "Noted.", Actions: []string{"REPLY", "UPDATE_CONTACT"}}},
		}},
		Handler: func(ctx context.Context, a *sdk.Agent, call *sdk.ActionCall) (sdk.ActionResult, error) {
			msg := call.Message
			people, _, _ := b.describeEntities(ctx, a, msg.RoomID)
			n, _, err := ask(ctx, a, call, sdk.ModelTextSmall, "updateContactTemplate", map[string]any{"entitiesInRoom": people})
			if err != nil {
				return sdk.ActionResult{}, fmt.Errorf("extract the contact: %w", err)
			}
			platform := strings.ToLower(strings.TrimSpace(n.get("platform")))
			if n == nil || platform == "" {
				return sdk.ActionResult{Success: false, Error: "could not tell which contact to save"}, nil
			}
			who := n.get("entityName")
			e := &sdk.Entity{ID: msg.EntityID}
			if who != "" && !slices.Contains([]string{"me", "myself", "i"}, strings.ToLower(who)) {
				e = resolveEntity(ctx, a, msg, who)
				if e == nil {
					return sdk.ActionResult{Success: false, Error: fmt.Sprintf("no one named %q is known here", who)}, nil
				}
			}
			label := who
			if label == "" {
				label = "the sender"
			}
			if strings.EqualFold(n.get("operation"), "remove") {
				cs, err := b.store.Components(ctx, a, e.ID)
				if err != nil {
					return sdk.ActionResult{}, err
				}
				for _, c := range cs {
					if c.Type == platform {
						if err := b.store.DeleteComponent(ctx, a, e.ID, c.ID); err != nil {
							return sdk.ActionResult{}, err
						}
					}
				}
				return sdk.ActionResult{Success: true, Text: fmt.Sprintf("Removed the %s contact of %s.", platform, label)}, nil
			}
			data := map[string]any{"handle": n.get("handle"), "updatedAt": time.Now().UnixMilli()}
			if notes := n.get("notes"); notes != "" {
				data["notes"] = notes
			}
			c := Component{EntityID: e.ID, Type: platform, WorldID: msg.WorldID, RoomID: msg.RoomID, SourceEntityID: msg.EntityID, Data: data}
			if err := b.store.SaveComponent(ctx, a, c); err != nil {
				return sdk.ActionResult{}, err
			}
			return sdk.ActionResult{Success: true, Text: fmt.Sprintf("Saved the %s contact of %s: %s.", platform, label, n.get("handle")),
				Values: map[string]any{"contactPlatform": platform, "contactHandle": n.get("handle")}}, nil
		},
	}
}

func (b *bootstrap) chooseOptionAction() sdk.Action {
	return sdk.Action{
		Name:        "CHOOSE_OPTION",
		Description: "Choose an option of a pending task that waits for a choice (or cancel it).",
		Similes:     []string{"SELECT_OPTION", "SELECT", "PICK", "CHOOSE"},
		Validate: func(ctx context.Context, a *sdk.Agent, msg *sdk.Memory, st *sdk.State) bool {
			_, world := roomAndWorld(ctx, a, msg)
			if r := roleOf(world, msg.EntityID); r != RoleOwner && r != RoleAdmin {
				return false
			}
			tasks, err := b.pendingChoices(ctx, a, msg.RoomID)
			return err == nil && len(tasks) > 0
		},
		Handler: func(ctx context.Context, a *sdk.Agent, call *sdk.ActionCall) (sdk.ActionResult, error) {
			msg := call.Message
			tasks, err := b.pendingChoices(ctx, a, msg.RoomID)
			if err != nil {
				return sdk.ActionResult{}, err
			}
			if len(tasks) == 0 {
				return sdk.ActionResult{Success: false, Error: "no task is waiting for a choice here"}, nil
			}
			n, _, err := ask(ctx, a, call, sdk.ModelTextSmall, "chooseOptionTemplate", map[string]any{"tasks": formatChoices(tasks)})
			if err != nil {
				return sdk.ActionResult{}, fmt.Errorf("work out the choice: %w", err)
			}
			task, option := pickOption(tasks, n.get("taskId"), n.get("selectedOption"))
			if task == nil {
				return sdk.ActionResult{Success: false, Error: "could not tell which option was chosen"}, nil
			}
			var text string
			if option == "ABORT" {
				if err := b.store.DeleteTask(ctx, a, task.ID); err != nil {
					return sdk.ActionResult{}, err
				}
				text = fmt.Sprintf("Cancelled the task %s.", firstNonEmpty(task.Description, task.Name))
			} else {
				if err := b.executeTask(ctx, a, task, map[string]any{"option": option}, msg, call.RunID); err != nil {
					return sdk.ActionResult{Success: false, Error: err.Error()}, nil
				}
				if err := b.store.DeleteTask(ctx, a, task.ID); err != nil {
					return sdk.ActionResult{}, err
				}
				text = fmt.Sprintf("Selected %s for %s.", option, firstNonEmpty(task.Description, task.Name))
			}
			if _, err := b.sendReply(ctx, a, call.RunID, msg, sdk.Content{Text: text, Actions: []string{"CHOOSE_OPTION"}}); err != nil {
				return sdk.ActionResult{}, err
			}
			return sdk.ActionResult{Success: true, Text: text, Values: map[string]any{"selectedOption": option, "taskId": task.ID}}, nil
		},
	}
}

// pickOption finds the chosen task and option: the task by (a prefix of)
// its id, or else the only task offering that option; the option by name
// without regard to case. ABORT cancels.
func pickOption(tasks []Task, taskID, option string) (*Task, string) {
	option = strings.TrimSpace(option)
	match := func(t *Task) string {
		if strings.EqualFold(option, "ABORT") {
			return "ABORT"
		}
		for _, o := range taskOptions(t) {
			if strings.EqualFold(o.Name, option) {
				return o.Name
			}
		}
		return ""
	}
	taskID = strings.TrimSpace(taskID)
	if taskID != "" {
		for i := range tasks {
			if strings.HasPrefix(tasks[i].ID, taskID) {
				if o := match(&tasks[i]); o != "" {
					return &tasks[i], o
				}
				return nil, ""
			}
		}
	}
	var found *Task
	var opt string
	for i := range tasks {
		if o := match(&tasks[i]); o != "" {
			if found != nil {
				return nil, "" // ambiguous
			}
			found, opt = &tasks[i], o
		}
	}
	return found, opt
}

// canModifyRole is elizaOS's rule: nobody changes the role of someone of
// their own rank; an owner may set any role; an admin may set any role but
// OWNER; others may change nothing.
func canModifyRole(current, target, newRole string) bool {
	if target == current {
		return false
	}
	switch current {
	case RoleOwner:
		return true
	case RoleAdmin:
		return newRole != RoleOwner
	}
	return false
}

func (b *bootstrap) updateRoleAction() sdk.Action {
	return sdk.Action{
		Name:        "UPDATE_ROLE",
		Description: "Change the role (OWNER, ADMIN or NONE) of people in this server.",
		Similes:     []string{"CHANGE_ROLE", "SET_PERMISSIONS", "ASSIGN_ROLE", "MAKE_ADMIN"},
		Validate: func(ctx context.Context, a *sdk.Agent, msg *sdk.Memory, st *sdk.State) bool {
			if msg.Content.ChannelType != sdk.ChannelGroup && msg.Content.ChannelType != sdk.ChannelWorld {
				return false
			}
			_, world := roomAndWorld(ctx, a, msg)
			return world != nil
		},
		Handler: func(ctx context.Context, a *sdk.Agent, call *sdk.ActionCall) (sdk.ActionResult, error) {
			msg := call.Message
			_, world := roomAndWorld(ctx, a, msg)
			if world == nil {
				return sdk.ActionResult{Success: false, Error: "this room belongs to no server"}, nil
			}
			people, _, _ := b.describeEntities(ctx, a, msg.RoomID)
			n, _, err := ask(ctx, a, call, sdk.ModelTextSmall, "updateRoleTemplate", map[string]any{"entitiesInRoom": people})
			if err != nil {
				return sdk.ActionResult{}, fmt.Errorf("work out the roles: %w", err)
			}
			var assigns []*node
			if as := n.child("assignments"); as != nil {
				assigns = as.all("assignment")
			}
			if len(assigns) == 0 {
				return sdk.ActionResult{Success: false, Error: "no role change was asked for"}, nil
			}
			current := roleOf(world, msg.EntityID)
			var done, refused []string
			for _, as := range assigns {
				role := strings.ToUpper(strings.TrimSpace(as.get("newRole")))
				if role != RoleOwner && role != RoleAdmin && role != RoleNone {
					refused = append(refused, fmt.Sprintf("%s (unknown role %q)", as.get("entityId"), as.get("newRole")))
					continue
				}
				e := resolveEntity(ctx, a, msg, as.get("entityId"))
				if e == nil {
					refused = append(refused, fmt.Sprintf("%s (unknown person)", as.get("entityId")))
					continue
				}
				if !canModifyRole(current, roleOf(world, e.ID), role) {
					refused = append(refused, fmt.Sprintf("%s (a %s cannot make a %s into %s)", entityName(e), current, roleOf(world, e.ID), role))
					continue
				}
				setRole(world, e.ID, role)
				done = append(done, fmt.Sprintf("%s is now %s", entityName(e), role))
			}
			if len(done) > 0 {
				if err := upsertWorld(ctx, a, *world); err != nil {
					return sdk.ActionResult{}, err
				}
			}
			text := ""
			if len(done) > 0 {
				text = "Updated roles: " + strings.Join(done, "; ") + "."
			}
			if len(refused) > 0 {
				text = strings.TrimSpace(text + " Not changed: " + strings.Join(refused, "; ") + ".")
			}
			if _, err := b.sendReply(ctx, a, call.RunID, msg, sdk.Content{Text: text, Actions: []string{"UPDATE_ROLE"}}); err != nil {
				return sdk.ActionResult{}, err
			}
			return sdk.ActionResult{Success: len(done) > 0, Text: text}, nil
		},
	}
}

// ownedWorldWithSettings finds the world with settings the sender owns:
// the message's own, or one recorded when the owner spoke in it.
func (b *bootstrap) ownedWorldWithSettings(ctx context.Context, a *sdk.Agent, msg *sdk.Memory) *sdk.World {
	_, world := roomAndWorld(ctx, a, msg)
	if world != nil && roleOf(world, msg.EntityID) == RoleOwner && len(worldSettings(world)) > 0 {
		return world
	}
	ids, err := ownedWorlds(ctx, a, msg.EntityID)
	if err != nil || len(ids) == 0 {
		return nil
	}
	for _, id := range ids {
		written(worldKey(a, id))
	}
	ws, err := storage.For(a).GetWorlds(ctx, ids...)
	if err != nil {
		return nil
	}
	for i := range ws {
		if roleOf(&ws[i], msg.EntityID) == RoleOwner && len(worldSettings(&ws[i])) > 0 {
			return &ws[i]
		}
	}
	return nil
}

// cacheKeyOwnedWorlds + entity id lists the worlds with settings an entity
// owns, so UPDATE_SETTINGS finds them from a DM.
const cacheKeyOwnedWorlds = "bootstrap/owned-worlds/"

// rememberOwnedWorld records that the sender owns a world with settings.
func (b *bootstrap) rememberOwnedWorld(ctx context.Context, a *sdk.Agent, entityID, worldID string) {
	ids, err := ownedWorlds(ctx, a, entityID)
	if err != nil || slices.Contains(ids, worldID) {
		return
	}
	_ = setJSON(ctx, a, cacheKeyOwnedWorlds+entityID, append(slices.Clone(ids), worldID))
	forget(ownedWorldsKey(a, entityID))
}

func ownedWorldsKey(a *sdk.Agent, entityID string) string {
	return "owned\x00" + a.ID + "\x00" + entityID
}

// ownedWorlds lists the worlds with settings an entity owns, reused for
// lookupTTL: UPDATE_SETTINGS's validate asks for them on every message
// (the ACTIONS provider), and they change only when an owner speaks in a
// world with settings. The list returned must not be changed.
func ownedWorlds(ctx context.Context, a *sdk.Agent, entityID string) ([]string, error) {
	return cachedAs(ownedWorldsKey(a, entityID), func() ([]string, error) {
		var ids []string
		_, err := getJSON(ctx, a, cacheKeyOwnedWorlds+entityID, &ids)
		return ids, err
	})
}

func (b *bootstrap) updateSettingsAction() sdk.Action {
	return sdk.Action{
		Name:        "UPDATE_SETTINGS",
		Description: "Save setting values the server's owner gives in a direct conversation.",
		Similes:     []string{"UPDATE_SETTING", "SAVE_SETTING", "SET_CONFIGURATION", "CONFIGURE"},
		Validate: func(ctx context.Context, a *sdk.Agent, msg *sdk.Memory, st *sdk.State) bool {
			return msg.Content.ChannelType == sdk.ChannelDM && b.ownedWorldWithSettings(ctx, a, msg) != nil
		},
		Handler: func(ctx context.Context, a *sdk.Agent, call *sdk.ActionCall) (sdk.ActionResult, error) {
			msg := call.Message
			world := b.ownedWorldWithSettings(ctx, a, msg)
			if world == nil {
				return sdk.ActionResult{Success: false, Error: "no server of yours has settings to configure"}, nil
			}
			settings := worldSettings(world)
			list, _ := formatSettings(settings, true)
			n, _, err := ask(ctx, a, call, sdk.ModelTextSmall, "updateSettingsTemplate", map[string]any{"settings": list})
			if err != nil {
				return sdk.ActionResult{}, fmt.Errorf("extract the settings: %w", err)
			}
			var pairs []*node
			if s := n.child("settings"); s != nil {
				pairs = s.all("setting")
			}
			var saved []string
			for _, p := range pairs {
				key, value := p.get("key"), p.get("value")
				k := matchSettingKey(settings, key)
				if k == "" || value == "" {
					continue
				}
				s := settings[k]
				if deps, ok := s["dependsOn"].([]any); ok && !dependenciesMet(settings, deps) {
					continue
				}
				s["value"] = value
				saved = append(saved, k)
			}
			if len(saved) == 0 {
				return sdk.ActionResult{Success: false, Error: "no setting value was found in the message"}, nil
			}
			raw, _ := world.Metadata["settings"].(map[string]any)
			for k, s := range settings {
				raw[k] = s
			}
			if err := upsertWorld(ctx, a, *world); err != nil {
				return sdk.ActionResult{}, err
			}
			_, missing := formatSettings(settings, true)
			text := "Saved " + strings.Join(saved, ", ") + "."
			if len(missing) > 0 {
				next := settings[missing[0]]
				desc, _ := next["description"].(string)
				text += fmt.Sprintf(" Next I need %s", missing[0])
				if desc != "" {
					text += ": " + desc
				}
				text += "."
			} else {
				text += " Every required setting now has a value."
			}
			if _, err := b.sendReply(ctx, a, call.RunID, msg, sdk.Content{Text: text, Actions: []string{"UPDATE_SETTINGS"}}); err != nil {
				return sdk.ActionResult{}, err
			}
			return sdk.ActionResult{Success: true, Text: text, Values: map[string]any{"updatedSettings": strings.Join(saved, ",")}}, nil
		},
	}
}

func matchSettingKey(settings map[string]map[string]any, key string) string {
	key = strings.TrimSpace(key)
	for k, s := range settings {
		name, _ := s["name"].(string)
		if strings.EqualFold(k, key) || (name != "" && strings.EqualFold(name, key)) {
			return k
		}
	}
	return ""
}

func dependenciesMet(settings map[string]map[string]any, deps []any) bool {
	for _, d := range deps {
		k, _ := d.(string)
		if s, ok := settings[k]; ok && (s["value"] == nil || s["value"] == "") {
			return false
		}
	}
	return true
}

func (b *bootstrap) generateImageAction() sdk.Action {
	return sdk.Action{
		Name:        "GENERATE_IMAGE",
		Description: "Make an image from a description and send it.",
		Similes:     []string{"DRAW", "CREATE_IMAGE", "RENDER_IMAGE", "VISUALIZE", "MAKE_IMAGE"},
		Examples: [][]sdk.ExampleMessage{{
			{Name: "{{name1}}", Content: sdk.Content{Text: "Can you draw a lighthouse at dusk?"}},
			{Name: "{{agentName}}", Content: sdk.Content{Text: "Here it comes.", Actions: []string{"REPLY", "GENERATE_IMAGE"}}},
		}},
		// Offered only when some plugin of the agent serves IMAGE.
		Validate: func(ctx context.Context, a *sdk.Agent, msg *sdk.Memory, st *sdk.State) bool {
			return b.info(ctx, a).HasModel(sdk.ModelImage)
		},
		Handler: func(ctx context.Context, a *sdk.Agent, call *sdk.ActionCall) (sdk.ActionResult, error) {
			n, raw, err := ask(ctx, a, call, sdk.ModelTextLarge, "imageGenerationTemplate", nil)
			if err != nil {
				return sdk.ActionResult{}, fmt.Errorf("write the image prompt: %w", err)
			}
			prompt := strings.TrimSpace(n.get("prompt"))
			if prompt == "" && n == nil {
				prompt = strings.TrimSpace(stripFences(raw))
			}
			if prompt == "" {
				prompt = call.Message.Content.Text
			}
			res, err := a.UseModel(ctx, sdk.ModelRequest{Type: sdk.ModelImage, RunID: call.RunID,
				Params: map[string]any{"prompt": prompt, "count": 1}})
			if err != nil {
				return sdk.ActionResult{}, fmt.Errorf("generate the image: %w", err)
			}
			url := imageURL(res)
			if url == "" {
				return sdk.ActionResult{Success: false, Error: "the image model returned no image"}, nil
			}
			att := sdk.Media{ID: uuid.NewString(), URL: url, Title: "Generated image", Source: "imageGeneration",
				Description: prompt, Text: prompt, ContentType: "image"}
			if _, err := b.sendReply(ctx, a, call.RunID, call.Message, sdk.Content{Text: "Here is the image.",
				Attachments: []sdk.Media{att}, Actions: []string{"GENERATE_IMAGE"}}); err != nil {
				return sdk.ActionResult{}, err
			}
			return sdk.ActionResult{Success: true, Text: "Generated an image: " + prompt,
				Values: map[string]any{"imageUrl": url, "imagePrompt": prompt}}, nil
		},
	}
}

// imageURL reads an IMAGE answer: JSON [{url}], {url} or {data: [{url}]},
// a URL as text, or raw bytes (made a data URL).
func imageURL(res *sdk.ModelResponse) string {
	if len(res.JSON) > 0 {
		var list []struct {
			URL string `json:"url"`
		}
		if json.Unmarshal(res.JSON, &list) == nil && len(list) > 0 && list[0].URL != "" {
			return list[0].URL
		}
		var one struct {
			URL  string `json:"url"`
			Data []struct {
				URL string `json:"url"`
			} `json:"data"`
		}
		if json.Unmarshal(res.JSON, &one) == nil {
			if one.URL != "" {
				return one.URL
			}
			if len(one.Data) > 0 {
				return one.Data[0].URL
			}
		}
	}
	if t := strings.TrimSpace(res.Text); t != "" && !strings.ContainsAny(t, " \n") {
		return t
	}
	if len(res.Data) > 0 {
		ct := res.ContentType
		if ct == "" {
			ct = "image/png"
		}
		return "data:" + ct + ";base64," + base64.StdEncoding.EncodeToString(res.Data)
	}
	return ""
}
