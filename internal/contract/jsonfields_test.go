package contract

import (
	"fmt"
	"reflect"
	"testing"

	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

// memories is an answer of n memories with good JSON in every _json field.
func memories(n int) *pb.GetMemoriesResponse {
	res := &pb.GetMemoriesResponse{}
	for i := range n {
		res.Memories = append(res.Memories, &pb.Memory{Id: fmt.Sprint(i), RoomId: "r", Content: &pb.Content{Text: "hello there", ExtraJson: []byte(`{"a":1}`)},
			MetadataJson: []byte(`{"type":"message"}`)})
	}
	return res
}

// Each bad _json field is named by its whole path, inside lists and nested
// messages, and cleared when asked; the good ones are left as they are.
func TestCheckJSONFieldsNamesAndClearsTheBadOnes(t *testing.T) {
	res := memories(3)
	res.Memories[1].MetadataJson = []byte(`{"type":`)
	res.Memories[2].Content.ExtraJson = []byte(`[1]`)
	bad := CheckJSONFields(res, true)
	var fields []string
	for _, b := range bad {
		fields = append(fields, b.Field)
	}
	if want := []string{"memories[1].metadata_json", "memories[2].content.extra_json"}; !reflect.DeepEqual(fields, want) {
		t.Errorf("bad fields %v, want %v (%v)", fields, want, bad)
	}
	if res.Memories[1].MetadataJson != nil || res.Memories[2].Content.ExtraJson != nil {
		t.Error("a bad field was not cleared")
	}
	if string(res.Memories[0].MetadataJson) != `{"type":"message"}` || string(res.Memories[2].MetadataJson) != `{"type":"message"}` ||
		string(res.Memories[1].Content.ExtraJson) != `{"a":1}` {
		t.Error("a good field was changed")
	}
	req := &pb.CreateMemoryRequest{Memory: &pb.Memory{MetadataJson: []byte("x")}}
	if bad := CheckJSONFields(req, false); len(bad) != 1 || bad[0].Field != "memory.metadata_json" || req.Memory.MetadataJson == nil {
		t.Errorf("a request's bad field: %v (left %q)", bad, req.Memory.MetadataJson)
	}
}

// The host checks every storage answer it forwards: a room's recent
// memories are the largest on a message's path (-bench CheckJSON).
func BenchmarkCheckJSONFields(b *testing.B) {
	res := memories(32)
	b.ReportAllocs()
	for b.Loop() {
		if bad := CheckJSONFields(res, true); len(bad) != 0 {
			b.Fatal(bad)
		}
	}
}
