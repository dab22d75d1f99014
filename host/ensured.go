package host

import (
	"crypto/sha256"
	"sync"
	"time"

	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"google.golang.org/protobuf/proto"
)

// ensuredCache remembers the connections (sender, room, world) stored in
// the last few seconds. A conversation sends the same one with every
// message, and storing it is idempotent, so an identical request seen a
// moment ago is skipped: one database round trip less per message. Any
// difference in names or metadata is a different request and is stored.
type ensuredCache struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]time.Time
}

// ensuredTTL is how long a stored connection is trusted.
const ensuredTTL = 10 * time.Second

func (c *ensuredCache) check(req *pb.EnsureConnectionRequest) ([sha256.Size]byte, bool) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		return [sha256.Size]byte{}, false
	}
	key := sha256.Sum256(b)
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.m[key]
	return key, ok && time.Since(at) < ensuredTTL
}

func (c *ensuredCache) remember(key [sha256.Size]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) > 4096 {
		c.m = map[[sha256.Size]byte]time.Time{}
	}
	c.m[key] = time.Now()
}

// forget drops everything, e.g. after rooms or entities were deleted.
func (c *ensuredCache) forget() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}
