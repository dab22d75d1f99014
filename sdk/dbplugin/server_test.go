package dbplugin

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/agenthost/agenthost/sdk"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/agenthost/agenthost/sdk/storage"
	"github.com/golang/protobuf/proto"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// recordingDB is an Adapter that keeps what the shim hands it.
type recordingDB struct {
	Adapter
	taskUpdate   storage.TaskUpdate
	memoryUpdate storage.MemoryUpdate
	err          error
}

func (r *recordingDB) UpdateTask(_ context.Context, _, _ string, u storage.TaskUpdate) error {
	r.taskUpdate = u
	return r.err
}

func (r *recordingDB) UpdateMemory(_ context.Context, _ string, u storage.MemoryUpdate) (bool, error) {
	r.memoryUpdate = u
	return true, r.err
}

func (r *recordingDB) ClassifyError(err error) error {
	if err != nil && err.Error() == "connection refused" {
		return errors.Join(err, sdk.ErrUnavailable)
	}
	return err
}

// TestTaskUpdateOverTheWire: "keep" and "clear" stay apart through the
// protocol for the tags and the metadata of a task update.
func TestTaskUpdateOverTheWire(t *testing.T) {
	name := "renamed"
	for _, tc := range []struct {
		name string
		in   storage.TaskUpdate
	}{
		{"keep all", storage.TaskUpdate{}},
		{"name only", storage.TaskUpdate{Name: &name}},
		{"clear tags and metadata", storage.TaskUpdate{Tags: []string{}, Metadata: map[string]any{}}},
		{"replace", storage.TaskUpdate{Tags: []string{"queue"}, Metadata: map[string]any{"n": 1.0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := &recordingDB{}
			s := &server{db: db}
			if _, err := s.UpdateTask(context.Background(), sconv.TaskUpdateToProto("a", "t", &tc.in)); err != nil {
				t.Fatal(err)
			}
			got := db.taskUpdate
			if (got.Tags == nil) != (tc.in.Tags == nil) || (got.Metadata == nil) != (tc.in.Metadata == nil) {
				t.Fatalf("nil-ness lost: got %#v, sent %#v", got, tc.in)
			}
			if len(tc.in.Tags) > 0 && !reflect.DeepEqual(got.Tags, tc.in.Tags) || len(tc.in.Metadata) > 0 && !reflect.DeepEqual(got.Metadata, tc.in.Metadata) {
				t.Fatalf("got %#v, sent %#v", got, tc.in)
			}
			if (got.Name == nil) != (tc.in.Name == nil) || got.Name != nil && *got.Name != *tc.in.Name {
				t.Fatalf("name: got %v", got.Name)
			}
		})
	}
}

// TestMemoryUpdateOverTheWire: a nil metadata value (delete the key), no
// content (keep it) and an embedding survive the protocol.
func TestMemoryUpdateOverTheWire(t *testing.T) {
	db := &recordingDB{}
	s := &server{db: db}
	in := storage.MemoryUpdate{ID: "m", Metadata: map[string]any{"drop": nil, "keep": "x"}, Embedding: []float32{1, 2}}
	if _, err := s.UpdateMemory(context.Background(), sconv.MemoryUpdateToProto("a", &in)); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(db.memoryUpdate, in) {
		t.Fatalf("got %#v\nwant %#v", db.memoryUpdate, in)
	}
	c := sdk.Content{Text: "new"}
	in = storage.MemoryUpdate{ID: "m", Content: &c, ClearEmbedding: true}
	if _, err := s.UpdateMemory(context.Background(), sconv.MemoryUpdateToProto("a", &in)); err != nil {
		t.Fatal(err)
	}
	if db.memoryUpdate.Content == nil || db.memoryUpdate.Content.Text != "new" || !db.memoryUpdate.ClearEmbedding || db.memoryUpdate.Metadata != nil {
		t.Fatalf("got %#v", db.memoryUpdate)
	}
}

// TestDatabaseErrorsClassified: an adapter's "database unreachable" travels
// as Unavailable, its other errors keep their kind.
func TestDatabaseErrorsClassified(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code codes.Code
	}{
		{errors.New("connection refused"), codes.Unavailable},
		{errors.Join(errors.New("bad"), sdk.ErrInvalid), codes.InvalidArgument},
		{errors.Join(errors.New("gone"), sdk.ErrNotFound), codes.NotFound},
		{errors.New("other"), codes.Unknown},
	} {
		s := &server{db: &recordingDB{err: tc.err}}
		_, err := s.UpdateTask(context.Background(), &pb.UpdateTaskRequest{})
		if st, _ := status.FromError(err); st.Code() != tc.code {
			t.Errorf("%v → %v, want %v", tc.err, st.Code(), tc.code)
		}
	}
}

func TestStorageTypesRoundTrip(t *testing.T) {
	c := sdk.Component{ID: "c", EntityID: "e", AgentID: "a", RoomID: "r", WorldID: "w", SourceEntityID: "s", Type: "t",
		Data: map[string]any{"k": "v"}, CreatedAt: 5}
	if got := sconv.ComponentFromProto(sconv.ComponentToProto(&c)); !reflect.DeepEqual(got, c) {
		t.Errorf("component: %#v", got)
	}
	r := storage.Relationship{ID: "r", SourceEntityID: "a", TargetEntityID: "b", AgentID: "x", Tags: []string{"friend"},
		Metadata: map[string]any{"interactions": 2.0}, CreatedAt: 7}
	if got := sconv.RelationshipFromProto(sconv.RelationshipToProto(&r)); !reflect.DeepEqual(got, r) {
		t.Errorf("relationship: %#v", got)
	}
	task := storage.Task{ID: "t", Name: "n", Description: "d", RoomID: "r", WorldID: "w", EntityID: "e", AgentID: "a",
		Tags: []string{"queue"}, Metadata: map[string]any{"m": true}, CreatedAt: 1, UpdatedAt: 2}
	if got := sconv.TaskFromProto(sconv.TaskToProto(&task)); !reflect.DeepEqual(got, task) {
		t.Errorf("task: %#v", got)
	}
}

func TestAgentRecordRoundTrip(t *testing.T) {
	a := AgentRecord{ID: "a1", Name: "Eliza", CharacterJSON: []byte(`{"name":"Eliza"}`), Enabled: true, CreatedAt: 1, UpdatedAt: 2}
	b, err := proto.Marshal(agentRecordToProto(&a))
	if err != nil {
		t.Fatal(err)
	}
	var back pb.Agent
	if err := proto.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if got := agentRecordFromProto(&back); !reflect.DeepEqual(got, a) {
		t.Errorf("agent: %#v", got)
	}
}
