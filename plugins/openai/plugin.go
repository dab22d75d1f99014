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

	"github.com/agenthost/agenthost/internal/contract"
	"github.com/agenthost/agenthost/sdk"
	"github.com/hashicorp/go-hclog"
)

// Version is the plugin's version.
const Version = "0.1.0"

// Name is the plugin's short name.
const Name = "openai"

// New returns the plugin, logging with sdk.NewLogger.
func New() sdk.Plugin { return newProvider(sdk.NewLogger(Name)).plugin() }

// provider is the plugin's state: one client per configured agent.
type provider struct {
	log     hclog.Logger
	http    *http.Client
	retry   retryPolicy // backoff shape; the bounds come from each agent's settings
	clients *sdk.Instances[*client]
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
	// Every agent of the process talks to the same one or two servers, a
	// local one (Ollama, vLLM) over HTTP/1.1 often: with the default of two
	// idle connections per host, concurrent calls closed and dialled
	// connections all the time.
	tr.MaxIdleConnsPerHost = 64
	p := &provider{
		log:   log,
		http:  &http.Client{Transport: tr},
		retry: retryPolicy{backoffBase: defaultBackoffBase, backoffMax: defaultBackoffMax},
	}
	p.clients = &sdk.Instances[*client]{New: p.newAgentClient}
	return p
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
		Logger:    p.log,
		Instances: p.clients,
	}
}

func settingsDoc() []sdk.Setting {
	return []sdk.Setting{
		{Name: SettingAPIKey, Description: "OpenAI API key (or the key of another OpenAI-compatible server).", Secret: true},
		{Name: SettingBaseURL, Description: "Base URL of the API: any OpenAI-compatible server.", Default: DefaultBaseURL, Endpoint: true},
		{Name: SettingSmallModel, Description: "Model for TEXT_SMALL and OBJECT_SMALL (else SMALL_MODEL).", Default: DefaultSmallModel},
		{Name: SettingLargeModel, Description: "Model for TEXT_LARGE and OBJECT_LARGE (else LARGE_MODEL).", Default: DefaultLargeModel},
		{Name: SettingSmallModelGeneric, Description: "elizaOS's generic name for the small model, read when OPENAI_SMALL_MODEL (or OLLAMA_SMALL_MODEL) is unset."},
		{Name: SettingLargeModelGeneric, Description: "elizaOS's generic name for the large model, read when OPENAI_LARGE_MODEL (or OLLAMA_LARGE_MODEL) is unset."},
		{Name: SettingEmbeddingModel, Description: "Model for TEXT_EMBEDDING.", Default: DefaultEmbeddingModel},
		{Name: SettingEmbeddingURL, Description: "Base URL for embeddings, if not the base URL.", Endpoint: true},
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
		{Name: SettingOllamaEndpoint, Description: "Ollama's API address; selects the Ollama preset when neither OPENAI_API_KEY nor OPENAI_BASE_URL is set.", Default: DefaultOllamaEndpoint, Endpoint: true},
		{Name: SettingOllamaSmallModel, Description: "Ollama model for the small types.", Default: DefaultOllamaModel},
		{Name: SettingOllamaLargeModel, Description: "Ollama model for the large types (else OLLAMA_MEDIUM_MODEL).", Default: DefaultOllamaModel},
		{Name: SettingOllamaMediumModel, Description: "Ollama model for the large types when OLLAMA_LARGE_MODEL is unset."},
		{Name: SettingOllamaEmbeddingModel, Description: "Ollama model for TEXT_EMBEDDING.", Default: DefaultOllamaEmbeddingModel},
		{Name: SettingOllamaEmbeddingDimensions, Description: "Length of the Ollama model's vectors, if not a known model's."},
	}
}

// client is one agent's configured connection to its API.
type client struct {
	cfg   config
	retry retryPolicy

	// api serves chat, images and audio; embeddings may have a server of
	// their own.
	api, embeddings endpoint

	// measuredDims caches the embedding size measured for a model whose
	// size is not known in advance.
	dimsMu       sync.Mutex
	measuredDims int
}

// newClient builds an agent's client. Nothing is read from the plugin
// process's environment: an agent's settings are the only source.
func (p *provider) newClient(cfg config) *client {
	r := p.retry
	r.maxRetries, r.maxWait = cfg.maxRetries, cfg.maxRetryWait
	return &client{
		cfg:        cfg,
		retry:      r,
		api:        endpoint{http: p.http, baseURL: cfg.baseURL, apiKey: cfg.apiKey},
		embeddings: endpoint{http: p.http, baseURL: cfg.embeddingURL, apiKey: cfg.embeddingAPIKey},
	}
}

// newAgentClient makes an agent's client when the agent is configured.
func (p *provider) newAgentClient(ctx context.Context, a *sdk.Agent) (*client, []string, error) {
	cfg, warnings, err := loadConfig(a)
	if err != nil {
		return nil, nil, err
	}
	c := p.newClient(cfg)
	_, why := choosePreset(a)
	a.Logger(ctx).Info("agent configured", "preset", cfg.preset, "because", why,
		"base_url", redactURL(cfg.baseURL), "small_model", cfg.smallModel, "large_model", cfg.largeModel,
		"embedding_model", cfg.embeddingModel, "embedding_dimensions", cfg.embeddingDims,
		"max_retries", cfg.maxRetries)
	return c, warnings, nil
}

// redactURL hides a password in a URL before it is logged.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

var errNoRequest = fmt.Errorf("openai: nil model request: %w", sdk.ErrInvalid)

// clientFor returns the client made when the agent was configured.
func (p *provider) clientFor(a *sdk.Agent) (*client, error) {
	if a == nil {
		return nil, fmt.Errorf("openai: no agent: %w", sdk.ErrInvalid)
	}
	return p.clients.Get(a)
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
	log := a.Logger(sdk.WithRunID(ctx, req.RunID))
	fields := []any{"type", rec.modelType, "provider", preset, "model", rec.model,
		"prompt_tokens", rec.usage.PromptTokens, "completion_tokens", rec.usage.CompletionTokens,
		"total_tokens", rec.usage.TotalTokens, "duration_ms", took.Milliseconds(), "attempts", rec.attempts,
		"outcome", outcome}
	if rec.estimated {
		fields = append(fields, "tokens_estimated", true)
	}
	if rec.streamed {
		fields = append(fields, "streamed", true)
	}
	switch {
	case err != nil:
		log.Error("model call", append(fields, "error", err.Error())...)
	case rec.modelType == sdk.ModelTextEmbedding:
		// Every message is embedded beside its answer: at info, a message
		// costs one line, its answer's (the timeline has both calls).
		log.Debug("model call", fields...)
	default:
		log.Info("model call", fields...)
	}
	if info, err := a.DescribeAgent(ctx); err == nil && !info.Listens(sdk.EventModelUsed) {
		// No plugin of the agent listens: the host has recorded the call
		// in the run's timeline already, and the event would cost a call
		// to the host per model call for nothing.
		return
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
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), contract.DefaultCallTimeout)
	go func() {
		defer cancel()
		if err := a.EmitEvent(ectx, ev); err != nil && !errors.Is(err, sdk.ErrNoRuntime) {
			log.Warn("could not emit MODEL_USED", "error", err.Error())
		}
	}()
}
