package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
)

// vectorSupport says how vector search runs on a store.
type vectorSupport struct {
	// write: memories.embedding_vec exists (PostgreSQL with pgvector) and
	// every write keeps it equal to the embedding blob.
	write bool
	// search: the server picks the candidates of a search with pgvector.
	search bool
	// typ is the schema-qualified vector type, op the qualified <=>.
	typ, op string
	// desc is what MigrationReport.VectorSearch says.
	desc string
}

// vectorSlack widens, in cosine distance, what the server's float32
// arithmetic keeps, so that no memory the exact float64 similarity would
// keep is lost at a threshold.
const vectorSlack = 1e-4

// vectorExtra is how many candidates beyond the count the server returns
// for the exact re-ranking, against near-ties at the cut.
const vectorExtra = 16

// vectors returns the store's current vector support.
func (s *Store) vectors() *vectorSupport {
	if v := s.vec.Load(); v != nil {
		return v
	}
	return &vectorSupport{desc: "in Go"}
}

// VectorSearch says how similarity search runs: "pgvector VERSION", or "in
// Go" with the reason pgvector is not used.
func (s *Store) VectorSearch() string { return s.vectors().desc }

// distance is the cosine distance of embedding_vec to one parameter, with
// a zero vector (NaN in pgvector) at distance 1, where the Go path puts it
// (similarity 0).
func (v *vectorSupport) distance() string {
	return `COALESCE(NULLIF(embedding_vec ` + v.op + ` ?::` + v.typ + `, 'NaN'::float8), 1)`
}

// vectorText is v in pgvector's text form. float32 values are printed with
// the shortest representation that reads back as the same float32.
func vectorText(v []float32) string {
	if len(v) == 0 {
		return ""
	}
	b := make([]byte, 0, len(v)*10+2)
	b = append(b, '[')
	for i, x := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendFloat(b, float64(x), 'g', -1, 32)
	}
	return string(append(b, ']'))
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// pgVectorExtension returns the schema and version of the installed vector
// extension, or "" when it is not installed in this database.
func pgVectorExtension(ctx context.Context, r runner) (schema, version string, err error) {
	err = r.queryRow(ctx, `SELECT n.nspname, e.extversion FROM pg_extension e
		JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector'`).Scan(&schema, &version)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", nil
	}
	return schema, version, err
}

// detectVectors decides from the database how vector search runs.
func (s *Store) detectVectors(ctx context.Context, r runner) error {
	if s.d.name != "postgres" {
		s.vec.Store(&vectorSupport{desc: "in Go (SQLite has no vector extension)"})
		return nil
	}
	schema, version, err := pgVectorExtension(ctx, r)
	if err != nil {
		return err
	}
	if schema == "" {
		var avail int
		if err := r.queryRow(ctx, `SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'`).Scan(&avail); err != nil {
			return err
		}
		why := "the server has no vector extension (pgvector)"
		if avail > 0 {
			why = "the vector extension is not created in this database yet (Migrate creates it)"
		}
		s.vec.Store(&vectorSupport{desc: "in Go: " + why})
		return nil
	}
	var col int
	err = r.queryRow(ctx, `SELECT count(*) FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = 'memories' AND column_name = 'embedding_vec'`).Scan(&col)
	if err != nil {
		return err
	}
	if col == 0 {
		s.vec.Store(&vectorSupport{desc: "in Go: pgvector " + version + " is installed but memories.embedding_vec is missing (Migrate adds it)"})
		return nil
	}
	v := &vectorSupport{write: true, search: !s.noPGVector,
		typ: quoteIdent(schema) + ".vector", op: "OPERATOR(" + quoteIdent(schema) + ".<=>)"}
	if v.search {
		v.desc = "pgvector " + version
	} else {
		v.desc = "in Go: pgvector " + version + " is installed but turned off for this store"
	}
	s.vec.Store(v)
	return nil
}

// afterMigrate runs after the numbered migrations, under the migration
// lock. On PostgreSQL it uses pgvector when the server has it: it creates
// the extension (in the schema public when there is one, so that stores in
// other schemas share it), adds memories.embedding_vec and fills it from
// the stored blobs. None of that is a numbered migration: the extension
// may be installed on the server after the database was created, and a
// server without it must keep working. A failure here is not an error of
// Migrate: search stays in Go and VectorSearch says why.
func (s *Store) afterMigrate(ctx context.Context, conn *sql.Conn) error {
	r := runner{q: conn, d: s.d}
	if s.d.name == "postgres" {
		if why := s.setUpPGVector(ctx, conn); why != "" {
			s.vec.Store(&vectorSupport{desc: "in Go: " + why})
			return nil
		}
	}
	return s.detectVectors(ctx, r)
}

// setUpPGVector returns why pgvector cannot be used, or "".
func (s *Store) setUpPGVector(ctx context.Context, conn *sql.Conn) string {
	r := runner{q: conn, d: s.d}
	schema, _, err := pgVectorExtension(ctx, r)
	if err != nil {
		return "cannot read pg_extension: " + err.Error()
	}
	if schema == "" {
		var avail, public int
		if err := r.queryRow(ctx, `SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'`).Scan(&avail); err != nil {
			return "cannot read pg_available_extensions: " + err.Error()
		}
		if avail == 0 {
			return "the server has no vector extension (pgvector)"
		}
		if err := r.queryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname = 'public'`).Scan(&public); err != nil {
			return err.Error()
		}
		target := "current_schema()"
		in := ""
		if public > 0 {
			in = " SCHEMA public"
			target = "public"
		}
		_, cerr := conn.ExecContext(ctx, `CREATE EXTENSION IF NOT EXISTS vector`+in)
		// Another process may have created it meanwhile (a unique
		// violation): what counts is whether it is there now.
		if schema, _, err = pgVectorExtension(ctx, r); err != nil || schema == "" {
			if cerr == nil {
				cerr = err
			}
			return fmt.Sprintf("CREATE EXTENSION vector (in %s) failed: %v", target, cerr)
		}
	}
	typ := quoteIdent(schema) + ".vector"
	if _, err := conn.ExecContext(ctx, `ALTER TABLE memories ADD COLUMN IF NOT EXISTS embedding_vec `+typ); err != nil {
		return "cannot add memories.embedding_vec: " + err.Error()
	}
	if err := s.backfillVectors(ctx, conn, typ); err != nil {
		return "cannot fill memories.embedding_vec: " + err.Error()
	}
	return ""
}

// backfillVectors copies the blobs of the memories whose embedding_vec is
// missing (stored before pgvector was there), a thousand per transaction.
func (s *Store) backfillVectors(ctx context.Context, conn *sql.Conn, typ string) error {
	for {
		type row struct {
			seq int64
			v   string
		}
		var batch []row
		err := s.writeOn(ctx, conn, func(r runner) error {
			batch = batch[:0]
			rows, err := r.query(ctx, `SELECT seq, embedding FROM memories
				WHERE embedding_dim > 0 AND embedding_vec IS NULL ORDER BY seq LIMIT 1000`+s.d.forUpdate)
			if err != nil {
				return err
			}
			for rows.Next() {
				var x row
				var b []byte
				if err := rows.Scan(&x.seq, &b); err != nil {
					rows.Close()
					return err
				}
				x.v = vectorText(decodeVector(b))
				batch = append(batch, x)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			for _, x := range batch {
				if _, err := r.exec(ctx, `UPDATE memories SET embedding_vec = ?::`+typ+` WHERE seq = ?`, x.v, x.seq); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(batch) < 1000 {
			return nil
		}
	}
}

// searchPG is SearchMemories with pgvector: the server ranks the filtered
// rows by cosine distance (exact, no approximate index) and returns the
// best count+vectorExtra; their similarity is then computed here exactly as
// the Go path does, and the threshold and the order (similarity, then the
// later-stored first) are applied to those values. Both paths therefore
// return the same memories with the same similarities.
func (s *Store) searchPG(ctx context.Context, r runner, vs *vectorSupport, agentID string, q storage.SearchQuery, count int) ([]sdk.Memory, error) {
	w := searchFilters(agentID, q)
	w.add("embedding_vec IS NOT NULL")
	args := append([]any{vectorText(q.Embedding)}, w.args...)
	outer := ""
	if q.Threshold != 0 {
		outer = ` WHERE d <= ?`
		args = append(args, 1-q.Threshold+vectorSlack)
	}
	args = append(args, count+vectorExtra)
	// OFFSET 0 keeps the filters inside: the distance is computed only for
	// rows of the query's dimension.
	rows, err := r.query(ctx, `SELECT seq FROM (SELECT seq, `+vs.distance()+` AS d FROM memories WHERE `+w.String()+
		` OFFSET 0) c`+outer+` ORDER BY d, seq DESC LIMIT ?`, args...)
	if err != nil {
		return nil, err
	}
	var cands []ranked
	for rows.Next() {
		var c ranked
		if err := rows.Scan(&c.seq); err != nil {
			rows.Close()
			return nil, err
		}
		cands = append(cands, c)
	}
	err = rows.Err()
	rows.Close()
	if err != nil || len(cands) == 0 {
		return nil, err
	}
	bySeq, err := s.loadSeqs(ctx, r, agentID, cands)
	if err != nil {
		return nil, err
	}
	qn := norm(q.Embedding)
	type scored struct {
		m sdk.Memory
		c ranked
	}
	kept := make([]scored, 0, len(cands))
	for _, c := range cands {
		m, ok := bySeq[c.seq]
		if !ok { // deleted in between
			continue
		}
		c.sim = cosine(q.Embedding, qn, m.Embedding)
		if q.Threshold != 0 && c.sim < q.Threshold {
			continue
		}
		m.Similarity = c.sim
		kept = append(kept, scored{m: m, c: c})
	}
	sort.Slice(kept, func(i, j int) bool { return kept[i].c.better(kept[j].c) })
	if len(kept) > count {
		kept = kept[:count]
	}
	out := make([]sdk.Memory, len(kept))
	for i := range kept {
		out[i] = kept[i].m
	}
	return out, nil
}

// cosine is cosineEncoded over a decoded vector, with the same arithmetic,
// so that both give the same value for the same stored vector.
func cosine(q []float32, qNorm float64, v []float32) float64 {
	if len(v) != len(q) || qNorm == 0 {
		return 0
	}
	var dot, nb float64
	for i, x := range q {
		y := float64(v[i])
		dot += float64(x) * y
		nb += y * y
	}
	if nb == 0 {
		return 0
	}
	return dot / (qNorm * math.Sqrt(nb))
}
