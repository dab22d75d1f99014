package host

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/agenthost/agenthost/internal/boundedmap"
	"github.com/agenthost/agenthost/internal/contract"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// mustJSON encodes v for a bytes field of the protocol (see contract.JSON).
func mustJSON(v any) []byte { return contract.JSON(v) }

// composeState runs the selected providers, batched into one call per
// plugin, and merges their results in position order.
func (a *AgentRuntime) composeState(ctx context.Context, req *pb.ComposeStateRequest) (*pb.State, error) {
	comp := a.registry().Compose(req)
	msgID := req.GetMessage().GetId()
	var cached *pb.State
	if !req.GetSkipCache() && msgID != "" {
		cached = a.states.Get(msgID)
	}
	results := map[string]*pb.ProviderResult{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range comp.ByPlugin.Order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			names := comp.ByPlugin.Names[p]
			res, err := a.getProviders(ctx, p, &pb.GetProvidersRequest{AgentId: a.ID, Names: names,
				Message: req.GetMessage(), State: cached, RunId: req.GetRunId()})
			if err != nil {
				// A failing provider contributes nothing; the message is
				// still answered, and its run's timeline says why.
				a.providerFailed(req, p, names, err.Error())
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, r := range res.GetResults() {
				switch {
				case r.GetError() != "":
					a.providerFailed(req, p, []string{r.GetName()}, r.GetError())
				case proto.Size(r) > maxResultSize:
					a.providerFailed(req, p, []string{r.GetName()}, fmt.Sprintf("its result is %s, over the limit of %s a provider; it was left out",
						byteText(proto.Size(r)), byteText(maxResultSize)))
				default:
					results[r.GetName()] = r
				}
			}
		}()
	}
	wg.Wait()
	st := comp.MergeState(cached, results, a.registry().ActionValues())
	if msgID != "" {
		a.states.Put(msgID, st)
	}
	return st, nil
}

// maxResultSize bounds what one provider, action or evaluator may hand
// back: a plugin answering with 60 MB of text would otherwise grow the
// host by gigabytes as the state is merged, stored and logged.
const maxResultSize = 1 << 20

// resultLimit is the largest answer to a call for n results: anything
// bigger is refused by gRPC before it is read into memory.
func resultLimit(n int) grpc.CallOption {
	return grpc.MaxCallRecvMsgSize(max(n, 1)*maxResultSize + 64<<10)
}

func byteText(n int) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// getProviders calls one plugin's providers within the provider deadline,
// which holds whatever time the run itself has left: a provider that never
// answers is given up at it, and the message goes on without it.
func (a *AgentRuntime) getProviders(ctx context.Context, p *PluginProcess, req *pb.GetProvidersRequest) (*pb.GetProvidersResponse, error) {
	timeout := a.d.cfg.ProviderTimeout
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := p.conn(ctx)
	if err != nil {
		return nil, err
	}
	res, err := c.plugin.GetProviders(ctx, req, resultLimit(len(req.GetNames())))
	switch status.Code(err) {
	case codes.OK:
		return res, nil
	case codes.DeadlineExceeded:
		return nil, fmt.Errorf("plugin %s did not answer within %s, the providers' deadline; the message went on without them", p.Name(), timeout)
	case codes.ResourceExhausted:
		return nil, fmt.Errorf("plugin %s answered with more than %s for %d provider(s), over the limit of %s a provider; they were left out",
			p.Name(), byteText(len(req.GetNames())*maxResultSize), len(req.GetNames()), byteText(maxResultSize))
	}
	return nil, p.callErr(c, "GetProviders", err)
}

// providerFailed logs a provider that contributed nothing, and writes it
// to the run's timeline.
func (a *AgentRuntime) providerFailed(req *pb.ComposeStateRequest, p *PluginProcess, names []string, why string) {
	a.log.Warn("provider failed", "plugin", p.Name(), "providers", strings.Join(names, ","), "runId", req.GetRunId(), "error", why)
	msg := req.GetMessage()
	a.d.logs.add(a, &pb.LogEntry{AgentId: a.ID, RoomId: msg.GetRoomId(), EntityId: msg.GetEntityId(), Type: "provider",
		CreatedAt: time.Now().UnixMilli(), BodyJson: mustJSON(map[string]any{
			"providers": names, "plugin": p.Name(), "runId": req.GetRunId(), "error": why, "messageId": msg.GetId(),
		})})
}

// stateCache keeps the last composed state per message, bounded: elizaOS's
// never evicts and grows with every message.
type stateCache struct {
	*boundedmap.Map[*pb.State]
}

func newStateCache(max int) *stateCache {
	return &stateCache{boundedmap.New[*pb.State](max)}
}

// merge sets keys of the data of a message's cached state (creating the
// entry if there is none), so providers composed later for the message see
// them.
func (c *stateCache) merge(id string, data map[string]any) {
	if id == "" {
		return
	}
	st := c.Get(id)
	d := map[string]any{}
	var values []byte
	text := ""
	if st != nil {
		_ = json.Unmarshal(st.GetDataJson(), &d)
		values, text = st.GetValuesJson(), st.GetText()
	}
	for k, v := range data {
		d[k] = v
	}
	c.Put(id, &pb.State{ValuesJson: values, DataJson: mustJSON(d), Text: text})
}
