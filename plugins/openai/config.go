package openai

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/agenthost/agenthost/sdk"
)

// Presets: the same client speaks to OpenAI and to anything that serves its
// API; a preset only changes where the settings and defaults come from.
const (
	PresetOpenAI = "openai"
	PresetOllama = "ollama"
)

// Settings, named as elizaOS names them.
const (
	SettingAPIKey                   = "OPENAI_API_KEY"
	SettingBaseURL                  = "OPENAI_BASE_URL"
	SettingSmallModel               = "OPENAI_SMALL_MODEL"
	SettingLargeModel               = "OPENAI_LARGE_MODEL"
	SettingEmbeddingModel           = "OPENAI_EMBEDDING_MODEL"
	SettingEmbeddingURL             = "OPENAI_EMBEDDING_URL"
	SettingEmbeddingAPIKey          = "OPENAI_EMBEDDING_API_KEY"
	SettingEmbeddingDimensions      = "OPENAI_EMBEDDING_DIMENSIONS"
	SettingImageModel               = "OPENAI_IMAGE_MODEL"
	SettingImageDescriptionModel    = "OPENAI_IMAGE_DESCRIPTION_MODEL"
	SettingImageDescriptionMaxToken = "OPENAI_IMAGE_DESCRIPTION_MAX_TOKENS"
	SettingTranscriptionModel       = "OPENAI_TRANSCRIPTION_MODEL"
	SettingTTSModel                 = "OPENAI_TTS_MODEL"
	SettingTTSVoice                 = "OPENAI_TTS_VOICE"
	SettingTTSInstructions          = "OPENAI_TTS_INSTRUCTIONS"
	// SettingMaxRetries and SettingMaxRetryWait are agenthost's own: how
	// often a 429, a 5xx or a dropped connection is retried, and the longest
	// Retry-After the plugin is willing to wait for.
	SettingMaxRetries   = "OPENAI_MAX_RETRIES"
	SettingMaxRetryWait = "OPENAI_MAX_RETRY_WAIT"

	// The generic model names elizaOS falls back to.
	SettingSmallModelGeneric = "SMALL_MODEL"
	SettingLargeModelGeneric = "LARGE_MODEL"

	SettingOllamaEndpoint       = "OLLAMA_API_ENDPOINT"
	SettingOllamaSmallModel     = "OLLAMA_SMALL_MODEL"
	SettingOllamaMediumModel    = "OLLAMA_MEDIUM_MODEL"
	SettingOllamaLargeModel     = "OLLAMA_LARGE_MODEL"
	SettingOllamaEmbeddingModel = "OLLAMA_EMBEDDING_MODEL"
	// SettingOllamaEmbeddingDimensions is agenthost's own; without it the
	// size of a known Ollama embedding model is used, or measured once.
	SettingOllamaEmbeddingDimensions = "OLLAMA_EMBEDDING_DIMENSIONS"
)

// Defaults, as elizaOS has them.
const (
	DefaultBaseURL               = "https://api.openai.com/v1"
	DefaultSmallModel            = "gpt-4o-mini"
	DefaultLargeModel            = "gpt-4o"
	DefaultEmbeddingModel        = "text-embedding-3-small"
	DefaultEmbeddingDimensions   = 1536
	DefaultImageModel            = "dall-e-3"
	DefaultImageDescriptionModel = "gpt-4o-mini"
	DefaultImageDescriptionMax   = 8192
	DefaultTranscriptionModel    = "whisper-1"
	DefaultTTSModel              = "gpt-4o-mini-tts"
	DefaultTTSVoice              = "nova"

	DefaultOllamaEndpoint       = "http://localhost:11434/api"
	DefaultOllamaModel          = "gemma3:latest"
	DefaultOllamaEmbeddingModel = "nomic-embed-text"

	DefaultMaxRetries   = 3
	DefaultMaxRetryWait = 60 * time.Second
)

// ollamaEmbeddingSizes are the vector sizes of common Ollama embedding
// models, so that the dimension probe needs no call for them.
var ollamaEmbeddingSizes = map[string]int{
	"nomic-embed-text":       768,
	"mxbai-embed-large":      1024,
	"all-minilm":             384,
	"snowflake-arctic-embed": 1024,
	"bge-m3":                 1024,
	"bge-large":              1024,
}

// config is one agent's resolved settings.
type config struct {
	preset  string
	baseURL string
	apiKey  string
	// customBaseURL is true when the base URL is not OpenAI's own: such
	// servers know max_tokens better than max_completion_tokens.
	customBaseURL bool

	smallModel, largeModel string

	embeddingModel  string
	embeddingURL    string
	embeddingAPIKey string
	// embeddingDims is 0 when the size is unknown until measured.
	embeddingDims int
	// sendDimensions asks the server for embeddingDims (text-embedding-3
	// models can shorten their vectors; others reject the parameter).
	sendDimensions bool

	imageModel            string
	imageDescriptionModel string
	imageDescriptionMax   int
	transcriptionModel    string
	ttsModel              string
	ttsVoice              string
	ttsInstructions       string

	maxRetries   int
	maxRetryWait time.Duration
}

// settingsOf reads the first non-empty setting of keys.
func settingsOf(a *sdk.Agent) func(keys ...string) string {
	return func(keys ...string) string {
		if a == nil {
			return ""
		}
		for _, k := range keys {
			if v := strings.TrimSpace(a.Setting(k)); v != "" {
				return v
			}
		}
		return ""
	}
}

// choosePreset decides between OpenAI and Ollama for an agent. A character
// that names the Ollama plugin and not the OpenAI one gets Ollama. Else
// the settings decide: OPENAI_API_KEY or OPENAI_BASE_URL set means OpenAI
// (or the server at that URL); otherwise OLLAMA_API_ENDPOINT set means
// Ollama; otherwise OpenAI, whose calls will then ask for a key. The reason
// is returned for the log.
func choosePreset(a *sdk.Agent) (preset, why string) {
	get := settingsOf(a)
	var openai, ollama bool
	if a != nil && a.Character != nil {
		for _, p := range a.Character.Plugins {
			switch strings.ToLower(strings.TrimSpace(p)) {
			case "@elizaos/plugin-openai", "openai", "plugin-openai", "agenthost-plugin-openai":
				openai = true
			case "@elizaos/plugin-ollama", "ollama", "plugin-ollama":
				ollama = true
			}
		}
	}
	switch {
	case ollama && !openai:
		return PresetOllama, "the character lists the Ollama plugin"
	case get(SettingAPIKey) != "":
		return PresetOpenAI, SettingAPIKey + " is set"
	case get(SettingBaseURL) != "":
		return PresetOpenAI, SettingBaseURL + " is set"
	case get(SettingOllamaEndpoint) != "":
		return PresetOllama, SettingOllamaEndpoint + " is set and " + SettingAPIKey + " is not"
	}
	return PresetOpenAI, "neither " + SettingAPIKey + " nor " + SettingOllamaEndpoint + " is set"
}

// loadConfig resolves an agent's settings. Values that cannot be used are
// errors, so that a typo stops the agent instead of silently changing its
// embeddings; a missing key is only a warning, as in elizaOS.
func loadConfig(a *sdk.Agent) (cfg config, warnings []string, err error) {
	get := settingsOf(a)
	preset, _ := choosePreset(a)
	cfg.preset = preset
	switch preset {
	case PresetOllama:
		endpoint := get(SettingOllamaEndpoint)
		if endpoint == "" {
			endpoint = DefaultOllamaEndpoint
		}
		cfg.baseURL, err = ollamaBaseURL(endpoint)
		if err != nil {
			return cfg, nil, fmt.Errorf("%s: %w", SettingOllamaEndpoint, err)
		}
		cfg.customBaseURL = true
		cfg.smallModel = orDefault(get(SettingOllamaSmallModel, SettingSmallModelGeneric), DefaultOllamaModel)
		cfg.largeModel = orDefault(get(SettingOllamaLargeModel, SettingLargeModelGeneric, SettingOllamaMediumModel), DefaultOllamaModel)
		cfg.embeddingModel = orDefault(get(SettingOllamaEmbeddingModel), DefaultOllamaEmbeddingModel)
		cfg.embeddingURL = cfg.baseURL
		cfg.imageModel = orDefault(get(SettingImageModel), DefaultImageModel)
		cfg.imageDescriptionModel = orDefault(get(SettingImageDescriptionModel), cfg.largeModel)
		if n, set, err := positiveInt(get(SettingOllamaEmbeddingDimensions, SettingEmbeddingDimensions)); err != nil {
			return cfg, nil, fmt.Errorf("%s: %w", SettingOllamaEmbeddingDimensions, err)
		} else if set {
			cfg.embeddingDims = n
		} else {
			cfg.embeddingDims = ollamaEmbeddingSizes[strings.TrimSuffix(cfg.embeddingModel, ":latest")]
		}
	default:
		cfg.baseURL = get(SettingBaseURL)
		if cfg.baseURL == "" {
			cfg.baseURL = DefaultBaseURL
		} else if err := checkURL(cfg.baseURL); err != nil {
			return cfg, nil, fmt.Errorf("%s: %w", SettingBaseURL, err)
		}
		cfg.customBaseURL = strings.TrimRight(cfg.baseURL, "/") != DefaultBaseURL
		cfg.apiKey = get(SettingAPIKey)
		if cfg.apiKey == "" && !cfg.customBaseURL {
			warnings = append(warnings, SettingAPIKey+" is not set: calls to the OpenAI API will be refused")
		}
		cfg.smallModel = orDefault(get(SettingSmallModel, SettingSmallModelGeneric), DefaultSmallModel)
		cfg.largeModel = orDefault(get(SettingLargeModel, SettingLargeModelGeneric), DefaultLargeModel)
		cfg.embeddingModel = orDefault(get(SettingEmbeddingModel), DefaultEmbeddingModel)
		cfg.embeddingURL = get(SettingEmbeddingURL)
		if cfg.embeddingURL == "" {
			cfg.embeddingURL = cfg.baseURL
		} else if err := checkURL(cfg.embeddingURL); err != nil {
			return cfg, nil, fmt.Errorf("%s: %w", SettingEmbeddingURL, err)
		}
		cfg.embeddingAPIKey = get(SettingEmbeddingAPIKey)
		cfg.imageModel = orDefault(get(SettingImageModel), DefaultImageModel)
		cfg.imageDescriptionModel = orDefault(get(SettingImageDescriptionModel), DefaultImageDescriptionModel)
		n, set, err := positiveInt(get(SettingEmbeddingDimensions))
		if err != nil {
			return cfg, nil, fmt.Errorf("%s: %w", SettingEmbeddingDimensions, err)
		}
		cfg.embeddingDims = DefaultEmbeddingDimensions
		if set {
			cfg.embeddingDims = n
		}
		cfg.sendDimensions = set && strings.HasPrefix(cfg.embeddingModel, "text-embedding-3")
	}
	if cfg.embeddingAPIKey == "" {
		cfg.embeddingAPIKey = cfg.apiKey
	}
	cfg.transcriptionModel = orDefault(get(SettingTranscriptionModel), DefaultTranscriptionModel)
	cfg.ttsModel = orDefault(get(SettingTTSModel), DefaultTTSModel)
	cfg.ttsVoice = orDefault(get(SettingTTSVoice), DefaultTTSVoice)
	cfg.ttsInstructions = get(SettingTTSInstructions)

	n, set, err := positiveInt(get(SettingImageDescriptionMaxToken))
	if err != nil {
		return cfg, nil, fmt.Errorf("%s: %w", SettingImageDescriptionMaxToken, err)
	}
	cfg.imageDescriptionMax = DefaultImageDescriptionMax
	if set {
		cfg.imageDescriptionMax = n
	}

	cfg.maxRetries = DefaultMaxRetries
	if v := get(SettingMaxRetries); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 20 {
			return cfg, nil, fmt.Errorf("%s: %q is not a number from 0 to 20", SettingMaxRetries, v)
		}
		cfg.maxRetries = n
	}
	cfg.maxRetryWait = DefaultMaxRetryWait
	if v := get(SettingMaxRetryWait); v != "" {
		d, err := parseSeconds(v)
		if err != nil {
			return cfg, nil, fmt.Errorf("%s: %w", SettingMaxRetryWait, err)
		}
		cfg.maxRetryWait = d
	}
	return cfg, warnings, nil
}

// ollamaBaseURL turns Ollama's native API address (…/api, as elizaOS's
// plugin-ollama takes it) into the address of its OpenAI-compatible API
// (…/v1). An address that already ends in /v1 is kept.
func ollamaBaseURL(endpoint string) (string, error) {
	if err := checkURL(endpoint); err != nil {
		return "", err
	}
	u, _ := url.Parse(endpoint)
	p := strings.TrimRight(u.Path, "/")
	switch {
	case strings.HasSuffix(p, "/v1"):
	case strings.HasSuffix(p, "/api"):
		p = strings.TrimSuffix(p, "/api") + "/v1"
	default:
		p += "/v1"
	}
	u.Path = p
	return u.String(), nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", s)
	}
	return nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// positiveInt parses an optional positive number; set is false for "".
func positiveInt(v string) (n int, set bool, err error) {
	if v == "" {
		return 0, false, nil
	}
	n, err = strconv.Atoi(v)
	if err != nil || n <= 0 || n > 1<<16 {
		return 0, false, fmt.Errorf("%q is not a positive number", v)
	}
	return n, true, nil
}

// parseSeconds reads "30" (seconds) or a Go duration such as "1m30s".
func parseSeconds(v string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 && f < 86400 {
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a number of seconds", v)
	}
	return d, nil
}
