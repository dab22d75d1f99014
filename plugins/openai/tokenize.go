package openai

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/agenthost/agenthost/sdk"
	"github.com/tiktoken-go/tokenizer/codec"
)

// The tokenizer is tiktoken's byte-pair encoding with the ranks compiled
// into the binary (github.com/tiktoken-go/tokenizer), so it works offline
// and gives the token ids OpenAI's models see. Each encoding's table is
// built on first use.
var (
	o200kBase  = sync.OnceValue(codec.NewO200kBase)
	cl100kBase = sync.OnceValue(codec.NewCl100kBase)
)

// encodingFor picks the encoding of a model name. exact is false for a
// model that is not OpenAI's (a Llama or Gemma behind Ollama, say): its own
// tokenizer is not available offline, so o200k_base stands in, and counts
// are then an approximation, usually within a few percent for English.
func encodingFor(model string) (enc *codec.Codec, exact bool) {
	m := strings.ToLower(strings.TrimSpace(model))
	m = strings.TrimPrefix(m, "openai/") // OpenRouter's names
	for _, p := range []string{"gpt-4o", "chatgpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "gpt-oss", "gpt-image", "gpt-realtime"} {
		if strings.HasPrefix(m, p) {
			return o200kBase(), true
		}
	}
	for _, p := range []string{"gpt-4", "gpt-3.5", "gpt-35", "text-embedding-"} {
		if strings.HasPrefix(m, p) {
			return cl100kBase(), true
		}
	}
	return o200kBase(), false
}

func countTokens(enc *codec.Codec, s string) int {
	if s == "" {
		return 0
	}
	n, err := enc.Count(s)
	if err != nil {
		return len(strings.Fields(s))
	}
	return n
}

// Tokenizer requests, as elizaOS makes them: ENCODE takes the text in
// Prompt (or Text, or params "prompt"/"text") and answers a JSON array of
// token ids; DECODE takes params "tokens" (an array of ids) and answers
// Text. Params "modelType" (TEXT_SMALL or TEXT_LARGE, the default) picks
// whose model's encoding is used.
const (
	paramTokens    = "tokens"
	paramModelType = "modelType"
)

func (p *provider) tokenizerModel(a *sdk.Agent, req *sdk.ModelRequest) (string, error) {
	c, err := p.clientFor(a)
	if err != nil {
		return "", err
	}
	mt := paramString(req.Params, paramModelType)
	if mt == "" {
		mt = sdk.ModelTextLarge
	}
	return c.modelFor(mt), nil
}

// handleEncode serves TEXT_TOKENIZER_ENCODE. It runs locally: no API call,
// no MODEL_USED event.
func (p *provider) handleEncode(ctx context.Context, a *sdk.Agent, req *sdk.ModelRequest) (*sdk.ModelResponse, error) {
	if req == nil {
		return nil, errNoRequest
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	model, err := p.tokenizerModel(a, req)
	if err != nil {
		return nil, err
	}
	text := req.Prompt
	for _, alt := range []string{req.Text, paramString(req.Params, "prompt"), paramString(req.Params, "text")} {
		if text == "" {
			text = alt
		}
	}
	enc, exact := encodingFor(model)
	ids, _, err := enc.Encode(text)
	if err != nil {
		return nil, fmt.Errorf("openai tokenizer %s: %w: %w", enc.GetName(), err, sdk.ErrInvalid)
	}
	if ids == nil {
		ids = []uint{}
	}
	out, _ := json.Marshal(ids)
	a.Logger(ctx).Debug("tokenized", "model", model, "encoding", enc.GetName(), "exact", exact, "tokens", len(ids))
	return &sdk.ModelResponse{JSON: out, Model: model, Usage: sdk.Usage{PromptTokens: len(ids), TotalTokens: len(ids)}}, nil
}

// handleDecode serves TEXT_TOKENIZER_DECODE, locally.
func (p *provider) handleDecode(ctx context.Context, a *sdk.Agent, req *sdk.ModelRequest) (*sdk.ModelResponse, error) {
	if req == nil {
		return nil, errNoRequest
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	model, err := p.tokenizerModel(a, req)
	if err != nil {
		return nil, err
	}
	ids, err := tokenIDs(req.Params[paramTokens])
	if err != nil {
		return nil, fmt.Errorf("openai tokenizer: %w: %w", err, sdk.ErrInvalid)
	}
	enc, _ := encodingFor(model)
	text, err := enc.Decode(ids)
	if err != nil {
		return nil, fmt.Errorf("openai tokenizer %s: %w: %w", enc.GetName(), err, sdk.ErrInvalid)
	}
	return &sdk.ModelResponse{Text: text, Model: model, Usage: sdk.Usage{PromptTokens: len(ids), TotalTokens: len(ids)}}, nil
}

// tokenIDs reads params "tokens": a JSON array of whole, non-negative
// numbers.
func tokenIDs(v any) ([]uint, error) {
	list, ok := v.([]any)
	if !ok {
		if v == nil {
			return nil, fmt.Errorf("param %q is missing", paramTokens)
		}
		return nil, fmt.Errorf("param %q must be an array of token ids, not %T", paramTokens, v)
	}
	ids := make([]uint, len(list))
	for i, x := range list {
		f, ok := x.(float64)
		if !ok || f < 0 || f != math.Trunc(f) || f > math.MaxUint32 {
			return nil, fmt.Errorf("param %q[%d] = %v is not a token id", paramTokens, i, x)
		}
		ids[i] = uint(f)
	}
	return ids, nil
}
