package contract

import (
	"errors"
	"slices"
	"strings"
	"testing"

	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// TestStorageMethodsAreDeclaredForPlugins: the methods plugins may call
// are exactly the ones database.proto marks, every one of them can name
// its agent, and the host's own stay its own. A method marked for plugins
// whose request names no agent fails here, for whoever added it.
func TestStorageMethodsAreDeclaredForPlugins(t *testing.T) {
	hostOnly := []string{"Migrate", "MigrationStatus", "EnsureAgent", "GetAgents", "GetAgent", "UpdateAgent", "DeleteAgent",
		"EnsureEmbeddingDimension", "SetEmbeddingDimension", "GetMemoriesToReembed"}
	var plugins, host []string
	for _, m := range StorageMethods() {
		if m.Plugins {
			plugins = append(plugins, m.Name)
			if !namesAgent(m.input.Descriptor()) {
				t.Errorf("Database.%s is marked for plugins but its request names no agent", m.Name)
			}
		} else {
			host = append(host, m.Name)
		}
	}
	slices.Sort(host)
	slices.Sort(hostOnly)
	if !slices.Equal(host, hostOnly) {
		t.Errorf("the host's own Database methods = %v, want %v", host, hostOnly)
	}
	if len(plugins) != len(pb.Database_ServiceDesc.Methods)-len(hostOnly) || len(plugins) < 40 {
		t.Errorf("%d methods for plugins: %v", len(plugins), plugins)
	}
	for _, name := range []string{"DeleteEntity", "DeleteRoom", "DeleteWorld", "DeleteRoomsByWorld", "RemoveParticipant"} {
		if m := LookupStorageMethod(name); m == nil || !m.DeletesConnections {
			t.Errorf("Database.%s must say it deletes connections", name)
		}
	}
	if m := LookupStorageMethod("CreateMemory"); m == nil || m.DeletesConnections || m.FullName != "/agenthost.plugin.v1.Database/CreateMemory" {
		t.Errorf("CreateMemory = %+v", m)
	}
}

func TestStorageAgents(t *testing.T) {
	agents := func(name string, req proto.Message) ([]string, error) {
		t.Helper()
		return LookupStorageMethod(name).Agents(req)
	}
	// The request's agent, and the messages it carries made that agent's.
	create := &pb.CreateMemoryRequest{AgentId: "a", Memory: &pb.Memory{AgentId: "b", Content: &pb.Content{Text: "x"}}}
	if ids, err := agents("CreateMemory", create); err != nil || !slices.Equal(ids, []string{"a"}) || create.GetMemory().GetAgentId() != "a" {
		t.Errorf("CreateMemory: %v %v, memory of %q", ids, err, create.GetMemory().GetAgentId())
	}
	upsert := &pb.UpsertEntitiesRequest{AgentId: "a", Entities: []*pb.Entity{{Id: "1", AgentId: "b"}, {Id: "2"}}}
	if _, err := agents("UpsertEntities", upsert); err != nil || upsert.GetEntities()[0].GetAgentId() != "a" || upsert.GetEntities()[1].GetAgentId() != "a" {
		t.Errorf("UpsertEntities: %v %v", upsert.GetEntities(), err)
	}
	// Log entries name their own agents, each of them.
	logs := &pb.AddLogsRequest{Logs: []*pb.LogEntry{{AgentId: "a"}, {AgentId: "b"}, {AgentId: "a"}}}
	if ids, err := agents("AddLogs", logs); err != nil || !slices.Equal(ids, []string{"a", "b"}) {
		t.Errorf("AddLogs: %v %v", ids, err)
	}
	for name, req := range map[string]proto.Message{
		"GetMemories": &pb.GetMemoriesRequest{},
		"AddLog":      &pb.AddLogRequest{Log: &pb.LogEntry{}},
		"AddLogs":     &pb.AddLogsRequest{Logs: []*pb.LogEntry{{AgentId: "a"}, {}}},
	} {
		if _, err := agents(name, req); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s naming no agent: %v, want ErrInvalid", name, err)
		}
	}
	if _, err := agents("AddLogs", &pb.AddLogsRequest{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("AddLogs of nothing: %v, want ErrInvalid", err)
	}
}

// TestPluginAgents: the host's own methods are refused, and what a newer
// plugin adds that this protocol does not know never reaches the database
// plugin unchecked.
func TestPluginAgents(t *testing.T) {
	if _, err := LookupStorageMethod("GetAgents").PluginAgents(&pb.GetAgentsRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("GetAgents: %v, want PermissionDenied", err)
	}
	if _, err := LookupStorageMethod("GetMemories").PluginAgents(&pb.GetMemoriesRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("GetMemories for no agent: %v, want InvalidArgument", err)
	}
	// Field 99 carrying another agent's id, in the request and in the
	// memory it carries.
	unknown := protowire.AppendString(protowire.AppendTag(nil, 99, protowire.BytesType), "victim")
	req := &pb.CreateMemoryRequest{AgentId: "a", Memory: &pb.Memory{Id: "m"}}
	req.ProtoReflect().SetUnknown(unknown)
	req.GetMemory().ProtoReflect().SetUnknown(unknown)
	if ids, err := LookupStorageMethod("CreateMemory").PluginAgents(req); err != nil || !slices.Equal(ids, []string{"a"}) {
		t.Fatalf("CreateMemory: %v %v", ids, err)
	}
	if len(req.ProtoReflect().GetUnknown()) != 0 || len(req.GetMemory().ProtoReflect().GetUnknown()) != 0 {
		t.Error("unknown fields were kept")
	}
}

func TestFeatures(t *testing.T) {
	f := Features()
	for _, want := range []string{"/agenthost.plugin.v1.Runtime/UseModel", "/agenthost.plugin.v1.Runtime/StreamModel",
		"/agenthost.plugin.v1.Database/GetMemories", "/agenthost.plugin.v1.Database/AddLogs"} {
		if !slices.Contains(f, want) {
			t.Errorf("features lack %s", want)
		}
	}
	for _, never := range []string{"Migrate", "GetAgents", "DeleteAgent"} {
		if slices.Contains(f, "/agenthost.plugin.v1.Database/"+never) {
			t.Errorf("features offer the host's own %s", never)
		}
	}
	if !slices.IsSorted(f) {
		t.Error("features are not sorted")
	}
}

// TestCodecPassesFramesThrough: a *Frame crosses as its bytes, a message as
// gRPC's proto codec encodes it.
func TestCodecPassesFramesThrough(t *testing.T) {
	res := &pb.GetMemoriesResponse{Memories: []*pb.Memory{{Id: "m", Content: &pb.Content{Text: strings.Repeat("x", 100)}}}}
	data, err := Codec{}.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var f Frame
	if err := (Codec{}).Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	again, err := Codec{}.Marshal(&f)
	if err != nil {
		t.Fatal(err)
	}
	back := &pb.GetMemoriesResponse{}
	if err := (Codec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(again.Materialize())}, back); err != nil || !proto.Equal(back, res) {
		t.Errorf("through a frame: %v %v", back, err)
	}
}
