package storage

import (
	"math"
	"reflect"
	"testing"

	"github.com/agenthost/agenthost/sdk"
	"google.golang.org/protobuf/proto"
)

// roundTrip sends m through its bytes, as gRPC does.
func roundTrip[M proto.Message](t *testing.T, m M) M {
	t.Helper()
	out := m.ProtoReflect().New().Interface().(M)
	if b, err := proto.Marshal(m); err != nil || proto.Unmarshal(b, out) != nil {
		t.Fatalf("%T does not survive the wire: %v", m, err)
	}
	return out
}

// The storage types a plugin sends come back from the database plugin as
// they were sent.
func TestRecordsRoundTrip(t *testing.T) {
	l := LogEntry{ID: "l1", AgentID: "a1", EntityID: "e1", RoomID: "r1", Type: "useModel:TEXT_LARGE", Body: map[string]any{"ms": 12.0}, CreatedAt: 1}
	if back := logFromProto(roundTrip(t, logToProto(&l))); !reflect.DeepEqual(back, l) {
		t.Errorf("log: %#v", back)
	}
	q := MemoryQuery{Table: sdk.TableMessages, RoomID: "r1", RoomIDs: []string{"r1", "r2"}, EntityID: "e1", WorldID: "w1", Count: 5, Unique: true, Start: 1, End: 2}
	if back := memoryQueryFromProto(roundTrip(t, memoryQueryToProto("a1", &q))); !reflect.DeepEqual(back, q) {
		t.Errorf("memory query: %#v", back)
	}
	sq := SearchQuery{Table: sdk.TableFragments, Embedding: []float32{1, 0}, Threshold: 0.8, Count: 3, Unique: true, RoomID: "r", WorldID: "w", EntityID: "e"}
	if back := searchQueryFromProto(roundTrip(t, searchQueryToProto("a1", &sq))); !reflect.DeepEqual(back, sq) {
		t.Errorf("search query: %#v", back)
	}
}

func TestClampInt32(t *testing.T) {
	for in, want := range map[int]int32{0: 0, -5: -5, math.MaxInt32: math.MaxInt32, math.MaxInt32 + 1: math.MaxInt32, math.MinInt32 - 1: math.MinInt32} {
		if got := clampInt32(in); got != want {
			t.Errorf("clampInt32(%d) = %d, want %d", in, got, want)
		}
	}
}
