//go:build linux

package main

// End-to-end tests of the database through the real binary: the `db`
// commands, a SIGKILL of the sql plugin in the middle of a stream of writes,
// and a PostgreSQL server that goes away and comes back.

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math"
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

	"github.com/agenthost/agenthost/host"
	"github.com/agenthost/agenthost/internal/pgtest"
	"github.com/agenthost/agenthost/internal/testwait"
	"github.com/agenthost/agenthost/plugins/offline"
	"github.com/agenthost/agenthost/plugins/sqlstore"
	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
	"github.com/google/uuid"
	_ "github.com/lib/pq"
)

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

func TestDBMigrateAndStatus(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	env := []string{"AGENTHOST_LOG_LEVEL=warn"}

	// Looking creates nothing: not the data dir, not a database in it.
	missing := filepath.Join(parent, "never-started")
	out, err := runCLI(t, env, "db", "status", "--data-dir", missing)
	if err == nil || !strings.Contains(out, "there is no data dir at "+missing) {
		t.Fatalf("status of a data dir that does not exist: %v\n%s", err, out)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("db status made the data dir %s: %v", missing, err)
	}
	dataDir := filepath.Join(parent, "data")
	if err := os.Mkdir(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(host.PluginDir(dataDir, "sql"), sqlstore.FileName)
	out, err = runCLI(t, env, "db", "status", "--data-dir", dataDir)
	if err == nil || !strings.Contains(out, "there is no database at "+dbPath+" yet") || !strings.Contains(out, "agenthost db migrate") {
		t.Fatalf("status of an empty data dir: %v\n%s", err, out)
	}
	if _, err := os.Stat(dbPath); !os.IsNotExist(err) {
		t.Fatalf("db status made a database: %v", err)
	}

	out, err = runCLI(t, env, "db", "migrate", "--data-dir", dataDir)
	re := regexp.MustCompile(`sqlite: applied (\d+) migration\(s\); (\d+) of (\d+) applied`)
	m := re.FindStringSubmatch(out)
	if err != nil || m == nil || m[1] != m[3] || m[2] != m[3] || !strings.Contains(out, "database: "+dbPath) {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	if !strings.Contains(out, "vector search: HNSW index (8-bit vectors, saved in ") || !strings.Contains(out, "; exact search: in Go (SQLite") {
		t.Errorf("migrate should say how search runs:\n%s", out)
	}
	for _, p := range []string{dataDir, filepath.Dir(dbPath)} {
		if info, err := os.Stat(p); err != nil || info.Mode().Perm() != 0o700 {
			t.Errorf("%s should be private (0700): %v %v", p, info.Mode(), err)
		}
	}
	if info, err := os.Stat(dbPath); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("the database holds secrets and should be 0600: %v %v", info.Mode(), err)
	}
	out, err = runCLI(t, env, "db", "status", "--data-dir", dataDir)
	if err != nil || !strings.Contains(out, "up to date") || strings.Contains(out, "pending") || !strings.Contains(out, "database: "+dbPath) {
		t.Fatalf("status after migrate: %v\n%s", err, out)
	}
	out, err = runCLI(t, env, "db", "status", "--json", "--data-dir", dataDir)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var st struct {
		Database, Backend, VectorSearch string
		Pending                         int
		Migrations                      []struct {
			Version   int
			Name      string
			AppliedAt int64
		}
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(st.Migrations) < 6 || st.Pending != 0 || st.Database != dbPath || st.Migrations[4].Name != "memories: updated_at, embedded_at" || st.Migrations[4].AppliedAt == 0 {
		t.Fatalf("status: %+v", st)
	}
	out, err = runCLI(t, env, "db", "migrate", "--data-dir", dataDir)
	if err != nil || !strings.Contains(out, "applied 0 migration(s)") {
		t.Fatalf("second migrate: %v\n%s", err, out)
	}
}

// TestDBStatusPostgresPending: on a fresh PostgreSQL schema every
// migration is pending, and the URL is shown without its password.
func TestDBStatusPostgresPending(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(pgtest.Schema(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("postgres", "hunter2") // trust auth ignores it
	env := []string{"AGENTHOST_LOG_LEVEL=warn", "POSTGRES_URL=" + u.String()}
	out, err := runCLI(t, env, "db", "status", "--data-dir", t.TempDir())
	if err != nil || !strings.Contains(out, "backend: postgres") || !strings.Contains(out, "pending: run `agenthost db migrate`") {
		t.Fatalf("status of a fresh schema: %v\n%s", err, out)
	}
	if strings.Contains(out, "hunter2") || !strings.Contains(out, "database: postgres://postgres:xxxxx@") {
		t.Errorf("the status should name the database without its password:\n%s", out)
	}
}

// TestDBMigratePostgresProcesses runs two `agenthost db migrate` processes
// at once on one fresh PostgreSQL schema: each migration is applied once.
func TestDBMigratePostgresProcesses(t *testing.T) {
	t.Parallel()
	u := pgtest.Schema(t, "")
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
	t.Parallel()
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
	s, err := sqlstore.Open(ctx, sqlstore.Config{DataDir: host.PluginDir(dataDir, "sql")})
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

	s, err = sqlstore.Open(ctx, sqlstore.Config{DataDir: host.PluginDir(dataDir, "sql")})
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
	res, err := s.SearchMemories(ctx, agent, storage.SearchQuery{Embedding: offline.Embed(texts[ids[0]], 256), Count: 3})
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
	t.Parallel()
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
					// A pause before the next try, so that six workers
					// do not spin while the plugin restarts.
					select {
					case <-stop:
						return
					case <-time.After(50 * time.Millisecond):
					}
				}
			}
		}()
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		if !testwait.Poll(60*time.Second, cond) {
			close(stop)
			wg.Wait()
			t.Fatalf("timed out after 60s waiting for %s", what)
		}
	}
	waitFor("20 acknowledged messages", func() bool { return okCount(false) >= 20 })
	mu.Lock()
	killed = true
	mu.Unlock()
	// Three kills, each once the host carries on again, so that some land
	// in the middle of a write.
	// Each kill waits for its own replacement and for ten messages after
	// it: a count of all acknowledged since the first kill can be reached
	// before the plugin is back.
	pid := oldPID
	for k := 1; k <= 3; k++ {
		before := okCount(true)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		var next int
		waitFor(fmt.Sprintf("the sql plugin (pid %d) to be replaced after kill %d", pid, k), func() bool {
			next = sqlPluginPID(t, d)
			return next != 0 && next != pid && !alive(pid)
		})
		waitFor(fmt.Sprintf("10 acknowledged messages after kill %d", k), func() bool { return okCount(true) >= before+10 })
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
	checkNoHalfWrittenRows(t, filepath.Join(host.PluginDir(dataDir, "sql"), sqlstore.FileName))
}

// checkNoHalfWrittenRows checks the SQLite file: intact, every foreign key
// satisfied, every memory whole (JSON content with its text, in a stored
// room, written by a participant of that room).
func checkNoHalfWrittenRows(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
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

// TestSQLPostgresGoesAway runs the daemon on PostgreSQL through a TCP proxy,
// then cuts the proxy: calls that need the database fail with an error that
// says so, the host stays up, and work resumes once the database is back.
func TestSQLPostgresGoesAway(t *testing.T) {
	t.Parallel()
	proxy := pgtest.NewProxy(t, pgtest.ServerAddr(t))
	u := pgtest.Schema(t, proxy.Addr())
	d := startDaemon(t, daemonOpts{env: []string{"POSTGRES_URL=" + u}})
	m := d.say("Eliza", "I like the sea")

	proxy.Stop()
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

	proxy.Start()
	back := d.sayWhenBack("work to resume with the database back", "Eliza", map[string]string{"text": "back again", "roomId": m.RoomID})
	mems := d.memories("Eliza", m.RoomID)
	texts := map[string]bool{}
	for _, x := range mems {
		texts[x.Content.Text] = true
	}
	if !texts["I like the sea"] || !texts["back again"] || len(back.Messages) != 1 || !texts[back.Messages[0].Text] {
		t.Fatalf("after the database came back: %+v", mems)
	}
}

// TestVectorIndexAcrossPluginRestarts runs the daemon over an agent with
// more memories than DefaultVectorIndexMin: the sql plugin process builds
// the agent's vector index at the first search and saves it; the next
// plugin process loads it and catches up with the memories written while
// it was stopped; a damaged file is rebuilt, with a log line.
func TestVectorIndexAcrossPluginRestarts(t *testing.T) {
	dataDir := t.TempDir()
	sqlDir := host.PluginDir(dataDir, "sql")
	// The model asks for the FACTS provider, which searches the facts.
	ag := newBootAgent(t, "Scripty", []rule{
		{Model: "TEXT_LARGE", NotContains: []string{"Write Scripty's reply"},
			Answer: "<response><thought>look it up</thought><actions>REPLY</actions><providers>FACTS</providers><text></text></response>"},
		{Model: "TEXT_LARGE", Contains: []string{"Write Scripty's reply"}, Answer: "<response><thought>t</thought><message>noted</message></response>"},
	}, nil, "offline")
	plugins := pluginDirWith(t, bins.scripted)
	start := func() *daemon {
		t.Helper()
		return startDaemon(t, daemonOpts{dataDir: dataDir, pluginDir: plugins, characters: []string{ag.character()}})
	}
	stop := func(d *daemon) {
		t.Helper()
		if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if code, out := d.waitExit(20 * time.Second); code != 0 {
			t.Fatalf("stop: %d\n%s", code, tail(out, 3000))
		}
	}
	// write runs fn on the store, opened as the db commands do, without an
	// index of its own.
	ctx := context.Background()
	write := func(fn func(s *sqlstore.Store, agent string)) {
		t.Helper()
		s, err := sqlstore.Open(ctx, sqlstore.Config{DataDir: sqlDir, ExactSearch: true})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		agents, err := s.GetAgents(ctx)
		if err != nil || len(agents) != 1 {
			t.Fatalf("agents: %+v %v", agents, err)
		}
		fn(s, agents[0].ID)
	}
	fact := func(s *sqlstore.Store, agent, text string) string {
		t.Helper()
		m := &sdk.Memory{RoomID: uuid.NewString(), EntityID: uuid.NewString(), Content: sdk.Content{Text: text}, Embedding: offline.Embed(text, 384)}
		id, _, err := s.CreateMemory(ctx, agent, m, sdk.TableFacts, false)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	stop(start())
	var agent string
	var facts []string
	write(func(s *sqlstore.Store, a string) {
		agent = a
		for i := 0; i < sqlstore.DefaultVectorIndexMin+100; i++ {
			facts = append(facts, fact(s, a, fmt.Sprintf("fact %d: the user likes %d things", i, i*7)))
		}
	})
	file := filepath.Join(sqlDir, sqlstore.VectorIndexDir, agent+".hnsw")
	count := regexp.MustCompile(`vector index ready.*\b(built|loaded)=(\d+)`)
	ready := func(d *daemon, how string) int {
		t.Helper()
		// The whole line, with its count: it may reach d.out a moment
		// after the answer that caused it.
		testwait.For(t, 10*time.Second, "the daemon's output to say the vector index is ready", func() bool { return count.MatchString(d.out.String()) })
		m := count.FindStringSubmatch(d.out.String())
		if m == nil || m[1] != how {
			t.Fatalf("want the index %s:\n%s", how, tail(d.out.String(), 4000))
		}
		n, _ := strconv.Atoi(m[2])
		return n
	}

	// The first search builds the index in the plugin and saves it.
	d := start()
	d.say("Scripty", "what do I like?")
	built := ready(d, "built")
	if built < len(facts) {
		t.Fatalf("built from %d memories, %d facts are stored", built, len(facts))
	}
	// Saved after it is ready; a daemon stopped sooner leaves no file (the
	// next start builds the index again).
	waitOutput(t, d, "vector index saved")
	stop(d)
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("the index was not saved: %v", err)
	}

	// Written while the daemon is stopped: the next plugin process catches
	// up with them.
	var added string
	write(func(s *sqlstore.Store, a string) {
		added = fact(s, a, "a fact written while the daemon was stopped")
		if n, err := s.DeleteMemory(ctx, a, facts[0]); n != 1 || err != nil {
			t.Fatal(n, err)
		}
	})
	d = start()
	d.say("Scripty", "what else do I like?")
	if loaded := ready(d, "loaded"); loaded < built {
		t.Fatalf("loaded %d memories, built %d, then one added and one deleted", loaded, built)
	}
	stop(d)

	// The file the plugin saved, caught up by a store of this process.
	s, err := sqlstore.Open(ctx, sqlstore.Config{DataDir: sqlDir, VectorIndexMin: 1})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.SearchMemories(ctx, agent, storage.SearchQuery{Embedding: offline.Embed("a fact written while the daemon was stopped", 384), Count: 1})
	if err != nil || len(res) != 1 || res[0].ID != added {
		t.Fatalf("search: %+v %v", res, err)
	}
	s.Close()

	// A damaged file is rebuilt from the database, and the log says so.
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	d = start()
	d.say("Scripty", "and now?")
	waitOutput(t, d, "a saved vector index does not load; rebuilding it from the database")
	ready(d, "built")
}
