package host

import (
	"context"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenthost/agenthost/host/cluster"
	"github.com/agenthost/agenthost/internal/natstest"
	"github.com/agenthost/agenthost/internal/pgtest"
	"github.com/agenthost/agenthost/sdk"
	"github.com/hashicorp/go-hclog"
)

// TestResyncKeepsAnAgentCreatedWhileItReads holds a cluster node's re-read
// of the stored agents between its read and what it makes of it, creates
// an agent on the node meanwhile, and lets the re-read go on: the agent,
// missing from what was read, must stay listed. A stopped agent is used,
// as an agent placed on another node is: idle here and not held, so that
// nothing but the listing numbers keeps it. Before 831d84c such a re-read
// dropped it until the next one, and a message to it through this node was
// refused with AGENT_NOT_FOUND (seen in CI, in TestClusterAnyNodeAnswers).
func TestResyncKeepsAnAgentCreatedWhileItReads(t *testing.T) {
	natsURL := natstest.URL(t)
	name := natstest.Cluster(t, natsURL)
	env := map[string]string{"AGENTHOST_RATE_LIMIT": "0", "POSTGRES_URL": pgtest.Schema(t, ""),
		"AGENTHOST_NATS_URL": natsURL, "AGENTHOST_CLUSTER": name, "AGENTHOST_NODE_ID": "n1"}
	cfg, err := cluster.FromEnv(env, "", "")
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{
		Version: "test", DataDir: t.TempDir(), Env: env, Self: agenthostBin, Cluster: cfg,
		Characters: []*sdk.Character{{Name: "Eliza", Bio: []string{"A test agent."}, Plugins: []string{"offline"}}},
		Bundled:    []string{"bootstrap", "offline", "sql"}, DefaultPlugins: []string{"sql", "bootstrap", "offline"},
		Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: testWriter{t}}),
	})
	if err != nil {
		t.Fatal(err)
	}
	// Armed, the first re-read to reach the hook says so and waits.
	var armed atomic.Bool
	read, release := make(chan struct{}), make(chan struct{})
	d.resyncRead = func() {
		if armed.CompareAndSwap(true, false) {
			close(read)
			<-release
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := d.Start(ctx); err != nil {
		d.Stop()
		t.Fatal(err)
	}
	srv := httptest.NewServer(d.Handler())
	t.Cleanup(func() {
		srv.Close()
		d.Stop()
	})
	td := &testDaemon{t: t, d: d, srv: srv, url: srv.URL}

	armed.Store(true)
	done := make(chan error, 1)
	go func() { done <- d.resyncOnce(ctx) }()
	select {
	case <-read:
	case <-time.After(30 * time.Second):
		t.Fatal("the re-read did not read the stored agents within 30 s")
	}
	var created struct {
		ID string `json:"id"`
	}
	td.ok(201, "POST", "/api/agents", map[string]any{"characterJson": map[string]any{"name": "Late", "bio": "Created while the node read.",
		"plugins": []string{"offline"}}, "start": false}, &created)
	if created.ID == "" {
		t.Fatal("POST /api/agents returned no id")
	}
	if d.agentByID(created.ID) == nil {
		t.Fatal("the agent created is not listed even before the re-read goes on")
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("the re-read: %v", err)
	}
	if d.agentByID(created.ID) == nil {
		t.Fatal("the re-read that began before the agent was stored forgot it")
	}
	if st := td.statuses()["Late"].Status; st != "stopped" {
		t.Errorf("GET /api/agents lists the agent as %q, want stopped", st)
	}
	// A re-read that begins after the store keeps it, as before.
	if err := d.resyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if d.agentByID(created.ID) == nil {
		t.Fatal("a later re-read forgot the agent")
	}
}
