package storage_test

import (
	"context"
	"errors"
	"testing"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
)

// A handler called directly in a unit test has an agent without a host: its
// storage calls say so instead of panicking.
func TestForAnAgentWithoutHost(t *testing.T) {
	for name, a := range map[string]*sdk.Agent{"nil agent": nil, "agent without runtime": {ID: "a1"}} {
		st := storage.For(a)
		if _, err := st.GetMemories(context.Background(), storage.MemoryQuery{RoomID: "r"}); !errors.Is(err, sdk.ErrNoRuntime) {
			t.Errorf("%s: GetMemories = %v, want sdk.ErrNoRuntime", name, err)
		}
		if err := st.AddLog(context.Background(), storage.LogEntry{Type: "x"}); !errors.Is(err, sdk.ErrNoRuntime) {
			t.Errorf("%s: AddLog = %v, want sdk.ErrNoRuntime", name, err)
		}
		if _, err := st.GetRoom(context.Background(), "r"); !errors.Is(err, sdk.ErrNoRuntime) {
			t.Errorf("%s: GetRoom = %v, want sdk.ErrNoRuntime", name, err)
		}
	}
}
