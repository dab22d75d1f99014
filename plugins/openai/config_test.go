package openai

import (
	"strings"
	"testing"
	"time"

	"github.com/agenthost/agenthost/sdk"
)

func agentWith(settings map[string]string, plugins ...string) *sdk.Agent {
	return &sdk.Agent{ID: "a", Settings: settings, Character: testCharacter(plugins...)}
}

func TestChoosePreset(t *testing.T) {
	t.Parallel()
	key := map[string]string{SettingAPIKey: "sk"}
	ollama := map[string]string{SettingOllamaEndpoint: "http://127.0.0.1:11434/api"}
	both := map[string]string{SettingAPIKey: "sk", SettingOllamaEndpoint: "http://127.0.0.1:11434/api"}
	for _, c := range []struct {
		settings map[string]string
		plugins  []string
		want     string
	}{
		{nil, nil, PresetOpenAI},
		{key, nil, PresetOpenAI},
		{ollama, nil, PresetOllama},
		{both, nil, PresetOpenAI},
		{both, []string{"@elizaos/plugin-ollama"}, PresetOllama},
		{key, []string{"ollama", "sql"}, PresetOllama},
		{both, []string{"@elizaos/plugin-openai"}, PresetOpenAI},
		{both, []string{"@elizaos/plugin-ollama", "openai"}, PresetOpenAI},
		// "openai" with only an Ollama endpoint: Ollama, since there is
		// no key and no other server to talk to.
		{ollama, []string{"openai"}, PresetOllama},
		{map[string]string{SettingBaseURL: "http://127.0.0.1:8080/v1", SettingOllamaEndpoint: "http://x/api"}, []string{"openai"}, PresetOpenAI},
	} {
		got, why := choosePreset(agentWith(c.settings, c.plugins...))
		if got != c.want || why == "" {
			t.Errorf("%v %v: %s (%s), want %s", c.settings, c.plugins, got, why, c.want)
		}
	}
}

func TestOpenAIDefaults(t *testing.T) {
	t.Parallel()
	cfg, warnings, err := loadConfig(agentWith(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.baseURL != DefaultBaseURL || cfg.customBaseURL || cfg.smallModel != "gpt-4o-mini" || cfg.largeModel != "gpt-4o" ||
		cfg.embeddingModel != "text-embedding-3-small" || cfg.embeddingDims != 1536 || cfg.sendDimensions ||
		cfg.imageModel != "dall-e-3" || cfg.imageDescriptionModel != "gpt-4o-mini" || cfg.imageDescriptionMax != 8192 ||
		cfg.transcriptionModel != "whisper-1" || cfg.ttsModel != "gpt-4o-mini-tts" || cfg.ttsVoice != "nova" ||
		cfg.maxRetries != DefaultMaxRetries || cfg.maxRetryWait != DefaultMaxRetryWait {
		t.Errorf("defaults = %+v", cfg)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], SettingAPIKey) {
		t.Errorf("a missing key is a warning: %q", warnings)
	}
	cfg, _, err = loadConfig(agentWith(map[string]string{SettingEmbeddingURL: "http://emb.test/v1", SettingAPIKey: "k",
		SettingMaxRetryWait: "1m30s", SettingMaxRetries: "0"}))
	if err != nil || cfg.embeddingURL != "http://emb.test/v1" || cfg.embeddingAPIKey != "k" || cfg.maxRetryWait != 90*time.Second || cfg.maxRetries != 0 {
		t.Errorf("%+v, %v", cfg, err)
	}
}

func TestBadSettingsAreErrors(t *testing.T) {
	t.Parallel()
	for _, s := range []map[string]string{
		{SettingEmbeddingDimensions: "many"},
		{SettingEmbeddingDimensions: "-5"},
		{SettingBaseURL: "localhost:8080"},
		{SettingEmbeddingURL: "ftp://x"},
		{SettingMaxRetries: "1000"},
		{SettingMaxRetryWait: "forever"},
		{SettingImageDescriptionMaxToken: "0"},
		{SettingOllamaEndpoint: "not a url", SettingOllamaEmbeddingDimensions: "1"},
		{SettingOllamaEndpoint: "http://127.0.0.1:11434", SettingOllamaEmbeddingDimensions: "x"},
	} {
		if _, _, err := loadConfig(agentWith(s)); err == nil {
			t.Errorf("%v: no error", s)
		}
	}
}

func TestOllamaPreset(t *testing.T) {
	t.Parallel()
	cfg, warnings, err := loadConfig(agentWith(nil, "@elizaos/plugin-ollama"))
	if err != nil || len(warnings) != 0 {
		t.Fatal(err, warnings)
	}
	if cfg.preset != PresetOllama || cfg.baseURL != "http://localhost:11434/v1" || cfg.apiKey != "" || !cfg.customBaseURL ||
		cfg.smallModel != "gemma3:latest" || cfg.largeModel != "gemma3:latest" || cfg.embeddingModel != "nomic-embed-text" ||
		cfg.embeddingDims != 768 || cfg.sendDimensions {
		t.Errorf("ollama defaults = %+v", cfg)
	}
	cfg, _, err = loadConfig(agentWith(map[string]string{SettingOllamaEndpoint: "http://gpu.test:11434/api/",
		SettingOllamaSmallModel: "llama3.2", SettingOllamaMediumModel: "qwen3", SettingOllamaEmbeddingModel: "mystery-embed"}))
	if err != nil || cfg.baseURL != "http://gpu.test:11434/v1" || cfg.smallModel != "llama3.2" || cfg.largeModel != "qwen3" || cfg.embeddingDims != 0 {
		t.Errorf("%+v, %v", cfg, err)
	}
	for in, want := range map[string]string{
		"http://h:1/api": "http://h:1/v1", "http://h:1": "http://h:1/v1", "http://h:1/v1/": "http://h:1/v1",
		"https://h/ollama/api": "https://h/ollama/v1", "http://h/proxy": "http://h/proxy/v1",
	} {
		if got, err := ollamaBaseURL(in); err != nil || got != want {
			t.Errorf("ollamaBaseURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestOllamaOverTheWire(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.srv.APIKey = "" // Ollama takes no key
	e.srv.EmbeddingDims = 768
	e.configure(map[string]string{SettingOllamaEndpoint: e.srv.Root + "/api"}, testCharacter("@elizaos/plugin-ollama"))
	res := e.mustUse(sdk.ModelRequest{Type: sdk.ModelTextLarge, Prompt: "hi"})
	if res.Text != "Hello from the fake OpenAI server (gemma3:latest)." {
		t.Errorf("text = %q", res.Text)
	}
	if res := e.mustUse(sdk.ModelRequest{Type: sdk.ModelTextEmbedding, Probe: true}); len(res.Embedding) != 768 {
		t.Errorf("probe len = %d", len(res.Embedding))
	}
	if n := len(e.srv.Requests("/embeddings")); n != 0 {
		t.Errorf("the probe of a known Ollama model made %d requests", n)
	}
	if res := e.mustUse(sdk.ModelRequest{Type: sdk.ModelTextEmbedding, Text: "hi"}); len(res.Embedding) != 768 || res.Model != "nomic-embed-text" {
		t.Errorf("embedding %d from %s", len(res.Embedding), res.Model)
	}
	if ev := e.events(2); ev[0].Payload["provider"] != "ollama" {
		t.Errorf("MODEL_USED provider = %v", ev[0].Payload["provider"])
	}
	if h := e.srv.Requests("/chat/completions")[0].Header.Get("Authorization"); h != "" {
		t.Errorf("authorization sent to Ollama: %q", h)
	}
}

func TestUnknownEmbeddingSizeIsMeasuredOnce(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.srv.APIKey = ""
	e.srv.EmbeddingDims = 1024
	e.configure(map[string]string{SettingOllamaEndpoint: e.srv.Root, SettingOllamaEmbeddingModel: "mystery-embed"}, nil)
	for range 2 {
		if res := e.mustUse(sdk.ModelRequest{Type: sdk.ModelTextEmbedding, Probe: true}); len(res.Embedding) != 1024 || res.Embedding[0] != 0.1 {
			t.Errorf("probe len = %d", len(res.Embedding))
		}
	}
	if n := len(e.srv.Requests("/embeddings")); n != 1 {
		t.Errorf("the size should be measured once, %d requests", n)
	}
	e.srv.EmbeddingDims = 512
	if _, err := e.use(sdk.ModelRequest{Type: sdk.ModelTextEmbedding, Text: "x"}); err == nil {
		t.Error("a model whose size changes must fail loudly")
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	if got := redactURL("https://user:secret@llm.test/v1"); strings.Contains(got, "secret") || !strings.Contains(got, "llm.test/v1") {
		t.Errorf("redactURL = %q", got)
	}
}
