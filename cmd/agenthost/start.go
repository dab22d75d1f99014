package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/agenthost/agenthost/host"
	"github.com/agenthost/agenthost/sdk"
	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"
)

func startCmd() *cobra.Command {
	var characters []string
	var port int
	var dataDir string
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Run the daemon: the agents, their plugins and the HTTP API",
		Long: `Run the daemon. With no --character it runs a built-in default character
with the model plugin chosen from the environment (offline when no model key is set).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
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
				ch, err := sdk.LoadCharacter(path)
				if err != nil {
					return err
				}
				ch.ApplyEnv(env)
				chars = append(chars, ch)
			}
			var defaults []string
			if len(chars) == 0 {
				ch := sdk.DefaultCharacter()
				ch.ApplyEnv(env)
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
				log.Info("no character given: running the default character", "name", chars[0].Name, "model_plugin", model, "because", why)
			}
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find the agenthost executable: %w", err)
			}
			hostAddr := env["SERVER_HOST"]
			if hostAddr == "" {
				hostAddr = "127.0.0.1"
			}
			d, err := host.New(host.Config{
				Version: versionString(), Addr: net.JoinHostPort(hostAddr, strconv.Itoa(port)), DataDir: dataDir,
				Characters: chars, DefaultCharacter: len(characters) == 0, Env: env, Self: self, Bundled: bundledNames(), BundledAliases: bundledAliases(),
				PluginDirs: host.PluginDirs(func(k string) string { return env[k] }), DefaultPlugins: defaults,
				Logger: log,
			})
			if err != nil {
				return err
			}
			return run(d, log)
		},
	}
	cmd.Flags().StringArrayVarP(&characters, "character", "c", nil, "character file in elizaOS's JSON format (repeat for several agents)")
	cmd.Flags().IntVarP(&port, "port", "p", 3000, "HTTP port (or SERVER_PORT)")
	cmd.Flags().StringVar(&dataDir, "data-dir", ".agenthost", "folder for the database and plugin data")
	return cmd
}

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
	if err := d.Start(ctx); err != nil {
		d.Stop()
		return err
	}
	<-ctx.Done()
	log.Info("shutting down")
	d.Stop()
	return nil
}
