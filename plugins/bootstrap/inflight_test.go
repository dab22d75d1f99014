package bootstrap

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/internal/boundedmap"
	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
	"github.com/google/uuid"
)

// The run's message, while it is being stored, shows among the room's
// recent messages as it will once stored: once, in its place by time,
// within the count; other rooms' reads are left alone.
func TestWithInFlight(t *testing.T) {
	msg := sdk.Memory{ID: "new", RoomID: "room", CreatedAt: 30, Embedding: []float32{1}, Content: sdk.Content{Text: "hi"}}
	ctx := context.WithValue(context.Background(), inFlightKey{}, msg)
	read := []sdk.Memory{{ID: "b", RoomID: "room", CreatedAt: 20}, {ID: "a", RoomID: "room", CreatedAt: 10}}
	ids := func(ms []sdk.Memory) string {
		var s []string
		for _, m := range ms {
			s = append(s, m.ID)
		}
		return strings.Join(s, ",")
	}
	if got := ids(withInFlight(ctx, "room", read, 10)); got != "new,b,a" {
		t.Errorf("in flight added: %s, want new,b,a", got)
	}
	if got := withInFlight(ctx, "room", read, 10); got[0].Embedding != nil {
		t.Error("the in-flight message came with its embedding")
	}
	if got := ids(withInFlight(ctx, "room", read, 2)); got != "new,b" {
		t.Errorf("within the count: %s, want new,b", got)
	}
	if got := ids(withInFlight(ctx, "room", append([]sdk.Memory{msg}, read...), 10)); got != "new,b,a" {
		t.Errorf("stored already: %s, want new,b,a", got)
	}
	if got := ids(withInFlight(ctx, "other", read, 10)); got != "b,a" {
		t.Errorf("another room: %s, want b,a", got)
	}
	if got := ids(withInFlight(context.Background(), "room", read, 10)); got != "b,a" {
		t.Errorf("nothing in flight: %s, want b,a", got)
	}
	older := msg
	older.CreatedAt = 15
	octx := context.WithValue(context.Background(), inFlightKey{}, older)
	if got := ids(withInFlight(octx, "room", read, 10)); got != "b,new,a" {
		t.Errorf("by time: %s, want b,new,a", got)
	}
	if ids(read) != "b,a" {
		t.Error("the read was changed in place")
	}
}

// A second delivery of a message waits while the first is stored: it is
// likely a duplicate once the message is stored, and handles the message
// itself when storing failed. A message stored earlier is likely a
// duplicate.
func TestClaimMessage(t *testing.T) {
	st := &agentState{handling: map[string]chan struct{}{}, handled: boundedmap.New[bool](maxHandled)}
	ctx := context.Background()
	release, dup := st.claim(ctx, "m1")
	if dup {
		t.Fatal("the first delivery is a duplicate")
	}
	second := make(chan bool)
	go func() {
		rel, dup := st.claim(ctx, "m1")
		if !dup {
			rel(true)
		}
		second <- dup
	}()
	select {
	case <-second:
		t.Fatal("the second delivery went on while the first was being stored")
	case <-time.After(50 * time.Millisecond):
	}
	release(false)
	if dup := <-second; dup {
		t.Error("storing the first delivery failed, and the second was dropped as a duplicate")
	}
	if _, dup := st.claim(ctx, "m1"); !dup {
		t.Error("a message the second delivery stored is not a duplicate")
	}
	cctx, cancel := context.WithCancel(ctx)
	release, _ = st.claim(ctx, "m2")
	cancel()
	if _, dup := st.claim(cctx, "m2"); dup {
		t.Error("a delivery that stopped waiting was called a duplicate; the store is the judge then")
	}
	release(true)
	if _, dup := st.claim(ctx, "m2"); !dup {
		t.Error("a stored message is not a duplicate")
	}
}

// A message the host deleted after it was stored (a node died before
// answering it, and the host hands it over again) is answered when it
// comes again: what this process remembers of its messages only makes it
// ask the store first.
func TestPipelineAnswersAMessageStoredAgainAfterItsDeletion(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil, func(req sdk.ModelRequest) string { return xmlReply("hello") })
	room, world, ann := uuid.NewString(), uuid.NewString(), uuid.NewString()
	f.connect(t, room, world, ann, "Ann", sdk.ChannelDM)
	msg := f.message(room, world, ann, "hi", sdk.ChannelDM)
	f.receive(t, msg)
	if err := storage.For(f.a).DeleteMemory(context.Background(), msg.ID); err != nil {
		t.Fatal(err)
	}
	again := *msg
	f.receive(t, &again)
	if n := len(f.rt.Responses()); n != 2 {
		t.Errorf("%d responses, want 2: the message deleted and handed over again was not answered", n)
	}
	f.receive(t, msg)
	if n := len(f.rt.Responses()); n != 2 {
		t.Errorf("%d responses after a third delivery, want still 2", n)
	}
}
