// Package boundedmap provides a map that keeps at most a fixed number of
// entries, forgetting the oldest first. The host and the SDK keep each
// message's composed state in one while the message is handled: entries are
// dropped when a run ends, and the bound keeps a run that never ends (a
// crash, a lost event) from growing the map for ever.
package boundedmap

import "sync"

// Map is safe for concurrent use. The zero value is not usable: call New.
type Map[V any] struct {
	mu    sync.Mutex
	max   int
	order []string
	m     map[string]V
}

// New returns a map that keeps at most max entries.
func New[V any](max int) *Map[V] {
	return &Map[V]{max: max, m: map[string]V{}}
}

// Get returns the value under key, or V's zero value.
func (c *Map[V]) Get(key string) V {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[key]
}

// Put sets key's value; a new key beyond the bound pushes the oldest out.
func (c *Map[V]) Put(key string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; !ok {
		c.order = append(c.order, key)
	}
	c.m[key] = v
	for len(c.m) > c.max && len(c.order) > 0 {
		delete(c.m, c.order[0])
		c.order = c.order[1:]
	}
	if len(c.order) > 2*c.max+16 {
		// Dropped keys leave their place in the order behind; keep the
		// live ones only.
		live := c.order[:0]
		for _, k := range c.order {
			if _, ok := c.m[k]; ok {
				live = append(live, k)
			}
		}
		c.order = live
	}
}

// Drop forgets key.
func (c *Map[V]) Drop(key string) {
	c.mu.Lock()
	delete(c.m, key)
	c.mu.Unlock()
}

// Len reports how many entries the map holds.
func (c *Map[V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
