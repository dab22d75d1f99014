package discord

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
	"github.com/bwmarrin/discordgo"
	"github.com/gorilla/websocket"
	"github.com/hashicorp/go-hclog"
)

// The gateway intents asked for, as elizaOS asks (voice aside). Members
// and message content are privileged: a bot whose application does not
// have them enabled is refused with close code 4014, and the plugin asks
// again without them, saying what is lost.
const (
	baseIntents = discordgo.IntentsGuilds | discordgo.IntentsGuildMessages | discordgo.IntentsGuildMessageReactions |
		discordgo.IntentsDirectMessages | discordgo.IntentsDirectMessageReactions
	wantedIntents = baseIntents | discordgo.IntentsGuildMembers | discordgo.IntentsMessageContent
)

// bot is one agent's presence on Discord: its gateway session, its event
// handling and its outgoing messages.
type bot struct {
	p   *plugin
	a   *sdk.Agent
	cfg config
	log hclog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	// disconnected hears that the gateway connection ended.
	disconnected chan struct{}

	queue *serialQueue
	// typingRunning counts the typing goroutines that have not returned:
	// once it is zero, no typing request is on its way.
	typingRunning atomic.Int32
	ignores       *ignoreLog
	outbox        dirStore
	pending       dirStore // interactions awaiting their answer

	mu           sync.Mutex
	sess         *discordgo.Session
	intents      discordgo.Intent
	self         *discordgo.User
	appID        string
	readyGuilds  map[string]bool
	commandsDone bool
	failure      error
	typing       map[string]*typingLoop // by message memory id
	replies      map[string]*replyInfo  // by message memory id
	inFlight     map[string]bool        // outbox ids being delivered
	chanLocks    map[string]*sync.Mutex
	started      bool
}

func newBot(p *plugin, a *sdk.Agent, cfg config, dir string) (*bot, error) {
	b := &bot{p: p, a: a, cfg: cfg, log: a.Logger(context.Background()),
		done: make(chan struct{}), disconnected: make(chan struct{}, 1),
		queue: newSerialQueue(), intents: wantedIntents, readyGuilds: map[string]bool{},
		typing: map[string]*typingLoop{}, replies: map[string]*replyInfo{}, inFlight: map[string]bool{},
		chanLocks: map[string]*sync.Mutex{}}
	b.ignores = &ignoreLog{log: b.log}
	if dir != "" {
		b.outbox = dirStore{dir: filepath.Join(dir, "outbox")}
		b.pending = dirStore{dir: filepath.Join(dir, "interactions")}
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.sess = b.newSession()
	b.loadInteractions()
	return b, nil
}

// apiTransport sends discordgo's REST calls, which name Discord's own
// origin, to the configured API base instead. It also asks the
// authenticated /gateway/bot for the gateway address where discordgo asks
// /gateway, so the address is the root's answer for this very bot. Each
// session has its own transport: agents of one process may use different
// roots.
type apiTransport struct {
	from, to string
	base     http.RoundTripper
}

func (t *apiTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	u := req.URL.String()
	rest, ok := strings.CutPrefix(u, t.from)
	if !ok {
		return t.base.RoundTrip(req)
	}
	if req.Method == http.MethodGet {
		if path, query, _ := strings.Cut(rest, "?"); path == "gateway" {
			rest = "gateway/bot"
			if query != "" {
				rest += "?" + query
			}
		}
	}
	nu, err := url.Parse(t.to + rest)
	if err != nil {
		return nil, err
	}
	r2 := req.Clone(req.Context())
	r2.URL = nu
	r2.Host = nu.Host
	res, err := t.base.RoundTrip(r2)
	if err != nil {
		// Name the address really asked, not discord.com.
		return nil, fmt.Errorf("%s %s: %w", req.Method, nu.Redacted(), err)
	}
	return res, nil
}

// newSession makes a discordgo session. Reconnecting is this plugin's
// job, not discordgo's: discordgo would retry a refused token forever.
func (b *bot) newSession() *discordgo.Session {
	s, _ := discordgo.New("Bot " + b.cfg.token) // cannot fail
	s.Client = &http.Client{Timeout: 30 * time.Second,
		Transport: &apiTransport{from: discordgo.EndpointAPI, to: b.cfg.apiBase, base: http.DefaultTransport}}
	s.ShouldReconnectOnError = false
	s.ShouldRetryOnRateLimit = true
	s.MaxRestRetries = 3
	// Handlers only queue work, so running them in the reading goroutine
	// keeps Discord's order without blocking it.
	s.SyncEvents = true
	s.LogLevel = discordgoLevel(b.log)
	s.Identify.Intents = b.intents
	s.UserAgent = "DiscordBot (agenthost discord plugin, " + Version + ")"
	s.State.MaxMessageCount = 0
	s.AddHandler(b.onReady)
	s.AddHandler(b.onResumed)
	s.AddHandler(b.onDisconnect)
	s.AddHandler(b.onRateLimit)
	s.AddHandler(b.onGuildCreate)
	s.AddHandler(b.onGuildMemberAdd)
	s.AddHandler(b.onGuildMemberRemove)
	s.AddHandler(b.onMessageCreate)
	s.AddHandler(b.onMessageUpdate)
	s.AddHandler(b.onMessageDelete)
	s.AddHandler(b.onReactionAdd)
	s.AddHandler(b.onReactionRemove)
	s.AddHandler(b.onInteraction)
	return s
}

func (b *bot) session() *discordgo.Session {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sess
}

// checkToken asks the API root for this bot's gateway, which needs a
// valid token. A refused token is an error; anything else only delays
// going online.
func (b *bot) checkToken(ctx context.Context) ([]string, error) {
	gw, err := b.session().GatewayBot(discordgo.WithContext(ctx))
	if err != nil {
		if why := tokenRefused(err); why != "" {
			return nil, b.tokenError(why)
		}
		return []string{fmt.Sprintf("discord: could not reach Discord at %s (%v); the agent goes online on Discord when it can", b.cfg.apiBase, err)}, nil
	}
	var warnings []string
	if gw.Shards > 1 {
		warnings = append(warnings, fmt.Sprintf("discord: Discord recommends %d shards for this bot; this plugin runs one", gw.Shards))
	}
	if gw.SessionStartLimit.Total > 0 && gw.SessionStartLimit.Remaining == 0 {
		warnings = append(warnings, fmt.Sprintf("discord: the bot used up its daily gateway logins; Discord allows more in %s",
			(time.Duration(gw.SessionStartLimit.ResetAfter)*time.Millisecond).Round(time.Second)))
	}
	b.log.Debug("token accepted", "api", b.cfg.apiBase, "gateway", gw.URL)
	return warnings, nil
}

// tokenRefused says how Discord refused the token, or "".
func tokenRefused(err error) string {
	var re *discordgo.RESTError
	if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode == http.StatusUnauthorized {
		return fmt.Sprintf("the REST API answered 401 Unauthorized to %s", re.Request.URL.Path)
	}
	var ce *websocket.CloseError
	if errors.As(err, &ce) && ce.Code == 4004 {
		return "the gateway closed the connection with code 4004 (Authentication failed)"
	}
	return ""
}

func (b *bot) tokenError(why string) error {
	return fmt.Errorf("discord: agent %s: Discord refused %s (%s): the bot token is wrong or was reset; copy it again from the Discord Developer Portal (your application → Bot → Reset Token)",
		b.a.Name(), SettingToken, why)
}

// start brings the bot online in the background.
func (b *bot) start() {
	b.mu.Lock()
	b.started = true
	b.mu.Unlock()
	go b.run()
}

// stop takes the bot offline and waits for its goroutines.
func (b *bot) stop() {
	b.cancel()
	b.mu.Lock()
	started := b.started
	for id, t := range b.typing {
		t.stop()
		delete(b.typing, id)
	}
	b.mu.Unlock()
	if started {
		select {
		case <-b.done:
		case <-time.After(5 * time.Second):
			b.log.Warn("the Discord connection did not close in time")
		}
	}
	b.queue.close()
}

// run waits until the host knows the agent, delivers replies left over
// from before a crash, then keeps the gateway connection up: after a drop
// it reconnects and resumes the session, so no event is lost.
func (b *bot) run() {
	defer close(b.done)
	if !b.waitForHost() {
		return
	}
	go b.retryLoop()
	backoff := b.p.opts.backoffMin
	reconnecting := false
	for b.ctx.Err() == nil {
		select {
		case <-b.disconnected:
		default:
		}
		s := b.session()
		err := s.Open()
		// ErrWSAlreadyOpen: the connection is up and the disconnect was
		// a stray one (discordgo reports some twice).
		if err == nil || errors.Is(err, discordgo.ErrWSAlreadyOpen) {
			if err == nil && reconnecting {
				b.log.Info("reconnected to the Discord gateway")
			}
			backoff, reconnecting = b.p.opts.backoffMin, true
			select {
			case <-b.ctx.Done():
				// discordgo's Close waits a second for the close
				// handshake; nobody needs to wait for it.
				go s.Close()
				return
			case <-b.disconnected:
				b.log.Debug("the Discord gateway connection closed; reconnecting to resume the session")
				continue
			}
		}
		if b.ctx.Err() != nil || !b.afterFailure(err) {
			return
		}
		b.log.Warn("could not connect to the Discord gateway; trying again", "in", backoff, "error", err)
		select {
		case <-b.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, b.p.opts.backoffMax)
	}
}

// afterFailure decides what a failed connection attempt means; false
// means the bot stays offline.
func (b *bot) afterFailure(err error) bool {
	if why := tokenRefused(err); why != "" {
		b.fail(b.tokenError(why))
		return false
	}
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		return true
	}
	b.mu.Lock()
	intents := b.intents
	b.mu.Unlock()
	switch ce.Code {
	case 4014: // disallowed intents
		switch {
		case intents&discordgo.IntentsGuildMembers != 0:
			b.setIntents(intents &^ discordgo.IntentsGuildMembers)
			b.log.Warn("Discord refused the Server Members intent: enable it under Bot → Privileged Gateway Intents in the Developer Portal; until then members who join are not seen")
		case intents&discordgo.IntentsMessageContent != 0:
			b.setIntents(intents &^ discordgo.IntentsMessageContent)
			b.log.Warn("Discord refused the Message Content intent: enable it under Bot → Privileged Gateway Intents in the Developer Portal; until then the agent sees the text of a message only when it is mentioned or in a DM")
		default:
			b.fail(fmt.Errorf("discord: agent %s: Discord refused the gateway intents (close code 4014)", b.a.Name()))
			return false
		}
	case 4010, 4011, 4012, 4013:
		b.fail(fmt.Errorf("discord: agent %s: the gateway refused the connection: %s (close code %d)", b.a.Name(), ce.Text, ce.Code))
		return false
	case 4007, 4009: // invalid sequence, session timed out: identify anew
		b.mu.Lock()
		b.sess = b.newSession()
		b.mu.Unlock()
	}
	return true
}

func (b *bot) setIntents(i discordgo.Intent) {
	b.mu.Lock()
	b.intents = i
	b.sess.Identify.Intents = i
	b.mu.Unlock()
}

// fail reports why the bot is offline for good.
func (b *bot) fail(err error) {
	b.mu.Lock()
	b.failure = err
	b.mu.Unlock()
	b.log.Error("the agent is offline on Discord", "error", err)
}

// waitForHost waits until the host has registered the agent: the plugin
// is configured before that, and events handed over earlier would be
// refused.
func (b *bot) waitForHost() bool {
	delay := b.p.opts.hostPoll
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		_, _, err := storage.For(b.a).GetCache(ctx, "discord:online")
		cancel()
		if err == nil {
			return true
		}
		if errors.Is(err, sdk.ErrNoRuntime) {
			b.log.Error("no host runtime; the agent stays offline on Discord")
			return false
		}
		select {
		case <-b.ctx.Done():
			return false
		case <-time.After(delay):
		}
		delay = min(delay*2, time.Second)
	}
}

func (b *bot) onDisconnect(_ *discordgo.Session, _ *discordgo.Disconnect) {
	select {
	case b.disconnected <- struct{}{}:
	default:
	}
}

func (b *bot) onResumed(_ *discordgo.Session, _ *discordgo.Resumed) {
	b.log.Info("resumed the Discord gateway session")
}

func (b *bot) onRateLimit(_ *discordgo.Session, r *discordgo.RateLimit) {
	retry := time.Duration(0)
	if r.TooManyRequests != nil {
		retry = r.RetryAfter
	}
	b.log.Info("Discord rate limit: waiting before trying again", "url", r.URL, "retry_after", retry)
}

func (b *bot) onReady(s *discordgo.Session, r *discordgo.Ready) {
	b.mu.Lock()
	b.self = r.User
	app := b.cfg.appID
	if r.Application != nil && r.Application.ID != "" {
		if app != "" && app != r.Application.ID {
			b.log.Warn(SettingApplicationID+" differs from the application of the bot token; using the token's", "setting", app, "gateway", r.Application.ID)
		}
		app = r.Application.ID
	}
	b.appID = app
	for _, g := range r.Guilds {
		b.readyGuilds[g.ID] = true
	}
	register := !b.commandsDone
	b.commandsDone = true
	b.mu.Unlock()
	name := ""
	if r.User != nil {
		name = r.User.Username
	}
	b.log.Info("online on Discord", "bot", name, "guilds", len(r.Guilds), "intents", int(s.Identify.Intents))
	if register && app != "" {
		b.queue.push("commands", b.registerCommands)
	}
}

func (b *bot) selfUser() *discordgo.User {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.self
}

// The gateway state's objects are shared with the goroutine that reads
// the gateway, which updates them in place; the accessors below return
// copies made under the state's lock.

func copyChannel(c *discordgo.Channel) *discordgo.Channel {
	cp := *c
	cp.Recipients = nil
	for _, u := range c.Recipients {
		if u != nil {
			uc := *u
			cp.Recipients = append(cp.Recipients, &uc)
		}
	}
	cp.Messages, cp.PermissionOverwrites, cp.Members = nil, nil, nil
	return &cp
}

func copyMember(m *discordgo.Member) *discordgo.Member {
	cp := *m
	if m.User != nil {
		u := *m.User
		cp.User = &u
	}
	cp.Roles = append([]string(nil), m.Roles...)
	return &cp
}

// snapshotGuild copies what the plugin reads of a guild.
func snapshotGuild(g *discordgo.Guild) *discordgo.Guild {
	cp := &discordgo.Guild{ID: g.ID, Name: g.Name, OwnerID: g.OwnerID, SystemChannelID: g.SystemChannelID}
	for _, c := range g.Channels {
		if c != nil {
			cp.Channels = append(cp.Channels, copyChannel(c))
		}
	}
	for _, c := range g.Threads {
		if c != nil {
			cp.Threads = append(cp.Threads, copyChannel(c))
		}
	}
	for _, m := range g.Members {
		if m != nil {
			cp.Members = append(cp.Members, copyMember(m))
		}
	}
	return cp
}

func (b *bot) stateChannel(id string) (*discordgo.Channel, bool) {
	st := b.session().State
	c, err := st.Channel(id)
	if err != nil {
		return nil, false
	}
	st.RLock()
	defer st.RUnlock()
	return copyChannel(c), true
}

// stateGuild returns a guild's channels and threads, without members.
func (b *bot) stateGuild(id string) (*discordgo.Guild, bool) {
	st := b.session().State
	g, err := st.Guild(id)
	if err != nil {
		return nil, false
	}
	st.RLock()
	defer st.RUnlock()
	cp := snapshotGuild(&discordgo.Guild{ID: g.ID, Name: g.Name, OwnerID: g.OwnerID, SystemChannelID: g.SystemChannelID,
		Channels: g.Channels, Threads: g.Threads})
	return cp, true
}

func (b *bot) stateMember(guildID, userID string) (*discordgo.Member, bool) {
	st := b.session().State
	m, err := st.Member(guildID, userID)
	if err != nil {
		return nil, false
	}
	st.RLock()
	defer st.RUnlock()
	return copyMember(m), true
}

func (b *bot) stateRoleName(guildID, roleID string) (string, bool) {
	st := b.session().State
	r, err := st.Role(guildID, roleID)
	if err != nil {
		return "", false
	}
	st.RLock()
	defer st.RUnlock()
	return r.Name, true
}

// channel finds a channel in the gateway's state, else asks the API.
func (b *bot) channel(id string) (*discordgo.Channel, error) {
	if c, ok := b.stateChannel(id); ok {
		return c, nil
	}
	s := b.session()
	c, err := s.Channel(id, discordgo.WithContext(b.ctx))
	if err != nil {
		return nil, err
	}
	// Discord sends no event for DM channels; keep them so the next
	// message there asks nothing. (Guild channels come with their guild.)
	if c.Type == discordgo.ChannelTypeDM || c.Type == discordgo.ChannelTypeGroupDM {
		_ = s.State.ChannelAdd(copyChannel(c))
	}
	return c, nil
}
