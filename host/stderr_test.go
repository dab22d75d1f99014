package host

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/agenthost/agenthost/internal/syncbuf"
	"github.com/hashicorp/go-hclog"
)

func newTestLog(buf *bytes.Buffer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Output: buf, Level: hclog.Trace, Name: "plugin.x"})
}

func TestStderrLogParsesHclogJSON(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	w := newStderrLog(newTestLog(&buf), nil)
	// Written in pieces, as a pipe delivers it.
	line := `{"@level":"warn","@message":"disk almost full","@timestamp":"2026-01-01T00:00:00.000000Z","free_mb":12}` + "\n"
	for _, part := range []string{line[:10], line[10:40], line[40:]} {
		if _, err := w.Write([]byte(part)); err != nil {
			t.Fatal(err)
		}
	}
	out := buf.String()
	if !strings.Contains(out, "[WARN]") || !strings.Contains(out, "disk almost full") || !strings.Contains(out, "free_mb=12") {
		t.Fatalf("want the JSON entry re-emitted at WARN with its fields, got %q", out)
	}
}

// A plugin's fields come out in the same order on every line, whatever
// order the line had them in.
func TestStderrLogKeepsFieldsInOrder(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	w := newStderrLog(newTestLog(&buf), nil)
	want := "agent_id=a1 attempts=1 duration_ms=3 model=m outcome=ok prompt_tokens=9 provider=p run_id=r1 total_tokens=9 type=TEXT_LARGE"
	for _, line := range []string{
		`{"@level":"info","@message":"model call","type":"TEXT_LARGE","run_id":"r1","agent_id":"a1","attempts":1,"duration_ms":3,"model":"m","outcome":"ok","prompt_tokens":9,"provider":"p","total_tokens":9}`,
		`{"total_tokens":9,"provider":"p","prompt_tokens":9,"outcome":"ok","model":"m","duration_ms":3,"attempts":1,"agent_id":"a1","run_id":"r1","type":"TEXT_LARGE","@message":"model call","@level":"info"}`,
	} {
		for range 5 {
			buf.Reset()
			if _, err := w.Write([]byte(line + "\n")); err != nil {
				t.Fatal(err)
			}
			if got := buf.String(); !strings.HasSuffix(strings.TrimSpace(got), "model call: "+want) {
				t.Fatalf("fields out of order:\n got %q\nwant it to end with %q", got, "model call: "+want)
			}
		}
	}
}

func TestStderrLogSurvivesHostileLines(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	w := newStderrLog(newTestLog(&buf), nil)
	hostile := []string{
		`{"@message": 123, "@level": 7, "@timestamp": false}`,
		`{"@message": {"a": [1, 2]}, "@level": ["info"]}`,
		`{"@message": null}`,
		`{"unterminated`,
		"\x00\xff\xfe\x1b[31m",
		strings.Repeat("y", maxLogLine*3),
		"[ERROR] prefixed",
		"panic: boom",
		"goroutine 1 [running]:",
	}
	for _, h := range hostile {
		if _, err := w.Write([]byte(h + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	out := buf.String()
	for _, want := range []string{"123", "plugin log line cut", "[ERROR] plugin.x: [ERROR] prefixed", "[ERROR] plugin.x: goroutine 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if len(out) > 4*maxLogLine {
		t.Errorf("an overlong line must be cut, output is %d bytes", len(out))
	}
}

func FuzzStderrLog(f *testing.F) {
	f.Add([]byte(`{"@message":1}` + "\n"))
	f.Add([]byte("plain\n[WARN] x\n"))
	f.Add([]byte(`{"@level":"error","@message":"m","k":{"n":[1,{}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		w := newStderrLog(hclog.NewNullLogger(), nil)
		n, err := w.Write(data)
		if err != nil || n != len(data) {
			t.Fatalf("Write = %d, %v", n, err)
		}
		_, _ = w.Write([]byte("\n"))
	})
}

// TestStderrLogCannotForgeHostLines: a plugin's text stays on its own line
// under its own name, cannot pass itself off as about another agent, and
// its panic does not make the rest of its log errors.
func TestStderrLogCannotForgeHostLines(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	w := newStderrLog(newTestLog(&buf), nil)
	lines := []string{
		"innocent\n2026-01-01T00:00:00.000Z [ERROR] agenthost: forged host line", // one write, two lines: each is the plugin's
		`{"@level":"info","@message":"hi\n2026-01-01T00:00:00.000Z [INFO]  agenthost.agent: forged","agent":"Victim","plugin":"sql","x y=z":"\u001b[31mred"}`,
		`{"@level":"info","@message":"nested","v":{"a":"b\nc"}}`,
		"panic: boom",
		"goroutine 1 [running]:",
		`{"@level":"info","@message":"recovered and logging again"}`,
		"an ordinary line after the panic",
	}
	for _, l := range lines {
		if _, err := w.Write([]byte(l + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	out := buf.String()
	for i, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if !strings.Contains(line, " plugin.x: ") {
			t.Errorf("line %d is not the plugin's: %q", i, line)
		}
	}
	for _, bad := range []string{" agent=Victim", " plugin=sql", "\x1b", "x y=z"} {
		if strings.Contains(out, bad) {
			t.Errorf("the output holds %q:\n%s", bad, out)
		}
	}
	for _, want := range []string{`hi\n2026`, "plugin_agent=Victim", "plugin_plugin=sql", `\x1b[31mred`, `b\nc`,
		"[ERROR] plugin.x: panic: boom", "[ERROR] plugin.x: goroutine 1", "[DEBUG] plugin.x: an ordinary line after the panic"} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
	if got := w.lastFatal(); got != "panic: boom" {
		t.Errorf("lastFatal = %q, want the panic", got)
	}
}

// flooded is a plugin's stderr with its budget, after n lines written at
// once.
func flooded(n int) (*stderrLog, *syncBuffer) {
	buf := &syncBuffer{}
	log := hclog.New(&hclog.LoggerOptions{Output: buf, Level: hclog.Trace, Name: "plugin.x"})
	w := newStderrLog(log, newLogBudget(log))
	for i := range n {
		fmt.Fprintf(w, "line %d\n", i)
	}
	return w, buf
}

// TestStderrLogRationsAFlood runs in a bubble of fake time: the flood is
// written in no time at all, so exactly the burst gets through, and the
// report of what was suppressed comes a second later.
func TestStderrLogRationsAFlood(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		_, buf := flooded(logBurst * 3)
		if strings.Contains(buf.String(), "suppressed") {
			t.Error("the flood was reported before its second was over")
		}
		time.Sleep(time.Second)
		synctest.Wait()
		out := buf.String()
		if n := strings.Count(out, "plugin.x: line "); n != logBurst {
			t.Errorf("%d lines of a flood of %d got through, want %d", n, logBurst*3, logBurst)
		}
		if !strings.Contains(out, fmt.Sprintf("suppressed %d lines of the plugin's log", 2*logBurst)) {
			t.Errorf("the flood was not reported:\n%s", tail(out, 500))
		}
	})
}

// TestStderrLogKnowsTheFatalLinePastTheBudget: a plugin that floods its log
// and then dies still says why, though the lines of its death are not
// logged.
func TestStderrLogKnowsTheFatalLinePastTheBudget(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		w, buf := flooded(logBurst)
		fmt.Fprint(w, "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory\n")
		fmt.Fprint(w, " 1: 0xb7c3c0 node::Abort() [node]\n")
		if strings.Contains(buf.String(), "FATAL ERROR") {
			t.Fatal("the line over the budget was logged: the test proves nothing")
		}
		if got, want := w.lastFatal(), "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory"; got != want {
			t.Errorf("lastFatal = %q, want %q", got, want)
		}
		fmt.Fprint(w, "fatal error: runtime: out of memory\n")
		if got := w.lastFatal(); got != "fatal error: runtime: out of memory" {
			t.Errorf("lastFatal = %q, want Go's out of memory", got)
		}
	})
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// syncBuffer collects output written from several goroutines.
type syncBuffer = syncbuf.Buffer

// TestStderrLogKnowsWhyAProcessDied: the line that says why a process dies
// is what it died of, and the line after it that says how (cgo's abort,
// the Go runtime's throw) is added to it, not put in its place.
func TestStderrLogKnowsWhyAProcessDied(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		lines []string
		want  string
	}{
		{"go out of memory", []string{"fatal error: runtime: out of memory", "", "runtime stack:"}, "fatal error: runtime: out of memory"},
		{"cgo thread over the memory limit", []string{
			"runtime/cgo: pthread_create failed: Resource temporarily unavailable",
			"SIGABRT: abort", "PC=0x7ff3914e0eec m=6 sigcode=18446744073709551610"},
			"runtime/cgo: pthread_create failed: Resource temporarily unavailable; SIGABRT: abort"},
		{"another thread's line in between", []string{
			"runtime/cgo: pthread_create failed: Resource temporarily unavailable",
			`{"@level":"info","@message":"still serving"}`, "SIGABRT: abort"},
			"runtime/cgo: pthread_create failed: Resource temporarily unavailable; SIGABRT: abort"},
		{"go thread refused", []string{
			"runtime: failed to create new OS thread (have 12 already; errno=11)",
			"runtime: may need to increase max user processes (ulimit -u)", "fatal error: newosproc"},
			"runtime: failed to create new OS thread (have 12 already; errno=11); fatal error: newosproc"},
		{"a signal alone", []string{"SIGSEGV: segmentation violation", "PC=0x0 m=0 sigcode=1"}, "SIGSEGV: segmentation violation"},
		{"a later death is the one", []string{"panic: first", "goroutine 1 [running]:", "a", "b", "c", "d", "e", "SIGQUIT: quit"}, "SIGQUIT: quit"},
		{"not a signal", []string{"SIGNAL received, going on"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newStderrLog(hclog.NewNullLogger(), nil)
			for _, l := range c.lines {
				fmt.Fprint(w, l+"\n")
			}
			if got := w.lastFatal(); got != c.want {
				t.Errorf("lastFatal = %q, want %q", got, c.want)
			}
		})
	}
}
