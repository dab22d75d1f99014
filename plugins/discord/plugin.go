package discord

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/agenthost/agenthost/sdk"
	"github.com/hashicorp/go-hclog"
)

// Version is the plugin's version.
const Version = "0.1.0"

// Source is the message source this plugin receives from and sends to.
const Source = "discord"

// Events this plugin emits besides the core ones (WORLD_JOINED,
// ENTITY_JOINED, REACTION_RECEIVED, MESSAGE_DELETED). The names are
// elizaOS's where it has one.
const (
	EventWorldConnected  = "WORLD_CONNECTED"
	EventEntityLeft      = "ENTITY_LEFT"
	EventReactionRemoved = "DISCORD_REACTION_REMOVED"
	EventMessageUpdated  = "DISCORD_MESSAGE_UPDATED"
	EventInteraction     = "DISCORD_INTERACTION"
)

// options are the plugin's timings and logger; tests shorten the timings.
type options struct {
	log hclog.Logger
	// typingEvery refreshes the typing indicator, which Discord shows for
	// ten seconds; typingMax ends it for a run that never finishes.
	typingEvery, typingMax time.Duration
	// backoffMin and backoffMax bound the pause between connection
	// attempts.
	backoffMin, backoffMax time.Duration
	// retryEvery is how often undelivered replies are tried again;
	// giveUpAfter is when they are dropped.
	retryEvery, giveUpAfter time.Duration
	// hostPoll is how often the plugin checks whether the host knows the
	// agent yet, before it goes online.
	hostPoll time.Duration
}

func defaultOptions() options {
	return options{
		typingEvery: 8 * time.Second, typingMax: 3 * time.Minute,
		backoffMin: time.Second, backoffMax: 2 * time.Minute,
		retryEvery: 5 * time.Second, giveUpAfter: time.Hour,
		hostPoll: 100 * time.Millisecond,
	}
}

// plugin is one plugin process: one Discord connection per agent (a nil
// bot for an agent without a token).
type plugin struct {
	opts options
	log  hclog.Logger
	bots *sdk.Instances[*bot]

	mu      sync.Mutex
	dataDir string
}

// New returns the plugin.
func New() sdk.Plugin {
	o := defaultOptions()
	o.log = sdk.NewLogger("discord")
	return newPlugin(o).definition()
}

func newPlugin(o options) *plugin {
	if o.log == nil {
		o.log = hclog.NewNullLogger()
	}
	p := &plugin{opts: o, log: o.log}
	p.bots = &sdk.Instances[*bot]{New: p.connect, Close: (*bot).stop}
	return p
}

func (p *plugin) definition() sdk.Plugin {
	return sdk.Plugin{
		Name:    "discord",
		Version: Version,
		Description: "Discord connector: the agent answers in guild channels, threads and DMs, " +
			"with slash commands, reactions and Discord's rate limits honoured.",
		Aliases: []string{"@elizaos/plugin-discord", "plugin-discord"},
		Settings: []sdk.Setting{
			{Name: SettingToken, Description: "The bot token (Developer Portal → Bot). Without it the plugin does nothing for the agent.", Secret: true},
			{Name: SettingApplicationID, Description: "The application id, for slash commands; by default the one the gateway reports."},
			{Name: SettingChannelIDs, Description: "Comma list of the guild channels the agent reads and writes (threads follow their channel); empty means all. Also settings.discord.allowedChannelIds."},
			{Name: SettingListenChannelIDs, Description: "Comma list of channels whose messages are remembered but never answered."},
			{Name: SettingIgnoreBots, Description: "Ignore messages of other bots. Also settings.discord.shouldIgnoreBotMessages.", Default: "true"},
			{Name: SettingIgnoreDMs, Description: "Ignore direct messages. Also settings.discord.shouldIgnoreDirectMessages.", Default: "false"},
			{Name: SettingOnlyMentions, Description: "In guild channels, answer only messages that mention the bot or reply to it. Also settings.discord.shouldRespondOnlyToMentions.", Default: "false"},
			{Name: SettingAPIRoot, Description: "Another root for Discord's REST API (a rate-limit proxy, a test server); the gateway address comes from its /gateway/bot answer.", Default: "https://discord.com", Endpoint: true},
		},
		Sources:   []sdk.Source{{Name: Source, Send: p.send}},
		Events:    []sdk.EventHandler{{Type: sdk.EventRunEnded, Handle: p.runEnded}},
		Init:      p.init,
		Logger:    p.log,
		Instances: p.bots,
	}
}

func (p *plugin) init(_ context.Context, h sdk.Host) error {
	// Here, not in New: the host builds the definition too, to read its
	// aliases, and must not have its discordgo log redirected.
	bridgeDiscordgoLog(p.log)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dataDir = h.DataDir
	return nil
}

// botOf returns the agent's bot, nil when the agent is not on Discord.
func (p *plugin) botOf(a *sdk.Agent) *bot {
	b, _ := p.bots.Get(a)
	return b
}

// connect makes an agent's bot when the agent is configured: it checks the
// agent's token with Discord and brings the agent online in the
// background. A token Discord refuses is an error, so the agent does not
// start believing it is on Discord; Discord being unreachable is a
// warning, and the plugin keeps trying.
func (p *plugin) connect(ctx context.Context, a *sdk.Agent) (*bot, []string, error) {
	cfg, warnings, err := parseConfig(a)
	if err != nil {
		return nil, warnings, err
	}
	if cfg.token == "" {
		return nil, append(warnings, "discord: "+SettingToken+" is not set, so the agent is not on Discord (set it in the character's secrets or the environment)"), nil
	}
	for _, other := range p.bots.All() {
		if other != nil && other.cfg.token == cfg.token {
			warnings = append(warnings, fmt.Sprintf("discord: agent %s uses the same bot token; both would answer every message", other.a.Name()))
		}
	}
	p.mu.Lock()
	dataDir := p.dataDir
	p.mu.Unlock()
	dir := ""
	if dataDir != "" {
		dir = filepath.Join(dataDir, "discord", a.ID)
	} else {
		warnings = append(warnings, "discord: the host gave no data directory; replies in flight are not kept across a crash")
	}
	b, err := newBot(p, a, cfg, dir)
	if err != nil {
		return nil, warnings, err
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	w, err := b.checkToken(cctx)
	if err != nil {
		b.stop()
		return nil, warnings, err
	}
	b.start()
	return b, append(warnings, w...), nil
}

// errNotConfigured is returned when the host routes a message to an agent
// that has no Discord connection.
var errNotConfigured = errors.New("the agent has no Discord bot (" + SettingToken + " is not set)")

func (p *plugin) send(ctx context.Context, a *sdk.Agent, t sdk.Target, c sdk.Content) ([]string, error) {
	b := p.botOf(a)
	if b == nil {
		return nil, fmt.Errorf("discord: %w", errNotConfigured)
	}
	return b.send(ctx, t, c)
}

// runEnded stops the typing indicator of the run's message and clears a
// slash command that got no answer.
func (p *plugin) runEnded(_ context.Context, a *sdk.Agent, ev *sdk.Event) error {
	b := p.botOf(a)
	if b == nil {
		return nil
	}
	id, _ := ev.Payload["messageId"].(string)
	if id == "" && ev.Message != nil {
		id = ev.Message.ID
	}
	if id != "" {
		b.runEnded(id)
	}
	return nil
}
