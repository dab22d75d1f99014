// Package discordtest is a Discord for tests: an HTTP server, started by
// the test on a loopback port, that speaks Discord's gateway protocol over
// WebSocket (hello, identify, ready, dispatch, heartbeat and its ack,
// resume, invalid session, reconnect, close codes) and the part of the REST
// API that a bot uses (/gateway/bot, channel messages with files, typing,
// application commands, interaction callbacks and webhooks), with Discord's
// rate-limit headers and 429 answers. A real client library runs against
// it unchanged once its API root points here (the discord plugin's
// DISCORD_API_ROOT).
//
// A test plays the users: it posts messages, edits and deletes them, adds
// reactions, adds members and guilds, invokes slash commands and clicks
// buttons, and each becomes the gateway event Discord would send. It then
// reads what the bot did from the server's records.
package discordtest

import (
	"crypto/rand"
	"encoding/hex"
	"github.com/agenthost/agenthost/internal/testwait"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

type bot struct {
	token string
	user  User
	appID string
	// revoked tokens fail REST calls with 401 and identify with 4004.
	revoked bool
	// gatewayRejects fails only identify and resume with 4004.
	gatewayRejects bool
}

// Server is a fake Discord. Its methods are safe for concurrent use.
type Server struct {
	// URL is the server's root, e.g. http://127.0.0.1:40123: the value
	// for DISCORD_API_ROOT. The REST API is under URL/api/v10/ (any
	// version is accepted) and the gateway at ws://…/gateway.
	URL string

	http *httptest.Server

	mu                sync.Mutex
	heartbeat         time.Duration
	allowedPrivileged int
	lastID            int64

	bots     map[string]*bot
	guilds   []*Guild
	channels map[string]*Channel
	messages map[string]*Message
	users    map[string]User

	conns    map[*gwConn]struct{}
	sessions []*session

	identifies, resumes, resumed, heartbeats int
	identifyIntents                          []int
	gatewayQueries                           []string

	requests         []Request
	posted           []Posted
	typing           map[string]int
	commands         map[string][]Command
	callbacks        []Callback
	webhooks         []Posted
	interactions     map[string]*Interaction
	acked            map[string]bool
	deletedOriginals []string
	nonces           map[string]string

	buckets    map[string]*bucket
	forced     map[string][]forced429
	violations []string
}

// Option configures a Server.
type Option func(*Server)

// WithHeartbeatInterval sets the interval the gateway's hello asks for.
func WithHeartbeatInterval(d time.Duration) Option { return func(s *Server) { s.heartbeat = d } }

// WithPrivilegedIntents sets which privileged intents the bot may ask for
// (GUILD_MEMBERS 1<<1, GUILD_PRESENCES 1<<8, MESSAGE_CONTENT 1<<15);
// identify with others is closed with 4014. By default all are allowed.
func WithPrivilegedIntents(mask int) Option { return func(s *Server) { s.allowedPrivileged = mask } }

// New starts a server. Close it when done.
func New(opts ...Option) *Server {
	s := &Server{
		heartbeat:         defaultHeartbeatMillis * time.Millisecond,
		allowedPrivileged: privilegedIntents,
		lastID:            1_200_000_000_000_000_000,
		bots:              map[string]*bot{},
		channels:          map[string]*Channel{},
		messages:          map[string]*Message{},
		users:             map[string]User{},
		conns:             map[*gwConn]struct{}{},
		typing:            map[string]int{},
		commands:          map[string][]Command{},
		interactions:      map[string]*Interaction{},
		acked:             map[string]bool{},
		nonces:            map[string]string{},
		buckets:           map[string]*bucket{},
		forced:            map[string][]forced429{},
	}
	for _, o := range opts {
		o(s)
	}
	s.http = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	s.URL = s.http.URL
	return s
}

// Close stops the server and drops every connection.
func (s *Server) Close() {
	s.DropConnections()
	s.http.CloseClientConnections()
	s.http.Close()
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/gateway" || r.URL.Path == "/gateway/":
		s.serveGateway(w, r)
	case strings.HasPrefix(r.URL.Path, "/api/"):
		s.serveREST(w, r)
	case strings.HasPrefix(r.URL.Path, "/files/"):
		// Files that tests hand out as attachment URLs.
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("file " + strings.TrimPrefix(r.URL.Path, "/files/")))
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) gatewayURL() string { return "ws" + strings.TrimPrefix(s.URL, "http") + "/gateway" }

// Wait waits until cond, called with nothing locked, holds; it reports
// false if it did not within timeout.
func (s *Server) Wait(timeout time.Duration, cond func() bool) bool {
	return testwait.Poll(timeout, cond)
}

// NewID returns a fresh snowflake.
func (s *Server) NewID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newIDLocked()
}

func (s *Server) newIDLocked() string {
	s.lastID += 1 + time.Now().UnixNano()%7
	return strconv.FormatInt(s.lastID, 10)
}

func (s *Server) newSessionID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func now() string { return time.Now().UTC().Format("2006-01-02T15:04:05.000000+00:00") }

// AddBot registers a bot token; its user and application are returned.
func (s *Server) AddBot(token, username string) (User, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := User{ID: s.newIDLocked(), Username: username, Discriminator: "0", Bot: true}
	app := u.ID
	s.bots[token] = &bot{token: token, user: u, appID: app}
	s.users[u.ID] = u
	return u, app
}

// RevokeToken makes a token invalid: REST calls get 401, identify and
// resume are closed with 4004, and open connections are closed with 4004.
func (s *Server) RevokeToken(token string) {
	s.mu.Lock()
	if b := s.bots[token]; b != nil {
		b.revoked = true
	}
	var conns []*gwConn
	for c := range s.conns {
		if c.sess != nil && c.sess.token == token {
			conns = append(conns, c)
		}
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close(CloseAuthFailed, "Authentication failed.")
	}
}

// RejectOnGateway makes the gateway refuse a token (4004) while REST
// still accepts it, as a proxy that does not check tokens would.
func (s *Server) RejectOnGateway(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.bots[token]; b != nil {
		b.gatewayRejects = true
	}
}

// NewUser makes a user (a person unless bot) known to the server.
func (s *Server) NewUser(username, globalName string, isBot bool) User {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := User{ID: s.newIDLocked(), Username: username, GlobalName: globalName, Discriminator: "0", Bot: isBot}
	if isBot {
		u.Discriminator = "4821"
	}
	s.users[u.ID] = u
	return u
}

// AddGuild adds a guild with a text channel "general" and the given
// members (the bots registered so far are members too). Call it before
// the bot connects to have the guild in READY; afterwards JoinGuild.
func (s *Server) AddGuild(name string, owner User, members ...User) *Guild {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := &Guild{ID: s.newIDLocked(), Name: name, OwnerID: owner.ID, JoinedAt: now()}
	g.Roles = []Role{{ID: g.ID, Name: "@everyone"}}
	general := Channel{ID: s.newIDLocked(), Type: ChannelText, GuildID: g.ID, Name: "general"}
	g.Channels = append(g.Channels, general)
	s.channels[general.ID] = &general
	seen := map[string]bool{}
	add := func(u User) {
		if seen[u.ID] {
			return
		}
		seen[u.ID] = true
		g.Members = append(g.Members, Member{User: &u, Roles: []string{}, JoinedAt: now()})
	}
	add(owner)
	for _, m := range members {
		add(m)
	}
	for _, b := range s.bots {
		add(b.user)
	}
	s.guilds = append(s.guilds, g)
	return g
}

// AddChannel adds a text channel (or, with parent set, a public thread of
// that channel) to a guild.
func (s *Server) AddChannel(guildID, name, parentID string) Channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := Channel{ID: s.newIDLocked(), Type: ChannelText, GuildID: guildID, Name: name, ParentID: parentID}
	if parentID != "" {
		c.Type = ChannelPublicThread
	}
	for _, g := range s.guilds {
		if g.ID == guildID {
			if parentID != "" {
				g.Threads = append(g.Threads, c)
			} else {
				g.Channels = append(g.Channels, c)
			}
		}
	}
	s.channels[c.ID] = &c
	return c
}

// DMChannel returns the DM channel between a user and the bots.
func (s *Server) DMChannel(u User) Channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dmLocked(u)
}

func (s *Server) dmLocked(u User) Channel {
	for _, c := range s.channels {
		if c.Type == ChannelDM && len(c.Recipients) == 1 && c.Recipients[0].ID == u.ID {
			return *c
		}
	}
	c := &Channel{ID: s.newIDLocked(), Type: ChannelDM, Recipients: []User{u}}
	s.channels[c.ID] = c
	return *c
}

// Guild returns a guild by id.
func (s *Server) Guild(id string) *Guild {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.guilds {
		if g.ID == id {
			cp := *g
			return &cp
		}
	}
	return nil
}

// Identifies, Resumes and Heartbeats count the gateway's opcodes received;
// Resumed counts the resumes that succeeded.
func (s *Server) Identifies() int { s.mu.Lock(); defer s.mu.Unlock(); return s.identifies }

// Resumes counts resume attempts.
func (s *Server) Resumes() int { s.mu.Lock(); defer s.mu.Unlock(); return s.resumes }

// Resumed counts resumes that succeeded.
func (s *Server) Resumed() int { s.mu.Lock(); defer s.mu.Unlock(); return s.resumed }

// Heartbeats counts heartbeats received.
func (s *Server) Heartbeats() int { s.mu.Lock(); defer s.mu.Unlock(); return s.heartbeats }

// IdentifyIntents lists the intents of each identify, in order.
func (s *Server) IdentifyIntents() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.identifyIntents...)
}

// GatewayQueries lists the query strings of the gateway connections.
func (s *Server) GatewayQueries() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.gatewayQueries...)
}

// Connected reports how many sessions have a live connection.
func (s *Server) Connected() int {
	s.mu.Lock()
	sessions := append([]*session(nil), s.sessions...)
	s.mu.Unlock()
	n := 0
	for _, sess := range sessions {
		sess.mu.Lock()
		if sess.conn != nil {
			n++
		}
		sess.mu.Unlock()
	}
	return n
}

// WaitConnected waits until n sessions have a live connection.
func (s *Server) WaitConnected(n int, timeout time.Duration) bool {
	return s.Wait(timeout, func() bool { return s.Connected() >= n })
}
