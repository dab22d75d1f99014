package telegram

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agenthost/agenthost/sdk"
	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"
	"github.com/hashicorp/go-hclog"
)

// Version is the plugin's version.
const Version = "0.1.0"

// Source is the platform tag of Telegram messages.
const Source = "telegram"

// pollTimeout is how long one getUpdates call waits for an update.
const pollTimeout = 25 * time.Second

// allowedUpdates are the updates the bot asks for. Reactions must be asked
// for by name: Telegram does not send them by default.
var allowedUpdates = []string{
	models.AllowedUpdateMessage, models.AllowedUpdateEditedMessage, models.AllowedUpdateChannelPost,
	models.AllowedUpdateEditedChannelPost, models.AllowedUpdateMessageReaction, models.AllowedUpdateCallbackQuery,
	models.AllowedUpdateMyChatMember,
}

// telegram is the plugin: one connector per agent that has a bot token (a
// nil one for an agent without).
type telegram struct {
	conns *sdk.Instances[*connector]
}

// New returns the telegram plugin.
func New() sdk.Plugin { return newTelegram().definition() }

func newTelegram() *telegram {
	t := &telegram{}
	t.conns = &sdk.Instances[*connector]{New: t.connect, Close: (*connector).stop}
	return t
}

func (t *telegram) definition() sdk.Plugin {
	return sdk.Plugin{
		Name:        "telegram",
		Version:     Version,
		Description: "Telegram connector: the agent talks in private chats, groups, forum topics and channels through a bot.",
		Aliases:     []string{"@elizaos/plugin-telegram"},
		Settings: []sdk.Setting{
			{Name: "TELEGRAM_BOT_TOKEN", Description: "The bot's token from @BotFather. Without it the agent is not on Telegram.", Secret: true},
			{Name: "TELEGRAM_API_ROOT", Description: "The Bot API's root URL, for a self-hosted Bot API server or a proxy.", Default: defaultAPIRoot, Endpoint: true},
			{Name: "TELEGRAM_ALLOWED_CHATS", Description: `Chats the agent listens to: a JSON array of chat ids (as elizaOS reads it), or ids separated by commas. Empty means every chat.`},
			{Name: "TELEGRAM_WEBHOOK_URL", Description: "Receive updates by webhook instead of long polling: the public https URL at which the daemon is reached (a proxy in front of it); updates arrive at /hooks/telegram/{agentId}.", Endpoint: true},
			{Name: "TELEGRAM_WEBHOOK_SECRET", Description: "The secret Telegram sends with each webhook call; derived from the token when unset.", Secret: true},
			{Name: "TELEGRAM_SHOULD_RESPOND_ONLY_TO_MENTIONS", Description: "true: in groups, hand the agent only messages that mention the bot, reply to it or command it.", Default: "false"},
			{Name: "TELEGRAM_START_MESSAGE", Description: "The answer to /start; a greeting from the character when unset."},
			{Name: "TELEGRAM_HELP_MESSAGE", Description: "The answer to /help; a short guide when unset."},
		},
		Sources:   []sdk.Source{{Name: Source, Send: t.send}},
		Events:    []sdk.EventHandler{{Type: sdk.EventRunEnded, Handle: t.runEnded}},
		Instances: t.conns,
		HTTP:      t.serveHTTP,
	}
}

// connOf returns the agent's connector, nil when the agent is not on
// Telegram.
func (t *telegram) connOf(a *sdk.Agent) *connector {
	c, _ := t.conns.Get(a)
	return c
}

// config is one agent's Telegram settings.
type config struct {
	token         string
	apiRoot       string
	allowed       map[string]bool // chat ids and @usernames; nil means every chat
	webhookURL    string
	webhookSecret string
	onlyMentions  bool
	startMessage  string
	helpMessage   string
}

func readConfig(a *sdk.Agent) (config, error) {
	s := a.Config()
	c := config{
		token:         s.String("TELEGRAM_BOT_TOKEN"),
		apiRoot:       s.String("TELEGRAM_API_ROOT"),
		webhookURL:    s.String("TELEGRAM_WEBHOOK_URL"),
		webhookSecret: s.String("TELEGRAM_WEBHOOK_SECRET"),
		onlyMentions:  s.Bool("TELEGRAM_SHOULD_RESPOND_ONLY_TO_MENTIONS"),
		// The messages are the user's text, spaces and all.
		startMessage: a.Setting("TELEGRAM_START_MESSAGE"),
		helpMessage:  a.Setting("TELEGRAM_HELP_MESSAGE"),
	}
	if err := s.Err(); err != nil {
		return c, err
	}
	if c.apiRoot != "" && !strings.HasPrefix(c.apiRoot, "http://") && !strings.HasPrefix(c.apiRoot, "https://") {
		return c, fmt.Errorf("TELEGRAM_API_ROOT=%q is not an http(s) URL", c.apiRoot)
	}
	if c.webhookURL != "" && !strings.HasPrefix(c.webhookURL, "https://") && !strings.HasPrefix(c.webhookURL, "http://") {
		return c, fmt.Errorf("TELEGRAM_WEBHOOK_URL=%q is not an https URL", c.webhookURL)
	}
	allowed, err := parseAllowedChats(a.Setting("TELEGRAM_ALLOWED_CHATS"))
	if err != nil {
		return c, err
	}
	c.allowed = allowed
	if c.webhookSecret == "" {
		sum := sha256.Sum256([]byte("agenthost telegram webhook\x00" + a.ID + "\x00" + c.token))
		c.webhookSecret = hex.EncodeToString(sum[:24])
	}
	return c, nil
}

// parseAllowedChats reads TELEGRAM_ALLOWED_CHATS: a JSON array of ids
// (numbers or strings), as elizaOS reads it, or a comma-separated list.
func parseAllowedChats(v string) (map[string]bool, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, nil
	}
	var items []string
	if strings.HasPrefix(v, "[") {
		var raw []any
		if err := json.Unmarshal([]byte(v), &raw); err != nil {
			return nil, fmt.Errorf("TELEGRAM_ALLOWED_CHATS is not a JSON array of chat ids: %v", err)
		}
		for _, x := range raw {
			switch x := x.(type) {
			case float64:
				items = append(items, strconv.FormatInt(int64(x), 10))
			case string:
				items = append(items, x)
			default:
				return nil, fmt.Errorf("TELEGRAM_ALLOWED_CHATS: %v is not a chat id", x)
			}
		}
	} else {
		items = strings.Split(v, ",")
	}
	out := map[string]bool{}
	for _, it := range items {
		it = strings.TrimSpace(it)
		if it == "" {
			continue
		}
		if strings.HasPrefix(it, "@") {
			out[strings.ToLower(it)] = true
			continue
		}
		if _, err := strconv.ParseInt(it, 10, 64); err != nil {
			return nil, fmt.Errorf("TELEGRAM_ALLOWED_CHATS: %q is neither a chat id nor an @username", it)
		}
		out[it] = true
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// connect makes an agent's connector when the agent is configured: the
// token is checked with Telegram, and updates start coming in. An agent
// without a token gets none, and a warning.
func (t *telegram) connect(ctx context.Context, a *sdk.Agent) (*connector, []string, error) {
	cfg, err := readConfig(a)
	if err != nil {
		return nil, nil, err
	}
	if cfg.token == "" {
		return nil, []string{fmt.Sprintf("TELEGRAM_BOT_TOKEN is not set: agent %s is not on Telegram", a.Name())}, nil
	}
	for id, other := range t.conns.All() {
		if other != nil && other.cfg.token == cfg.token {
			return nil, nil, fmt.Errorf("agent %s has the same TELEGRAM_BOT_TOKEN as agent %s (%s): one bot can serve one agent", a.Name(), other.agent.Name(), id)
		}
	}
	c, err := newConnector(a, cfg)
	if err != nil {
		return nil, nil, err
	}
	warnings, err := c.start(ctx)
	if err != nil {
		c.cancel()
		return nil, nil, err
	}
	return c, warnings, nil
}

// runEnded stops the typing indicator of the run's room: the agent is done
// thinking, whether it answered or not.
func (t *telegram) runEnded(ctx context.Context, a *sdk.Agent, ev *sdk.Event) error {
	c := t.connOf(a)
	if c == nil {
		return nil
	}
	room := ""
	if ev.Message != nil {
		room = ev.Message.RoomID
	}
	if r, ok := ev.Payload["roomId"].(string); ok && r != "" {
		room = r
	}
	if room != "" {
		c.typing.stopRoom(room)
	}
	return nil
}

// connector is one agent's bot.
type connector struct {
	agent *sdk.Agent
	cfg   config
	api   *botAPI
	log   hclog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	typing *typingSet

	mu         sync.Mutex
	me         *models.User
	dead       error // set when the token was refused
	chats      map[int64]bool
	seenTopics map[string]bool
	topics     map[string]string // "chat-thread" → topic name
	replyKeys  *lru              // memory id → "chat:message"
}

func newConnector(a *sdk.Agent, cfg config) (*connector, error) {
	log := a.Logger(context.Background())
	api, err := newBotAPI(cfg.token, cfg.apiRoot, log)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &connector{agent: a, cfg: cfg, api: api, log: log, ctx: ctx, cancel: cancel, done: make(chan struct{}),
		chats: map[int64]bool{}, seenTopics: map[string]bool{}, topics: map[string]string{}, replyKeys: newLRU(20000)}
	c.typing = newTypingSet(c)
	return c, nil
}

// start checks the token and starts receiving updates. A token Telegram
// refuses stops the agent with an error that says so; Telegram being out
// of reach does not: the connector keeps trying in the background.
func (c *connector) start(ctx context.Context) ([]string, error) {
	var warnings []string
	hctx, cancel := context.WithTimeout(ctx, 12*time.Second)
	err := c.hello(hctx)
	cancel()
	if err != nil {
		if kind, _ := classify(err); kind == errRevoked {
			return nil, revokedError(c.agent.Name(), err, c.api.scrub)
		}
		warnings = append(warnings, fmt.Sprintf("telegram is out of reach for now (%s); agent %s will come online on Telegram when it answers",
			c.api.scrub(err.Error()), c.agent.Name()))
	}
	go c.run()
	return warnings, nil
}

// hello asks the Bot API who the bot is.
func (c *connector) hello(ctx context.Context) error {
	var me *models.User
	bo := newBackoff()
	for {
		u, err := c.api.b.GetMe(ctx)
		if err == nil {
			me = u
			break
		}
		kind, wait := classify(err)
		switch kind {
		case errTransient:
			wait = bo.wait()
		case errRateLimited:
		default:
			return err
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return err
		}
		if !sleep(ctx, wait) {
			return err
		}
	}
	c.mu.Lock()
	c.me = me
	c.mu.Unlock()
	c.log.Info("telegram bot online", "bot", "@"+me.Username, "id", me.ID, "mode", c.mode())
	return nil
}

func (c *connector) mode() string {
	if c.cfg.webhookURL != "" {
		return "webhook"
	}
	return "long polling"
}

func (c *connector) bot() *models.User {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.me
}

// run receives updates until the agent stops.
func (c *connector) run() {
	defer close(c.done)
	bo := newBackoff()
	for c.bot() == nil {
		err := c.hello(c.ctx)
		if err == nil {
			break
		}
		kind, _ := classify(err)
		if kind == errRevoked {
			c.revoked(err)
			return
		}
		if c.ctx.Err() != nil {
			return
		}
		wait := bo.wait()
		c.log.Warn("telegram is out of reach; trying again", "in", wait, "error", c.api.scrub(err.Error()))
		if !sleep(c.ctx, wait) {
			return
		}
	}
	go c.setCommands()
	if c.cfg.webhookURL != "" {
		c.keepWebhook()
		return
	}
	c.poll()
}

// revoked reports a refused token once, loudly, and stops the connector:
// retrying a revoked token only fills the log.
func (c *connector) revoked(err error) {
	c.mu.Lock()
	first := c.dead == nil
	if first {
		c.dead = revokedError(c.agent.Name(), err, c.api.scrub)
	}
	c.mu.Unlock()
	if first {
		c.log.Error(c.dead.Error())
		c.cancel()
	}
}

func (c *connector) stop() {
	c.cancel()
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
	}
	c.typing.stopAll()
}

// setCommands lists /start and /help in Telegram's command menu.
func (c *connector) setCommands() {
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	name := c.agent.Name()
	_, err := c.api.b.SetMyCommands(ctx, &bot.SetMyCommandsParams{Commands: []models.BotCommand{
		{Command: "start", Description: "Start talking to " + name},
		{Command: "help", Description: "What " + name + " can do"},
	}})
	if err != nil {
		c.log.Debug("could not set the bot's commands", "error", c.api.scrub(err.Error()))
	}
}

// allowedChat applies TELEGRAM_ALLOWED_CHATS.
func (c *connector) allowedChat(chat models.Chat) bool {
	if c.cfg.allowed == nil {
		return true
	}
	if c.cfg.allowed[strconv.FormatInt(chat.ID, 10)] {
		return true
	}
	return chat.Username != "" && c.cfg.allowed["@"+strings.ToLower(chat.Username)]
}

// lru is a bounded map that forgets the oldest keys first.
type lru struct {
	mu    sync.Mutex
	max   int
	order []string
	m     map[string]string
}

func newLRU(max int) *lru { return &lru{max: max, m: map[string]string{}} }

func (l *lru) put(k, v string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.m[k]; !ok {
		l.order = append(l.order, k)
	}
	l.m[k] = v
	for len(l.order) > l.max {
		delete(l.m, l.order[0])
		l.order = l.order[1:]
	}
}

func (l *lru) get(k string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok := l.m[k]
	return v, ok
}
