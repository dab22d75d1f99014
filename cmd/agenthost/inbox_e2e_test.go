//go:build linux

package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/agenthost/agenthost/host"
	"github.com/agenthost/agenthost/internal/testwait"
	"github.com/agenthost/agenthost/plugins/sqlstore"
	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/character"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/agenthost/agenthost/sdk/storage"
	"google.golang.org/protobuf/encoding/protojson"
)

// TestAcceptedMessageSurvivesHostDeath puts a message in the inbox as the
// host does when a connector hands one over (and the connector then
// acknowledges it to its platform), as if the host had died before
// handling it. The next host must handle it.
func TestAcceptedMessageSurvivesHostDeath(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	d := startDaemon(t, daemonOpts{dataDir: dataDir})
	d.say("Eliza", "hello")
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	d.waitExit(20 * time.Second)

	agentID := character.Default().AgentID()
	req := &pb.ReceiveMessageRequest{AgentId: agentID, Source: "test-connector", MessageId: "platform-msg-1",
		ChannelId: "chat-42", UserId: "user-7", UserName: "river", ChannelType: string(sdk.ChannelDM),
		Content: &pb.Content{Text: "I was accepted before the crash"}}
	raw, err := protojson.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, sqlstore.Config{DataDir: host.PluginDir(dataDir, "sql")})
	if err != nil {
		t.Fatal(err)
	}
	msgID := sdk.CreateUniqueUUID(agentID, "platform-msg-1")
	if _, err := store.CreateTask(ctx, agentID, storage.Task{ID: msgID, Name: "agenthost:inbox", Tags: []string{"agenthost:inbox"},
		Metadata: map[string]any{"request": json.RawMessage(raw)}}); err != nil {
		t.Fatal(err)
	}
	store.Close()

	d2 := startDaemon(t, daemonOpts{dataDir: dataDir})
	room := sdk.CreateUniqueUUID(agentID, "chat-42")
	var mems []memoryJSON
	testwait.For(t, 30*time.Second, "the held message and its reply", func() bool {
		mems = d2.memories("Eliza", room)
		return len(mems) >= 2
	})
	if len(mems) != 2 || mems[1].ID != msgID || mems[1].Content.Text != "I was accepted before the crash" {
		t.Fatalf("the held message should be handled by the next host, with its reply: %+v", mems)
	}
	// Handled, it leaves the inbox.
	if err := d2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	d2.waitExit(20 * time.Second)
	store, err = sqlstore.Open(ctx, sqlstore.Config{DataDir: host.PluginDir(dataDir, "sql")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	left, err := store.GetTasks(ctx, agentID, storage.TaskQuery{Name: "agenthost:inbox", Tags: []string{"agenthost:inbox"}})
	if err != nil || len(left) != 0 {
		t.Fatalf("the inbox should be empty, got %d entries (%v)", len(left), err)
	}
}

// waitInboxEmpty waits until the daemon has handled every message a
// connector handed over without waiting: they are held in its inbox (the
// sql plugin's SQLite file, read here beside the daemon) until handled,
// replies sent. A connector hears "accepted" or "duplicate" only once the
// message is held or refused, so when the inbox is empty after the
// platform's deliveries were answered, no reply to them can still come.
func (d *daemon) waitInboxEmpty(agentID string) {
	d.t.Helper()
	path := filepath.Join(host.PluginDir(d.dataDir, "sql"), sqlstore.FileName)
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		d.t.Fatal(err)
	}
	defer db.Close()
	testwait.ForNil(d.t, 60*time.Second, "the inbox to be empty", func() error {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM tasks WHERE agent_id = ? AND name = 'agenthost:inbox'`, agentID).Scan(&n); err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		if n > 0 {
			return fmt.Errorf("%d messages held", n)
		}
		return nil
	})
}
