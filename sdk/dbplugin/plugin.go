// Package dbplugin is the database plugin's side of the SDK: the storage of
// every agent. One plugin in a daemon (the sql plugin) implements [Adapter]
// and serves it with
//
//	func main() { sdk.Serve(dbplugin.Plugin(p, store)) }
//
// The host calls the Database service for itself (migrations, the agents'
// records) and forwards the storage calls of the other plugins to it, after
// checking the agent and the caller; a plugin that only stores and reads
// memories, entities or rooms needs none of this, but sdk/storage.
package dbplugin

import (
	"github.com/agenthost/agenthost/sdk"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"google.golang.org/grpc"
)

// Plugin returns p serving the Database service over db: the plugin becomes
// the agents' storage, and its manifest says so. If db also has a method
// ClassifyError(error) error, it marks the errors of a database that went
// away with sdk.ErrUnavailable, so that they travel as such.
func Plugin(p sdk.Plugin, db Adapter) sdk.Plugin {
	return conv.WithDatabase(p, func(s *grpc.Server) { pb.RegisterDatabaseServer(s, &server{db: db}) })
}
