package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"

	"github.com/agenthost/agenthost/sdk/dbplugin"
)

// migration is one numbered step of the schema. Its statements use '?'-free
// portable SQL with type tokens ({{json}}, …) that the dialect replaces.
type migration struct {
	version int
	name    string
	stmts   []string
}

// migrations are applied in order; a released one is never edited, only
// followed by a new one.
var migrations = []migration{
	{1, "agents", []string{`
CREATE TABLE agents (
	id                  {{id}} PRIMARY KEY,
	name                {{text}} NOT NULL UNIQUE,
	character           {{json}} NOT NULL,
	enabled             {{bool}} NOT NULL DEFAULT {{true}},
	embedding_dimension {{int}} NOT NULL DEFAULT 0,
	created_at          {{bigint}} NOT NULL,
	updated_at          {{bigint}} NOT NULL
){{strict}}`,
	}},
	{2, "entities, worlds, rooms, participants", []string{`
CREATE TABLE entities (
	agent_id   {{id}} NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
	id         {{id}} NOT NULL,
	names      {{json}} NOT NULL,
	metadata   {{json}} NOT NULL,
	created_at {{bigint}} NOT NULL,
	updated_at {{bigint}} NOT NULL,
	PRIMARY KEY (agent_id, id)
){{strict}}`, `
CREATE TABLE worlds (
	seq        {{serial}},
	agent_id   {{id}} NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
	id         {{id}} NOT NULL,
	name       {{text}} NOT NULL DEFAULT '',
	server_id  {{text}} NOT NULL DEFAULT '',
	metadata   {{json}} NOT NULL,
	created_at {{bigint}} NOT NULL,
	updated_at {{bigint}} NOT NULL,
	UNIQUE (agent_id, id)
){{strict}}`, `
CREATE TABLE rooms (
	seq        {{serial}},
	agent_id   {{id}} NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
	id         {{id}} NOT NULL,
	name       {{text}} NOT NULL DEFAULT '',
	source     {{text}} NOT NULL DEFAULT '',
	type       {{text}} NOT NULL DEFAULT '',
	channel_id {{text}} NOT NULL DEFAULT '',
	server_id  {{text}} NOT NULL DEFAULT '',
	world_id   {{id}} NOT NULL DEFAULT '',
	metadata   {{json}} NOT NULL,
	created_at {{bigint}} NOT NULL,
	updated_at {{bigint}} NOT NULL,
	UNIQUE (agent_id, id)
){{strict}}`,
		`CREATE INDEX rooms_world ON rooms (agent_id, world_id)`, `
CREATE TABLE participants (
	seq        {{serial}},
	agent_id   {{id}} NOT NULL,
	room_id    {{id}} NOT NULL,
	entity_id  {{id}} NOT NULL,
	room_state {{text}} NOT NULL DEFAULT '',
	created_at {{bigint}} NOT NULL,
	UNIQUE (agent_id, room_id, entity_id),
	FOREIGN KEY (agent_id, room_id) REFERENCES rooms (agent_id, id) ON DELETE CASCADE
){{strict}}`,
		`CREATE INDEX participants_entity ON participants (agent_id, entity_id)`,
	}},
	{3, "memories", []string{`
CREATE TABLE memories (
	seq           {{serial}},
	agent_id      {{id}} NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
	id            {{id}} NOT NULL,
	type          {{text}} NOT NULL,
	room_id       {{id}} NOT NULL,
	world_id      {{id}} NOT NULL DEFAULT '',
	entity_id     {{id}} NOT NULL,
	created_at    {{bigint}} NOT NULL,
	content       {{json}} NOT NULL,
	metadata      {{json}} NOT NULL,
	is_unique     {{bool}} NOT NULL DEFAULT {{false}},
	embedding     {{blob}},
	embedding_dim {{int}} NOT NULL DEFAULT 0,
	UNIQUE (agent_id, id)
){{strict}}`,
		// The recent messages of a room, newest first; also the candidates
		// of a vector search within a table and a room.
		`CREATE INDEX memories_recent ON memories (agent_id, type, room_id, created_at DESC, seq DESC)`,
		`CREATE INDEX memories_world ON memories (agent_id, world_id, created_at DESC)`,
		`CREATE INDEX memories_entity ON memories (agent_id, entity_id, created_at DESC)`,
	}},
	{4, "logs, cache", []string{`
CREATE TABLE logs (
	seq        {{serial}},
	id         {{id}} NOT NULL UNIQUE,
	agent_id   {{id}} NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
	entity_id  {{id}} NOT NULL DEFAULT '',
	room_id    {{id}} NOT NULL DEFAULT '',
	type       {{text}} NOT NULL,
	body       {{json}} NOT NULL,
	created_at {{bigint}} NOT NULL
){{strict}}`,
		`CREATE INDEX logs_recent ON logs (agent_id, created_at DESC, seq DESC)`,
		`CREATE INDEX logs_room ON logs (agent_id, room_id, created_at DESC, seq DESC)`, `
CREATE TABLE cache (
	agent_id   {{id}} NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
	key        {{text}} NOT NULL,
	value      {{blob}} NOT NULL,
	expires_at {{bigint}} NOT NULL DEFAULT 0,
	created_at {{bigint}} NOT NULL,
	PRIMARY KEY (agent_id, key)
){{strict}}`,
		`CREATE INDEX cache_expiry ON cache (agent_id, expires_at)`,
	}},
	// An existing table changes: elizaOS's migrator can only create the
	// tables that are missing, so a column added to a released table never
	// reaches its users' databases. Here the stored rows are kept and
	// back-filled in the same transaction.
	{5, "memories: updated_at, embedded_at", []string{
		`ALTER TABLE memories ADD COLUMN updated_at {{bigint}} NOT NULL DEFAULT 0`,
		`ALTER TABLE memories ADD COLUMN embedded_at {{bigint}} NOT NULL DEFAULT 0`,
		`UPDATE memories SET updated_at = created_at`,
		`UPDATE memories SET embedded_at = created_at WHERE embedding_dim > 0`,
		// What `agenthost db reembed` walks through.
		`CREATE INDEX memories_embedded ON memories (agent_id, embedded_at) WHERE embedding_dim > 0`,
	}},
	{6, "components, relationships, tasks", []string{`
CREATE TABLE components (
	seq              {{serial}},
	agent_id         {{id}} NOT NULL,
	id               {{id}} NOT NULL,
	entity_id        {{id}} NOT NULL,
	room_id          {{id}} NOT NULL DEFAULT '',
	world_id         {{id}} NOT NULL DEFAULT '',
	source_entity_id {{id}} NOT NULL DEFAULT '',
	type             {{text}} NOT NULL,
	data             {{json}} NOT NULL,
	created_at       {{bigint}} NOT NULL,
	updated_at       {{bigint}} NOT NULL,
	UNIQUE (agent_id, id),
	FOREIGN KEY (agent_id, entity_id) REFERENCES entities (agent_id, id) ON DELETE CASCADE
){{strict}}`,
		`CREATE INDEX components_entity ON components (agent_id, entity_id, type)`, `
CREATE TABLE relationships (
	seq              {{serial}},
	agent_id         {{id}} NOT NULL,
	id               {{id}} NOT NULL,
	source_entity_id {{id}} NOT NULL,
	target_entity_id {{id}} NOT NULL,
	tags             {{json}} NOT NULL,
	metadata         {{json}} NOT NULL,
	created_at       {{bigint}} NOT NULL,
	updated_at       {{bigint}} NOT NULL,
	UNIQUE (agent_id, id),
	UNIQUE (agent_id, source_entity_id, target_entity_id),
	FOREIGN KEY (agent_id, source_entity_id) REFERENCES entities (agent_id, id) ON DELETE CASCADE,
	FOREIGN KEY (agent_id, target_entity_id) REFERENCES entities (agent_id, id) ON DELETE CASCADE
){{strict}}`,
		`CREATE INDEX relationships_target ON relationships (agent_id, target_entity_id)`, `
CREATE TABLE tasks (
	seq         {{serial}},
	agent_id    {{id}} NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
	id          {{id}} NOT NULL,
	name        {{text}} NOT NULL,
	description {{text}} NOT NULL DEFAULT '',
	room_id     {{id}} NOT NULL DEFAULT '',
	world_id    {{id}} NOT NULL DEFAULT '',
	entity_id   {{id}} NOT NULL DEFAULT '',
	tags        {{json}} NOT NULL,
	metadata    {{json}} NOT NULL,
	created_at  {{bigint}} NOT NULL,
	updated_at  {{bigint}} NOT NULL,
	UNIQUE (agent_id, id)
){{strict}}`,
		`CREATE INDEX tasks_room ON tasks (agent_id, room_id)`,
		`CREATE INDEX tasks_name ON tasks (agent_id, name)`,
	}},
	// SearchEntities compares names in lower case. SQLite's lower() folds
	// ASCII only, and PostgreSQL's depends on the database's locale, so
	// the lower-case names are computed in Go (searchNames) and kept in a
	// column of their own; fillSearchNames fills it for the stored rows.
	{7, "entities: search_names", []string{
		`ALTER TABLE entities ADD COLUMN search_names {{text}} NOT NULL DEFAULT ''`,
	}},
	// The change counter of each agent's vectors: every write that adds,
	// changes or clears an embedding increments the agent's and stamps the
	// memory with it, so that a vector index saved at version N catches up
	// with the memories stamped after N (vectorindex.go).
	{8, "vector versions", []string{
		`ALTER TABLE agents ADD COLUMN vector_version {{bigint}} NOT NULL DEFAULT 0`,
		`ALTER TABLE memories ADD COLUMN vector_version {{bigint}} NOT NULL DEFAULT 0`,
		`CREATE INDEX memories_vector_version ON memories (agent_id, vector_version)`,
		// An index's candidates and its builds read an agent's memories by
		// seq; without this index SQLite, which keeps no statistics here,
		// walks the agent's every row through the one above.
		`CREATE INDEX memories_agent_seq ON memories (agent_id, seq)`,
	}},
}

// migrationFills complete a migration, in its transaction, with what SQL
// alone cannot compute.
var migrationFills = map[int]func(ctx context.Context, r runner) error{
	7: fillSearchNames,
}

const createMigrationsTable = `
CREATE TABLE IF NOT EXISTS schema_migrations (
	version    {{int}} PRIMARY KEY,
	name       {{text}} NOT NULL,
	applied_at {{bigint}} NOT NULL
){{strict}}`

// Migrate applies the pending migrations, each in its own transaction, and
// reports every migration with the time it was applied. Several processes
// may call it at once: on PostgreSQL they queue on an advisory lock, on
// SQLite on the database's write lock, and each migration is re-checked
// inside its transaction.
func (s *Store) Migrate(ctx context.Context) (dbplugin.MigrationReport, error) {
	return s.migrateTo(ctx, 0)
}

// migrateTo applies the pending migrations up to version upTo (all when 0).
func (s *Store) migrateTo(ctx context.Context, upTo int) (dbplugin.MigrationReport, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return dbplugin.MigrationReport{}, fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	unlock, err := s.d.lockMigrations(ctx, conn)
	if err != nil {
		return dbplugin.MigrationReport{}, fmt.Errorf("migrate: %w", err)
	}
	defer unlock()

	err = s.writeOn(ctx, conn, func(r runner) error {
		_, err := r.exec(ctx, s.d.ddl.Replace(createMigrationsTable))
		return err
	})
	if err != nil {
		return dbplugin.MigrationReport{}, fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	applied := 0
	for _, m := range migrations {
		if upTo > 0 && m.version > upTo {
			break
		}
		ran := false
		err := s.writeOn(ctx, conn, func(r runner) error {
			ran = false
			var one int
			err := r.queryRow(ctx, `SELECT 1 FROM schema_migrations WHERE version = ?`, m.version).Scan(&one)
			if err == nil {
				return nil // applied by another process meanwhile
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			for _, stmt := range m.stmts {
				if _, err := r.exec(ctx, s.d.ddl.Replace(stmt)); err != nil {
					return err
				}
			}
			if fill := migrationFills[m.version]; fill != nil {
				if err := fill(ctx, r); err != nil {
					return err
				}
			}
			_, err = r.exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.version, m.name, now())
			ran = err == nil
			return err
		})
		if err != nil {
			return dbplugin.MigrationReport{}, fmt.Errorf("migrate: migration %d (%s): %w", m.version, m.name, err)
		}
		if ran {
			applied++
		}
	}
	if err := s.afterMigrate(ctx, conn); err != nil {
		return dbplugin.MigrationReport{}, fmt.Errorf("migrate: %w", err)
	}
	rep, err := s.status(ctx, runner{q: conn, d: s.d})
	if err != nil {
		return dbplugin.MigrationReport{}, fmt.Errorf("migrate: %w", err)
	}
	rep.Applied = applied
	return rep, nil
}

// MigrationStatus reports every migration, known to this code or recorded by
// a newer one, with the time it was applied (0 while pending).
func (s *Store) MigrationStatus(ctx context.Context) (dbplugin.MigrationReport, error) {
	rep, err := s.status(ctx, s.read())
	if err != nil {
		return dbplugin.MigrationReport{}, fmt.Errorf("migration status: %w", err)
	}
	return rep, nil
}

func (s *Store) status(ctx context.Context, r runner) (dbplugin.MigrationReport, error) {
	rep := dbplugin.MigrationReport{Backend: s.d.name, VectorSearch: s.VectorSearch()}
	if s.vix != nil {
		rep.VectorSearch = s.vix.describe() + "; exact search: " + rep.VectorSearch
	}
	byVersion := map[int]*dbplugin.MigrationInfo{}
	for _, m := range migrations {
		rep.Migrations = append(rep.Migrations, dbplugin.MigrationInfo{Version: m.version, Name: m.name})
	}
	for i := range rep.Migrations {
		byVersion[rep.Migrations[i].Version] = &rep.Migrations[i]
	}
	var n int
	if err := r.queryRow(ctx, s.d.tableExists, "schema_migrations").Scan(&n); err != nil {
		return rep, err
	}
	if n == 0 {
		return rep, nil
	}
	rows, err := r.query(ctx, `SELECT version, name, applied_at FROM schema_migrations ORDER BY version`)
	if err != nil {
		return rep, err
	}
	defer rows.Close()
	var extra []dbplugin.MigrationInfo
	for rows.Next() {
		var mi dbplugin.MigrationInfo
		if err := rows.Scan(&mi.Version, &mi.Name, &mi.AppliedAt); err != nil {
			return rep, err
		}
		if known, ok := byVersion[mi.Version]; ok {
			known.AppliedAt = mi.AppliedAt
		} else {
			extra = append(extra, mi) // written by a newer agenthost
		}
	}
	if err := rows.Err(); err != nil {
		return rep, err
	}
	rep.Migrations = append(rep.Migrations, extra...)
	sort.Slice(rep.Migrations, func(i, j int) bool { return rep.Migrations[i].Version < rep.Migrations[j].Version })
	return rep, nil
}
