package host

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/agenthost/agenthost/internal/contract"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
)

// inboxTag marks a message a connector handed over without waiting for
// the agent. It is stored, as a task of the database plugin, before the
// connector hears "accepted" (and, say, acknowledges the update to
// Telegram), and removed once handled; a host that dies in between
// handles it at its next start. Handling twice is safe: the message's id
// comes from the platform's, and bootstrap stores and answers an id once.
const inboxTag = "agenthost:inbox"

// hold stores an incoming message in the inbox. held is false when the
// very same message is already waiting there (delivered twice); durable is
// false when the database plugin keeps no tasks, and the message is only
// in memory.
func (a *AgentRuntime) hold(ctx context.Context, req *pb.ReceiveMessageRequest, id string) (held, durable bool, err error) {
	raw, err := protojson.Marshal(req)
	if err != nil {
		return false, false, fmt.Errorf("keep the message: %w", err)
	}
	p, c, err := a.db(ctx)
	if err != nil {
		return false, false, err
	}
	ctx, cancel := ensureDeadline(ctx, contract.DefaultCallTimeout)
	defer cancel()
	_, err = c.db.CreateTask(ctx, &pb.CreateTaskRequest{AgentId: a.ID, Task: &pb.Task{
		Id: id, Name: inboxTag, Tags: []string{inboxTag}, AgentId: a.ID,
		MetadataJson: mustJSON(map[string]any{"request": json.RawMessage(raw)}),
	}})
	if err != nil {
		if status.Code(err) == codes.Unimplemented {
			return true, false, nil
		}
		if strings.Contains(statusText(err), "is stored") {
			return false, true, nil
		}
		return false, false, fmt.Errorf("keep the message until it is handled: %w", p.callErr(c, "CreateTask", err))
	}
	return true, true, nil
}

// release removes a handled message from the inbox.
func (a *AgentRuntime) release(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), contract.DefaultCallTimeout)
	defer cancel()
	p, c, err := a.db(ctx)
	if err == nil {
		_, err = c.db.DeleteTask(ctx, &pb.DeleteTaskRequest{AgentId: a.ID, Id: id})
		if err != nil {
			err = p.callErr(c, "DeleteTask", err)
		}
	}
	if err != nil {
		// It stays in the inbox and is handled again at the next start,
		// where bootstrap recognises it as handled.
		a.log.Warn("could not clear a handled message from the inbox", "message", id, "error", err)
	}
}

// handleHeld runs a held message through the agent and clears it.
func (a *AgentRuntime) handleHeld(in *incoming, durable bool) {
	if _, _, err := a.receive(context.Background(), in); err != nil {
		a.log.Error("message failed", "source", in.source, "message", in.messageID, "error", err)
		if st, _ := a.Status(); st != AgentRunning {
			// Not handled: leave it for the agent's next start.
			return
		}
	}
	if durable {
		a.release(in.messageID)
	}
}

// replayInbox handles the messages a previous run of the host accepted but
// did not finish.
func (a *AgentRuntime) replayInbox(ctx context.Context) {
	p, c, err := a.db(ctx)
	if err != nil {
		return
	}
	ctx, cancel := ensureDeadline(ctx, contract.DefaultCallTimeout)
	res, err := c.db.GetTasks(ctx, &pb.GetTasksRequest{AgentId: a.ID, Name: inboxTag, Tags: []string{inboxTag}})
	cancel()
	if err != nil {
		a.log.Warn("could not read the inbox", "error", p.callErr(c, "GetTasks", err))
		return
	}
	for _, t := range res.GetTasks() {
		var meta struct {
			Request json.RawMessage `json:"request"`
		}
		req := &pb.ReceiveMessageRequest{}
		if err := json.Unmarshal(t.GetMetadataJson(), &meta); err != nil || protojson.Unmarshal(meta.Request, req) != nil {
			a.log.Error("dropping an unreadable message from the inbox", "task", t.GetId())
			a.release(t.GetId())
			continue
		}
		in := a.mapIncoming(req)
		if in.messageID != t.GetId() {
			// A message without a platform id got a random one when it was
			// held; keep that one, so the inbox entry is the one cleared.
			in.messageID = t.GetId()
		}
		a.log.Info("handling a message accepted before the last stop", "source", in.source, "message", in.messageID)
		a.d.background(func() { a.handleHeld(in, true) })
	}
}
