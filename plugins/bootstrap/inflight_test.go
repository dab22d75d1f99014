package bootstrap

import (
	"context"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/sdk"
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
