package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/agenthost/agenthost/internal/contract"
	"github.com/agenthost/agenthost/internal/memtrim"
	"github.com/agenthost/agenthost/internal/sysmon"
	"github.com/agenthost/agenthost/sdk/character"

	"github.com/agenthost/agenthost/host"
	"github.com/agenthost/agenthost/host/cluster"
	"github.com/agenthost/agenthost/sdk"
	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"
)

func startCmd() *cobra.Command {
	var characters []string
	var port int
	var dataDir string
	var insecureNoAuth bool
	var attach []string
	var nodeID string
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Run the daemon: the agents, their plugins and the HTTP API",
		Long: `Run the daemon: the agents, each plugin in its own process, the HTTP API, the
WebSocket and the web page (http://127.0.0.1:3000/), until Ctrl-C or SIGTERM.

Which agents run: those of the --character files, plus the agents stored in
the data dir (created over the API, or run before). Without --character, the
stored agents run; on a first start (nothing stored) a built-in default
character, Eliza, with the model plugin chosen from the environment: openai
with OPENAI_API_KEY or OLLAMA_API_ENDPOINT, else offline (no network, no key).
The log's "agents" line says which run and why.

Plugin binaries dropped into the plugin folders while the daemon runs are
taken within two seconds; a replaced binary is upgraded in place with no
message lost; SIGHUP (or "agenthost plugins reload") looks at once. With a
plugins.lock in the working folder ("agenthost plugins lock"), only the
binaries it pins run. --attach NAME=LINE uses a plugin process its author
started with AGENTHOST_PLUGIN_DEBUG=1 (under a debugger, say) instead of
starting one: LINE is what that process printed.

` + startEnvHelp,
		Example: `  agenthost start
  agenthost start --character eliza.json --character bob.json
  agenthost start --port 8080 --data-dir /var/lib/agenthost
  SERVER_HOST=0.0.0.0 AGENTHOST_API_KEY=secret agenthost start
  POSTGRES_URL=postgres://user@localhost/agents LOG_LEVEL=debug agenthost start
  agenthost start --attach 'weather={"network":"unix","address":"/tmp/agenthost-debug-1/plugin2","pid":4242,"protocol":1}'
  POSTGRES_URL=postgres://db/agents AGENTHOST_NATS_URL=nats://10.0.0.9:4222 agenthost start --node-id a`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// The runtime reads GODEBUG once, as the process starts: the
			// daemon starts again, same process, with its monitor kept
			// awake (internal/sysmon).
			if err := sysmon.Reexec(); err != nil {
				fmt.Fprintf(os.Stderr, "agenthost: could not restart with GODEBUG=%s (%v); going on without it\n", sysmon.Setting, err)
			}
			env, err := loadEnv()
			if err != nil {
				return err
			}
			log := newLogger(env)
			if !cmd.Flags().Changed("port") {
				if p := env["SERVER_PORT"]; p != "" {
					n, err := strconv.Atoi(p)
					if err != nil || n < 0 || n > 65535 {
						return fmt.Errorf("SERVER_PORT=%q is not a port number", p)
					}
					port = n
				}
			}
			var chars []*sdk.Character
			for _, path := range characters {
				ch, err := character.Load(path)
				if err != nil {
					return err
				}
				character.ApplyEnv(ch, env)
				chars = append(chars, ch)
			}
			var defaults []string
			if len(chars) == 0 {
				ch := character.Default()
				character.ApplyEnv(ch, env)
				chars = append(chars, ch)
			}
			model, why := chooseModelPlugin(env)
			defaults = []string{"sql", "bootstrap", model}
			if env["TELEGRAM_BOT_TOKEN"] != "" {
				// As elizaOS's default character does: a bot token in the
				// environment brings the agent online on Telegram.
				defaults = append(defaults, "telegram")
			}
			if env["DISCORD_API_TOKEN"] != "" {
				// Likewise for Discord.
				defaults = append(defaults, "discord")
			}
			if len(characters) == 0 {
				// Which agents run is the daemon's to say (its "agents" line):
				// those stored in the data dir, or on a first start this one.
				log.Info("no --character given: the data dir's stored agents run, or the default character when it stores none",
					"default_character", chars[0].Name, "model_plugin", model, "because", why)
			}
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find the agenthost executable: %w", err)
			}
			attached, err := host.ParseAttach(append([]string{env[contract.AttachEnv]}, attach...)...)
			if err != nil {
				return err
			}
			hostAddr := env["SERVER_HOST"]
			if hostAddr == "" {
				hostAddr = "127.0.0.1"
			}
			clusterCfg, err := cluster.FromEnv(env, nodeID, cluster.DefaultNodeID(strconv.Itoa(port)))
			if err != nil {
				return err
			}
			d, err := host.New(host.Config{
				Version: versionString(), Addr: net.JoinHostPort(hostAddr, strconv.Itoa(port)), DataDir: dataDir,
				Characters: chars, DefaultCharacter: len(characters) == 0, Env: env, Self: self, Bundled: bundledNames(), BundledAliases: bundledAliases(),
				PluginDirs: host.PluginDirs(func(k string) string { return env[k] }), DefaultPlugins: defaults,
				Logger: log, InsecureNoAuth: insecureNoAuth, Attach: attached, Cluster: clusterCfg, OwnProcess: true,
			})
			if err != nil {
				return err
			}
			// Between bursts of messages the daemon gives its garbage back;
			// each plugin process does the same (sdk.Serve).
			memtrim.Start()
			return run(d, log)
		},
	}
	cmd.Flags().StringArrayVarP(&characters, "character", "c", nil, "character file in elizaOS's JSON format (repeat for several agents)")
	cmd.Flags().IntVarP(&port, "port", "p", 3000, "HTTP port (or SERVER_PORT)")
	cmd.Flags().StringVar(&dataDir, "data-dir", ".agenthost", "folder for the database and plugin data")
	cmd.Flags().StringVar(&nodeID, "node-id", "", "this node's id in a cluster (or AGENTHOST_NODE_ID; default host name and port)")
	cmd.Flags().BoolVar(&insecureNoAuth, "insecure-no-auth", false,
		"serve a non-loopback address (SERVER_HOST) without AGENTHOST_API_KEY: anyone who reaches it drives the daemon")
	cmd.Flags().StringArrayVar(&attach, "attach", nil,
		"NAME=LINE: use the plugin process that printed LINE (started with AGENTHOST_PLUGIN_DEBUG=1) as plugin NAME (repeat for several)")
	return cmd
}

// startEnvHelp lists the environment the daemon reads; a test keeps it
// complete.
const startEnvHelp = `Environment (also read from ./.env; a variable set in the shell wins):
  SERVER_HOST                      interface to listen on (default 127.0.0.1)
  SERVER_PORT                      port when --port is not given (default 3000)
  POSTGRES_URL                     PostgreSQL instead of SQLite in the data dir
  PGLITE_DATA_DIR, DATABASE_URL    passed to the database plugin (elizaOS's names)
  VECTOR_SEARCH                    exact: similarity search without the vector
                                   indexes (default index)
  LOG_LEVEL, AGENTHOST_LOG_LEVEL   trace, debug, info (default), warn or error
  AGENTHOST_LOG_FORMAT             json: one JSON object per log line
  AGENTHOST_API_KEY                the key /api, /ws and /metrics require
                                   (or ELIZA_SERVER_AUTH_TOKEN); none: open
  AGENTHOST_MAX_BODY               largest request body (default 1m)
  AGENTHOST_RATE_LIMIT             requests per second per client IP (default 20,
                                   0 off); AGENTHOST_RATE_BURST (default 100)
  AGENTHOST_RATE_LIMIT_LOOPBACK    true: limit clients on this machine too
  AGENTHOST_TRUST_PROXY            true: the client IP is X-Forwarded-For's
  AGENTHOST_CORS_ORIGINS           origins allowed to call the API, comma-separated
                                   or * (API_CORS_ORIGIN and CORS_ORIGIN too)
  AGENTHOST_ALLOWED_HOSTS          more Host names the API answers to, besides
                                   localhost and the listen address
  AGENTHOST_TRUSTED_PROXIES        proxies (IPs or CIDRs) whose X-Forwarded-For
                                   names the client
  AGENTHOST_PLUGIN_PATH            more folders with agenthost-plugin-NAME
                                   executables (besides ./plugins and
                                   ~/.agenthost/plugins), separated by ":"
  AGENTHOST_ALLOWED_ENDPOINTS      addresses a character may point a plugin at
                                   (OPENAI_BASE_URL, ...) and still get the
                                   daemon's keys for it, comma-separated
  AGENTHOST_PROVIDER_TIMEOUT       how long a plugin's providers may take for
                                   one message (default 30s)
  AGENTHOST_PLUGIN_LIMITS          limits of every plugin process (default
                                   memory=1g,files=1024,processes=256, and
                                   for third-party plugins calls=125 Runtime
                                   calls a second per CPU);
                                   AGENTHOST_PLUGIN_LIMITS_<NAME> for one
  AGENTHOST_PLUGIN_ALLOW_<NAME>    more paths one plugin may read (PATH) or
                                   write (PATH:rw), comma-separated
  AGENTHOST_PLUGIN_CONFINE         off: run plugins without Landlock and limits
                                   (AGENTHOST_PLUGIN_CONFINE_<NAME> for one)
  AGENTHOST_PLUGIN_ATTACH          NAME=LINE reattach lines, as --attach takes
                                   them, separated by spaces or ";"
  AGENTHOST_PLUGIN_WATCH_INTERVAL  how often the plugin folders are looked at
                                   for new binaries (default 500ms; 0: only on
                                   SIGHUP and "agenthost plugins reload")
  AGENTHOST_NATS_URL               NATS servers (comma-separated, JetStream on):
                                   makes the daemon a cluster node; needs
                                   POSTGRES_URL
  AGENTHOST_CLUSTER                the cluster's name, prefix of its NATS
                                   subjects, stream and buckets (default agenthost)
  AGENTHOST_NODE_ID                this node's id (or --node-id; default host
                                   name and port)
  AGENTHOST_CLUSTER_LEASE_TTL      how long an agent's lease outlives its node
                                   (default 3s): failover takes about this long
  OPENAI_API_KEY, OLLAMA_API_ENDPOINT  the default character's model plugin
  TELEGRAM_BOT_TOKEN, DISCORD_API_TOKEN  bring the default character online there
  CHARACTER.<NAME>.<KEY>           a secret of the character NAME
  GOGC, GOMEMLIMIT, GODEBUG        reach the plugin processes too; GODEBUG gains
                                   schedtrace=2147483647 (the Go runtime's monitor
                                   kept from deep sleep: less CPU per message),
                                   unless it names schedtrace (=0 turns it off)
  GOMAXPROCS                       reaches them too; unset, a Go plugin runs on
                                   half the daemon's threads, and the daemon on
                                   one while at most one message awaits its answer,
                                   with its plugins' threads and its own held on
                                   one CPU meanwhile
A plugin gets a variable of the environment only when its manifest declares
it as a setting (e.g. OPENAI_API_KEY for the openai plugin), and only after
the character's secrets and settings.`

// chooseModelPlugin picks the default agent's model plugin from the keys in
// the environment, as elizaOS does.
func chooseModelPlugin(env map[string]string) (string, string) {
	if env["OPENAI_API_KEY"] != "" {
		if _, ok := bundled["openai"]; ok {
			return "openai", "OPENAI_API_KEY is set"
		}
	}
	if env["OLLAMA_API_ENDPOINT"] != "" {
		if _, ok := bundled["openai"]; ok {
			return "openai", "OLLAMA_API_ENDPOINT is set (the openai plugin speaks Ollama's OpenAI-compatible API)"
		}
	}
	return "offline", "no model API key is set (neither OPENAI_API_KEY nor OLLAMA_API_ENDPOINT)"
}

func run(d *host.Daemon, log hclog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// SIGHUP has the daemon look at its plugin folders now.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if _, err := d.ReloadPlugins(ctx, ""); err != nil {
					log.Error("SIGHUP: could not look at the plugin folders", "error", err)
				}
			}
		}
	}()
	if err := d.Start(ctx); err != nil {
		d.Stop()
		if ctx.Err() != nil {
			// Asked to stop while starting: a stop like any other.
			log.Info("shutting down before every agent had started")
			return nil
		}
		return err
	}
	<-ctx.Done()
	log.Info("shutting down")
	d.Stop()
	return nil
}
