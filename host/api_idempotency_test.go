package host

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/character"
)

// sayKeyed posts a message with an Idempotency-Key and returns the status,
// whether the answer is a replay, and the answer.
func (td *testDaemon) sayKeyed(agent, user, text, key string) (int, bool, sayResult, apiEnvelope) {
	td.t.Helper()
	b, _ := json.Marshal(map[string]string{"text": text, "userName": user})
	req, _ := http.NewRequest("POST", td.url+"/api/agents/"+agent+"/messages", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	res, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		td.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var env apiEnvelope
	if err := json.Unmarshal(raw, &env); err != nil {
		td.t.Fatalf("not the envelope: %s", raw)
	}
	var out sayResult
	if env.Success {
		_ = json.Unmarshal(env.Data, &out)
	}
	return res.StatusCode, res.Header.Get("Idempotent-Replayed") == "true", out, env
}

func replyIDs(r sayResult) string {
	var ids []string
	for _, m := range r.Messages {
		ids = append(ids, m.ID)
	}
	return strings.Join(ids, ",")
}

// TestIdempotentMessages: a message sent again with its Idempotency-Key
// (or WebSocket clientMessageId) is stored and answered once. A retry
// after the first gets the same answer, one during it waits for it, one
// after a restart of the daemon gets the replies back from the room, and
// a key used for another message is refused.
func TestIdempotentMessages(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	slow := &sdk.Character{Name: "Slow", Bio: sdk.StringList{"A slow thinker."}, Plugins: []string{"scripted"},
		Settings: map[string]any{"SCRIPTED_DELAY_MS": "1000", "SCRIPTED_REPLY": "slowly: %s"}}
	chars := []*sdk.Character{character.Default(), slow}
	plugins := []string{testPlugins(t, "scripted")}
	td := startTestDaemon(t, daemonOpt{dataDir: dir, chars: chars, pluginDirs: plugins})

	code, replayed, first, env := td.sayKeyed("Eliza", "ann", "I feel tired today", "key-1")
	if code != 200 || replayed || len(first.Messages) != 1 || first.MessageID == "" {
		t.Fatalf("first delivery: %d replayed=%v %+v %+v", code, replayed, first, env.Error)
	}
	if want := keyedMessageID(td.d.Agent("Eliza"), "ann", "key-1"); first.MessageID != want {
		t.Errorf("the message id should come from the key: %s, want %s", first.MessageID, want)
	}
	code, replayed, again, _ := td.sayKeyed("Eliza", "ann", "I feel tired today", "key-1")
	if code != 200 || !replayed || again.MessageID != first.MessageID || replyIDs(again) != replyIDs(first) || again.Messages[0].Text != first.Messages[0].Text {
		t.Fatalf("a retry should get the first answer: %d replayed=%v %+v, first %+v", code, replayed, again, first)
	}
	if n := len(td.memories("Eliza", "roomId="+first.RoomID)); n != 2 {
		t.Errorf("the room holds %d memories after a retry, want 2 (the message and its reply)", n)
	}

	// The key is the user's: another user's "key-1" is another message.
	code, replayed, other, _ := td.sayKeyed("Eliza", "bob", "I feel tired today", "key-1")
	if code != 200 || replayed || other.MessageID == first.MessageID {
		t.Errorf("another user's key: %d replayed=%v %+v", code, replayed, other)
	}
	// The same key for another message is refused, and stores nothing.
	if code, _, _, env := td.sayKeyed("Eliza", "ann", "something else", "key-1"); code != 422 || env.code() != "IDEMPOTENCY_KEY_REUSED" {
		t.Errorf("a key reused for another text: %d %+v", code, env.Error)
	}
	for _, bad := range []string{"", "has space", strings.Repeat("k", 256), "caf\u00e9"} {
		if code, _, _, env := td.sayKeyed("Eliza", "ann", "hi", bad); code != 400 || !strings.Contains(env.Error.Message, "Idempotency-Key") {
			t.Errorf("key %q: %d %+v", bad, code, env.Error)
		}
	}
	if n := len(td.memories("Eliza", "roomId="+first.RoomID)); n != 2 {
		t.Errorf("refused requests stored something: %d memories", n)
	}

	// Three deliveries at once of a message that takes a second: one run,
	// one answer for all.
	var wg sync.WaitGroup
	results := make([]sayResult, 3)
	replays := make([]bool, 3)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var code int
			code, replays[i], results[i], _ = td.sayKeyed("Slow", "cy", "wait for me", "slow-1")
			if code != 200 {
				t.Errorf("delivery %d: %d", i, code)
			}
		}()
	}
	wg.Wait()
	n := 0
	for i, r := range results {
		if !replays[i] {
			n++
		}
		if len(r.Messages) != 1 || replyIDs(r) != replyIDs(results[0]) || r.Messages[0].Text != "slowly: wait for me" {
			t.Errorf("delivery %d answered %+v, the first %+v", i, r, results[0])
		}
	}
	if n != 1 {
		t.Errorf("%d deliveries were made, want 1 (the others wait for it)", n)
	}
	if n := len(td.memories("Slow", "roomId="+results[0].RoomID)); n != 2 {
		t.Errorf("concurrent retries stored %d memories, want 2", n)
	}

	// The WebSocket's clientMessageId is the same key.
	w := dialWS(t, td)
	w.next("hello")
	w.send(map[string]any{"type": "message", "agentId": "Eliza", "userName": "dee", "text": "over the socket", "clientMessageId": "ws-1"})
	ack, _ := w.next("ack")
	live, _ := w.next("reply")
	w.next("run_finished")
	w.send(map[string]any{"type": "message", "agentId": "Eliza", "userName": "dee", "text": "over the socket", "clientMessageId": "ws-1"})
	ack2, seen := w.next("ack")
	if ack2["replayed"] != true || ack2["messageId"] != ack["messageId"] {
		t.Fatalf("the retried frame's ack: %v (after %v), first %v", ack2, seen, ack)
	}
	re, seen := w.next("reply")
	if re["replayed"] != true || re["id"] != live["id"] || re["text"] != live["text"] || len(seen) != 0 {
		t.Fatalf("the retried frame's reply: %v (after %v), first %v", re, seen, live)
	}
	if fin, _ := w.next("run_finished"); fin["replayed"] != true || fin["replies"] != float64(1) {
		t.Errorf("run_finished = %v", fin)
	}
	code, replayed, viaHTTP, _ := td.sayKeyed("Eliza", "dee", "over the socket", "ws-1")
	if code != 200 || !replayed || viaHTTP.MessageID != ack["messageId"] || viaHTTP.Messages[0].ID != live["id"] {
		t.Errorf("the socket's key over HTTP: %d replayed=%v %+v", code, replayed, viaHTTP)
	}
	if n := len(td.memories("Eliza", "roomId="+viaHTTP.RoomID)); n != 2 {
		t.Errorf("the socket's room holds %d memories, want 2", n)
	}

	// A daemon that never saw the first delivery: the message id tells the
	// bootstrap plugin it is stored, and the replies come from the room.
	td.stop()
	td = startTestDaemon(t, daemonOpt{dataDir: dir, chars: chars, pluginDirs: plugins})
	code, _, after, env := td.sayKeyed("Eliza", "ann", "I feel tired today", "key-1")
	if code != 200 || after.MessageID != first.MessageID || replyIDs(after) != replyIDs(first) || after.Messages[0].Text != first.Messages[0].Text {
		t.Fatalf("a retry after a restart: %d %+v %+v, first %+v", code, after, env.Error, first)
	}
	if n := len(td.memories("Eliza", "roomId="+first.RoomID)); n != 2 {
		t.Errorf("after a restart and a retry the room holds %d memories, want 2", n)
	}
}

// TestIdemStoreBounds: finished deliveries are forgotten past the bound
// and the TTL, those in flight never; a failed one at once.
func TestIdemStoreBounds(t *testing.T) {
	t.Parallel()
	s := newIdemStore()
	k := func(i int) idemKey {
		return idemKey{agent: "a", user: "u", key: string(rune('a'+i%26)) + strings.Repeat("x", i/26)}
	}
	inflight, mine, err := s.begin(idemKey{agent: "a", user: "u", key: "in-flight"}, "fp")
	if !mine || err != nil {
		t.Fatal(mine, err)
	}
	for i := 0; i < maxIdempotent+50; i++ {
		c, mine, err := s.begin(k(i), "fp")
		if !mine || err != nil {
			t.Fatalf("key %d: %v %v", i, mine, err)
		}
		s.finish(k(i), c, &messageResult{MessageID: "m"})
	}
	s.begin(idemKey{agent: "a", user: "u", key: "trigger"}, "fp")
	if len(s.m) > maxIdempotent+1 {
		t.Errorf("%d remembered, bound %d", len(s.m), maxIdempotent)
	}
	if s.m[idemKey{agent: "a", user: "u", key: "in-flight"}] != inflight {
		t.Error("a delivery in flight was forgotten")
	}
	if _, ok := s.m[k(0)]; ok {
		t.Error("the oldest should go first")
	}
	c, _, _ := s.begin(idemKey{agent: "a", user: "u", key: "fails"}, "fp")
	s.finish(idemKey{agent: "a", user: "u", key: "fails"}, c, nil)
	if _, mine, _ := s.begin(idemKey{agent: "a", user: "u", key: "fails"}, "fp"); !mine {
		t.Error("a failed delivery should be made again")
	}
	// Past the TTL.
	s = newIdemStore()
	c, _, _ = s.begin(k(1), "fp")
	s.finish(k(1), c, &messageResult{MessageID: "m"})
	s.evict(time.Now().Add(idempotencyTTL / 2))
	if _, ok := s.m[k(1)]; !ok {
		t.Error("forgotten before the TTL")
	}
	s.evict(time.Now().Add(idempotencyTTL + time.Second))
	if _, ok := s.m[k(1)]; ok || len(s.order) != 0 {
		t.Error("remembered past the TTL")
	}
}
