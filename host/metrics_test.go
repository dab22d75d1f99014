package host

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/internal/testwait"
)

func scrape(t *testing.T, td *testDaemon) string {
	t.Helper()
	req, _ := http.NewRequest("GET", td.url+"/metrics", nil)
	if td.key != "" {
		req.Header.Set("Authorization", "Bearer "+td.key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

// value finds a sample by name and labels (a regexp of the label set).
func value(t *testing.T, text, name, labels string) float64 {
	t.Helper()
	v, ok := sample(text, name, labels)
	if !ok {
		t.Fatalf("no sample %s{%s} in:\n%s", name, labels, grepLines(text, name))
	}
	return v
}

// sample is the value of a metric's sample, if the text has it.
func sample(text, name, labels string) (float64, bool) {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\{` + labels + `\} ([0-9.e+-]+)$`)
	m := re.FindStringSubmatch(text)
	if m == nil {
		return 0, false
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v, true
}

func grepLines(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOpt{env: map[string]string{"AGENTHOST_API_KEY": "m"}})
	td.key = "m"
	td.say("Eliza", "mo", "I dream about flying")
	td.say("Eliza", "mo", "Yes, every night")
	td.fails(404, "AGENT_NOT_FOUND", "GET", "/api/agents/Nobody", nil)
	code, _ := td.doKey("GET", "/metrics", nil, "")
	if code != http.StatusUnauthorized {
		t.Errorf("/metrics without the key: %d", code)
	}
	// A run ends a moment after its reply went back (RespondLast): the
	// counts of handled messages settle then, and bootstrap's HandleEvent
	// call is counted when it returns, which may come after (seen in CI).
	var m string
	testwait.For(t, 10*time.Second, "both messages counted as handled", func() bool {
		m = scrape(t, td)
		handled, _ := sample(m, "agenthost_messages_handled_total", `agent="Eliza",source="api",status="completed"`)
		timed, _ := sample(m, "agenthost_run_duration_seconds_count", `agent="Eliza",status="completed"`)
		calls, _ := sample(m, "agenthost_plugin_rpc_duration_seconds_count", `code="OK",method="HandleEvent",plugin="bootstrap"`)
		return handled == 2 && timed == 2 && calls >= 2
	})
	if v := value(t, m, "agenthost_replies_total", `agent="Eliza",source="api"`); v != 2 {
		t.Errorf("replies = %v", v)
	}
	if v := value(t, m, "agenthost_run_duration_seconds_count", `agent="Eliza",status="completed"`); v != 2 {
		t.Errorf("run durations = %v", v)
	}
	if v := value(t, m, "agenthost_model_calls_total", `plugin="offline",status="ok",type="TEXT_LARGE"`); v < 2 {
		t.Errorf("model calls = %v", v)
	}
	if v := value(t, m, "agenthost_model_tokens_total", `kind="completion",plugin="offline",type="TEXT_LARGE"`); v <= 0 {
		t.Errorf("completion tokens = %v", v)
	}
	// RPC latency by plugin and method, through the client interceptor.
	if v := value(t, m, "agenthost_plugin_rpc_duration_seconds_count", `code="OK",method="HandleEvent",plugin="bootstrap"`); v < 2 {
		t.Errorf("HandleEvent calls to bootstrap = %v", v)
	}
	if v := value(t, m, "agenthost_plugin_rpc_duration_seconds_count", `code="OK",method="UseModel",plugin="offline"`); v < 2 {
		t.Errorf("UseModel calls to offline = %v", v)
	}
	if v := value(t, m, "agenthost_database_call_duration_seconds_count", `code="OK",method="EnsureConnection",plugin="sql"`); v < 2 {
		t.Errorf("database EnsureConnection = %v", v)
	}
	if v := value(t, m, "agenthost_plugin_restarts_total", `plugin="sql"`); v != 0 {
		t.Errorf("restarts = %v", v)
	}
	if v := value(t, m, "agenthost_plugin_state", `plugin="offline",state="running"`); v != 1 {
		t.Errorf("plugin state = %v", v)
	}
	if v := value(t, m, "agenthost_http_requests_total", `code="404",route="GET /api/agents/\{agentId\}"`); v != 1 {
		t.Errorf("http requests = %v", v)
	}
	if v := value(t, m, "agenthost_agents", `status="running"`); v != 1 {
		t.Errorf("agents running = %v", v)
	}
	for _, family := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(m, "\n"+family+" ") {
			t.Errorf("no %s", family)
		}
	}
}
