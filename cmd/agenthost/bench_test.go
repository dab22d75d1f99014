//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agenthost/agenthost/host"
	"github.com/agenthost/agenthost/internal/testwait"
	"github.com/agenthost/agenthost/plugins/offline"
	"github.com/agenthost/agenthost/plugins/openai/openaitest"
	"github.com/agenthost/agenthost/plugins/sqlstore"
	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/dbplugin"
	"github.com/google/uuid"
)

// BenchmarkDaemon measures the figures elizaOS is compared on, against the
// real binary with the default agent: cold start to a healthy daemon,
// memory when idle, per-message latency, throughput with 10 concurrent
// senders, and memory after 500 messages. Memory is the PSS of the daemon
// and every plugin process, so pages shared between them count once.
//
// "openai" is the path users run: the openai plugin against the project's
// OpenAI-compatible test server on loopback, which answers at once with
// 1536-dimension embeddings, as ../peer's side-by-side run does for both
// systems. "offline" is the model inside the process tree, no HTTP at all.
func BenchmarkDaemon(b *testing.B) {
	b.Run("openai", func(b *testing.B) {
		srv := openaitest.Start(b)
		benchDaemon(b, "OPENAI_API_KEY="+srv.APIKey, "OPENAI_BASE_URL="+srv.URL)
	})
	b.Run("offline", func(b *testing.B) { benchDaemon(b) })
}

func benchDaemon(b *testing.B, env ...string) {
	for b.Loop() {
		start := time.Now()
		d := benchStart(b, env...)
		cold := time.Since(start)
		idle := treePSS(d.cmd.Process.Pid)

		client := &http.Client{Timeout: 30 * time.Second}
		send := func(user, text string) { benchSay(b, client, d.url, "Eliza", user, text) }
		const sequential = 200
		lat := make([]time.Duration, 0, sequential)
		for i := 0; i < sequential; i++ {
			t0 := time.Now()
			send("bench", fmt.Sprintf("I feel sad about my job number %d", i))
			lat = append(lat, time.Since(t0))
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })

		const concurrent, total = 10, 300
		var wg sync.WaitGroup
		work := make(chan int, total)
		for i := 0; i < total; i++ {
			work <- i
		}
		close(work)
		cpu0 := treeCPU(d.cmd.Process.Pid)
		t0 := time.Now()
		for w := 0; w < concurrent; w++ {
			wg.Add(1)
			// One room per sender: in a shared room newer messages make
			// older replies stale, and dropped replies would flatter this.
			user := fmt.Sprintf("sender-%d", w)
			go func() {
				defer wg.Done()
				for i := range work {
					send(user, fmt.Sprintf("my mother says %d", i))
				}
			}()
		}
		wg.Wait()
		throughput := float64(total) / time.Since(t0).Seconds()
		cpu1 := treeCPU(d.cmd.Process.Pid)
		after := treePSS(d.cmd.Process.Pid) // after 500 messages

		b.ReportMetric(cold.Seconds()*1000, "cold-start-ms")
		b.ReportMetric(idle/1024, "idle-MiB")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, "p95-ms")
		b.ReportMetric(throughput, "msgs/s@10")
		b.ReportMetric(after/1024, "after500-MiB")
		// CPU time per message under load, by process: unlike the
		// timings, it hardly depends on what else the machine runs.
		var sum time.Duration
		for name, t := range cpu1 {
			used := t - cpu0[name]
			sum += used
			b.ReportMetric(float64(used.Microseconds())/1000/total, "cpu-ms/msg-"+name)
		}
		b.ReportMetric(float64(sum.Microseconds())/1000/total, "cpu-ms/msg")
		d.stop()
	}
}

// benchSay sends text to agent as user and waits for the reply.
func benchSay(b *testing.B, client *http.Client, url, agent, user, text string) {
	res, err := client.Post(url+"/api/agents/"+agent+"/messages", "application/json",
		strings.NewReader(`{"text":"`+text+`","userName":"`+user+`"}`))
	if err != nil {
		b.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b.Fatalf("status %d", res.StatusCode)
	}
}

type benchedDaemon struct {
	*daemon
	stop func()
}

func benchStart(b *testing.B, extra ...string) benchedDaemon {
	b.Helper()
	port := freePortB(b)
	dir := b.TempDir()
	args := []string{"start", "--port", strconv.Itoa(port), "--data-dir", dir}
	var env []string
	for _, e := range extra {
		if strings.HasPrefix(e, "--") {
			args = append(args, strings.SplitN(e, "=", 2)...)
		} else {
			env = append(env, e)
		}
	}
	cmd := exec.Command(bins.agenthost, args...)
	cmd.Dir = b.TempDir()
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + b.TempDir(), "AGENTHOST_LOG_LEVEL=warn"}, env...)
	// BENCH_GOGC tries the daemon and its plugins with another GC setting.
	if g := os.Getenv("BENCH_GOGC"); g != "" {
		cmd.Env = append(cmd.Env, "GOGC="+g)
	}
	var out bytes.Buffer
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	d := &daemon{cmd: cmd, url: fmt.Sprintf("http://127.0.0.1:%d", port)}
	if !testwait.Poll(30*time.Second, func() bool { return healthy(d.url) }) {
		_ = cmd.Process.Kill()
		b.Fatalf("daemon not ready: %s", out.String())
	}
	return benchedDaemon{daemon: d, stop: func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}}
}

func freePortB(b *testing.B) int {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// treeCPU is the CPU time (user and system) used so far by pid, as
// "daemon", and by each of its plugin processes, by plugin name.
func treeCPU(pid int) map[string]time.Duration {
	out := map[string]time.Duration{"daemon": cpuTime(pid)}
	for _, c := range children(pid) {
		name := "other"
		f := strings.Fields(cmdline(c))
		switch {
		case len(f) > 2 && f[1] == "__plugin":
			name = f[2]
		case len(f) > 0 && strings.HasPrefix(filepath.Base(f[0]), "agenthost-plugin-"):
			name = strings.TrimPrefix(filepath.Base(f[0]), "agenthost-plugin-")
		}
		out[name] += cpuTime(c)
	}
	return out
}

// cpuTime reads utime and stime from /proc/PID/stat, in clock ticks of
// 1/100 s (USER_HZ on Linux).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces and parentheses: fields start after
	// its last ')'.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// treePSS sums the proportional set size (KiB) of pid and its children.
func treePSS(pid int) float64 {
	total := pss(pid)
	for _, c := range children(pid) {
		total += pss(c)
	}
	return total
}

func pss(pid int) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) >= 2 && fields[0] == "Pss:" {
			n, _ := strconv.ParseFloat(fields[1], 64)
			return n
		}
	}
	return 0
}

// BenchmarkRuntimeFlood measures what one plugin flooding the Runtime with
// storage calls costs another agent: Victim's throughput with 10 senders,
// alone and while Mallory's hostile plugin calls GetMemories from 64
// goroutines as fast as it can. The ratio is the figure to read.
func BenchmarkRuntimeFlood(b *testing.B) {
	chars := b.TempDir()
	write := func(name string, plugins ...string) string {
		path := filepath.Join(chars, name+".json")
		js, _ := json.Marshal(map[string]any{"name": name, "bio": "bench", "plugins": plugins})
		if err := os.WriteFile(path, js, 0o600); err != nil {
			b.Fatal(err)
		}
		return path
	}
	plugins := b.TempDir()
	if err := os.Symlink(bins.hostile, filepath.Join(plugins, filepath.Base(bins.hostile))); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		extra := []string{"--character=" + write("Victim", "offline"), "--character=" + write("Mallory", "offline", "hostile"),
			"AGENTHOST_PLUGIN_PATH=" + plugins}
		// BENCH_FLOOD_LIMITS tries the flood under other limits (say
		// calls=250) than the defaults.
		if l := os.Getenv("BENCH_FLOOD_LIMITS"); l != "" {
			extra = append(extra, "AGENTHOST_PLUGIN_LIMITS_HOSTILE="+l)
		}
		d := benchStart(b, extra...)
		client := &http.Client{Timeout: 60 * time.Second}
		throughput := func() float64 {
			const concurrent, total = 10, 300
			var wg sync.WaitGroup
			work := make(chan int, total)
			for i := range total {
				work <- i
			}
			close(work)
			t0 := time.Now()
			for w := range concurrent {
				wg.Add(1)
				user := fmt.Sprintf("sender-%d", w)
				go func() {
					defer wg.Done()
					for i := range work {
						res, err := client.Post(d.url+"/api/agents/Victim/messages", "application/json",
							strings.NewReader(`{"text":"my mother says `+strconv.Itoa(i)+`","userName":"`+user+`"}`))
						if err != nil {
							b.Error(err)
							return
						}
						res.Body.Close()
					}
				}()
			}
			wg.Wait()
			return total / time.Since(t0).Seconds()
		}
		// The CPU each process burns a second of each phase: what the
		// flood costs, whatever else the machine runs meanwhile.
		perSecond := func(phase func() float64) (float64, map[string]float64) {
			before, t0 := treeCPU(d.cmd.Process.Pid), time.Now()
			v := phase()
			after, secs := treeCPU(d.cmd.Process.Pid), time.Since(t0).Seconds()
			cpu := map[string]float64{}
			for name, t := range after {
				cpu[name] = (t - before[name]).Seconds() / secs
			}
			return v, cpu
		}
		alone, aloneCPU := perSecond(throughput)
		var mallory struct{ ID string }
		res, err := client.Get(d.url + "/api/agents/Mallory")
		if err != nil {
			b.Fatal(err)
		}
		var env struct{ Data json.RawMessage }
		_ = json.NewDecoder(res.Body).Decode(&env)
		res.Body.Close()
		_ = json.Unmarshal(env.Data, &mallory)
		res, err = client.Get(d.url + "/hooks/hostile/" + mallory.ID + "/flood?seconds=120&workers=64")
		if err != nil || res.StatusCode != http.StatusOK {
			b.Fatalf("start the flood: %v", err)
		}
		// It answers once every worker calls: the flood is at full
		// strength.
		res.Body.Close()
		// How many of its calls the flood gets done a second, from the
		// plugin's own count.
		floodCalls := func() float64 {
			res, err := client.Get(d.url + "/hooks/hostile/" + mallory.ID + "/flooded")
			if err != nil {
				b.Fatal(err)
			}
			defer res.Body.Close()
			var r map[string]string
			_ = json.NewDecoder(res.Body).Decode(&r)
			n, _ := strconv.ParseFloat(r["calls"], 64)
			return n
		}
		calls0, t0 := floodCalls(), time.Now()
		flooded, floodCPU := perSecond(throughput)
		floodRate := (floodCalls() - calls0) / time.Since(t0).Seconds()
		calls0, t0 = floodCalls(), time.Now()
		// The flood on its own, with no message to answer: what it costs
		// each process a second.
		_, floodOnlyCPU := perSecond(func() float64 {
			<-time.After(2 * time.Second) // the window measured, not a wait for something
			return 0
		})
		floodOnlyRate := (floodCalls() - calls0) / time.Since(t0).Seconds()
		b.ReportMetric(alone, "alone-msgs/s")
		b.ReportMetric(flooded, "flooded-msgs/s")
		b.ReportMetric(flooded/alone, "flooded/alone")
		b.ReportMetric(aloneCPU["daemon"], "alone-daemon-cpu-s/s")
		b.ReportMetric(floodCPU["daemon"], "flooded-daemon-cpu-s/s")
		b.ReportMetric(floodCPU["hostile"], "flooded-hostile-cpu-s/s")
		b.ReportMetric(floodCPU["sql"], "flooded-sql-cpu-s/s")
		b.ReportMetric(floodRate, "flooded-hostile-calls/s")
		b.ReportMetric(floodOnlyRate, "flood-only-hostile-calls/s")
		b.ReportMetric(floodOnlyCPU["daemon"], "flood-only-daemon-cpu-s/s")
		b.ReportMetric(floodOnlyCPU["hostile"], "flood-only-hostile-cpu-s/s")
		b.ReportMetric(floodOnlyCPU["sql"], "flood-only-sql-cpu-s/s")
		d.stop()
	}
}

// BenchmarkManyAgents measures a daemon with many stored agents (BENCH_AGENTS,
// default 1000, each with the sql, bootstrap and offline plugins): the time
// from start to listening and to every agent running, the memory of the
// whole process tree, the first message to an agent against the next ones,
// and how long SIGTERM takes to end it all.
func BenchmarkManyAgents(b *testing.B) {
	n := 1000
	if v, err := strconv.Atoi(os.Getenv("BENCH_AGENTS")); err == nil && v > 0 {
		n = v
	}
	for b.Loop() {
		dataDir := b.TempDir()
		ctx := context.Background()
		store, err := sqlstore.Open(ctx, sqlstore.Config{DataDir: host.PluginDir(dataDir, "sql")})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := store.Migrate(ctx); err != nil {
			b.Fatal(err)
		}
		for i := range n {
			name := fmt.Sprintf("agent-%04d", i)
			js, _ := json.Marshal(map[string]any{"name": name, "bio": "bench", "plugins": []string{"offline"}})
			if _, _, err := store.EnsureAgent(ctx, dbplugin.AgentRecord{ID: sdk.StringToUUID(name), Name: name, CharacterJSON: js, Enabled: true}); err != nil {
				b.Fatal(err)
			}
		}
		store.Close()

		client := &http.Client{Timeout: 60 * time.Second}
		// The first start stores what agents store once (their own entity
		// and room, their embedding size); a restart is what is measured.
		first := startStored(b, client, dataDir, n)
		_ = first.cmd.Process.Signal(syscall.SIGTERM)
		_ = first.cmd.Wait()
		run := startStored(b, client, dataDir, n)
		cmd, url, listening, ready := run.cmd, run.url, run.listening, run.ready
		mem := treePSS(cmd.Process.Pid)
		say := func(agent string) time.Duration {
			t0 := time.Now()
			res, err := client.Post(url+"/api/agents/"+agent+"/messages", "application/json", strings.NewReader(`{"text":"hello there"}`))
			if err != nil {
				b.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				b.Fatalf("message to %s: %d", agent, res.StatusCode)
			}
			return time.Since(t0)
		}
		firstMsg := say(fmt.Sprintf("agent-%04d", n/2))
		var warm time.Duration
		for range 5 {
			warm += say(fmt.Sprintf("agent-%04d", n/2))
		}
		warm /= 5
		t0 := time.Now()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		stop := time.Since(t0)

		b.ReportMetric(float64(listening.Milliseconds()), "listen-ms")
		b.ReportMetric(float64(ready.Milliseconds()), "ready-ms")
		b.ReportMetric(mem/1024, "MiB")
		b.ReportMetric(mem/float64(n), "KiB/agent")
		b.ReportMetric(float64(firstMsg.Microseconds())/1000, "first-msg-ms")
		b.ReportMetric(float64(warm.Microseconds())/1000, "warm-msg-ms")
		b.ReportMetric(float64(stop.Milliseconds()), "stop-ms")
	}
}

// storedRun is a daemon started on a data dir of stored agents.
type storedRun struct {
	cmd              *exec.Cmd
	url              string
	listening, ready time.Duration
}

// startStored starts the daemon on dataDir and waits until it listens and
// until its n agents run.
func startStored(b *testing.B, client *http.Client, dataDir string, n int) storedRun {
	b.Helper()
	port := freePortB(b)
	cmd := exec.Command(bins.agenthost, "start", "--port", strconv.Itoa(port), "--data-dir", dataDir)
	cmd.Dir = b.TempDir()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + b.TempDir(), "AGENTHOST_LOG_LEVEL=warn", "AGENTHOST_RATE_LIMIT=0"}
	var out bytes.Buffer
	cmd.Stderr = &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	r := storedRun{cmd: cmd, url: fmt.Sprintf("http://127.0.0.1:%d", port)}
	ready := testwait.Poll(5*time.Minute, func() bool {
		res, err := client.Get(r.url + "/healthz")
		if err != nil {
			return false
		}
		res.Body.Close()
		if r.listening == 0 {
			r.listening = time.Since(start)
		}
		if res.StatusCode == http.StatusOK {
			r.ready = time.Since(start)
		}
		return r.ready != 0
	})
	if !ready {
		_ = cmd.Process.Kill()
		b.Fatalf("%d agents not running in time:\n%s", n, out.String())
	}
	return r
}

// BenchmarkHostOverhead measures the time a message spends outside model
// calls, against the real binary, with 1,000, 10,000 and 100,000 memories
// stored for the agent (BENCH_MEMORIES, comma-separated, changes the
// sizes). The agent runs the path users run (sql, bootstrap and the openai
// plugin against the project's OpenAI-compatible test server, 1536-value
// embeddings) without reflection, so that every model call of a message
// happens before its reply. Each of 200 sequential messages is timed at the client; the model
// calls' time is what the daemon's /metrics add to
// agenthost_model_call_duration_seconds meanwhile, read before and after
// the message. It reports the p50 and p95 of the difference, and per
// message the model time and the time in database calls (from
// agenthost_database_call_duration_seconds), by method for the largest.
func BenchmarkHostOverhead(b *testing.B) {
	sizes := []int{1_000, 10_000, 100_000}
	if v := os.Getenv("BENCH_MEMORIES"); v != "" {
		sizes = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 0 {
				b.Fatalf("BENCH_MEMORIES: %q is not a count", f)
			}
			sizes = append(sizes, n)
		}
	}
	srv := openaitest.Start(b)
	for _, n := range sizes {
		b.Run(fmt.Sprintf("memories=%d", n), func(b *testing.B) {
			for b.Loop() {
				benchOverhead(b, n, "OPENAI_API_KEY="+srv.APIKey, "OPENAI_BASE_URL="+srv.URL)
			}
		})
	}
}

func benchOverhead(b *testing.B, n int, env ...string) {
	dataDir := b.TempDir()
	char := filepath.Join(b.TempDir(), "bench.json")
	js, _ := json.Marshal(map[string]any{"name": "Bench", "bio": "A benchmark agent.",
		"plugins": []string{"sql", "bootstrap", "openai"}, "settings": map[string]any{"DISABLE_REFLECTION": "true"}})
	if err := os.WriteFile(char, js, 0o600); err != nil {
		b.Fatal(err)
	}
	args := append([]string{"--data-dir=" + dataDir, "--character=" + char}, env...)
	d := benchStart(b, args...)
	d.stop() // the agent is stored, with its embedding size

	ctx := context.Background()
	store, err := sqlstore.Open(ctx, sqlstore.Config{DataDir: host.PluginDir(dataDir, "sql"), ExactSearch: true})
	if err != nil {
		b.Fatal(err)
	}
	agents, err := store.GetAgents(ctx)
	if err != nil || len(agents) != 1 {
		b.Fatalf("agents: %v %v", agents, err)
	}
	agent, dim := agents[0].ID, agents[0].EmbeddingDimension
	if dim == 0 {
		b.Fatal("the agent has no embedding size after its first start")
	}
	rooms := make([]string, 50)
	for i := range rooms {
		rooms[i] = uuid.NewString()
	}
	topics := []string{"green tea", "the sea", "my job", "a cat", "the weather", "football", "a book", "music"}
	for i := range n {
		text := fmt.Sprintf("message %d about %s and %s", i, topics[i%len(topics)], topics[(i/8)%len(topics)])
		m := &sdk.Memory{RoomID: rooms[i%len(rooms)], EntityID: uuid.NewString(), Content: sdk.Content{Text: text},
			Embedding: offline.Embed(text, dim)}
		table := sdk.TableMessages
		if i%10 == 0 {
			table = sdk.TableFacts
		}
		if _, _, err := store.CreateMemory(ctx, agent, m, table, false); err != nil {
			b.Fatal(err)
		}
	}
	store.Close()

	d = benchStart(b, args...)
	defer d.stop()
	client := &http.Client{Timeout: 30 * time.Second}
	send := func(text string) { benchSay(b, client, d.url, "Bench", "bench", text) }
	for i := range 20 {
		send(fmt.Sprintf("warming up %d", i))
	}
	const messages = 200
	over := make([]time.Duration, 0, messages)
	var model, db float64
	dbBy := map[string]float64{}
	for i := range messages {
		before := scrapeSums(b, client, d.url)
		t0 := time.Now()
		send(fmt.Sprintf("I feel sad about %s number %d", topics[i%len(topics)], i))
		took := time.Since(t0)
		after := scrapeSums(b, client, d.url)
		m := after.model - before.model
		model += m
		for k, v := range after.db {
			dbBy[k] += v - before.db[k]
			db += v - before.db[k]
		}
		over = append(over, took-time.Duration(m*float64(time.Second)))
	}
	sort.Slice(over, func(i, j int) bool { return over[i] < over[j] })
	b.ReportMetric(float64(over[len(over)/2].Microseconds())/1000, "p50-overhead-ms")
	b.ReportMetric(float64(over[len(over)*95/100].Microseconds())/1000, "p95-overhead-ms")
	b.ReportMetric(model*1000/messages, "model-ms/msg")
	b.ReportMetric(db*1000/messages, "db-ms/msg")
	type method struct {
		name string
		ms   float64
	}
	var ms []method
	for k, v := range dbBy {
		ms = append(ms, method{k, v * 1000 / messages})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].ms > ms[j].ms })
	for _, m := range ms[:min(3, len(ms))] {
		b.ReportMetric(m.ms, "db-"+m.name+"-ms/msg")
	}
}

// metricSums are the sums of the daemon's model-call and database-call
// histograms, in seconds; db by method.
type metricSums struct {
	model float64
	db    map[string]float64
}

var methodLabel = regexp.MustCompile(`method="([^"]*)"`)

func scrapeSums(b *testing.B, client *http.Client, url string) metricSums {
	res, err := client.Get(url + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	out := metricSums{db: map[string]float64{}}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(line, "agenthost_model_call_duration_seconds_sum"):
			out.model += v
		case strings.HasPrefix(line, "agenthost_database_call_duration_seconds_sum"):
			if m := methodLabel.FindStringSubmatch(line); m != nil {
				out.db[m[1]] += v
			}
		}
	}
	if err := sc.Err(); err != nil {
		b.Fatal(err)
	}
	return out
}
