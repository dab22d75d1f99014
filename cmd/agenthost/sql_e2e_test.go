//go:build linux

package main

// End-to-end tests of the database through the real binary: the `db`
// commands, a SIGKILL of the sql plugin in the middle of a stream of writes,
// and a PostgreSQL server that goes away and comes back.

import (
	"context"
	"crypto/rand"
	dbsql "database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agenthost/agenthost/plugins/offline"
	sqlplugin "github.com/agenthost/agenthost/plugins/sql"
	"github.com/agenthost/agenthost/sdk"
	"github.com/google/uuid"
	_ "github.com/lib/pq"
)

const testPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// runCLI runs the agenthost binary with args in an empty work dir, with
// env added to a minimal environment.
func runCLI(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bins.agenthost, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// pgSchema makes a fresh schema in the test database, dropped at the end,
// and returns a URL (on host:port) whose search_path is that schema.
func pgSchema(t *testing.T, hostPort string) string {
	t.Helper()
	base := os.Getenv("POSTGRES_TEST_URL")
	if base == "" || base == "off" {
		if base == "off" && os.Getenv("CI") == "" {
			t.Skip("POSTGRES_TEST_URL=off")
		}
		base = testPostgresURL
	}
	admin, err := dbsql.Open("postgres", base)
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "agenthost_e2e_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		admin.Close()
		t.Fatalf("PostgreSQL at %s: %v", base, err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		admin.Close()
	})
	u, _ := url.Parse(base)
	if hostPort != "" {
		u.Host = hostPort
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func TestDBMigrateAndStatus(t *testing.T) {
	dataDir := t.TempDir()
	env := []string{"AGENTHOST_LOG_LEVEL=warn"}
	out, err := runCLI(t, env, "db", "status", "--data-dir", dataDir)
	if err != nil || !strings.Contains(out, "backend: sqlite") || !strings.Contains(out, "pending: run `agenthost db migrate`") {
		t.Fatalf("status of a fresh data dir: %v\n%s", err, out)
	}
	out, err = runCLI(t, env, "db", "status", "--json", "--data-dir", dataDir)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var st struct {
		Backend, VectorSearch string
		Pending               int
		Migrations            []struct {
			Version   int
			Name      string
			AppliedAt int64
		}
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	total := len(st.Migrations)
	if total < 6 || st.Pending != total || st.Migrations[4].Name != "memories: updated_at, embedded_at" {
		t.Fatalf("status: %+v", st)
	}
	out, err = runCLI(t, env, "db", "migrate", "--data-dir", dataDir)
	if want := fmt.Sprintf("sqlite: applied %d migration(s); %d of %d applied", total, total, total); err != nil || !strings.Contains(out, want) {
		t.Fatalf("migrate: %v\n%s\nwant %q", err, out, want)
	}
	if !strings.Contains(out, "vector search: in Go (SQLite") {
		t.Errorf("migrate should say how search runs:\n%s", out)
	}
	out, err = runCLI(t, env, "db", "status", "--data-dir", dataDir)
	if err != nil || !strings.Contains(out, "up to date") || strings.Contains(out, "pending") {
		t.Fatalf("status after migrate: %v\n%s", err, out)
	}
	out, err = runCLI(t, env, "db", "migrate", "--data-dir", dataDir)
	if err != nil || !strings.Contains(out, "applied 0 migration(s)") {
		t.Fatalf("second migrate: %v\n%s", err, out)
	}
}

// TestDBMigratePostgresProcesses runs two `agenthost db migrate` processes
// at once on one fresh PostgreSQL schema: each migration is applied once.
func TestDBMigratePostgresProcesses(t *testing.T) {
	u := pgSchema(t, "")
	env := []string{"AGENTHOST_LOG_LEVEL=warn", "POSTGRES_URL=" + u}
	re := regexp.MustCompile(`postgres: applied (\d+) migration\(s\); (\d+) of (\d+) applied`)
	outs := make([]string, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range outs {
		wg.Add(1)
		go func() { defer wg.Done(); outs[i], errs[i] = runCLI(t, env, "db", "migrate") }()
	}
	wg.Wait()
	applied, total := 0, 0
	for i, out := range outs {
		m := re.FindStringSubmatch(out)
		if errs[i] != nil || m == nil {
			t.Fatalf("process %d: %v\n%s", i, errs[i], out)
		}
		n, _ := strconv.Atoi(m[1])
		applied += n
		total, _ = strconv.Atoi(m[3])
		if m[2] != m[3] {
			t.Fatalf("process %d ended with migrations pending:\n%s", i, out)
		}
	}
	if applied != total {
		t.Fatalf("the two processes applied %d migrations, want %d:\n%s\n%s", applied, total, outs[0], outs[1])
	}
	out, err := runCLI(t, env, "db", "status")
	if err != nil || !strings.Contains(out, "backend: postgres") || !strings.Contains(out, "up to date") {
		t.Fatalf("status: %v\n%s", err, out)
	}
}

// TestDBReembed changes the embedding model's size under an agent that has
// memories with embeddings: the daemon refuses to start it, naming both
// sizes, `agenthost db reembed` re-embeds every memory with the new model,
// and the daemon starts again.
func TestDBReembed(t *testing.T) {
	dataDir := t.TempDir()
	d := startDaemon(t, daemonOpts{dataDir: dataDir})
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, out := d.waitExit(20 * time.Second); code != 0 {
		t.Fatalf("stop: %d\n%s", code, out)
	}

	// Memories embedded by the 384-value model, stored through the store.
	ctx := context.Background()
	s, err := sqlplugin.Open(ctx, sqlplugin.Config{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	agents, err := s.GetAgents(ctx)
	if err != nil || len(agents) != 1 || agents[0].Name != "Eliza" {
		t.Fatalf("agents: %+v %v", agents, err)
	}
	agent := agents[0].ID
	room := uuid.NewString()
	texts := map[string]string{}
	for i := 0; i < 30; i++ {
		text := fmt.Sprintf("memory %d about %s", i, []string{"green tea", "the sea", "my job", "a cat"}[i%4])
		m := &sdk.Memory{RoomID: room, EntityID: agent, Content: sdk.Content{Text: text}, Embedding: offline.Embed(text, 384)}
		id, _, err := s.CreateMemory(ctx, agent, m, sdk.TableFacts, true)
		if err != nil {
			t.Fatal(err)
		}
		texts[id] = text
	}
	emptyID, _, err := s.CreateMemory(ctx, agent, &sdk.Memory{RoomID: room, EntityID: agent, Embedding: offline.Embed("x", 384)}, sdk.TableFacts, false)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	newSize := []string{"OFFLINE_EMBEDDING_DIMENSIONS=256"}
	d = launch(t, daemonOpts{dataDir: dataDir, env: newSize})
	code, out := d.waitExit(30 * time.Second)
	if code == 0 || !strings.Contains(out, "is 256 but the agent stores 384") || !strings.Contains(out, "agenthost db reembed --agent Eliza") {
		t.Fatalf("a model of another size must stop the agent with both sizes named and the way out, got exit %d:\n%s", code, tail(out, 3000))
	}

	out, err = runCLI(t, append(newSize, "AGENTHOST_LOG_LEVEL=warn"), "db", "reembed", "--agent", "eliza", "--data-dir", dataDir, "--batch", "7")
	if err != nil {
		t.Fatalf("reembed: %v\n%s", err, out)
	}
	if !strings.Contains(out, "embedding size 384 → 256 (31 memories of another size wait)") ||
		!strings.Contains(out, "agent Eliza: re-embedded 30 memories (1 without text lost their embedding); embedding size 256") {
		t.Fatalf("reembed output:\n%s", out)
	}

	s, err = sqlplugin.Open(ctx, sqlplugin.Config{DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 0, len(texts))
	for id := range texts {
		ids = append(ids, id)
	}
	got, err := s.GetMemoriesByIDs(ctx, agent, append(ids, emptyID), "")
	if err != nil || len(got) != 31 {
		t.Fatalf("%d memories, %v", len(got), err)
	}
	for _, m := range got {
		if m.ID == emptyID {
			if len(m.Embedding) != 0 {
				t.Errorf("the memory without text kept an embedding of %d", len(m.Embedding))
			}
			continue
		}
		want := offline.Embed(texts[m.ID], 256)
		if len(m.Embedding) != 256 {
			t.Fatalf("memory %s has %d values", m.ID, len(m.Embedding))
		}
		for k := range want {
			if m.Embedding[k] != want[k] {
				t.Fatalf("memory %s: value %d is %v, the model gives %v", m.ID, k, m.Embedding[k], want[k])
			}
		}
	}
	res, err := s.SearchMemories(ctx, agent, sdk.SearchQuery{Embedding: offline.Embed(texts[ids[0]], 256), Count: 3})
	if err != nil || len(res) == 0 || res[0].ID != ids[0] || math.Abs(res[0].Similarity-1) > 1e-6 {
		t.Fatalf("search after reembed: %+v %v", res, err)
	}
	s.Close()

	d = startDaemon(t, daemonOpts{dataDir: dataDir, env: newSize})
	d.say("Eliza", "hello again")
}

// sqlPluginPID finds the daemon's sql plugin process.
func sqlPluginPID(t *testing.T, d *daemon) int {
	t.Helper()
	for _, p := range children(d.cmd.Process.Pid) {
		if strings.Contains(cmdline(p), "__plugin sql") && alive(p) {
			return p
		}
	}
	return 0
}

type sentMessage struct {
	room, text       string
	messageID        string
	replyID, reply   string
	code             int
	afterKill, error bool
}

// TestSQLPluginSIGKILLUnderWrites sends messages from several clients at
// once and SIGKILLs the sql plugin in the middle of them. Every message the
// API acknowledged (200) must be stored with its reply, the database must
// hold no half-written row, and the host must restart the plugin and go on
// answering.
func TestSQLPluginSIGKILLUnderWrites(t *testing.T) {
	dataDir := t.TempDir()
	d := startDaemon(t, daemonOpts{dataDir: dataDir})
	oldPID := sqlPluginPID(t, d)
	if oldPID == 0 {
		t.Fatal("no sql plugin process")
	}
	const workers = 6
	var (
		mu     sync.Mutex
		sent   []sentMessage
		killed bool
		stop   = make(chan struct{})
		wg     sync.WaitGroup
	)
	okCount := func(after bool) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, m := range sent {
			if m.code == http.StatusOK && m.afterKill == after {
				n++
			}
		}
		return n
	}
	client := &http.Client{Timeout: 60 * time.Second}
	for w := 0; w < workers; w++ {
		room := uuid.NewString()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				text := fmt.Sprintf("worker %d message %d", w, i)
				body, _ := json.Marshal(map[string]string{"text": text, "userName": fmt.Sprint("user", w), "roomId": room})
				mu.Lock()
				after := killed
				mu.Unlock()
				m := sentMessage{room: room, text: text, afterKill: after}
				res, err := client.Post(d.url+"/api/agents/Eliza/messages", "application/json", strings.NewReader(string(body)))
				if err != nil {
					m.error = true
				} else {
					raw, _ := io.ReadAll(res.Body)
					res.Body.Close()
					m.code = res.StatusCode
					var env envelope
					_ = json.Unmarshal(raw, &env)
					var data struct {
						RoomID    string `json:"roomId"`
						MessageID string `json:"messageId"`
						Messages  []struct{ ID, Text string }
					}
					_ = json.Unmarshal(env.Data, &data)
					if m.code == http.StatusOK {
						if len(data.Messages) != 1 || data.MessageID == "" {
							t.Errorf("a 200 without the message id and one reply: %s", raw)
						} else {
							m.room, m.messageID, m.replyID, m.reply = data.RoomID, data.MessageID, data.Messages[0].ID, data.Messages[0].Text
						}
					}
				}
				mu.Lock()
				sent = append(sent, m)
				mu.Unlock()
				if m.code != http.StatusOK {
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); !cond(); {
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("20 acknowledged messages", func() bool { return okCount(false) >= 20 })
	mu.Lock()
	killed = true
	mu.Unlock()
	// Three kills, each once the host carries on again, so that some land
	// in the middle of a write.
	pid := oldPID
	for k := 1; k <= 3; k++ {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		want := 10 * k
		waitFor(fmt.Sprintf("%d acknowledged messages after kill %d", want, k), func() bool { return okCount(true) >= want })
		next := sqlPluginPID(t, d)
		if next == 0 || next == pid || alive(pid) {
			t.Fatalf("kill %d: the sql plugin was not replaced: pid %d → %d", k, pid, next)
		}
		pid = next
	}
	close(stop)
	wg.Wait()
	failed := 0
	for _, m := range sent {
		if m.code != http.StatusOK {
			failed++
		}
	}
	t.Logf("%d messages sent, %d acknowledged before the kill, %d after, %d refused or failed",
		len(sent), okCount(false), okCount(true), failed)

	// Every acknowledged message and its reply are stored.
	byRoom := map[string]map[string]memoryJSON{}
	for _, m := range sent {
		if m.code != http.StatusOK {
			continue
		}
		mems, ok := byRoom[m.room]
		if !ok {
			mems = map[string]memoryJSON{}
			code, env := d.get("/api/memory/Eliza/memories?count=1000&roomId=" + m.room)
			if code != http.StatusOK {
				t.Fatalf("memories of %s: %d %+v", m.room, code, env.Error)
			}
			var data struct{ Memories []memoryJSON }
			if err := json.Unmarshal(env.Data, &data); err != nil {
				t.Fatal(err)
			}
			for _, x := range data.Memories {
				mems[x.ID] = x
			}
			byRoom[m.room] = mems
		}
		if got, ok := mems[m.messageID]; !ok || got.Content.Text != m.text {
			t.Errorf("acknowledged message %q (%s) is not stored: %+v", m.text, m.messageID, got)
		}
		if got, ok := mems[m.replyID]; !ok || got.Content.Text != m.reply {
			t.Errorf("the acknowledged reply %q (%s) to %q is not stored", m.reply, m.replyID, m.text)
		}
	}

	// No half-written rows: stop the daemon and read the file directly.
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	d.waitExit(20 * time.Second)
	checkNoHalfWrittenRows(t, filepath.Join(dataDir, sqlplugin.FileName))
}

// checkNoHalfWrittenRows checks the SQLite file: intact, every foreign key
// satisfied, every memory whole (JSON content with its text, in a stored
// room, written by a participant of that room).
func checkNoHalfWrittenRows(t *testing.T, path string) {
	t.Helper()
	db, err := dbsql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var integrity string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&integrity); err != nil || integrity != "ok" {
		t.Fatalf("integrity_check: %q %v", integrity, err)
	}
	rows, err := db.Query(`PRAGMA foreign_key_check`)
	if err != nil {
		t.Fatal(err)
	}
	if rows.Next() {
		t.Error("foreign_key_check reports violations")
	}
	rows.Close()
	checks := map[string]string{
		"memories whose content is not whole": `SELECT count(*) FROM memories
			WHERE json_valid(content) = 0 OR json_type(content, '$.text') IS NOT 'text' OR json_valid(metadata) = 0`,
		"memories of a room that is not stored": `SELECT count(*) FROM memories m
			WHERE NOT EXISTS (SELECT 1 FROM rooms r WHERE r.agent_id = m.agent_id AND r.id = m.room_id)`,
		"memories whose author is no participant of their room": `SELECT count(*) FROM memories m
			WHERE NOT EXISTS (SELECT 1 FROM participants p WHERE p.agent_id = m.agent_id AND p.room_id = m.room_id AND p.entity_id = m.entity_id)`,
		"participants that are not stored entities": `SELECT count(*) FROM participants p
			WHERE NOT EXISTS (SELECT 1 FROM entities e WHERE e.agent_id = p.agent_id AND e.id = p.entity_id)`,
	}
	for what, q := range checks {
		var n int
		if err := db.QueryRow(q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if n != 0 {
			t.Errorf("%d %s", n, what)
		}
	}
	var total int
	_ = db.QueryRow(`SELECT count(*) FROM memories`).Scan(&total)
	t.Logf("%d memories checked", total)
}

// tcpProxy forwards a local port to a target; stop cuts every connection
// and closes the port, start opens the same port again.
type tcpProxy struct {
	t      *testing.T
	target string
	addr   string
	mu     sync.Mutex
	lis    net.Listener
	conns  map[net.Conn]bool
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	p := &tcpProxy{t: t, target: target, conns: map[net.Conn]bool{}}
	p.start()
	t.Cleanup(p.stop)
	return p
}

func (p *tcpProxy) start() {
	p.t.Helper()
	addr := p.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lis net.Listener
	var err error
	for i := 0; i < 50; i++ { // the port may linger for a moment
		if lis, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.lis, p.addr = lis, lis.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = true, true
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close(); c.Close() }()
			go func() { _, _ = io.Copy(c, up); up.Close(); c.Close() }()
		}
	}()
}

func (p *tcpProxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lis != nil {
		p.lis.Close()
		p.lis = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
}

// TestSQLPostgresGoesAway runs the daemon on PostgreSQL through a TCP proxy,
// then cuts the proxy: calls that need the database fail with an error that
// says so, the host stays up, and work resumes once the database is back.
func TestSQLPostgresGoesAway(t *testing.T) {
	proxy := newTCPProxy(t, "127.0.0.1:5432")
	u := pgSchema(t, proxy.addr)
	d := startDaemon(t, daemonOpts{env: []string{"POSTGRES_URL=" + u}})
	m := d.say("Eliza", "I like the sea")

	proxy.stop()
	start := time.Now()
	code, env := d.post("/api/agents/Eliza/messages", map[string]string{"text": "are you there?", "roomId": m.RoomID})
	if code == http.StatusOK || env.Error == nil {
		t.Fatalf("a message with the database gone: %d %+v", code, env)
	}
	t.Logf("message without the database: %d %s: %s (after %s)", code, env.Error.Code, env.Error.Message, time.Since(start).Round(time.Millisecond))
	if !strings.Contains(env.Error.Message, "database is unreachable") {
		t.Errorf("the error should say the database is unreachable: %s", env.Error.Message)
	}
	code, env = d.get("/api/memory/Eliza/memories?roomId=" + m.RoomID)
	if code != http.StatusServiceUnavailable || env.Error == nil || !strings.Contains(env.Error.Message, "the postgres database is unreachable") {
		t.Fatalf("reading memories with the database gone: %d %+v", code, env.Error)
	}
	// The host stays up.
	if code, _ := d.get("/api/agents"); code != http.StatusOK {
		t.Fatalf("the host should still answer: %d", code)
	}
	select {
	case <-d.exited:
		t.Fatal("the daemon exited")
	default:
	}

	proxy.start()
	var back messagesData
	for deadline := time.Now().Add(30 * time.Second); ; {
		code, env := d.post("/api/agents/Eliza/messages", map[string]string{"text": "back again", "roomId": m.RoomID})
		if code == http.StatusOK {
			_ = json.Unmarshal(env.Data, &back)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("work did not resume when the database came back: %d %+v", code, env.Error)
		}
		time.Sleep(200 * time.Millisecond)
	}
	mems := d.memories("Eliza", m.RoomID)
	texts := map[string]bool{}
	for _, x := range mems {
		texts[x.Content.Text] = true
	}
	if !texts["I like the sea"] || !texts["back again"] || len(back.Messages) != 1 || !texts[back.Messages[0].Text] {
		t.Fatalf("after the database came back: %+v", mems)
	}
}
