package host

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

type wsClient struct {
	t *testing.T
	c *websocket.Conn
}

func dialWS(t *testing.T, td *testDaemon) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(td.url, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return &wsClient{t: t, c: c}
}

func (w *wsClient) send(v any) {
	w.t.Helper()
	b, _ := json.Marshal(v)
	w.raw(string(b))
}

func (w *wsClient) raw(s string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.c.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		w.t.Fatal(err)
	}
}

// next reads events until one of the given type, returning it and the
// types seen before it.
func (w *wsClient) next(typ string) (map[string]any, []string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var seen []string
	for {
		_, b, err := w.c.Read(ctx)
		if err != nil {
			w.t.Fatalf("waiting for %q (after %v): %v", typ, seen, err)
		}
		var ev map[string]any
		if err := json.Unmarshal(b, &ev); err != nil {
			w.t.Fatalf("not JSON: %s", b)
		}
		if ev["type"] == typ {
			return ev, seen
		}
		seen = append(seen, ev["type"].(string))
	}
}

func TestWebSocketChat(t *testing.T) {
	td := startTestDaemon(t, daemonOpt{})
	w := dialWS(t, td)
	hello, _ := w.next("hello")
	if agents := hello["agents"].([]any); len(agents) != 1 {
		t.Fatalf("hello = %v", hello)
	}

	w.send(map[string]any{"type": "join", "agentId": "Eliza", "userName": "wendy"})
	joined, _ := w.next("joined")
	room := joined["roomId"].(string)
	if room != UserRoomID(td.d.Agent("Eliza").ID, "wendy") {
		t.Fatalf("joined = %v", joined)
	}

	w.send(map[string]any{"type": "message", "agentId": "Eliza", "userName": "wendy", "text": "I need a holiday", "clientMessageId": "c1"})
	ack, _ := w.next("ack")
	if ack["clientMessageId"] != "c1" || ack["roomId"] != room {
		t.Fatalf("ack = %v", ack)
	}
	msg, _ := w.next("message")
	if msg["text"] != "I need a holiday" || msg["clientMessageId"] != "c1" {
		t.Fatalf("message = %v", msg)
	}
	thinking, _ := w.next("thinking")
	reply, _ := w.next("reply")
	fin, _ := w.next("run_finished")
	if thinking["runId"] != reply["runId"] || reply["runId"] != fin["runId"] {
		t.Fatalf("one run: %v %v %v", thinking, reply, fin)
	}
	if txt, _ := reply["text"].(string); txt == "" || reply["agentName"] != "Eliza" || reply["roomId"] != room {
		t.Fatalf("reply = %v", reply)
	}
	if fin["status"] != "completed" || fin["replies"] != float64(1) {
		t.Fatalf("run_finished = %v", fin)
	}
	// The exchange is stored: the memories view shows it.
	mems := td.memories("Eliza", "roomId="+room)
	if len(mems) != 2 || mems[0].Content["text"] != reply["text"] {
		t.Fatalf("memories = %+v", mems)
	}

	// A message sent over HTTP to the same room reaches the socket live.
	td.say("Eliza", "wendy", "over http")
	if r, _ := w.next("reply"); r["roomId"] != room {
		t.Fatalf("http reply = %v", r)
	}

	// The live log stream carries the timeline and the daemon's log.
	w.send(map[string]any{"type": "subscribe_logs", "level": "debug"})
	w.next("logs_subscribed")
	w.send(map[string]any{"type": "message", "agentId": "Eliza", "userName": "wendy", "text": "log this"})
	var sawModel, sawRun bool
	for !(sawModel && sawRun) {
		ev, _ := w.next("log")
		if ev["kind"] == "timeline" {
			lt, _ := ev["logType"].(string)
			sawModel = sawModel || strings.HasPrefix(lt, "useModel:")
			sawRun = sawRun || lt == "run"
		}
	}
	w.send(map[string]any{"type": "unsubscribe_logs"})
	w.next("logs_unsubscribed")

	// Bad frames get an error and the connection stays.
	for _, c := range []struct{ frame, code string }{
		{`{"type": "message", "text": `, "INVALID_JSON"},
		{`{"type": "dance"}`, "UNKNOWN_TYPE"},
		{`{"type": "message", "agentId": "Nobody", "text": "x"}`, "AGENT_NOT_FOUND"},
		{`{"type": "message", "agentId": "Eliza", "text": ""}`, "INVALID_MESSAGE"},
		{`{"type": "join", "agentId": "Eliza", "roomId": "no"}`, "INVALID_MESSAGE"},
		{`{"type": "join", "evil": 1}`, "INVALID_REQUEST"},
		{`{"type": "subscribe_logs", "level": "loud"}`, "INVALID_MESSAGE"},
	} {
		w.raw(c.frame)
		ev, _ := w.next("error")
		if ev["code"] != c.code || ev["message"] == "" {
			t.Errorf("frame %s: want %s, got %v", c.frame, c.code, ev)
		}
	}
	w.send(map[string]any{"type": "ping"})
	w.next("pong")

	// A stopped agent: the socket hears its status and the message fails.
	td.ok(200, "POST", "/api/agents/Eliza/stop", nil, nil)
	st, _ := w.next("agent_status")
	if st["agent"].(map[string]any)["status"] != "stopped" {
		t.Fatalf("agent_status = %v", st)
	}
	w.send(map[string]any{"type": "message", "agentId": "Eliza", "text": "anyone?", "clientMessageId": "c9"})
	ev, _ := w.next("error")
	if ev["code"] != "AGENT_NOT_RUNNING" || ev["clientMessageId"] != "c9" {
		t.Fatalf("message to a stopped agent: %v", ev)
	}
}

func TestWebSocketFrameLimit(t *testing.T) {
	td := startTestDaemon(t, daemonOpt{})
	w := dialWS(t, td)
	w.next("hello")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = w.c.Write(ctx, websocket.MessageText, []byte(`{"type":"message","text":"`+strings.Repeat("x", wsReadLimit+10)+`"}`))
	for {
		if _, _, err := w.c.Read(ctx); err != nil {
			if websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
				t.Fatalf("an oversized frame should close with 1009, got %v", err)
			}
			break
		}
	}
	if eventuallyCount(td) != 0 {
		t.Error("the connection should be gone")
	}
}

func eventuallyCount(td *testDaemon) int {
	for i := 0; i < 100; i++ {
		if td.d.api.hub.count() == 0 {
			return 0
		}
		time.Sleep(20 * time.Millisecond)
	}
	return td.d.api.hub.count()
}
