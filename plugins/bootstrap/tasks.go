package bootstrap

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/agenthost/agenthost/internal/contract"
	"github.com/agenthost/agenthost/sdk"
	"github.com/google/uuid"
)

// TaskWorker runs the tasks of one name inside the bootstrap process.
// Tasks whose name is no worker's run the agent's action of that name
// instead, through the host: that is how a plugin in another process
// provides a worker. The action finds the task in its state's values
// ("task", and "taskOptions" with the chosen "option" for a choice task).
type TaskWorker struct {
	Name     string
	Validate func(ctx context.Context, a *sdk.Agent, t *Task) bool
	Execute  func(ctx context.Context, a *sdk.Agent, t *Task, options map[string]any) error
}

// workers are the in-process task workers; none ship with bootstrap.
var (
	workersMu sync.RWMutex
	workers   = map[string]TaskWorker{}
)

// RegisterTaskWorker adds an in-process worker for the tasks of its name.
func RegisterTaskWorker(w TaskWorker) {
	workersMu.Lock()
	defer workersMu.Unlock()
	workers[w.Name] = w
}

func worker(name string) (TaskWorker, bool) {
	workersMu.RLock()
	defer workersMu.RUnlock()
	w, ok := workers[name]
	return w, ok
}

// taskService is elizaOS's TaskService for one agent: every tick it runs
// the due tasks tagged "queue". A task without "repeat" runs once and is
// deleted; a "repeat" task runs whenever metadata.updateInterval (ms) has
// passed since metadata.updatedAt, and at once on its first tick if it is
// tagged "immediate".
type taskService struct {
	b      *bootstrap
	a      *sdk.Agent
	ctx    context.Context
	cancel context.CancelFunc
	tick0  time.Duration // TASK_TICK_MS

	mu      sync.Mutex
	running map[string]bool
	// recovered: the evaluations an earlier process held were queued.
	recovered bool

	// Kept by the scheduler (schedule.go), under its lock.
	interval time.Duration
	next     time.Time
	index    int  // in the scheduler's heap; -1 when not in it
	ticking  bool // a look is under way
	poked    bool // looked for again a tick after the current look began
	lastLook time.Time
	looks    sync.WaitGroup
}

// idleTick is the longest an agent with no queued tasks goes between
// looks: with a thousand idle agents, a look every second each would be a
// thousand database reads a second for nothing.
const idleTick = 30 * time.Second

// firstLookSpread stretches the window of an agent's first look by this
// much for each agent the scheduler already holds.
const firstLookSpread = 2 * time.Millisecond

// startTaskService has the plugin's scheduler look for the agent's due
// tasks every tick while the agent has queued tasks, and ever less often
// (up to idleTick) while it has none, until poked. The first look comes at
// a random point of the first tick, stretched by firstLookSpread per agent
// already scheduled, so that many agents started together do not look all
// at once: a thousand first looks within one second were two thousand
// reads that crowded out the first messages.
func startTaskService(b *bootstrap, a *sdk.Agent, tick time.Duration) *taskService {
	ctx, cancel := context.WithCancel(context.Background())
	t := &taskService{b: b, a: a, ctx: ctx, cancel: cancel, tick0: tick, running: map[string]bool{}, interval: tick, index: -1}
	s := b.scheduler()
	window := tick + time.Duration(s.size())*firstLookSpread
	s.add(t, time.Now().Add(time.Duration(rand.Int64N(int64(window)+1))))
	return t
}

func (t *taskService) stop() {
	t.cancel()
	t.b.scheduler().remove(t)
	t.looks.Wait()
}

// poke makes the service look for due tasks now, and often again while it
// finds some.
func (t *taskService) poke() {
	if t == nil {
		return
	}
	t.b.scheduler().poke(t)
}

// tick runs the due tasks and reports whether the agent has queued tasks.
// Until the host has the agent running, the store answers with errors and
// the tick does nothing.
func (t *taskService) tick(ctx context.Context) bool {
	// The first look reads the evaluations an earlier process held along
	// with the queue, in one call: a thousand agents started together make
	// a thousand first looks.
	q := TaskQuery{Tags: []string{"queue"}}
	if !t.recovered {
		q = TaskQuery{}
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tasks, err := t.b.store.Tasks(cctx, t.a, q)
	if err != nil {
		// Not running yet, or the database is away: look again soon.
		return !t.recovered
	}
	if !t.recovered {
		var held, markers []Task
		tasks, held, markers = splitHeld(tasks)
		t.b.recoverEmbeddings(cctx, t.a, markers)
		t.b.recoverHeld(cctx, t.a, held)
		t.recovered = true
	}
	now := time.Now().UnixMilli()
	for i := range tasks {
		task := tasks[i]
		if !t.b.hasWorker(ctx, t.a, task.Name) {
			continue
		}
		if w, ok := worker(task.Name); ok && w.Validate != nil && !w.Validate(ctx, t.a, &task) {
			continue
		}
		if hasTag(&task, "repeat") {
			if task.Metadata == nil {
				task.Metadata = map[string]any{}
			}
			_, ranBefore := task.Metadata["lastRunAt"]
			last := task.UpdatedAt
			if v, ok := task.Metadata["updatedAt"].(float64); ok {
				last = int64(v)
			}
			interval, _ := task.Metadata["updateInterval"].(float64)
			due := now-last >= int64(interval) || (hasTag(&task, "immediate") && !ranBefore)
			if !due || !t.claim(task.ID) {
				continue
			}
			task.Metadata["updatedAt"] = now
			task.Metadata["lastRunAt"] = now
			if err := t.b.store.UpdateTask(ctx, t.a, task); err != nil {
				t.release(task.ID)
				continue
			}
			go t.run(ctx, task, false)
			continue
		}
		if t.claim(task.ID) {
			go t.run(ctx, task, true)
		}
	}
	return len(tasks) > 0
}

// splitHeld parts all of an agent's tasks into its queue (tagged "queue"),
// the evaluations held for it and its embedding marker (embeddings.go).
func splitHeld(all []Task) (queue, held, markers []Task) {
	for _, t := range all {
		switch {
		case isHeldEvaluation(&t):
			held = append(held, t)
		case isEmbeddingMarker(&t):
			markers = append(markers, t)
		case hasTag(&t, "queue"):
			queue = append(queue, t)
		}
	}
	return queue, held, markers
}

// claim marks a task as running, so a slow task is not started again by
// the next tick.
func (t *taskService) claim(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.running[id] {
		return false
	}
	t.running[id] = true
	return true
}

func (t *taskService) release(id string) {
	t.mu.Lock()
	delete(t.running, id)
	t.mu.Unlock()
}

func (t *taskService) run(ctx context.Context, task Task, once bool) {
	defer t.release(task.ID)
	ctx, cancel := context.WithTimeout(ctx, contract.DefaultRunTimeout)
	defer cancel()
	if err := t.b.executeTask(ctx, t.a, &task, nil, nil, ""); err != nil {
		t.a.Logger(ctx).Warn("task failed", "task", task.Name, "id", task.ID, "error", err)
	}
	if once {
		if err := t.b.store.DeleteTask(ctx, t.a, task.ID); err != nil {
			t.a.Logger(ctx).Warn("deleting a finished task failed", "task", task.ID, "error", err)
		}
	}
}

// hasWorker reports whether a task of this name can run: an in-process
// worker, or an action of the agent.
func (b *bootstrap) hasWorker(ctx context.Context, a *sdk.Agent, name string) bool {
	if _, ok := worker(name); ok {
		return true
	}
	for _, act := range b.info(ctx, a).Actions() {
		if act.Name == name {
			return true
		}
	}
	return false
}

// executeTask runs a task: its in-process worker, or the action of its
// name through the host. msg is the message that caused it (a choice), or
// nil for a scheduled run, whose message belongs to no room: a task that
// repeats every second must not fill a room's history with its results.
// The action finds the task, and its room, in the state's values.
func (b *bootstrap) executeTask(ctx context.Context, a *sdk.Agent, t *Task, options map[string]any, msg *sdk.Memory, runID string) error {
	if w, ok := worker(t.Name); ok {
		return w.Execute(ctx, a, t, options)
	}
	if runID == "" {
		runID = uuid.NewString()
	}
	if msg == nil {
		msg = &sdk.Memory{ID: uuid.NewString(), EntityID: a.ID, AgentID: a.ID, WorldID: t.WorldID,
			CreatedAt: time.Now().UnixMilli(), Content: sdk.Content{Text: firstNonEmpty(t.Description, t.Name), Source: "task"}}
	}
	values := map[string]any{"task": t, "taskOptions": options}
	st := &sdk.State{Values: values, Data: map[string]any{"task": t, "taskOptions": options}}
	resp := sdk.Memory{ID: uuid.NewString(), EntityID: a.ID, AgentID: a.ID, RoomID: msg.RoomID,
		Content: sdk.Content{Actions: []string{t.Name}, Thought: "run task " + t.Name}}
	outs, err := a.ProcessActions(ctx, msg, []sdk.Memory{resp}, st, runID)
	b.actionsRan(a, msg.RoomID)
	if err != nil {
		return err
	}
	for _, o := range outs {
		if !o.Result.Success {
			return fmt.Errorf("task %s: %s", t.Name, firstNonEmpty(o.Result.Error, "the action failed"))
		}
	}
	return nil
}
