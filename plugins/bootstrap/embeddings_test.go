package bootstrap

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenthost/agenthost/internal/testwait"
	"github.com/agenthost/agenthost/plugins/sqlstore"
	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/plugintest"
	"github.com/agenthost/agenthost/sdk/storage"
	"github.com/google/uuid"
)

// embedRig runs bootstrap with the sql plugin and a model plugin whose
// embeddings of a text holding "hold" wait until release is closed.
type embedRig struct {
	rt      *plugintest.Runtime
	a       *sdk.Agent // the model plugin's client of the Runtime
	release chan struct{}

	mu    sync.Mutex
	calls map[string]time.Time // text → when its embedding was asked for
}

// vectorOf is the model plugin's embedding of text.
func vectorOf(text string) []float32 {
	v := make([]float32, 8)
	for i, c := range text {
		v[i%8] += float32(c%13) + 1
	}
	return v
}

func startEmbedRig(t *testing.T) *embedRig {
	t.Helper()
	r := &embedRig{rt: &plugintest.Runtime{}, release: make(chan struct{}), calls: map[string]time.Time{}}
	plugintest.Start(t, sqlstore.New(), plugintest.WithRuntime(r.rt), plugintest.WithDataDir(t.TempDir()))
	llm := sdk.Plugin{Name: "llm",
		Models: []sdk.Model{
			{Type: sdk.ModelTextLarge, Handler: func(context.Context, *sdk.Agent, *sdk.ModelRequest) (*sdk.ModelResponse, error) {
				return &sdk.ModelResponse{Text: xmlReply("noted")}, nil
			}},
			{Type: sdk.ModelTextEmbedding, Handler: func(ctx context.Context, _ *sdk.Agent, req *sdk.ModelRequest) (*sdk.ModelResponse, error) {
				if req.Probe {
					return &sdk.ModelResponse{Embedding: vectorOf("")}, nil
				}
				r.mu.Lock()
				r.calls[req.Text] = time.Now()
				r.mu.Unlock()
				if strings.Contains(req.Text, "hold") {
					select {
					case <-r.release:
					case <-ctx.Done():
						return nil, ctx.Err()
					}
				}
				return &sdk.ModelResponse{Embedding: vectorOf(req.Text)}, nil
			}},
		},
		Configure: func(_ context.Context, a *sdk.Agent) ([]string, error) {
			r.a = a
			return nil, nil
		}}
	lc := plugintest.Start(t, llm, plugintest.WithRuntime(r.rt))
	if _, err := lc.Configure(context.Background(), agentID, &sdk.Character{Name: "Eliza"}, nil); err != nil {
		t.Fatal(err)
	}
	return r
}

// startBootstrap starts and configures the plugin under test; its
// markers settle after settle idle.
func (r *embedRig) startBootstrap(t *testing.T, settle time.Duration) *plugintest.Client {
	t.Helper()
	tune := defaultEmbedTuning
	tune.settleIdle = settle
	return r.startTuned(t, tune)
}

func (r *embedRig) startTuned(t *testing.T, tune embedTuning) *plugintest.Client {
	t.Helper()
	b := newBootstrap(DatabaseStore())
	b.embeds = tune
	c := plugintest.Start(t, b.plugin(), plugintest.WithRuntime(r.rt))
	settings := map[string]string{SettingDisableReflexion: "true", SettingTaskTick: "50"}
	if _, err := c.Configure(context.Background(), agentID, &sdk.Character{Name: "Eliza", Bio: sdk.StringList{"A test agent."}}, settings); err != nil {
		t.Fatal(err)
	}
	return c
}

func (r *embedRig) askedAt(text string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.calls[text]
	return at, ok
}

// stored reads a message back, with its embedding.
func (r *embedRig) stored(t *testing.T, id string) sdk.Memory {
	t.Helper()
	ms, err := storage.For(r.a).GetMemoriesByIDs(context.Background(), []string{id}, "")
	if err != nil || len(ms) != 1 {
		t.Fatalf("read message %s: %v %+v", id, err, ms)
	}
	return ms[0]
}

func (r *embedRig) marker(t *testing.T) (Task, bool) {
	t.Helper()
	tasks, err := storage.For(r.a).GetTasks(context.Background(), storage.TaskQuery{Tags: []string{embeddingMarker}})
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) > 1 {
		t.Fatalf("%d embedding markers", len(tasks))
	}
	if len(tasks) == 0 {
		return Task{}, false
	}
	return tasks[0], true
}

func sameVector(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// dm connects Ann's DM room with the agent and returns a sender of
// messages there: each is handled on a goroutine, its error sent on done.
func (r *embedRig) dm(t *testing.T, c *plugintest.Client) func(text string) (m *sdk.Memory, done chan error) {
	t.Helper()
	ctx := context.Background()
	room, world, ann := uuid.NewString(), uuid.NewString(), uuid.NewString()
	conn := storage.Connection{Entity: sdk.Entity{ID: ann, Names: []string{"Ann"}},
		Room:  sdk.Room{ID: room, Name: "room", Source: "test", Type: sdk.ChannelDM, WorldID: world},
		World: sdk.World{ID: world, Name: "World"}}
	if err := storage.For(r.a).EnsureConnection(ctx, conn); err != nil {
		t.Fatal(err)
	}
	return func(text string) (*sdk.Memory, chan error) {
		m := &sdk.Memory{ID: uuid.NewString(), EntityID: ann, RoomID: room, WorldID: world, CreatedAt: time.Now().UnixMilli(),
			Content: sdk.Content{Text: text, Source: "test", ChannelType: sdk.ChannelDM}}
		done := make(chan error, 1)
		go func() {
			done <- c.HandleEvent(ctx, agentID, sdk.Event{Type: sdk.EventMessageReceived, RunID: uuid.NewString(), Source: "test", Message: m})
		}()
		return m, done
	}
}

// awaitDeferral sends messages, one at a time, until one has its
// embedding made after its reply: until the task service's first look
// has read the marker, a message is embedded before it is stored.
func (r *embedRig) awaitDeferral(t *testing.T, send func(string) (*sdk.Memory, chan error)) {
	t.Helper()
	for i := 0; i < 100; i++ {
		text := fmt.Sprintf("warm-up %d", i)
		_, done := send(text)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		back := time.Now()
		testwait.For(t, 5*time.Second, "the embedding of "+text, func() bool { _, ok := r.askedAt(text); return ok })
		if at, _ := r.askedAt(text); at.After(back) {
			return
		}
	}
	t.Fatal("no message had its embedding made after its reply")
}

// A message is stored and answered without waiting for its embedding,
// which is made after the reply and stored with the message; until the
// agent stops, a marker says stored messages may lack theirs, and the
// orderly stop settles it.
func TestMessageEmbeddedAfterItsReply(t *testing.T) {
	t.Parallel()
	r := startEmbedRig(t)
	c := r.startBootstrap(t, 300*time.Millisecond)
	ctx := context.Background()
	send := r.dm(t, c)
	r.awaitDeferral(t, send)

	m, done := send("please hold this thought")
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the reply waited for the message's embedding")
	}
	if res := r.rt.Responses(); len(res) == 0 || res[len(res)-1].Text != "noted" {
		t.Fatalf("responses: %+v", res)
	}
	testwait.For(t, 5*time.Second, "the held embedding asked for", func() bool { _, ok := r.askedAt(m.Content.Text); return ok })
	if got := r.stored(t, m.ID); len(got.Embedding) != 0 || got.Content.Text != m.Content.Text {
		t.Fatalf("stored before its embedding was made: %d values, text %q", len(got.Embedding), got.Content.Text)
	}
	mk, ok := r.marker(t)
	if !ok || mk.Metadata["settled"] != false {
		t.Fatalf("with an embedding waiting, the marker is %+v (found %v)", mk.Metadata, ok)
	}
	if through, _ := mk.Metadata["through"].(float64); int64(through) > m.CreatedAt {
		t.Errorf("the marker's through %d is after the waiting message's creation %d", int64(through), m.CreatedAt)
	}

	close(r.release)
	testwait.For(t, 10*time.Second, "the message stored with its embedding", func() bool {
		return sameVector(r.stored(t, m.ID).Embedding, vectorOf(m.Content.Text))
	})
	// Idle for a while, the agent settles its marker; the next message
	// unsettles it before it is stored.
	settled := func() bool {
		mk, ok := r.marker(t)
		return ok && mk.Metadata["settled"] == true
	}
	testwait.For(t, 10*time.Second, "the marker settled once the agent is idle", settled)
	m, done = send("one more thought")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if settled() {
		t.Fatal("a message was stored before its embedding with the marker settled")
	}
	testwait.For(t, 10*time.Second, "the last message stored with its embedding", func() bool {
		return sameVector(r.stored(t, m.ID).Embedding, vectorOf(m.Content.Text))
	})
	if err := c.Unconfigure(ctx, agentID); err != nil {
		t.Fatal(err)
	}
	if mk, ok := r.marker(t); !ok || mk.Metadata["settled"] != true {
		t.Fatalf("after the agent stopped with nothing waiting, the marker is %+v", mk.Metadata)
	}
}

// Messages that keep coming leave no quiet moment to make their
// embeddings in: once the oldest waiting has waited deferFor, messages are
// embedded in their run again. The ones waiting are made once a pause
// comes.
func TestSteadyMessagesEmbeddedInTheRun(t *testing.T) {
	t.Parallel()
	r := startEmbedRig(t)
	// No bound on the messages waiting: only their wait sends messages
	// back to their runs' embedding.
	tune := defaultEmbedTuning
	tune.settleIdle, tune.maxWaiting = time.Hour, 1<<30
	c := r.startTuned(t, tune)
	send := r.dm(t, c)
	r.awaitDeferral(t, send)

	// Two senders, back to back: a message is always in flight.
	type sent struct {
		text       string
		start, end time.Time
	}
	var (
		mu   sync.Mutex
		all  []sent
		wg   sync.WaitGroup
		t0   = time.Now()
		stop = t0.Add(deferFor + 2*time.Second)
	)
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(stop); i++ {
				text := fmt.Sprintf("steady %d-%d", w, i)
				start := time.Now()
				_, done := send(text)
				if err := <-done; err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				all = append(all, sent{text, start, time.Now()})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	late, inRun := 0, 0
	for _, m := range all {
		testwait.For(t, 20*time.Second, "the embedding of "+m.text, func() bool { _, ok := r.askedAt(m.text); return ok })
		if m.start.Sub(t0) < deferFor+500*time.Millisecond {
			continue
		}
		late++
		if at, _ := r.askedAt(m.text); at.Before(m.end) {
			inRun++
		}
	}
	if late == 0 || 2*inRun <= late {
		t.Fatalf("of %d messages sent more than %v into a steady flow, %d were embedded in their run", late, deferFor+500*time.Millisecond, inRun)
	}
}

// A process that died with embeddings waiting leaves its marker
// unsettled: the next one embeds the messages created since the marker's
// "through" that lack an embedding, and no other.
func TestEmbeddingsLeftByADeadProcessAreMade(t *testing.T) {
	t.Parallel()
	r := startEmbedRig(t)
	ctx := context.Background()
	st := storage.For(r.a)
	room := uuid.NewString()
	through := time.Now().Add(-time.Minute).UnixMilli()
	store := func(text, entity string, createdAt int64, emb []float32) string {
		id, _, err := st.CreateMemory(ctx, &sdk.Memory{RoomID: room, EntityID: entity, CreatedAt: createdAt,
			Content: sdk.Content{Text: text}, Embedding: emb}, sdk.TableMessages, false)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	ann := uuid.NewString()
	before := store("stored before the marker", ann, through-1000, nil)
	embedded := store("embedded already", ann, through+1000, vectorOf("something else"))
	own := store("the agent's own reply", agentID, through+2000, nil)
	var lost []string
	for i := 0; i < 3; i++ {
		lost = append(lost, store(fmt.Sprintf("lost %d", i), ann, through+3000+int64(i), nil))
	}
	if _, err := st.CreateTask(ctx, storage.Task{Name: embeddingMarker, Tags: []string{embeddingMarker},
		Metadata: map[string]any{"through": through, "settled": false}}); err != nil {
		t.Fatal(err)
	}

	r.startBootstrap(t, time.Hour)
	for i, id := range lost {
		text := fmt.Sprintf("lost %d", i)
		testwait.For(t, 10*time.Second, "the embedding of "+text, func() bool {
			return sameVector(r.stored(t, id).Embedding, vectorOf(text))
		})
	}
	if got := r.stored(t, embedded).Embedding; !sameVector(got, vectorOf("something else")) {
		t.Error("a message stored with its embedding was embedded again")
	}
	for _, id := range []string{before, own} {
		if got := r.stored(t, id); len(got.Embedding) != 0 {
			t.Errorf("%q was embedded", got.Content.Text)
		}
	}
	for _, text := range []string{"stored before the marker", "embedded already", "the agent's own reply"} {
		if _, ok := r.askedAt(text); ok {
			t.Errorf("the embedding of %q was asked for", text)
		}
	}
	if mk, ok := r.marker(t); !ok || mk.Metadata["settled"] != false {
		t.Errorf("the marker settled before the agent was idle: %+v", mk.Metadata)
	}
}

// A start that finds the marker unsettled and no message without its
// embedding settles it: the start after reads nothing.
func TestEmbeddingMarkerSettlesWhenNothingIsMissing(t *testing.T) {
	t.Parallel()
	r := startEmbedRig(t)
	if _, err := storage.For(r.a).CreateTask(context.Background(), storage.Task{Name: embeddingMarker, Tags: []string{embeddingMarker},
		Metadata: map[string]any{"through": time.Now().Add(-time.Minute).UnixMilli(), "settled": false}}); err != nil {
		t.Fatal(err)
	}
	r.startBootstrap(t, time.Hour)
	testwait.For(t, 10*time.Second, "the marker settled", func() bool {
		mk, ok := r.marker(t)
		return ok && mk.Metadata["settled"] == true
	})
}

// A recovery reads a bounded number of messages, newest first: a marker
// whose "through" was lost does not have every start read the agent's
// whole history. The newest are embedded; the marker moves on.
func TestEmbeddingRecoveryIsBounded(t *testing.T) {
	t.Parallel()
	r := startEmbedRig(t)
	ctx := context.Background()
	st := storage.For(r.a)
	room, ann := uuid.NewString(), uuid.NewString()
	base := time.Now().Add(-time.Minute).UnixMilli()
	var ids []string
	for i := 0; i < 7; i++ {
		id, _, err := st.CreateMemory(ctx, &sdk.Memory{RoomID: room, EntityID: ann, CreatedAt: base + int64(i),
			Content: sdk.Content{Text: fmt.Sprintf("lost %d", i)}}, sdk.TableMessages, false)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if _, err := st.CreateTask(ctx, storage.Task{Name: embeddingMarker, Tags: []string{embeddingMarker},
		Metadata: map[string]any{"through": "lost", "settled": false}}); err != nil {
		t.Fatal(err)
	}
	tune := defaultEmbedTuning
	tune.settleIdle, tune.recoverPage, tune.recoverMax = time.Hour, 2, 4
	r.startTuned(t, tune)
	for i := 3; i < 7; i++ {
		text := fmt.Sprintf("lost %d", i)
		testwait.For(t, 10*time.Second, "the embedding of "+text, func() bool {
			return sameVector(r.stored(t, ids[i]).Embedding, vectorOf(text))
		})
	}
	testwait.For(t, 10*time.Second, "the marker moved on", func() bool {
		mk, ok := r.marker(t)
		through, _ := mk.Metadata["through"].(float64)
		return ok && int64(through) > base
	})
	for i := 0; i < 3; i++ {
		if _, ok := r.askedAt(fmt.Sprintf("lost %d", i)); ok {
			t.Errorf("lost %d, beyond the bound, was embedded", i)
		}
	}
}
