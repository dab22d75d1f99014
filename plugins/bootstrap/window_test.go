package bootstrap

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/internal/testwait"
	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/plugintest"
	"github.com/agenthost/agenthost/sdk/storage"
	"github.com/google/uuid"
)

// conversationOf is the "# Conversation Messages" part of a prompt.
func conversationOf(prompt string) string {
	const head = "# Conversation Messages\n"
	i := strings.Index(prompt, head)
	if i < 0 {
		return ""
	}
	rest := prompt[i+len(head):]
	if j := strings.Index(rest, "\n\n"); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// TestConversationKeptBetweenMessages sends messages to one room one
// right after another, so that each reads the room from the window the
// one before left (window.go), and checks that every prompt shows the
// conversation the database holds: the messages and the replies in order,
// a message another plugin's action wrote during a run, no message
// deleted, nothing of a cleared channel, and within lookupTTL a message
// another plugin stored on its own.
func TestConversationKeptBetweenMessages(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var prompts []string
	f := newFixture(t, nil, func(req sdk.ModelRequest) string {
		mu.Lock()
		prompts = append(prompts, req.Prompt)
		mu.Unlock()
		_, said, _ := strings.Cut(req.Prompt, "# Received Message\nAnn: ")
		said, _, _ = strings.Cut(said, "\n")
		if said == "take a note" {
			return "<response><thought>t</thought><actions>NOTE</actions><providers></providers><text>noting</text></response>"
		}
		return xmlReply("re " + said)
	})
	// Another plugin of the agent, whose action writes to the room.
	note := sdk.Plugin{Name: "notes", Actions: []sdk.Action{{Name: "NOTE", Description: "Notes the message.",
		Handler: func(ctx context.Context, a *sdk.Agent, call *sdk.ActionCall) (sdk.ActionResult, error) {
			m := &sdk.Memory{ID: uuid.NewString(), EntityID: agentID, AgentID: agentID, RoomID: call.Message.RoomID,
				CreatedAt: time.Now().UnixMilli(), Content: sdk.Content{Text: "noted by the notes plugin"}}
			if _, _, err := storage.For(a).CreateMemory(ctx, m, sdk.TableMessages, false); err != nil {
				return sdk.ActionResult{}, err
			}
			return sdk.ActionResult{Success: true}, nil
		}}}}
	nc := plugintest.Start(t, note, plugintest.WithRuntime(f.rt))
	if _, err := nc.Configure(context.Background(), agentID, &sdk.Character{Name: "Eliza"}, nil); err != nil {
		t.Fatal(err)
	}
	room, world, ann, bob := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	f.connect(t, room, world, ann, "Ann", sdk.ChannelDM)
	f.connect(t, room, world, bob, "Bob", sdk.ChannelDM)
	sent := map[string]string{}
	say := func(text string) string {
		t.Helper()
		m := f.message(room, world, ann, text, sdk.ChannelDM)
		sent[text] = m.ID
		f.receive(t, m)
		mu.Lock()
		defer mu.Unlock()
		return conversationOf(prompts[len(prompts)-1])
	}
	want := func(got string, lines ...string) {
		t.Helper()
		if w := strings.Join(lines, "\n"); got != w {
			t.Errorf("the conversation shown:\n%s\nwant:\n%s", got, w)
		}
	}

	say("one")
	say("two")
	want(say("three"), "Ann: one", "Eliza: re one", "Ann: two", "Eliza: re two", "Ann: three")

	// An action of another plugin writes to the room during the run: the
	// next message, at once, shows it.
	say("take a note")
	want(say("four"), "Ann: one", "Eliza: re one", "Ann: two", "Eliza: re two", "Ann: three", "Eliza: re three",
		"Ann: take a note", "Eliza: noted by the notes plugin", "Ann: four")

	// A message deleted on its platform is gone from the next prompt.
	if err := f.c.HandleEvent(context.Background(), agentID, sdk.Event{Type: sdk.EventMessageDeleted, Source: "test",
		Message: &sdk.Memory{ID: sent["two"], RoomID: room}}); err != nil {
		t.Fatal(err)
	}
	want(say("five"), "Ann: one", "Eliza: re one", "Eliza: re two", "Ann: three", "Eliza: re three",
		"Ann: take a note", "Eliza: noted by the notes plugin", "Ann: four", "Eliza: re four", "Ann: five")

	// A message another plugin stored on its own shows within lookupTTL.
	aside := &sdk.Memory{ID: uuid.NewString(), EntityID: bob, RoomID: room, WorldID: world, CreatedAt: time.Now().UnixMilli(),
		Content: sdk.Content{Text: "an aside", Source: "test"}}
	if _, _, err := storage.For(f.a).CreateMemory(context.Background(), aside, sdk.TableMessages, false); err != nil {
		t.Fatal(err)
	}
	time.Sleep(lookupTTL)
	if got := say("six"); !strings.HasSuffix(got, "Ann: five\nEliza: re five\nBob: an aside\nAnn: six") {
		t.Errorf("another plugin's message does not show %s after it was stored:\n%s", lookupTTL, got)
	}

	// A cleared channel leaves nothing of what was said before.
	if err := f.c.HandleEvent(context.Background(), agentID, sdk.Event{Type: EventChannelCleared, Source: "test",
		Payload: map[string]any{"roomId": room}}); err != nil {
		t.Fatal(err)
	}
	want(say("seven"), "Ann: seven")
	want(say("eight"), "Ann: seven", "Eliza: re seven", "Ann: eight")
}

// TestWindowsGoWhenStale: a room's window is dropped once it is stale, so
// that an agent that went quiet keeps none of its rooms' messages.
func TestWindowsGoWhenStale(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, func(req sdk.ModelRequest) string { return xmlReply("hi") })
	world, ann := uuid.NewString(), uuid.NewString()
	for range 3 {
		room := uuid.NewString()
		f.connect(t, room, world, ann, "Ann", sdk.ChannelDM)
		f.receive(t, f.message(room, world, ann, "hello", sdk.ChannelDM))
	}
	windows := func() (n, kept int) {
		for _, st := range f.b.agents.All() {
			st.windows.mu.Lock()
			for _, w := range st.windows.m {
				n++
				kept += len(w.msgs)
			}
			st.windows.mu.Unlock()
		}
		return n, kept
	}
	if n, kept := windows(); n != 3 || kept == 0 {
		t.Fatalf("after a message in each of 3 rooms: %d windows holding %d messages, want 3 holding some", n, kept)
	}
	testwait.For(t, lookupTTL+5*time.Second, "the stale windows to go", func() bool {
		n, kept := windows()
		return n == 0 && kept == 0
	})
}

// TestWindowUnderConcurrentMessages sends messages to one room from eight
// senders at once, then one more: the conversation its prompt shows holds
// the room's latest messages as the database lists them, each once, in
// whatever order messages stored in the same millisecond take.
func TestWindowUnderConcurrentMessages(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var last string
	f := newFixture(t, nil, func(req sdk.ModelRequest) string {
		_, said, _ := strings.Cut(req.Prompt, "# Received Message\nAnn: ")
		said, _, _ = strings.Cut(said, "\n")
		mu.Lock()
		last = req.Prompt
		mu.Unlock()
		return xmlReply("re " + said)
	})
	room, world, ann := uuid.NewString(), uuid.NewString(), uuid.NewString()
	f.connect(t, room, world, ann, "Ann", sdk.ChannelDM)
	var wg sync.WaitGroup
	for s := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 6 {
				f.receive(t, f.message(room, world, ann, fmt.Sprintf("sender %d says %d", s, i), sdk.ChannelDM))
			}
		}()
	}
	wg.Wait()
	f.receive(t, f.message(room, world, ann, "and that is all", sdk.ChannelDM))
	mu.Lock()
	got := strings.Split(conversationOf(last), "\n")
	mu.Unlock()
	// The last message's reply, stored after its prompt, is left out.
	ms, err := storage.For(f.a).GetMemories(context.Background(), storage.MemoryQuery{Table: sdk.TableMessages, RoomID: room,
		Count: len(got) + 1})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	for _, m := range ms {
		who := "Ann"
		if m.EntityID == agentID {
			who = "Eliza"
		}
		if l := who + ": " + m.Content.Text; l != "Eliza: re and that is all" {
			want[l]++
		}
	}
	seen := map[string]int{}
	for _, l := range got {
		seen[l]++
		if seen[l] > 1 {
			t.Errorf("the conversation shows %q twice", l)
		}
	}
	for l, n := range want {
		if seen[l] != n {
			pos := -1
			for i, m := range ms {
				if strings.HasSuffix(l, ": "+m.Content.Text) {
					pos = i
				}
			}
			t.Errorf("the database's %q (its %d of %d, created %d) is shown %d times, want %d", l, pos, len(ms), ms[max(pos, 0)].CreatedAt, seen[l], n)
		}
	}
	for l := range seen {
		if want[l] == 0 {
			t.Errorf("the conversation shows %q, which is not among the database's latest", l)
		}
	}
	if t.Failed() {
		t.Logf("conversation shown:\n%s", strings.Join(got, "\n"))
	}
}
