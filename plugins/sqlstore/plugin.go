package sqlstore

import (
	"context"
	"fmt"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/dbplugin"
)

// Version is the plugin's version.
const Version = "0.1.0"

// lazyStore is the plugin's Database until Init opens the real store: the
// manifest must say "database" before the host tells the plugin where its
// data lives.
type lazyStore struct {
	dbplugin.Adapter
}

// ClassifyError lets the Database service tell a database that went away
// from a bad call (see Store.ClassifyError).
func (l *lazyStore) ClassifyError(err error) error {
	if c, ok := l.Adapter.(interface{ ClassifyError(error) error }); ok {
		return c.ClassifyError(err)
	}
	return err
}

// VectorSearchSetting is the host setting that chooses how similarity
// search runs: "index" (the default) or "exact" (Config.ExactSearch).
const VectorSearchSetting = "VECTOR_SEARCH"

// New returns the sql plugin. It opens SQLite under the host's data dir, or
// PostgreSQL when the host passes POSTGRES_URL.
func New() sdk.Plugin {
	p, _ := newPlugin()
	return p
}

// newPlugin is New with the store that Init opens.
func newPlugin() (sdk.Plugin, *lazyStore) {
	db := &lazyStore{}
	log := sdk.NewLogger("sql")
	return dbplugin.Plugin(sdk.Plugin{
		Logger:      log,
		Name:        "sql",
		Version:     Version,
		Description: "The database adapter: SQLite embedded by default, PostgreSQL when POSTGRES_URL is set.",
		Aliases:     []string{"@elizaos/plugin-sql"},
		Settings: []sdk.Setting{
			{Name: "POSTGRES_URL", Description: "PostgreSQL connection URL; SQLite under the data dir when empty.", Secret: true},
		},
		Init: func(ctx context.Context, host sdk.Host) error {
			if db.Adapter != nil {
				return nil
			}
			cfg := Config{DataDir: host.DataDir, URL: host.Settings["POSTGRES_URL"], Logger: log}
			switch v := host.Settings[VectorSearchSetting]; v {
			case "", "index":
			case "exact":
				cfg.ExactSearch = true
			default:
				return fmt.Errorf("%s=%q: want index or exact", VectorSearchSetting, v)
			}
			s, err := Open(ctx, cfg)
			if err != nil {
				return fmt.Errorf("open database: %w", err)
			}
			db.Adapter = s
			return nil
		},
	}, db), db
}
