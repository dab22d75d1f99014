package host

import (
	"testing"

	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

func TestEnsuredCache(t *testing.T) {
	t.Parallel()
	var c ensuredCache
	req := func(names ...string) *pb.EnsureConnectionRequest {
		return &pb.EnsureConnectionRequest{AgentId: "a", Entity: &pb.Entity{Id: "e", Names: names}, Room: &pb.Room{Id: "r"}}
	}
	key, fresh := c.check(req("ann"))
	if fresh {
		t.Fatal("nothing was stored yet")
	}
	c.remember(key)
	if _, fresh := c.check(req("ann")); !fresh {
		t.Error("the same connection a moment later need not be stored again")
	}
	if _, fresh := c.check(req("ann", "annie")); fresh {
		t.Error("a new name is a different request and must be stored")
	}
	c.forget()
	if _, fresh := c.check(req("ann")); fresh {
		t.Error("after forget every connection is stored again")
	}
}
