package storage

import (
	"github.com/agenthost/agenthost/sdk"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

// Conversions between this package's types and the protocol's messages.
// Metadata that must tell "absent" from "empty" is encoded with
// encodeJSONObject, which writes {} for an empty, non-nil map.

func encodeJSONObject(m map[string]any) []byte {
	if m == nil {
		return nil
	}
	if len(m) == 0 {
		return []byte("{}")
	}
	return conv.EncodeMap(m)
}

func decodeJSONObject(b []byte) map[string]any {
	if len(b) == 0 {
		return nil
	}
	if m := conv.DecodeMap(b); m != nil {
		return m
	}
	return map[string]any{}
}

func memoryUpdateToProto(agentID string, u *MemoryUpdate) *pb.UpdateMemoryRequest {
	req := &pb.UpdateMemoryRequest{AgentId: agentID, Id: u.ID, MetadataJson: conv.EncodeMap(u.Metadata),
		Embedding: u.Embedding, ClearEmbedding: u.ClearEmbedding}
	if u.Content != nil {
		req.Content = conv.ContentToProto(u.Content)
	}
	return req
}

func memoryUpdateFromProto(req *pb.UpdateMemoryRequest) MemoryUpdate {
	u := MemoryUpdate{ID: req.GetId(), Metadata: conv.DecodeMap(req.GetMetadataJson()), Embedding: req.GetEmbedding(),
		ClearEmbedding: req.GetClearEmbedding()}
	if req.GetContent() != nil {
		c := conv.ContentFromProto(req.GetContent())
		u.Content = &c
	}
	return u
}

func componentToProto(c *sdk.Component) *pb.Component {
	return &pb.Component{Id: c.ID, EntityId: c.EntityID, AgentId: c.AgentID, RoomId: c.RoomID, WorldId: c.WorldID,
		SourceEntityId: c.SourceEntityID, Type: conv.ValidUTF8(c.Type), DataJson: conv.EncodeMap(c.Data), CreatedAt: c.CreatedAt}
}

func componentFromProto(c *pb.Component) sdk.Component {
	return sdk.Component{ID: c.GetId(), EntityID: c.GetEntityId(), AgentID: c.GetAgentId(), RoomID: c.GetRoomId(),
		WorldID: c.GetWorldId(), SourceEntityID: c.GetSourceEntityId(), Type: c.GetType(),
		Data: conv.DecodeMap(c.GetDataJson()), CreatedAt: c.GetCreatedAt()}
}

func relationshipToProto(r *Relationship) *pb.Relationship {
	return &pb.Relationship{Id: r.ID, SourceEntityId: r.SourceEntityID, TargetEntityId: r.TargetEntityID, AgentId: r.AgentID,
		Tags: conv.ValidUTF8s(r.Tags), MetadataJson: conv.EncodeMap(r.Metadata), CreatedAt: r.CreatedAt}
}

func relationshipFromProto(r *pb.Relationship) Relationship {
	return Relationship{ID: r.GetId(), SourceEntityID: r.GetSourceEntityId(), TargetEntityID: r.GetTargetEntityId(),
		AgentID: r.GetAgentId(), Tags: r.GetTags(), Metadata: conv.DecodeMap(r.GetMetadataJson()), CreatedAt: r.GetCreatedAt()}
}

func taskToProto(t *Task) *pb.Task {
	return &pb.Task{Id: t.ID, Name: conv.ValidUTF8(t.Name), Description: conv.ValidUTF8(t.Description), RoomId: t.RoomID,
		WorldId: t.WorldID, EntityId: t.EntityID, AgentId: t.AgentID, Tags: conv.ValidUTF8s(t.Tags),
		MetadataJson: conv.EncodeMap(t.Metadata), CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt}
}

func taskFromProto(t *pb.Task) Task {
	return Task{ID: t.GetId(), Name: t.GetName(), Description: t.GetDescription(), RoomID: t.GetRoomId(),
		WorldID: t.GetWorldId(), EntityID: t.GetEntityId(), AgentID: t.GetAgentId(), Tags: t.GetTags(),
		Metadata: conv.DecodeMap(t.GetMetadataJson()), CreatedAt: t.GetCreatedAt(), UpdatedAt: t.GetUpdatedAt()}
}

func taskUpdateToProto(agentID, id string, u *TaskUpdate) *pb.UpdateTaskRequest {
	return &pb.UpdateTaskRequest{AgentId: agentID, Id: id, Name: u.Name, Description: u.Description, RoomId: u.RoomID,
		WorldId: u.WorldID, EntityId: u.EntityID, ReplaceTags: u.Tags != nil, Tags: conv.ValidUTF8s(u.Tags),
		MetadataJson: encodeJSONObject(u.Metadata)}
}

func taskUpdateFromProto(req *pb.UpdateTaskRequest) TaskUpdate {
	u := TaskUpdate{Name: req.Name, Description: req.Description, RoomID: req.RoomId, WorldID: req.WorldId,
		EntityID: req.EntityId, Metadata: decodeJSONObject(req.GetMetadataJson())}
	if req.GetReplaceTags() {
		u.Tags = req.GetTags()
		if u.Tags == nil {
			u.Tags = []string{}
		}
	}
	return u
}

// entitiesToProto encodes entities; with components, the components of all
// of them travel beside them, each naming its entity.
func entitiesToProto(es []sdk.Entity, withComponents bool) *pb.GetEntitiesResponse {
	out := &pb.GetEntitiesResponse{Entities: make([]*pb.Entity, len(es))}
	for i := range es {
		out.Entities[i] = conv.EntityToProto(&es[i])
		if withComponents {
			for j := range es[i].Components {
				c := componentToProto(&es[i].Components[j])
				c.EntityId = es[i].ID
				out.Components = append(out.Components, c)
			}
		}
	}
	return out
}

// entitiesFromProto decodes entities; with components, each entity gets
// its own (an empty, non-nil slice when it has none).
func entitiesFromProto(entities []*pb.Entity, components []*pb.Component, withComponents bool) []sdk.Entity {
	out := make([]sdk.Entity, len(entities))
	byID := make(map[string]int, len(out))
	for i, e := range entities {
		out[i] = conv.EntityFromProto(e)
		if withComponents {
			out[i].Components = []sdk.Component{}
			byID[out[i].ID] = i
		}
	}
	if withComponents {
		for _, c := range components {
			if i, ok := byID[c.GetEntityId()]; ok {
				out[i].Components = append(out[i].Components, componentFromProto(c))
			}
		}
	}
	return out
}

func cachedEmbeddingsQueryToProto(agentID string, q *CachedEmbeddingsQuery) *pb.GetCachedEmbeddingsRequest {
	return &pb.GetCachedEmbeddingsRequest{AgentId: agentID, Table: conv.ValidUTF8(q.Table), Text: conv.ValidUTF8(q.Text), Field: conv.ValidUTF8(q.Field),
		Threshold: clampInt32(q.Threshold), Count: clampInt32(q.Count)}
}

func cachedEmbeddingsQueryFromProto(req *pb.GetCachedEmbeddingsRequest) CachedEmbeddingsQuery {
	return CachedEmbeddingsQuery{Table: req.GetTable(), Text: req.GetText(), Field: req.GetField(),
		Threshold: int(req.GetThreshold()), Count: int(req.GetCount())}
}

// clampInt32 keeps a count within an int32 field: a larger one must not
// wrap around to a negative or small number on the wire.
func clampInt32(n int) int32 {
	const maxInt32, minInt32 = 1<<31 - 1, -1 << 31
	switch {
	case n > maxInt32:
		return maxInt32
	case n < minInt32:
		return minInt32
	}
	return int32(n)
}

func memoryQueryToProto(agentID string, q *MemoryQuery) *pb.GetMemoriesRequest {
	return &pb.GetMemoriesRequest{AgentId: agentID, Table: q.Table, RoomId: q.RoomID, RoomIds: q.RoomIDs,
		EntityId: q.EntityID, WorldId: q.WorldID, Count: int32(q.Count), Unique: q.Unique, Start: q.Start, End: q.End,
		OmitEmbeddings: q.OmitEmbeddings}
}

func memoryQueryFromProto(q *pb.GetMemoriesRequest) MemoryQuery {
	return MemoryQuery{Table: q.GetTable(), RoomID: q.GetRoomId(), RoomIDs: q.GetRoomIds(), EntityID: q.GetEntityId(),
		WorldID: q.GetWorldId(), Count: int(q.GetCount()), Unique: q.GetUnique(), Start: q.GetStart(), End: q.GetEnd(),
		OmitEmbeddings: q.GetOmitEmbeddings()}
}

func searchQueryToProto(agentID string, q *SearchQuery) *pb.SearchMemoriesRequest {
	return &pb.SearchMemoriesRequest{AgentId: agentID, Table: q.Table, Embedding: q.Embedding, Threshold: q.Threshold,
		Count: int32(q.Count), Unique: q.Unique, RoomId: q.RoomID, WorldId: q.WorldID, EntityId: q.EntityID}
}

func searchQueryFromProto(q *pb.SearchMemoriesRequest) SearchQuery {
	return SearchQuery{Table: q.GetTable(), Embedding: q.GetEmbedding(), Threshold: q.GetThreshold(), Count: int(q.GetCount()),
		Unique: q.GetUnique(), RoomID: q.GetRoomId(), WorldID: q.GetWorldId(), EntityID: q.GetEntityId()}
}

func logToProto(l *LogEntry) *pb.LogEntry {
	return &pb.LogEntry{Id: l.ID, AgentId: l.AgentID, EntityId: l.EntityID, RoomId: l.RoomID, Type: l.Type, BodyJson: conv.EncodeMap(l.Body), CreatedAt: l.CreatedAt}
}

func logFromProto(l *pb.LogEntry) LogEntry {
	return LogEntry{ID: l.GetId(), AgentID: l.GetAgentId(), EntityID: l.GetEntityId(), RoomID: l.GetRoomId(), Type: l.GetType(), Body: conv.DecodeMap(l.GetBodyJson()), CreatedAt: l.GetCreatedAt()}
}
