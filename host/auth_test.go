package host

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestAuthKey(t *testing.T) {
	t.Parallel()
	for _, envName := range []string{"AGENTHOST_API_KEY", "ELIZA_SERVER_AUTH_TOKEN"} {
		t.Run(envName, func(t *testing.T) {
			td := startTestDaemon(t, daemonOpt{env: map[string]string{envName: "k3y"}})
			td.key = "k3y"
			// Every /api route refuses a request without the key or with a
			// wrong one.
			for _, r := range td.d.apiMux().routes {
				path := strings.NewReplacer("{agentId}", "Eliza", "{roomId}", "5f4f0a40-2c1e-4c5b-9d7e-1a2b3c4d5e6f",
					"{memoryId}", "5f4f0a40-2c1e-4c5b-9d7e-1a2b3c4d5e6f", "{runId}", "5f4f0a40-2c1e-4c5b-9d7e-1a2b3c4d5e6f", "{name}", "sql").Replace(r.Path)
				if r.Path == "/healthz" {
					continue
				}
				for _, key := range []string{"", "wrong"} {
					code, env := td.doKey(r.Method, path, nil, key)
					if code != http.StatusUnauthorized || env.code() != "UNAUTHORIZED" {
						t.Errorf("%s %s with key %q: want 401, got %d %s", r.Method, path, key, code, env.code())
					}
				}
			}
			// The key as a header and as a bearer token.
			td.ok(200, "GET", "/api/agents", nil, nil)
			req, _ := http.NewRequest("GET", td.url+"/api/agents", nil)
			req.Header.Set("Authorization", "Bearer k3y")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != 200 {
				t.Errorf("bearer: %d", res.StatusCode)
			}
			// /healthz and the page shell stay open; the page asks for the key.
			for _, p := range []string{"/healthz", "/", "/assets/app.js"} {
				res, err := http.Get(td.url + p)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				if res.StatusCode != 200 {
					t.Errorf("%s: %d", p, res.StatusCode)
				}
			}
			// The WebSocket needs the key too: as a header, or a one-time ticket.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			wsURL := "ws" + strings.TrimPrefix(td.url, "http") + "/ws"
			if _, res, err := websocket.Dial(ctx, wsURL, nil); err == nil || res == nil || res.StatusCode != 401 {
				t.Fatalf("/ws without the key: err %v, response %v", err, res)
			}
			c, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: http.Header{"X-Api-Key": {"k3y"}}})
			if err != nil {
				t.Fatalf("/ws with the key: %v", err)
			}
			c.CloseNow()
			var tk struct {
				Ticket string `json:"ticket"`
			}
			td.ok(200, "POST", "/api/auth/ws-ticket", nil, &tk)
			c, _, err = websocket.Dial(ctx, wsURL+"?ticket="+tk.Ticket, nil)
			if err != nil {
				t.Fatalf("/ws with a ticket: %v", err)
			}
			c.CloseNow()
			if _, res, err := websocket.Dial(ctx, wsURL+"?ticket="+tk.Ticket, nil); err == nil || res.StatusCode != 401 {
				t.Fatalf("a ticket is good once: %v", err)
			}
		})
	}
}

func TestRateLimitAndCORS(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOpt{env: map[string]string{"AGENTHOST_RATE_LIMIT": "1", "AGENTHOST_RATE_BURST": "5",
		"AGENTHOST_RATE_LIMIT_LOOPBACK": "true", "AGENTHOST_CORS_ORIGINS": "http://app.example"}})
	limited := 0
	for i := 0; i < 20; i++ {
		code, env := td.do("GET", "/api/version", nil)
		if code == http.StatusTooManyRequests {
			if env.code() != "RATE_LIMITED" {
				t.Fatalf("429 code %s", env.code())
			}
			limited++
		}
	}
	if limited < 10 {
		t.Errorf("with a burst of 5 at 1/s, most of 20 quick requests should be refused; %d were", limited)
	}
	// The health check is not limited.
	code, _ := td.do("GET", "/healthz", nil)
	if code != 200 {
		t.Errorf("healthz under rate limit: %d", code)
	}

	// CORS: the allowed origin gets the headers and its preflight; others do not.
	pre := func(origin string) *http.Response {
		req, _ := http.NewRequest("OPTIONS", td.url+"/api/agents", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	if res := pre("http://app.example"); res.StatusCode != 204 || res.Header.Get("Access-Control-Allow-Origin") != "http://app.example" ||
		!strings.Contains(res.Header.Get("Access-Control-Allow-Headers"), "X-API-KEY") {
		t.Errorf("allowed preflight: %d %v", res.StatusCode, res.Header)
	}
	if res := pre("http://evil.example"); res.StatusCode != 403 || res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("other origin preflight: %d %v", res.StatusCode, res.Header)
	}
}

func TestRateLimiter(t *testing.T) {
	t.Parallel()
	now := time.Unix(0, 0)
	l := newRateLimiter(2, 3)
	l.now = func() time.Time { return now }
	for i := 0; i < 3; i++ {
		if !l.allow("a") {
			t.Fatalf("request %d within the burst refused", i)
		}
	}
	if l.allow("a") {
		t.Fatal("over the burst allowed")
	}
	if !l.allow("b") {
		t.Fatal("another client shares the bucket")
	}
	now = now.Add(500 * time.Millisecond)
	if !l.allow("a") || l.allow("a") {
		t.Fatal("half a second at 2/s should refill one token")
	}
	now = now.Add(time.Hour)
	l.allow("c")
	if _, ok := l.buckets["a"]; ok {
		t.Error("idle buckets should be forgotten")
	}
	// A client on this machine is not limited unless asked.
	s := &apiState{limiter: newRateLimiter(1, 1)}
	for i := 0; i < 5; i++ {
		if !s.allow("127.0.0.1") || !s.allow("::1") {
			t.Fatal("loopback client limited")
		}
	}
	if !s.allow("192.0.2.7") || s.allow("192.0.2.7") {
		t.Fatal("a remote client should be limited")
	}
	s.cfg.limitLoopback = true
	if !s.allow("127.0.0.1") || s.allow("127.0.0.1") {
		t.Fatal("AGENTHOST_RATE_LIMIT_LOOPBACK should limit loopback clients")
	}
	if newRateLimiter(0, 10) != nil {
		t.Error("rate 0 turns the limit off")
	}
}

func TestAPIConfig(t *testing.T) {
	t.Parallel()
	c, warn := loadAPIConfig(map[string]string{"AGENTHOST_MAX_BODY": "2m", "AGENTHOST_RATE_LIMIT": "x", "CORS_ORIGIN": "http://a/, http://b"})
	if c.maxBody != 2<<20 || c.rate != 20 || len(warn) != 1 || len(c.corsOrigins) != 2 || c.corsOrigins[0] != "http://a" {
		t.Errorf("config %+v, warnings %v", c, warn)
	}
	if _, warn := loadAPIConfig(map[string]string{"AGENTHOST_MAX_BODY": "12"}); len(warn) != 1 {
		t.Error("a tiny body limit should be refused")
	}
}

// TestForwardedForRightmostUntrusted: behind trusted proxies the client is
// the rightmost X-Forwarded-For address that is not a proxy; whatever a
// client writes left of that (or sends without a proxy) changes nothing.
func TestForwardedForRightmostUntrusted(t *testing.T) {
	t.Parallel()
	c, warn := loadAPIConfig(map[string]string{"AGENTHOST_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.10, ::1, nonsense"})
	if len(c.trustedProxies) != 3 || len(warn) != 1 || !strings.Contains(warn[0], "nonsense") {
		t.Fatalf("proxies %v, warnings %v", c.trustedProxies, warn)
	}
	s := &apiState{cfg: c}
	for _, x := range []struct {
		peer string
		xff  []string
		want string
	}{
		{"198.51.100.4:5000", []string{"1.2.3.4"}, "198.51.100.4"},                      // not from a proxy: XFF ignored
		{"10.1.2.3:5000", nil, "10.1.2.3"},                                              // a proxy without XFF
		{"10.1.2.3:5000", []string{"203.0.113.7"}, "203.0.113.7"},                       // one proxy
		{"10.1.2.3:5000", []string{"1.1.1.1, 203.0.113.7"}, "203.0.113.7"},              // a forged entry left of the real one
		{"10.1.2.3:5000", []string{"1.1.1.1", "203.0.113.7, 10.9.9.9"}, "203.0.113.7"},  // two proxies, two headers
		{"192.0.2.10:80", []string{"203.0.113.7, 192.0.2.10, 10.0.0.1"}, "203.0.113.7"}, // a chain of trusted proxies
		{"10.1.2.3:5000", []string{"203.0.113.7, garbage"}, "10.1.2.3"},                 // garbage from the client side
		{"10.1.2.3:5000", []string{"10.0.0.9, 10.0.0.8"}, "10.0.0.9"},                   // only proxies: the farthest
		{"[::1]:5000", []string{"2001:db8::1"}, "2001:db8::1"},                          // IPv6
		{"[::ffff:10.0.0.1]:5000", []string{"::ffff:203.0.113.8"}, "203.0.113.8"},       // mapped addresses
		{"10.1.2.3:5000", []string{"127.0.0.1, 203.0.113.7"}, "203.0.113.7"},            // a client posing as loopback
		{"10.1.2.3:5000", []string{"203.0.113.7, 127.0.0.1"}, "127.0.0.1"},              // loopback is not a trusted proxy here
	} {
		r, _ := http.NewRequest("GET", "/", nil)
		r.RemoteAddr = x.peer
		for _, v := range x.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := s.clientIP(r); got != x.want {
			t.Errorf("peer %s, X-Forwarded-For %q: client %s, want %s", x.peer, x.xff, got, x.want)
		}
	}

	// The deprecated switch means "a proxy on this machine", and says so.
	c, warn = loadAPIConfig(map[string]string{"AGENTHOST_TRUST_PROXY": "true"})
	if len(warn) != 1 || !strings.Contains(warn[0], "AGENTHOST_TRUSTED_PROXIES") {
		t.Errorf("AGENTHOST_TRUST_PROXY should warn: %v", warn)
	}
	s = &apiState{cfg: c}
	r, _ := http.NewRequest("GET", "/", nil)
	r.RemoteAddr, r.Header["X-Forwarded-For"] = "127.0.0.1:1", []string{"9.9.9.9, 203.0.113.7"}
	if got := s.clientIP(r); got != "203.0.113.7" {
		t.Errorf("AGENTHOST_TRUST_PROXY=true: client %s", got)
	}

	// Through the daemon: the test client is the proxy on this machine. A
	// client that forges a new leftmost address with every request is
	// still one client to the rate limit.
	td := startTestDaemon(t, daemonOpt{env: map[string]string{"AGENTHOST_TRUSTED_PROXIES": "127.0.0.1", "AGENTHOST_RATE_LIMIT": "1", "AGENTHOST_RATE_BURST": "3"}})
	get := func(xff string) int {
		req, _ := http.NewRequest("GET", td.url+"/api/version", nil)
		req.Header.Set("X-Forwarded-For", xff)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	limited := 0
	for i := 0; i < 12; i++ {
		if get(fmt.Sprintf("198.51.100.%d, 203.0.113.7", i)) == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited < 6 {
		t.Errorf("a client forging X-Forwarded-For escaped the rate limit: %d of 12 refused", limited)
	}
	if code := get("203.0.113.99"); code != 200 {
		t.Errorf("another client behind the proxy has its own bucket: %d", code)
	}
	// Without trusted proxies the header is not read: loopback clients are
	// not limited, whatever they claim to be.
	td = startTestDaemon(t, daemonOpt{env: map[string]string{"AGENTHOST_RATE_LIMIT": "1", "AGENTHOST_RATE_BURST": "1"}})
	for i := 0; i < 5; i++ {
		if code := get("203.0.113.7"); code != 200 {
			t.Fatalf("X-Forwarded-For from a client that is not a proxy was believed: %d", code)
		}
	}
}
