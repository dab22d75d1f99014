package main

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/agenthost/agenthost/internal/contract"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// socketAttacks finds the other processes' unix sockets in /proc/net/unix,
// which a confined plugin may read, and calls each as the host would call a
// plugin: Database.GetAgents (every agent, secrets and all, from the
// database plugin) and Plugin.Describe, over plain gRPC, over TLS without a
// client certificate and over TLS with a certificate of its own making. A
// plugin's server takes only the host's certificate (go-plugin's AutoMTLS).
func socketAttacks(ctx context.Context) map[string]string {
	out := map[string]string{}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	own := os.Getenv("PLUGIN_UNIX_SOCKET_DIR")
	b, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		return map[string]string{"read /proc/net/unix": verdict(nil, err)}
	}
	// A certificate as the daemon makes them, but of the plugin's making.
	cert, _, _, err := contract.NewCertificate()
	if err != nil {
		return map[string]string{"make a certificate": verdict(nil, err)}
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || !filepath.IsAbs(f[7]) || seen[f[7]] || (own != "" && strings.HasPrefix(f[7], own+"/")) {
			continue
		}
		seen[f[7]] = true
		creds := map[string]credentials.TransportCredentials{
			"plain":       insecure.NewCredentials(),
			"tls no cert": credentials.NewTLS(&tls.Config{InsecureSkipVerify: true}),
			"tls own cert": credentials.NewTLS(&tls.Config{InsecureSkipVerify: true,
				// Sent whatever issuers the server asks for.
				GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }}),
		}
		for how, c := range creds {
			conn, err := grpc.NewClient("unix://"+f[7], grpc.WithTransportCredentials(c))
			if err != nil {
				out[f[7]+" "+how] = verdict(nil, err)
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			res, err := pb.NewDatabaseClient(conn).GetAgents(cctx, &pb.GetAgentsRequest{})
			out[f[7]+" "+how+"/GetAgents"] = verdict(res, err)
			m, err := pb.NewPluginClient(conn).Describe(cctx, &pb.DescribeRequest{})
			out[f[7]+" "+how+"/Describe"] = verdict(m, err)
			cancel()
			_ = conn.Close()
		}
	}
	return out
}
