package sqlstore

import (
	"container/list"
	"context"
	"database/sql"
	"sync"
)

// stmtCache keeps the store's queries prepared. database/sql prepares a
// statement on every call unless a *sql.Stmt is kept, and on SQLite the
// parse and plan took a tenth of the database plugin's time. A kept
// statement is prepared once per connection (database/sql does that part)
// and reused, inside transactions too (Tx.StmtContext).
//
// Queries with IN lists have as many texts as list lengths, so the cache
// is bounded and forgets the least recently used; a statement being used
// is closed only once its last user is done with it.
type stmtCache struct {
	db  *sql.DB
	max int

	mu  sync.Mutex
	m   map[string]*cachedStmt
	lru list.List // of *cachedStmt, most recently used first
}

type cachedStmt struct {
	query   string
	st      *sql.Stmt
	users   int
	evicted bool
	elem    *list.Element
}

// maxCachedStmts bounds the statements kept; the store's steady state uses
// a few dozen.
const maxCachedStmts = 128

func newStmtCache(db *sql.DB, max int) *stmtCache {
	return &stmtCache{db: db, max: max, m: map[string]*cachedStmt{}}
}

// get returns the prepared statement of query and the function to call
// once the statement's call has returned (rows a query returned keep the
// statement open by themselves).
func (c *stmtCache) get(ctx context.Context, query string) (*sql.Stmt, func(), error) {
	c.mu.Lock()
	e := c.m[query]
	if e != nil {
		e.users++
		c.lru.MoveToFront(e.elem)
		c.mu.Unlock()
		return e.st, func() { c.release(e) }, nil
	}
	c.mu.Unlock()
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, nil, err
	}
	c.mu.Lock()
	if e := c.m[query]; e != nil {
		// Prepared meanwhile by another call: use that one.
		e.users++
		c.lru.MoveToFront(e.elem)
		c.mu.Unlock()
		_ = st.Close()
		return e.st, func() { c.release(e) }, nil
	}
	e = &cachedStmt{query: query, st: st, users: 1}
	e.elem = c.lru.PushFront(e)
	c.m[query] = e
	var closeNow []*sql.Stmt
	for c.lru.Len() > c.max {
		old := c.lru.Remove(c.lru.Back()).(*cachedStmt)
		delete(c.m, old.query)
		old.evicted = true
		if old.users == 0 {
			closeNow = append(closeNow, old.st)
		}
	}
	c.mu.Unlock()
	for _, st := range closeNow {
		_ = st.Close()
	}
	return st, func() { c.release(e) }, nil
}

func (c *stmtCache) release(e *cachedStmt) {
	c.mu.Lock()
	e.users--
	closeNow := e.evicted && e.users == 0
	c.mu.Unlock()
	if closeNow {
		_ = e.st.Close()
	}
}

// close closes every kept statement.
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, e := range c.m {
		_ = e.st.Close()
		delete(c.m, q)
	}
	c.lru.Init()
}
