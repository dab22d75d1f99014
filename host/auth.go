package host

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"
)

// apiConfig is how the HTTP face is guarded. Every knob comes from the
// environment (the process environment plus .env):
//
//	AGENTHOST_API_KEY (or elizaOS's ELIZA_SERVER_AUTH_TOKEN)
//	    when set, every /api route, /ws and /metrics need it, as the
//	    X-API-KEY header or "Authorization: Bearer KEY".
//	AGENTHOST_MAX_BODY    largest request body in bytes (suffixes k, m); default 1m
//	AGENTHOST_RATE_LIMIT  requests per second per client IP (token bucket); default 20, 0 turns it off
//	AGENTHOST_RATE_BURST  the bucket's size; default 100
//	AGENTHOST_RATE_LIMIT_LOOPBACK "true" to limit clients on this machine
//	    too; by default they are not (local tools, benchmarks), while
//	    behind a trusted proxy the forwarded client IP is what counts.
//	AGENTHOST_TRUSTED_PROXIES comma-separated IPs or CIDRs of reverse
//	    proxies: only a request whose peer is one of them has its
//	    X-Forwarded-For read, and the client is the rightmost address
//	    there that is not a trusted proxy. AGENTHOST_TRUST_PROXY=true is
//	    the deprecated way to say "a proxy on this machine".
//	AGENTHOST_ALLOWED_HOSTS comma-separated host names (besides localhost,
//	    the loopback and listening addresses) that requests may name in
//	    their Host header; "*" turns the check off.
//	AGENTHOST_CORS_ORIGINS comma-separated origins allowed to call the API
//	    from a browser ("*" for any, honoured only with an API key);
//	    API_CORS_ORIGIN and CORS_ORIGIN are read too. Default: none (same
//	    origin only).
type apiConfig struct {
	apiKey  string
	maxBody int64
	rate    float64
	burst   float64
	// trustedProxies are the peers whose X-Forwarded-For is read.
	trustedProxies []netip.Prefix
	// limitLoopback applies the rate limit to 127.0.0.1 and ::1 too.
	limitLoopback bool
	corsOrigins   []string
	// corsAny: AGENTHOST_CORS_ORIGINS=* with an API key.
	corsAny bool
	// allowedHosts are the extra names a request's Host may be
	// (lowercase, without port); anyHost turns the check off.
	allowedHosts []string
	anyHost      bool
}

const defaultMaxBody = 1 << 20

func loadAPIConfig(env map[string]string) (apiConfig, []string) {
	c := apiConfig{maxBody: defaultMaxBody, rate: 20, burst: 100}
	var warnings []string
	c.apiKey = strings.TrimSpace(env["AGENTHOST_API_KEY"])
	if c.apiKey == "" {
		c.apiKey = strings.TrimSpace(env["ELIZA_SERVER_AUTH_TOKEN"])
	}
	if s := env["AGENTHOST_MAX_BODY"]; s != "" {
		n, err := parseSize(s)
		if err != nil || n < 1024 {
			warnings = append(warnings, fmt.Sprintf("AGENTHOST_MAX_BODY=%q is not a size of at least 1k (e.g. 2m); using %d bytes", s, c.maxBody))
		} else {
			c.maxBody = n
		}
	}
	if s := env["AGENTHOST_RATE_LIMIT"]; s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
			warnings = append(warnings, fmt.Sprintf("AGENTHOST_RATE_LIMIT=%q is not a number of requests per second; using %g", s, c.rate))
		} else {
			c.rate = f
		}
	}
	if s := env["AGENTHOST_RATE_BURST"]; s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f < 1 || math.IsInf(f, 0) {
			warnings = append(warnings, fmt.Sprintf("AGENTHOST_RATE_BURST=%q is not a number of at least 1; using %g", s, c.burst))
		} else {
			c.burst = f
		}
	}
	c.limitLoopback = env["AGENTHOST_RATE_LIMIT_LOOPBACK"] == "true"
	for _, s := range splitList(env["AGENTHOST_TRUSTED_PROXIES"]) {
		p, err := parsePrefix(s)
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("AGENTHOST_TRUSTED_PROXIES: %q is not an IP address or a CIDR (e.g. 10.0.0.0/8); it is left out", s))
			continue
		}
		c.trustedProxies = append(c.trustedProxies, p)
	}
	if env["AGENTHOST_TRUST_PROXY"] == "true" {
		warnings = append(warnings, "AGENTHOST_TRUST_PROXY=true is deprecated: it now means AGENTHOST_TRUSTED_PROXIES=127.0.0.0/8,::1 "+
			"(a reverse proxy on this machine); set AGENTHOST_TRUSTED_PROXIES to your proxies' addresses instead")
		c.trustedProxies = append(c.trustedProxies, netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"))
	}
	for _, k := range []string{"AGENTHOST_CORS_ORIGINS", "API_CORS_ORIGIN", "CORS_ORIGIN"} {
		for _, o := range splitList(env[k]) {
			if o = strings.TrimRight(o, "/"); o == "*" {
				c.corsAny = true
			} else if o != "" {
				c.corsOrigins = append(c.corsOrigins, o)
			}
		}
	}
	if c.corsAny && c.apiKey == "" {
		// Without a key, any origin would mean any web page the operator
		// visits drives the daemon.
		c.corsAny = false
		warnings = append(warnings, "CORS origin \"*\" is ignored without an API key: any web page could drive this daemon; "+
			"set AGENTHOST_API_KEY, or list the allowed origins in AGENTHOST_CORS_ORIGINS")
	}
	for _, h := range splitList(env["AGENTHOST_ALLOWED_HOSTS"]) {
		if h == "*" {
			c.anyHost = true
			continue
		}
		c.allowedHosts = append(c.allowedHosts, hostOnly(h))
	}
	return c, warnings
}

// splitList splits a comma-separated setting, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// parsePrefix reads a CIDR or a single address.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func parseSize(s string) (int64, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimSuffix(s, "b")
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "k"):
		mult, s = 1<<10, strings.TrimSuffix(s, "k")
	case strings.HasSuffix(s, "m"):
		mult, s = 1<<20, strings.TrimSuffix(s, "m")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

// checkKey reports whether the request carries the API key. With no key
// configured every request passes.
func (c *apiConfig) checkKey(r *http.Request) bool {
	if c.apiKey == "" {
		return true
	}
	got := r.Header.Get("X-API-KEY")
	if got == "" {
		if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
			got = strings.TrimSpace(h[7:])
		}
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(c.apiKey)) == 1
}

// guard wraps the whole mux: panics become 500s, every response gets the
// security headers, the browser rules hold (api_browser.go), CORS is
// answered, the client's rate is limited, the API key is checked and the
// request is measured.
func (s *apiState) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.d.log.Error("HTTP handler panicked", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if !rec.wrote {
					writeError(rec, http.StatusInternalServerError, "INTERNAL", "internal error; see the daemon's log")
				}
			}
			route := r.Pattern
			if route == "" {
				route = "unmatched"
			}
			s.metrics.httpReqs.WithLabelValues(route, strconv.Itoa(rec.code)).Inc()
			s.metrics.httpTime.WithLabelValues(route).Observe(time.Since(start).Seconds())
		}()
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		if !s.browserSafe(rec, r) {
			return
		}
		path := r.URL.Path
		open := path == "/healthz"
		if !open && !s.allow(s.clientIP(r)) {
			s.metrics.rateLimited.Inc()
			rec.Header().Set("Retry-After", strconv.Itoa(s.limiter.retryAfter()))
			writeError(rec, http.StatusTooManyRequests, "RATE_LIMITED", "too many requests from this client; slow down")
			return
		}
		if needsKey(path) && !s.cfg.checkKey(r) && !(path == "/ws" && s.tickets.valid(r.URL.Query().Get("ticket"))) {
			rec.Header().Set("WWW-Authenticate", `Bearer realm="agenthost"`)
			writeError(rec, http.StatusUnauthorized, "UNAUTHORIZED", "this daemon needs an API key: send it as the X-API-KEY header or as Authorization: Bearer KEY")
			return
		}
		next.ServeHTTP(rec, r)
	})
}

// needsKey: the API, the socket and the metrics need the key; the health
// check and the page shell (which asks for the key) do not.
func needsKey(path string) bool {
	return path == "/api" || strings.HasPrefix(path, "/api/") || path == "/ws" || path == "/metrics"
}

// allow spends a token of the client's bucket.
func (s *apiState) allow(ip string) bool {
	if s.limiter == nil {
		return true
	}
	if !s.cfg.limitLoopback {
		if a := net.ParseIP(ip); a != nil && a.IsLoopback() {
			return true
		}
	}
	return s.limiter.allow(ip)
}

// clientIP is the address the rate limit counts. X-Forwarded-For is read
// only from a trusted proxy, and from the right: each proxy appends the
// address it received the request from, so the rightmost address that is
// not a trusted proxy is the one no client could have written itself.
func (s *apiState) clientIP(r *http.Request) string {
	peer := r.RemoteAddr
	if host, _, err := net.SplitHostPort(peer); err == nil {
		peer = host
	}
	addr, err := netip.ParseAddr(peer)
	if err != nil || !s.trusted(addr) {
		return peer
	}
	client := addr
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop := strings.TrimSpace(hops[i])
		if hop == "" {
			continue
		}
		a, err := netip.ParseAddr(hop)
		if err != nil {
			// Garbage left of here came from the client: the last proxy
			// that wrote a good address is all that is known.
			break
		}
		client = a.Unmap()
		if !s.trusted(client) {
			break
		}
	}
	return client.String()
}

func (s *apiState) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.cfg.trustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

type statusRecorder struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.code, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController (and the WebSocket upgrade) reach
// the connection.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// rateLimiter is a token bucket per client IP. Idle buckets are forgotten,
// so the map stays as small as the set of recent clients.
type rateLimiter struct {
	rate, burst float64
	mu          sync.Mutex
	buckets     map[string]*bucket
	lastSweep   time.Time
	now         func() time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(rate, burst float64) *rateLimiter {
	if rate <= 0 {
		return nil
	}
	return &rateLimiter{rate: rate, burst: burst, buckets: map[string]*bucket{}, now: time.Now}
}

func (l *rateLimiter) allow(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.Sub(l.lastSweep) > time.Minute {
		l.lastSweep = now
		full := time.Duration(l.burst / l.rate * float64(time.Second))
		for k, b := range l.buckets {
			if now.Sub(b.last) > full {
				delete(l.buckets, k)
			}
		}
	}
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (l *rateLimiter) retryAfter() int {
	return int(math.Ceil(1 / l.rate))
}

// tickets are one-time WebSocket passes: a browser cannot put a header on
// a WebSocket, so the page asks POST /api/auth/ws-ticket (with the key)
// and opens /ws?ticket=…, which spends it. A ticket lives 60 seconds.
type ticketStore struct {
	mu sync.Mutex
	m  map[string]time.Time
}

const ticketTTL = 60 * time.Second

func (t *ticketStore) issue() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	tk := hex.EncodeToString(b)
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	for k, exp := range t.m {
		if now.After(exp) {
			delete(t.m, k)
		}
	}
	if len(t.m) > 10000 {
		clear(t.m)
	}
	t.m[tk] = now.Add(ticketTTL)
	return tk
}

// valid spends a ticket.
func (t *ticketStore) valid(tk string) bool {
	if tk == "" {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	exp, ok := t.m[tk]
	if !ok {
		return false
	}
	delete(t.m, tk)
	return time.Now().Before(exp)
}
