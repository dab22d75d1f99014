// Package storage is an agent's storage: its memories, entities, rooms,
// worlds, participants, components, relationships, tasks, logs and cache.
//
// A plugin reaches it through the agent its handler runs for:
//
//	st := storage.For(a)
//	msgs, err := st.GetMemories(ctx, storage.MemoryQuery{Table: sdk.TableMessages, RoomID: msg.RoomID, Count: 20})
//
// Each call is a call of the Database service on the plugin's Runtime
// connection: the host checks that the agent uses the plugin and forwards
// it to the agent's database plugin (sdk/dbplugin serves that side). A
// call's error wraps the sdk's kinds ([sdk.ErrNotFound], [sdk.ErrInvalid],
// ...), and [sdk.ErrNoRuntime] when the agent has no host (a handler
// called directly in a unit test; sdk/plugintest gives it one).
//
// The data types that travel through handlers ([sdk.Memory], [sdk.Entity],
// [sdk.Room], [sdk.World], [sdk.Component]) stay in package sdk; the types
// here are the ones only storage calls take or return.
package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/agenthost/agenthost/internal/contract"
	"github.com/agenthost/agenthost/sdk"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

// Store is one agent's storage. It is cheap to make and safe for
// concurrent use; keep one for several calls in a row.
type Store struct {
	agentID string
	db      pb.DatabaseClient
}

// For is the storage of agent a. A nil agent, or one the host did not give
// a Runtime, has a Store whose calls fail with [sdk.ErrNoRuntime].
func For(a *sdk.Agent) *Store {
	if a == nil {
		return &Store{}
	}
	return &Store{agentID: a.ID, db: conv.Database(a)}
}

// call runs one Database call with the default deadline, so that a stuck
// host can never hang a plugin forever.
func call[T any](s *Store, ctx context.Context, method string, do func(context.Context, pb.DatabaseClient) (T, error)) (T, error) {
	var zero T
	if s == nil || s.db == nil {
		return zero, sdk.ErrNoRuntime
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, contract.DefaultCallTimeout)
		defer cancel()
	}
	res, err := do(ctx, s.db)
	if err != nil {
		return zero, contract.FromStatus("runtime "+method, err)
	}
	return res, nil
}

// CreateMemory stores m in table and returns its id; created is false when a
// memory with that id was already stored.
func (s *Store) CreateMemory(ctx context.Context, m *sdk.Memory, table string, unique bool) (id string, created bool, err error) {
	res, err := call(s, ctx, "CreateMemory", func(ctx context.Context, db pb.DatabaseClient) (*pb.CreateMemoryResponse, error) {
		return db.CreateMemory(ctx, &pb.CreateMemoryRequest{AgentId: s.agentID, Memory: conv.MemoryToProto(m), Table: table, Unique: unique})
	})
	return res.GetId(), res.GetCreated(), err
}

// GetMemories returns memories, newest first.
func (s *Store) GetMemories(ctx context.Context, q MemoryQuery) ([]sdk.Memory, error) {
	res, err := call(s, ctx, "GetMemories", func(ctx context.Context, db pb.DatabaseClient) (*pb.GetMemoriesResponse, error) {
		return db.GetMemories(ctx, memoryQueryToProto(s.agentID, &q))
	})
	return conv.MemoriesFromProto(res.GetMemories()), err
}

// GetMemoriesByIDs returns the memories with these ids that exist.
func (s *Store) GetMemoriesByIDs(ctx context.Context, ids []string, table string) ([]sdk.Memory, error) {
	res, err := call(s, ctx, "GetMemoriesByIDs", func(ctx context.Context, db pb.DatabaseClient) (*pb.GetMemoriesByIDsResponse, error) {
		return db.GetMemoriesByIDs(ctx, &pb.GetMemoriesByIDsRequest{AgentId: s.agentID, Ids: ids, Table: table})
	})
	return conv.MemoriesFromProto(res.GetMemories()), err
}

// SearchMemories returns the memories most similar to q.Embedding.
func (s *Store) SearchMemories(ctx context.Context, q SearchQuery) ([]sdk.Memory, error) {
	res, err := call(s, ctx, "SearchMemories", func(ctx context.Context, db pb.DatabaseClient) (*pb.SearchMemoriesResponse, error) {
		return db.SearchMemories(ctx, searchQueryToProto(s.agentID, &q))
	})
	return conv.MemoriesFromProto(res.GetMemories()), err
}

// DeleteMemory deletes one memory.
func (s *Store) DeleteMemory(ctx context.Context, id string) error {
	_, err := call(s, ctx, "DeleteMemory", func(ctx context.Context, db pb.DatabaseClient) (*pb.DeleteMemoryResponse, error) {
		return db.DeleteMemory(ctx, &pb.DeleteMemoryRequest{AgentId: s.agentID, Id: id})
	})
	return err
}

// CountMemories counts a room's memories in a table.
func (s *Store) CountMemories(ctx context.Context, roomID, table string, unique bool) (int64, error) {
	res, err := call(s, ctx, "CountMemories", func(ctx context.Context, db pb.DatabaseClient) (*pb.CountMemoriesResponse, error) {
		return db.CountMemories(ctx, &pb.CountMemoriesRequest{AgentId: s.agentID, RoomId: roomID, Table: table, Unique: unique})
	})
	return res.GetCount(), err
}

// UpdateMemory changes what u sets of a stored memory: the content, the
// metadata (merged key by key; a nil value deletes the key), the embedding.
// found is false when no memory has u.ID.
func (s *Store) UpdateMemory(ctx context.Context, u MemoryUpdate) (found bool, err error) {
	res, err := call(s, ctx, "UpdateMemory", func(ctx context.Context, db pb.DatabaseClient) (*pb.UpdateMemoryResponse, error) {
		return db.UpdateMemory(ctx, memoryUpdateToProto(s.agentID, &u))
	})
	return res.GetFound(), err
}

// DeleteManyMemories deletes the memories among ids in one transaction.
func (s *Store) DeleteManyMemories(ctx context.Context, ids []string) (int64, error) {
	res, err := call(s, ctx, "DeleteManyMemories", func(ctx context.Context, db pb.DatabaseClient) (*pb.DeleteManyMemoriesResponse, error) {
		return db.DeleteManyMemories(ctx, &pb.DeleteManyMemoriesRequest{AgentId: s.agentID, Ids: ids})
	})
	return res.GetDeleted(), err
}

// DeleteAllMemories deletes a room's memories of a table (all tables when
// table is empty).
func (s *Store) DeleteAllMemories(ctx context.Context, roomID, table string) (int64, error) {
	res, err := call(s, ctx, "DeleteAllMemories", func(ctx context.Context, db pb.DatabaseClient) (*pb.DeleteAllMemoriesResponse, error) {
		return db.DeleteAllMemories(ctx, &pb.DeleteAllMemoriesRequest{AgentId: s.agentID, RoomId: roomID, Table: table})
	})
	return res.GetDeleted(), err
}

// GetCachedEmbeddings returns the stored embeddings of the memories whose
// text is within q.Threshold edits of q.Text, closest first (elizaOS's
// legacy getCachedEmbeddings): a text embedded before need not be embedded
// again.
func (s *Store) GetCachedEmbeddings(ctx context.Context, q CachedEmbeddingsQuery) ([]CachedEmbedding, error) {
	res, err := call(s, ctx, "GetCachedEmbeddings", func(ctx context.Context, db pb.DatabaseClient) (*pb.GetCachedEmbeddingsResponse, error) {
		return db.GetCachedEmbeddings(ctx, cachedEmbeddingsQueryToProto(s.agentID, &q))
	})
	if err != nil {
		return nil, err
	}
	out := make([]CachedEmbedding, len(res.GetEmbeddings()))
	for i, c := range res.GetEmbeddings() {
		out[i] = CachedEmbedding{MemoryID: c.GetMemoryId(), Embedding: c.GetEmbedding(), LevenshteinScore: int(c.GetLevenshteinScore())}
	}
	return out, nil
}

// EnsureConnection makes sure the world, room, entity and participations
// exist.
func (s *Store) EnsureConnection(ctx context.Context, c Connection) error {
	_, err := call(s, ctx, "EnsureConnection", func(ctx context.Context, db pb.DatabaseClient) (*pb.EnsureConnectionResponse, error) {
		return db.EnsureConnection(ctx, &pb.EnsureConnectionRequest{AgentId: s.agentID, Entity: conv.EntityToProto(&c.Entity),
			Room: conv.RoomToProto(&c.Room), World: conv.WorldToProto(&c.World)})
	})
	return err
}

// GetEntities returns the entities with these ids that exist.
func (s *Store) GetEntities(ctx context.Context, ids ...string) ([]sdk.Entity, error) {
	return s.getEntities(ctx, ids, false)
}

// GetEntitiesWithComponents is GetEntities with each entity's components
// attached (Components is empty, not nil, for an entity without any).
func (s *Store) GetEntitiesWithComponents(ctx context.Context, ids ...string) ([]sdk.Entity, error) {
	return s.getEntities(ctx, ids, true)
}

func (s *Store) getEntities(ctx context.Context, ids []string, withComponents bool) ([]sdk.Entity, error) {
	res, err := call(s, ctx, "GetEntities", func(ctx context.Context, db pb.DatabaseClient) (*pb.GetEntitiesResponse, error) {
		return db.GetEntities(ctx, &pb.GetEntitiesRequest{AgentId: s.agentID, Ids: ids, IncludeComponents: withComponents})
	})
	if err != nil {
		return nil, err
	}
	return entitiesFromProto(res.GetEntities(), res.GetComponents(), withComponents), nil
}

// GetEntitiesForRoom returns the entities that take part in a room.
func (s *Store) GetEntitiesForRoom(ctx context.Context, roomID string) ([]sdk.Entity, error) {
	return s.getEntitiesForRoom(ctx, roomID, false)
}

// GetEntitiesForRoomWithComponents is GetEntitiesForRoom with each
// entity's components attached (elizaOS's getEntitiesForRoom(roomId,
// true)).
func (s *Store) GetEntitiesForRoomWithComponents(ctx context.Context, roomID string) ([]sdk.Entity, error) {
	return s.getEntitiesForRoom(ctx, roomID, true)
}

func (s *Store) getEntitiesForRoom(ctx context.Context, roomID string, withComponents bool) ([]sdk.Entity, error) {
	res, err := call(s, ctx, "GetEntitiesForRoom", func(ctx context.Context, db pb.DatabaseClient) (*pb.GetEntitiesForRoomResponse, error) {
		return db.GetEntitiesForRoom(ctx, &pb.GetEntitiesForRoomRequest{AgentId: s.agentID, RoomId: roomID, IncludeComponents: withComponents})
	})
	if err != nil {
		return nil, err
	}
	return entitiesFromProto(res.GetEntities(), res.GetComponents(), withComponents), nil
}

// SearchEntities finds the agent's entities by name, oldest first:
// names that contain q.NameContains in lower case, or equal one of q.Names.
func (s *Store) SearchEntities(ctx context.Context, q EntitySearch) ([]sdk.Entity, error) {
	res, err := call(s, ctx, "SearchEntities", func(ctx context.Context, db pb.DatabaseClient) (*pb.SearchEntitiesResponse, error) {
		return db.SearchEntities(ctx, &pb.SearchEntitiesRequest{AgentId: s.agentID, NameContains: conv.ValidUTF8(q.NameContains),
			Names: conv.ValidUTF8s(q.Names), Count: clampInt32(q.Count), IncludeComponents: q.WithComponents})
	})
	if err != nil {
		return nil, err
	}
	return entitiesFromProto(res.GetEntities(), res.GetComponents(), q.WithComponents), nil
}

// UpsertEntities creates or replaces entities.
func (s *Store) UpsertEntities(ctx context.Context, entities ...sdk.Entity) error {
	req := &pb.UpsertEntitiesRequest{AgentId: s.agentID}
	for i := range entities {
		req.Entities = append(req.Entities, conv.EntityToProto(&entities[i]))
	}
	_, err := call(s, ctx, "UpsertEntities", func(ctx context.Context, db pb.DatabaseClient) (*pb.UpsertEntitiesResponse, error) {
		return db.UpsertEntities(ctx, req)
	})
	return err
}

// DeleteEntity deletes an entity with its components, relationships and
// participations.
func (s *Store) DeleteEntity(ctx context.Context, id string) (int64, error) {
	res, err := call(s, ctx, "DeleteEntity", func(ctx context.Context, db pb.DatabaseClient) (*pb.DeleteEntityResponse, error) {
		return db.DeleteEntity(ctx, &pb.DeleteEntityRequest{AgentId: s.agentID, Id: id})
	})
	return res.GetDeleted(), err
}

// GetRooms returns rooms by ids, by participant or by world.
func (s *Store) GetRooms(ctx context.Context, q RoomQuery) ([]sdk.Room, error) {
	res, err := call(s, ctx, "GetRooms", func(ctx context.Context, db pb.DatabaseClient) (*pb.GetRoomsResponse, error) {
		return db.GetRooms(ctx, &pb.GetRoomsRequest{AgentId: s.agentID, Ids: q.IDs, ParticipantId: q.ParticipantID,
			ParticipantIds: q.ParticipantIDs, WorldId: q.WorldID})
	})
	if err != nil {
		return nil, err
	}
	out := make([]sdk.Room, len(res.GetRooms()))
	for i, r := range res.GetRooms() {
		out[i] = conv.RoomFromProto(r)
	}
	return out, nil
}

// GetRoom returns one room, or an error wrapping [sdk.ErrNotFound].
func (s *Store) GetRoom(ctx context.Context, id string) (*sdk.Room, error) {
	rooms, err := s.GetRooms(ctx, RoomQuery{IDs: []string{id}})
	if err != nil {
		return nil, err
	}
	if len(rooms) == 0 {
		return nil, fmt.Errorf("room %s: %w", id, sdk.ErrNotFound)
	}
	return &rooms[0], nil
}

// UpsertRoom creates or replaces a room.
func (s *Store) UpsertRoom(ctx context.Context, r sdk.Room) error {
	_, err := call(s, ctx, "UpsertRoom", func(ctx context.Context, db pb.DatabaseClient) (*pb.UpsertRoomResponse, error) {
		return db.UpsertRoom(ctx, &pb.UpsertRoomRequest{AgentId: s.agentID, Room: conv.RoomToProto(&r)})
	})
	return err
}

// UpsertRooms creates or replaces several rooms in one transaction.
func (s *Store) UpsertRooms(ctx context.Context, rooms ...sdk.Room) error {
	req := &pb.UpsertRoomsRequest{AgentId: s.agentID, Rooms: make([]*pb.Room, len(rooms))}
	for i := range rooms {
		req.Rooms[i] = conv.RoomToProto(&rooms[i])
	}
	_, err := call(s, ctx, "UpsertRooms", func(ctx context.Context, db pb.DatabaseClient) (*pb.UpsertRoomsResponse, error) {
		return db.UpsertRooms(ctx, req)
	})
	return err
}

// DeleteRoom deletes a room with its participants, memories and logs.
func (s *Store) DeleteRoom(ctx context.Context, id string) (int64, error) {
	res, err := call(s, ctx, "DeleteRoom", func(ctx context.Context, db pb.DatabaseClient) (*pb.DeleteRoomResponse, error) {
		return db.DeleteRoom(ctx, &pb.DeleteRoomRequest{AgentId: s.agentID, Id: id})
	})
	return res.GetDeleted(), err
}

// DeleteRoomsByWorld deletes the rooms of a world, with their participants,
// memories and logs, and keeps the world.
func (s *Store) DeleteRoomsByWorld(ctx context.Context, worldID string) (int64, error) {
	res, err := call(s, ctx, "DeleteRoomsByWorld", func(ctx context.Context, db pb.DatabaseClient) (*pb.DeleteRoomsByWorldResponse, error) {
		return db.DeleteRoomsByWorld(ctx, &pb.DeleteRoomsByWorldRequest{AgentId: s.agentID, WorldId: worldID})
	})
	return res.GetDeleted(), err
}

// GetWorlds returns the worlds with these ids that exist.
func (s *Store) GetWorlds(ctx context.Context, ids ...string) ([]sdk.World, error) {
	res, err := call(s, ctx, "GetWorlds", func(ctx context.Context, db pb.DatabaseClient) (*pb.GetWorldsResponse, error) {
		return db.GetWorlds(ctx, &pb.GetWorldsRequest{AgentId: s.agentID, Ids: ids})
	})
	if err != nil {
		return nil, err
	}
	out := make([]sdk.World, len(res.GetWorlds()))
	for i, w := range res.GetWorlds() {
		out[i] = conv.WorldFromProto(w)
	}
	return out, nil
}

// UpsertWorld creates or replaces a world.
func (s *Store) UpsertWorld(ctx context.Context, w sdk.World) error {
	_, err := call(s, ctx, "UpsertWorld", func(ctx context.Context, db pb.DatabaseClient) (*pb.UpsertWorldResponse, error) {
		return db.UpsertWorld(ctx, &pb.UpsertWorldRequest{AgentId: s.agentID, World: conv.WorldToProto(&w)})
	})
	return err
}

// DeleteWorld deletes a world and its rooms.
func (s *Store) DeleteWorld(ctx context.Context, id string) (int64, error) {
	res, err := call(s, ctx, "DeleteWorld", func(ctx context.Context, db pb.DatabaseClient) (*pb.DeleteWorldResponse, error) {
		return db.DeleteWorld(ctx, &pb.DeleteWorldRequest{AgentId: s.agentID, Id: id})
	})
	return res.GetDeleted(), err
}

// GetParticipants returns the entity ids of a room's participants.
func (s *Store) GetParticipants(ctx context.Context, roomID string) ([]string, error) {
	res, err := call(s, ctx, "GetParticipants", func(ctx context.Context, db pb.DatabaseClient) (*pb.GetParticipantsResponse, error) {
		return db.GetParticipants(ctx, &pb.GetParticipantsRequest{AgentId: s.agentID, RoomId: roomID})
	})
	return res.GetEntityIds(), err
}

// AddParticipants makes entities participants of a room in one
// transaction and returns how many were not participants before.
func (s *Store) AddParticipants(ctx context.Context, roomID string, entityIDs ...string) (int64, error) {
	res, err := call(s, ctx, "AddParticipants", func(ctx context.Context, db pb.DatabaseClient) (*pb.AddParticipantsResponse, error) {
		return db.AddParticipants(ctx, &pb.AddParticipantsRequest{AgentId: s.agentID, RoomId: roomID, EntityIds: entityIDs})
	})
	return res.GetAdded(), err
}

// RemoveParticipant takes an entity out of a room.
func (s *Store) RemoveParticipant(ctx context.Context, roomID, entityID string) (bool, error) {
	res, err := call(s, ctx, "RemoveParticipant", func(ctx context.Context, db pb.DatabaseClient) (*pb.RemoveParticipantResponse, error) {
		return db.RemoveParticipant(ctx, &pb.RemoveParticipantRequest{AgentId: s.agentID, RoomId: roomID, EntityId: entityID})
	})
	return res.GetRemoved(), err
}

// GetParticipantState returns FOLLOWED, MUTED or "".
func (s *Store) GetParticipantState(ctx context.Context, roomID, entityID string) (string, error) {
	res, err := call(s, ctx, "GetParticipantState", func(ctx context.Context, db pb.DatabaseClient) (*pb.GetParticipantStateResponse, error) {
		return db.GetParticipantState(ctx, &pb.GetParticipantStateRequest{AgentId: s.agentID, RoomId: roomID, EntityId: entityID})
	})
	return res.GetState(), err
}

// SetParticipantState sets FOLLOWED, MUTED or "".
func (s *Store) SetParticipantState(ctx context.Context, roomID, entityID, state string) error {
	_, err := call(s, ctx, "SetParticipantState", func(ctx context.Context, db pb.DatabaseClient) (*pb.SetParticipantStateResponse, error) {
		return db.SetParticipantState(ctx, &pb.SetParticipantStateRequest{AgentId: s.agentID, RoomId: roomID, EntityId: entityID, State: state})
	})
	return err
}

// CreateComponent stores a component of an entity; created is false when
// its id was stored already.
func (s *Store) CreateComponent(ctx context.Context, c sdk.Component) (id string, created bool, err error) {
	res, err := call(s, ctx, "CreateComponent", func(ctx context.Context, db pb.DatabaseClient) (*pb.CreateComponentResponse, error) {
		return db.CreateComponent(ctx, &pb.CreateComponentRequest{AgentId: s.agentID, Component: componentToProto(&c)})
	})
	return res.GetId(), res.GetCreated(), err
}

// UpdateComponent replaces a stored component.
func (s *Store) UpdateComponent(ctx context.Context, c sdk.Component) error {
	_, err := call(s, ctx, "UpdateComponent", func(ctx context.Context, db pb.DatabaseClient) (*pb.UpdateComponentResponse, error) {
		return db.UpdateComponent(ctx, &pb.UpdateComponentRequest{AgentId: s.agentID, Component: componentToProto(&c)})
	})
	return err
}

// GetComponents returns the components of entities.
func (s *Store) GetComponents(ctx context.Context, q ComponentQuery) ([]sdk.Component, error) {
	res, err := call(s, ctx, "GetComponents", func(ctx context.Context, db pb.DatabaseClient) (*pb.GetComponentsResponse, error) {
		return db.GetComponents(ctx, &pb.GetComponentsRequest{AgentId: s.agentID, EntityIds: q.EntityIDs, Type: q.Type,
			WorldId: q.WorldID, SourceEntityId: q.SourceEntityID})
	})
	if err != nil {
		return nil, err
	}
	out := make([]sdk.Component, len(res.GetComponents()))
	for i, c := range res.GetComponents() {
		out[i] = componentFromProto(c)
	}
	return out, nil
}

// DeleteComponent deletes a component.
func (s *Store) DeleteComponent(ctx context.Context, id string) (int64, error) {
	res, err := call(s, ctx, "DeleteComponent", func(ctx context.Context, db pb.DatabaseClient) (*pb.DeleteComponentResponse, error) {
		return db.DeleteComponent(ctx, &pb.DeleteComponentRequest{AgentId: s.agentID, Id: id})
	})
	return res.GetDeleted(), err
}

// CreateRelationship stores a relationship between two entities; created
// is false when one from the same source to the same target was stored.
func (s *Store) CreateRelationship(ctx context.Context, r Relationship) (id string, created bool, err error) {
	res, err := call(s, ctx, "CreateRelationship", func(ctx context.Context, db pb.DatabaseClient) (*pb.CreateRelationshipResponse, error) {
		return db.CreateRelationship(ctx, &pb.CreateRelationshipRequest{AgentId: s.agentID, Relationship: relationshipToProto(&r)})
	})
	return res.GetId(), res.GetCreated(), err
}

// UpdateRelationship replaces the tags and metadata of the relationship
// from r.SourceEntityID to r.TargetEntityID.
func (s *Store) UpdateRelationship(ctx context.Context, r Relationship) error {
	_, err := call(s, ctx, "UpdateRelationship", func(ctx context.Context, db pb.DatabaseClient) (*pb.UpdateRelationshipResponse, error) {
		return db.UpdateRelationship(ctx, &pb.UpdateRelationshipRequest{AgentId: s.agentID, Relationship: relationshipToProto(&r)})
	})
	return err
}

// GetRelationships returns relationships by entity and tags (any of them).
func (s *Store) GetRelationships(ctx context.Context, q RelationshipQuery) ([]Relationship, error) {
	res, err := call(s, ctx, "GetRelationships", func(ctx context.Context, db pb.DatabaseClient) (*pb.GetRelationshipsResponse, error) {
		return db.GetRelationships(ctx, &pb.GetRelationshipsRequest{AgentId: s.agentID, EntityId: q.EntityID,
			SourceEntityId: q.SourceEntityID, TargetEntityId: q.TargetEntityID, Tags: q.Tags})
	})
	if err != nil {
		return nil, err
	}
	out := make([]Relationship, len(res.GetRelationships()))
	for i, r := range res.GetRelationships() {
		out[i] = relationshipFromProto(r)
	}
	return out, nil
}

// CreateTask stores a task and returns its id.
func (s *Store) CreateTask(ctx context.Context, t Task) (string, error) {
	res, err := call(s, ctx, "CreateTask", func(ctx context.Context, db pb.DatabaseClient) (*pb.CreateTaskResponse, error) {
		return db.CreateTask(ctx, &pb.CreateTaskRequest{AgentId: s.agentID, Task: taskToProto(&t)})
	})
	return res.GetId(), err
}

// GetTask returns one task, or an error wrapping [sdk.ErrNotFound].
func (s *Store) GetTask(ctx context.Context, id string) (Task, error) {
	res, err := call(s, ctx, "GetTask", func(ctx context.Context, db pb.DatabaseClient) (*pb.GetTaskResponse, error) {
		return db.GetTask(ctx, &pb.GetTaskRequest{AgentId: s.agentID, Id: id})
	})
	if err != nil {
		return Task{}, err
	}
	return taskFromProto(res.GetTask()), nil
}

// GetTasks returns tasks by room, entity, world, name and tags (all of them).
func (s *Store) GetTasks(ctx context.Context, q TaskQuery) ([]Task, error) {
	res, err := call(s, ctx, "GetTasks", func(ctx context.Context, db pb.DatabaseClient) (*pb.GetTasksResponse, error) {
		return db.GetTasks(ctx, &pb.GetTasksRequest{AgentId: s.agentID, RoomId: q.RoomID, EntityId: q.EntityID, WorldId: q.WorldID,
			Name: q.Name, Tags: q.Tags})
	})
	if err != nil {
		return nil, err
	}
	out := make([]Task, len(res.GetTasks()))
	for i, t := range res.GetTasks() {
		out[i] = taskFromProto(t)
	}
	return out, nil
}

// UpdateTask changes what u sets of a task.
func (s *Store) UpdateTask(ctx context.Context, id string, u TaskUpdate) error {
	_, err := call(s, ctx, "UpdateTask", func(ctx context.Context, db pb.DatabaseClient) (*pb.UpdateTaskResponse, error) {
		return db.UpdateTask(ctx, taskUpdateToProto(s.agentID, id, &u))
	})
	return err
}

// DeleteTask deletes a task.
func (s *Store) DeleteTask(ctx context.Context, id string) (int64, error) {
	res, err := call(s, ctx, "DeleteTask", func(ctx context.Context, db pb.DatabaseClient) (*pb.DeleteTaskResponse, error) {
		return db.DeleteTask(ctx, &pb.DeleteTaskRequest{AgentId: s.agentID, Id: id})
	})
	return res.GetDeleted(), err
}

// AddLog records a timeline entry (a model call, an action, a run).
func (s *Store) AddLog(ctx context.Context, l LogEntry) error {
	l.AgentID = s.agentID
	_, err := call(s, ctx, "AddLog", func(ctx context.Context, db pb.DatabaseClient) (*pb.AddLogResponse, error) {
		return db.AddLog(ctx, &pb.AddLogRequest{Log: logToProto(&l)})
	})
	return err
}

// GetLogs returns the agent's log entries, newest first.
func (s *Store) GetLogs(ctx context.Context, q LogQuery) ([]LogEntry, error) {
	res, err := call(s, ctx, "GetLogs", func(ctx context.Context, db pb.DatabaseClient) (*pb.GetLogsResponse, error) {
		return db.GetLogs(ctx, &pb.GetLogsRequest{AgentId: s.agentID, RoomId: q.RoomID, EntityId: q.EntityID, Type: q.Type,
			Count: int32(q.Count), Offset: int32(q.Offset)})
	})
	if err != nil {
		return nil, err
	}
	out := make([]LogEntry, len(res.GetLogs()))
	for i, l := range res.GetLogs() {
		out[i] = logFromProto(l)
	}
	return out, nil
}

// DeleteLog deletes a log entry.
func (s *Store) DeleteLog(ctx context.Context, id string) (int64, error) {
	res, err := call(s, ctx, "DeleteLog", func(ctx context.Context, db pb.DatabaseClient) (*pb.DeleteLogResponse, error) {
		return db.DeleteLog(ctx, &pb.DeleteLogRequest{AgentId: s.agentID, Id: id})
	})
	return res.GetDeleted(), err
}

// GetCache returns a cached value.
func (s *Store) GetCache(ctx context.Context, key string) ([]byte, bool, error) {
	res, err := call(s, ctx, "GetCache", func(ctx context.Context, db pb.DatabaseClient) (*pb.GetCacheResponse, error) {
		return db.GetCache(ctx, &pb.GetCacheRequest{AgentId: s.agentID, Key: key})
	})
	return res.GetValue(), res.GetFound(), err
}

// DeleteCache removes a cached value.
func (s *Store) DeleteCache(ctx context.Context, key string) error {
	_, err := call(s, ctx, "DeleteCache", func(ctx context.Context, db pb.DatabaseClient) (*pb.DeleteCacheResponse, error) {
		return db.DeleteCache(ctx, &pb.DeleteCacheRequest{AgentId: s.agentID, Key: key})
	})
	return err
}

// SetCache stores a value; ttl 0 means no expiry.
func (s *Store) SetCache(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	_, err := call(s, ctx, "SetCache", func(ctx context.Context, db pb.DatabaseClient) (*pb.SetCacheResponse, error) {
		return db.SetCache(ctx, &pb.SetCacheRequest{AgentId: s.agentID, Key: key, Value: value, TtlMs: ttl.Milliseconds()})
	})
	return err
}
