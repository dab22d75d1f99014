package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/dbplugin"
)

const agentColumns = `id, name, character, enabled, created_at, updated_at`

// agentRead is what reading an agent selects: its columns and its
// embedding size, which only EnsureEmbeddingDimension writes.
const agentRead = agentColumns + `, embedding_dimension`

// EnsureAgent stores the agent, or updates the stored one with the same id
// or, failing that, the same name (elizaOS finds an agent by name). The
// returned record is the stored one: its id is the stored agent's, which
// differs from a.ID when a.ID was empty or another id holds the name. An
// empty a.ID becomes sdk.StringToUUID(a.Name), as in elizaOS. created is
// true when no agent was stored before. Empty CharacterJSON is stored as {}.
func (s *Store) EnsureAgent(ctx context.Context, a dbplugin.AgentRecord) (dbplugin.AgentRecord, bool, error) {
	fail := func(err error) (dbplugin.AgentRecord, bool, error) {
		return dbplugin.AgentRecord{}, false, fmt.Errorf("ensure agent %q: %w", truncate(a.Name), err)
	}
	if err := checkID("agent.id", a.ID, false); err != nil {
		return fail(err)
	}
	if err := s.checkKey("agent.name", a.Name); err != nil {
		return fail(err)
	}
	character := a.CharacterJSON
	if len(character) == 0 {
		character = []byte("{}")
	}
	if err := s.checkJSON("agent.character", character); err != nil {
		return fail(err)
	}
	var out dbplugin.AgentRecord
	created := false
	var err error
	// Two processes that store the same new agent at once both find no row;
	// the loser's insert fails on the unique key and its second attempt
	// finds the winner's row.
	for attempt := 0; attempt < 2; attempt++ {
		err = s.write(ctx, func(r runner) error {
			created = false
			t := now()
			var storedID string
			if a.ID != "" {
				err := r.queryRow(ctx, `SELECT id FROM agents WHERE id = ?`, a.ID).Scan(&storedID)
				if err != nil && !errors.Is(err, sql.ErrNoRows) {
					return err
				}
			}
			if storedID == "" {
				err := r.queryRow(ctx, `SELECT id FROM agents WHERE name = ?`, a.Name).Scan(&storedID)
				if err != nil && !errors.Is(err, sql.ErrNoRows) {
					return err
				}
			}
			if storedID == "" {
				id := a.ID
				if id == "" {
					id = sdk.StringToUUID(a.Name)
				}
				_, err := r.exec(ctx, `INSERT INTO agents (`+agentColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
					id, a.Name, string(character), a.Enabled, t, t)
				if err != nil {
					if s.d.uniqueViolation(err) {
						return fmt.Errorf("agent id %s is taken: %w", id, err)
					}
					return err
				}
				created = true
				storedID = id
			} else {
				_, err := r.exec(ctx, `UPDATE agents SET name = ?, character = ?, enabled = ?, updated_at = ? WHERE id = ?`,
					a.Name, string(character), a.Enabled, t, storedID)
				if err != nil {
					if s.d.uniqueViolation(err) {
						return fmt.Errorf("another agent is named %q: %w", truncate(a.Name), err)
					}
					return err
				}
			}
			var err error
			out, err = scanAgent(r.queryRow(ctx, `SELECT `+agentRead+` FROM agents WHERE id = ?`, storedID))
			return err
		})
		if err == nil || !s.d.uniqueViolation(err) {
			break
		}
	}
	if err != nil {
		return fail(err)
	}
	return out, created, nil
}

// GetAgents returns every stored agent, oldest first.
func (s *Store) GetAgents(ctx context.Context) ([]dbplugin.AgentRecord, error) {
	rows, err := s.read().query(ctx, `SELECT `+agentRead+` FROM agents ORDER BY created_at, name`)
	if err != nil {
		return nil, fmt.Errorf("get agents: %w", err)
	}
	defer rows.Close()
	var out []dbplugin.AgentRecord
	for rows.Next() {
		a, err := scanAgent(rows)
		if err != nil {
			return nil, fmt.Errorf("get agents: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("get agents: %w", err)
	}
	return out, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanAgent(sc scanner) (dbplugin.AgentRecord, error) {
	var a dbplugin.AgentRecord
	var character []byte
	var dim sql.NullInt64
	err := sc.Scan(&a.ID, &a.Name, &character, &a.Enabled, &a.CreatedAt, &a.UpdatedAt, &dim)
	a.CharacterJSON = character
	a.EmbeddingDimension = int(dim.Int64)
	return a, err
}

// EnsureEmbeddingDimension fixes the agent's embedding size on first use and
// returns the size stored before (0 if none). Asking for another size than
// the stored one switches the agent to it while it has no memory with an
// embedding; afterwards the call fails with an error naming both sizes
// (delete those memories first), and the stored size stays.
func (s *Store) EnsureEmbeddingDimension(ctx context.Context, agentID string, dim int) (int, error) {
	fail := func(err error) (int, error) {
		return 0, fmt.Errorf("ensure embedding dimension of agent %s: %w", agentID, err)
	}
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if dim <= 0 {
		return fail(invalid("dimension", "is %d; it must be positive", dim))
	}
	prev := 0
	err := s.write(ctx, func(r runner) error {
		err := r.queryRow(ctx, `SELECT embedding_dimension FROM agents WHERE id = ?`+s.d.forUpdate, agentID).Scan(&prev)
		if errors.Is(err, sql.ErrNoRows) {
			return errAgentNotFound(agentID)
		}
		if err != nil || prev == dim {
			return err
		}
		if prev != 0 {
			var n int64
			err := r.queryRow(ctx, `SELECT count(*) FROM memories WHERE agent_id = ? AND embedding_dim > 0`, agentID).Scan(&n)
			if err != nil {
				return err
			}
			if n > 0 {
				return invalid("dimension", "is %d but the agent stores %d and has %d memories with embeddings of that size; run `agenthost db reembed --agent NAME` to re-embed them with the current model",
					dim, prev, n)
			}
		}
		_, err = r.exec(ctx, `UPDATE agents SET embedding_dimension = ? WHERE id = ?`, dim, agentID)
		return err
	})
	if err != nil {
		return prev, fmt.Errorf("ensure embedding dimension of agent %s: %w", agentID, err)
	}
	return prev, nil
}

// SetEmbeddingDimension switches the agent's embedding size even when it has
// memories with embeddings of the old size. Those stay stored but take no
// part in search or duplicate detection until UpdateMemory gives them a new
// embedding; GetMemoriesToReembed lists them. It returns the size stored
// before and how many memories now hold an embedding of another size.
// `agenthost db reembed` calls it first: the agent's vector index is
// dropped, and built anew from the new embeddings at the next search.
func (s *Store) SetEmbeddingDimension(ctx context.Context, agentID string, dim int) (int, int64, error) {
	fail := func(err error) (int, int64, error) {
		return 0, 0, fmt.Errorf("set embedding dimension of agent %s: %w", truncate(agentID), err)
	}
	if err := checkID("agentId", agentID, true); err != nil {
		return fail(err)
	}
	if dim <= 0 {
		return fail(invalid("dimension", "is %d; it must be positive", dim))
	}
	prev := 0
	var stale int64
	err := s.write(ctx, func(r runner) error {
		err := r.queryRow(ctx, `SELECT embedding_dimension FROM agents WHERE id = ?`+s.d.forUpdate, agentID).Scan(&prev)
		if errors.Is(err, sql.ErrNoRows) {
			return errAgentNotFound(agentID)
		}
		if err != nil {
			return err
		}
		if _, err := r.exec(ctx, `UPDATE agents SET embedding_dimension = ? WHERE id = ?`, dim, agentID); err != nil {
			return err
		}
		return r.queryRow(ctx, `SELECT count(*) FROM memories WHERE agent_id = ? AND embedding_dim > 0 AND embedding_dim <> ?`,
			agentID, dim).Scan(&stale)
	})
	if err != nil {
		return fail(err)
	}
	if s.vix != nil {
		s.vix.forget(agentID)
	}
	return prev, stale, nil
}

// GetAgent returns the agent with id, or an error matching sdk.ErrNotFound.
func (s *Store) GetAgent(ctx context.Context, id string) (dbplugin.AgentRecord, error) {
	if err := checkID("id", id, true); err != nil {
		return dbplugin.AgentRecord{}, fmt.Errorf("get agent %s: %w", truncate(id), err)
	}
	a, err := scanAgent(s.read().queryRow(ctx, `SELECT `+agentRead+` FROM agents WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("get agent: %w", errAgentNotFound(id))
	}
	if err != nil {
		return a, fmt.Errorf("get agent %s: %w", id, err)
	}
	return a, nil
}

// UpdateAgent changes what u sets, in one transaction, and returns the
// stored record. The character takes u.CharacterPatch as a JSON merge patch
// (RFC 7396): objects merge deeply, a null deletes the key, any other value
// replaces it; the settings of elizaOS's updateAgent merge the same way.
// The agent's name and the character's "name" stay equal: a new u.Name is
// written into the character, and a patch that renames the character
// renames the agent. An unknown id is an error matching sdk.ErrNotFound.
func (s *Store) UpdateAgent(ctx context.Context, id string, u dbplugin.AgentUpdate) (dbplugin.AgentRecord, error) {
	fail := func(err error) (dbplugin.AgentRecord, error) {
		return dbplugin.AgentRecord{}, fmt.Errorf("update agent %s: %w", truncate(id), err)
	}
	if err := checkID("id", id, true); err != nil {
		return fail(err)
	}
	if u.Name != nil {
		if err := s.checkKey("agent.name", *u.Name); err != nil {
			return fail(err)
		}
	}
	var patch any
	if len(u.CharacterPatch) > 0 {
		if err := s.checkJSON("characterPatch", u.CharacterPatch); err != nil {
			return fail(err)
		}
		if err := json.Unmarshal(u.CharacterPatch, &patch); err != nil {
			return fail(invalid("characterPatch", "is not valid JSON: %v", err))
		}
	}
	var out dbplugin.AgentRecord
	err := s.write(ctx, func(r runner) error {
		old, err := scanAgent(r.queryRow(ctx, `SELECT `+agentRead+` FROM agents WHERE id = ?`+s.d.forUpdate, id))
		if errors.Is(err, sql.ErrNoRows) {
			return errAgentNotFound(id)
		}
		if err != nil {
			return err
		}
		var character any
		if err := json.Unmarshal(old.CharacterJSON, &character); err != nil {
			return fmt.Errorf("stored character: %w", err)
		}
		if patch != nil {
			character = mergePatch(character, patch)
		}
		name, enabled := old.Name, old.Enabled
		obj, isObj := character.(map[string]any)
		if n, ok := obj["name"].(string); ok && isObj && n != "" && n != old.Name && u.Name == nil {
			name = n
		}
		if u.Name != nil {
			name = *u.Name
			if isObj {
				obj["name"] = name
			}
		}
		if u.Enabled != nil {
			enabled = *u.Enabled
		}
		if err := s.checkKey("agent.name", name); err != nil {
			return err
		}
		charJSON, err := s.marshal("agent.character", character)
		if err != nil {
			return err
		}
		_, err = r.exec(ctx, `UPDATE agents SET name = ?, character = ?, enabled = ?, updated_at = ? WHERE id = ?`,
			name, charJSON, enabled, now(), id)
		if err != nil {
			if s.d.uniqueViolation(err) {
				return invalid("agent.name", "another agent is named %q", truncate(name))
			}
			return err
		}
		out, err = scanAgent(r.queryRow(ctx, `SELECT `+agentRead+` FROM agents WHERE id = ?`, id))
		return err
	})
	if err != nil {
		return fail(err)
	}
	return out, nil
}

// mergePatch applies a JSON merge patch (RFC 7396) to target.
func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
			continue
		}
		t[k] = mergePatch(t[k], v)
	}
	return t
}

// DeleteAgent deletes the agent and, in the same transaction, everything
// it stores (entities, rooms, worlds, memories, components, relationships,
// tasks, logs, cache). It reports whether the agent existed.
func (s *Store) DeleteAgent(ctx context.Context, id string) (bool, error) {
	if err := checkID("id", id, true); err != nil {
		return false, fmt.Errorf("delete agent %s: %w", truncate(id), err)
	}
	n, err := s.deleteWhere(ctx, `DELETE FROM agents WHERE id = ?`, id)
	if err != nil {
		return false, fmt.Errorf("delete agent %s: %w", id, err)
	}
	if s.vix != nil {
		s.vix.forget(id)
	}
	return n > 0, nil
}
