// Package sqlstore is the storage of agenthost (the plugin "sql"): an implementation of
// [dbplugin.Adapter] over SQLite (embedded, the default) or PostgreSQL.
//
// # Backends
//
// [Open] picks the backend from [Config]: a postgres:// or postgresql:// URL
// selects PostgreSQL (through sqlx and lib/pq); otherwise the store is the
// SQLite file <DataDir>/agenthost.db, opened with modernc.org/sqlite (pure Go,
// no cgo). Both backends run the same SQL: statements are written once with
// '?' placeholders and portable syntax (INSERT … ON CONFLICT, which both
// engines understand), and a small dialect value supplies what differs:
// the placeholder style, the column types of the migrations, row locks,
// the migration lock and which characters a text column can hold. On SQLite
// the store keeps its statements prepared (stmtcache.go, a bounded cache
// used inside transactions too); a LIMIT is written into a statement's text
// rather than bound, since SQLite prepares a statement again whenever a
// bound LIMIT changes.
//
// # SQLite durability
//
// The SQLite file runs in WAL mode with synchronous=NORMAL, foreign keys on,
// a busy timeout, and reads through read(2) rather than a memory map, which
// would keep every page read mapped in the process. In WAL mode a commit
// appends the transaction to the write-ahead log with write(2) before it
// returns, so an acknowledged write
// survives the death of the process (SIGKILL, a panic, an OOM kill): the
// operating system already holds the bytes. What NORMAL gives up, compared
// with FULL, is an fsync of the log at every commit; only a power loss or a
// kernel crash can lose the last transactions, and the database file never
// becomes corrupt. That trade is the one SQLite recommends for WAL and what
// keeps CreateMemory cheap; the test TestSurvivesSIGKILL checks the first half
// of the claim. Writes from one process take turns (SQLite has one writer
// at a time anyway) and transactions begin IMMEDIATE, so two processes
// sharing a file wait for each other instead of failing.
//
// Writes that arrive while a write transaction runs are committed together
// (write.go): the next transaction takes the queued writes, up to 64, and
// commits once. Under load a message's writes (its memories, its logs)
// queued anyway, and each COMMIT wrote the same hot pages (the end of a
// table, the leaves of its indexes) to the log again: COMMIT was a sixth
// of the database plugin's CPU. Each caller still gets its own result: a
// write that fails gets its error alone, and the others commit (they run
// again, each in a savepoint, in a new transaction); a failed BEGIN or
// COMMIT fails every write of the group. A caller's cancelled context
// never interrupts the shared transaction (SQLite would roll all of it
// back): a caller cancelled before its turn is skipped, and the statements
// of a group run without cancellation. A write that finds no transaction
// running runs at once, alone, so a lone writer waits for nothing.
//
// # Data
//
// Migrations are numbered, each runs in its own transaction and is recorded
// in schema_migrations(version, name, applied_at); on PostgreSQL they run
// under an advisory lock so that several processes may call Migrate at once.
// Every agent-scoped table references agents(id) with ON DELETE CASCADE
// (participants through their room), so [Store.EnsureAgent] must come before
// anything else of that agent; a write for an unknown agent fails with an
// error matching sdk.ErrNotFound. Rows are
// keyed by (agent_id, id): ids are agent-scoped already (see
// sdk.CreateUniqueUUID), and two agents never see each other's rows even if
// a caller reuses an id. Ids are stored exactly as given (any letter case)
// and compared exactly.
//
// Migration 5 alters a table that earlier versions created (it adds
// memories.updated_at and memories.embedded_at and fills them from the
// stored rows), which elizaOS's create-if-missing migrator cannot do;
// [Store.Migrate] is tested on a database left at version 4 with rows in it.
//
// Memories of every logical table (messages, facts, documents, …) live in one
// table, memories, whose type column holds the table name. An embedding is
// stored as a little-endian float32 blob with its dimension; each agent has
// one embedding dimension, fixed by [Store.EnsureEmbeddingDimension] or by its
// first memory with an embedding, and a memory of another size is refused
// with an error naming both sizes. After a change of embedding model,
// [Store.SetEmbeddingDimension] switches the size on purpose, and
// [Store.GetMemoriesToReembed] with [Store.UpdateMemory] re-embeds the stored
// memories (`agenthost db reembed`); until then the memories of the old
// size take no part in search.
//
// Components, relationships (one per direction, with tags) and tasks have
// tables of their own; world roles and settings live in the world's
// metadata, as in elizaOS. Tag filters follow elizaOS: a relationship
// matches any of the tags asked for, a task all of them.
//
// # Lookups
//
// [Store.SearchEntities] finds entities by a part of a name, in lower case,
// or by whole names (elizaOS's searchEntitiesByName and
// getEntitiesByNames). Lower case is Go's (Unicode) on both backends:
// migration 7 adds entities.search_names, the names in lower case that
// every write of an entity keeps current, and the database narrows the rows
// down with a plain substring test on it (no LIKE, so % and _ are no
// wildcards); each row found is checked against its names before it is
// returned. [Store.AttachComponents] gives entities their components (the
// Database service's include_components). [Store.GetCachedEmbeddings] is
// elizaOS's legacy embedding cache: the stored embeddings of the agent's
// memories whose text is within a Levenshtein distance of a query text. The
// database picks the memories whose text has a possible length in bytes;
// the distance is computed in Go, in a band around the diagonal bounded by
// the threshold (and by the worst of the best found so far), so texts of
// any length compare, where PostgreSQL's levenshtein() refuses those over
// 255 characters. [Store.AddParticipants], [Store.UpsertRooms] and
// [Store.DeleteRoomsByWorld] are elizaOS's addParticipantsRoom, createRooms
// and deleteRoomsByWorldId, each one transaction.
//
// # Vector search
//
// Search ranks the filtered memories by cosine similarity. Once an agent has
// [DefaultVectorIndexMin] memories with embeddings (Config.VectorIndexMin),
// its searches go through an HNSW index of its own (package hnsw: vectors
// quantized to 8 bits, 1.7 KB a memory of 1,536 values with the graph), on
// both backends. The index proposes candidates; the database decides: each
// search reads its best candidates back (four times the count, at least 40;
// a search for more than 250 memories is exact) with the search's filters
// and full-precision vectors, and their similarity, the threshold and the
// order are computed exactly as on the exact path. Filters (table, room, world, entity, unique) are also applied
// inside the index, which keeps them per memory; a selection of at most 4,096
// memories (a small room of a large agent) is compared whole, a larger one
// searched in the graph more widely.
//
// An index is made at the first search of its agent once it has that many
// memories (a smaller agent has none, in memory or on disk): loaded from
// <DataDir>/vectors/AGENT.hnsw (the plugin's folder, on PostgreSQL too) or
// built from the database, in the background; searches are exact until it is
// ready. It is saved after a build and after 1,000 changes or a tenth of its
// size, whichever is more: to a temporary file, synced, then renamed over the old one, with
// a CRC-32C at its end, so that a crash leaves the old file or the new one;
// a file that does not load (damaged, cut, of another agent, of another
// database, newer than the database) is rebuilt, with a log line. Migration 8
// keeps it in step: every write that adds, changes or clears an embedding
// increments agents.vector_version while it holds the agent's row, and
// stamps the memory with the new value, so versions commit in order and an
// index at version N catches up, before each search, with exactly the
// memories stamped after N, whichever process wrote them (more than 2,000 at
// once: rebuilt in the background while searches are exact). Deletes leave
// no stamp: a loaded index drops the memories that are gone, and a search
// drops the candidates the database no longer returns, falling back to exact
// search when too few are left. An index with 30% of deleted nodes is
// rebuilt in the background. [Store.SetEmbeddingDimension], which `agenthost
// db reembed` calls first, and [Store.DeleteAgent] drop the agent's index and
// its file: it is built anew from the new embeddings.
//
// Exact search compares the query with every filtered memory: it runs with
// Config.ExactSearch (the host setting VECTOR_SEARCH=exact), below the
// minimum and while an index is built. On SQLite, and on PostgreSQL without
// the vector extension, it reads the candidates' blobs and ranks them in Go.
// On a PostgreSQL server that has pgvector, Migrate creates the extension
// (in the schema public, shared by every schema of the database), adds
// memories.embedding_vec and fills it; every write keeps it equal to the
// blob. The server then picks the best candidates with pgvector's exact
// cosine distance (no approximate index, so nothing is missed), a few more
// than asked for, and their similarity is computed in Go from the blobs
// exactly as the Go path computes it: ordering, threshold and filters give
// the same memories with the same similarities on every path
// (TestSearchSameEverywhere). [Store.VectorSearch] says which exact path
// runs and why; the migration report adds the index. Near-duplicate
// detection (the unique flag, similarity ≥ 0.95 within a table and room, as
// elizaOS) uses the exact path.
//
// # A database that goes away
//
// An error that says the database cannot be reached (a refused or broken
// connection, a terminated session) matches sdk.ErrUnavailable
// ([Store.ClassifyError]) and reads "the postgres database is unreachable:
// …". A write transaction that met a dead session before its COMMIT did not
// happen and runs again on a fresh connection; a failed COMMIT is never
// repeated. The pool replaces broken connections, so calls work again as
// soon as the server is back.
//
// # Bad input
//
// Every id must be a UUID (36 characters, 8-4-4-4-12 hex groups); a bad one is
// refused with an error naming the field, for example
// `memory.roomId: "x" is not a UUID`. Every string, including the strings
// inside content, metadata and names, must be valid UTF-8: encoding/json would
// otherwise replace the bad bytes silently, and gRPC refuses such strings
// anyway. NUL bytes round-trip on SQLite; PostgreSQL cannot hold them in text
// or jsonb, so there they are refused with an error naming the field. Texts
// that are index keys (an agent's name, a memory table, a log type, a cache
// key) are limited to [MaxKeyLen] bytes on both backends; every other text
// (message text, names, metadata, …) has no limit of its own. Everything
// else round-trips exactly: quotes and SQL, emoji, right-to-left text,
// control characters, megabytes. All such errors match [ErrInvalid] with
// errors.Is; errors about a missing agent or room match sdk.ErrNotFound.
package sqlstore
