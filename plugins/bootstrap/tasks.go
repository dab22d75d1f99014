package bootstrap

import (
	"context"
	"fmt"
	"sync"
	"time"

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
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	running map[string]bool
}

func startTaskService(b *bootstrap, a *sdk.Agent) *taskService {
	ctx, cancel := context.WithCancel(context.Background())
	t := &taskService{b: b, a: a, cancel: cancel, done: make(chan struct{}), running: map[string]bool{}}
	tick := time.Duration(settingInt(a, SettingTaskTick, 1000)) * time.Millisecond
	go t.loop(ctx, tick)
	return t
}

func (t *taskService) stop() {
	t.cancel()
	<-t.done
}

func (t *taskService) loop(ctx context.Context, tick time.Duration) {
	defer close(t.done)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			t.tick(ctx)
		}
	}
}

// tick runs the due tasks. Until the host has the agent running, the
// store answers with errors and the tick does nothing.
func (t *taskService) tick(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	tasks, err := t.b.store.Tasks(cctx, t.a, TaskQuery{Tags: []string{"queue"}})
	cancel()
	if err != nil {
		return
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
	ctx, cancel := context.WithTimeout(ctx, sdk.DefaultRunTimeout)
	defer cancel()
	if err := t.b.executeTask(ctx, t.a, &task, nil, nil, ""); err != nil {
		t.b.log.Warn("task failed", "agent", t.a.ID, "task", task.Name, "id", task.ID, "error", err)
	}
	if once {
		if err := t.b.store.DeleteTask(ctx, t.a, task.ID); err != nil {
			t.b.log.Warn("deleting a finished task failed", "task", task.ID, "error", err)
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
