package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/agenthost/agenthost/host"
	"github.com/agenthost/agenthost/plugins/sqlstore"
	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/character"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"
	"google.golang.org/grpc/status"
)

// dbCmd is `agenthost db`: the database of the daemon, reached through the
// sql plugin exactly as the daemon reaches it (its own process, the same
// data dir, POSTGRES_URL from the environment or .env).
func dbCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "db",
		Short: "Migrate, inspect and re-embed the database",
		Long: `The database of the daemon: SQLite in the data dir, or PostgreSQL when
POSTGRES_URL is set (in the environment or ./.env). Each command starts the
sql plugin as the daemon does.`,
		Example: `  agenthost db status
  agenthost db migrate --data-dir /var/lib/agenthost
  POSTGRES_URL=postgres://user@localhost/agents agenthost db status
  agenthost db reembed --agent Eliza`,
	}
	cmd.PersistentFlags().StringVar(&dataDir, "data-dir", ".agenthost", "folder of the database and plugin data")
	cmd.AddCommand(dbMigrateCmd(&dataDir), dbStatusCmd(&dataDir), dbReembedCmd(&dataDir))
	return cmd
}

// dbSession is a daemon without agents or HTTP server: it only starts the
// plugins a db command needs.
type dbSession struct {
	d   *host.Daemon
	env map[string]string
	log hclog.Logger
	// where names the database: its file, or its URL without the password.
	where string
}

// openDBSession opens the data dir (shared with other db commands, never
// with a daemon) and says which database the command looks at. Unless
// create is set, it refuses a database that does not exist yet rather than
// making one.
func openDBSession(out io.Writer, dataDir string, create bool, configure func(*host.Config)) (*dbSession, error) {
	env, self, err := pluginEnv()
	if err != nil {
		return nil, err
	}
	log := newLogger(env)
	// A character without plugins (the built-in default) gets the default
	// plugins, as `agenthost start` gives them.
	model, _ := chooseModelPlugin(env)
	cfg := host.Config{
		Version: versionString(), DataDir: dataDir, Env: env, Self: self, Bundled: bundledNames(), BundledAliases: bundledAliases(),
		PluginDirs: host.PluginDirs(func(k string) string { return env[k] }), Logger: log,
		DefaultPlugins: []string{"sql", "bootstrap", model},
		// With PostgreSQL the database lives elsewhere; the data dir only
		// holds the plugins' folders and the lock.
		Tool: true, NoCreate: !create && env["POSTGRES_URL"] == "",
	}
	if configure != nil {
		configure(&cfg)
	}
	where := ""
	if u := env["POSTGRES_URL"]; u != "" {
		where = redactedURL(u)
	} else {
		abs, err := filepath.Abs(dataDir)
		if err != nil {
			return nil, fmt.Errorf("data dir %s: %w", dataDir, err)
		}
		where = filepath.Join(host.PluginDir(abs, "sql"), sqlstore.FileName)
	}
	d, err := host.New(cfg)
	if err != nil {
		return nil, err
	}
	if !create && env["POSTGRES_URL"] == "" {
		if _, err := os.Stat(where); err != nil {
			d.Stop()
			return nil, fmt.Errorf("there is no database at %s yet: the daemon makes it at its first start, or run `agenthost db migrate --data-dir %s`", where, dataDir)
		}
	}
	fmt.Fprintf(out, "database: %s\n", where)
	return &dbSession{d: d, env: env, log: log, where: where}, nil
}

// redactedURL shows a database URL without its password, in the user part
// or in the query.
func redactedURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(a POSTGRES_URL that does not parse)"
	}
	q := p.Query()
	for k := range q {
		if strings.EqualFold(k, "password") {
			q.Set(k, "xxxxx")
		}
	}
	p.RawQuery = q.Encode()
	return p.Redacted()
}

// signalContext is cancelled by SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func dbMigrateCmd(dataDir *string) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply the pending migrations",
		Long: `Apply the pending migrations, each in its own transaction. Several hosts may
migrate one PostgreSQL database at once: they take turns on an advisory lock.
The daemon also migrates when it starts.`,
		Example: `  agenthost db migrate
  POSTGRES_URL=postgres://user@localhost/agents agenthost db migrate`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			s, err := openDBSession(cmd.OutOrStdout(), *dataDir, true, nil)
			if err != nil {
				return err
			}
			defer s.d.Stop()
			db, err := s.d.Database(ctx)
			if err != nil {
				return fmt.Errorf("start the database plugin: %w", err)
			}
			mctx, mcancel := context.WithTimeout(ctx, 10*time.Minute)
			defer mcancel()
			res, err := db.Migrate(mctx, &pb.MigrateRequest{})
			if err != nil {
				return fmt.Errorf("migrate: %s", statusMessage(err))
			}
			rep := res.GetReport()
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%s: applied %d migration(s); %d of %d applied\n", rep.GetBackend(), rep.GetApplied(),
				appliedCount(rep), len(rep.GetMigrations()))
			fmt.Fprintf(out, "vector search: %s\n", rep.GetVectorSearch())
			return nil
		},
	}
}

func appliedCount(rep *pb.MigrationReport) int {
	n := 0
	for _, m := range rep.GetMigrations() {
		if m.GetAppliedAt() != 0 {
			n++
		}
	}
	return n
}

func dbStatusCmd(dataDir *string) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show which migrations are applied and which are pending",
		Example: `  agenthost db status
  agenthost db status --data-dir /var/lib/agenthost --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			out := cmd.OutOrStdout()
			if asJSON {
				// The JSON names the database itself.
				out = io.Discard
			}
			s, err := openDBSession(out, *dataDir, false, nil)
			if err != nil {
				return err
			}
			defer s.d.Stop()
			db, err := s.d.Database(ctx)
			if err != nil {
				return fmt.Errorf("start the database plugin: %w", err)
			}
			res, err := db.MigrationStatus(ctx, &pb.MigrationStatusRequest{})
			if err != nil {
				return fmt.Errorf("migration status: %s", statusMessage(err))
			}
			rep := res.GetReport()
			out = cmd.OutOrStdout()
			pending := len(rep.GetMigrations()) - appliedCount(rep)
			if asJSON {
				type mig struct {
					Version   int32  `json:"version"`
					Name      string `json:"name"`
					AppliedAt int64  `json:"appliedAt"`
				}
				res := struct {
					Database     string `json:"database"`
					Backend      string `json:"backend"`
					VectorSearch string `json:"vectorSearch"`
					Pending      int    `json:"pending"`
					Migrations   []mig  `json:"migrations"`
				}{Database: s.where, Backend: rep.GetBackend(), VectorSearch: rep.GetVectorSearch(), Pending: pending, Migrations: []mig{}}
				for _, m := range rep.GetMigrations() {
					res.Migrations = append(res.Migrations, mig{m.GetVersion(), m.GetName(), m.GetAppliedAt()})
				}
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			fmt.Fprintf(out, "backend: %s\nvector search: %s\n", rep.GetBackend(), rep.GetVectorSearch())
			tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tNAME\tAPPLIED")
			for _, m := range rep.GetMigrations() {
				applied := "pending"
				if at := m.GetAppliedAt(); at != 0 {
					applied = time.UnixMilli(at).UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\n", m.GetVersion(), m.GetName(), applied)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if pending > 0 {
				fmt.Fprintf(out, "%d pending: run `agenthost db migrate` (the daemon also migrates when it starts)\n", pending)
			} else {
				fmt.Fprintln(out, "up to date")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func dbReembedCmd(dataDir *string) *cobra.Command {
	var agentName string
	var characters []string
	var batch int
	cmd := &cobra.Command{
		Use:   "reembed --agent NAME",
		Short: "Re-embed an agent's memories with its current embedding model",
		Long: `Re-embed every memory of an agent that holds an embedding, with the agent's
current TEXT_EMBEDDING model, after a change of embedding model (of size, or of
model at the same size). The agent's embedding size becomes the model's.

The agent's character is the stored one (as the daemon last ran it), or the
one of --character files with the agent's name; its plugins and settings pick
the model, as in the daemon. The command starts the sql plugin and the
agent's plugins; stop the daemon first, or run it with the new model already.
It can be interrupted and run again: it goes on with the memories not done.`,
		Example: `  agenthost db reembed --agent Eliza
  agenthost db reembed --agent Bob --character bob.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if agentName == "" {
				return errors.New("--agent NAME is required")
			}
			if batch < 1 || batch > 1000 {
				return fmt.Errorf("--batch %d: want 1 to 1000", batch)
			}
			ctx, cancel := signalContext()
			defer cancel()
			s, err := openDBSession(cmd.OutOrStdout(), *dataDir, false, func(c *host.Config) {
				c.SkipEmbeddingCheck = true
			})
			if err != nil {
				return err
			}
			defer s.d.Stop()
			ch, err := reembedCharacter(ctx, s, agentName, characters)
			if err != nil {
				return err
			}
			return reembed(ctx, cmd, s, ch, batch)
		},
	}
	cmd.Flags().StringVar(&agentName, "agent", "", "the agent's name or id")
	cmd.Flags().StringArrayVarP(&characters, "character", "c", nil, "character file of the agent (default: the stored character)")
	cmd.Flags().IntVar(&batch, "batch", 100, "memories read per database call")
	return cmd
}

// reembedCharacter finds the agent's character: in the --character files,
// else the stored one.
func reembedCharacter(ctx context.Context, s *dbSession, name string, files []string) (*sdk.Character, error) {
	for _, path := range files {
		ch, err := character.Load(path)
		if err != nil {
			return nil, err
		}
		if strings.EqualFold(ch.Name, name) || ch.AgentID() == name {
			character.ApplyEnv(ch, s.env)
			return ch, nil
		}
	}
	if len(files) > 0 {
		return nil, fmt.Errorf("no character named %q in %s", name, strings.Join(files, ", "))
	}
	db, err := s.d.Database(ctx)
	if err != nil {
		return nil, fmt.Errorf("start the database plugin: %w", err)
	}
	if _, err := db.Migrate(ctx, &pb.MigrateRequest{}); err != nil {
		return nil, fmt.Errorf("migrate: %s", statusMessage(err))
	}
	res, err := db.GetAgents(ctx, &pb.GetAgentsRequest{})
	if err != nil {
		return nil, fmt.Errorf("list the stored agents: %s", statusMessage(err))
	}
	var names []string
	for _, a := range res.GetAgents() {
		names = append(names, a.GetName())
		if strings.EqualFold(a.GetName(), name) || a.GetId() == name {
			ch, err := character.Parse(a.GetCharacterJson())
			if err != nil {
				return nil, fmt.Errorf("the stored character of agent %s: %w", a.GetName(), err)
			}
			character.ApplyEnv(ch, s.env)
			return ch, nil
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no agent %q: the database stores no agent yet", name)
	}
	return nil, fmt.Errorf("no agent %q; the database stores: %s", name, strings.Join(names, ", "))
}

func reembed(ctx context.Context, cmd *cobra.Command, s *dbSession, ch *sdk.Character, batch int) error {
	out := cmd.OutOrStdout()
	a, err := s.d.StartAgent(ctx, ch)
	if err != nil {
		return err
	}
	probe, err := a.Embed(ctx, "", true)
	if err != nil {
		return fmt.Errorf("probe the embedding model: %w", err)
	}
	dim := len(probe)
	if dim == 0 {
		return fmt.Errorf("agent %s: the embedding model returned an empty vector", a.Name)
	}
	db, err := a.Database(ctx)
	if err != nil {
		return err
	}
	// Memories embedded from now on are done; the older ones are re-embedded.
	start := time.Now().UnixMilli()
	sw, err := db.SetEmbeddingDimension(ctx, &pb.SetEmbeddingDimensionRequest{AgentId: a.ID, Dimension: int32(dim)})
	if err != nil {
		return fmt.Errorf("set the embedding size: %s", statusMessage(err))
	}
	fmt.Fprintf(out, "agent %s: embedding size %d → %d (%d memories of another size wait)\n", a.Name, sw.GetPrevious(), dim, sw.GetStale())
	done, cleared := 0, 0
	seen := map[string]bool{}
	for {
		res, err := db.GetMemoriesToReembed(ctx, &pb.GetMemoriesToReembedRequest{AgentId: a.ID, Before: start, Limit: int32(batch)})
		if err != nil {
			return fmt.Errorf("list memories to re-embed: %s", statusMessage(err))
		}
		ms := res.GetMemories()
		if len(ms) == 0 {
			break
		}
		progressed := false
		for _, m := range ms {
			if seen[m.GetId()] {
				continue
			}
			seen[m.GetId()] = true
			progressed = true
			req := &pb.UpdateMemoryRequest{AgentId: a.ID, Id: m.GetId()}
			if text := m.GetContent().GetText(); strings.TrimSpace(text) == "" {
				req.ClearEmbedding = true // nothing to embed
				cleared++
			} else {
				v, err := a.Embed(ctx, text, false)
				if err != nil {
					return fmt.Errorf("embed memory %s: %w (%d re-embedded so far; run the command again to go on)", m.GetId(), err, done)
				}
				if len(v) != dim {
					return fmt.Errorf("embed memory %s: the model returned %d values, its probe %d", m.GetId(), len(v), dim)
				}
				req.Embedding = v
			}
			if _, err := db.UpdateMemory(ctx, req); err != nil {
				return fmt.Errorf("store the embedding of memory %s: %s", m.GetId(), statusMessage(err))
			}
			done++
		}
		if !progressed {
			return fmt.Errorf("the memories to re-embed do not change (is the clock of this machine going backwards?)")
		}
		fmt.Fprintf(out, "re-embedded %d\n", done)
	}
	fmt.Fprintf(out, "agent %s: re-embedded %d memories (%d without text lost their embedding); embedding size %d\n",
		a.Name, done-cleared, cleared, dim)
	return nil
}

// statusMessage is the message of a gRPC error without its code prefix.
func statusMessage(err error) string {
	if st, ok := status.FromError(err); ok {
		return st.Message()
	}
	return err.Error()
}
