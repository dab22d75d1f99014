package plugintest

import (
	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/internal/wire"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/agenthost/agenthost/sdk/storage"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
)

// conv is the SDK's own set of conversions (see sdk/internal/wire): the
// host's side of the wire that plugintest plays converts with the very
// functions the plugin's side uses.
var conv = wire.Conversions.(conversions)

// conversions are the SDK's conversions plugintest uses.
type conversions interface {
	// NewGRPCServer is the gRPC server sdk.Serve runs, with p's services
	// registered and the SDK's limits and panic recovery in place.
	NewGRPCServer(p sdk.Plugin, log hclog.Logger, opts ...grpc.ServerOption) (*grpc.Server, error)
	ContentToProto(*sdk.Content) *pb.Content
	ContentFromProto(*pb.Content) sdk.Content
	MemoryToProto(*sdk.Memory) *pb.Memory
	MemoryFromProto(*pb.Memory) *sdk.Memory
	MemoriesToProto([]sdk.Memory) []*pb.Memory
	MemoriesFromProto([]*pb.Memory) []sdk.Memory
	StateToProto(*sdk.State) *pb.State
	ActionResultFromProto(*pb.ActionResult) sdk.ActionResult
	TargetToProto(*sdk.Target) *pb.Target
	TargetFromProto(*pb.Target) sdk.Target
	EntityToProto(*sdk.Entity) *pb.Entity
	EntityFromProto(*pb.Entity) sdk.Entity
	RoomToProto(*sdk.Room) *pb.Room
	RoomFromProto(*pb.Room) sdk.Room
	WorldToProto(*sdk.World) *pb.World
	WorldFromProto(*pb.World) sdk.World
	EncodeMap(map[string]any) []byte
	DecodeMap([]byte) map[string]any
	ModelRequestToProto(agentID string, r *sdk.ModelRequest) *pb.ModelRequest
	ModelRequestFromProto(*pb.ModelRequest) *sdk.ModelRequest
	ModelResponseToProto(*sdk.ModelResponse) *pb.ModelResponse
	ModelResponseFromProto(*pb.ModelResponse) *sdk.ModelResponse
}

func manifestFromProto(m *pb.Manifest) Manifest {
	out := Manifest{Name: m.GetName(), Version: m.GetVersion(), Description: m.GetDescription(),
		ProtocolMinor: int(m.GetProtocolMinor()), Events: m.GetEvents(), Sources: m.GetMessageSources(),
		Database: m.GetDatabase(), HTTP: m.GetHttp()}
	for _, a := range m.GetActions() {
		out.Actions = append(out.Actions, a.GetName())
	}
	for _, p := range m.GetProviders() {
		out.Providers = append(out.Providers, ProviderInfo{Name: p.GetName(), Dynamic: p.GetDynamic(),
			Private: p.GetPrivate(), Position: int(p.GetPosition())})
	}
	for _, e := range m.GetEvaluators() {
		out.Evaluators = append(out.Evaluators, e.GetName())
	}
	for _, md := range m.GetModels() {
		out.Models = append(out.Models, ModelInfo{Type: md.GetType(), Priority: int(md.GetPriority())})
	}
	for _, s := range m.GetSettings() {
		out.Settings = append(out.Settings, s.GetName())
	}
	return out
}

// sconv is sdk/storage's set of conversions.
var sconv = wire.Storage.(storageConversions)

// storageConversions are sdk/storage's conversions plugintest's store uses.
type storageConversions interface {
	LogFromProto(*pb.LogEntry) storage.LogEntry
	LogToProto(*storage.LogEntry) *pb.LogEntry
}
