package dbplugin

import (
	"context"
	"math"
	"net"
	"reflect"
	"testing"

	"github.com/agenthost/agenthost/sdk"

	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"github.com/agenthost/agenthost/sdk/storage"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
)

// lookupDB answers the calls added for the rest of elizaOS's adapter
// surface and keeps what it was asked.
type lookupDB struct {
	Adapter
	search   storage.EntitySearch
	cached   storage.CachedEmbeddingsQuery
	rooms    []sdk.Room
	added    []string
	attached int
}

var lookupComponents = map[string][]sdk.Component{
	"e1": {{ID: "c1", EntityID: "e1", Type: "contact", Data: map[string]any{"tg": "@a"}}, {ID: "c2", EntityID: "e1", Type: "account"}},
	"e2": nil,
}

func (d *lookupDB) GetEntities(_ context.Context, _ string, ids []string) ([]sdk.Entity, error) {
	out := make([]sdk.Entity, len(ids))
	for i, id := range ids {
		out[i] = sdk.Entity{ID: id, Names: []string{"name " + id}}
	}
	return out, nil
}

func (d *lookupDB) GetEntitiesForRoom(ctx context.Context, agentID, _ string) ([]sdk.Entity, error) {
	return d.GetEntities(ctx, agentID, []string{"e2", "e1"})
}

func (d *lookupDB) AttachComponents(_ context.Context, _ string, es []sdk.Entity) error {
	d.attached++
	for i := range es {
		es[i].Components = append([]sdk.Component{}, lookupComponents[es[i].ID]...)
	}
	return nil
}

func (d *lookupDB) SearchEntities(ctx context.Context, agentID string, q storage.EntitySearch) ([]sdk.Entity, error) {
	d.search = q
	es, _ := d.GetEntities(ctx, agentID, []string{"e1"})
	if q.WithComponents {
		_ = d.AttachComponents(ctx, agentID, es)
	}
	return es, nil
}

func (d *lookupDB) GetCachedEmbeddings(_ context.Context, _ string, q storage.CachedEmbeddingsQuery) ([]storage.CachedEmbedding, error) {
	d.cached = q
	return []storage.CachedEmbedding{{MemoryID: "m1", Embedding: []float32{1, 2}, LevenshteinScore: 0}, {MemoryID: "m2", Embedding: []float32{3}, LevenshteinScore: 2}}, nil
}

func (d *lookupDB) AddParticipants(_ context.Context, _, _ string, ids []string) (int64, error) {
	d.added = ids
	return int64(len(ids)), nil
}

func (d *lookupDB) UpsertRooms(_ context.Context, _ string, rooms []sdk.Room) error {
	d.rooms = rooms
	return nil
}

func (d *lookupDB) DeleteRoomsByWorld(context.Context, string, string) (int64, error) { return 3, nil }

// TestLookupsOverTheWire: the calls added for the rest of elizaOS's adapter
// surface go from an Agent to the Database service (as the host forwards
// them) and back over real gRPC, components attached to their own entities.
func TestLookupsOverTheWire(t *testing.T) {
	lis := bufconn.Listen(1 << 20)
	conn, err := grpc.NewClient("passthrough:///bufnet", grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
		return lis.DialContext(ctx)
	}), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	srv := grpc.NewServer()
	db := &lookupDB{}
	pb.RegisterDatabaseServer(srv, &server{db: db})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	a := conv.NewAgent("a", pb.NewDatabaseClient(conn))
	st := storage.For(a)
	ctx := context.Background()

	want := []sdk.Entity{
		{ID: "e1", Names: []string{"name e1"}, Components: lookupComponents["e1"]},
		{ID: "e2", Names: []string{"name e2"}, Components: []sdk.Component{}},
	}
	es, err := st.GetEntitiesWithComponents(ctx, "e1", "e2")
	if err != nil || !reflect.DeepEqual(es, want) {
		t.Fatalf("with components: %+v %v", es, err)
	}
	es, err = st.GetEntities(ctx, "e1")
	if err != nil || len(es) != 1 || es[0].Components != nil || db.attached != 1 {
		t.Fatalf("without: %+v %v (attached %d times)", es, err, db.attached)
	}
	es, err = st.GetEntitiesForRoomWithComponents(ctx, "r")
	if err != nil || !reflect.DeepEqual(es, []sdk.Entity{want[1], want[0]}) {
		t.Fatalf("room with components: %+v %v", es, err)
	}
	es, err = st.GetEntitiesForRoom(ctx, "r")
	if err != nil || len(es) != 2 || es[0].Components != nil || db.attached != 2 {
		t.Fatalf("room without: %+v %v", es, err)
	}

	q := storage.EntitySearch{NameContains: "ali", Names: []string{"Alice", "Bob"}, Count: 5, WithComponents: true}
	es, err = st.SearchEntities(ctx, q)
	if err != nil || !reflect.DeepEqual(db.search, q) || !reflect.DeepEqual(es, want[:1]) {
		t.Fatalf("search: %+v %v; the store was asked %+v", es, err, db.search)
	}
	q = storage.EntitySearch{Count: math.MaxInt32 + 10}
	if _, err := st.SearchEntities(ctx, q); err != nil || db.search.Count != math.MaxInt32 {
		t.Fatalf("a count past int32: asked for %d, %v", db.search.Count, err)
	}

	cq := storage.CachedEmbeddingsQuery{Text: "hello", Field: "thought", Table: "facts", Threshold: 3, Count: 7}
	cs, err := st.GetCachedEmbeddings(ctx, cq)
	wantCS := []storage.CachedEmbedding{{MemoryID: "m1", Embedding: []float32{1, 2}}, {MemoryID: "m2", Embedding: []float32{3}, LevenshteinScore: 2}}
	if err != nil || !reflect.DeepEqual(db.cached, cq) || !reflect.DeepEqual(cs, wantCS) {
		t.Fatalf("cached embeddings: %+v %v; the store was asked %+v", cs, err, db.cached)
	}
	// Invalid UTF-8 cannot cross gRPC: the Agent sends U+FFFD instead.
	if _, err := st.GetCachedEmbeddings(ctx, storage.CachedEmbeddingsQuery{Text: "a\xffb"}); err != nil || db.cached.Text != "a\uFFFDb" {
		t.Fatalf("invalid UTF-8: %q %v", db.cached.Text, err)
	}

	n, err := st.AddParticipants(ctx, "r", "e1", "e2")
	if err != nil || n != 2 || !reflect.DeepEqual(db.added, []string{"e1", "e2"}) {
		t.Fatalf("add participants: %d %v %v", n, err, db.added)
	}
	rooms := []sdk.Room{{ID: "r1", Name: "general", Type: sdk.ChannelGroup, WorldID: "w"}, {ID: "r2", Metadata: map[string]any{"k": "v"}}}
	if err := st.UpsertRooms(ctx, rooms...); err != nil || !reflect.DeepEqual(db.rooms, rooms) {
		t.Fatalf("upsert rooms: %+v %v", db.rooms, err)
	}
	if n, err := st.DeleteRoomsByWorld(ctx, "w"); err != nil || n != 3 {
		t.Fatalf("delete rooms by world: %d %v", n, err)
	}
}
