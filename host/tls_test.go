package host

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
)

// A Go plugin serves the host with the P-256 certificate the host made for
// it, not with a P-521 one of go-plugin's making: the first P-521 key,
// signature or check costs a process half a megabyte that it keeps.
func TestPluginServesTheHostsCertificate(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOpt{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := td.d.Manager().Plugin("offline").conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var p peer.Peer
	if _, err := c.health.Check(ctx, &healthpb.HealthCheckRequest{Service: "plugin"}, grpc.Peer(&p)); err != nil {
		t.Fatal(err)
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.PeerCertificates) == 0 {
		t.Fatalf("the host's connection to the plugin is not TLS with a certificate: %#v", p.AuthInfo)
	}
	leaf := info.State.PeerCertificates[0]
	if k, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("the plugin serves with a %T key (%v), want P-256", leaf.PublicKey, leaf.PublicKeyAlgorithm)
	}
	if !slices.Contains(leaf.Subject.Organization, "agenthost") {
		t.Errorf("the plugin serves with a certificate of %v, not the host's making", leaf.Subject.Organization)
	}
}
