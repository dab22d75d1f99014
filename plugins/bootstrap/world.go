package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/agenthost/agenthost/internal/contract"
	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
)

// Roles in a world, as elizaOS names them.
const (
	RoleOwner = "OWNER"
	RoleAdmin = "ADMIN"
	RoleNone  = "NONE"
)

// roomAndWorld loads the message's room and its world; either may be nil.
func roomAndWorld(ctx context.Context, a *sdk.Agent, msg *sdk.Memory) (*sdk.Room, *sdk.World) {
	room, _ := cachedRoom(ctx, a, msg.RoomID)
	worldID := msg.WorldID
	if room != nil && room.WorldID != "" {
		worldID = room.WorldID
	}
	if worldID == "" {
		return room, nil
	}
	w, err := cachedWorld(ctx, a, worldID)
	if err != nil {
		return room, nil
	}
	return room, w
}

// roleOf returns an entity's role in a world: its entry in metadata.roles,
// else OWNER for the world's owner, else NONE.
func roleOf(w *sdk.World, entityID string) string {
	if w == nil {
		return RoleNone
	}
	if roles, ok := w.Metadata["roles"].(map[string]any); ok {
		if r, ok := roles[entityID].(string); ok && r != "" {
			return strings.ToUpper(r)
		}
	}
	if own, ok := w.Metadata["ownership"].(map[string]any); ok {
		if id, _ := own["ownerId"].(string); id == entityID && id != "" {
			return RoleOwner
		}
	}
	return RoleNone
}

// setRole writes an entity's role into the world's metadata.
func setRole(w *sdk.World, entityID, role string) {
	if w.Metadata == nil {
		w.Metadata = map[string]any{}
	}
	roles, ok := w.Metadata["roles"].(map[string]any)
	if !ok {
		roles = map[string]any{}
	}
	roles[entityID] = role
	w.Metadata["roles"] = roles
}

// ensureDMOwner gives a world with no owner to the person who opens a DM in
// it, as elizaOS does when a user joins a DM: they own it, which lets them
// answer choices and configure settings there. The world comes from the
// read the run started with (prefetch); the write is made after the reply
// (writeBehind): this process sees the owner at once, its other reads and
// writes of the world wait for the write, and the run makes it before it
// ends.
func (b *bootstrap) ensureDMOwner(ctx context.Context, r *run, room *sdk.Room) {
	a, msg := r.a, r.msg
	worldID := msg.WorldID
	if room != nil && room.WorldID != "" {
		worldID = room.WorldID
	}
	if worldID == "" {
		return
	}
	st := b.state(a)
	st.mu.Lock()
	done := st.owned[worldID]
	st.owned[worldID] = true
	st.mu.Unlock()
	if done {
		return
	}
	notDone := func() {
		st.mu.Lock()
		delete(st.owned, worldID)
		st.mu.Unlock()
	}
	w, err := cachedWorld(ctx, a, worldID)
	if err != nil || w == nil {
		notDone()
		return
	}
	if own, ok := w.Metadata["ownership"].(map[string]any); ok {
		if id, _ := own["ownerId"].(string); id != "" {
			return
		}
	}
	if w.Metadata == nil {
		w.Metadata = map[string]any{}
	}
	w.Metadata["ownership"] = map[string]any{"ownerId": msg.EntityID}
	setRole(w, msg.EntityID, RoleOwner)
	key := worldKey(a, w.ID)
	keep(key, w)
	base := context.WithoutCancel(ctx)
	r.writes = append(r.writes, writeBehind(key, func() {
		wctx, cancel := context.WithTimeout(base, contract.DefaultCallTimeout)
		defer cancel()
		if err := storage.For(a).UpsertWorld(wctx, *w); err != nil {
			forget(key)
			notDone() // the next message in the world tries again
			r.log(ctx).Warn("setting the DM world's owner failed", "world", w.ID, "error", err)
		}
	}))
}

// worldSettings returns the onboarding settings kept in a world's
// metadata.settings, by key.
func worldSettings(w *sdk.World) map[string]map[string]any {
	if w == nil {
		return nil
	}
	raw, ok := w.Metadata["settings"].(map[string]any)
	if !ok {
		return nil
	}
	out := map[string]map[string]any{}
	for k, v := range raw {
		if m, ok := v.(map[string]any); ok {
			out[k] = m
		}
	}
	return out
}

// entityName is the first name of an entity, or its id.
func entityName(e *sdk.Entity) string {
	if e == nil {
		return ""
	}
	if len(e.Names) > 0 && e.Names[0] != "" {
		return e.Names[0]
	}
	return e.ID
}

// names looks up entities' first names; unknown ids map to "".
func names(ctx context.Context, a *sdk.Agent, ids ...string) map[string]string {
	out := map[string]string{a.ID: a.Name()}
	var want []string
	seen := map[string]bool{}
	for _, id := range ids {
		if id == "" || id == a.ID || seen[id] {
			continue
		}
		seen[id] = true
		// Names are read for every message of a conversation; a name read
		// a moment ago is reused (see lookupTTL).
		if v, ok := peek(nameKey(a, id)); ok {
			out[id] = v.(string)
			continue
		}
		want = append(want, id)
	}
	if len(want) == 0 {
		return out
	}
	ents, err := storage.For(a).GetEntities(ctx, want...)
	if err != nil {
		return out
	}
	for i := range ents {
		out[ents[i].ID] = entityName(&ents[i])
		keep(nameKey(a, ents[i].ID), out[ents[i].ID])
	}
	return out
}

// errNoEntity: no entity has the id.
var errNoEntity = errors.New("no such entity")

// entityNameOf reads one entity's first name, as names does.
func entityNameOf(ctx context.Context, a *sdk.Agent, id string) (any, error) {
	ents, err := storage.For(a).GetEntities(ctx, id)
	if err != nil {
		return nil, err
	}
	if len(ents) == 0 {
		return nil, errNoEntity
	}
	return entityName(&ents[0]), nil
}

// resolveEntity finds an entity of the room's world by id or by any of its
// names (case-insensitive): the room's participants first, then the other
// rooms of the world.
func resolveEntity(ctx context.Context, a *sdk.Agent, msg *sdk.Memory, ref string) *sdk.Entity {
	store := storage.For(a)
	ref = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(ref), "@"))
	if ref == "" {
		return nil
	}
	if sdk.IsUUID(ref) {
		if es, err := store.GetEntities(ctx, ref); err == nil && len(es) > 0 {
			return &es[0]
		}
	}
	rooms := []string{msg.RoomID}
	if room, _ := cachedRoom(ctx, a, msg.RoomID); room != nil && room.WorldID != "" {
		if rs, err := store.GetRooms(ctx, storage.RoomQuery{WorldID: room.WorldID}); err == nil {
			for _, r := range rs {
				if r.ID != msg.RoomID {
					rooms = append(rooms, r.ID)
				}
			}
		}
	}
	seen := map[string]bool{}
	for _, roomID := range rooms {
		ids, err := store.GetParticipants(ctx, roomID)
		if err != nil {
			continue
		}
		var fresh []string
		for _, id := range ids {
			if !seen[id] {
				seen[id] = true
				fresh = append(fresh, id)
			}
		}
		if len(fresh) == 0 {
			continue
		}
		ents, err := store.GetEntities(ctx, fresh...)
		if err != nil {
			continue
		}
		for i := range ents {
			if strings.EqualFold(ents[i].ID, ref) || strings.HasPrefix(strings.ToLower(ents[i].ID), strings.ToLower(ref)) && len(ref) >= 8 {
				return &ents[i]
			}
			for _, n := range ents[i].Names {
				if strings.EqualFold(strings.TrimPrefix(n, "@"), ref) {
					return &ents[i]
				}
			}
		}
	}
	return nil
}

// enrichAttachments describes images and reads text documents before the
// message is stored, so the stored message holds what the model will see.
func (b *bootstrap) enrichAttachments(ctx context.Context, r *run, info *sdk.AgentInfo) {
	atts := r.msg.Content.Attachments
	for i := range atts {
		m := &atts[i]
		switch {
		case isImage(m) && m.Description == "" && m.URL != "" && info.HasModel(sdk.ModelImageDescribe):
			res, err := r.a.UseModel(ctx, sdk.ModelRequest{Type: sdk.ModelImageDescribe, RunID: r.id,
				Params: map[string]any{"imageUrl": m.URL, "prompt": "Describe this image: give it a short title and a description."}})
			if err != nil {
				r.log(ctx).Warn("describing an image failed", "error", err)
				continue
			}
			title, desc := imageDescription(res)
			if m.Title == "" {
				m.Title = title
			}
			m.Description = desc
			if m.Text == "" {
				m.Text = desc
			}
		case isTextDocument(m) && m.Text == "":
			if text, err := fetchText(ctx, m.URL); err == nil {
				m.Text = text
			} else {
				r.log(ctx).Warn("reading a text attachment failed", "url", m.URL, "error", err)
			}
		}
	}
}

func isImage(m *sdk.Media) bool {
	ct := strings.ToLower(m.ContentType)
	return ct == "image" || strings.HasPrefix(ct, "image/")
}

func isTextDocument(m *sdk.Media) bool {
	ct := strings.ToLower(m.ContentType)
	u := strings.ToLower(m.URL)
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		return false
	}
	return strings.HasPrefix(ct, "text/") || (ct == "document" && (strings.HasSuffix(u, ".txt") || strings.HasSuffix(u, ".md")))
}

// imageDescription reads IMAGE_DESCRIPTION's answer: JSON {title,
// description}, XML with those elements, or plain text.
func imageDescription(res *sdk.ModelResponse) (title, desc string) {
	if len(res.JSON) > 0 {
		var v struct{ Title, Description string }
		if err := jsonUnmarshal(res.JSON, &v); err == nil && v.Description != "" {
			return v.Title, v.Description
		}
	}
	if n := parseXML(res.Text); n != nil && n.get("description") != "" {
		return n.get("title"), n.get("description")
	}
	return "", strings.TrimSpace(res.Text)
}

// maxAttachmentText bounds what a text attachment contributes.
const maxAttachmentText = 1 << 20

func fetchText(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, res.Status)
	}
	if ct := res.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "text/") {
		return "", fmt.Errorf("GET %s: %s is not text", url, ct)
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, maxAttachmentText))
	if err != nil {
		return "", err
	}
	return strings.ToValidUTF8(string(b), "\uFFFD"), nil
}
