package sql

import (
	"context"
	"fmt"

	"github.com/agenthost/agenthost/sdk"
)

// Version is the plugin's version.
const Version = "0.1.0"

// lazyStore is the plugin's Database until Init opens the real store: the
// manifest must say "database" before the host tells the plugin where its
// data lives.
type lazyStore struct {
	sdk.DatabaseAdapter
}

// ClassifyError lets the Database service tell a database that went away
// from a bad call (see Store.ClassifyError).
func (l *lazyStore) ClassifyError(err error) error {
	if c, ok := l.DatabaseAdapter.(interface{ ClassifyError(error) error }); ok {
		return c.ClassifyError(err)
	}
	return err
}

// New returns the sql plugin. It opens SQLite under the host's data dir, or
// PostgreSQL when the host passes POSTGRES_URL.
func New() sdk.Plugin {
	db := &lazyStore{}
	return sdk.Plugin{
		Name:        "sql",
		Version:     Version,
		Description: "The database adapter: SQLite embedded by default, PostgreSQL when POSTGRES_URL is set.",
		Aliases:     []string{"@elizaos/plugin-sql"},
		Settings: []sdk.Setting{
			{Name: "POSTGRES_URL", Description: "PostgreSQL connection URL; SQLite under the data dir when empty.", Secret: true},
		},
		Database: db,
		Init: func(ctx context.Context, host sdk.Host) error {
			if db.DatabaseAdapter != nil {
				return nil
			}
			s, err := Open(ctx, Config{DataDir: host.DataDir, URL: host.Settings["POSTGRES_URL"]})
			if err != nil {
				return fmt.Errorf("open database: %w", err)
			}
			db.DatabaseAdapter = s
			return nil
		},
	}
}
