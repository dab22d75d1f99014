package host

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/sdk"
)

// TestHookAnswersAreInert runs a plugin whose HTTP hook answers as a
// hostile one would (internal/testplugin/hookprobe): it tries to set a
// cookie, open CORS, clear the site's data, loosen the security headers
// and serve HTML, SVG and script on the API's origin. None of that reaches
// the caller; and the caller's credentials for the daemon do not reach
// the plugin, while a platform's own secret header does.
func TestHookAnswersAreInert(t *testing.T) {
	t.Parallel()
	ch := &sdk.Character{Name: "Hooked", Bio: sdk.StringList{"x"}, Plugins: []string{"offline", "hookprobe"}}
	td := startTestDaemon(t, daemonOpt{chars: []*sdk.Character{ch}, pluginDirs: []string{testPlugins(t, "hookprobe")},
		env: map[string]string{"AGENTHOST_API_KEY": "the-daemon-key"}})
	hook := td.url + "/hooks/hookprobe/" + ch.AgentID() + "/update"

	call := func(query string, header http.Header) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("POST", hook+query, strings.NewReader(`{"update_id": 1}`))
		req.Header = header
		res, err := (&http.Client{Timeout: time.Minute}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res, body
	}

	// What reaches the plugin.
	in := http.Header{"Content-Type": {"application/json"}, "X-Api-Key": {"the-daemon-key"}, "Authorization": {"Bearer the-daemon-key"},
		"Cookie": {"session=abc"}, "X-Telegram-Bot-Api-Secret-Token": {"platform-secret"}, "User-Agent": {"platform/1"}}
	res, body := call("", in)
	if res.StatusCode != 200 {
		t.Fatalf("hook: %d %s", res.StatusCode, body)
	}
	var echo struct {
		Method  string              `json:"method"`
		Path    string              `json:"path"`
		Headers map[string][]string `json:"headers"`
	}
	if err := json.Unmarshal(body, &echo); err != nil {
		t.Fatalf("echo: %v: %s", err, body)
	}
	if echo.Method != "POST" || echo.Path != "/update" {
		t.Errorf("the plugin saw %s %s", echo.Method, echo.Path)
	}
	for _, h := range []string{"X-Api-Key", "Authorization", "Cookie"} {
		if v, ok := echo.Headers[h]; ok {
			t.Errorf("the caller's %s reached the plugin: %v", h, v)
		}
	}
	if strings.Contains(string(body), "the-daemon-key") || strings.Contains(string(body), "session=abc") {
		t.Errorf("a credential reached the plugin: %s", body)
	}
	if v := echo.Headers["X-Telegram-Bot-Api-Secret-Token"]; len(v) != 1 || v[0] != "platform-secret" {
		t.Errorf("the platform's secret header must reach the plugin: %v", echo.Headers)
	}

	// What reaches the caller.
	for _, c := range []struct{ typ, want string }{
		{"", "text/plain; charset=utf-8"}, // the daemon does not sniff
		{"text/html", "text/plain; charset=utf-8"},
		{"text/html; charset=utf-8", "text/plain; charset=utf-8"},
		{"application/xhtml+xml", "text/plain; charset=utf-8"},
		{"image/svg+xml", "text/plain; charset=utf-8"},
		{"text/xml", "text/plain; charset=utf-8"},
		{"application/javascript", "text/plain; charset=utf-8"},
		{"text/javascript", "text/plain; charset=utf-8"},
		{"application/pdf", "text/plain; charset=utf-8"},
		{"not a type", "text/plain; charset=utf-8"},
		{"application/json", "application/json"},
		{"text/plain; charset=utf-8", "text/plain; charset=utf-8"},
		{"image/png", "image/png"},
	} {
		q := "?" + url.Values{"type": {c.typ}, "body": {`<html><script>fetch("/api/agents")</script></html>`}}.Encode()
		res, _ := call(q, http.Header{"Content-Type": {"application/json"}})
		h := res.Header
		if got := h.Get("Content-Type"); got != c.want {
			t.Errorf("Content-Type %q from the plugin: served as %q, want %q", c.typ, got, c.want)
		}
		if csp := h.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "sandbox") || !strings.Contains(csp, "default-src 'none'") || len(h.Values("Content-Security-Policy")) != 1 {
			t.Errorf("the answer must be sandboxed, got CSP %q", h.Values("Content-Security-Policy"))
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("X-Frame-Options") != "DENY" {
			t.Errorf("the daemon's security headers must stay: %v", h)
		}
		for _, bad := range []string{"Set-Cookie", "Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Clear-Site-Data", "Refresh"} {
			if v := h.Values(bad); len(v) > 0 {
				t.Errorf("the plugin's %s reached the caller: %v", bad, v)
			}
		}
		if len(res.Cookies()) != 0 {
			t.Errorf("cookies set: %v", res.Cookies())
		}
	}
}
