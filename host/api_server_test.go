package host

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/sdk"
)

// TestServerTimeouts runs the daemon's own http.Server with short read and
// idle timeouts: a client that sends its body slowly is disconnected, and
// so is an idle kept-alive connection, while a message that waits for a
// slow model longer than both, and a WebSocket left quiet all along, work.
func TestServerTimeouts(t *testing.T) {
	t.Parallel()
	const timeout = 400 * time.Millisecond
	slow := &sdk.Character{Name: "Slow", Bio: sdk.StringList{"A slow thinker."}, Plugins: []string{"scripted"},
		Settings: map[string]any{"SCRIPTED_DELAY_MS": "1500", "SCRIPTED_REPLY": "a slow answer"}}
	td := startTestDaemon(t, daemonOpt{listen: true, chars: []*sdk.Character{slow}, pluginDirs: []string{testPlugins(t, "scripted")},
		cfg: func(c *Config) { c.ReadTimeout, c.IdleTimeout = timeout, timeout }})
	addr := strings.TrimPrefix(td.url, "http://")
	// A WebSocket left quiet while the server's timeouts are seen to fire
	// on the connections below; at the end it must still work.
	w := dialWS(t, td)
	w.next("hello")

	// A message that waits for its model longer than the read timeout.
	start := time.Now()
	if r := td.say("Slow", "sam", "take your time"); r.Messages[0].Text != "a slow answer" {
		t.Errorf("reply = %+v", r.Messages)
	}
	if took := time.Since(start); took < 1500*time.Millisecond {
		t.Fatalf("the model was to take 1.5 s, the message took %s: the test proves nothing", took)
	}

	// A slow body: a byte every 100 ms of 4 KiB announced.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/agents/Slow/messages HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{\"text\":\"", addr)
	closed := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(conn)
		closed <- string(b)
	}()
	// Sending slowly is what is tested: a byte a tick until the server
	// hangs up, for 15 s at most, far past the timeout.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	sent := 0
	var answer string
send:
	for {
		select {
		case answer = <-closed:
			break send
		case <-tick.C:
			if sent == 150 {
				t.Fatalf("a client sending its body slowly was not disconnected (%d bytes sent)", sent)
			}
			if _, err := conn.Write([]byte("a")); err == nil {
				sent++
			}
		}
	}
	if !strings.HasPrefix(answer, "HTTP/1.1 408") || !strings.Contains(answer, "REQUEST_TIMEOUT") {
		t.Errorf("a slow body should be answered 408 before the connection closes: %q", answer)
	}

	// An idle kept-alive connection.
	conn2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	fmt.Fprintf(conn2, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	br := bufio.NewReader(conn2)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, "200") {
		t.Fatalf("healthz: %q %v", status, err)
	}
	_ = conn2.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.Copy(io.Discard, br); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("an idle connection was kept open")
		}
	}

	// The WebSocket was quiet for longer than both timeouts, which the
	// two connections above saw fire: it still works.
	w.send(map[string]any{"type": "ping"})
	w.next("pong")
	w.send(map[string]any{"type": "message", "agentId": "Slow", "userName": "wes", "text": "still there?"})
	if r, _ := w.next("reply"); r["text"] != "a slow answer" {
		t.Errorf("reply over the socket: %v", r)
	}
}
