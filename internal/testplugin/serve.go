package testplugin

import (
	"context"
	"errors"

	"github.com/agenthost/agenthost/internal/contract"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// ServeRaw serves srv, a Plugin service written against the protocol
// alone (no SDK shims), through go-plugin's server: the handshake, AutoMTLS
// when the host asks for it, health, the controller and stdio. newServer
// makes the gRPC server from go-plugin's options.
func ServeRaw(srv pb.PluginServer, newServer func([]grpc.ServerOption) *grpc.Server) {
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig:  contract.Handshake(),
		VersionedPlugins: map[int]goplugin.PluginSet{contract.ProtocolVersion: {contract.PluginSetName: rawPlugin{srv: srv}}},
		GRPCServer:       newServer,
	})
}

// rawPlugin adapts a Plugin service to go-plugin's plugin set.
type rawPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	srv pb.PluginServer
}

func (r rawPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterPluginServer(s, r.srv)
	return nil
}

func (rawPlugin) GRPCClient(context.Context, *goplugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("a plugin serves; it is not dispensed")
}
