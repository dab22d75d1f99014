package openai

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/agenthost/agenthost/sdk"
)

// maxEmbeddingTokens is the input limit of OpenAI's embedding models;
// longer texts are cut to it (and the cut logged) instead of refused.
const maxEmbeddingTokens = 8191

// probeText is embedded once to learn the size of a model whose size is
// neither configured nor known.
const probeText = "dimension probe"

// handleEmbedding serves TEXT_EMBEDDING. A probe returns a vector of the
// configured size, as elizaOS's does (0.1 first, zeros after), without a
// call; for a model of unknown size the size is measured once. A real
// embedding either comes back from the server with the expected size or
// the call fails: there is no made-up vector.
func (p *provider) handleEmbedding(ctx context.Context, a *sdk.Agent, req *sdk.ModelRequest) (*sdk.ModelResponse, error) {
	if req == nil {
		return nil, errNoRequest
	}
	c, err := p.clientFor(a)
	if err != nil {
		return nil, err
	}
	if req.Probe {
		dims := c.dimensions()
		if dims == 0 {
			if _, err := p.embed(ctx, a, c, req, probeText); err != nil {
				return nil, fmt.Errorf("openai embedding probe (%s): %w", c.cfg.embeddingModel, err)
			}
			dims = c.dimensions()
		}
		v := make([]float32, dims)
		v[0] = 0.1
		return &sdk.ModelResponse{Embedding: v, Model: c.cfg.embeddingModel}, nil
	}
	text := req.Text
	if text == "" {
		text = req.Prompt
	}
	if strings.TrimSpace(text) == "" {
		return nil, fmt.Errorf("openai embedding: the text is empty: %w", sdk.ErrInvalid)
	}
	res, err := p.embed(ctx, a, c, req, text)
	if err != nil {
		return nil, fmt.Errorf("openai embedding (%s): %w", c.cfg.embeddingModel, err)
	}
	return res, nil
}

// dimensions is the configured or measured vector size, or 0.
func (c *client) dimensions() int {
	if c.cfg.embeddingDims > 0 {
		return c.cfg.embeddingDims
	}
	c.dimsMu.Lock()
	defer c.dimsMu.Unlock()
	return c.measuredDims
}

// checkDimensions accepts a vector of the expected size, or learns the size
// when none is expected yet.
func (c *client) checkDimensions(n int) error {
	if c.cfg.embeddingDims > 0 {
		if n != c.cfg.embeddingDims {
			setting := SettingEmbeddingDimensions
			if c.cfg.preset == PresetOllama {
				setting = SettingOllamaEmbeddingDimensions
			}
			return permanent(fmt.Errorf("model %s returned %d-dimensional vectors but %d are expected: set %s=%d (and re-embed the stored memories) or choose a model of that size: %w",
				c.cfg.embeddingModel, n, c.cfg.embeddingDims, setting, n, sdk.ErrInvalid))
		}
		return nil
	}
	c.dimsMu.Lock()
	defer c.dimsMu.Unlock()
	if c.measuredDims == 0 {
		c.measuredDims = n
		return nil
	}
	if n != c.measuredDims {
		return permanent(fmt.Errorf("model %s returned %d-dimensional vectors after %d before: %w", c.cfg.embeddingModel, n, c.measuredDims, sdk.ErrInvalid))
	}
	return nil
}

func (p *provider) embed(ctx context.Context, a *sdk.Agent, c *client, req *sdk.ModelRequest, text string) (*sdk.ModelResponse, error) {
	model := c.cfg.embeddingModel
	if strings.HasPrefix(model, "text-embedding-") {
		enc, _ := encodingFor(model)
		if ids, _, err := enc.Encode(text); err == nil && len(ids) > maxEmbeddingTokens {
			cut, err := enc.Decode(ids[:maxEmbeddingTokens])
			if err == nil {
				a.Logger(ctx).Warn("embedding input cut to the model's limit", "model", model,
					"tokens", len(ids), "limit", maxEmbeddingTokens)
				text = cut
			}
		}
	}
	params := &embeddingRequest{Model: model, Input: text, EncodingFormat: "float"}
	if c.cfg.sendDimensions {
		params.Dimensions = c.cfg.embeddingDims
	}
	start := time.Now()
	rec := callRecord{modelType: sdk.ModelTextEmbedding, model: model}
	var vec []float32
	var err error
	rec.attempts, err = c.retry.do(ctx, a.Logger(ctx), sdk.ModelTextEmbedding+" "+model, func(int) error {
		res, err := c.embeddings.embed(ctx, params)
		if err != nil {
			return err
		}
		if len(res.Data) == 0 {
			return badResponse("the server answered with no embedding")
		}
		v, err := floats(res.Data[0].Embedding)
		if err != nil {
			return badResponse("the embedding is malformed: %v", err)
		}
		if len(v) == 0 {
			return badResponse("the server answered with no embedding")
		}
		for i, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return badResponse("the embedding has a non-finite component at %d", i)
			}
		}
		if err := c.checkDimensions(len(v)); err != nil {
			return err
		}
		vec = v
		if res.Model != "" {
			rec.model = res.Model
		}
		rec.usage = sdk.Usage{PromptTokens: res.Usage.PromptTokens, TotalTokens: res.Usage.TotalTokens}
		return nil
	})
	if err == nil && rec.usage.TotalTokens == 0 {
		n := estimateUsage(model, text, "").PromptTokens
		rec.usage, rec.estimated = sdk.Usage{PromptTokens: n, TotalTokens: n}, true
	}
	p.finish(ctx, a, c, req, rec, start, err)
	if err != nil {
		return nil, err
	}
	return &sdk.ModelResponse{Embedding: vec, Model: rec.model, Usage: rec.usage}, nil
}
