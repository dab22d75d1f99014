package host

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/internal/testwait"
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
	t.Parallel()
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
	// Its run ends a moment after the reply: its "run" entry must not be
	// taken below for the next message's.
	w.next("run_finished")

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
	t.Parallel()
	td := startTestDaemon(t, daemonOpt{})
	w := dialWS(t, td)
	w.next("hello")
	w.closedBy(td, []byte(`{"type":"message","text":"`+strings.Repeat("x", wsReadLimit+10)+`"}`), websocket.StatusMessageTooBig)
}

// closedBy sends a text frame that must make the daemon close the
// connection with code, having taken nothing of it.
func (w *wsClient) closedBy(td *testDaemon, frame []byte, code websocket.StatusCode) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = w.c.Write(ctx, websocket.MessageText, frame)
	for {
		_, b, err := w.c.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) != code {
				w.t.Fatalf("the connection should close with %d, got %v", code, err)
			}
			break
		}
		if strings.Contains(string(b), `"ack"`) {
			w.t.Fatalf("the frame was taken: %s", b)
		}
	}
	testwait.For(w.t, 10*time.Second, "the connection to be gone", func() bool { return td.d.api.hub.count() == 0 })
}

// TestWebSocketRoomCapCountsMessages: a message frame to a room joins it,
// so it counts against the cap of rooms a connection hears; a message to a
// new room past the cap is refused before anything is stored.
func TestWebSocketRoomCapCountsMessages(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOpt{})
	w := dialWS(t, td)
	w.next("hello")
	room := func(i int) string { return fmt.Sprintf("5f4f0a40-2c1e-4c5b-9d7e-%012d", i) }
	for i := 0; i < wsMaxRooms-1; i++ {
		w.send(map[string]any{"type": "join", "agentId": "Eliza", "roomId": room(i)})
		w.next("joined")
	}
	// The last free place, taken by a message.
	w.send(map[string]any{"type": "message", "agentId": "Eliza", "roomId": room(100), "text": "one more room", "clientMessageId": "m1"})
	if ack, _ := w.next("ack"); ack["roomId"] != room(100) {
		t.Fatalf("ack = %v", ack)
	}
	w.next("run_finished")
	// Full: a message to a new room is refused, one to a joined room is not.
	w.send(map[string]any{"type": "message", "agentId": "Eliza", "roomId": room(101), "text": "past the cap", "clientMessageId": "m2"})
	ev, seen := w.next("error")
	if ev["code"] != "TOO_MANY_ROOMS" || ev["clientMessageId"] != "m2" {
		t.Fatalf("a message to a 65th room: %v (after %v)", ev, seen)
	}
	w.send(map[string]any{"type": "join", "agentId": "Eliza", "roomId": room(102)})
	if ev, _ := w.next("error"); ev["code"] != "TOO_MANY_ROOMS" {
		t.Fatalf("a join past the cap: %v", ev)
	}
	w.send(map[string]any{"type": "message", "agentId": "Eliza", "roomId": room(5), "text": "a joined room", "clientMessageId": "m3"})
	if ack, _ := w.next("ack"); ack["clientMessageId"] != "m3" {
		t.Fatalf("ack = %v", ack)
	}
	w.next("run_finished")
	if n := len(td.memories("Eliza", "roomId="+room(101))); n != 0 {
		t.Errorf("the refused message was stored: %d memories in its room", n)
	}
	// A user's own room counts too: with no roomId the message goes there.
	w.send(map[string]any{"type": "message", "agentId": "Eliza", "userName": "newcomer", "text": "hello"})
	if ev, _ := w.next("error"); ev["code"] != "TOO_MANY_ROOMS" {
		t.Fatalf("a message to the user's room past the cap: %v", ev)
	}
	// Leaving makes room.
	w.send(map[string]any{"type": "leave", "agentId": "Eliza", "roomId": room(0)})
	w.next("left")
	w.send(map[string]any{"type": "message", "agentId": "Eliza", "roomId": room(101), "text": "now there is room", "clientMessageId": "m4"})
	if ack, _ := w.next("ack"); ack["clientMessageId"] != "m4" {
		t.Fatalf("ack = %v", ack)
	}
}

// TestWebSocketInvalidUTF8 closes a connection whose text frame is not
// UTF-8 with 1007, as RFC 6455 asks.
func TestWebSocketInvalidUTF8(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOpt{})
	w := dialWS(t, td)
	w.next("hello")
	w.closedBy(td, []byte("{\"type\":\"message\",\"agentId\":\"Eliza\",\"text\":\"\xff\xfe\xc3\x28\"}"), websocket.StatusInvalidFramePayloadData)
	if n := len(td.memories("Eliza", "count=10")); n != 0 {
		t.Errorf("%d memories stored", n)
	}
}
