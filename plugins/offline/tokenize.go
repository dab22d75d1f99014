package offline

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sync"

	"github.com/agenthost/agenthost/sdk"
	"github.com/tiktoken-go/tokenizer/codec"
)

// The tokenizer is tiktoken's o200k_base (GPT-4o's encoding) with its
// ranks compiled into the binary, so counts and cuts match what an OpenAI
// model would see, with no network. The table is built on first use.
var o200kBase = sync.OnceValue(codec.NewO200kBase)

// tokenizerModel names the encoding in responses.
const tokenizerModel = "o200k_base"

// handleEncode serves TEXT_TOKENIZER_ENCODE: the text in Prompt (or Text,
// or params "prompt") becomes a JSON array of token ids. a may be nil.
func handleEncode(ctx context.Context, a *sdk.Agent, req *sdk.ModelRequest) (*sdk.ModelResponse, error) {
	if req == nil {
		return nil, errNoRequest
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	text := req.Prompt
	if text == "" {
		text = req.Text
	}
	if s, ok := req.Params["prompt"].(string); ok && text == "" {
		text = s
	}
	ids, _, err := o200kBase().Encode(text)
	if err != nil {
		return nil, fmt.Errorf("offline tokenizer: %w: %w", err, sdk.ErrInvalid)
	}
	if ids == nil {
		ids = []uint{}
	}
	out, _ := json.Marshal(ids)
	return &sdk.ModelResponse{JSON: out, Model: tokenizerModel,
		Usage: sdk.Usage{PromptTokens: len(ids), TotalTokens: len(ids)}}, nil
}

// handleDecode serves TEXT_TOKENIZER_DECODE: params "tokens", an array of
// token ids, become Text. a may be nil.
func handleDecode(ctx context.Context, a *sdk.Agent, req *sdk.ModelRequest) (*sdk.ModelResponse, error) {
	if req == nil {
		return nil, errNoRequest
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	list, ok := req.Params["tokens"].([]any)
	if !ok {
		return nil, fmt.Errorf("offline tokenizer: params \"tokens\" must be an array of token ids: %w", sdk.ErrInvalid)
	}
	ids := make([]uint, len(list))
	for i, x := range list {
		f, ok := x.(float64)
		if !ok || f < 0 || f != math.Trunc(f) || f > math.MaxUint32 {
			return nil, fmt.Errorf("offline tokenizer: tokens[%d] = %v is not a token id: %w", i, x, sdk.ErrInvalid)
		}
		ids[i] = uint(f)
	}
	text, err := o200kBase().Decode(ids)
	if err != nil {
		return nil, fmt.Errorf("offline tokenizer: %w: %w", err, sdk.ErrInvalid)
	}
	return &sdk.ModelResponse{Text: text, Model: tokenizerModel,
		Usage: sdk.Usage{PromptTokens: len(ids), TotalTokens: len(ids)}}, nil
}
