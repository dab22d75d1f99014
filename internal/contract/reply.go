package contract

import (
	"time"

	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"google.golang.org/protobuf/proto"
)

// ReplyMemory is how a reply a plugin sends through Runtime.Respond
// without a memory id is stored: message id, a new message of the agent in
// the room of the run's message, in reply to it, from the same source
// unless the content names its own.
func ReplyMemory(id, agentID string, msg *pb.Memory, c *pb.Content) *pb.Memory {
	if c == nil {
		c = &pb.Content{}
	} else {
		c = proto.Clone(c).(*pb.Content)
	}
	if c.GetSource() == "" {
		c.Source = msg.GetContent().GetSource()
	}
	if c.GetInReplyTo() == "" {
		c.InReplyTo = msg.GetId()
	}
	return &pb.Memory{Id: id, EntityId: agentID, AgentId: agentID, RoomId: msg.GetRoomId(), WorldId: msg.GetWorldId(),
		CreatedAt: time.Now().UnixMilli(), Table: "messages", Content: c}
}
