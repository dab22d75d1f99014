package sqlstore

import (
	"context"
	"testing"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/storage"
	"github.com/google/uuid"
)

func TestGetMemoriesOmitEmbeddings(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		agent := newAgent(t, s)
		room, user := uuid.NewString(), uuid.NewString()
		m := message(room, user, "with a vector")
		m.Embedding = unit(8, 1, 0)
		mustCreate(t, s, agent, m, sdk.TableMessages, false)
		full, err := s.GetMemories(ctx, agent, storage.MemoryQuery{Table: sdk.TableMessages, RoomID: room})
		if err != nil || len(full) != 1 || len(full[0].Embedding) != 8 {
			t.Fatalf("without the flag the vector comes back: %v %+v", err, full)
		}
		lean, err := s.GetMemories(ctx, agent, storage.MemoryQuery{Table: sdk.TableMessages, RoomID: room, OmitEmbeddings: true})
		if err != nil || len(lean) != 1 {
			t.Fatalf("omit embeddings: %v %+v", err, lean)
		}
		if lean[0].Embedding != nil || lean[0].Content.Text != "with a vector" || lean[0].ID != full[0].ID {
			t.Errorf("want the same memory without its vector, got %+v", lean[0])
		}
	})
}

func TestAddLogsIsAllOrNothing(t *testing.T) {
	t.Parallel()
	eachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		agent := newAgent(t, s)
		ids, err := s.AddLogs(ctx, []storage.LogEntry{{AgentID: agent, Type: "run"}, {AgentID: agent, Type: "action"}})
		if err != nil || len(ids) != 2 {
			t.Fatalf("AddLogs: %v %v", ids, err)
		}
		_, err = s.AddLogs(ctx, []storage.LogEntry{{AgentID: agent, Type: "ok"}, {AgentID: agent, Type: "bad", RoomID: "not-a-uuid"}})
		wantErr(t, err, "log.roomId")
		logs, err := s.GetLogs(ctx, agent, storage.LogQuery{})
		if err != nil || len(logs) != 2 {
			t.Fatalf("a batch with a bad entry must store nothing: %d logs, %v", len(logs), err)
		}
	})
}
