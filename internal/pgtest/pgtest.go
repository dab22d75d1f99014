// Package pgtest gives tests a PostgreSQL of their own: a fresh schema in
// the test database, and a TCP proxy in front of the server that a test
// cuts and restores to make the database go away for real.
//
// The server is POSTGRES_TEST_URL, by default the one on 127.0.0.1:5432
// (user postgres, database test, trust auth). POSTGRES_TEST_URL=off skips
// the tests that need it, except under CI.
package pgtest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"io"
	"net"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	// The driver the schema is made with.
	_ "github.com/lib/pq"
)

// DefaultURL is the test server when POSTGRES_TEST_URL is not set.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// BaseURL is the test server's URL; it skips t when the tests are told
// to go without PostgreSQL.
func BaseURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv("POSTGRES_TEST_URL")
	if base == "" || base == "off" {
		if base == "off" && os.Getenv("CI") == "" {
			t.Skip("POSTGRES_TEST_URL=off")
		}
		base = DefaultURL
	}
	return base
}

// Schema makes a fresh schema in the test database, dropped when the test
// ends, and returns a URL whose search_path is that schema, on hostPort
// (a Proxy's address, say) when it is not empty.
func Schema(t testing.TB, hostPort string) string {
	t.Helper()
	base := BaseURL(t)
	admin, err := sql.Open("postgres", base)
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "agenthost_test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		admin.Close()
		t.Fatalf("PostgreSQL at %s: %v", base, err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		admin.Close()
	})
	u, _ := url.Parse(base)
	if hostPort != "" {
		u.Host = hostPort
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// ServerAddr is the host:port of the test server.
func ServerAddr(t testing.TB) string {
	t.Helper()
	u, err := url.Parse(BaseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// Proxy forwards a local port to a server. Stop cuts every connection and
// closes the port, as a server that goes away; Start opens the same port
// again.
type Proxy struct {
	t      testing.TB
	target string
	mu     sync.Mutex
	addr   string
	lis    net.Listener
	conns  map[net.Conn]bool
}

// NewProxy starts a proxy to target, stopped when the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	p := &Proxy{t: t, target: target, conns: map[net.Conn]bool{}}
	p.Start()
	t.Cleanup(p.Stop)
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}

// Start opens the port (the same one as before, after Stop).
func (p *Proxy) Start() {
	p.t.Helper()
	addr := p.Addr()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lis net.Listener
	var err error
	for i := 0; i < 50; i++ { // the port may linger for a moment
		if lis, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.lis, p.addr = lis, lis.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = true, true
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close(); c.Close() }()
			go func() { _, _ = io.Copy(c, up); up.Close(); c.Close() }()
		}
	}()
}

// Stop closes the port and cuts every connection through it.
func (p *Proxy) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lis != nil {
		p.lis.Close()
		p.lis = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
}
