package sqlstore

import (
	"container/heap"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
)

const (
	// DefaultMemoryCount is what GetMemories returns when Count is 0.
	DefaultMemoryCount = 20
	// DefaultSearchCount is what SearchMemories returns when Count is 0.
	DefaultSearchCount = 10
	// DuplicateSimilarity is the cosine similarity from which a new memory
	// counts as a near-duplicate of one in the same room and table (the
	// threshold of elizaOS).
	DuplicateSimilarity = 0.95
)

const memoryColumns = `id, type, room_id, world_id, entity_id, created_at, content, metadata, is_unique, embedding`

// memoryColumnsNoEmbedding reads the same shape without the vector, for
// callers that asked to omit it.
const memoryColumnsNoEmbedding = `id, type, room_id, world_id, entity_id, created_at, content, metadata, is_unique, NULL`

// CreateMemory stores m in the logical table. A memory with m.ID already
// stored is left as it is and reported with created=false, so a message
// delivered twice is stored once. An empty m.ID gets a random UUID, a zero
// CreatedAt the current time. An embedding must have the agent's embedding
// dimension; the first embedding of an agent without one fixes it.
//
// With unique, the memory is flagged unique unless a memory of the same
// agent, table and room has a cosine similarity of at least
// DuplicateSimilarity to it (a memory without an embedding is unique);
// without, m.Unique is stored as given. On success the id, agent id, table,
// creation time and unique flag are written back into m.
func (s *Store) CreateMemory(ctx context.Context, agentID string, m *sdk.Memory, table string, unique bool) (string, bool, error) {
	if m == nil {
		return "", false, fmt.Errorf("create memory: %w", invalid("memory", "is nil"))
	}
	id := m.ID
	if id == "" {
		id = sdk.NewID()
	}
	fail := func(err error) (string, bool, error) {
		return "", false, fmt.Errorf("create memory %s: %w", truncate(id), err)
	}
	if err := s.checkMemory(agentID, m, table); err != nil {
		return fail(err)
	}
	content, err := s.marshal("memory.content", m.Content)
	if err != nil {
		return fail(err)
	}
	metadata, err := s.marshal("memory.metadata", m.Metadata)
	if err != nil {
		return fail(err)
	}
	createdAt := m.CreatedAt
	if createdAt == 0 {
		createdAt = now()
	}
	vs := s.vectors()
	var emb, vecText any // NULL without an embedding
	if len(m.Embedding) > 0 {
		emb = encodeVector(m.Embedding)
		if vs.write {
			// pgvector's text form: 1536 numbers to format, for nothing
			// on SQLite.
			vecText = vectorText(m.Embedding)
		}
	}
	created, isUnique := false, m.Unique
	err = s.write(ctx, func(r runner) error {
		created, isUnique = false, m.Unique
		var one int
		err := r.queryRow(ctx, `SELECT 1 FROM memories WHERE agent_id = ? AND id = ?`, agentID, id).Scan(&one)
		if err == nil {
			return nil // stored before: leave it
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		dim, version, err := s.agentDimension(ctx, r, agentID, len(m.Embedding))
		if err != nil {
			return err
		}
		if len(m.Embedding) > 0 && dim != len(m.Embedding) {
			return invalid("memory.embedding", "has %d dimensions but agent %s stores embeddings of %d", len(m.Embedding), agentID, dim)
		}
		if unique {
			isUnique = true
			if len(m.Embedding) > 0 {
				dup, err := s.hasNearDuplicate(ctx, r, agentID, table, m.RoomID, m.Embedding)
				if err != nil {
					return err
				}
				isUnique = !dup
			}
		}
		t := now()
		var embeddedAt int64
		if len(m.Embedding) > 0 {
			embeddedAt = t
		}
		cols, vals := "", ""
		args := []any{id, agentID, table, m.RoomID, m.WorldID, m.EntityID, createdAt,
			content, metadata, isUnique, emb, len(m.Embedding), t, embeddedAt, version}
		if vs.write {
			cols, vals = ", embedding_vec", ", ?::"+vs.typ
			args = append(args, vecText)
		}
		res, err := r.exec(ctx, `INSERT INTO memories (id, agent_id, type, room_id, world_id, entity_id, created_at,
			content, metadata, is_unique, embedding, embedding_dim, updated_at, embedded_at, vector_version`+cols+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?`+vals+`) ON CONFLICT (agent_id, id) DO NOTHING`, args...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		created = n == 1
		return err
	})
	if err != nil {
		return fail(err)
	}
	if created {
		m.ID, m.AgentID, m.Table, m.CreatedAt, m.Unique = id, agentID, table, createdAt, isUnique
	}
	return id, created, nil
}

func (s *Store) checkMemory(agentID string, m *sdk.Memory, table string) error {
	if err := checkID("agentId", agentID, true); err != nil {
		return err
	}
	if err := s.checkKey("table", table); err != nil {
		return err
	}
	if err := checkID("memory.id", m.ID, false); err != nil {
		return err
	}
	if err := checkID("memory.roomId", m.RoomID, true); err != nil {
		return err
	}
	if err := checkID("memory.entityId", m.EntityID, true); err != nil {
		return err
	}
	if err := checkID("memory.worldId", m.WorldID, false); err != nil {
		return err
	}
	if err := checkOwner("memory.agentId", m.AgentID, agentID); err != nil {
		return err
	}
	if m.Table != "" && m.Table != table {
		return invalid("memory.table", "is %q but the memory is created in table %q", truncate(m.Table), truncate(table))
	}
	if m.CreatedAt < 0 {
		return invalid("memory.createdAt", "is negative (%d)", m.CreatedAt)
	}
	return checkVector("memory.embedding", m.Embedding)
}

// agentDimension returns the agent's embedding dimension, fixing it to want
// first if the agent has none and want > 0. When want > 0 it also takes the
// agent's next vector version, for the memory the caller writes: the agent
// row then stays locked until the transaction ends, so that
// EnsureEmbeddingDimension cannot switch the dimension under a write that
// relies on it, and so that writes of one agent's embeddings commit in the
// order of their versions (which the vector index's catch-up relies on).
func (s *Store) agentDimension(ctx context.Context, r runner, agentID string, want int) (dim int, version int64, err error) {
	if want > 0 {
		err = r.queryRow(ctx, `UPDATE agents SET vector_version = vector_version + 1,
			embedding_dimension = CASE WHEN embedding_dimension = 0 THEN ? ELSE embedding_dimension END
			WHERE id = ? RETURNING embedding_dimension, vector_version`, want, agentID).Scan(&dim, &version)
	} else {
		err = r.queryRow(ctx, `SELECT embedding_dimension FROM agents WHERE id = ?`, agentID).Scan(&dim)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, errAgentNotFound(agentID)
	}
	return dim, version, err
}

// hasNearDuplicate reports a memory of the agent, table and room whose
// embedding is at least DuplicateSimilarity close to v. With pgvector the
// server picks the few closest candidates; the verdict is always the exact
// similarity computed here, so both paths agree.
func (s *Store) hasNearDuplicate(ctx context.Context, r runner, agentID, table, roomID string, v []float32) (bool, error) {
	q := `SELECT embedding FROM memories
		WHERE agent_id = ? AND type = ? AND room_id = ? AND embedding_dim = ?`
	args := []any{agentID, table, roomID, len(v)}
	if vs := s.vectors(); vs.search && norm(v) > 0 {
		d := vs.distance()
		q = `SELECT embedding FROM (SELECT embedding, ` + d + ` AS d FROM memories
			WHERE agent_id = ? AND type = ? AND room_id = ? AND embedding_dim = ? AND embedding_vec IS NOT NULL OFFSET 0) c
			WHERE d <= ? ORDER BY d LIMIT ?`
		args = []any{vectorText(v), agentID, table, roomID, len(v), 1 - DuplicateSimilarity + vectorSlack, 8}
	}
	rows, err := r.query(ctx, q, args...)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	qn := norm(v)
	for rows.Next() {
		var b sql.RawBytes
		if err := rows.Scan(&b); err != nil {
			return false, err
		}
		if cosineEncoded(v, qn, b) >= DuplicateSimilarity {
			return true, nil
		}
	}
	return false, rows.Err()
}

// where collects the conditions and arguments of a query.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *where) String() string { return strings.Join(w.conds, " AND ") }

// GetMemories returns the memories that q selects, newest first; memories
// created in the same millisecond come latest-stored first. Every filter is
// optional except the agent.
func (s *Store) GetMemories(ctx context.Context, agentID string, q storage.MemoryQuery) ([]sdk.Memory, error) {
	fail := func(err error) ([]sdk.Memory, error) {
		return nil, fmt.Errorf("get memories: %w", err)
	}
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if err := s.checkOptionalKey("query.table", q.Table); err != nil {
		return fail(err)
	}
	if err := checkID("query.roomId", q.RoomID, false); err != nil {
		return fail(err)
	}
	if err := checkIDs("query.roomIds", q.RoomIDs); err != nil {
		return fail(err)
	}
	if err := checkID("query.entityId", q.EntityID, false); err != nil {
		return fail(err)
	}
	if err := checkID("query.worldId", q.WorldID, false); err != nil {
		return fail(err)
	}
	if q.Count < 0 {
		return fail(invalid("query.count", "is negative (%d)", q.Count))
	}
	count := q.Count
	if count == 0 {
		count = DefaultMemoryCount
	}
	w := &where{}
	w.add("agent_id = ?", agentID)
	if q.Table != "" {
		w.add("type = ?", q.Table)
	}
	rooms := q.RoomIDs
	if q.RoomID != "" {
		rooms = append([]string{q.RoomID}, rooms...)
	}
	switch {
	case len(rooms) == 1:
		w.add("room_id = ?", rooms[0])
	case len(rooms) > 1:
		if len(rooms) > inChunk {
			return fail(invalid("query.roomIds", "has %d rooms; at most %d", len(rooms), inChunk))
		}
		args := make([]any, len(rooms))
		for i, r := range rooms {
			args[i] = r
		}
		w.add("room_id IN ("+placeholders(len(rooms))+")", args...)
	}
	if q.EntityID != "" {
		w.add("entity_id = ?", q.EntityID)
	}
	if q.WorldID != "" {
		w.add("world_id = ?", q.WorldID)
	}
	if q.Unique {
		w.add("is_unique = ?", true)
	}
	if q.Start != 0 {
		w.add("created_at >= ?", q.Start)
	}
	if q.End != 0 {
		w.add("created_at <= ?", q.End)
	}
	cols := memoryColumns
	if q.OmitEmbeddings {
		cols = memoryColumnsNoEmbedding
	}
	rows, err := s.read().query(ctx, `SELECT `+cols+` FROM memories WHERE `+w.String()+
		` ORDER BY created_at DESC, seq DESC`+limit(count), w.args...)
	if err != nil {
		return fail(err)
	}
	out, err := scanMemories(rows, agentID, nil)
	if err != nil {
		return fail(err)
	}
	return out, nil
}

// GetMemoriesByIDs returns the stored memories among ids, in the order of
// ids; ids not stored (or not in table, when table is set) are left out.
func (s *Store) GetMemoriesByIDs(ctx context.Context, agentID string, ids []string, table string) ([]sdk.Memory, error) {
	fail := func(err error) ([]sdk.Memory, error) {
		return nil, fmt.Errorf("get memories by ids: %w", err)
	}
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if err := checkIDs("ids", ids); err != nil {
		return fail(err)
	}
	if err := s.checkOptionalKey("table", table); err != nil {
		return fail(err)
	}
	byID := make(map[string]sdk.Memory, len(ids))
	for start := 0; start < len(ids); start += inChunk {
		chunk := ids[start:min(start+inChunk, len(ids))]
		w := &where{}
		w.add("agent_id = ?", agentID)
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		w.add("id IN ("+placeholders(len(chunk))+")", args...)
		if table != "" {
			w.add("type = ?", table)
		}
		rows, err := s.read().query(ctx, `SELECT `+memoryColumns+` FROM memories WHERE `+w.String(), w.args...)
		if err != nil {
			return fail(err)
		}
		ms, err := scanMemories(rows, agentID, nil)
		if err != nil {
			return fail(err)
		}
		for _, m := range ms {
			byID[m.ID] = m
		}
	}
	out := make([]sdk.Memory, 0, len(byID))
	for _, id := range ids {
		if m, ok := byID[id]; ok {
			out = append(out, m)
			delete(byID, id) // an id asked twice is returned once
		}
	}
	return out, nil
}

// scanMemories reads rows of memoryColumns (plus seq first when seqs is not
// nil) and closes them.
func scanMemories(rows *sql.Rows, agentID string, seqs *[]int64) ([]sdk.Memory, error) {
	defer rows.Close()
	var out []sdk.Memory
	var budget listBudget
	for rows.Next() {
		var (
			m                 sdk.Memory
			content, metadata []byte
			emb               []byte
			seq               int64
		)
		dest := []any{&m.ID, &m.Table, &m.RoomID, &m.WorldID, &m.EntityID, &m.CreatedAt, &content, &metadata, &m.Unique, &emb}
		if seqs != nil {
			dest = append([]any{&seq}, dest...)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		if !budget.fits(len(content) + len(metadata) + len(emb)) {
			break
		}
		// Straight to Content's decoder: json.Unmarshal would scan the
		// whole text twice before handing it over.
		if err := m.Content.UnmarshalJSON(content); err != nil {
			return nil, fmt.Errorf("memory %s: stored content: %w", m.ID, err)
		}
		if err := json.Unmarshal(metadata, &m.Metadata); err != nil {
			return nil, fmt.Errorf("memory %s: stored metadata: %w", m.ID, err)
		}
		m.Embedding = decodeVector(emb)
		m.AgentID = agentID
		out = append(out, m)
		if seqs != nil {
			*seqs = append(*seqs, seq)
		}
	}
	return out, rows.Err()
}

// SearchMemories ranks the agent's memories by cosine similarity to
// q.Embedding and returns the q.Count most similar (DefaultSearchCount when
// 0), most similar first, with Similarity set. Only memories whose
// embedding has the query's size take part; filters on table, room, world,
// entity and the unique flag narrow the candidates, and a non-zero
// q.Threshold drops those less similar than it. The similarity is computed
// in Go over the candidates' stored vectors, on both backends. Once the
// agent has Config.VectorIndexMin memories with embeddings, the candidates
// come from its vector index (see the package doc); until the index is
// ready, and with Config.ExactSearch, every memory is a candidate.
func (s *Store) SearchMemories(ctx context.Context, agentID string, q storage.SearchQuery) ([]sdk.Memory, error) {
	fail := func(err error) ([]sdk.Memory, error) {
		return nil, fmt.Errorf("search memories: %w", err)
	}
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if len(q.Embedding) == 0 {
		return fail(invalid("query.embedding", "is empty"))
	}
	if err := checkVector("query.embedding", q.Embedding); err != nil {
		return fail(err)
	}
	if err := s.checkOptionalKey("query.table", q.Table); err != nil {
		return fail(err)
	}
	if err := checkID("query.roomId", q.RoomID, false); err != nil {
		return fail(err)
	}
	if err := checkID("query.worldId", q.WorldID, false); err != nil {
		return fail(err)
	}
	if err := checkID("query.entityId", q.EntityID, false); err != nil {
		return fail(err)
	}
	if q.Count < 0 {
		return fail(invalid("query.count", "is negative (%d)", q.Count))
	}
	if math.IsNaN(q.Threshold) {
		return fail(invalid("query.threshold", "is NaN"))
	}
	count := q.Count
	if count == 0 {
		count = DefaultSearchCount
	}
	r := s.read()
	var dim int
	err := r.queryRow(ctx, `SELECT embedding_dimension FROM agents WHERE id = ?`, agentID).Scan(&dim)
	if errors.Is(err, sql.ErrNoRows) {
		return fail(errAgentNotFound(agentID))
	}
	if err != nil {
		return fail(err)
	}
	if dim != 0 && dim != len(q.Embedding) {
		return fail(invalid("query.embedding", "has %d dimensions but agent %s stores embeddings of %d", len(q.Embedding), agentID, dim))
	}

	if s.vix != nil && dim != 0 {
		out, ok, err := s.vix.searchAgent(ctx, r, agentID, q, count, dim)
		if err != nil {
			return fail(err)
		}
		if ok {
			return out, nil
		}
	}
	return s.exactSearch(ctx, r, agentID, q, count)
}

// exactSearch is SearchMemories without the index: every candidate is
// compared with the query.
func (s *Store) exactSearch(ctx context.Context, r runner, agentID string, q storage.SearchQuery, count int) ([]sdk.Memory, error) {
	fail := func(err error) ([]sdk.Memory, error) {
		return nil, fmt.Errorf("search memories: %w", err)
	}
	if vs := s.vectors(); vs.search && norm(q.Embedding) > 0 {
		out, err := s.searchPG(ctx, r, vs, agentID, q, count)
		if err != nil {
			return fail(err)
		}
		return out, nil
	}

	// Pass 1: rank the candidates' vectors, keeping the best count.
	w := searchFilters(agentID, q)
	rows, err := r.query(ctx, `SELECT seq, embedding FROM memories WHERE `+w.String(), w.args...)
	if err != nil {
		return fail(err)
	}
	best := &rankHeap{}
	qn := norm(q.Embedding)
	for rows.Next() {
		var seq int64
		var b sql.RawBytes
		if err := rows.Scan(&seq, &b); err != nil {
			rows.Close()
			return fail(err)
		}
		sim := cosineEncoded(q.Embedding, qn, b)
		if q.Threshold != 0 && sim < q.Threshold {
			continue
		}
		c := ranked{seq: seq, sim: sim}
		if best.Len() < count {
			heap.Push(best, c)
		} else if c.better((*best)[0]) {
			(*best)[0] = c
			heap.Fix(best, 0)
		}
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return fail(err)
	}
	if best.Len() == 0 {
		return nil, nil
	}
	ranks := make([]ranked, best.Len())
	for i := len(ranks) - 1; i >= 0; i-- {
		ranks[i] = heap.Pop(best).(ranked)
	}
	out, err := s.loadRanked(ctx, r, agentID, ranks)
	if err != nil {
		return fail(err)
	}
	return out, nil
}

// searchFilters are the conditions of a search other than the vector.
func searchFilters(agentID string, q storage.SearchQuery) *where {
	w := &where{}
	w.add("agent_id = ?", agentID)
	if q.Table != "" {
		w.add("type = ?", q.Table)
	}
	if q.RoomID != "" {
		w.add("room_id = ?", q.RoomID)
	}
	if q.WorldID != "" {
		w.add("world_id = ?", q.WorldID)
	}
	if q.EntityID != "" {
		w.add("entity_id = ?", q.EntityID)
	}
	if q.Unique {
		w.add("is_unique = ?", true)
	}
	w.add("embedding_dim = ?", len(q.Embedding))
	return w
}

// loadRanked loads the memories of ranks (pass 2 of a search), in the
// order of ranks, with Similarity set.
func (s *Store) loadRanked(ctx context.Context, r runner, agentID string, ranks []ranked) ([]sdk.Memory, error) {
	bySeq, err := s.loadSeqs(ctx, r, agentID, ranks)
	if err != nil {
		return nil, err
	}
	out := make([]sdk.Memory, 0, len(ranks))
	for _, c := range ranks {
		if m, ok := bySeq[c.seq]; ok { // gone if deleted in between
			m.Similarity = c.sim
			out = append(out, m)
		}
	}
	return out, nil
}

// loadSeqs loads the memories of ranks by their seq.
func (s *Store) loadSeqs(ctx context.Context, r runner, agentID string, ranks []ranked) (map[int64]sdk.Memory, error) {
	args := make([]any, 0, len(ranks)+1)
	args = append(args, agentID)
	for _, c := range ranks {
		args = append(args, c.seq)
	}
	rows, err := r.query(ctx, `SELECT seq, `+memoryColumns+` FROM memories WHERE agent_id = ? AND seq IN (`+
		placeholders(len(ranks))+`)`, args...)
	if err != nil {
		return nil, err
	}
	var seqs []int64
	ms, err := scanMemories(rows, agentID, &seqs)
	if err != nil {
		return nil, err
	}
	bySeq := make(map[int64]sdk.Memory, len(ms))
	for i, m := range ms {
		bySeq[seqs[i]] = m
	}
	return bySeq, nil
}

// ranked is a search candidate.
type ranked struct {
	seq int64
	sim float64
}

// better orders by similarity, then the later-stored first.
func (a ranked) better(b ranked) bool {
	if a.sim != b.sim {
		return a.sim > b.sim
	}
	return a.seq > b.seq
}

// rankHeap is a min-heap: its root is the worst of the kept candidates.
type rankHeap []ranked

func (h rankHeap) Len() int           { return len(h) }
func (h rankHeap) Less(i, j int) bool { return h[j].better(h[i]) }
func (h rankHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *rankHeap) Push(x any)        { *h = append(*h, x.(ranked)) }
func (h *rankHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// DeleteMemory deletes one memory and returns how many were deleted (0 or 1).
func (s *Store) DeleteMemory(ctx context.Context, agentID, id string) (int64, error) {
	fail := func(err error) (int64, error) { return 0, fmt.Errorf("delete memory %s: %w", truncate(id), err) }
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if err := checkID("id", id, true); err != nil {
		return fail(err)
	}
	n, err := s.deleteMemories(ctx, agentID, `DELETE FROM memories WHERE agent_id = ? AND id = ?`, agentID, id)
	if err != nil {
		return fail(err)
	}
	return n, nil
}

// deleteMemories runs the DELETE statement q in a transaction of its own,
// tells the agent's vector index which memories it deleted, and returns
// how many.
func (s *Store) deleteMemories(ctx context.Context, agentID, q string, args ...any) (int64, error) {
	var gone []int64
	err := s.write(ctx, func(r runner) error {
		var err error
		gone, err = deleteSeqs(ctx, r, q, args...)
		return err
	})
	if err != nil {
		return 0, err
	}
	s.memoriesDeleted(agentID, gone)
	return int64(len(gone)), nil
}

// deleteSeqs runs the DELETE statement q on memories and returns the seq of
// each row it deleted.
func deleteSeqs(ctx context.Context, r runner, q string, args ...any) ([]int64, error) {
	rows, err := r.query(ctx, q+` RETURNING seq`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			return nil, err
		}
		out = append(out, seq)
	}
	return out, rows.Err()
}

// memoriesDeleted tells the agent's vector index, if it has one, that a
// committed transaction deleted the memories of seqs.
func (s *Store) memoriesDeleted(agentID string, seqs []int64) {
	if s.vix != nil && len(seqs) > 0 {
		s.vix.deleted(agentID, seqs)
	}
}

// DeleteAllMemories deletes the memories of a room, of one table or (table
// empty) of all, and returns how many it deleted. The room is required.
func (s *Store) DeleteAllMemories(ctx context.Context, agentID, roomID, table string) (int64, error) {
	fail := func(err error) (int64, error) {
		return 0, fmt.Errorf("delete memories of room %s: %w", truncate(roomID), err)
	}
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if err := checkID("roomId", roomID, true); err != nil {
		return fail(err)
	}
	if err := s.checkOptionalKey("table", table); err != nil {
		return fail(err)
	}
	q, args := `DELETE FROM memories WHERE agent_id = ? AND room_id = ?`, []any{agentID, roomID}
	if table != "" {
		q += ` AND type = ?`
		args = append(args, table)
	}
	n, err := s.deleteMemories(ctx, agentID, q, args...)
	if err != nil {
		return fail(err)
	}
	return n, nil
}

// deleteOne deletes the row of table with this agent and id, and returns
// how many it deleted (0 or 1). what names the record in errors; table is
// one of the store's own table names, never input.
func (s *Store) deleteOne(ctx context.Context, what, table, agentID, id string) (int64, error) {
	fail := func(err error) (int64, error) { return 0, fmt.Errorf("delete %s %s: %w", what, truncate(id), err) }
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if err := checkID("id", id, true); err != nil {
		return fail(err)
	}
	n, err := s.deleteWhere(ctx, `DELETE FROM `+table+` WHERE agent_id = ? AND id = ?`, agentID, id)
	if err != nil {
		return fail(err)
	}
	return n, nil
}

func (s *Store) deleteWhere(ctx context.Context, q string, args ...any) (int64, error) {
	var n int64
	err := s.write(ctx, func(r runner) error {
		res, err := r.exec(ctx, q, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// CountMemories counts the agent's memories of a room (all rooms if roomID
// is empty), of a table (all if empty), only the unique ones if unique.
func (s *Store) CountMemories(ctx context.Context, agentID, roomID, table string, unique bool) (int64, error) {
	fail := func(err error) (int64, error) {
		return 0, fmt.Errorf("count memories: %w", err)
	}
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if err := checkID("roomId", roomID, false); err != nil {
		return fail(err)
	}
	if err := s.checkOptionalKey("table", table); err != nil {
		return fail(err)
	}
	w := &where{}
	w.add("agent_id = ?", agentID)
	if roomID != "" {
		w.add("room_id = ?", roomID)
	}
	if table != "" {
		w.add("type = ?", table)
	}
	if unique {
		w.add("is_unique = ?", true)
	}
	var n int64
	if err := s.read().queryRow(ctx, `SELECT count(*) FROM memories WHERE `+w.String(), w.args...).Scan(&n); err != nil {
		return fail(err)
	}
	return n, nil
}

// UpdateMemory changes what u sets of a stored memory, in one transaction,
// and reports whether the memory exists: the content is replaced, the
// metadata merged key by key (a nil value deletes the key), the embedding
// replaced (it must have the agent's embedding size; the first embedding of
// an agent without one fixes it) or cleared. The unique flag and the
// creation time stay.
func (s *Store) UpdateMemory(ctx context.Context, agentID string, u storage.MemoryUpdate) (bool, error) {
	fail := func(err error) (bool, error) {
		return false, fmt.Errorf("update memory %s: %w", truncate(u.ID), err)
	}
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if err := checkID("memory.id", u.ID, true); err != nil {
		return fail(err)
	}
	var content any
	if u.Content != nil {
		c, err := s.marshal("memory.content", u.Content)
		if err != nil {
			return fail(err)
		}
		content = c
	}
	if err := s.checkValue("memory.metadata", u.Metadata); err != nil {
		return fail(err)
	}
	if len(u.Embedding) > 0 && u.ClearEmbedding {
		return fail(invalid("memory.embedding", "is set and ClearEmbedding too"))
	}
	if err := checkVector("memory.embedding", u.Embedding); err != nil {
		return fail(err)
	}
	vs := s.vectors()
	found := false
	err := s.write(ctx, func(r runner) error {
		found = false
		var oldMeta []byte
		err := r.queryRow(ctx, `SELECT metadata FROM memories WHERE agent_id = ? AND id = ?`+s.d.forUpdate, agentID, u.ID).Scan(&oldMeta)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		t := now()
		sets := []string{"updated_at = ?"}
		args := []any{t}
		if content != nil {
			sets = append(sets, "content = ?")
			args = append(args, content)
		}
		if len(u.Metadata) > 0 {
			var old map[string]any
			if err := json.Unmarshal(oldMeta, &old); err != nil {
				return fmt.Errorf("stored metadata: %w", err)
			}
			merged := make(map[string]any, len(old)+len(u.Metadata))
			for k, v := range old {
				merged[k] = v
			}
			for k, v := range u.Metadata {
				if v == nil {
					delete(merged, k)
				} else {
					merged[k] = v
				}
			}
			b, err := s.marshal("memory.metadata", merged)
			if err != nil {
				return err
			}
			sets = append(sets, "metadata = ?")
			args = append(args, b)
		}
		switch {
		case len(u.Embedding) > 0:
			dim, version, err := s.agentDimension(ctx, r, agentID, len(u.Embedding))
			if err != nil {
				return err
			}
			if dim != len(u.Embedding) {
				return invalid("memory.embedding", "has %d dimensions but agent %s stores embeddings of %d", len(u.Embedding), agentID, dim)
			}
			sets = append(sets, "embedding = ?", "embedding_dim = ?", "embedded_at = ?", "vector_version = ?")
			args = append(args, encodeVector(u.Embedding), len(u.Embedding), t, version)
			if vs.write {
				sets = append(sets, "embedding_vec = ?::"+vs.typ)
				args = append(args, vectorText(u.Embedding))
			}
		case u.ClearEmbedding:
			var version int64
			err := r.queryRow(ctx, `UPDATE agents SET vector_version = vector_version + 1 WHERE id = ? RETURNING vector_version`,
				agentID).Scan(&version)
			if err != nil {
				return err
			}
			sets = append(sets, "embedding = NULL", "embedding_dim = 0", "embedded_at = 0", "vector_version = ?")
			args = append(args, version)
			if vs.write {
				sets = append(sets, "embedding_vec = NULL")
			}
		}
		args = append(args, agentID, u.ID)
		_, err = r.exec(ctx, `UPDATE memories SET `+strings.Join(sets, ", ")+` WHERE agent_id = ? AND id = ?`, args...)
		return err
	})
	if err != nil {
		return fail(err)
	}
	return found, nil
}

// DeleteManyMemories deletes the memories among ids, all in one
// transaction, and returns how many it deleted.
func (s *Store) DeleteManyMemories(ctx context.Context, agentID string, ids []string) (int64, error) {
	fail := func(err error) (int64, error) { return 0, fmt.Errorf("delete memories: %w", err) }
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if err := checkIDs("ids", ids); err != nil {
		return fail(err)
	}
	var gone []int64
	err := s.write(ctx, func(r runner) error {
		gone = gone[:0]
		for start := 0; start < len(ids); start += inChunk {
			chunk := ids[start:min(start+inChunk, len(ids))]
			args := []any{agentID}
			for _, id := range chunk {
				args = append(args, id)
			}
			k, err := deleteSeqs(ctx, r, `DELETE FROM memories WHERE agent_id = ? AND id IN (`+placeholders(len(chunk))+`)`, args...)
			if err != nil {
				return err
			}
			gone = append(gone, k...)
		}
		return nil
	})
	if err != nil {
		return fail(err)
	}
	s.memoriesDeleted(agentID, gone)
	return int64(len(gone)), nil
}

// MaxReembedBatch bounds the limit of GetMemoriesToReembed.
const MaxReembedBatch = 1000

// GetMemoriesToReembed returns up to limit memories of the agent that hold
// an embedding made before the unix millisecond before, or one of another
// size than the agent's, in the order they were stored. `agenthost db
// reembed` walks through them: each memory given a new embedding
// (UpdateMemory) leaves the list.
func (s *Store) GetMemoriesToReembed(ctx context.Context, agentID string, before int64, limit int) ([]sdk.Memory, error) {
	fail := func(err error) ([]sdk.Memory, error) { return nil, fmt.Errorf("get memories to re-embed: %w", err) }
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if limit <= 0 || limit > MaxReembedBatch {
		return fail(invalid("limit", "is %d; it must be between 1 and %d", limit, MaxReembedBatch))
	}
	r := s.read()
	var dim int
	err := r.queryRow(ctx, `SELECT embedding_dimension FROM agents WHERE id = ?`, agentID).Scan(&dim)
	if errors.Is(err, sql.ErrNoRows) {
		return fail(errAgentNotFound(agentID))
	}
	if err != nil {
		return fail(err)
	}
	rows, err := r.query(ctx, `SELECT `+memoryColumns+` FROM memories
		WHERE agent_id = ? AND embedding_dim > 0 AND (embedded_at < ? OR embedding_dim <> ?) ORDER BY seq LIMIT ?`,
		agentID, before, dim, limit)
	if err != nil {
		return fail(err)
	}
	out, err := scanMemories(rows, agentID, nil)
	if err != nil {
		return fail(err)
	}
	return out, nil
}
