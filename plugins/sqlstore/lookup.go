package sqlstore

import (
	"container/heap"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
)

// The rest of elizaOS's adapter surface: entities by name and with their
// components, the legacy embedding cache, rooms and participants in bulk.

const (
	// DefaultEntitySearchCount is what SearchEntities returns when Count
	// is 0 (elizaOS's default limit).
	DefaultEntitySearchCount = 10
	// DefaultCachedEmbeddingsCount is what GetCachedEmbeddings returns
	// when Count is 0.
	DefaultCachedEmbeddingsCount = 10
	// MaxLevenshteinThreshold bounds CachedEmbeddingsQuery.Threshold: the
	// work of comparing two texts grows with it.
	MaxLevenshteinThreshold = 1024
	// maxContentKey bounds the length of CachedEmbeddingsQuery.Field.
	maxContentKey = 64
)

// searchNames is what entities.search_names holds: the names in lower
// case, one a line. A name that holds a line break makes a line of each
// part; SearchEntities checks every match against the names themselves,
// so the column only has to contain each lower-case name.
func searchNames(names []string) string {
	return strings.ToLower(strings.Join(names, "\n"))
}

// fillSearchNames computes entities.search_names for the stored rows
// (migration 7).
func fillSearchNames(ctx context.Context, r runner) error {
	type row struct{ agentID, id, search string }
	rows, err := r.query(ctx, `SELECT agent_id, id, names FROM entities`)
	if err != nil {
		return err
	}
	var all []row
	for rows.Next() {
		var e row
		var names []string
		var b []byte
		if err := rows.Scan(&e.agentID, &e.id, &b); err != nil {
			rows.Close()
			return err
		}
		if err := json.Unmarshal(b, &names); err != nil {
			rows.Close()
			return fmt.Errorf("entity %s: stored names: %w", e.id, err)
		}
		e.search = searchNames(names)
		all = append(all, e)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return err
	}
	for _, e := range all {
		if _, err := r.exec(ctx, `UPDATE entities SET search_names = ? WHERE agent_id = ? AND id = ?`, e.search, e.agentID, e.id); err != nil {
			return fmt.Errorf("entity %s: %w", e.id, err)
		}
	}
	return nil
}

// SearchEntities returns up to q.Count (DefaultEntitySearchCount when 0)
// of the agent's entities that have a name containing q.NameContains, both
// in lower case, and a name equal to one of q.Names, oldest first (by
// creation time, then id). Unlike elizaOS's LIKE, the text is taken literally: % and _
// are no wildcards, and lower case is Unicode's on both backends. Neither
// filter set means every entity. With q.WithComponents each entity comes
// with its components.
func (s *Store) SearchEntities(ctx context.Context, agentID string, q storage.EntitySearch) ([]sdk.Entity, error) {
	fail := func(err error) ([]sdk.Entity, error) { return nil, fmt.Errorf("search entities: %w", err) }
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if err := s.checkText("query.nameContains", q.NameContains); err != nil {
		return fail(err)
	}
	if len(q.Names) > inChunk {
		return fail(invalid("query.names", "has %d names; at most %d", len(q.Names), inChunk))
	}
	for i, n := range q.Names {
		if err := s.checkText(fmt.Sprintf("query.names[%d]", i), n); err != nil {
			return fail(err)
		}
	}
	if q.Count < 0 {
		return fail(invalid("query.count", "is negative (%d)", q.Count))
	}
	count := q.Count
	if count == 0 {
		count = DefaultEntitySearchCount
	}
	// The column narrows the rows down in the database; each row is then
	// checked against its names.
	w := &where{}
	w.add("agent_id = ?", agentID)
	contains := strings.ToLower(q.NameContains)
	if contains != "" {
		w.add(s.d.strpos+"(search_names, ?) > 0", contains)
	}
	exact := map[string]bool{}
	if len(q.Names) > 0 {
		var conds []string
		var args []any
		folded := map[string]bool{}
		for _, n := range q.Names {
			exact[n] = true
			if f := strings.ToLower(n); !folded[f] {
				folded[f] = true
				conds = append(conds, s.d.strpos+"(search_names, ?) > 0")
				args = append(args, f)
			}
		}
		w.add("("+strings.Join(conds, " OR ")+")", args...)
	}
	match := func(e sdk.Entity) bool {
		has, equal := contains == "", len(exact) == 0
		for _, n := range e.Names {
			has = has || strings.Contains(strings.ToLower(n), contains)
			equal = equal || exact[n]
		}
		return has && equal
	}
	rows, err := s.read().query(ctx, `SELECT id, names, metadata FROM entities WHERE `+w.String()+` ORDER BY created_at, id`, w.args...)
	if err != nil {
		return fail(err)
	}
	var out []sdk.Entity
	for len(out) < count && rows.Next() {
		e, err := scanEntity(rows)
		if err != nil {
			rows.Close()
			return fail(err)
		}
		if match(e) {
			e.AgentID = agentID
			out = append(out, e)
		}
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return fail(err)
	}
	if q.WithComponents {
		if err := s.AttachComponents(ctx, agentID, out); err != nil {
			return fail(err)
		}
	}
	return out, nil
}

// AttachComponents sets the Components of each entity to the components
// stored for it, first stored first; an entity without any (or not stored)
// gets an empty, non-nil slice. It is how entities come "with their
// components" (elizaOS's getEntitiesForRoom(roomId, true)).
func (s *Store) AttachComponents(ctx context.Context, agentID string, entities []sdk.Entity) error {
	fail := func(err error) error { return fmt.Errorf("attach components: %w", err) }
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	var ids []string
	seen := map[string]bool{}
	for i, e := range entities {
		if err := checkID(fmt.Sprintf("entities[%d].id", i), e.ID, true); err != nil {
			return fail(err)
		}
		if !seen[e.ID] {
			seen[e.ID] = true
			ids = append(ids, e.ID)
		}
	}
	byEntity := make(map[string][]sdk.Component, len(ids))
	for start := 0; start < len(ids); start += inChunk {
		cs, err := s.GetComponents(ctx, agentID, storage.ComponentQuery{EntityIDs: ids[start:min(start+inChunk, len(ids))]})
		if err != nil {
			return fail(err)
		}
		for _, c := range cs {
			byEntity[c.EntityID] = append(byEntity[c.EntityID], c)
		}
	}
	for i := range entities {
		// A copy each: an entity listed twice gets two.
		entities[i].Components = append([]sdk.Component{}, byEntity[entities[i].ID]...)
	}
	return nil
}

// checkContentKey accepts the keys that name a member of a memory's content
// in both backends' JSON paths without quoting.
func checkContentKey(field, key string) error {
	if key == "" || len(key) > maxContentKey {
		return invalid(field, "is %d bytes long; a content key has 1 to %d", len(key), maxContentKey)
	}
	for _, r := range key {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return invalid(field, "%q is not a content key: letters, digits and _ only", truncate(key))
		}
	}
	return nil
}

// GetCachedEmbeddings is elizaOS's legacy embedding cache: it returns the
// embeddings of the agent's memories whose content member q.Field ("text"
// when empty) is a text within q.Threshold edits of q.Text (the Levenshtein
// distance, counted in characters), closest first and, at the same
// distance, newest first, at most q.Count (DefaultCachedEmbeddingsCount
// when 0). q.Table narrows the memories to one table. Only embeddings of
// the agent's current size are returned: one made by an earlier model is no
// use to the current one.
//
// Unlike elizaOS, which leaves the comparison to PostgreSQL's levenshtein()
// (an error for texts over 255 characters, and every agent's memories
// searched), the candidates are the agent's memories whose text has a
// possible length, and the distance is computed in Go within a band of the
// threshold, on both backends; texts of any length compare.
func (s *Store) GetCachedEmbeddings(ctx context.Context, agentID string, q storage.CachedEmbeddingsQuery) ([]storage.CachedEmbedding, error) {
	fail := func(err error) ([]storage.CachedEmbedding, error) {
		return nil, fmt.Errorf("get cached embeddings: %w", err)
	}
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	// The text never reaches the database, so a NUL byte is fine on both
	// backends (a PostgreSQL memory cannot hold one, so it only adds to
	// the distance).
	if !utf8.ValidString(q.Text) {
		return fail(invalid("query.text", "is not valid UTF-8"))
	}
	key := q.Field
	if key == "" {
		key = "text"
	}
	if err := checkContentKey("query.field", key); err != nil {
		return fail(err)
	}
	if err := s.checkOptionalKey("query.table", q.Table); err != nil {
		return fail(err)
	}
	if q.Threshold < 0 || q.Threshold > MaxLevenshteinThreshold {
		return fail(invalid("query.threshold", "is %d; it must be 0 to %d", q.Threshold, MaxLevenshteinThreshold))
	}
	if q.Count < 0 {
		return fail(invalid("query.count", "is negative (%d)", q.Count))
	}
	count := q.Count
	if count == 0 {
		count = DefaultCachedEmbeddingsCount
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
	if dim == 0 {
		return nil, nil // no memory holds an embedding
	}

	// Pass 1: the texts whose length in bytes allows a distance within the
	// threshold (a character takes 1 to 4 bytes), ranked here.
	query := []rune(q.Text)
	lo, hi := max(0, len(query)-q.Threshold), 4*(len(query)+q.Threshold)
	text := `content->>CAST(? AS TEXT)`
	w := &where{}
	w.add("agent_id = ?", agentID)
	if q.Table != "" {
		w.add("type = ?", q.Table)
	}
	w.add("embedding_dim = ?", dim)
	w.add(fmt.Sprintf(s.d.jsonIsString, "?"), key)
	w.add(fmt.Sprintf(s.d.octetLength, text)+" BETWEEN ? AND ?", key, lo, hi)
	rows, err := r.query(ctx, `SELECT seq, `+text+` FROM memories WHERE `+w.String(), append([]any{key}, w.args...)...)
	if err != nil {
		return fail(err)
	}
	best := &closeHeap{}
	bound := q.Threshold
	for n := 0; rows.Next(); n++ {
		if n%1024 == 1023 && ctx.Err() != nil {
			break // rows.Err reports it
		}
		var seq int64
		var b sql.RawBytes
		if err := rows.Scan(&seq, &b); err != nil {
			rows.Close()
			return fail(err)
		}
		if d := utf8.RuneCount(b) - len(query); d > bound || -d > bound {
			continue
		}
		dist, ok := levenshtein(query, []rune(string(b)), bound)
		if !ok {
			continue
		}
		c := closeText{seq: seq, dist: dist}
		switch {
		case best.Len() < count:
			heap.Push(best, c)
		case c.better((*best)[0]):
			(*best)[0] = c
			heap.Fix(best, 0)
		default:
			continue
		}
		if best.Len() == count {
			bound = min(bound, (*best)[0].dist) // only as close or closer can enter
		}
	}
	err = rows.Err()
	rows.Close()
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return fail(err)
	}
	if best.Len() == 0 {
		return nil, nil
	}
	ranks := make([]closeText, best.Len())
	for i := len(ranks) - 1; i >= 0; i-- {
		ranks[i] = heap.Pop(best).(closeText)
	}

	// Pass 2: the embeddings of the closest.
	bySeq := make(map[int64]storage.CachedEmbedding, len(ranks))
	for start := 0; start < len(ranks); start += inChunk {
		chunk := ranks[start:min(start+inChunk, len(ranks))]
		args := []any{agentID, dim}
		for _, c := range chunk {
			args = append(args, c.seq)
		}
		if err := loadCachedEmbeddings(ctx, r, `SELECT seq, id, embedding FROM memories WHERE agent_id = ? AND embedding_dim = ? AND seq IN (`+
			placeholders(len(chunk))+`)`, args, bySeq); err != nil {
			return fail(err)
		}
	}
	out := make([]storage.CachedEmbedding, 0, len(ranks))
	for _, c := range ranks {
		if e, ok := bySeq[c.seq]; ok { // gone if deleted or re-embedded in between
			e.LevenshteinScore = c.dist
			out = append(out, e)
		}
	}
	return out, nil
}

// loadCachedEmbeddings adds the rows (seq, id, embedding) of q to bySeq.
func loadCachedEmbeddings(ctx context.Context, r runner, q string, args []any, bySeq map[int64]storage.CachedEmbedding) error {
	rows, err := r.query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var c storage.CachedEmbedding
		var b []byte
		if err := rows.Scan(&seq, &c.MemoryID, &b); err != nil {
			return err
		}
		c.Embedding = decodeVector(b)
		bySeq[seq] = c
	}
	return rows.Err()
}

// closeText is a candidate of GetCachedEmbeddings.
type closeText struct {
	seq  int64
	dist int
}

// better: closer, then newer.
func (a closeText) better(b closeText) bool {
	return a.dist < b.dist || a.dist == b.dist && a.seq > b.seq
}

// closeHeap keeps the worst of the best at the top.
type closeHeap []closeText

func (h closeHeap) Len() int           { return len(h) }
func (h closeHeap) Less(i, j int) bool { return h[j].better(h[i]) }
func (h closeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *closeHeap) Push(x any)        { *h = append(*h, x.(closeText)) }
func (h *closeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// levenshtein returns the Levenshtein distance of a and b (the fewest
// characters inserted, deleted or replaced to turn one into the other) when
// it is at most limit, and ok=false when it is larger. It fills only the
// cells of the table within limit of its diagonal and stops at the first
// row whose every cell exceeds limit, so the work is about
// len(a)·(2·limit+1) at most, and far less for texts that differ early.
func levenshtein(a, b []rune, limit int) (dist int, ok bool) {
	for len(a) > 0 && len(b) > 0 && a[0] == b[0] {
		a, b = a[1:], b[1:]
	}
	for len(a) > 0 && len(b) > 0 && a[len(a)-1] == b[len(b)-1] {
		a, b = a[:len(a)-1], b[:len(b)-1]
	}
	if len(a) < len(b) {
		a, b = b, a
	}
	n, m := len(a), len(b)
	if n-m > limit {
		return 0, false
	}
	if m == 0 {
		return n, true
	}
	// Cells outside the band hold over, limit+1: their distance is at
	// least their distance from the diagonal.
	over := limit + 1
	prev, cur := make([]int, m+1), make([]int, m+1)
	for j := range prev {
		prev[j] = min(j, over)
	}
	for i := 1; i <= n; i++ {
		lo, hi := max(1, i-limit), min(m, i+limit)
		if lo == 1 {
			cur[0] = min(i, over)
		} else {
			cur[lo-1] = over
		}
		rowMin := cur[lo-1]
		for j := lo; j <= hi; j++ {
			v := prev[j-1]
			if a[i-1] != b[j-1] {
				v++
			}
			v = min(v, prev[j]+1, cur[j-1]+1, over)
			cur[j] = v
			rowMin = min(rowMin, v)
		}
		if hi < m {
			cur[hi+1] = over
		}
		if rowMin > limit {
			return 0, false
		}
		prev, cur = cur, prev
	}
	if d := prev[m]; d <= limit {
		return d, true
	}
	return 0, false
}

// AddParticipants makes the entities participants of the room, in one
// transaction, and returns how many of them were not participants before;
// the others keep their room state. The room must be stored (an error
// matching sdk.ErrNotFound otherwise); the entities need not be, as with
// SetParticipantState.
func (s *Store) AddParticipants(ctx context.Context, agentID, roomID string, entityIDs []string) (int64, error) {
	fail := func(err error) (int64, error) {
		return 0, fmt.Errorf("add participants to room %s: %w", truncate(roomID), err)
	}
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if err := checkID("roomId", roomID, true); err != nil {
		return fail(err)
	}
	if err := checkIDs("entityIds", entityIDs); err != nil {
		return fail(err)
	}
	var added int64
	err := s.write(ctx, func(r runner) error {
		added = 0
		var one int
		err := r.queryRow(ctx, `SELECT 1 FROM rooms WHERE agent_id = ? AND id = ?`, agentID, roomID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("room %s: %w", roomID, sdk.ErrNotFound)
		}
		if err != nil {
			return err
		}
		t := now()
		for _, id := range entityIDs {
			res, err := r.exec(ctx, `INSERT INTO participants (agent_id, room_id, entity_id, room_state, created_at)
				VALUES (?, ?, ?, '', ?) ON CONFLICT (agent_id, room_id, entity_id) DO NOTHING`, agentID, roomID, id, t)
			inserted, err := insertedOne(res, err)
			if err != nil {
				return fmt.Errorf("participant %s: %w", id, err)
			}
			if inserted {
				added++
			}
		}
		return nil
	})
	if err != nil {
		return fail(err)
	}
	return added, nil
}

// UpsertRooms stores the rooms in one transaction, replacing every field of
// those already stored (UpsertRoom for many; elizaOS's createRooms). All
// are checked before any is written: one bad room stores none.
func (s *Store) UpsertRooms(ctx context.Context, agentID string, rooms []sdk.Room) error {
	fail := func(err error) error { return fmt.Errorf("upsert rooms: %w", err) }
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	metadata := make([]string, len(rooms))
	for i, room := range rooms {
		field := fmt.Sprintf("rooms[%d]", i)
		if err := s.checkRoom(field, agentID, room); err != nil {
			return fail(err)
		}
		var err error
		if metadata[i], err = s.marshal(field+".metadata", room.Metadata); err != nil {
			return fail(err)
		}
	}
	err := s.write(ctx, func(r runner) error {
		if err := requireAgent(ctx, r, agentID); err != nil {
			return err
		}
		t := now()
		for i, room := range rooms {
			if err := upsertRoom(ctx, r, agentID, room, metadata[i], t); err != nil {
				return fmt.Errorf("room %s: %w", room.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return fail(err)
	}
	return nil
}

// DeleteRoomsByWorld deletes the rooms of the world with their
// participants, memories and logs, in one transaction, keeps the world, and
// returns how many rooms it deleted (elizaOS's deleteRoomsByWorldId).
func (s *Store) DeleteRoomsByWorld(ctx context.Context, agentID, worldID string) (int64, error) {
	fail := func(err error) (int64, error) {
		return 0, fmt.Errorf("delete rooms of world %s: %w", truncate(worldID), err)
	}
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if err := checkID("worldId", worldID, true); err != nil {
		return fail(err)
	}
	var n int64
	var gone []int64
	err := s.write(ctx, func(r runner) error {
		var err error
		n, gone, err = deleteRooms(ctx, r, agentID, `world_id = ?`, worldID)
		return err
	})
	if err != nil {
		return fail(err)
	}
	s.memoriesDeleted(agentID, gone)
	return n, nil
}
