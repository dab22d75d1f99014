package host

import (
	"testing"

	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

func fakePlugin(name string, m *pb.Manifest) *Plugin {
	return &Plugin{spec: PluginSpec{Name: name}, state: StateRunning, cur: &pluginConn{manifest: m}}
}

func TestResolveAction(t *testing.T) {
	p := fakePlugin("a", &pb.Manifest{Actions: []*pb.ActionSpec{
		{Name: "REPLY", Similes: []string{"RESPOND"}},
		{Name: "SEND_MESSAGE", Similes: []string{"DM", "MESSAGE_USER"}},
		{Name: "MUTE_ROOM"},
		{Name: "UNMUTE_ROOM"},
	}})
	r, err := buildRegistry([]*Plugin{p})
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		"REPLY": "REPLY", "reply": "REPLY", " Reply ": "REPLY", "respond": "REPLY",
		"send_message": "SEND_MESSAGE", "Send Message": "SEND_MESSAGE", "sendmessage": "SEND_MESSAGE", "dm": "SEND_MESSAGE",
		"mute_room": "MUTE_ROOM", "UNMUTE_ROOM": "UNMUTE_ROOM",
		// A fragment that fits two actions is ambiguous, not a guess.
		"ROOM": "", "": "", "FLY": "",
	} {
		got := ""
		if e := r.resolveAction(in); e != nil {
			got = e.spec.GetName()
		}
		if got != want {
			t.Errorf("resolveAction(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRegistryModelPriority(t *testing.T) {
	low := fakePlugin("low", &pb.Manifest{Models: []*pb.ModelSpec{{Type: "TEXT_LARGE", Priority: 0}}})
	high := fakePlugin("high", &pb.Manifest{Models: []*pb.ModelSpec{{Type: "TEXT_LARGE", Priority: 10}}})
	first := fakePlugin("first", &pb.Manifest{Models: []*pb.ModelSpec{{Type: "TEXT_SMALL", Priority: 0}}})
	second := fakePlugin("second", &pb.Manifest{Models: []*pb.ModelSpec{{Type: "TEXT_SMALL", Priority: 0}}})
	r, err := buildRegistry([]*Plugin{low, high, first, second})
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := r.model("TEXT_LARGE", ""); p != high {
		t.Errorf("TEXT_LARGE: want the higher priority plugin")
	}
	if p, _ := r.model("TEXT_SMALL", ""); p != first {
		t.Errorf("TEXT_SMALL: on equal priority the earlier plugin wins")
	}
	if p, _ := r.model("TEXT_LARGE", "low"); p != low {
		t.Errorf("a named provider must be honoured")
	}
	if _, err := r.model("IMAGE", ""); err == nil {
		t.Errorf("a missing model type must be an error")
	}
}

func TestStateCacheIsBounded(t *testing.T) {
	c := newStateCache(3)
	for i := 0; i < 100; i++ {
		c.put(string(rune('a'+i%26))+string(rune('0'+i/26)), &pb.State{})
	}
	if n := c.Len(); n != 3 {
		t.Fatalf("cache holds %d states, want 3", n)
	}
}
