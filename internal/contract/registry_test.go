package contract

import (
	"testing"

	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

// fakePlugin is a plugin as a registry sees it: a name and a manifest.
type fakePlugin struct {
	name string
	m    *pb.Manifest
}

func (p *fakePlugin) Name() string           { return p.name }
func (p *fakePlugin) Manifest() *pb.Manifest { return p.m }

func newFake(name string, m *pb.Manifest) *fakePlugin { return &fakePlugin{name: name, m: m} }

func TestResolveAction(t *testing.T) {
	p := newFake("a", &pb.Manifest{Actions: []*pb.ActionSpec{
		{Name: "REPLY", Similes: []string{"RESPOND"}},
		{Name: "SEND_MESSAGE", Similes: []string{"DM", "MESSAGE_USER"}},
		{Name: "MUTE_ROOM"},
		{Name: "UNMUTE_ROOM"},
	}})
	r, err := NewRegistry([]*fakePlugin{p})
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
		if e := r.ResolveAction(in); e != nil {
			got = e.Spec.GetName()
		}
		if got != want {
			t.Errorf("ResolveAction(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRegistryModelPriority(t *testing.T) {
	low := newFake("low", &pb.Manifest{Models: []*pb.ModelSpec{{Type: "TEXT_LARGE", Priority: 0}}})
	high := newFake("high", &pb.Manifest{Models: []*pb.ModelSpec{{Type: "TEXT_LARGE", Priority: 10}}})
	first := newFake("first", &pb.Manifest{Models: []*pb.ModelSpec{{Type: "TEXT_SMALL", Priority: 0}}})
	second := newFake("second", &pb.Manifest{Models: []*pb.ModelSpec{{Type: "TEXT_SMALL", Priority: 0}}})
	r, err := NewRegistry([]*fakePlugin{low, high, first, second})
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := r.Model("TEXT_LARGE", ""); p != high {
		t.Errorf("TEXT_LARGE: want the higher priority plugin")
	}
	if p, _ := r.Model("TEXT_SMALL", ""); p != first {
		t.Errorf("TEXT_SMALL: on equal priority the earlier plugin wins")
	}
	if p, _ := r.Model("TEXT_LARGE", "low"); p != low {
		t.Errorf("a named provider must be honoured")
	}
	if _, err := r.Model("IMAGE", ""); err == nil {
		t.Errorf("a missing model type must be an error")
	}
}
