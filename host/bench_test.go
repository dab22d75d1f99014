package host

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/agenthost/agenthost/internal/contract"
	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/character"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
)

// benchDaemon runs the default agent (sql, bootstrap, offline as real
// child processes) in this process's host.
func benchDaemon(tb testing.TB) (*Daemon, *AgentRuntime) {
	tb.Helper()
	ch := character.Default()
	d, err := New(Config{
		Version: "bench", DataDir: tb.TempDir(), Characters: []*sdk.Character{ch}, Env: map[string]string{},
		Self: agenthostBin, Bundled: []string{"bootstrap", "sql", "offline"}, DefaultPlugins: []string{"sql", "bootstrap", "offline"},
		Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Warn}),
	})
	if err != nil {
		tb.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(d.Stop)
	return d, d.Agents()[0]
}

// BenchmarkPluginRoundTrip compares one host→plugin call (a provider of the
// bootstrap plugin, through our shim) with a plain gRPC call on the very
// same connection (go-plugin's health service): the difference is what
// agenthost adds to the transport.
func BenchmarkPluginRoundTrip(b *testing.B) {
	d, a := benchDaemon(b)
	p := d.mgr.Plugin("bootstrap")
	c, err := p.conn(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	msg := &pb.Memory{Id: "00000000-0000-0000-0000-000000000001", RoomId: a.ID, EntityId: a.ID, Content: &pb.Content{Text: "hi"}}
	b.Run("plain-grpc-health", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.health.Check(ctx, &healthpb.HealthCheckRequest{Service: "plugin"}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("plugin-provider-TIME", func(b *testing.B) {
		req := &pb.GetProvidersRequest{AgentId: a.ID, Names: []string{"TIME"}, Message: msg}
		for b.Loop() {
			if _, err := c.plugin.GetProviders(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("plugin-model-TEXT_EMBEDDING", func(b *testing.B) {
		req := &pb.ModelRequest{AgentId: a.ID, Type: sdk.ModelTextEmbedding, Text: "a short sentence to embed"}
		oc, err := d.mgr.Plugin("offline").conn(ctx)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := oc.plugin.UseModel(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRuntimeCall measures a plugin→host call: a client dials the
// Runtime socket the host handed a plugin, as the plugin does, and calls
// GetSettings; the baseline is a health check served on the same socket.
func BenchmarkRuntimeCall(b *testing.B) {
	d, a := benchDaemon(b)
	addr, err := d.mgr.runtimeAddress()
	if err != nil {
		b.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	// Calls carry bootstrap's token, as bootstrap's own do.
	ctx := metadata.AppendToOutgoingContext(context.Background(), contract.RuntimeTokenMetadata, "Bearer "+d.mgr.Plugin("bootstrap").cur.token)
	rt, db := pb.NewRuntimeClient(conn), pb.NewDatabaseClient(conn)
	health := healthpb.NewHealthClient(conn)
	b.Run("plain-grpc-health", func(b *testing.B) {
		for b.Loop() {
			if _, err := health.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("runtime-GetSettings", func(b *testing.B) {
		req := &pb.GetSettingsRequest{AgentId: a.ID}
		for b.Loop() {
			if _, err := rt.GetSettings(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("runtime-GetMemories-via-sql", func(b *testing.B) {
		req := &pb.GetMemoriesRequest{AgentId: a.ID, RoomId: a.ID, Table: sdk.TableMessages, Count: 10}
		for b.Loop() {
			if _, err := db.GetMemories(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkMessage is one message end to end through the HTTP handler:
// bootstrap stores it, composes state, asks the offline model, stores and
// returns the reply, all across real plugin processes.
func BenchmarkMessage(b *testing.B) {
	d, _ := benchDaemon(b)
	h := d.Handler()
	var senders atomic.Int64
	send := func(user string) {
		body := []byte(`{"text":"I am feeling sad about my job","userName":"` + user + `"}`)
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/api/agents/Eliza/messages", bytes.NewReader(body))
		// A local client, as a benchmark is: the rate limit is for others.
		req.RemoteAddr, req.Host = "127.0.0.1:40000", "localhost"
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"text"`) {
			b.Fatalf("message: %d %s", rec.Code, rec.Body.String())
		}
	}
	b.Run("sequential", func(b *testing.B) {
		for b.Loop() {
			send("bench")
		}
	})
	b.Run("10-concurrent-senders", func(b *testing.B) {
		b.SetParallelism(5) // 5 × GOMAXPROCS(2) = 10 senders here
		b.RunParallel(func(pb *testing.PB) {
			// Each sender talks in a room of its own: in one shared room a
			// newer message makes the older replies stale, and they are
			// dropped, which would flatter the figure.
			user := "bench-" + strconv.FormatInt(senders.Add(1), 10)
			for pb.Next() {
				send(user)
			}
		})
	})
}
