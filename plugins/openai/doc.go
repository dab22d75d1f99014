// Package openai is the model plugin for the OpenAI API and every server
// that speaks it: Ollama, vLLM, llama.cpp's server, LM Studio, OpenRouter…
// It speaks the API's HTTP and JSON itself, for the five endpoints it uses
// (api.go), and serves TEXT_SMALL, TEXT_LARGE (also streamed),
// OBJECT_SMALL, OBJECT_LARGE, TEXT_EMBEDDING, TEXT_TOKENIZER_ENCODE/DECODE,
// IMAGE, IMAGE_DESCRIPTION, TRANSCRIPTION and TEXT_TO_SPEECH at priority 0.
//
// # Settings and presets
//
// Settings come per agent (character secrets, settings, then the host's
// environment) and are read once, in Configure, into one client per agent.
// Their names and defaults are elizaOS's: OPENAI_API_KEY, OPENAI_BASE_URL
// (https://api.openai.com/v1), OPENAI_SMALL_MODEL or SMALL_MODEL
// (gpt-4o-mini), OPENAI_LARGE_MODEL or LARGE_MODEL (gpt-4o),
// OPENAI_EMBEDDING_MODEL (text-embedding-3-small), OPENAI_EMBEDDING_URL and
// OPENAI_EMBEDDING_API_KEY (a separate embedding server),
// OPENAI_EMBEDDING_DIMENSIONS (1536), OPENAI_IMAGE_MODEL (dall-e-3),
// OPENAI_IMAGE_DESCRIPTION_MODEL (gpt-4o-mini) and …_MAX_TOKENS (8192),
// OPENAI_TRANSCRIPTION_MODEL (whisper-1), OPENAI_TTS_MODEL
// (gpt-4o-mini-tts), OPENAI_TTS_VOICE (nova), OPENAI_TTS_INSTRUCTIONS.
// Nothing is read from the plugin process's own environment.
//
// The Ollama preset answers to elizaOS's plugin-ollama settings:
// OLLAMA_API_ENDPOINT (http://localhost:11434/api; its OpenAI-compatible
// API at …/v1 is used), OLLAMA_SMALL_MODEL, OLLAMA_LARGE_MODEL (or
// OLLAMA_MEDIUM_MODEL; gemma3:latest), OLLAMA_EMBEDDING_MODEL
// (nomic-embed-text). An agent gets it when its character lists
// "@elizaos/plugin-ollama" (an alias of this plugin) and not the OpenAI
// plugin, or when OLLAMA_API_ENDPOINT is set and neither OPENAI_API_KEY nor
// OPENAI_BASE_URL is. Any other OpenAI-compatible server is the OpenAI
// preset with OPENAI_BASE_URL (and a key if it wants one).
//
// # Text
//
// The system prompt is the request's, else the character's. Temperature,
// frequency and presence penalty default to 0.7 and max tokens to 8192, as
// in elizaOS; stop sequences pass through. OpenAI's own API is sent
// max_completion_tokens, other servers max_tokens. A streamed call hands
// each delta to the host as it arrives; usage comes from the final chunk
// (stream_options.include_usage). When a server reports no usage, tokens
// are counted locally and the log and event say "estimated".
//
// OBJECT_* calls use JSON mode, or the request's "schema" param as a JSON
// Schema response format. Params "output" = "array" answers a JSON array,
// "enum" (with "enumValues") a JSON string among them. The answer must be
// JSON (a ``` fence around it is accepted): anything else is an error.
//
// # Embeddings
//
// A probe (ModelRequest.Probe) returns a vector of the configured size —
// 0.1 then zeros, as elizaOS's — without a call. The size is
// OPENAI_EMBEDDING_DIMENSIONS (sent to text-embedding-3 models, which can
// shorten their vectors), or for Ollama OLLAMA_EMBEDDING_DIMENSIONS or the
// known size of its model; a model of unknown size is measured once, by
// embedding a short text. Every vector is checked against that size. A
// failed embedding, an empty text or a vector of the wrong size is an
// error: unlike elizaOS, never a made-up vector. Input longer than 8191
// tokens is cut for OpenAI's embedding models, with a warning.
//
// # Tokenizer
//
// TEXT_TOKENIZER_ENCODE takes the text in Prompt and answers JSON, an
// array of token ids; TEXT_TOKENIZER_DECODE takes params "tokens" and
// answers Text; params "modelType" (TEXT_SMALL, TEXT_LARGE by default)
// picks whose model's encoding is used. It is tiktoken's BPE with the
// ranks compiled in (github.com/tiktoken-go/tokenizer), so it works
// offline: o200k_base for gpt-4o, gpt-4.1, gpt-5 and the o-series,
// cl100k_base for gpt-4, gpt-3.5 and text-embedding-*. Other models (an
// Ollama model, say) have no tokenizer here: o200k_base stands in, which
// is an approximation of their count, not their ids. Tokenizer calls run
// locally: they are logged at debug level and emit no MODEL_USED.
//
// # Media
//
// IMAGE: params "prompt" (or Prompt), "size" (1024x1024), "count" or "n"
// (1); answers JSON [{"url", "revisedPrompt"}], inline images as data:
// URLs. IMAGE_DESCRIPTION: params "imageUrl" (or a URL as Prompt) and
// "prompt"; answers JSON {"title", "description"} and the description as
// Text. TRANSCRIPTION: params "audio" (base64) or "audioUrl" (http(s) or
// data:, or a URL as Prompt), "mimeType", "filename", "language",
// "prompt"; answers Text. TEXT_TO_SPEECH: params "text" (or Text or
// Prompt), "voice", "speed", "instructions", "format" (mp3); answers Data
// with its ContentType.
//
// # Faults, logs and events
//
// 429, 5xx (and 408, 409), dropped connections and streams that fail before
// their first delta are retried: OPENAI_MAX_RETRIES times (3), waiting what
// Retry-After-Ms or Retry-After says, else an exponential backoff from
// 0.5 s to 8 s with jitter. A Retry-After longer than OPENAI_MAX_RETRY_WAIT
// (60 s), or than the call's deadline allows, fails the call at once.
// There is no other retry loop, so these bounds are the whole bound. An
// exhausted retry is reported as Unavailable; other API
// errors carry the server's status and message; secrets never appear.
//
// Every call that reaches the API is logged once (agent_id, agent_name,
// run_id, type, provider, model, prompt/completion/total tokens, duration,
// attempts, outcome, error): at info level, or at debug for an embedding
// that succeeded (every message is embedded: at info, a message costs its
// answer's line), at error for a call that failed. When a plugin of the agent listens for
// MODEL_USED, the call also emits it through the host, whatever its
// outcome, with the payload {provider, type, model, tokens: {prompt,
// completion, total}, durationMs, attempts, outcome, error?}; when none
// does, it is not sent (the host records every model call in the run's
// timeline all the same). The event is sent in the background so that a
// slow subscriber never delays an answer.
//
// Package openaitest is a fake of the API for tests, used by this
// package's tests and by the end-to-end tests of cmd/agenthost.
package openai
