package host

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func newTestLog(buf *bytes.Buffer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Output: buf, Level: hclog.Trace, Name: "plugin.x"})
}

func TestStderrLogParsesHclogJSON(t *testing.T) {
	var buf bytes.Buffer
	w := newStderrLog(newTestLog(&buf))
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

func TestStderrLogSurvivesHostileLines(t *testing.T) {
	var buf bytes.Buffer
	w := newStderrLog(newTestLog(&buf))
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
		w := newStderrLog(hclog.NewNullLogger())
		n, err := w.Write(data)
		if err != nil || n != len(data) {
			t.Fatalf("Write = %d, %v", n, err)
		}
		_, _ = w.Write([]byte("\n"))
	})
}
