package cluster

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"
)

// Config turns a daemon into a cluster node.
type Config struct {
	// URLs are NATS server URLs, comma-separated (AGENTHOST_NATS_URL).
	URLs string
	// Name prefixes every subject, stream and bucket (AGENTHOST_CLUSTER).
	Name string
	// NodeID names this node (AGENTHOST_NODE_ID or --node-id).
	NodeID string
	// Address is where this node's HTTP API listens, for GET /api/cluster.
	Address string
	// LeaseTTL is how long a lease outlives its holder's last renewal
	// (AGENTHOST_CLUSTER_LEASE_TTL, default 3s).
	LeaseTTL time.Duration
	// MoveWait bounds how long a request waits for an agent that has no
	// holder (default 10s).
	MoveWait time.Duration
}

// DefaultName is the cluster's name when AGENTHOST_CLUSTER is not set.
const DefaultName = "agenthost"

// DefaultLeaseTTL is the lease's life without renewal.
const DefaultLeaseTTL = 3 * time.Second

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// FromEnv reads the cluster's settings from the daemon's environment. It
// returns nil when AGENTHOST_NATS_URL is not set: the daemon runs alone.
// nodeID is --node-id when given; defaultNode names the node otherwise
// (the host name and port).
func FromEnv(env map[string]string, nodeID, defaultNode string) (*Config, error) {
	urls := strings.TrimSpace(env["AGENTHOST_NATS_URL"])
	if urls == "" {
		if nodeID != "" || env["AGENTHOST_NODE_ID"] != "" || env["AGENTHOST_CLUSTER"] != "" {
			return nil, errors.New("AGENTHOST_CLUSTER, AGENTHOST_NODE_ID and --node-id only mean something in a cluster: set AGENTHOST_NATS_URL (the NATS servers, comma-separated) too, or leave them out")
		}
		return nil, nil
	}
	if env["POSTGRES_URL"] == "" {
		return nil, errors.New("cluster mode (AGENTHOST_NATS_URL is set) needs POSTGRES_URL: the nodes share their agents and memories through one PostgreSQL, and SQLite in a data dir belongs to one machine; set POSTGRES_URL, or unset AGENTHOST_NATS_URL to run a single daemon")
	}
	for _, u := range strings.Split(urls, ",") {
		u = strings.TrimSpace(u)
		if u == "" || strings.ContainsAny(u, " \t") {
			return nil, fmt.Errorf("AGENTHOST_NATS_URL=%q: give NATS URLs separated by commas, such as nats://127.0.0.1:4222", urls)
		}
	}
	cfg := &Config{URLs: urls, Name: env["AGENTHOST_CLUSTER"], NodeID: nodeID, LeaseTTL: DefaultLeaseTTL, MoveWait: 10 * time.Second}
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if !nameRE.MatchString(cfg.Name) {
		return nil, fmt.Errorf("AGENTHOST_CLUSTER=%q: a cluster name is 1 to 64 letters, digits, '-' or '_' (it prefixes NATS subjects, streams and buckets)", cfg.Name)
	}
	if cfg.NodeID == "" {
		cfg.NodeID = env["AGENTHOST_NODE_ID"]
	}
	if cfg.NodeID == "" {
		cfg.NodeID = sanitize(defaultNode)
	}
	if !nameRE.MatchString(cfg.NodeID) {
		return nil, fmt.Errorf("node id %q (AGENTHOST_NODE_ID or --node-id): a node id is 1 to 64 letters, digits, '-' or '_'", cfg.NodeID)
	}
	if v := env["AGENTHOST_CLUSTER_LEASE_TTL"]; v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second || d > time.Minute {
			return nil, fmt.Errorf("AGENTHOST_CLUSTER_LEASE_TTL=%q: give a duration from 1s to 1m, such as 3s", v)
		}
		cfg.LeaseTTL = d
	}
	return cfg, nil
}

// DefaultNodeID is the host name and the port, made a valid node id.
func DefaultNodeID(port string) string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "node"
	}
	return sanitize(h + "-" + port)
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			b[i] = '-'
		}
	}
	if len(b) > 64 {
		b = b[:64]
	}
	return string(b)
}

// renewEvery is how often the holder renews a lease.
func (c *Config) renewEvery() time.Duration { return c.LeaseTTL / 6 }

// fenceAfter is how long a holder keeps an agent without a successful
// renewal.
func (c *Config) fenceAfter() time.Duration { return c.LeaseTTL * 2 / 3 }

// nodeTimeout is how long a node is taken for live without a heartbeat.
func (c *Config) nodeTimeout() time.Duration { return c.LeaseTTL * 2 / 3 }
