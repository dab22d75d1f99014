package plugincheck

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/agenthost/agenthost/sdk"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

// The sample agent, conversation and inputs the plugin is called with.
const (
	sampleAgentName = "Checker"
	sampleUser      = "6f3a1c2e-0b7d-4c59-9e21-5d8f0a4b7c13"
	sampleRoom      = "2d9e7b41-8c3f-4a6d-b015-7e4c9f2a8d60"
	sampleText      = "Hello! What can you do for me today?"
)

var (
	sampleAgent = (&sdk.Character{Name: sampleAgentName}).AgentID()
	// largeAgent is configured with a 5 MiB character.
	largeAgent = (&sdk.Character{Name: sampleAgentName + " Large"}).AgentID()
	// otherAgent is configured with a character that is not JSON.
	otherAgent = (&sdk.Character{Name: sampleAgentName + " Other"}).AgentID()
	// strangerAgent is never configured.
	strangerAgent = (&sdk.Character{Name: sampleAgentName + " Stranger"}).AgentID()
)

// characterJSON is the sample agent's character; extraBio pads it.
func characterJSON(name, plugin string, extraBio int) []byte {
	bio := []string{"An agent that agenthost plugins check runs to try a plugin."}
	if extraBio > 0 {
		bio = append(bio, strings.Repeat("A very long biography. ", extraBio/23+1)[:extraBio])
	}
	b, _ := json.Marshal(map[string]any{"name": name, "bio": bio, "plugins": []string{plugin},
		"system": "You are a helpful agent.", "messageExamples": []any{}, "topics": []string{"plugins"}})
	return b
}

var ids atomic.Int64

// newID is a fresh UUID-shaped id.
func newID() string {
	return fmt.Sprintf("00000000-0000-4000-8000-%012x", 0xc0ffee000000+ids.Add(1))
}

func sampleMessage() *pb.Memory {
	return &pb.Memory{Id: newID(), EntityId: sampleUser, AgentId: sampleAgent, RoomId: sampleRoom,
		Content:   &pb.Content{Text: sampleText, Source: "plugins-check", ChannelType: string(sdk.ChannelDM)},
		CreatedAt: time.Now().UnixMilli()}
}

// sampleReply is the agent's reply to the sample message.
func sampleReply(to *pb.Memory) *pb.Memory {
	return &pb.Memory{Id: newID(), EntityId: sampleAgent, AgentId: sampleAgent, RoomId: sampleRoom,
		Content:   &pb.Content{Text: "I can help with that.", Source: "plugins-check", InReplyTo: to.GetId(), Actions: []string{"REPLY"}},
		CreatedAt: time.Now().UnixMilli()}
}

func sampleState() *pb.State {
	return &pb.State{ValuesJson: []byte(`{"agentName": "` + sampleAgentName + `", "recentMessages": "user: ` + sampleText + `"}`),
		DataJson: []byte(`{}`), Text: "# About " + sampleAgentName + "\nAn agent that agenthost plugins check runs."}
}
