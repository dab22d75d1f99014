package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/agenthost/agenthost/internal/contract"
	"github.com/agenthost/agenthost/sdk"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

// modelPlugin finds the plugin that serves the request's model type for
// this agent and stamps the request with the agent.
func (a *AgentRuntime) modelPlugin(ctx context.Context, req *pb.ModelRequest) (*PluginProcess, *pluginConn, error) {
	p, err := a.registry().Model(req.GetType(), req.GetProvider())
	if err != nil {
		return nil, nil, fmt.Errorf("agent %s: %w", a.Name, err)
	}
	c, err := p.conn(ctx)
	if err != nil {
		return nil, nil, err
	}
	req.AgentId = a.ID
	return p, c, nil
}

// useModel calls the best model of a type and records the call.
func (a *AgentRuntime) useModel(ctx context.Context, req *pb.ModelRequest) (*pb.ModelResponse, error) {
	p, c, err := a.modelPlugin(ctx, req)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	ctx, cancel := ensureDeadline(ctx, contract.DefaultRunTimeout)
	defer cancel()
	res, err := c.plugin.UseModel(ctx, req)
	took := time.Since(start)
	if err != nil {
		err = p.callErr(c, "UseModel "+req.GetType(), err)
		a.recordModel(req, nil, p.Name(), took, err)
		return nil, err
	}
	res.Provider = p.Name()
	a.recordModel(req, res, p.Name(), took, nil)
	return res, nil
}

// streamModel is useModel with the text passed to send as the model makes
// it; the last chunk carries the whole response.
func (a *AgentRuntime) streamModel(ctx context.Context, req *pb.ModelRequest, send func(*pb.ModelChunk) error) error {
	p, c, err := a.modelPlugin(ctx, req)
	if err != nil {
		return err
	}
	start := time.Now()
	ctx, cancel := ensureDeadline(ctx, contract.DefaultRunTimeout)
	defer cancel()
	stream, err := c.plugin.StreamModel(ctx, req)
	if err != nil {
		err = p.callErr(c, "StreamModel "+req.GetType(), err)
		a.recordModel(req, nil, p.Name(), time.Since(start), err)
		return err
	}
	for {
		chunk, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("plugin %s ended the %s stream without a final answer", p.Name(), req.GetType())
			} else {
				err = p.callErr(c, "StreamModel "+req.GetType(), err)
			}
			a.recordModel(req, nil, p.Name(), time.Since(start), err)
			return err
		}
		if f := chunk.GetFinal(); f != nil {
			f.Provider = p.Name()
			a.recordModel(req, f, p.Name(), time.Since(start), nil)
			return send(chunk)
		}
		if err := send(chunk); err != nil {
			return err
		}
	}
}

// recordModel writes the model call to the timeline without holding up the
// caller.
func (a *AgentRuntime) recordModel(req *pb.ModelRequest, res *pb.ModelResponse, provider string, took time.Duration, err error) {
	body := map[string]any{
		"modelType": req.GetType(), "provider": provider, "runId": req.GetRunId(),
		"durationMs": took.Milliseconds(),
	}
	if req.GetType() == sdk.ModelTextEmbedding {
		body["response"] = "[array]"
	} else {
		body["prompt"] = req.GetPrompt()
		if res != nil {
			body["response"] = res.GetText()
		}
	}
	if res != nil {
		body["model"] = res.GetModel()
		if u := res.GetUsage(); u != nil {
			body["tokens"] = map[string]any{"prompt": u.GetPromptTokens(), "completion": u.GetCompletionTokens(), "total": u.GetTotalTokens()}
		}
	}
	if err != nil {
		body["error"] = err.Error()
	}
	a.d.logs.add(a, &pb.LogEntry{AgentId: a.ID, Type: "useModel:" + req.GetType(), BodyJson: mustJSON(body), CreatedAt: time.Now().UnixMilli()})
	a.d.api.metrics.modelCall(provider, req.GetType(), res, err, took)
}

// Embed returns the vector of text from the agent's TEXT_EMBEDDING model
// (its size only, when probe is set). Unlike the model calls of a run, it
// is not recorded in the agent's timeline: `agenthost db reembed` makes one
// per stored memory.
func (a *AgentRuntime) Embed(ctx context.Context, text string, probe bool) ([]float32, error) {
	if a.registry() == nil {
		return nil, fmt.Errorf("agent %s is not started", a.Name)
	}
	p, err := a.registry().Model(sdk.ModelTextEmbedding, "")
	if err != nil {
		return nil, fmt.Errorf("agent %s: %w", a.Name, err)
	}
	c, err := p.conn(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := ensureDeadline(ctx, contract.DefaultCallTimeout)
	defer cancel()
	res, err := c.plugin.UseModel(ctx, &pb.ModelRequest{AgentId: a.ID, Type: sdk.ModelTextEmbedding, Text: text, Probe: probe})
	if err != nil {
		return nil, p.callErr(c, "UseModel "+sdk.ModelTextEmbedding, err)
	}
	return res.GetEmbedding(), nil
}
