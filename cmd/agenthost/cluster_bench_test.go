//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The cluster's costs, against real daemons, NATS and PostgreSQL:
//
//	go test -run '^$' -bench Cluster -benchtime 1x ./cmd/agenthost/
//
// BenchmarkClusterForwarding sends messages to one agent through the node
// that runs it and through one that does not, in the same run: the
// difference is what forwarding costs. BenchmarkClusterThroughput sends
// messages from 12 senders to 6 agents through every node of clusters of
// 1, 2 and 3 nodes, next to a daemon that runs alone on the same
// PostgreSQL. On one machine the nodes share its cores, so this measures
// the cluster's overhead, not what more machines would add.

// benchCall sends a request and returns the status and the body.
func benchCall(b *testing.B, client *http.Client, method, url string, body any) (int, []byte) {
	b.Helper()
	var r io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, out
}

// benchCluster starts n nodes of a new cluster and creates agents on the
// first; it returns the nodes by id and where each agent runs.
func benchCluster(b *testing.B, n int, agents []string) (map[string]benchedDaemon, map[string]string) {
	c := newTestCluster(b)
	nodes := map[string]benchedDaemon{}
	for i := 0; i < n; i++ {
		id := string(rune('a' + i))
		env := append(c.env(id), "AGENTHOST_LOG_LEVEL=warn")
		d := benchStart(b, env...)
		b.Cleanup(d.stop)
		nodes[id] = d
	}
	return nodes, benchPlace(b, nodes["a"], n, agents)
}

// benchPlace creates the agents on d and waits until every one runs on
// a node of the n.
func benchPlace(b *testing.B, d benchedDaemon, n int, agents []string) map[string]string {
	client := &http.Client{Timeout: 60 * time.Second}
	for _, name := range agents {
		code, body := benchCall(b, client, "POST", d.url+"/api/agents", map[string]any{"start": true,
			"characterJson": map[string]any{"name": name, "bio": "benchmark agent", "plugins": []string{"offline"}}})
		if code != http.StatusCreated {
			b.Fatalf("create %s: %d %s", name, code, body)
		}
	}
	place := map[string]string{}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("agents not placed: %v", place)
		}
		code, body := benchCall(b, client, "GET", d.url+"/api/cluster", nil)
		if code != http.StatusOK {
			continue
		}
		var env struct{ Data clusterView }
		_ = json.Unmarshal(body, &env)
		placed := 0
		for _, a := range env.Data.Agents {
			place[a.Name] = a.Node
			if a.Node != "" {
				placed++
			}
		}
		if placed == len(env.Data.Agents) && len(env.Data.Nodes) == n {
			return place
		}
	}
}

func benchSend(b *testing.B, client *http.Client, d benchedDaemon, agent, user, text string) {
	code, body := benchCall(b, client, "POST", d.url+"/api/agents/"+agent+"/messages", map[string]string{"text": text, "userName": user})
	if code != http.StatusOK || !strings.Contains(string(body), `"messages":[{`) {
		b.Fatalf("message to %s: %d %s", agent, code, body)
	}
}

func BenchmarkClusterForwarding(b *testing.B) {
	nodes, place := benchCluster(b, 2, []string{"fw"})
	var local, remote benchedDaemon
	for id, d := range nodes {
		if id == place["fw"] {
			local = d
		} else {
			remote = d
		}
	}
	// A daemon alone (no NATS) on its own schema of the same PostgreSQL.
	alone := benchStart(b, "POSTGRES_URL="+newTestCluster(b).pg, "AGENTHOST_LOG_LEVEL=warn")
	b.Cleanup(alone.stop)
	client := &http.Client{Timeout: 60 * time.Second}
	if code, body := benchCall(b, client, "POST", alone.url+"/api/agents", map[string]any{"start": true,
		"characterJson": map[string]any{"name": "fw", "bio": "benchmark agent", "plugins": []string{"offline"}}}); code != http.StatusCreated {
		b.Fatalf("create: %d %s", code, body)
	}
	paths := []struct {
		name string
		via  benchedDaemon
	}{{"alone", alone}, {"local", local}, {"forwarded", remote}}
	for _, p := range paths { // warm every path
		for i := 0; i < 20; i++ {
			benchSend(b, client, p.via, "fw", "bench-"+p.name, "hello")
		}
	}
	// The paths take turns, each in a room of its own, so that a room's
	// growing history and the machine's other work weigh on them alike.
	took := make([]time.Duration, len(paths))
	i := 0
	for b.Loop() {
		for j, p := range paths {
			t0 := time.Now()
			benchSend(b, client, p.via, "fw", "bench-"+p.name, fmt.Sprintf("I feel sad about my job number %d", i))
			took[j] += time.Since(t0)
		}
		i++
	}
	for j, p := range paths {
		b.ReportMetric(float64(took[j].Microseconds())/float64(i)/1000, p.name+"-ms/msg")
	}
	b.ReportMetric(float64(took[2])/float64(took[1]), "forwarded/local")
	b.ReportMetric(float64(took[1])/float64(took[0]), "local/alone")
}

func BenchmarkClusterThroughput(b *testing.B) {
	agents := []string{"tp1", "tp2", "tp3", "tp4", "tp5", "tp6"}
	const senders, total = 12, 600
	run := func(b *testing.B, via []benchedDaemon) {
		client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: senders}}
		var next atomic.Int64
		for b.Loop() {
			next.Store(0)
			var wg sync.WaitGroup
			t0 := time.Now()
			for s := 0; s < senders; s++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := int(next.Add(1)) - 1
						if i >= total {
							return
						}
						// One room per sender and agent: replies in a shared
						// room would make each other stale.
						benchSend(b, client, via[i%len(via)], agents[i%len(agents)], fmt.Sprintf("sender-%d", s), fmt.Sprintf("my mother says %d", i))
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(total)/time.Since(t0).Seconds(), "msgs/s")
		}
	}
	b.Run("alone", func(b *testing.B) {
		c := newTestCluster(b) // for its PostgreSQL schema; no NATS
		d := benchStart(b, "POSTGRES_URL="+c.pg, "AGENTHOST_LOG_LEVEL=warn")
		b.Cleanup(d.stop)
		client := &http.Client{Timeout: 60 * time.Second}
		for _, name := range agents {
			code, body := benchCall(b, client, "POST", d.url+"/api/agents", map[string]any{"start": true,
				"characterJson": map[string]any{"name": name, "bio": "benchmark agent", "plugins": []string{"offline"}}})
			if code != http.StatusCreated {
				b.Fatalf("create %s: %d %s", name, code, body)
			}
		}
		run(b, []benchedDaemon{d})
	})
	for n := 1; n <= 3; n++ {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			nodes, _ := benchCluster(b, n, agents)
			var via []benchedDaemon
			for _, d := range nodes {
				via = append(via, d)
			}
			run(b, via)
		})
	}
}
