// Package natstest gives tests the NATS server (with JetStream) the
// cluster runs on, and a cluster name of their own whose stream and
// buckets are deleted when the test ends.
//
// The server is AGENTHOST_TEST_NATS_URL, by default the one on
// 127.0.0.1:4222. A test that needs it fails when it cannot be reached:
// the cluster is a core feature, and .ci/run starts the server.
package natstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultURL is the test server when AGENTHOST_TEST_NATS_URL is not set.
const DefaultURL = "nats://127.0.0.1:4222"

// URL is the test server's URL, once it was reached.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("AGENTHOST_TEST_NATS_URL")
	if u == "" {
		u = DefaultURL
	}
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatalf("AGENTHOST_TEST_NATS_URL=%q: %v", u, err)
	}
	c, err := net.DialTimeout("tcp", pu.Host, 2*time.Second)
	if err != nil {
		t.Fatalf("NATS is not reachable at %s (%v): the cluster tests need a NATS server with JetStream "+
			"(nats-server -js; .ci/run starts one), or AGENTHOST_TEST_NATS_URL naming one", u, err)
	}
	c.Close()
	return u
}

// Cluster returns a fresh cluster name (AGENTHOST_CLUSTER) on the server
// at natsURL: its stream and buckets are the test's own, and are deleted
// when it ends.
func Cluster(t testing.TB, natsURL string) string {
	t.Helper()
	var b [5]byte
	_, _ = rand.Read(b[:])
	name := "t" + hex.EncodeToString(b[:])
	t.Cleanup(func() { deleteCluster(t, natsURL, name) })
	return name
}

// deleteCluster deletes what a cluster named name made on the server.
func deleteCluster(t testing.TB, natsURL, name string) {
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Errorf("clean up cluster %s: %v", name, err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Errorf("clean up cluster %s: %v", name, err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range []string{name + "_messages", "KV_" + name + "_nodes", "KV_" + name + "_leases"} {
		if err := js.DeleteStream(ctx, s); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("clean up stream %s: %v", s, err)
		}
	}
}
