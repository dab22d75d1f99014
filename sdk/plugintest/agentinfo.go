package plugintest

import (
	"context"
	"slices"

	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

// DescribeAgent answers with the manifests of the plugins started with this
// Runtime, in the order they were started: to a plugin under test they are
// the agent's plugins.
func (r *Runtime) DescribeAgent(_ context.Context, req *pb.DescribeAgentRequest) (*pb.DescribeAgentResponse, error) {
	out := &pb.DescribeAgentResponse{AgentId: req.GetAgentId()}
	for _, b := range r.bound() {
		out.Plugins = append(out.Plugins, b.m)
	}
	return out, nil
}

// ValidateActions asks each plugin started with this Runtime which of its
// actions may be offered, as the host does; no names means all of them.
func (r *Runtime) ValidateActions(ctx context.Context, req *pb.ValidateActionsRequest) (*pb.ValidateActionsResponse, error) {
	out := &pb.ValidateActionsResponse{}
	seen := map[string]bool{}
	for _, b := range r.bound() {
		var names []string
		for _, a := range b.m.GetActions() {
			if seen[a.GetName()] || (len(req.GetNames()) > 0 && !slices.Contains(req.GetNames(), a.GetName())) {
				continue
			}
			seen[a.GetName()] = true
			names = append(names, a.GetName())
		}
		if len(names) == 0 {
			continue
		}
		res, err := b.pc.ValidateActions(ctx, &pb.ValidateActionsRequest{AgentId: req.GetAgentId(), Names: names,
			Message: req.GetMessage(), State: req.GetState()})
		if err != nil {
			b.logf("plugintest: ValidateActions of %s failed: %v", b.m.GetName(), err)
			continue
		}
		out.Valid = append(out.Valid, res.GetValid()...)
	}
	return out, nil
}

// DeleteCache removes a cached value.
func (r *Runtime) DeleteCache(_ context.Context, req *pb.GetCacheRequest) (*pb.SetCacheResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.initMaps()
	delete(r.cache, [2]string{req.GetAgentId(), req.GetKey()})
	return &pb.SetCacheResponse{}, nil
}
