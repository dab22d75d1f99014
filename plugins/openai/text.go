package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/agenthost/agenthost/sdk"
)

// Sampling defaults of elizaOS's text calls, used when the request leaves
// them out.
const (
	defaultTemperature = 0.7
	defaultPenalty     = 0.7
	defaultMaxTokens   = 8192
)

// isSmall reports whether a model type runs on the small model. Anything
// else, including an empty type, runs on the large one.
func isSmall(modelType string) bool {
	switch modelType {
	case sdk.ModelTextSmall, sdk.ModelObjectSmall, "SMALL", "REASONING_SMALL":
		return true
	}
	return false
}

func (c *client) modelFor(modelType string) string {
	if isSmall(modelType) {
		return c.cfg.smallModel
	}
	return c.cfg.largeModel
}

// systemPrompt is the request's system prompt, else the character's, as
// elizaOS sends character.system.
func systemPrompt(a *sdk.Agent, req *sdk.ModelRequest) string {
	if req.System != "" {
		return req.System
	}
	if a != nil && a.Character != nil {
		return a.Character.System
	}
	return ""
}

// chatParams builds a chat completion request from a text request.
func (c *client) chatParams(system string, req *sdk.ModelRequest, model string, sampling bool) *chatRequest {
	var msgs []chatMessage
	if system != "" {
		msgs = append(msgs, chatMessage{Role: "system", Content: system})
	}
	msgs = append(msgs, chatMessage{Role: "user", Content: req.Prompt})
	params := &chatRequest{Model: model, Messages: msgs}
	maxTokens := defaultMaxTokens
	if req.MaxTokens > 0 {
		maxTokens = req.MaxTokens
	}
	c.setMaxTokens(params, maxTokens)
	if len(req.StopSequences) > 0 {
		params.Stop = slices.Clone(req.StopSequences)
	}
	sampled := func(v *float64, def float64) *float64 {
		switch {
		case v != nil:
			return ptrTo(*v)
		case sampling:
			return ptrTo(def)
		}
		return nil
	}
	params.Temperature = sampled(req.Temperature, defaultTemperature)
	params.FrequencyPenalty = sampled(req.FrequencyPenalty, defaultPenalty)
	params.PresencePenalty = sampled(req.PresencePenalty, defaultPenalty)
	return params
}

// setMaxTokens bounds the answer: OpenAI's own API wants
// max_completion_tokens (its reasoning models refuse max_tokens); the
// servers that copy its API know max_tokens.
func (c *client) setMaxTokens(params *chatRequest, n int) {
	if c.cfg.customBaseURL {
		params.MaxTokens = &n
	} else {
		params.MaxCompletionTokens = &n
	}
}

func ptrTo[T any](v T) *T { return &v }

func usageOf(u tokenUsage) sdk.Usage {
	return sdk.Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens}
}

// estimateUsage counts tokens locally for a server that reported none.
func estimateUsage(model, prompt, completion string) sdk.Usage {
	enc, _ := encodingFor(model)
	p, c := countTokens(enc, prompt), countTokens(enc, completion)
	return sdk.Usage{PromptTokens: p, CompletionTokens: c, TotalTokens: p + c}
}

// textRequest checks a text request and picks its client and model.
func (p *provider) textRequest(a *sdk.Agent, req *sdk.ModelRequest) (*client, string, error) {
	if req == nil {
		return nil, "", errNoRequest
	}
	c, err := p.clientFor(a)
	if err != nil {
		return nil, "", err
	}
	if strings.TrimSpace(req.Prompt) == "" {
		return nil, "", fmt.Errorf("openai %s: the prompt is empty: %w", req.Type, sdk.ErrInvalid)
	}
	return c, c.modelFor(req.Type), nil
}

// complete runs one chat completion with retries and returns its text.
func (p *provider) complete(ctx context.Context, a *sdk.Agent, c *client, params *chatRequest, rec *callRecord) (string, error) {
	var text string
	var err error
	rec.attempts, err = c.retry.do(ctx, a.Logger(ctx), rec.modelType+" "+rec.model, func(int) error {
		res, err := c.api.chat(ctx, params)
		if err != nil {
			return err
		}
		if len(res.Choices) == 0 {
			return badResponse("the server answered with no choices")
		}
		msg := res.Choices[0].Message
		text = msg.Content
		if text == "" && msg.Refusal != "" {
			text = msg.Refusal
		}
		if res.Model != "" {
			rec.model = res.Model
		}
		rec.usage = usageOf(res.Usage)
		return nil
	})
	return text, err
}

// handleText serves TEXT_SMALL and TEXT_LARGE.
func (p *provider) handleText(ctx context.Context, a *sdk.Agent, req *sdk.ModelRequest) (*sdk.ModelResponse, error) {
	c, model, err := p.textRequest(a, req)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	system := systemPrompt(a, req)
	rec := callRecord{modelType: req.Type, model: model}
	text, err := p.complete(ctx, a, c, c.chatParams(system, req, model, true), &rec)
	if err == nil && rec.usage.TotalTokens == 0 {
		rec.usage, rec.estimated = estimateUsage(model, system+"\n"+req.Prompt, text), true
	}
	p.finish(ctx, a, c, req, rec, start, err)
	if err != nil {
		return nil, fmt.Errorf("openai %s (%s): %w", req.Type, model, err)
	}
	return &sdk.ModelResponse{Text: text, Model: rec.model, Usage: rec.usage}, nil
}

// streamText serves streamed TEXT_SMALL and TEXT_LARGE: each delta goes to
// emit as it arrives. A failure before the first delta is retried like any
// call; after it, the text already sent cannot be taken back, so the call
// fails.
func (p *provider) streamText(ctx context.Context, a *sdk.Agent, req *sdk.ModelRequest, emit func(string) error) (*sdk.ModelResponse, error) {
	c, model, err := p.textRequest(a, req)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	system := systemPrompt(a, req)
	params := c.chatParams(system, req, model, true)
	params.Stream = true
	params.StreamOptions = &streamOptions{IncludeUsage: true}
	rec := callRecord{modelType: req.Type, model: model, streamed: true}
	var text strings.Builder
	rec.attempts, err = c.retry.do(ctx, a.Logger(ctx), req.Type+" "+model+" (stream)", func(int) error {
		text.Reset()
		rec.usage = sdk.Usage{}
		emitted, finished := false, false
		err := c.api.chatStream(ctx, params, func(chunk *chatChunk) error {
			if chunk.Model != "" {
				rec.model = chunk.Model
			}
			if chunk.Usage != nil && chunk.Usage.TotalTokens > 0 {
				rec.usage = usageOf(*chunk.Usage)
			}
			for _, ch := range chunk.Choices {
				if ch.Index != 0 {
					continue
				}
				if ch.FinishReason != "" {
					finished = true
				}
				if d := ch.Delta.Content; d != "" {
					text.WriteString(d)
					emitted = true
					if err := emit(d); err != nil {
						return permanent(fmt.Errorf("hand the stream to the host: %w", err))
					}
				}
			}
			return nil
		})
		var perm *permanentError
		if errors.As(err, &perm) {
			return err
		}
		if err == nil && !finished {
			err = errors.New("the stream ended before the model finished")
		}
		if err != nil && emitted {
			return permanent(fmt.Errorf("the stream broke after %d bytes of text: %w", text.Len(), err))
		}
		return err
	})
	if err == nil && rec.usage.TotalTokens == 0 {
		rec.usage, rec.estimated = estimateUsage(model, system+"\n"+req.Prompt, text.String()), true
	}
	p.finish(ctx, a, c, req, rec, start, err)
	if err != nil {
		return nil, fmt.Errorf("openai %s (%s): %w", req.Type, model, err)
	}
	return &sdk.ModelResponse{Text: text.String(), Model: rec.model, Usage: rec.usage}, nil
}

// Object requests take these params, as elizaOS's do: "schema" (a JSON
// Schema), "output" ("object", "array", "enum" or "no-schema") and
// "enumValues".
const (
	paramSchema     = "schema"
	paramOutput     = "output"
	paramEnumValues = "enumValues"
)

// handleObject serves OBJECT_SMALL and OBJECT_LARGE: the model is asked for
// JSON (in JSON mode, or with the schema when one is given) and the answer
// is checked to be JSON before it is returned. An "array" answer is a JSON
// array and an "enum" answer a JSON string among enumValues.
func (p *provider) handleObject(ctx context.Context, a *sdk.Agent, req *sdk.ModelRequest) (*sdk.ModelResponse, error) {
	c, model, err := p.textRequest(a, req)
	if err != nil {
		return nil, err
	}
	output := paramString(req.Params, paramOutput)
	enumValues := paramStrings(req.Params, paramEnumValues)
	schema, hasSchema := req.Params[paramSchema]
	if hasSchema && schema == nil {
		hasSchema = false
	}
	if output == "enum" && len(enumValues) == 0 {
		return nil, fmt.Errorf("openai %s: output \"enum\" needs enumValues: %w", req.Type, sdk.ErrInvalid)
	}

	var instructions string
	switch output {
	case "array":
		instructions = `Answer with one JSON object of the form {"elements": [...]} holding the items of your answer, and nothing else.`
	case "enum":
		values, _ := json.Marshal(enumValues)
		instructions = `Answer with one JSON object of the form {"result": VALUE}, where VALUE is one of ` + string(values) + `, and nothing else.`
	default:
		instructions = "Answer with one valid JSON object and nothing else."
	}
	if hasSchema && output != "array" && output != "enum" {
		s, err := json.Marshal(schema)
		if err != nil {
			return nil, fmt.Errorf("openai %s: schema: %w: %w", req.Type, err, sdk.ErrInvalid)
		}
		instructions += "\nThe JSON must follow this JSON Schema:\n" + string(s)
	}
	system := systemPrompt(a, req)
	if system != "" {
		system += "\n\n"
	}
	system += instructions

	params := c.chatParams(system, req, model, false)
	if hasSchema && output != "array" && output != "enum" {
		params.ResponseFormat = &responseFormat{Type: "json_schema", JSONSchema: &jsonSchema{Name: "response", Schema: schema}}
	} else {
		params.ResponseFormat = &responseFormat{Type: "json_object"}
	}

	start := time.Now()
	rec := callRecord{modelType: req.Type, model: model}
	text, err := p.complete(ctx, a, c, params, &rec)
	var out json.RawMessage
	if err == nil {
		out, err = objectAnswer(text, output, enumValues)
	}
	if err == nil && rec.usage.TotalTokens == 0 {
		rec.usage, rec.estimated = estimateUsage(model, system+"\n"+req.Prompt, text), true
	}
	p.finish(ctx, a, c, req, rec, start, err)
	if err != nil {
		return nil, fmt.Errorf("openai %s (%s): %w", req.Type, model, err)
	}
	return &sdk.ModelResponse{JSON: out, Model: rec.model, Usage: rec.usage}, nil
}

// objectAnswer turns the model's text into the JSON the caller asked for.
func objectAnswer(text, output string, enumValues []string) (json.RawMessage, error) {
	raw, err := extractJSON(text)
	if err != nil {
		return nil, err
	}
	switch output {
	case "array":
		if bytes.HasPrefix(raw, []byte("[")) {
			return raw, nil
		}
		var wrapped struct {
			Elements json.RawMessage `json:"elements"`
		}
		if json.Unmarshal(raw, &wrapped) != nil || !bytes.HasPrefix(bytes.TrimSpace(wrapped.Elements), []byte("[")) {
			return nil, fmt.Errorf("the model's answer has no \"elements\" array: %.200s", text)
		}
		return compact(wrapped.Elements), nil
	case "enum":
		var v string
		if json.Unmarshal(raw, &v) != nil {
			var wrapped struct {
				Result string `json:"result"`
			}
			if json.Unmarshal(raw, &wrapped) != nil {
				return nil, fmt.Errorf("the model's answer has no \"result\": %.200s", text)
			}
			v = wrapped.Result
		}
		if !slices.Contains(enumValues, v) {
			return nil, fmt.Errorf("the model answered %q, which is not one of %q", v, enumValues)
		}
		b, _ := json.Marshal(v)
		return b, nil
	}
	return raw, nil
}

// extractJSON finds the JSON value in a model's answer: the whole text, the
// inside of a ``` fence, or the span from the first { or [ to the last } or
// ]. Anything else is an error: a made-up object would be worse than none.
func extractJSON(text string) (json.RawMessage, error) {
	s := strings.TrimSpace(text)
	if json.Valid([]byte(s)) && s != "" {
		return compact([]byte(s)), nil
	}
	if i := strings.Index(s, "```"); i >= 0 {
		inner := s[i+3:]
		if nl := strings.IndexByte(inner, '\n'); nl >= 0 {
			inner = inner[nl+1:]
		}
		if j := strings.Index(inner, "```"); j >= 0 {
			inner = strings.TrimSpace(inner[:j])
			if json.Valid([]byte(inner)) && inner != "" {
				return compact([]byte(inner)), nil
			}
		}
	}
	if i := strings.IndexAny(s, "{["); i >= 0 {
		if j := strings.LastIndexAny(s, "}]"); j > i && json.Valid([]byte(s[i:j+1])) {
			return compact([]byte(s[i : j+1])), nil
		}
	}
	return nil, badResponse("the model's answer is not JSON: %.200s", text)
}

func compact(b []byte) json.RawMessage {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return append(json.RawMessage(nil), b...)
	}
	return buf.Bytes()
}
