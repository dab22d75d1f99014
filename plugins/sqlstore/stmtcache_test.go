package sqlstore

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// The statement cache forgets statements while other calls still use
// them: those calls must finish with the right rows, and the cache must
// stay within its bound, inside transactions and out.
func TestStatementCacheEvictsWhileInUse(t *testing.T) {
	s := migrated(t, openSQLiteTB(t))
	s.stmts.max = 3
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 40; i++ {
				// Each n is another query text: SELECT n, n-1, …, 1.
				n := 1 + (g+i)%7
				q := "SELECT 1"
				for k := 2; k <= n; k++ {
					q = fmt.Sprintf("SELECT %d UNION ALL ", k) + q
				}
				check := func(r runner) error {
					rows, err := r.query(ctx, q)
					if err != nil {
						return err
					}
					defer rows.Close()
					got := 0
					for rows.Next() {
						var v int
						if err := rows.Scan(&v); err != nil {
							return err
						}
						got++
					}
					if got != n {
						return fmt.Errorf("%q: %d rows, want %d", q, got, n)
					}
					var v int
					if err := r.queryRow(ctx, q).Scan(&v); err != nil || v != n {
						return fmt.Errorf("%q: first row %d (%v), want %d", q, v, err, n)
					}
					return rows.Err()
				}
				var err error
				if i%2 == 0 {
					err = check(s.read())
				} else {
					err = s.write(ctx, check)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s.stmts.mu.Lock()
	defer s.stmts.mu.Unlock()
	if len(s.stmts.m) > 3 || s.stmts.lru.Len() != len(s.stmts.m) {
		t.Errorf("the cache holds %d statements (list %d), more than its bound of 3", len(s.stmts.m), s.stmts.lru.Len())
	}
}
