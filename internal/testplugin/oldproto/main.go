// Command oldproto is a test plugin that speaks another major version of
// the plugin protocol; the host must refuse it with an error that names the
// plugin and both versions.
package main

import (
	"context"
	"errors"

	"github.com/agenthost/agenthost/internal/contract"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

type p struct {
	goplugin.NetRPCUnsupportedPlugin
}

func (p) GRPCServer(*goplugin.GRPCBroker, *grpc.Server) error { return nil }
func (p) GRPCClient(context.Context, *goplugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("server only")
}

func main() {
	hs := contract.Handshake()
	hs.ProtocolVersion = contract.ProtocolVersion + 1
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig:  hs,
		VersionedPlugins: map[int]goplugin.PluginSet{contract.ProtocolVersion + 1: {contract.PluginSetName: p{}}},
		GRPCServer:       goplugin.DefaultGRPCServer,
	})
}
