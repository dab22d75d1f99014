//go:build linux

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkDaemon measures the figures elizaOS is compared on, against the
// real binary with the default agent (sql, bootstrap and offline as child
// processes): cold start to a healthy daemon, memory when idle, per-message
// latency, throughput with 10 concurrent senders, and memory after 500
// messages. Memory is the PSS of the daemon and every plugin process, so
// pages shared between them count once.
func BenchmarkDaemon(b *testing.B) {
	for b.Loop() {
		start := time.Now()
		d := benchStart(b)
		cold := time.Since(start)
		idle := treePSS(d.cmd.Process.Pid)

		client := &http.Client{Timeout: 30 * time.Second}
		send := func(user, text string) {
			res, err := client.Post(d.url+"/api/agents/Eliza/messages", "application/json",
				strings.NewReader(`{"text":"`+text+`","userName":"`+user+`"}`))
			if err != nil {
				b.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				b.Fatalf("status %d", res.StatusCode)
			}
		}
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
		after := treePSS(d.cmd.Process.Pid) // after 500 messages

		b.ReportMetric(cold.Seconds()*1000, "cold-start-ms")
		b.ReportMetric(idle/1024, "idle-MiB")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, "p95-ms")
		b.ReportMetric(throughput, "msgs/s@10")
		b.ReportMetric(after/1024, "after500-MiB")
		d.stop()
	}
}

type benchDaemon struct {
	*daemon
	stop func()
}

func benchStart(b *testing.B) benchDaemon {
	b.Helper()
	port := freePortB(b)
	dir := b.TempDir()
	cmd := exec.Command(bins.agenthost, "start", "--port", strconv.Itoa(port), "--data-dir", dir)
	cmd.Dir = b.TempDir()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + b.TempDir(), "AGENTHOST_LOG_LEVEL=warn"}
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
	for deadline := time.Now().Add(30 * time.Second); ; {
		res, err := http.Get(d.url + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			b.Fatalf("daemon not ready: %s", out.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
	return benchDaemon{daemon: d, stop: func() {
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
