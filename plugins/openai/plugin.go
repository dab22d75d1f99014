package openai

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/agenthost/agenthost/sdk"
	"github.com/hashicorp/go-hclog"
	oa "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// Version is the plugin's version.
const Version = "0.1.0"

// Name is the plugin's short name.
const Name = "openai"

// New returns the plugin, logging with sdk.NewLogger.
func New() sdk.Plugin { return newProvider(sdk.NewLogger(Name)).plugin() }

// provider is the plugin's state: one client per configured agent.
type provider struct {
	log   hclog.Logger
	http  *http.Client
	retry retryPolicy // backoff shape; the bounds come from each agent's settings

	mu     sync.RWMutex
	agents map[string]*client
}

func newProvider(log hclog.Logger) *provider {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// A server that takes the request and never answers must not hold a
	// call forever; a slow answer still streams, since the body is not
	// bounded here.
	tr.ResponseHeaderTimeout = 5 * time.Minute
	tr.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	return &provider{
		log:    log,
		http:   &http.Client{Transport: tr},
		retry:  retryPolicy{backoffBase: defaultBackoffBase, backoffMax: defaultBackoffMax},
		agents: map[string]*client{},
	}
}

func (p *provider) plugin() sdk.Plugin {
	return sdk.Plugin{
		Name:    Name,
		Version: Version,
		Description: "Models over the OpenAI API and anything that speaks it (Ollama, vLLM, llama.cpp, " +
			"OpenRouter, LM Studio…): text, streaming, JSON objects, embeddings, tokenizer, images, " +
			"image description, transcription and speech.",
		Aliases:  []string{"@elizaos/plugin-openai", "@elizaos/plugin-ollama", "ollama"},
		Settings: settingsDoc(),
		Models: []sdk.Model{
			{Type: sdk.ModelTextSmall, Handler: p.handleText, Stream: p.streamText},
			{Type: sdk.ModelTextLarge, Handler: p.handleText, Stream: p.streamText},
			{Type: sdk.ModelObjectSmall, Handler: p.handleObject},
			{Type: sdk.ModelObjectLarge, Handler: p.handleObject},
			{Type: sdk.ModelTextEmbedding, Handler: p.handleEmbedding},
			{Type: sdk.ModelTokenizerEncode, Handler: p.handleEncode},
			{Type: sdk.ModelTokenizerDecode, Handler: p.handleDecode},
			{Type: sdk.ModelImage, Handler: p.handleImage},
			{Type: sdk.ModelImageDescribe, Handler: p.handleImageDescription},
			{Type: sdk.ModelTranscription, Handler: p.handleTranscription},
			{Type: sdk.ModelTextToSpeech, Handler: p.handleSpeech},
		},
		Configure:   p.configure,
		Unconfigure: p.unconfigure,
	}
}

func settingsDoc() []sdk.Setting {
	return []sdk.Setting{
		{Name: SettingAPIKey, Description: "OpenAI API key (or the key of another OpenAI-compatible server).", Secret: true},
		{Name: SettingBaseURL, Description: "Base URL of the API: any OpenAI-compatible server.", Default: DefaultBaseURL},
		{Name: SettingSmallModel, Description: "Model for TEXT_SMALL and OBJECT_SMALL (else SMALL_MODEL).", Default: DefaultSmallModel},
		{Name: SettingLargeModel, Description: "Model for TEXT_LARGE and OBJECT_LARGE (else LARGE_MODEL).", Default: DefaultLargeModel},
		{Name: SettingEmbeddingModel, Description: "Model for TEXT_EMBEDDING.", Default: DefaultEmbeddingModel},
		{Name: SettingEmbeddingURL, Description: "Base URL for embeddings, if not the base URL."},
		{Name: SettingEmbeddingAPIKey, Description: "API key for embeddings, if not the API key.", Secret: true},
		{Name: SettingEmbeddingDimensions, Description: "Length of embedding vectors; every vector is checked against it.", Default: strconv.Itoa(DefaultEmbeddingDimensions)},
		{Name: SettingImageModel, Description: "Model for IMAGE.", Default: DefaultImageModel},
		{Name: SettingImageDescriptionModel, Description: "Vision model for IMAGE_DESCRIPTION.", Default: DefaultImageDescriptionModel},
		{Name: SettingImageDescriptionMaxToken, Description: "Max tokens of an image description.", Default: strconv.Itoa(DefaultImageDescriptionMax)},
		{Name: SettingTranscriptionModel, Description: "Model for TRANSCRIPTION.", Default: DefaultTranscriptionModel},
		{Name: SettingTTSModel, Description: "Model for TEXT_TO_SPEECH.", Default: DefaultTTSModel},
		{Name: SettingTTSVoice, Description: "Voice for TEXT_TO_SPEECH.", Default: DefaultTTSVoice},
		{Name: SettingTTSInstructions, Description: "Speaking instructions for TEXT_TO_SPEECH."},
		{Name: SettingMaxRetries, Description: "Retries of a call that got 429, 5xx or a dropped connection.", Default: strconv.Itoa(DefaultMaxRetries)},
		{Name: SettingMaxRetryWait, Description: "Longest Retry-After to wait for, in seconds; a longer one fails the call.", Default: strconv.Itoa(int(DefaultMaxRetryWait / time.Second))},
		{Name: SettingOllamaEndpoint, Description: "Ollama's API address; selects the Ollama preset when neither OPENAI_API_KEY nor OPENAI_BASE_URL is set.", Default: DefaultOllamaEndpoint},
		{Name: SettingOllamaSmallModel, Description: "Ollama model for the small types.", Default: DefaultOllamaModel},
		{Name: SettingOllamaLargeModel, Description: "Ollama model for the large types (else OLLAMA_MEDIUM_MODEL).", Default: DefaultOllamaModel},
		{Name: SettingOllamaEmbeddingModel, Description: "Ollama model for TEXT_EMBEDDING.", Default: DefaultOllamaEmbeddingModel},
		{Name: SettingOllamaEmbeddingDimensions, Description: "Length of the Ollama model's vectors, if not a known model's."},
	}
}

// client is one agent's configured connection to its API.
type client struct {
	cfg   config
	retry retryPolicy

	chat   oa.ChatCompletionService
	embed  oa.EmbeddingService
	images oa.ImageService
	audio  oa.AudioService

	// measuredDims caches the embedding size measured for a model whose
	// size is not known in advance.
	dimsMu       sync.Mutex
	measuredDims int
}

// newClient builds an agent's client. The services are created directly,
// not through openai.NewClient, so that nothing is read from the plugin
// process's environment: an agent's settings are the only source.
func (p *provider) newClient(cfg config) *client {
	common := []option.RequestOption{
		option.WithHTTPClient(p.http),
		// The plugin's retry loop is the only one; see retryPolicy.
		option.WithMaxRetries(0),
	}
	with := func(base, key string) []option.RequestOption {
		opts := append([]option.RequestOption{option.WithBaseURL(base)}, common...)
		if key != "" {
			opts = append(opts, option.WithAPIKey(key))
		}
		return opts
	}
	main := with(cfg.baseURL, cfg.apiKey)
	r := p.retry
	r.maxRetries, r.maxWait = cfg.maxRetries, cfg.maxRetryWait
	return &client{
		cfg:    cfg,
		retry:  r,
		chat:   oa.NewChatCompletionService(main...),
		embed:  oa.NewEmbeddingService(with(cfg.embeddingURL, cfg.embeddingAPIKey)...),
		images: oa.NewImageService(main...),
		audio:  oa.NewAudioService(main...),
	}
}

func (p *provider) configure(ctx context.Context, a *sdk.Agent) ([]string, error) {
	cfg, warnings, err := loadConfig(a)
	if err != nil {
		return nil, err
	}
	c := p.newClient(cfg)
	p.mu.Lock()
	p.agents[a.ID] = c
	p.mu.Unlock()
	_, why := choosePreset(a)
	p.log.Info("agent configured", "agent", a.ID, "name", a.Name(), "preset", cfg.preset, "because", why,
		"base_url", redactURL(cfg.baseURL), "small_model", cfg.smallModel, "large_model", cfg.largeModel,
		"embedding_model", cfg.embeddingModel, "embedding_dimensions", cfg.embeddingDims,
		"max_retries", cfg.maxRetries)
	return warnings, nil
}

// redactURL hides a password in a URL before it is logged.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func (p *provider) unconfigure(_ context.Context, a *sdk.Agent) {
	p.mu.Lock()
	delete(p.agents, a.ID)
	p.mu.Unlock()
}

var errNoRequest = fmt.Errorf("openai: nil model request: %w", sdk.ErrInvalid)

// clientFor returns the agent's client. An agent the plugin was never told
// about (a handler called directly) gets one from its settings now.
func (p *provider) clientFor(a *sdk.Agent) (*client, error) {
	if a == nil {
		return nil, fmt.Errorf("openai: no agent: %w", sdk.ErrInvalid)
	}
	p.mu.RLock()
	c := p.agents[a.ID]
	p.mu.RUnlock()
	if c != nil {
		return c, nil
	}
	cfg, _, err := loadConfig(a)
	if err != nil {
		return nil, fmt.Errorf("openai settings of agent %s: %w: %w", a.ID, err, sdk.ErrInvalid)
	}
	c = p.newClient(cfg)
	p.mu.Lock()
	if prev := p.agents[a.ID]; prev != nil {
		c = prev
	} else {
		p.agents[a.ID] = c
	}
	p.mu.Unlock()
	return c, nil
}

// callRecord is what is logged, and sent as MODEL_USED, about one call.
type callRecord struct {
	modelType string
	model     string
	usage     sdk.Usage
	attempts  int
	// estimated is set when the server gave no usage and the tokens were
	// counted locally.
	estimated bool
	streamed  bool
}

// finish logs a call that went to the API and emits MODEL_USED for it,
// whatever its outcome. The event is sent in the background: a slow
// subscriber must not hold up the model's answer.
func (p *provider) finish(ctx context.Context, a *sdk.Agent, c *client, req *sdk.ModelRequest, rec callRecord, start time.Time, err error) {
	took := time.Since(start)
	outcome := "ok"
	if err != nil {
		outcome = "error"
		if errors.Is(err, context.Canceled) {
			outcome = "cancelled"
		}
	}
	preset := ""
	if c != nil {
		preset = c.cfg.preset
	}
	fields := []any{"agent", a.ID, "run", req.RunID, "type", rec.modelType, "provider", preset, "model", rec.model,
		"prompt_tokens", rec.usage.PromptTokens, "completion_tokens", rec.usage.CompletionTokens,
		"total_tokens", rec.usage.TotalTokens, "duration_ms", took.Milliseconds(), "attempts", rec.attempts,
		"outcome", outcome}
	if rec.estimated {
		fields = append(fields, "tokens_estimated", true)
	}
	if rec.streamed {
		fields = append(fields, "streamed", true)
	}
	if err != nil {
		p.log.Error("model call", append(fields, "error", err.Error())...)
	} else {
		p.log.Info("model call", fields...)
	}
	payload := map[string]any{
		"provider": preset, "type": rec.modelType, "model": rec.model,
		"tokens": map[string]any{
			"prompt": rec.usage.PromptTokens, "completion": rec.usage.CompletionTokens, "total": rec.usage.TotalTokens,
		},
		"durationMs": took.Milliseconds(), "attempts": rec.attempts, "outcome": outcome,
	}
	if rec.estimated {
		payload["tokensEstimated"] = true
	}
	if err != nil {
		payload["error"] = err.Error()
	}
	ev := sdk.Event{Type: sdk.EventModelUsed, RunID: req.RunID, Source: Name, Payload: payload}
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sdk.DefaultCallTimeout)
	go func() {
		defer cancel()
		if err := a.EmitEvent(ectx, ev); err != nil && !errors.Is(err, sdk.ErrNoRuntime) {
			p.log.Warn("could not emit MODEL_USED", "agent", a.ID, "error", err.Error())
		}
	}()
}
