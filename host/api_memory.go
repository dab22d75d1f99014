package host

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/agenthost/agenthost/sdk"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

func (d *Daemon) handleRoomMemories(w http.ResponseWriter, r *http.Request) {
	a := d.agentFor(w, r)
	if a == nil {
		return
	}
	roomID, ok := uuidParam(w, "roomId", r.PathValue("roomId"), true)
	if !ok {
		return
	}
	d.listMemories(w, r, a, roomID)
}

func (d *Daemon) handleDeleteMemory(w http.ResponseWriter, r *http.Request) {
	d.deleteOne(w, r, "memoryId", "MEMORY_NOT_FOUND", "memory", "DeleteMemory",
		func(ctx context.Context, db pb.DatabaseClient, agentID, id string) (int64, error) {
			res, err := db.DeleteMemory(ctx, &pb.DeleteMemoryRequest{AgentId: agentID, Id: id})
			// Announced as elizaOS's message bus announces a deleted
			// message, before the answer: a plugin that keeps recent
			// messages forgets it before the next message comes.
			if a := d.agentByID(agentID); err == nil && res.GetDeleted() > 0 && a != nil {
				a.hostEvent(ctx, sdk.EventMessageDeleted, "", &pb.Memory{Id: id, AgentId: agentID}, nil)
			}
			return res.GetDeleted(), err
		})
}

// deleteOne is every "delete one of the agent's records by id" route: the
// id from the path is checked, the database plugin deletes, and a record
// that was not there is a 404 with notFound as its code.
func (d *Daemon) deleteOne(w http.ResponseWriter, r *http.Request, param, notFound, what, method string,
	del func(ctx context.Context, db pb.DatabaseClient, agentID, id string) (int64, error)) {
	a := d.agentFor(w, r)
	if a == nil {
		return
	}
	id, ok := uuidParam(w, param, r.PathValue(param), true)
	if !ok {
		return
	}
	p, c, err := a.db(r.Context())
	if err != nil {
		writeDBUnavailable(w, err)
		return
	}
	n, err := del(r.Context(), c.db, a.ID, id)
	if err != nil {
		writeDBError(w, p.callErr(c, method, err))
		return
	}
	if n == 0 {
		writeError(w, http.StatusNotFound, notFound, "agent "+a.Name+" has no "+what+" "+id)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"deleted": n, "id": id})
}

func (d *Daemon) handleClearRoom(w http.ResponseWriter, r *http.Request) {
	a := d.agentFor(w, r)
	if a == nil {
		return
	}
	roomID, ok := uuidParam(w, "roomId", r.PathValue("roomId"), true)
	if !ok {
		return
	}
	d.clearMemories(w, r, a, roomID)
}

func (d *Daemon) handleClearMemories(w http.ResponseWriter, r *http.Request) {
	a := d.agentFor(w, r)
	if a == nil {
		return
	}
	roomID, ok := uuidParam(w, "roomId", r.URL.Query().Get("roomId"), false)
	if !ok {
		return
	}
	d.clearMemories(w, r, a, roomID)
}

func (d *Daemon) clearMemories(w http.ResponseWriter, r *http.Request, a *AgentRuntime, roomID string) {
	n, err := d.ClearMemories(r.Context(), a, roomID)
	if err != nil {
		writeDBError(w, err)
		return
	}
	if roomID != "" {
		d.api.hub.roomEvent(a.ID, roomID, map[string]any{"type": "room_cleared", "agentId": a.ID, "roomId": roomID})
	}
	writeJSON(w, http.StatusOK, map[string]any{"deleted": n})
}

func roomJSON(r *pb.Room) map[string]any {
	out := map[string]any{"id": r.GetId(), "name": r.GetName(), "source": r.GetSource(), "type": r.GetType(),
		"channelId": r.GetChannelId(), "serverId": r.GetServerId(), "worldId": r.GetWorldId()}
	if md := r.GetMetadataJson(); len(md) > 0 {
		var m map[string]any
		if json.Unmarshal(md, &m) == nil {
			out["metadata"] = m
		}
	}
	return out
}

func (d *Daemon) handleRooms(w http.ResponseWriter, r *http.Request) {
	a := d.agentFor(w, r)
	if a == nil {
		return
	}
	q := r.URL.Query()
	worldID, ok := uuidParam(w, "worldId", q.Get("worldId"), false)
	if !ok {
		return
	}
	participant, ok := uuidParam(w, "participantId", q.Get("participantId"), false)
	if !ok {
		return
	}
	p, c, err := a.db(r.Context())
	if err != nil {
		writeDBUnavailable(w, err)
		return
	}
	res, err := c.db.GetRooms(r.Context(), &pb.GetRoomsRequest{AgentId: a.ID, WorldId: worldID, ParticipantId: participant})
	if err != nil {
		writeDBError(w, p.callErr(c, "GetRooms", err))
		return
	}
	out := make([]map[string]any, 0, len(res.GetRooms()))
	for _, room := range res.GetRooms() {
		out = append(out, roomJSON(room))
	}
	writeJSON(w, http.StatusOK, map[string]any{"rooms": out})
}

func (d *Daemon) handleRoom(w http.ResponseWriter, r *http.Request) {
	a := d.agentFor(w, r)
	if a == nil {
		return
	}
	roomID, ok := uuidParam(w, "roomId", r.PathValue("roomId"), true)
	if !ok {
		return
	}
	p, c, err := a.db(r.Context())
	if err != nil {
		writeDBUnavailable(w, err)
		return
	}
	res, err := c.db.GetRooms(r.Context(), &pb.GetRoomsRequest{AgentId: a.ID, Ids: []string{roomID}})
	if err != nil {
		writeDBError(w, p.callErr(c, "GetRooms", err))
		return
	}
	if len(res.GetRooms()) == 0 {
		writeError(w, http.StatusNotFound, "ROOM_NOT_FOUND", "agent "+a.Name+" has no room "+roomID)
		return
	}
	out := roomJSON(res.GetRooms()[0])
	parts, err := c.db.GetParticipants(r.Context(), &pb.GetParticipantsRequest{AgentId: a.ID, RoomId: roomID})
	if err == nil {
		ids := parts.GetEntityIds()
		if ids == nil {
			ids = []string{}
		}
		out["participants"] = ids
	}
	writeJSON(w, http.StatusOK, out)
}

func (d *Daemon) handleWorlds(w http.ResponseWriter, r *http.Request) {
	a := d.agentFor(w, r)
	if a == nil {
		return
	}
	p, c, err := a.db(r.Context())
	if err != nil {
		writeDBUnavailable(w, err)
		return
	}
	res, err := c.db.GetWorlds(r.Context(), &pb.GetWorldsRequest{AgentId: a.ID})
	if err != nil {
		writeDBError(w, p.callErr(c, "GetWorlds", err))
		return
	}
	out := make([]map[string]any, 0, len(res.GetWorlds()))
	for _, wd := range res.GetWorlds() {
		m := map[string]any{"id": wd.GetId(), "name": wd.GetName(), "serverId": wd.GetServerId()}
		if md := wd.GetMetadataJson(); len(md) > 0 {
			var x map[string]any
			if json.Unmarshal(md, &x) == nil {
				m["metadata"] = x
			}
		}
		out = append(out, m)
	}
	writeJSON(w, http.StatusOK, map[string]any{"worlds": out})
}
