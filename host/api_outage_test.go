package host

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/internal/pgtest"
	"github.com/agenthost/agenthost/internal/testwait"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

// TestDatabaseOutage cuts PostgreSQL under a running daemon: requests that
// need the database answer 503 with Retry-After and say why, the daemon
// stays up, the timeline entries of the outage wait in memory and are
// stored once the database is back, and past the buffer's bound they are
// dropped and counted, once.
func TestDatabaseOutage(t *testing.T) {
	t.Parallel()
	proxy := pgtest.NewProxy(t, pgtest.ServerAddr(t))
	pgURL := pgtest.Schema(t, proxy.Addr())
	log := &syncLog{}
	td := startTestDaemon(t, daemonOpt{env: map[string]string{"POSTGRES_URL": pgURL}, logOut: log,
		cfg: func(c *Config) { c.TimelineBuffer = 200 }})
	first := td.say("Eliza", "ann", "I like the sea")
	a := td.d.Agent("Eliza")

	proxy.Stop()
	unavailable := func(method, path string, body any, key string) apiEnvelope {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = strings.NewReader(string(b))
		}
		req, _ := http.NewRequest(method, td.url+path, rd)
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		res, err := (&http.Client{Timeout: time.Minute}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var env apiEnvelope
		_ = json.NewDecoder(res.Body).Decode(&env)
		if res.StatusCode != http.StatusServiceUnavailable || env.code() != "DATABASE_UNAVAILABLE" || res.Header.Get("Retry-After") == "" {
			t.Fatalf("%s %s with the database gone: want 503 DATABASE_UNAVAILABLE with Retry-After, got %d %+v (Retry-After %q)",
				method, path, res.StatusCode, env.Error, res.Header.Get("Retry-After"))
		}
		if !strings.Contains(env.Error.Message, "database") || !strings.Contains(env.Error.Message, "unreachable") {
			t.Errorf("the error should say the database is unreachable: %s", env.Error.Message)
		}
		return env
	}
	msg := unavailable("POST", "/api/agents/Eliza/messages", map[string]string{"text": "during the outage", "userName": "ann"}, "outage-1")
	if !strings.Contains(msg.Error.Message, "send it again") {
		t.Errorf("the client should hear it can send again: %s", msg.Error.Message)
	}
	unavailable("GET", "/api/memory/Eliza/memories?roomId="+first.RoomID, nil, "")
	unavailable("GET", "/api/agents/Eliza/rooms", nil, "")
	unavailable("GET", "/api/agents/Eliza/logs", nil, "")
	unavailable("POST", "/api/agents", map[string]any{"characterJson": map[string]any{"name": "Newcomer", "bio": "x", "plugins": []string{"offline"}}}, "")
	// The daemon stays up, and nothing half-made stays behind.
	td.ok(200, "GET", "/healthz", nil, nil)
	td.fails(404, "AGENT_NOT_FOUND", "GET", "/api/agents/Newcomer", nil)

	// A flood of timeline entries while the database is away: the buffer
	// keeps the first ones, drops the rest and says so once.
	for i := 0; i < 300; i++ {
		td.d.logs.add(a, &pb.LogEntry{AgentId: a.ID, RoomId: first.RoomID, Type: "outage_probe", CreatedAt: time.Now().UnixMilli(),
			BodyJson: []byte(fmt.Sprintf(`{"n": %d}`, i))})
	}
	if n := strings.Count(log.String(), "timeline buffer is full"); n != 1 {
		t.Errorf("the full buffer should be logged once, was %d times:\n%s", n, log.String())
	}

	proxy.Start()
	// The message sent again with its key is handled now.
	var back sayResult
	testwait.ForNil(t, 60*time.Second, "work to resume with the database back", func() error {
		code, _, r, env := td.sayKeyed("Eliza", "ann", "during the outage", "outage-1")
		if code != 200 {
			return fmt.Errorf("work did not resume when the database came back: %d %+v", code, env.Error)
		}
		back = r
		return nil
	})
	if len(back.Messages) != 1 {
		t.Errorf("the retried message got %+v", back)
	}
	// The run that failed during the outage is in the timeline now.
	testwait.ForNil(t, 60*time.Second, "the failed run of the outage to be stored", func() error {
		var logs struct {
			Logs []struct {
				Body map[string]any `json:"body"`
			} `json:"logs"`
		}
		td.ok(200, "GET", "/api/agents/Eliza/logs?type=run&count=50", nil, &logs)
		for _, l := range logs.Logs {
			if l.Body["text"] == "during the outage" && l.Body["status"] == "error" {
				return nil
			}
		}
		return fmt.Errorf("the failed run of the outage was not stored: %+v", logs.Logs)
	})
	var probes struct {
		Logs []struct {
			Body map[string]any `json:"body"`
		} `json:"logs"`
	}
	testwait.ForNil(t, 30*time.Second, "the entries of the outage to be stored", func() error {
		td.ok(200, "GET", "/api/agents/Eliza/logs?type=outage_probe&count=1000", nil, &probes)
		if len(probes.Logs) == 0 {
			return errors.New("no entry of the outage was stored")
		}
		return nil
	})
	kept := map[float64]bool{}
	for _, l := range probes.Logs {
		kept[l.Body["n"].(float64)] = true
	}
	if len(kept) >= 300 || len(kept) > 200 || !kept[0] {
		t.Errorf("the buffer of 200 should keep the oldest entries and drop the rest: %d kept, the first kept: %v", len(kept), kept[0])
	}
	testwait.ForNil(t, 30*time.Second, "the number dropped to be logged when the database came back", func() error {
		if !strings.Contains(log.String(), "some were dropped because the buffer was full") {
			return errors.New("the log says:\n" + log.String())
		}
		return nil
	})
	if !strings.Contains(log.String(), "dropped=") {
		t.Errorf("the log should say how many were dropped:\n%s", log.String())
	}
}
