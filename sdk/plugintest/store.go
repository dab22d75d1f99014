package plugintest

import (
	"context"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/agenthost/agenthost/internal/contract"
	"github.com/agenthost/agenthost/sdk"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/agenthost/agenthost/sdk/storage"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// memStore is the in-memory database a Runtime serves its plugins' storage
// calls from when no database plugin was started with it: memories,
// entities, rooms, worlds, participants, logs and cache. The Database
// methods it does not keep answer UNIMPLEMENTED (sdk.ErrUnimplemented);
// start the sql plugin with the same Runtime to have them all.
type memStore struct {
	pb.UnimplementedDatabaseServer

	mu        sync.Mutex
	seq       int64
	memories  []*storedMemory
	entities  map[[2]string]sdk.Entity
	rooms     map[[2]string]sdk.Room
	roomOrder [][2]string
	worlds    map[[2]string]sdk.World
	members   map[[2]string][]string
	partState map[[3]string]string
	cache     map[[2]string]cacheEntry
	logs      []storage.LogEntry
}

type storedMemory struct {
	agentID string
	seq     int64
	m       sdk.Memory
}

type cacheEntry struct {
	value   []byte
	expires time.Time
}

func (r *memStore) next() int64 {
	r.seq++
	return r.seq
}

func (r *memStore) createMemory(agentID string, m sdk.Memory, table string, unique bool) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m.ID == "" {
		m.ID = newID()
	}
	for _, s := range r.memories {
		if s.agentID == agentID && s.m.ID == m.ID {
			return m.ID, false
		}
	}
	if m.AgentID == "" {
		m.AgentID = agentID
	}
	if table != "" {
		m.Table = table
	}
	if m.Table == "" {
		m.Table = sdk.TableMessages
	}
	m.Unique = m.Unique || unique
	if m.CreatedAt == 0 {
		m.CreatedAt = time.Now().UnixMilli()
	}
	m.Similarity = 0
	r.memories = append(r.memories, &storedMemory{agentID: agentID, seq: r.next(), m: m})
	return m.ID, true
}

// CreateMemory stores a memory; an id stored before is left as it is and
// reported with created=false. A memory without id gets one, without
// CreatedAt gets now, and without table goes to "messages".
func (r *memStore) CreateMemory(_ context.Context, req *pb.CreateMemoryRequest) (*pb.CreateMemoryResponse, error) {
	if req.GetMemory() == nil {
		return nil, status.Error(codes.InvalidArgument, "plugintest: CreateMemory: memory is missing")
	}
	id, created := r.createMemory(req.GetAgentId(), *conv.MemoryFromProto(req.GetMemory()), req.GetTable(), req.GetUnique())
	return &pb.CreateMemoryResponse{Id: id, Created: created}, nil
}

// GetMemories returns an agent's memories, newest first, filtered by the
// request's table, rooms, entity, world, unique flag and time range. Count
// 0 means all of them.
func (r *memStore) GetMemories(_ context.Context, req *pb.GetMemoriesRequest) (*pb.GetMemoriesResponse, error) {
	rooms := map[string]bool{}
	for _, id := range req.GetRoomIds() {
		rooms[id] = true
	}
	if req.GetRoomId() != "" {
		rooms[req.GetRoomId()] = true
	}
	r.mu.Lock()
	var found []*storedMemory
	for _, s := range r.memories {
		m := &s.m
		if s.agentID != req.GetAgentId() || (req.GetTable() != "" && m.Table != req.GetTable()) ||
			(len(rooms) > 0 && !rooms[m.RoomID]) || (req.GetEntityId() != "" && m.EntityID != req.GetEntityId()) ||
			(req.GetWorldId() != "" && m.WorldID != req.GetWorldId()) || (req.GetUnique() && !m.Unique) ||
			(req.GetStart() != 0 && m.CreatedAt < req.GetStart()) || (req.GetEnd() != 0 && m.CreatedAt > req.GetEnd()) {
			continue
		}
		found = append(found, s)
	}
	r.mu.Unlock()
	sort.Slice(found, func(i, j int) bool {
		if found[i].m.CreatedAt != found[j].m.CreatedAt {
			return found[i].m.CreatedAt > found[j].m.CreatedAt
		}
		return found[i].seq > found[j].seq
	})
	if n := int(req.GetCount()); n > 0 && len(found) > n {
		found = found[:n]
	}
	out := &pb.GetMemoriesResponse{}
	for _, s := range found {
		out.Memories = append(out.Memories, conv.MemoryToProto(&s.m))
	}
	return out, nil
}

// GetMemoriesByIDs returns the memories with these ids that exist, in the
// order of the ids.
func (r *memStore) GetMemoriesByIDs(_ context.Context, req *pb.GetMemoriesByIDsRequest) (*pb.GetMemoriesByIDsResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := &pb.GetMemoriesByIDsResponse{}
	for _, id := range req.GetIds() {
		for _, s := range r.memories {
			if s.agentID == req.GetAgentId() && s.m.ID == id && (req.GetTable() == "" || s.m.Table == req.GetTable()) {
				out.Memories = append(out.Memories, conv.MemoryToProto(&s.m))
				break
			}
		}
	}
	return out, nil
}

// SearchMemories returns the memories whose embeddings are most similar
// (by cosine) to the request's, at least Threshold, most similar first.
func (r *memStore) SearchMemories(_ context.Context, req *pb.SearchMemoriesRequest) (*pb.SearchMemoriesResponse, error) {
	type hit struct {
		m   sdk.Memory
		sim float64
	}
	var hits []hit
	r.mu.Lock()
	for _, s := range r.memories {
		m := s.m
		if s.agentID != req.GetAgentId() || len(m.Embedding) == 0 || len(m.Embedding) != len(req.GetEmbedding()) ||
			(req.GetTable() != "" && m.Table != req.GetTable()) || (req.GetRoomId() != "" && m.RoomID != req.GetRoomId()) ||
			(req.GetWorldId() != "" && m.WorldID != req.GetWorldId()) || (req.GetEntityId() != "" && m.EntityID != req.GetEntityId()) ||
			(req.GetUnique() && !m.Unique) {
			continue
		}
		if sim := cosine(m.Embedding, req.GetEmbedding()); sim >= req.GetThreshold() {
			hits = append(hits, hit{m, sim})
		}
	}
	r.mu.Unlock()
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].sim > hits[j].sim })
	if n := int(req.GetCount()); n > 0 && len(hits) > n {
		hits = hits[:n]
	}
	out := &pb.SearchMemoriesResponse{}
	for _, h := range hits {
		h.m.Similarity = h.sim
		out.Memories = append(out.Memories, conv.MemoryToProto(&h.m))
	}
	return out, nil
}

func cosine(a, b []float32) float64 {
	var dot, na, nb float64
	for i := range a {
		dot += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / (math.Sqrt(na) * math.Sqrt(nb))
}

// DeleteMemory deletes one memory of the agent.
func (r *memStore) DeleteMemory(_ context.Context, req *pb.DeleteMemoryRequest) (*pb.DeleteMemoryResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(r.memories)
	r.memories = slices.DeleteFunc(r.memories, func(s *storedMemory) bool {
		return s.agentID == req.GetAgentId() && s.m.ID == req.GetId()
	})
	return &pb.DeleteMemoryResponse{Deleted: int64(n - len(r.memories))}, nil
}

// CountMemories counts an agent's memories by room, table and unique flag.
func (r *memStore) CountMemories(_ context.Context, req *pb.CountMemoriesRequest) (*pb.CountMemoriesResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n int64
	for _, s := range r.memories {
		if s.agentID == req.GetAgentId() && (req.GetRoomId() == "" || s.m.RoomID == req.GetRoomId()) &&
			(req.GetTable() == "" || s.m.Table == req.GetTable()) && (!req.GetUnique() || s.m.Unique) {
			n++
		}
	}
	return &pb.CountMemoriesResponse{Count: n}, nil
}

func (r *memStore) initMaps() {
	if r.entities == nil {
		r.entities = map[[2]string]sdk.Entity{}
		r.rooms = map[[2]string]sdk.Room{}
		r.worlds = map[[2]string]sdk.World{}
		r.members = map[[2]string][]string{}
		r.partState = map[[3]string]string{}
		r.cache = map[[2]string]cacheEntry{}
	}
}

// mergeEntity adds e's names and metadata keys to the stored entity.
func (r *memStore) mergeEntity(agentID string, e sdk.Entity) {
	key := [2]string{agentID, e.ID}
	old, ok := r.entities[key]
	if !ok {
		r.entities[key] = e
		return
	}
	for _, n := range e.Names {
		if !slices.Contains(old.Names, n) {
			old.Names = append(old.Names, n)
		}
	}
	if len(e.Metadata) > 0 && old.Metadata == nil {
		old.Metadata = map[string]any{}
	}
	for k, v := range e.Metadata {
		old.Metadata[k] = v
	}
	r.entities[key] = old
}

func (r *memStore) upsertRoom(agentID string, room sdk.Room) {
	key := [2]string{agentID, room.ID}
	if _, ok := r.rooms[key]; !ok {
		r.roomOrder = append(r.roomOrder, key)
	}
	r.rooms[key] = room
}

func (r *memStore) join(agentID, roomID, entityID string) {
	key := [2]string{agentID, roomID}
	if entityID != "" && !slices.Contains(r.members[key], entityID) {
		r.members[key] = append(r.members[key], entityID)
	}
}

// EnsureConnection stores the world, room and entity and makes the entity
// and the agent participants of the room. Parts without an id are skipped.
func (r *memStore) EnsureConnection(_ context.Context, req *pb.EnsureConnectionRequest) (*pb.EnsureConnectionResponse, error) {
	agent := req.GetAgentId()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.initMaps()
	if w := req.GetWorld(); w.GetId() != "" {
		r.worlds[[2]string{agent, w.GetId()}] = conv.WorldFromProto(w)
	}
	if e := req.GetEntity(); e.GetId() != "" {
		r.mergeEntity(agent, conv.EntityFromProto(e))
	}
	if room := req.GetRoom(); room.GetId() != "" {
		r.upsertRoom(agent, conv.RoomFromProto(room))
		r.join(agent, room.GetId(), req.GetEntity().GetId())
		r.join(agent, room.GetId(), agent)
	}
	return &pb.EnsureConnectionResponse{}, nil
}

// GetEntities returns the entities with these ids that exist, in order.
func (r *memStore) GetEntities(_ context.Context, req *pb.GetEntitiesRequest) (*pb.GetEntitiesResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := &pb.GetEntitiesResponse{}
	for _, id := range req.GetIds() {
		if e, ok := r.entities[[2]string{req.GetAgentId(), id}]; ok {
			out.Entities = append(out.Entities, conv.EntityToProto(&e))
		}
	}
	return out, nil
}

// GetEntitiesForRoom returns the entities of a room's participants, in the
// order they joined. This store keeps no components: include_components
// adds none.
func (r *memStore) GetEntitiesForRoom(_ context.Context, req *pb.GetEntitiesForRoomRequest) (*pb.GetEntitiesForRoomResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := &pb.GetEntitiesForRoomResponse{}
	for _, id := range r.members[[2]string{req.GetAgentId(), req.GetRoomId()}] {
		if e, ok := r.entities[[2]string{req.GetAgentId(), id}]; ok {
			out.Entities = append(out.Entities, conv.EntityToProto(&e))
		}
	}
	return out, nil
}

// UpsertEntities creates or replaces entities.
func (r *memStore) UpsertEntities(_ context.Context, req *pb.UpsertEntitiesRequest) (*pb.UpsertEntitiesResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.initMaps()
	for _, e := range req.GetEntities() {
		if e.GetId() == "" {
			return nil, status.Error(codes.InvalidArgument, "plugintest: UpsertEntities: an entity has no id")
		}
		r.entities[[2]string{req.GetAgentId(), e.GetId()}] = conv.EntityFromProto(e)
	}
	return &pb.UpsertEntitiesResponse{}, nil
}

// GetRooms returns rooms by ids (in order), or else the rooms of a
// participant or of a world, in the order they were stored.
func (r *memStore) GetRooms(_ context.Context, req *pb.GetRoomsRequest) (*pb.GetRoomsResponse, error) {
	agent := req.GetAgentId()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := &pb.GetRoomsResponse{}
	if len(req.GetIds()) > 0 {
		for _, id := range req.GetIds() {
			if room, ok := r.rooms[[2]string{agent, id}]; ok {
				out.Rooms = append(out.Rooms, conv.RoomToProto(&room))
			}
		}
		return out, nil
	}
	for _, key := range r.roomOrder {
		room := r.rooms[key]
		if key[0] != agent || (req.GetWorldId() != "" && room.WorldID != req.GetWorldId()) ||
			(req.GetParticipantId() != "" && !slices.Contains(r.members[key], req.GetParticipantId())) {
			continue
		}
		out.Rooms = append(out.Rooms, conv.RoomToProto(&room))
	}
	return out, nil
}

// UpsertRoom stores a room, replacing one with its id.
func (r *memStore) UpsertRoom(_ context.Context, req *pb.UpsertRoomRequest) (*pb.UpsertRoomResponse, error) {
	room := conv.RoomFromProto(req.GetRoom())
	if room.ID == "" {
		return nil, status.Error(codes.InvalidArgument, "plugintest: upsert room: the room has no id")
	}
	room.AgentID = req.GetAgentId()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.initMaps()
	r.upsertRoom(req.GetAgentId(), room)
	return &pb.UpsertRoomResponse{}, nil
}

// GetWorlds returns the worlds with these ids that exist, in order.
func (r *memStore) GetWorlds(_ context.Context, req *pb.GetWorldsRequest) (*pb.GetWorldsResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := &pb.GetWorldsResponse{}
	for _, id := range req.GetIds() {
		if w, ok := r.worlds[[2]string{req.GetAgentId(), id}]; ok {
			out.Worlds = append(out.Worlds, conv.WorldToProto(&w))
		}
	}
	return out, nil
}

// UpsertWorld creates or replaces a world.
func (r *memStore) UpsertWorld(_ context.Context, req *pb.UpsertWorldRequest) (*pb.UpsertWorldResponse, error) {
	if req.GetWorld().GetId() == "" {
		return nil, status.Error(codes.InvalidArgument, "plugintest: UpsertWorld: the world has no id")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.initMaps()
	r.worlds[[2]string{req.GetAgentId(), req.GetWorld().GetId()}] = conv.WorldFromProto(req.GetWorld())
	return &pb.UpsertWorldResponse{}, nil
}

// GetParticipants returns the entity ids of a room's participants, in the
// order they joined.
func (r *memStore) GetParticipants(_ context.Context, req *pb.GetParticipantsRequest) (*pb.GetParticipantsResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return &pb.GetParticipantsResponse{EntityIds: slices.Clone(r.members[[2]string{req.GetAgentId(), req.GetRoomId()}])}, nil
}

// GetParticipantState returns what SetParticipantState stored, or "".
func (r *memStore) GetParticipantState(_ context.Context, req *pb.GetParticipantStateRequest) (*pb.GetParticipantStateResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return &pb.GetParticipantStateResponse{State: r.partState[[3]string{req.GetAgentId(), req.GetRoomId(), req.GetEntityId()}]}, nil
}

// SetParticipantState stores a participant's state.
func (r *memStore) SetParticipantState(_ context.Context, req *pb.SetParticipantStateRequest) (*pb.SetParticipantStateResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.initMaps()
	r.partState[[3]string{req.GetAgentId(), req.GetRoomId(), req.GetEntityId()}] = req.GetState()
	return &pb.SetParticipantStateResponse{}, nil
}

// AddLog records a log entry and returns its id.
func (r *memStore) AddLog(_ context.Context, req *pb.AddLogRequest) (*pb.AddLogResponse, error) {
	l := sconv.LogFromProto(req.GetLog())
	if l.ID == "" {
		l.ID = newID()
	}
	if l.CreatedAt == 0 {
		l.CreatedAt = time.Now().UnixMilli()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, l)
	return &pb.AddLogResponse{Id: l.ID}, nil
}

// GetLogs returns the agent's log entries that match, newest first.
func (r *memStore) GetLogs(_ context.Context, req *pb.GetLogsRequest) (*pb.GetLogsResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := &pb.GetLogsResponse{}
	skip := int(req.GetOffset())
	for i := len(r.logs) - 1; i >= 0; i-- {
		l := r.logs[i]
		if l.AgentID != req.GetAgentId() || (req.GetType() != "" && l.Type != req.GetType()) ||
			(req.GetRoomId() != "" && l.RoomID != req.GetRoomId()) || (req.GetEntityId() != "" && l.EntityID != req.GetEntityId()) {
			continue
		}
		if skip > 0 {
			skip--
			continue
		}
		out.Logs = append(out.Logs, sconv.LogToProto(&l))
		if c := int(req.GetCount()); c > 0 && len(out.Logs) == c {
			break
		}
	}
	return out, nil
}

// GetCache returns a value SetCache stored, unless it expired.
func (r *memStore) GetCache(_ context.Context, req *pb.GetCacheRequest) (*pb.GetCacheResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.cache[[2]string{req.GetAgentId(), req.GetKey()}]
	if !ok || (!e.expires.IsZero() && time.Now().After(e.expires)) {
		return &pb.GetCacheResponse{}, nil
	}
	return &pb.GetCacheResponse{Value: e.value, Found: true}, nil
}

// SetCache stores a value; a TTL of 0 means no expiry.
func (r *memStore) SetCache(_ context.Context, req *pb.SetCacheRequest) (*pb.SetCacheResponse, error) {
	e := cacheEntry{value: slices.Clone(req.GetValue())}
	if req.GetTtlMs() > 0 {
		e.expires = time.Now().Add(time.Duration(req.GetTtlMs()) * time.Millisecond)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.initMaps()
	r.cache[[2]string{req.GetAgentId(), req.GetKey()}] = e
	return &pb.SetCacheResponse{}, nil
}

// DeleteCache removes a cached value.
func (r *memStore) DeleteCache(_ context.Context, req *pb.DeleteCacheRequest) (*pb.DeleteCacheResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.initMaps()
	delete(r.cache, [2]string{req.GetAgentId(), req.GetKey()})
	return &pb.DeleteCacheResponse{}, nil
}

// serve answers a storage call from memory, through the generated
// Database service: a method the store does not keep answers
// UNIMPLEMENTED.
func (r *memStore) serve(ctx context.Context, m *contract.StorageMethod, req proto.Message) (any, error) {
	for _, md := range pb.Database_ServiceDesc.Methods {
		if md.MethodName == m.Name {
			return md.Handler(r, ctx, func(in any) error {
				proto.Merge(in.(proto.Message), req)
				return nil
			}, nil)
		}
	}
	return nil, status.Errorf(codes.Unimplemented, "plugintest: Database.%s is not kept in memory", m.Name)
}
