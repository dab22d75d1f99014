package sqlstore

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
	"github.com/google/uuid"
)

// The environment of the child process of TestSurvivesSIGKILL.
const (
	childDirEnv   = "AGENTHOST_SQL_TEST_CHILD_DIR"
	childAgentEnv = "AGENTHOST_SQL_TEST_CHILD_AGENT"
	childRoomEnv  = "AGENTHOST_SQL_TEST_CHILD_ROOM"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(childDirEnv); dir != "" {
		os.Exit(sigkillChild(dir, os.Getenv(childAgentEnv), os.Getenv(childRoomEnv)))
	}
	if u := os.Getenv(migrateChildEnv); u != "" {
		if u == "sqlite" {
			u = ""
		}
		os.Exit(migrateChild(u))
	}
	os.Exit(m.Run())
}

// sigkillChild writes memories until it is killed, printing the id of each
// one after CreateMemory has returned.
func sigkillChild(dir, agent, room string) int {
	s, err := Open(context.Background(), Config{DataDir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	out := bufio.NewWriter(os.Stdout)
	for i := 0; ; i++ {
		m := message(room, agent, fmt.Sprint("message ", i))
		id, _, err := s.CreateMemory(context.Background(), agent, m, sdk.TableMessages, false)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Fprintln(out, id)
		out.Flush()
	}
}

func TestSQLiteFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := Open(ctx, Config{DataDir: filepath.Join(dir, "a dir?with#odd%chars")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := os.Stat(filepath.Join(dir, "a dir?with#odd%chars", FileName)); err != nil {
		t.Fatal(err)
	}
	for pragma, want := range map[string]string{"journal_mode": "wal", "foreign_keys": "1", "synchronous": "1", "busy_timeout": "10000", "mmap_size": "0", "cache_size": "-256"} {
		var got string
		if err := s.db.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if !strings.EqualFold(got, want) {
			t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
		}
	}
	if _, err := Open(ctx, Config{}); err == nil {
		t.Error("opened without DataDir")
	}
	if _, err := Open(ctx, Config{URL: "mysql://x"}); err == nil {
		t.Error("opened a mysql URL")
	}
}

func TestReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, err := Open(ctx, Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	migrated(t, s)
	agent := newAgent(t, s)
	room, user := uuid.NewString(), uuid.NewString()
	if err := s.EnsureConnection(ctx, agent, storage.Connection{Room: sdk.Room{ID: room}, Entity: sdk.Entity{ID: user, Names: []string{"u"}}}); err != nil {
		t.Fatal(err)
	}
	m := message(room, user, "remember me")
	m.Embedding = unit(4, 0, 0)
	id := mustCreate(t, s, agent, m, sdk.TableMessages, false)
	if err := s.SetCache(ctx, agent, "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(ctx, Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rep, err := s.Migrate(ctx)
	if err != nil || rep.Applied != 0 {
		t.Fatal(rep, err)
	}
	got, err := s.SearchMemories(ctx, agent, storage.SearchQuery{Embedding: unit(4, 0, 0)})
	if err != nil || len(got) != 1 || got[0].ID != id || got[0].Content.Text != "remember me" {
		t.Fatal(got, err)
	}
	if prev, err := s.EnsureEmbeddingDimension(ctx, agent, 4); err != nil || prev != 4 {
		t.Fatal(prev, err)
	}
	if parts, _ := s.GetParticipants(ctx, agent, room); len(parts) != 2 {
		t.Fatal(parts)
	}
	if v, ok, _ := s.GetCache(ctx, agent, "k"); !ok || string(v) != "v" {
		t.Fatal(v, ok)
	}
}

// TestSurvivesSIGKILL kills a process that is writing and checks that every
// write it had acknowledged is in the file: WAL with synchronous=NORMAL
// loses nothing to a process crash.
func TestSurvivesSIGKILL(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	s := migrated(t, openSQLiteAt(t, dir))
	agent, room := newAgent(t, s), uuid.NewString()
	s.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir, childAgentEnv+"="+agent, childRoomEnv+"="+room)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []string
	lines := bufio.NewScanner(stdout)
	deadline := time.Now().Add(30 * time.Second)
	for len(acked) < 300 && lines.Scan() {
		acked = append(acked, lines.Text())
		if time.Now().After(deadline) {
			break
		}
	}
	// Mid-write: the child is still inserting.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for lines.Scan() {
		acked = append(acked, lines.Text()) // written before the kill
	}
	_ = cmd.Wait()
	if len(acked) < 300 {
		t.Fatalf("child acknowledged %d writes; stderr: %s", len(acked), stderr.String())
	}

	s = openSQLiteAt(t, dir)
	got, err := s.GetMemoriesByIDs(ctx, agent, acked, sdk.TableMessages)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(acked) {
		t.Fatalf("%d of %d acknowledged memories survived", len(got), len(acked))
	}
	n, _ := s.CountMemories(ctx, agent, room, "", false)
	t.Logf("%d acknowledged, %d stored", len(acked), n)
}

func openSQLiteAt(t *testing.T, dir string) *Store {
	s, err := Open(ctx, Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
