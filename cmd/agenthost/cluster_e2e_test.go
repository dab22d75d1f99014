//go:build linux

package main

// A cluster of real daemons on loopback, against the real NATS (JetStream)
// and PostgreSQL: agents created on one node answered through every node,
// placement, handover, failover and fencing.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agenthost/agenthost/host/cluster"
	"github.com/agenthost/agenthost/internal/natstest"
	"github.com/agenthost/agenthost/internal/pgtest"
	"github.com/agenthost/agenthost/internal/testwait"
	"github.com/agenthost/agenthost/plugins/telegram/telegramtest"
	"github.com/agenthost/agenthost/sdk"
	"github.com/coder/websocket"
)

// testCluster is one cluster of a test: its own name (so its stream and
// buckets are its own, deleted at the end) and its own PostgreSQL schema.
type testCluster struct {
	t    testing.TB
	name string
	nats string
	pg   string
}

func newTestCluster(t testing.TB) *testCluster {
	t.Helper()
	natsURL := natstest.URL(t)
	return &testCluster{t: t, name: natstest.Cluster(t, natsURL), nats: natsURL, pg: pgtest.Schema(t, "")}
}

// node starts a node of the cluster named id and waits until it serves.
func (c *testCluster) node(id string, env ...string) *daemon {
	c.t.Helper()
	return startDaemon(c.t.(*testing.T), daemonOpts{env: append(c.env(id), env...)})
}

// env is the environment of the cluster's node id.
func (c *testCluster) env(id string) []string {
	return []string{"POSTGRES_URL=" + c.pg, "AGENTHOST_NATS_URL=" + c.nats, "AGENTHOST_CLUSTER=" + c.name,
		"AGENTHOST_NODE_ID=" + id, "AGENTHOST_LOG_LEVEL=debug"}
}

func (d *daemon) cluster() clusterView {
	d.t.Helper()
	code, env := d.get("/api/cluster")
	if code != http.StatusOK {
		d.t.Fatalf("GET /api/cluster: %d %+v", code, env.Error)
	}
	var v clusterView
	if err := json.Unmarshal(env.Data, &v); err != nil {
		d.t.Fatal(err)
	}
	return v
}

// placement maps agent names to their nodes as d sees it.
func (d *daemon) placement() map[string]string {
	out := map[string]string{}
	for _, a := range d.cluster().Agents {
		out[a.Name] = a.Node
	}
	return out
}

// createAgents creates n started agents named prefix1…prefixN on d.
func createAgents(t *testing.T, d *daemon, prefix string, n int) []string {
	t.Helper()
	var names []string
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("%s%d", prefix, i)
		code, env := d.post("/api/agents", map[string]any{"start": true, "characterJson": map[string]any{
			"name": name, "bio": "a cluster test agent", "plugins": []string{"offline"}}})
		if code != http.StatusCreated {
			t.Fatalf("create %s: %d %+v", name, code, env.Error)
		}
		names = append(names, name)
	}
	return names
}

// waitPlaced waits until every named agent runs on some node, as seen by
// d, and returns the placement.
func waitPlaced(t *testing.T, d *daemon, names []string, timeout time.Duration) map[string]string {
	t.Helper()
	var p map[string]string
	testwait.For(t, timeout, "every agent placed on a node", func() bool {
		p = d.placement()
		for _, n := range names {
			if p[n] == "" {
				return false
			}
		}
		return true
	})
	return p
}

func TestClusterConfigIsChecked(t *testing.T) {
	// Cluster mode without PostgreSQL: refused, saying why.
	d := launch(t, daemonOpts{env: []string{"AGENTHOST_NATS_URL=nats://127.0.0.1:4222"}})
	code, out := d.waitExit(30 * time.Second)
	if code == 0 || !strings.Contains(out, "needs POSTGRES_URL") {
		t.Fatalf("cluster mode with SQLite: exit %d\n%s", code, out)
	}
	// A node id without a cluster: refused.
	d = launch(t, daemonOpts{env: []string{"AGENTHOST_NODE_ID=a"}})
	if code, out := d.waitExit(30 * time.Second); code == 0 || !strings.Contains(out, "set AGENTHOST_NATS_URL") {
		t.Fatalf("node id without NATS: exit %d\n%s", code, out)
	}
	// A cluster name that cannot prefix a subject: refused.
	d = launch(t, daemonOpts{env: []string{"AGENTHOST_NATS_URL=nats://127.0.0.1:4222", "POSTGRES_URL=postgres://x/y", "AGENTHOST_CLUSTER=a.b"}})
	if code, out := d.waitExit(30 * time.Second); code == 0 || !strings.Contains(out, "AGENTHOST_CLUSTER") {
		t.Fatalf("bad cluster name: exit %d\n%s", code, out)
	}
	// NATS that does not answer: refused, naming it.
	pg := pgtest.Schema(t, "")
	d = launch(t, daemonOpts{env: []string{"AGENTHOST_NATS_URL=nats://127.0.0.1:1", "POSTGRES_URL=" + pg}})
	if code, out := d.waitExit(30 * time.Second); code == 0 || !strings.Contains(out, "nats://127.0.0.1:1") {
		t.Fatalf("unreachable NATS: exit %d\n%s", code, out)
	}
	// Without AGENTHOST_NATS_URL nothing changes: /api/cluster says so.
	single := startDaemon(t, daemonOpts{})
	if code, env := single.get("/api/cluster"); code != http.StatusNotFound || env.Error == nil || env.Error.Code != "NOT_A_CLUSTER" {
		t.Fatalf("GET /api/cluster alone: %d %+v", code, env.Error)
	}
}

// TestClusterAnyNodeAnswers: three nodes, agents created on one, each
// answered through every node; GET /api/cluster and `agenthost cluster
// status` agree on where each runs, and the agents are spread.
func TestClusterAnyNodeAnswers(t *testing.T) {
	c := newTestCluster(t)
	a := c.node("a")
	b := c.node("b")
	n3 := c.node("c")
	nodes := []*daemon{a, b, n3}
	testwait.For(t, 20*time.Second, "three live nodes", func() bool { return len(a.cluster().Nodes) == 3 })
	names := createAgents(t, a, "agent", 6)
	p := waitPlaced(t, b, names, 30*time.Second)
	held := map[string]int{}
	for _, n := range names {
		held[p[n]]++
	}
	if len(held) < 2 {
		t.Errorf("six agents all on one node: %v", p)
	}
	for _, name := range names {
		for i, d := range nodes {
			m := d.say(name, fmt.Sprintf("hello %s through node %d", name, i))
			if len(m.Messages) != 1 || m.Messages[0].Text == "" {
				t.Fatalf("%s through node %d: %+v", name, i, m)
			}
		}
	}
	// Every node's view agrees.
	for _, d := range nodes {
		testwait.For(t, 10*time.Second, "the nodes to agree on the placement", func() bool {
			q := d.placement()
			for _, n := range names {
				if q[n] != p[n] {
					return false
				}
			}
			return true
		})
	}
	// Every agent, the default character Eliza (stored by the first node)
	// among them, is held by one node: the nodes' records and their
	// metrics add up to the agents listed.
	var v clusterView
	testwait.For(t, 15*time.Second, "every agent held once", func() bool {
		v = a.cluster()
		total, leases := 0, 0.0
		for _, n := range v.Nodes {
			total += n.Agents
		}
		for _, d := range nodes {
			leases += metricValue(t, d, "agenthost_cluster_leases_held")
		}
		return len(v.Nodes) == 3 && total == len(v.Agents) && int(leases) == len(v.Agents) && len(v.Agents) == len(names)+1
	})
	if v.Nodes[0].ID != "a" || v.Nodes[0].Address == "" {
		t.Errorf("nodes: %+v", v.Nodes)
	}
	// Every node forwarded messages (each sent some through the stream).
	for _, d := range nodes {
		if f := metricValue(t, d, `agenthost_cluster_forwarded_duration_seconds_count{kind="message"}`); f < float64(len(names)) {
			t.Errorf("%s forwarded %v messages, want at least %d", d.url, f, len(names))
		}
	}
	// The CLI prints the same.
	out, err := runCLI(t, []string{"AGENTHOST_URL=" + b.url}, "cluster", "status", "--json")
	if err != nil {
		t.Fatalf("cluster status: %v\n%s", err, out)
	}
	var cv clusterView
	if err := json.Unmarshal([]byte(out), &cv); err != nil || len(cv.Nodes) != 3 || len(cv.Agents) != len(v.Agents) {
		t.Fatalf("cluster status --json: %v\n%s", err, out)
	}
	out, err = runCLI(t, []string{"AGENTHOST_URL=" + b.url}, "cluster", "status")
	if err != nil || !strings.Contains(out, "agent1") || !strings.Contains(out, p["agent1"]) {
		t.Fatalf("cluster status: %v\n%s", err, out)
	}
	// A request other than a message is forwarded too: the agent's rooms
	// and memories, read through a node that does not run it.
	for _, d := range nodes {
		code, env := d.get("/api/agents/agent1")
		if code != http.StatusOK || !strings.Contains(string(env.Data), `"node":"`+p["agent1"]+`"`) {
			t.Fatalf("GET agent through %s: %d %s", d.url, code, env.Data)
		}
		if code, env := d.get("/api/agents/agent1/rooms"); code != http.StatusOK {
			t.Fatalf("rooms through %s: %d %+v", d.url, code, env.Error)
		}
	}
}

// byNode maps node ids to their daemons.
type byNode map[string]*daemon

// others are the nodes but one.
func (m byNode) others(not string) []*daemon {
	var out []*daemon
	for id, d := range m {
		if id != not {
			out = append(out, d)
		}
	}
	return out
}

// clusterAgentID is the id of an agent by name, as d lists it once it
// does: each node learns of a new agent from the cluster's store on its
// own schedule, and may list it a moment after another node placed it.
func clusterAgentID(t *testing.T, d *daemon, name string) string {
	t.Helper()
	id := ""
	testwait.For(t, 10*time.Second, "agent "+name+" in the node's view of the cluster", func() bool {
		for _, a := range d.cluster().Agents {
			if a.Name == name {
				id = a.ID
				return true
			}
		}
		return false
	})
	return id
}

// interval is a stretch of time in which a node ran an agent: from the
// lease taken (before anything of the agent starts) to the agent stopped
// (after its plugins, connectors included, let it go).
type interval struct {
	node       string
	start, end time.Time
}

var logTime = regexp.MustCompile(`^(\S+Z) \[`)

// runIntervals reads from a node's log when it ran the agent. open is
// when an interval still running ends (the node was killed then, or now).
func runIntervals(node, out, id, name string, open time.Time) []interval {
	var res []interval
	var cur *interval
	for _, line := range strings.Split(out, "\n") {
		m := logTime.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		ts, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			continue
		}
		switch {
		case strings.Contains(line, "lease taken; starting the agent here: agent="+id):
			if cur == nil {
				cur = &interval{node: node, start: ts}
			}
		case strings.Contains(line, "agent stopped: agent="+name+"\n") || strings.HasSuffix(line, "agent stopped: agent="+name):
			if cur != nil {
				cur.end = ts
				res = append(res, *cur)
				cur = nil
			}
		}
	}
	if cur != nil {
		cur.end = open
		res = append(res, *cur)
	}
	return res
}

// checkNoOverlap fails when two nodes ran the agent at the same time.
func checkNoOverlap(t *testing.T, name string, iv []interval) {
	t.Helper()
	sort.Slice(iv, func(i, j int) bool { return iv[i].start.Before(iv[j].start) })
	for i := 1; i < len(iv); i++ {
		if iv[i].node != iv[i-1].node && iv[i].start.Before(iv[i-1].end) {
			t.Errorf("agent %s ran on %s from %s to %s and on %s from %s: two nodes at once", name,
				iv[i-1].node, iv[i-1].start.Format("15:04:05.000"), iv[i-1].end.Format("15:04:05.000"),
				iv[i].node, iv[i].start.Format("15:04:05.000"))
		}
	}
}

// replyCounts counts the agent's replies per message id in the database.
func replyCounts(t *testing.T, pg, agentID string) map[string]int {
	t.Helper()
	db, err := sql.Open("postgres", pg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT content::jsonb->>'inReplyTo', count(*) FROM memories
		WHERE agent_id = $1 AND entity_id = $1 AND type = 'messages' AND content::jsonb->>'inReplyTo' IS NOT NULL GROUP BY 1`, agentID)
	if err != nil {
		t.Fatalf("count replies: %v", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		out[id] = n
	}
	return out
}

// keyedSay sends a message with an Idempotency-Key through d and returns
// the status and, on success, the message id and replies.
func keyedSay(d *daemon, agent, user, key, text string) (int, string, int, string) {
	b, _ := json.Marshal(map[string]string{"text": text, "userName": user})
	req, _ := http.NewRequest(http.MethodPost, d.url+"/api/agents/"+agent+"/messages", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	res, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		return 0, "", 0, err.Error()
	}
	defer res.Body.Close()
	var env struct {
		Data struct {
			MessageID string `json:"messageId"`
			Messages  []struct {
				Text string `json:"text"`
			} `json:"messages"`
		} `json:"data"`
		Error *struct{ Code, Message string } `json:"error"`
	}
	_ = json.NewDecoder(res.Body).Decode(&env)
	why := ""
	if env.Error != nil {
		why = env.Error.Code + ": " + env.Error.Message
	}
	if ra := res.Header.Get("Retry-After"); res.StatusCode == http.StatusServiceUnavailable && ra == "" {
		why += " (503 without Retry-After)"
	}
	return res.StatusCode, env.Data.MessageID, len(env.Data.Messages), why
}

// flow sends keyed messages to an agent through the given nodes, one
// sender per node, each message sent again with its key until it is
// acknowledged, until stop is closed. It returns the acknowledged
// message ids and the failed attempts.
type flowResult struct {
	mu       sync.Mutex
	acked    map[string]string // key → message id
	answered map[string]int    // key → replies in the acknowledgement
	failures []string
	ackTimes []time.Time
	// sentAt is when each acknowledged message was first sent, in the
	// order of ackTimes.
	sentAt []time.Time
}

func flow(t *testing.T, agent string, nodes []*daemon, stop <-chan struct{}) (*flowResult, *sync.WaitGroup) {
	r := &flowResult{acked: map[string]string{}, answered: map[string]int{}}
	var wg sync.WaitGroup
	for ni, d := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("n%d-m%d", ni, i)
				sent := time.Now()
				deadline := time.Now().Add(60 * time.Second)
				for time.Now().Before(deadline) {
					code, id, n, why := keyedSay(d, agent, fmt.Sprintf("flow%d", ni), key, "flow message "+key)
					if code == http.StatusOK {
						r.mu.Lock()
						r.acked[key], r.answered[key] = id, n
						r.ackTimes = append(r.ackTimes, time.Now())
						r.sentAt = append(r.sentAt, sent)
						r.mu.Unlock()
						break
					}
					r.mu.Lock()
					r.failures = append(r.failures, fmt.Sprintf("%s via node %d: %d %s", key, ni, code, why))
					r.mu.Unlock()
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	return r, &wg
}

// checkExactlyOnce: every acknowledged message got one reply in its
// acknowledgement and has exactly one reply stored.
func (r *flowResult) checkExactlyOnce(t *testing.T, pg, agentID string) {
	t.Helper()
	counts := replyCounts(t, pg, agentID)
	r.mu.Lock()
	defer r.mu.Unlock()
	for key, id := range r.acked {
		if r.answered[key] != 1 {
			t.Errorf("message %s (%s) was acknowledged with %d replies, want 1", key, id, r.answered[key])
		}
		if counts[id] != 1 {
			t.Errorf("message %s (%s) has %d replies stored, want exactly 1", key, id, counts[id])
		}
	}
	for id, n := range counts {
		if n > 1 {
			t.Errorf("message %s was answered %d times", id, n)
		}
	}
}

// TestClusterSIGKILLFailover kills the node that runs an agent while
// messages to it flow through the two others: the agent answers again on
// another node within seconds, every acknowledged message is answered
// exactly once, and no two nodes ran it at once.
func TestClusterSIGKILLFailover(t *testing.T) {
	c := newTestCluster(t)
	nodes := byNode{"a": c.node("a"), "b": c.node("b"), "c": c.node("c")}
	testwait.For(t, 20*time.Second, "three live nodes", func() bool { return len(nodes["a"].cluster().Nodes) == 3 })
	names := createAgents(t, nodes["a"], "fo", 1)
	p := waitPlaced(t, nodes["b"], names, 30*time.Second)
	victimID := p["fo1"]
	victim := nodes[victimID]
	id := clusterAgentID(t, nodes["a"], "fo1")
	stop := make(chan struct{})
	res, wg := flow(t, "fo1", nodes.others(victimID), stop)
	testwait.For(t, 30*time.Second, "messages answered before the kill", func() bool {
		res.mu.Lock()
		defer res.mu.Unlock()
		return len(res.acked) >= 6
	})
	if err := victim.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	// The agent answers again: a message first sent after the kill is
	// acknowledged.
	var back time.Time
	testwait.For(t, 30*time.Second, "the agent to answer on another node", func() bool {
		res.mu.Lock()
		defer res.mu.Unlock()
		for i, sent := range res.sentAt {
			if sent.After(killed) {
				back = res.ackTimes[i]
				return true
			}
		}
		return false
	})
	res.mu.Lock()
	n := len(res.acked)
	res.mu.Unlock()
	t.Logf("failover: the agent answered again %s after its node was killed", back.Sub(killed).Round(10*time.Millisecond))
	if back.Sub(killed) > 10*time.Second {
		t.Errorf("the agent answered again only %s after its node was killed", back.Sub(killed))
	}
	testwait.For(t, 30*time.Second, "more messages after the failover", func() bool {
		res.mu.Lock()
		defer res.mu.Unlock()
		return len(res.acked) >= n+6
	})
	close(stop)
	wg.Wait()
	<-victim.exited
	newNode := nodes.others(victimID)[0].placement()["fo1"]
	if newNode == "" || newNode == victimID {
		t.Errorf("fo1 runs on %q after its node %s was killed", newNode, victimID)
	}
	res.checkExactlyOnce(t, c.pg, id)
	var iv []interval
	for nid, d := range nodes {
		end := time.Now()
		if nid == victimID {
			end = killed
		}
		iv = append(iv, runIntervals(nid, d.out.String(), id, "fo1", end)...)
	}
	checkNoOverlap(t, "fo1", iv)
	t.Logf("%d messages acknowledged, %d failed attempts retried", len(res.acked), len(res.failures))
	for _, f := range res.failures {
		t.Logf("retried: %s", f)
	}
}

// pollRecorder stands between each node and the fake Telegram: it tells
// which node called the Bot API when, from the request's start to its
// end (a long poll lasts until it is answered or its caller gives up).
type pollRecorder struct {
	srv   *httptest.Server
	mu    sync.Mutex
	polls []interval
}

func newPollRecorder(t *testing.T, upstream string) *pollRecorder {
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	r := &pollRecorder{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		parts := strings.SplitN(strings.TrimPrefix(req.URL.Path, "/n/"), "/", 2)
		if len(parts) != 2 {
			http.NotFound(w, req)
			return
		}
		node := parts[0]
		req.URL.Path = "/" + parts[1]
		if !strings.HasSuffix(req.URL.Path, "/getUpdates") {
			rp.ServeHTTP(w, req)
			return
		}
		r.mu.Lock()
		i := len(r.polls)
		r.polls = append(r.polls, interval{node: node, start: time.Now()})
		r.mu.Unlock()
		rp.ServeHTTP(w, req)
		r.mu.Lock()
		r.polls[i].end = time.Now()
		r.mu.Unlock()
	}))
	t.Cleanup(func() { r.srv.CloseClientConnections(); r.srv.Close() })
	return r
}

func (r *pollRecorder) url(node string) string { return r.srv.URL + "/n/" + node }

func (r *pollRecorder) byNode() map[string][]interval {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]interval{}
	for _, p := range r.polls {
		if p.end.IsZero() {
			p.end = time.Now() // still waiting
		}
		out[p.node] = append(out[p.node], p)
	}
	return out
}

// agentNamedFor finds a name whose agent the cluster places on node when
// these nodes are live.
func agentNamedFor(t *testing.T, prefix, node string, live []string) string {
	for i := 0; i < 1000; i++ {
		name := fmt.Sprintf("%s%d", prefix, i)
		if cluster.Owner((&sdk.Character{Name: name}).AgentID(), live) == node {
			return name
		}
	}
	t.Fatalf("no name places an agent on %s", node)
	return ""
}

// TestClusterPartitionFences cuts one node off from NATS (a proxy the test
// controls stands between them) while it runs an agent that polls
// Telegram: the node stops the agent, its Telegram polling included,
// before another node takes it; /healthz on the cut node says it lost
// NATS; the agent answers on Telegram from its new node; when the node
// comes back the agent is handed back to it. At no moment did two nodes
// run the agent or poll its bot.
func TestClusterPartitionFences(t *testing.T) {
	c := newTestCluster(t)
	tg := telegramtest.New(t)
	rec := newPollRecorder(t, tg.URL)
	natsAddr, _ := url.Parse(c.nats)
	proxy := pgtest.NewProxy(t, natsAddr.Host)
	nodes := byNode{
		"a": c.node("a", "TELEGRAM_API_ROOT="+rec.url("a")),
		"b": c.node("b", "TELEGRAM_API_ROOT="+rec.url("b")),
		"c": c.node("c", "TELEGRAM_API_ROOT="+rec.url("c"), "AGENTHOST_NATS_URL=nats://"+proxy.Addr()),
	}
	testwait.For(t, 20*time.Second, "three live nodes", func() bool { return len(nodes["a"].cluster().Nodes) == 3 })
	name := agentNamedFor(t, "tg", "c", []string{"a", "b", "c"})
	code, env := nodes["a"].post("/api/agents", map[string]any{"start": true, "characterJson": map[string]any{
		"name": name, "bio": "polls Telegram", "plugins": []string{"offline", "telegram"},
		"settings": map[string]any{"secrets": map[string]any{"TELEGRAM_BOT_TOKEN": tg.Token}}}})
	if code != http.StatusCreated {
		t.Fatalf("create %s: %d %+v", name, code, env.Error)
	}
	id := clusterAgentID(t, nodes["a"], name)
	if p := waitPlaced(t, nodes["a"], []string{name}, 30*time.Second); p[name] != "c" {
		t.Fatalf("%s placed on %q, want c", name, p[name])
	}
	tg.WaitFor(t, 20*time.Second, "node c to poll Telegram", func() bool { return len(rec.byNode()["c"]) > 0 })
	tg.PushText(telegramtest.Private(tgAlice), tgAlice, "before the cut")
	tg.WaitFor(t, 20*time.Second, "the answer from node c", func() bool { return len(tg.Sent()) >= 1 })

	proxy.Stop()
	testwait.For(t, 15*time.Second, "node c's /healthz to say it lost NATS", func() bool {
		res, err := http.Get(nodes["c"].url + "/healthz")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		var e struct{ Data struct{ Status string } }
		_ = json.NewDecoder(res.Body).Decode(&e)
		return res.StatusCode == http.StatusServiceUnavailable && e.Data.Status == "nats-unreachable"
	})
	var moved string
	testwait.For(t, 20*time.Second, "the agent to run on a or b", func() bool {
		moved = nodes["a"].placement()[name]
		return moved == "a" || moved == "b"
	})
	tg.WaitFor(t, 20*time.Second, "the new node to poll Telegram", func() bool { return len(rec.byNode()[moved]) > 0 })
	tg.PushText(telegramtest.Private(tgBob), tgBob, "during the cut")
	tg.WaitFor(t, 20*time.Second, "the answer from the new node", func() bool { return len(tg.Sent()) >= 2 })
	if !nodes["c"].says("could not renew the lease in time") {
		t.Errorf("node c did not say it fenced the agent")
	}

	// Back: node c rejoins and, owning the agent again, gets it handed
	// back.
	proxy.Start()
	testwait.For(t, 30*time.Second, "the agent back on node c", func() bool { return nodes["a"].placement()[name] == "c" })
	tg.WaitFor(t, 20*time.Second, "node c to poll again", func() bool {
		polls := rec.byNode()["c"]
		return len(polls) > 0 && polls[len(polls)-1].start.After(rec.byNode()[moved][0].start)
	})
	tg.PushText(telegramtest.Private(tgCarol), tgCarol, "after the cut")
	tg.WaitFor(t, 20*time.Second, "the answer from node c again", func() bool { return len(tg.Sent()) >= 3 })

	// Evidence: the nodes' runs of the agent, and their polls of its bot,
	// never overlap. A node that gave the agent up wrote its "agent
	// stopped" line before letting go, but its output reaches the test
	// through a pipe copied a moment later: wait for it, or its last run
	// would look open until now.
	for nid, d := range nodes {
		if nid == "c" {
			continue
		}
		testwait.For(t, 10*time.Second, "node "+nid+" to log that it stopped "+name, func() bool {
			out := d.out.String()
			return strings.Count(out, "lease taken; starting the agent here: agent="+id) <= strings.Count(out, "agent stopped: agent="+name)
		})
	}
	var iv []interval
	for nid, d := range nodes {
		iv = append(iv, runIntervals(nid, d.out.String(), id, name, time.Now())...)
	}
	checkNoOverlap(t, name, iv)
	var polls []interval
	for _, p := range rec.byNode() {
		polls = append(polls, p...)
	}
	checkNoOverlap(t, name+"'s Telegram polling", polls)
	if n := len(tg.Sent()); n != 3 {
		t.Errorf("the bot sent %d messages for 3 received, want exactly 3: %+v", n, tg.Sent())
	}
}

// TestClusterGracefulHandover stops (SIGTERM) the node that runs an agent
// while messages to it flow through the two others: the node hands the
// agent over before it exits, and no request fails.
func TestClusterGracefulHandover(t *testing.T) {
	c := newTestCluster(t)
	nodes := byNode{"a": c.node("a"), "b": c.node("b"), "c": c.node("c")}
	testwait.For(t, 20*time.Second, "three live nodes", func() bool { return len(nodes["a"].cluster().Nodes) == 3 })
	names := createAgents(t, nodes["a"], "ho", 1)
	p := waitPlaced(t, nodes["b"], names, 30*time.Second)
	holderID := p["ho1"]
	holder := nodes[holderID]
	id := clusterAgentID(t, nodes["a"], "ho1")
	stop := make(chan struct{})
	res, wg := flow(t, "ho1", nodes.others(holderID), stop)
	testwait.For(t, 30*time.Second, "messages answered before the stop", func() bool {
		res.mu.Lock()
		defer res.mu.Unlock()
		return len(res.acked) >= 6
	})
	if err := holder.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	holder.waitExit(15 * time.Second)
	t.Logf("the holder stopped in %s", time.Since(stopped).Round(10*time.Millisecond))
	res.mu.Lock()
	n := len(res.acked)
	res.mu.Unlock()
	testwait.For(t, 30*time.Second, "more messages after the handover", func() bool {
		res.mu.Lock()
		defer res.mu.Unlock()
		return len(res.acked) >= n+6
	})
	close(stop)
	wg.Wait()
	if len(res.failures) > 0 {
		t.Errorf("%d requests failed during a graceful handover: %v", len(res.failures), res.failures)
	}
	if !strings.Contains(holder.out.String(), `agent handed over: agent=`+id+` why="node stopping"`) {
		t.Errorf("the stopping node did not hand the agent over")
	}
	if strings.Contains(holder.out.String(), "could not delete a lease") {
		t.Errorf("the stopping node left a lease to expire instead of deleting it")
	}
	res.checkExactlyOnce(t, c.pg, id)
	var iv []interval
	for nid, d := range nodes {
		iv = append(iv, runIntervals(nid, d.out.String(), id, "ho1", time.Now())...)
	}
	checkNoOverlap(t, "ho1", iv)
}

// natsServer is a NATS server of the test's own (the machine's
// nats-server executable, JetStream in a temporary folder), which the
// test stops and starts again.
type natsServer struct {
	t    *testing.T
	port int
	dir  string
	cmd  *exec.Cmd
}

func startNATS(t *testing.T) *natsServer {
	natstest.URL(t) // the shared one runs: nats-server is installed
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		t.Fatalf("nats-server is not installed (apt-get install nats-server): %v", err)
	}
	s := &natsServer{t: t, port: freePort(t), dir: t.TempDir()}
	s.cmd = exec.Command(bin, "-a", "127.0.0.1", "-p", strconv.Itoa(s.port), "-js", "-sd", s.dir)
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.port) }

func (s *natsServer) start() {
	s.t.Helper()
	cmd := exec.Command(s.cmd.Path, s.cmd.Args[1:]...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.cmd = cmd
	testwait.For(s.t, 20*time.Second, "NATS to listen", func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.port))
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

func (s *natsServer) stop() {
	if s.cmd.Process == nil || s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	_ = s.cmd.Wait()
}

// TestClusterSurvivesNATSRestart restarts the NATS server under a
// two-node cluster while messages flow: the nodes stop their agents while
// NATS is away (they cannot renew), take them up again when it is back,
// and every acknowledged message is answered exactly once.
func TestClusterSurvivesNATSRestart(t *testing.T) {
	ns := startNATS(t)
	c := newTestCluster(t)
	c.nats = ns.url()
	nodes := byNode{"a": c.node("a"), "b": c.node("b")}
	testwait.For(t, 20*time.Second, "two live nodes", func() bool { return len(nodes["a"].cluster().Nodes) == 2 })
	names := createAgents(t, nodes["a"], "nr", 2)
	waitPlaced(t, nodes["b"], names, 30*time.Second)
	id := clusterAgentID(t, nodes["a"], "nr1")
	stop := make(chan struct{})
	res, wg := flow(t, "nr1", []*daemon{nodes["a"], nodes["b"]}, stop)
	testwait.For(t, 30*time.Second, "messages answered before the restart", func() bool {
		res.mu.Lock()
		defer res.mu.Unlock()
		return len(res.acked) >= 6
	})
	ns.stop()
	// Away long enough for the leases to be fenced.
	testwait.For(t, 20*time.Second, "the nodes to stop their agents", func() bool {
		for _, d := range nodes {
			if !strings.Contains(d.out.String(), "could not renew the lease in time") {
				return false
			}
		}
		return true
	})
	ns.start()
	restarted := time.Now()
	for _, d := range nodes {
		testwait.For(t, 30*time.Second, "the node's /healthz to be ok again", func() bool {
			r, err := http.Get(d.url + "/healthz")
			if err != nil {
				return false
			}
			r.Body.Close()
			return r.StatusCode == http.StatusOK
		})
	}
	testwait.For(t, 30*time.Second, "messages answered after the restart", func() bool {
		res.mu.Lock()
		defer res.mu.Unlock()
		return len(res.ackTimes) > 0 && res.ackTimes[len(res.ackTimes)-1].After(restarted)
	})
	close(stop)
	wg.Wait()
	for _, name := range names {
		// An agent still moving answers 503 AGENT_MOVING ("send it again
		// in a moment"), which a client retries.
		testwait.For(t, 60*time.Second, name+" to answer after the restart", func() bool {
			code, env := nodes["a"].post("/api/agents/"+name+"/messages", map[string]any{"text": "after the restart"})
			var m messagesData
			return code == http.StatusOK && json.Unmarshal(env.Data, &m) == nil && len(m.Messages) == 1
		})
	}
	res.checkExactlyOnce(t, c.pg, id)
	var iv []interval
	for nid, d := range nodes {
		iv = append(iv, runIntervals(nid, d.out.String(), id, "nr1", time.Now())...)
	}
	checkNoOverlap(t, "nr1", iv)
	t.Logf("%d messages acknowledged, %d attempts retried while NATS was away", len(res.acked), len(res.failures))
}

// clusterWS is a WebSocket client of one node.
type clusterWS struct {
	t *testing.T
	c *websocket.Conn
}

func dialNode(t *testing.T, d *daemon) *clusterWS {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(d.url, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return &clusterWS{t: t, c: c}
}

func (w *clusterWS) send(v any) {
	w.t.Helper()
	b, _ := json.Marshal(v)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.c.Write(ctx, websocket.MessageText, b); err != nil {
		w.t.Fatal(err)
	}
}

// next reads events until one of the given type.
func (w *clusterWS) next(typ string) map[string]any {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		_, b, err := w.c.Read(ctx)
		if err != nil {
			w.t.Fatalf("waiting for %q: %v", typ, err)
		}
		var ev map[string]any
		if err := json.Unmarshal(b, &ev); err != nil {
			w.t.Fatalf("not JSON: %s", b)
		}
		if ev["type"] == typ {
			return ev
		}
	}
}

func (d *daemon) agentDetail(name string) (int, map[string]any) {
	d.t.Helper()
	code, env := d.get("/api/agents/" + name)
	var m map[string]any
	_ = json.Unmarshal(env.Data, &m)
	return code, m
}

// TestClusterWebSocketAndAgentChanges: WebSocket clients of two nodes
// that run not the agent share its room (a message sent through one is
// answered to both), and agent changes made through any node (PATCH,
// stop, start, remove) take effect on every node.
func TestClusterWebSocketAndAgentChanges(t *testing.T) {
	c := newTestCluster(t)
	nodes := byNode{"a": c.node("a"), "b": c.node("b"), "c": c.node("c")}
	testwait.For(t, 20*time.Second, "three live nodes", func() bool { return len(nodes["a"].cluster().Nodes) == 3 })
	createAgents(t, nodes["a"], "sock", 1)
	holder := waitPlaced(t, nodes["a"], []string{"sock1"}, 30*time.Second)["sock1"]
	others := nodes.others(holder)
	x, y := others[0], others[1]

	wx, wy := dialNode(t, x), dialNode(t, y)
	for _, w := range []*clusterWS{wx, wy} {
		w.next("hello")
		w.send(map[string]any{"type": "join", "agentId": "sock1", "userName": "wendy"})
		w.next("joined")
	}
	wx.send(map[string]any{"type": "message", "agentId": "sock1", "userName": "wendy", "text": "hello over the socket"})
	rx, ry := wx.next("reply"), wy.next("reply")
	if rx["text"] == "" || rx["id"] != ry["id"] {
		t.Fatalf("the clients of two nodes got different replies: %v / %v", rx, ry)
	}

	// PATCH through a node that does not run it: every node shows it.
	patchAgent(t, y, "sock1", `{"bio": "changed through another node"}`)
	// A body that fits the API but not a NATS message is refused, saying
	// so, not left to time out.
	big := `{"bio": "` + strings.Repeat("x", 1<<20-200) + `"}`
	req, _ := http.NewRequest(http.MethodPatch, y.url+"/api/agents/sock1", strings.NewReader(big))
	req.Header.Set("Content-Type", "application/json")
	res, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	e := decodeEnvelope(t, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge || e.Error == nil || !strings.Contains(e.Error.Message, "too large to forward") {
		t.Fatalf("a large PATCH through another node: %d %+v", res.StatusCode, e.Error)
	}
	for _, d := range nodes {
		testwait.For(t, 15*time.Second, "the new bio on every node", func() bool {
			_, m := d.agentDetail("sock1")
			ch, _ := m["character"].(map[string]any)
			return fmt.Sprint(ch["bio"]) == "changed through another node" || fmt.Sprint(ch["bio"]) == "[changed through another node]"
		})
	}
	if m := x.say("sock1", "after the change"); len(m.Messages) != 1 {
		t.Fatalf("after PATCH: %+v", m)
	}

	// Stop through one node: stopped everywhere, and a message is refused.
	mustPost(t, x, http.StatusOK, "/api/agents/sock1/stop", nil)
	for _, d := range nodes {
		testwait.For(t, 15*time.Second, "stopped on every node", func() bool {
			_, m := d.agentDetail("sock1")
			return m["status"] == "stopped" && d.placement()["sock1"] == ""
		})
	}
	if code, env := y.post("/api/agents/sock1/messages", map[string]string{"text": "are you there?"}); code != http.StatusServiceUnavailable || env.Error == nil || env.Error.Code != "AGENT_NOT_RUNNING" {
		t.Fatalf("message to a stopped agent: %d %+v", code, env.Error)
	}

	// Start through another: it runs somewhere and answers everywhere.
	mustPost(t, y, http.StatusOK, "/api/agents/sock1/start", nil)
	waitPlaced(t, x, []string{"sock1"}, 30*time.Second)
	for _, d := range nodes {
		if m := d.say("sock1", "started again"); len(m.Messages) != 1 {
			t.Fatalf("after start: %+v", m)
		}
	}

	// Remove: gone from every node.
	if code := deleteAPI(t, x, "/api/agents/sock1"); code != http.StatusOK {
		t.Fatalf("DELETE: %d", code)
	}
	for _, d := range nodes {
		testwait.For(t, 15*time.Second, "the agent gone from every node", func() bool {
			code, _ := d.agentDetail("sock1")
			return code == http.StatusNotFound
		})
	}
}

// metricValue reads one series of a node's /metrics.
func metricValue(t *testing.T, d *daemon, series string) float64 {
	t.Helper()
	res, err := http.Get(d.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metric %s: %q", series, line)
			}
			return f
		}
	}
	t.Fatalf("no metric %s in /metrics of %s", series, d.url)
	return 0
}

// TestClusterFailedAgent: an agent that cannot start on its node is
// listed failed by every node, and a message to it is refused at once
// through any node instead of waiting in the stream.
func TestClusterFailedAgent(t *testing.T) {
	c := newTestCluster(t)
	nodes := byNode{"a": c.node("a"), "b": c.node("b")}
	testwait.For(t, 20*time.Second, "two live nodes", func() bool { return len(nodes["a"].cluster().Nodes) == 2 })
	// A third node that takes a live node's id is refused.
	twin := launch(t, daemonOpts{env: c.env("a")})
	if code, out := twin.waitExit(30 * time.Second); code == 0 || !strings.Contains(out, `node id "a" is in use by the node at`) {
		t.Fatalf("a second node a: exit %d\n%s", code, out)
	}
	code, env := nodes["a"].post("/api/agents", map[string]any{"start": true, "characterJson": map[string]any{
		"name": "broken", "bio": "cannot start", "plugins": []string{"offline", "telegram"},
		"settings": map[string]any{"TELEGRAM_API_ROOT": "not a url", "secrets": map[string]any{"TELEGRAM_BOT_TOKEN": "1:x"}}}})
	if code != http.StatusCreated {
		t.Fatalf("create: %d %+v", code, env.Error)
	}
	for id, d := range nodes {
		testwait.For(t, 20*time.Second, "the agent listed failed on node "+id, func() bool {
			_, m := d.agentDetail("broken")
			return m["status"] == "failed"
		})
		t0 := time.Now()
		code, env := d.post("/api/agents/broken/messages", map[string]string{"text": "hello?"})
		if code != http.StatusServiceUnavailable || env.Error == nil || env.Error.Code != "AGENT_NOT_RUNNING" {
			t.Fatalf("message to a failed agent through %s: %d %+v", id, code, env.Error)
		}
		if took := time.Since(t0); took > 5*time.Second {
			t.Errorf("refusing a message to a failed agent took %s through %s", took, id)
		}
	}
	// Mended through either node (without the plugin that failed), it
	// starts on its node and answers through both.
	patchAgent(t, nodes["a"], "broken", `{"plugins": ["offline"]}`)
	for _, d := range nodes {
		if m := d.say("broken", "mended?"); len(m.Messages) != 1 {
			t.Fatalf("the mended agent: %+v", m)
		}
	}
}

// patchAgent changes an agent's character through d.
func patchAgent(t *testing.T, d *daemon, name, body string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPatch, d.url+"/api/agents/"+name, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("PATCH %s through %s: %d", name, d.url, res.StatusCode)
	}
}
