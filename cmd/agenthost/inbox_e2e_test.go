//go:build linux

package main

import (
	"context"
	"encoding/json"
	"syscall"
	"testing"
	"time"

	sqlplugin "github.com/agenthost/agenthost/plugins/sql"
	"github.com/agenthost/agenthost/sdk"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// TestAcceptedMessageSurvivesHostDeath puts a message in the inbox as the
// host does when a connector hands one over (and the connector then
// acknowledges it to its platform), as if the host had died before
// handling it. The next host must handle it.
func TestAcceptedMessageSurvivesHostDeath(t *testing.T) {
	dataDir := t.TempDir()
	d := startDaemon(t, daemonOpts{dataDir: dataDir})
	d.say("Eliza", "hello")
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	d.waitExit(20 * time.Second)

	agentID := sdk.DefaultCharacter().AgentID()
	req := &pb.ReceiveMessageRequest{AgentId: agentID, Source: "test-connector", MessageId: "platform-msg-1",
		ChannelId: "chat-42", UserId: "user-7", UserName: "river", ChannelType: string(sdk.ChannelDM),
		Content: &pb.Content{Text: "I was accepted before the crash"}}
	raw, err := protojson.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	store, err := sqlplugin.Open(ctx, sqlplugin.Config{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	msgID := sdk.CreateUniqueUUID(agentID, "platform-msg-1")
	if _, err := store.CreateTask(ctx, agentID, sdk.Task{ID: msgID, Name: "agenthost:inbox", Tags: []string{"agenthost:inbox"},
		Metadata: map[string]any{"request": json.RawMessage(raw)}}); err != nil {
		t.Fatal(err)
	}
	store.Close()

	d2 := startDaemon(t, daemonOpts{dataDir: dataDir})
	room := sdk.CreateUniqueUUID(agentID, "chat-42")
	var mems []memoryJSON
	for deadline := time.Now().Add(30 * time.Second); ; {
		mems = d2.memories("Eliza", room)
		if len(mems) >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(mems) != 2 || mems[1].ID != msgID || mems[1].Content.Text != "I was accepted before the crash" {
		t.Fatalf("the held message should be handled by the next host, with its reply: %+v", mems)
	}
	// Handled, it leaves the inbox.
	if err := d2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	d2.waitExit(20 * time.Second)
	store, err = sqlplugin.Open(ctx, sqlplugin.Config{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	left, err := store.GetTasks(ctx, agentID, sdk.TaskQuery{Name: "agenthost:inbox", Tags: []string{"agenthost:inbox"}})
	if err != nil || len(left) != 0 {
		t.Fatalf("the inbox should be empty, got %d entries (%v)", len(left), err)
	}
}
