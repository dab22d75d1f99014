package discord

import "sync"

// serialQueue runs tasks one at a time per key (a channel, a guild) and
// keys in parallel: events of one channel are handled in the order Discord
// sent them, and a slow guild does not hold up a channel.
type serialQueue struct {
	mu      sync.Mutex
	tasks   map[string][]func()
	running map[string]bool
	closed  bool
	wg      sync.WaitGroup
}

func newSerialQueue() *serialQueue {
	return &serialQueue{tasks: map[string][]func(){}, running: map[string]bool{}}
}

func (q *serialQueue) push(key string, f func()) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.tasks[key] = append(q.tasks[key], f)
	if !q.running[key] {
		q.running[key] = true
		q.wg.Add(1)
		go q.drain(key)
	}
}

func (q *serialQueue) drain(key string) {
	defer q.wg.Done()
	for {
		q.mu.Lock()
		ts := q.tasks[key]
		if len(ts) == 0 {
			delete(q.tasks, key)
			delete(q.running, key)
			q.mu.Unlock()
			return
		}
		f := ts[0]
		q.tasks[key] = ts[1:]
		q.mu.Unlock()
		f()
	}
}

// close refuses new tasks and waits for those queued.
func (q *serialQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.wg.Wait()
}
