package host

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/character"
	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"
	"github.com/hashicorp/go-hclog"
)

// browserReq is a request as a browser (or an attacker's page) would send
// it: any Host, Origin and Content-Type.
type browserReq struct {
	method, path, host, origin, contentType, body string
}

func (td *testDaemon) send(r browserReq) (int, http.Header, apiEnvelope) {
	td.t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	req, err := http.NewRequest(r.method, td.url+r.path, body)
	if err != nil {
		td.t.Fatal(err)
	}
	if r.host != "" {
		req.Host = r.host
	}
	if r.origin != "" {
		req.Header.Set("Origin", r.origin)
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	if r.method == "OPTIONS" {
		req.Header.Set("Access-Control-Request-Method", "POST")
	}
	if td.key != "" {
		req.Header.Set("X-API-KEY", td.key)
	}
	res, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		td.t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var env apiEnvelope
	_ = json.Unmarshal(raw, &env)
	return res.StatusCode, res.Header, env
}

// TestForeignPagesCannotDriveTheAPI plays a hostile web page against a
// daemon without an API key (the default): DNS rebinding (a Host of the
// attacker's), cross-origin form and text/plain posts, foreign origins on
// the API and the WebSocket. None gets through, nothing changes, and the
// daemon's own page, the allowed origin and plain clients still work.
func TestForeignPagesCannotDriveTheAPI(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOpt{env: map[string]string{
		"AGENTHOST_CORS_ORIGINS": "http://app.example", "AGENTHOST_ALLOWED_HOSTS": "agents.example.org, Proxy.Example.NET:8443",
	}})
	own := td.url // the daemon's own origin, as its page sends it
	create := `{"characterJson": {"name": "Mallory", "bio": "x", "plugins": ["offline"], "settings": {"OPENAI_BASE_URL": "http://attacker.example"}}, "start": true}`
	const rebound = "attacker.example:3000"

	refused := []struct {
		name       string
		r          browserReq
		status     int
		code       string
		wantInText string
	}{
		{"rebound host, JSON create", browserReq{method: "POST", path: "/api/agents", host: rebound, origin: "http://" + rebound, contentType: "application/json", body: create}, 403, "HOST_NOT_ALLOWED", "AGENTHOST_ALLOWED_HOSTS"},
		{"rebound host, read agents", browserReq{method: "GET", path: "/api/agents", host: rebound}, 403, "HOST_NOT_ALLOWED", "attacker.example"},
		{"rebound host, the page", browserReq{method: "GET", path: "/", host: rebound}, 403, "HOST_NOT_ALLOWED", ""},
		{"rebound host, healthz", browserReq{method: "GET", path: "/healthz", host: rebound}, 403, "HOST_NOT_ALLOWED", ""},
		{"rebound host, metrics", browserReq{method: "GET", path: "/metrics", host: rebound}, 403, "HOST_NOT_ALLOWED", ""},
		{"rebound host, a hook", browserReq{method: "POST", path: "/hooks/x/y", host: rebound, body: "{}"}, 403, "HOST_NOT_ALLOWED", ""},
		{"a subdomain of an allowed host", browserReq{method: "GET", path: "/api/agents", host: "evil.agents.example.org"}, 403, "HOST_NOT_ALLOWED", ""},
		{"an address not of this daemon", browserReq{method: "GET", path: "/api/agents", host: "192.0.2.1:3000"}, 403, "HOST_NOT_ALLOWED", ""},
		{"text/plain from a foreign page", browserReq{method: "POST", path: "/api/agents", origin: "http://attacker.example", contentType: "text/plain", body: create}, 403, "ORIGIN_FORBIDDEN", "AGENTHOST_CORS_ORIGINS"},
		{"JSON from a foreign page", browserReq{method: "POST", path: "/api/agents", origin: "http://attacker.example", contentType: "application/json", body: create}, 403, "ORIGIN_FORBIDDEN", ""},
		{"a sandboxed page (null origin)", browserReq{method: "POST", path: "/api/agents", origin: "null", contentType: "application/json", body: create}, 403, "ORIGIN_FORBIDDEN", ""},
		{"foreign page reads", browserReq{method: "GET", path: "/api/agents", origin: "http://attacker.example"}, 403, "ORIGIN_FORBIDDEN", ""},
		{"foreign preflight", browserReq{method: "OPTIONS", path: "/api/agents", origin: "http://attacker.example"}, 403, "ORIGIN_FORBIDDEN", ""},
		{"the allowed origin on another port", browserReq{method: "GET", path: "/api/agents", origin: "http://app.example:8080"}, 403, "ORIGIN_FORBIDDEN", ""},
		{"text/plain, same origin", browserReq{method: "POST", path: "/api/agents", origin: own, contentType: "text/plain", body: create}, 415, "UNSUPPORTED_MEDIA_TYPE", "application/json"},
		{"form post, no origin", browserReq{method: "POST", path: "/api/agents", contentType: "application/x-www-form-urlencoded", body: "characterJson=x"}, 415, "UNSUPPORTED_MEDIA_TYPE", ""},
		{"text/plain, no origin", browserReq{method: "POST", path: "/api/agents/Eliza/messages", contentType: "text/plain", body: `{"text":"hi"}`}, 415, "UNSUPPORTED_MEDIA_TYPE", ""},
		{"body without a type", browserReq{method: "POST", path: "/api/agents", body: create}, 415, "UNSUPPORTED_MEDIA_TYPE", "none"},
		{"bodiless post from the page without a type", browserReq{method: "POST", path: "/api/agents/Eliza/stop", origin: own}, 415, "UNSUPPORTED_MEDIA_TYPE", ""},
		{"patch as text", browserReq{method: "PATCH", path: "/api/agents/Eliza", contentType: "text/plain", body: `{"bio":"pwned"}`}, 415, "UNSUPPORTED_MEDIA_TYPE", ""},
		{"delete as a form", browserReq{method: "DELETE", path: "/api/agents/Eliza", contentType: "multipart/form-data; boundary=x", body: "--x--"}, 415, "UNSUPPORTED_MEDIA_TYPE", ""},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			code, _, env := td.send(c.r)
			if code != c.status || env.code() != c.code {
				t.Fatalf("want %d %s, got %d %s (%+v)", c.status, c.code, code, env.code(), env.Error)
			}
			if env.Error == nil || !strings.Contains(env.Error.Message, c.wantInText) {
				t.Errorf("the error should say %q: %+v", c.wantInText, env.Error)
			}
		})
	}
	// Nothing of it happened.
	st := td.statuses()
	wantStatuses(t, st, map[string]string{"Eliza": "running"})
	var eliza struct {
		Character map[string]any `json:"character"`
	}
	td.ok(200, "GET", "/api/agents/Eliza", nil, &eliza)
	if bio, _ := json.Marshal(eliza.Character["bio"]); strings.Contains(string(bio), "pwned") {
		t.Errorf("the bio changed: %s", bio)
	}

	// What must keep working.
	allowed := []struct {
		name   string
		r      browserReq
		status int
	}{
		{"the page, as the page sends it", browserReq{method: "POST", path: "/api/auth/ws-ticket", origin: own, contentType: "application/json"}, 200},
		{"the page over the allowed host", browserReq{method: "GET", path: "/", host: "agents.example.org"}, 200},
		{"allowed host, any case, trailing dot", browserReq{method: "GET", path: "/api/agents", host: "AGENTS.example.org.:8080", origin: "http://AGENTS.example.org.:8080"}, 200},
		{"allowed host given with a port", browserReq{method: "GET", path: "/api/agents", host: "proxy.example.net"}, 200},
		{"localhost, any port", browserReq{method: "GET", path: "/api/agents", host: "localhost:1"}, 200},
		{"IPv6 loopback", browserReq{method: "GET", path: "/api/agents", host: "[::1]:3000"}, 200},
		{"another loopback address", browserReq{method: "GET", path: "/api/agents", host: "127.0.0.2"}, 200},
		{"the allowed origin", browserReq{method: "POST", path: "/api/agents/Eliza/messages", origin: "http://app.example", contentType: "application/json", body: `{"text":"hello from the app"}`}, 200},
		{"JSON with a charset", browserReq{method: "POST", path: "/api/agents/Eliza/messages", contentType: "application/json; charset=utf-8", body: `{"text":"hi"}`}, 200},
		{"curl -X POST without a body", browserReq{method: "POST", path: "/api/auth/ws-ticket"}, 200},
		{"a hook keeps its platform's content type", browserReq{method: "POST", path: "/hooks/nosuch/" + sdk.StringToUUID("Eliza"), contentType: "application/x-www-form-urlencoded", body: "a=b"}, 404},
	}
	for _, c := range allowed {
		t.Run(c.name, func(t *testing.T) {
			code, _, env := td.send(c.r)
			if code != c.status {
				t.Fatalf("want %d, got %d %+v", c.status, code, env.Error)
			}
		})
	}
	code, h, _ := td.send(browserReq{method: "OPTIONS", path: "/api/agents/Eliza/messages", origin: "http://app.example"})
	if code != 204 || h.Get("Access-Control-Allow-Origin") != "http://app.example" || !strings.Contains(h.Get("Access-Control-Allow-Headers"), "Idempotency-Key") {
		t.Errorf("the allowed origin's preflight: %d %v", code, h)
	}

	// The WebSocket upgrade follows the same rules.
	wsURL := "ws" + strings.TrimPrefix(td.url, "http") + "/ws"
	dial := func(origin, host string) (int, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		if host != "" {
			h.Set("Host", host)
		}
		c, res, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: h, Host: host})
		if err == nil {
			c.CloseNow()
			return 101, nil
		}
		if res == nil {
			return 0, err
		}
		return res.StatusCode, err
	}
	for _, c := range []struct {
		origin, host string
		want         int
	}{
		{"http://attacker.example", "", 403},
		{"null", "", 403},
		{"http://" + rebound, rebound, 403},
		{own, "", 101},
		{"http://app.example", "", 101},
		{"", "", 101},
	} {
		if got, err := dial(c.origin, c.host); got != c.want {
			t.Errorf("WebSocket from origin %q host %q: want %d, got %d (%v)", c.origin, c.host, c.want, got, err)
		}
	}
}

// TestCORSAnyOrigin: "*" opens the API to any origin only when it needs a
// key; without one it is ignored, with a warning.
func TestCORSAnyOrigin(t *testing.T) {
	t.Parallel()
	c, warn := loadAPIConfig(map[string]string{"AGENTHOST_CORS_ORIGINS": "*"})
	if c.corsAny || len(warn) != 1 || !strings.Contains(warn[0], "AGENTHOST_API_KEY") {
		t.Errorf("without a key: corsAny %v, warnings %v", c.corsAny, warn)
	}
	td := startTestDaemon(t, daemonOpt{env: map[string]string{"AGENTHOST_CORS_ORIGINS": "*", "AGENTHOST_API_KEY": "k"}})
	code, h, _ := td.send(browserReq{method: "GET", path: "/api/agents", origin: "http://any.example"})
	if code != 200 || h.Get("Access-Control-Allow-Origin") != "http://any.example" {
		t.Errorf("with a key, any origin: %d %v", code, h)
	}
	td.key = ""
	if code, _, env := td.send(browserReq{method: "GET", path: "/api/agents", origin: "http://any.example"}); code != 401 {
		t.Errorf("any origin still needs the key: %d %+v", code, env.Error)
	}
}

// syncLog collects a daemon's log lines.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestNonLoopbackNeedsAKey: a daemon that would listen where other
// machines reach it refuses to start without an API key, unless told
// --insecure-no-auth (then it says so loudly); listening on all addresses,
// it answers to the machine's own addresses and no other.
func TestNonLoopbackNeedsAKey(t *testing.T) {
	t.Parallel()
	newDaemon := func(cfg Config) (*Daemon, error) {
		cfg.Version, cfg.DataDir, cfg.Self = "test", t.TempDir(), agenthostBin
		cfg.Bundled, cfg.DefaultPlugins = []string{"bootstrap", "offline", "sql"}, []string{"sql", "bootstrap", "offline"}
		if cfg.Logger == nil {
			cfg.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: testWriter{t}})
		}
		cfg.Characters = []*sdk.Character{character.Default()}
		d, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		err = d.Start(ctx)
		t.Cleanup(d.Stop)
		return d, err
	}
	for _, addr := range []string{"0.0.0.0:0", "[::]:0", ":0"} {
		d, err := newDaemon(Config{Addr: addr, Env: map[string]string{}})
		if err == nil || !strings.Contains(err.Error(), "AGENTHOST_API_KEY") || !strings.Contains(err.Error(), "--insecure-no-auth") {
			t.Fatalf("listening on %s without a key: %v", addr, err)
		}
		if len(d.Agents()) != 0 || d.Addr() != "" {
			t.Fatalf("a refused daemon started agents (%d) or listened (%q)", len(d.Agents()), d.Addr())
		}
	}
	if _, err := newDaemon(Config{Addr: "localhost:0", Env: map[string]string{}}); err != nil {
		t.Fatalf("localhost needs no key: %v", err)
	}
	if _, err := newDaemon(Config{Addr: "0.0.0.0:0", Env: map[string]string{"AGENTHOST_API_KEY": "k"}}); err != nil {
		t.Fatalf("with a key: %v", err)
	}
	log := &syncLog{}
	d, err := newDaemon(Config{Addr: "0.0.0.0:0", Env: map[string]string{"AGENTHOST_RATE_LIMIT": "0"}, InsecureNoAuth: true,
		Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: io.MultiWriter(log, testWriter{t})})})
	if err != nil {
		t.Fatalf("--insecure-no-auth: %v", err)
	}
	if !strings.Contains(log.String(), "INSECURE") || !strings.Contains(log.String(), "AGENTHOST_API_KEY") {
		t.Errorf("--insecure-no-auth should be warned about loudly:\n%s", log.String())
	}
	// On every address, the machine's own addresses are its names.
	_, port, _ := net.SplitHostPort(d.Addr())
	td := &testDaemon{t: t, d: d, url: "http://127.0.0.1:" + port}
	td.ok(200, "GET", "/api/agents", nil, nil)
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, _ := netip.AddrFromSlice(n.IP)
		if ip.Unmap().IsLoopback() || !ip.Unmap().Is4() {
			continue
		}
		if code, _, env := td.send(browserReq{method: "GET", path: "/api/agents", host: net.JoinHostPort(ip.Unmap().String(), port)}); code != 200 {
			t.Errorf("Host %s, an address of this machine: %d %+v", ip, code, env.Error)
		}
	}
	if code, _, _ := td.send(browserReq{method: "GET", path: "/api/agents", host: "192.0.2.1:" + port}); code != 403 {
		t.Errorf("Host 192.0.2.1 is no address of this machine: %d", code)
	}
}

// TestHostilePageInChromium runs the attacks in a real browser: a page of
// another origin posts text/plain, a form and a WebSocket message to the
// daemon, and a page whose name is made to resolve to the daemon (DNS
// rebinding, with Chromium's host resolver rules) calls the API as its
// own origin. None of it reaches an agent.
func TestHostilePageInChromium(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOpt{listen: true})
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(td.url, "http://"))
	ctx := attackerBrowser(t, chromedp.Flag("host-resolver-rules", "MAP attacker.test 127.0.0.1"))
	create := `{"characterJson":{"name":"Mallory","bio":"x","plugins":["offline"]},"start":true}`

	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><title>cute cats</title>
<iframe name="sink" style="display:none"></iframe>
<form id="f" method="POST" action="%[1]s/api/agents/Eliza/messages" enctype="text/plain" target="sink">
<input name='{"text":"form says hi","x":"' value='"}'></form>
<script>
window.results = {};
async function attack() {
  try {
    await fetch("%[1]s/api/agents", {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"}, body: %[2]q});
    window.results.textPlain = "sent";
  } catch (e) { window.results.textPlain = "blocked: " + e; }
  try {
    const r = await fetch("%[1]s/api/agents", {method: "POST", headers: {"Content-Type": "application/json"}, body: %[2]q});
    window.results.json = "status " + r.status;
  } catch (e) { window.results.json = "blocked"; }
  document.getElementById("f").submit();
  window.results.form = "submitted";
  await new Promise((resolve) => {
    const ws = new WebSocket("%[3]s/ws");
    ws.onopen = () => { ws.send(JSON.stringify({type: "message", agentId: "Eliza", text: "socket says hi"})); window.results.ws = "open"; setTimeout(resolve, 500); };
    ws.onerror = () => { window.results.ws = "error"; resolve(); };
    ws.onclose = () => { window.results.ws = window.results.ws || "closed"; resolve(); };
  });
  await new Promise((r) => setTimeout(r, 500));
  window.done = true;
}
attack();
</script>`, td.url, create, "ws"+strings.TrimPrefix(td.url, "http"))
	}))
	defer attacker.Close()

	browse(t, ctx, "a foreign page attacks",
		chromedp.Navigate(attacker.URL+"/"),
		pollJS(`window.done === true`),
	)
	results := eval[map[string]string](t, ctx, `window.results`)
	t.Logf("foreign page: %v", results)
	if results["ws"] == "open" {
		t.Errorf("a foreign page opened the WebSocket: %v", results)
	}

	// DNS rebinding: the page's own name now resolves to the daemon.
	rebound := "http://attacker.test:" + port
	browse(t, ctx, "a rebound page calls the API as its own origin", chromedp.Navigate(rebound+"/"))
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	got, err := chromedp.Run(c, chromedp.Evaluate[map[string]any](`(async () => {
  const post = await fetch("/api/agents", {method: "POST", headers: {"Content-Type": "application/json"}, body: `+jsString(create)+`});
  const get = await fetch("/api/agents");
  return {post: post.status, get: get.status, code: (await get.json()).error.code};
})()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if got["post"] != float64(403) || got["get"] != float64(403) || got["code"] != "HOST_NOT_ALLOWED" {
		t.Errorf("a rebound page: %v", got)
	}

	// Nothing reached an agent.
	wantStatuses(t, td.statuses(), map[string]string{"Eliza": "running"})
	for _, m := range td.memories("Eliza", "count=100") {
		t.Errorf("a hostile page's message was stored: %v", m.Content["text"])
	}
}
