// Command broken is a plugin broken on purpose, in the one way its file
// name says (agenthost-plugin-broken-MODE), for the tests of `agenthost
// plugins check`: each must fail, naming its check. It is written against
// the protocol and go-plugin alone, as a plugin in another language is.
//
//	nohealth     grpc.health.v1.Health answers UNIMPLEMENTED        (health)
//	notls        it ignores PLUGIN_CLIENT_CERT and serves plaintext (mtls)
//	badmanifest  its manifest calls it otherwise than its file, has
//	             no version and declares its provider twice         (describe)
//	nocancel     its provider's Runtime call ignores the context of
//	             the call it serves                                 (cancellation)
//
// Any other name makes a plugin that passes every check.
package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/agenthost/agenthost/internal/contract"
	"github.com/agenthost/agenthost/internal/testplugin"
	"github.com/agenthost/agenthost/sdk"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func main() {
	file := filepath.Base(os.Args[0])
	mode := strings.TrimPrefix(file, "agenthost-plugin-broken-")
	if mode == "notls" {
		// go-plugin serves TLS when the host's certificate is there.
		os.Unsetenv(contract.ClientCertEnv)
	}
	srv := &server{mode: mode, name: strings.TrimPrefix(file, "agenthost-plugin-"), agents: map[string]bool{}}
	testplugin.ServeRaw(srv, func(opts []grpc.ServerOption) *grpc.Server {
		opts = append(opts, grpc.MaxRecvMsgSize(contract.MaxMessageSize), grpc.MaxSendMsgSize(contract.MaxMessageSize))
		if mode == "nohealth" {
			opts = append(opts, grpc.ChainUnaryInterceptor(noHealth))
		}
		return grpc.NewServer(opts...)
	})
}

// noHealth answers the health service as a server without it does.
func noHealth(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if strings.HasPrefix(info.FullMethod, "/grpc.health.v1.Health/") {
		return nil, status.Errorf(codes.Unimplemented, "unknown service grpc.health.v1.Health")
	}
	return h(ctx, req)
}

type server struct {
	pb.UnimplementedPluginServer
	mode, name string

	mu     sync.Mutex
	rt     pb.RuntimeClient
	token  string
	agents map[string]bool
}

const provider = "BROKEN_LOOKUP"

func (s *server) Describe(context.Context, *pb.DescribeRequest) (*pb.Manifest, error) {
	m := &pb.Manifest{Name: s.name, Version: "0.0.1", ProtocolMinor: contract.ProtocolMinor,
		Providers: []*pb.ProviderSpec{{Name: provider, Description: "Asks the model, and says what it answered."}}}
	if s.mode == "badmanifest" {
		m.Name, m.Version = "not-its-file-name", ""
		m.Providers = append(m.Providers, m.Providers[0])
	}
	return m, nil
}

func (s *server) Init(_ context.Context, req *pb.InitRequest) (*pb.InitResponse, error) {
	conn, err := grpc.NewClient(req.GetRuntimeAddress(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "dial the Runtime: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rt, s.token = pb.NewRuntimeClient(conn), req.GetRuntimeToken()
	return &pb.InitResponse{}, nil
}

func (s *server) Configure(_ context.Context, req *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	if req.GetAgentId() == "" {
		return nil, status.Error(codes.InvalidArgument, "agent_id is empty")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.agents[req.GetAgentId()] = true
	return &pb.ConfigureResponse{}, nil
}

func (s *server) Unconfigure(_ context.Context, req *pb.UnconfigureRequest) (*pb.UnconfigureResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.agents, req.GetAgentId())
	return &pb.UnconfigureResponse{}, nil
}

func (s *server) GetProviders(ctx context.Context, req *pb.GetProvidersRequest) (*pb.GetProvidersResponse, error) {
	s.mu.Lock()
	rt, token, ok := s.rt, s.token, s.agents[req.GetAgentId()]
	s.mu.Unlock()
	if !ok {
		return nil, status.Errorf(codes.FailedPrecondition, "agent %q is not configured", req.GetAgentId())
	}
	res := &pb.GetProvidersResponse{}
	for _, name := range req.GetNames() {
		if name != provider {
			res.Results = append(res.Results, &pb.ProviderResult{Name: name, Error: "no such provider"})
			continue
		}
		callCtx := ctx
		if s.mode == "nocancel" {
			// The mistake: a context of its own, so that nothing the host
			// does stops this call.
			callCtx = context.Background()
		}
		callCtx = metadata.AppendToOutgoingContext(callCtx, contract.RuntimeTokenMetadata, "Bearer "+token)
		out, err := rt.UseModel(callCtx, &pb.ModelRequest{AgentId: req.GetAgentId(), Type: sdk.ModelTextSmall, RunId: req.GetRunId(),
			Prompt: "Say something about: " + req.GetMessage().GetContent().GetText()})
		if err != nil {
			res.Results = append(res.Results, &pb.ProviderResult{Name: name, Error: err.Error()})
			continue
		}
		res.Results = append(res.Results, &pb.ProviderResult{Name: name, Text: "The model says: " + out.GetText()})
	}
	return res, nil
}

func (s *server) Shutdown(context.Context, *pb.ShutdownRequest) (*pb.ShutdownResponse, error) {
	return &pb.ShutdownResponse{}, nil
}
