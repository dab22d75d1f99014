package plugincheck

import (
	"strings"
	"testing"
)

func TestHandshakeProblem(t *testing.T) {
	for _, c := range []struct{ line, want string }{
		{"1|1|unix|/run/x/sock|grpc|MIIB", ""},
		{"", "wrote no handshake line"},
		{"hello world", "has 1 fields; it needs 6"},
		{"2|1|unix|/run/x/sock|grpc|MIIB", "core protocol \"2\""},
		{"1|2|unix|/run/x/sock|grpc|MIIB", "chose app protocol 2, but the host offered 1"},
		{"1|1|tcp|127.0.0.1:1234|grpc|MIIB", `listens on "tcp"`},
		{"1|1|unix|/run/x/sock|netrpc|MIIB", `protocol "netrpc"`},
		{"1|1|unix|/run/x/sock|grpc|MIIB|false", "has 7 fields"},
		{"1|1|unix|/tmp/elsewhere/sock|grpc|MIIB", "not in PLUGIN_UNIX_SOCKET_DIR"},
	} {
		got := handshakeProblem(c.line, "/run/x")
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%q: %q, want …%s…", c.line, got, c.want)
		}
	}
}

func TestLogLineProblem(t *testing.T) {
	for _, c := range []struct{ line, want string }{
		{`{"@level":"info","@message":"hi","@timestamp":"2026-05-01T12:00:00.123000Z"}`, ""},
		{`{"@level":"warn","@message":"hi","@timestamp":"2026-05-01T12:00:00.123000+02:00","x":1}`, ""},
		{`plain text`, "not a JSON object"},
		{`{"@level":7,"@message":"hi","@timestamp":"2026-05-01T12:00:00.123000Z"}`, "@level is not a string"},
		{`{"@level":"notice","@message":"hi","@timestamp":"2026-05-01T12:00:00.123000Z"}`, `@level "notice"`},
		{`{"@level":"info","@message":123,"@timestamp":"2026-05-01T12:00:00.123000Z"}`, "@message is not a string"},
		{`{"@level":"info","@message":"hi","@timestamp":"2026-05-01T12:00:00Z"}`, "is not in the layout"},
		{`{"@level":"info","@message":"hi"}`, "@timestamp is not a string"},
	} {
		got := logLineProblem(c.line)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: %q, want …%s…", c.line, got, c.want)
		}
	}
}

// TestOutputIsBounded: what a plugin writes is kept up to a bound.
func TestOutputIsBounded(t *testing.T) {
	var out capped
	big := strings.Repeat("x", maxStdout)
	_, _ = out.Write([]byte("1|1|unix|/s|grpc|C\n" + big))
	if len(out.String()) != maxStdout || out.Dropped() != len("1|1|unix|/s|grpc|C\n") {
		t.Errorf("kept %d bytes, dropped %d", len(out.String()), out.Dropped())
	}
	var l lines
	_, _ = l.Write([]byte(strings.Repeat("y", 2*maxLineBytes) + "\n"))
	for range maxLines + 5 {
		_, _ = l.Write([]byte("z\n"))
	}
	if all := l.lines(); len(all) != maxLines || len(all[0]) != maxLineBytes || l.dropped != 6 {
		t.Errorf("kept %d lines, the first %d bytes long, dropped %d", len(all), len(all[0]), l.dropped)
	}
}

// TestProvokedHandshakeLines: what gRPC's C core writes about the TLS
// handshakes the mtls check provoked is told apart from other lines.
func TestProvokedHandshakeLines(t *testing.T) {
	line := "E1203 01:23:55.867858487    6561 ssl_transport_security.cc:1501]       Handshake failed with fatal error SSL_ERROR_SSL: error:1000007d"
	if !refusedHandshake.MatchString(line) {
		t.Errorf("not recognised: %s", line)
	}
	for _, other := range []string{"E1203 01:23:55.867858487    6561 server.cc:12] something else", "Handshake failed", "Traceback (most recent call last):"} {
		if refusedHandshake.MatchString(other) {
			t.Errorf("recognised: %s", other)
		}
	}
}
