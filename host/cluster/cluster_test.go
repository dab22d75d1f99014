package cluster

import (
	"fmt"
	"strings"
	"testing"
)

// Rendezvous placement: every node computes the same owner, the agents
// spread, and a node that joins takes only agents that move to it.
func TestOwnerSpreadsAndMovesLittle(t *testing.T) {
	three := []string{"a", "b", "c"}
	four := []string{"a", "b", "c", "d"}
	count := map[string]int{}
	moved := 0
	const n = 3000
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("agent-%d", i)
		o3, o4 := Owner(id, three), Owner(id, []string{"d", "c", "b", "a"})
		if o4 != Owner(id, four) {
			t.Fatalf("the owner of %s depends on the order of the nodes", id)
		}
		count[o3]++
		if o3 != o4 {
			moved++
			if o4 != "d" {
				t.Fatalf("%s moved from %s to %s when d joined", id, o3, o4)
			}
		}
	}
	for _, node := range three {
		if c := count[node]; c < n/3-n/10 || c > n/3+n/10 {
			t.Errorf("node %s owns %d of %d agents: %v", node, c, n, count)
		}
	}
	if moved < n/4-n/10 || moved > n/4+n/10 {
		t.Errorf("%d of %d agents moved to a fourth node, want about a quarter", moved, n)
	}
	if Owner("x", nil) != "" {
		t.Error("an agent has an owner among no nodes")
	}
}

func TestFromEnv(t *testing.T) {
	pg := "postgres://u@db/agents"
	for _, tc := range []struct {
		env  map[string]string
		node string
		want string // part of the error; "" for none
	}{
		{env: map[string]string{}, want: ""},
		{env: map[string]string{"AGENTHOST_NODE_ID": "a"}, want: "set AGENTHOST_NATS_URL"},
		{env: map[string]string{}, node: "a", want: "set AGENTHOST_NATS_URL"},
		{env: map[string]string{"AGENTHOST_NATS_URL": "nats://n:4222"}, want: "needs POSTGRES_URL"},
		{env: map[string]string{"AGENTHOST_NATS_URL": "nats://n:4222", "POSTGRES_URL": pg, "AGENTHOST_CLUSTER": "a.b"}, want: "AGENTHOST_CLUSTER"},
		{env: map[string]string{"AGENTHOST_NATS_URL": "nats://n:4222", "POSTGRES_URL": pg}, node: "a>b", want: "node id"},
		{env: map[string]string{"AGENTHOST_NATS_URL": "nats://n:4222, ,x", "POSTGRES_URL": pg}, want: "separated by commas"},
		{env: map[string]string{"AGENTHOST_NATS_URL": "nats://n:4222", "POSTGRES_URL": pg, "AGENTHOST_CLUSTER_LEASE_TTL": "5ms"}, want: "from 1s to 1m"},
		{env: map[string]string{"AGENTHOST_NATS_URL": "nats://n:4222,nats://m:4222", "POSTGRES_URL": pg, "AGENTHOST_NODE_ID": "web-1"}, want: ""},
	} {
		cfg, err := FromEnv(tc.env, tc.node, "host.example-3000")
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.env, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v node %q: error %v, want one that says %q", tc.env, tc.node, err, tc.want)
		case tc.want == "" && len(tc.env) == 0 && cfg != nil:
			t.Errorf("no AGENTHOST_NATS_URL made a cluster: %+v", cfg)
		}
	}
	cfg, err := FromEnv(map[string]string{"AGENTHOST_NATS_URL": "nats://n:4222", "POSTGRES_URL": pg}, "", "host.example-3000")
	if err != nil || cfg.Name != DefaultName || cfg.NodeID != "host-example-3000" || cfg.LeaseTTL != DefaultLeaseTTL {
		t.Fatalf("defaults: %+v %v", cfg, err)
	}
	if cfg.fenceAfter() >= cfg.LeaseTTL || cfg.renewEvery()*3 > cfg.fenceAfter() {
		t.Errorf("a lease of %s is fenced after %s and renewed every %s: the holder must stop before it expires, after several renewals failed",
			cfg.LeaseTTL, cfg.fenceAfter(), cfg.renewEvery())
	}
}
