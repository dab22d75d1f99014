package discord

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/plugins/discord/discordtest"
	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
)

// longReply has three messages' worth of text with a code block across
// the first boundary.
func longReply() string {
	var b strings.Builder
	b.WriteString(strings.Repeat("Some explanation before the code. ", 40)) // 1360
	b.WriteString("\n```go\n")
	for i := 0; i < 60; i++ {
		b.WriteString("fmt.Println(\"line of code\")\n") // 28 each
	}
	b.WriteString("```\n")
	b.WriteString(strings.Repeat("And a closing paragraph. ", 60))
	return b.String()
}

func TestReplyIsADiscordReplySplitAtTheLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	m := h.srv.Send(h.general, h.alice, "explain", nil)
	in := h.received(1)
	h.waitFor("typing", func() bool { return h.srv.Typing(h.general) > 0 })
	text := longReply()
	ids, err := h.send(sdk.Target{ChannelID: in.ChannelID, ServerID: in.ServerID}, sdk.Content{Text: text, InReplyTo: h.memID(m.ID)})
	if err != nil {
		t.Fatal(err)
	}
	posted := h.srv.Posted(h.general)
	if len(posted) != len(ids) || len(posted) < 3 {
		t.Fatalf("want the reply in 3+ messages, got %d posted, ids %v", len(posted), ids)
	}
	var joined strings.Builder
	for i, p := range posted {
		if p.ID != ids[i] {
			t.Errorf("message %d: id %s, returned %s", i, p.ID, ids[i])
		}
		if n := len16(p.Content); n > MaxMessageLength {
			t.Errorf("message %d has %d characters", i, n)
		}
		if strings.Count(p.Content, "```")%2 != 0 {
			t.Errorf("message %d breaks a code block: %q", i, p.Content)
		}
		if !p.EnforceNonce || p.Nonce == "" {
			t.Errorf("message %d has no enforced nonce", i)
		}
		if !strings.Contains(string(p.AllowedMentions), `"users"`) || strings.Contains(string(p.AllowedMentions), "everyone") {
			t.Errorf("message %d allowed mentions: %s", i, p.AllowedMentions)
		}
		joined.WriteString(p.Content)
	}
	if posted[0].MessageReference == nil || posted[0].MessageReference.MessageID != m.ID {
		t.Errorf("the first message should be a Discord reply to %s: %+v", m.ID, posted[0].MessageReference)
	}
	for _, p := range posted[1:] {
		if p.MessageReference != nil {
			t.Error("only the first message is a reply")
		}
	}
	for _, word := range []string{"Some explanation", "fmt.Println", "closing paragraph"} {
		if !strings.Contains(joined.String(), word) {
			t.Errorf("%q lost", word)
		}
	}
	// The typing indicator stopped with the reply (its limit is three
	// minutes: it cannot have run out).
	h.typingStopped()
}

func TestTypingLastsUntilTheRunEnds(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	m := h.srv.Send(h.general, h.alice, "think hard", nil)
	h.received(1)
	h.waitFor("the typing indicator refreshed", func() bool { return h.srv.Typing(h.general) >= 3 })
	if err := h.c.HandleEvent(t.Context(), testAgent, sdk.Event{Type: sdk.EventRunEnded,
		Payload: map[string]any{"messageId": h.memID(m.ID), "status": "completed"}}); err != nil {
		t.Fatal(err)
	}
	// It stops with RUN_ENDED (its limit is three minutes).
	h.typingStopped()
}

func TestAttachmentsGoWithTheLastMessage(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	inData := filepath.Join(h.dataDir, "report.csv")
	if err := os.WriteFile(inData, []byte("a,b\n1,2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := h.send(sdk.Target{ChannelID: h.general}, sdk.Content{Text: strings.Repeat("word ", 500), Attachments: []sdk.Media{
		{URL: "data:text/plain;base64,aGVsbG8=", Title: "hello.txt"},
		{URL: h.srv.URL + "/files/abc/remote.txt"},
		{URL: inData},
		{URL: "/etc/passwd"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	posted := h.srv.Posted(h.general)
	if len(posted) != 2 {
		t.Fatalf("want 2 messages, got %d", len(posted))
	}
	if len(posted[0].Files) != 0 {
		t.Error("files go with the last message")
	}
	files := posted[1].Files
	if len(files) != 3 {
		t.Fatalf("want 3 files (a file outside the data directory is refused), got %d", len(files))
	}
	if files[0].Name != "hello.txt" || string(files[0].Data) != "hello" {
		t.Errorf("data URL file: %q %q", files[0].Name, files[0].Data)
	}
	if files[1].Name != "remote.txt" || string(files[1].Data) != "file abc/remote.txt" {
		t.Errorf("fetched file: %q %q", files[1].Name, files[1].Data)
	}
	if files[2].Name != "report.csv" || string(files[2].Data) != "a,b\n1,2\n" {
		t.Errorf("data-dir file: %q %q", files[2].Name, files[2].Data)
	}
}

func TestSendToAUserOpensADM(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	h.srv.Send(h.general, h.alice, "hello", nil)
	h.received(1)
	// The host stored alice when her message arrived; the test plays it.
	if err := storage.For(h.agent()).EnsureConnection(t.Context(), storage.Connection{
		Entity: sdk.Entity{ID: sdk.CreateUniqueUUID(testAgent, h.alice.ID), Names: []string{"alice"},
			Metadata: map[string]any{"discord": map[string]any{"id": h.alice.ID}}},
		Room: sdk.Room{ID: sdk.CreateUniqueUUID(testAgent, h.general), Source: Source, ChannelID: h.general},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.send(sdk.Target{EntityID: sdk.CreateUniqueUUID(testAgent, h.alice.ID)}, sdk.Content{Text: "a private word"}); err != nil {
		t.Fatal(err)
	}
	dm := h.srv.DMChannel(h.alice)
	if p := h.srv.Posted(dm.ID); len(p) != 1 || p[0].Content != "a private word" {
		t.Fatalf("DM: %+v", p)
	}
	// A room target works too.
	if _, err := h.send(sdk.Target{RoomID: sdk.CreateUniqueUUID(testAgent, h.general)}, sdk.Content{Text: "to the room"}); err != nil {
		t.Fatal(err)
	}
	if p := h.srv.Posted(h.general); len(p) != 1 || p[0].Content != "to the room" {
		t.Fatalf("room: %+v", p)
	}
}

func TestSendOutsideTheAllowListIsRefused(t *testing.T) {
	t.Parallel()
	var other discordtest.Channel
	h := newHarness(t, harnessOpts{before: func(h *harness) {
		other = h.srv.AddChannel(h.guild.ID, "other", "")
		h.extra[SettingChannelIDs] = other.ID
	}})
	if _, err := h.send(sdk.Target{ChannelID: h.general}, sdk.Content{Text: "hi"}); err == nil || !strings.Contains(err.Error(), "allow-list") {
		t.Fatalf("want an allow-list error, got %v", err)
	}
	if _, err := h.send(sdk.Target{ChannelID: other.ID}, sdk.Content{Text: "hi"}); err != nil {
		t.Fatal(err)
	}
}

func TestRefusedMessageIsAnErrorAndNotKept(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	_, err := h.send(sdk.Target{ChannelID: "424242"}, sdk.Content{Text: "into the void"})
	if err == nil || !strings.Contains(err.Error(), "Unknown Channel") {
		t.Fatalf("want Discord's refusal, got %v", err)
	}
	if left := outboxFiles(t, h); len(left) != 0 {
		t.Errorf("a refused reply stays in the outbox: %v", left)
	}
}

func outboxFiles(t *testing.T, h *harness) []string {
	t.Helper()
	entries, _ := os.ReadDir(filepath.Join(h.dataDir, "discord", testAgent, "outbox"))
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func TestRateLimitHeadersAreHonoured(t *testing.T) {
	t.Parallel()
	var route string
	h := newHarness(t, harnessOpts{before: func(h *harness) {
		route = "POST /channels/" + h.general + "/messages"
		h.srv.SetRateLimit(route, 2, 700*time.Millisecond)
	}})
	start := time.Now()
	for i := range 5 {
		if _, err := h.send(sdk.Target{ChannelID: h.general}, sdk.Content{Text: "message " + string(rune('A'+i))}); err != nil {
			t.Fatal(err)
		}
	}
	if v := h.srv.Violations(); len(v) != 0 {
		t.Errorf("requests ignored the announced limit: %v", v)
	}
	posted := h.srv.Posted(h.general)
	if len(posted) != 5 {
		t.Fatalf("want 5 messages, got %d", len(posted))
	}
	for i, p := range posted {
		if want := "message " + string(rune('A'+i)); p.Content != want {
			t.Errorf("message %d = %q, want %q (order)", i, p.Content, want)
		}
	}
	if took := time.Since(start); took < 1200*time.Millisecond {
		t.Errorf("5 messages at 2 per 700ms took only %s", took)
	}
}

func TestTooManyRequestsIsWaitedOut(t *testing.T) {
	t.Parallel()
	for _, global := range []bool{false, true} {
		name := "route"
		if global {
			name = "global"
		}
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			h.srv.Force429("POST /channels/"+h.general+"/messages", 1, 400*time.Millisecond, global)
			start := time.Now()
			if _, err := h.send(sdk.Target{ChannelID: h.general}, sdk.Content{Text: "patience"}); err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took < 400*time.Millisecond {
				t.Errorf("retried after %s, before retry_after", took)
			}
			if p := h.srv.Posted(h.general); len(p) != 1 {
				t.Errorf("want the message once, got %d", len(p))
			}
			var n429 int
			for _, r := range h.srv.Requests() {
				if r.Status == 429 {
					n429++
				}
			}
			if n429 != 1 {
				t.Errorf("want one 429, got %d", n429)
			}
			h.logHas("Discord rate limit")
		})
	}
}

func TestKeptRepliesAreDeliveredAfterACrash(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	var entry outboxEntry
	var first discordtest.Message
	h := newHarness(t, harnessOpts{dataDir: dataDir, before: func(h *harness) {
		// A process died in the middle of a two-part reply: the first
		// part reached Discord (with its nonce), the file still says
		// nothing was sent.
		first = h.srv.Send(h.general, h.alice, "tell me", nil)
		entry = outboxEntry{ID: newEntryID(), Nonce: randomHex(10), ChannelID: h.general, Parts: []string{"part one", "part two"},
			Created: time.Now(), InReplyTo: sdk.CreateUniqueUUID(testAgent, first.ID)}
		dir := filepath.Join(dataDir, "discord", testAgent, "outbox")
		if err := (dirStore{dir: dir}).put(entry.ID, entry); err != nil {
			t.Fatal(err)
		}
		postAsBot(t, h, h.general, map[string]any{"content": "part one", "nonce": entry.Nonce + "0", "enforce_nonce": true})
	}})
	// An entry leaves the outbox once every part is posted: after that
	// no part of it can be posted again.
	h.waitFor("the kept reply delivered", func() bool { return len(h.srv.Posted(h.general)) == 2 && len(outboxFiles(t, h)) == 0 })
	posted := h.srv.Posted(h.general)
	if len(posted) != 2 || posted[0].Content != "part one" || posted[1].Content != "part two" {
		t.Fatalf("want each part once, in order: %+v", posted)
	}
}

// postAsBot creates a message as the bot, straight over HTTP.
func postAsBot(t *testing.T, h *harness, channel string, body map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := newRequest("POST", h.srv.URL+"/api/v9/channels/"+channel+"/messages", b)
	req.Header.Set("Authorization", "Bot "+testToken)
	req.Header.Set("Content-Type", "application/json")
	res, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("post as bot: %s", res.Status)
	}
}
