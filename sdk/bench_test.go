package sdk

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"

	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// BenchmarkShim measures what the SDK's shim adds to a gRPC call: a provider
// call through the Plugin service next to a health check on the same server
// and connection.
func BenchmarkShim(b *testing.B) {
	dir, err := os.MkdirTemp("", "shim")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	p := Plugin{Name: "bench", Providers: []Provider{{Name: "STATIC", Get: func(ctx context.Context, a *Agent, msg *Memory, st *State) (ProviderResult, error) {
		return ProviderResult{Text: "static text", Values: map[string]any{"k": "v"}}, nil
	}}}}
	s, err := newGRPCServer(p, nil)
	if err != nil {
		b.Fatal(err)
	}
	healthpb.RegisterHealthServer(s, health.NewServer())
	sock := filepath.Join(dir, "s")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	go s.Serve(lis)
	defer s.Stop()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	pc := pb.NewPluginClient(conn)
	if _, err := pc.Configure(ctx, &pb.ConfigureRequest{AgentId: "a"}); err != nil {
		b.Fatal(err)
	}
	hc := healthpb.NewHealthClient(conn)
	msg := &pb.Memory{Id: "m", RoomId: "r", EntityId: "e", Content: &pb.Content{Text: "hello"}}
	b.Run("health", func(b *testing.B) {
		for b.Loop() {
			if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("provider", func(b *testing.B) {
		req := &pb.GetProvidersRequest{AgentId: "a", Names: []string{"STATIC"}, Message: msg}
		for b.Loop() {
			if _, err := pc.GetProviders(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
