package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dialect is what differs between the backends. Everything else (queries,
// migrations, validation) is written once.
type dialect struct {
	// name is reported as MigrationReport.Backend.
	name string
	// rebind turns the '?' placeholders of a query into the backend's.
	rebind func(q string) string
	// ddl replaces the type tokens of the migrations ({{json}}, …).
	ddl *strings.Replacer
	// allowNUL says whether text and JSON can hold U+0000.
	allowNUL bool
	// forUpdate and forShare are appended to a SELECT that reads a row the
	// transaction is about to change or depends on. SQLite needs none: its
	// write transactions begin IMMEDIATE and exclude each other.
	forUpdate, forShare string
	// serializeWrites makes the Store run its write transactions one at a
	// time inside the process (SQLite has a single writer anyway).
	serializeWrites bool
	// tableExists is a query with one parameter, the table name, that
	// returns a count.
	tableExists string
	// lockMigrations takes a lock that spans processes, on conn, and
	// returns the function that releases it.
	lockMigrations func(ctx context.Context, conn *sql.Conn) (unlock func(), err error)
	// retryable reports an error after which the whole transaction may be
	// run again (a deadlock or a serialization failure).
	retryable func(err error) bool
	// uniqueViolation reports a unique-constraint error.
	uniqueViolation func(err error) bool
	// nulReason completes "contains a NUL byte, …" when !allowNUL.
	nulReason string
	// strpos names the function (haystack, needle) that returns the
	// 1-based position of needle in haystack, or 0.
	strpos string
	// octetLength formats an expression that is the length in bytes of
	// the text %s (NUL bytes included).
	octetLength string
	// jsonIsString formats a condition that the member of the JSON object
	// in column content named by the parameter %s is a string.
	jsonIsString string
}

// Type tokens of the migrations.
var ddlTokens = []string{"{{id}}", "{{text}}", "{{json}}", "{{blob}}", "{{bool}}", "{{int}}", "{{bigint}}", "{{serial}}", "{{true}}", "{{false}}", "{{strict}}"}

func replacer(types ...string) *strings.Replacer {
	if len(types) != len(ddlTokens) {
		panic("sql: dialect types do not match ddlTokens")
	}
	pairs := make([]string, 0, 2*len(types))
	for i, t := range types {
		pairs = append(pairs, ddlTokens[i], t)
	}
	return strings.NewReplacer(pairs...)
}

var sqliteDialect = &dialect{
	name:   "sqlite",
	rebind: func(q string) string { return q },
	// STRICT tables make SQLite check column types as PostgreSQL does.
	ddl:             replacer("TEXT", "TEXT", "TEXT", "BLOB", "INTEGER", "INTEGER", "INTEGER", "INTEGER PRIMARY KEY AUTOINCREMENT", "1", "0", " STRICT"),
	allowNUL:        true,
	serializeWrites: true,
	tableExists:     `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`,
	lockMigrations: func(context.Context, *sql.Conn) (func(), error) {
		// Each migration runs in a BEGIN IMMEDIATE transaction that
		// re-checks schema_migrations; that is the lock.
		return func() {}, nil
	},
	retryable:    func(error) bool { return false },
	strpos:       "instr",
	octetLength:  "length(CAST(%s AS BLOB))",
	jsonIsString: "json_type(content, '$.' || %s) = 'text'",
	uniqueViolation: func(err error) bool {
		var se *sqlite.Error
		if !errors.As(err, &se) {
			return false
		}
		c := se.Code()
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	},
}

// migrationLockKey is the first half of the PostgreSQL advisory lock taken
// around migrations; the second half is a hash of the current schema, so
// stores in different schemas of one database do not wait for each other.
const migrationLockKey = 0x61676e74 // "agnt"

var postgresDialect = &dialect{
	name:      "postgres",
	rebind:    func(q string) string { return sqlx.Rebind(sqlx.DOLLAR, q) },
	ddl:       replacer("TEXT", "TEXT", "JSONB", "BYTEA", "BOOLEAN", "INTEGER", "BIGINT", "BIGSERIAL PRIMARY KEY", "TRUE", "FALSE", ""),
	forUpdate: " FOR UPDATE",
	forShare:  " FOR SHARE",
	tableExists: `SELECT count(*) FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_name = ?`,
	lockMigrations: func(ctx context.Context, conn *sql.Conn) (func(), error) {
		const lock = `SELECT pg_advisory_lock($1, hashtext(current_schema()))`
		if _, err := conn.ExecContext(ctx, lock, migrationLockKey); err != nil {
			return nil, fmt.Errorf("take the migration lock: %w", err)
		}
		return func() {
			const unlock = `SELECT pg_advisory_unlock($1, hashtext(current_schema()))`
			if _, err := conn.ExecContext(context.Background(), unlock, migrationLockKey); err != nil {
				// A session lock dies with its session: make sure the pool
				// does not keep this connection.
				_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			}
		}, nil
	},
	retryable: func(err error) bool {
		c := sqlState(err)
		return c == "40001" || c == "40P01" // serialization_failure, deadlock_detected
	},
	uniqueViolation: func(err error) bool { return sqlState(err) == "23505" },
	nulReason:       "which PostgreSQL cannot store in text or jsonb",
	strpos:          "strpos",
	octetLength:     "octet_length(%s)",
	jsonIsString:    "jsonb_typeof(content -> CAST(%s AS TEXT)) = 'string'",
}

// sqlState returns the SQLSTATE code of a PostgreSQL error, or "".
func sqlState(err error) string {
	var e interface{ SQLState() string }
	if errors.As(err, &e) {
		return e.SQLState()
	}
	return ""
}
