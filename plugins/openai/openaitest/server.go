// Package openaitest is a local server that speaks the parts of the OpenAI
// HTTP API that the openai plugin uses, for tests that run the plugin
// against it: chat completions (plain and streamed as server-sent
// events), embeddings, image generation, transcription, speech and the
// model list, with OpenAI's JSON error bodies. Faults (any status, with
// headers such as Retry-After, or a stream cut short) are queued per
// endpoint, and every request is recorded with the time it arrived.
//
//	srv := openaitest.Start(t)
//	srv.FailNext("/chat/completions", openaitest.Fault{Status: 429, Header: map[string]string{"Retry-After": "1"}})
//	// settings: OPENAI_BASE_URL=srv.URL, OPENAI_API_KEY=srv.APIKey
//	reqs := srv.Requests("/chat/completions")
package openaitest

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// DefaultAPIKey is the key Start's server expects unless told otherwise.
const DefaultAPIKey = "sk-openaitest"

// Server is the fake API. Set its exported fields before the first
// request.
type Server struct {
	// URL is the base URL to use as OPENAI_BASE_URL; it ends in /v1.
	URL string
	// Root is the server's address without /v1.
	Root string
	// APIKey, if not empty, is required as "Authorization: Bearer KEY";
	// other requests get 401.
	APIKey string
	// Reply writes the assistant's answer to a chat completion; nil uses
	// [DefaultReply].
	Reply func(r *ChatRequest) string
	// EmbeddingDims is the length of embeddings whose request names no
	// dimensions (default 1536).
	EmbeddingDims int
	// ImagesAsBase64 answers image generations inline (b64_json), as
	// gpt-image models do, instead of with URLs.
	ImagesAsBase64 bool
	// HoldEmbedding, when set, is called with each input of an embeddings
	// request before it is answered: the answer waits for it to return.
	HoldEmbedding func(input string)

	srv *httptest.Server

	mu       sync.Mutex
	requests []Request
	faults   map[string][]Fault
	seq      int
}

// Request is one request the server received.
type Request struct {
	Method string
	// Path is the endpoint, without the /v1 prefix: "/chat/completions".
	Path   string
	Header http.Header
	Body   []byte
	// Time is when the request arrived.
	Time time.Time
	// Status is what the server answered.
	Status int
}

// JSON decodes the request's body.
func (r Request) JSON() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(r.Body, &m)
	return m
}

// Fault is a failure served instead of the normal answer.
type Fault struct {
	// Status is the HTTP status; 0 with CutAfter set means 200.
	Status int
	// Header is added to the answer, e.g. Retry-After.
	Header map[string]string
	// Message is the error's message (a default names the status).
	Message string
	// CutAfter, for a streamed chat completion, ends the stream after so
	// many chunks of text, without a finish reason or [DONE].
	CutAfter int
}

// ChatRequest is a chat completion request as Reply sees it.
type ChatRequest struct {
	Model string
	// System is the text of the system messages, joined by newlines.
	System string
	// Prompt is the text of the last user message.
	Prompt string
	// ImageURLs are the image parts of the user messages.
	ImageURLs []string
	// JSONMode is set when the request asks for a JSON object or schema.
	JSONMode bool
	Stream   bool
	// Body is the whole request.
	Body map[string]any
}

// Start runs a server until the test ends. It expects DefaultAPIKey.
func Start(t testing.TB) *Server {
	s := &Server{APIKey: DefaultAPIKey, faults: map[string][]Fault{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.Root = s.srv.URL
	s.URL = s.srv.URL + "/v1"
	t.Cleanup(s.srv.Close)
	return s
}

// FailNext queues faults for the next requests to an endpoint, in order.
func (s *Server) FailNext(path string, faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[path] = append(s.faults[path], faults...)
}

// Requests returns the requests received for an endpoint ("" for all), in
// order of arrival.
func (s *Server) Requests(path string) []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Request
	for _, r := range s.requests {
		if path == "" || r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// DefaultReply answers "Hello from the fake OpenAI server (MODEL).", as
// the <text> of a <response> block when the prompt asks for one, or as
// {"text": …} in JSON mode.
func DefaultReply(r *ChatRequest) string {
	text := "Hello from the fake OpenAI server (" + r.Model + ")."
	switch {
	case r.JSONMode:
		b, _ := json.Marshal(map[string]string{"text": text})
		return string(b)
	case strings.Contains(r.Prompt, "<response>"):
		return "<response><thought>The fake server always says hello.</thought><actions>REPLY</actions>" +
			"<providers></providers><text>" + text + "</text></response>"
	}
	return text
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	path := strings.TrimPrefix(r.URL.Path, "/v1")
	// The request is on record before any of the answer leaves: a client
	// that has read a whole stream may look at it at once.
	s.mu.Lock()
	s.requests = append(s.requests, Request{Method: r.Method, Path: path, Header: r.Header.Clone(), Body: body, Time: arrived, Status: http.StatusOK})
	rec := &recorder{ResponseWriter: w, s: s, i: len(s.requests) - 1}
	s.mu.Unlock()
	if s.APIKey != "" && r.Header.Get("Authorization") != "Bearer "+s.APIKey {
		writeError(rec, http.StatusUnauthorized, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key", nil)
		return
	}
	s.mu.Lock()
	var fault *Fault
	if q := s.faults[path]; len(q) > 0 {
		f := q[0]
		s.faults[path] = q[1:]
		fault = &f
	}
	s.seq++
	seq := s.seq
	s.mu.Unlock()
	if fault != nil && fault.CutAfter == 0 {
		msg := fault.Message
		if msg == "" {
			msg = fmt.Sprintf("Fault injected by openaitest: %d %s.", fault.Status, http.StatusText(fault.Status))
		}
		typ := "server_error"
		if fault.Status == http.StatusTooManyRequests {
			typ = "rate_limit_exceeded"
		}
		writeError(rec, fault.Status, msg, typ, "", fault.Header)
		return
	}

	switch {
	case r.Method == http.MethodPost && path == "/chat/completions":
		s.chat(rec, body, seq, fault)
	case r.Method == http.MethodPost && path == "/embeddings":
		s.embeddings(rec, body)
	case r.Method == http.MethodPost && path == "/images/generations":
		s.images(rec, body)
	case r.Method == http.MethodPost && path == "/audio/transcriptions":
		s.transcription(rec, r, body)
	case r.Method == http.MethodPost && path == "/audio/speech":
		s.speech(rec, body)
	case r.Method == http.MethodGet && path == "/models":
		writeJSON(rec, http.StatusOK, map[string]any{"object": "list", "data": []map[string]any{
			{"id": "gpt-4o", "object": "model", "owned_by": "openaitest"},
			{"id": "gpt-4o-mini", "object": "model", "owned_by": "openaitest"},
			{"id": "text-embedding-3-small", "object": "model", "owned_by": "openaitest"},
		}})
	default:
		writeError(rec, http.StatusNotFound, "Unknown request URL: "+r.Method+" "+r.URL.Path+".", "invalid_request_error", "unknown_url", nil)
	}
}

// recorder puts the status of the answer on the request's record before
// the client can see it, and passes flushes through.
type recorder struct {
	http.ResponseWriter
	s *Server
	i int
}

func (r *recorder) WriteHeader(code int) {
	r.s.mu.Lock()
	r.s.requests[r.i].Status = code
	r.s.mu.Unlock()
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers in OpenAI's error format.
func writeError(w http.ResponseWriter, status int, msg, typ, code string, header map[string]string) {
	for k, v := range header {
		w.Header().Set(k, v)
	}
	var c any
	if code != "" {
		c = code
	}
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": c}})
}

func badRequest(w http.ResponseWriter, msg, param string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"message": msg, "type": "invalid_request_error", "param": param, "code": nil}})
}

type chatBody struct {
	Model    string `json:"model"`
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Stream        bool `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	ResponseFormat *struct {
		Type string `json:"type"`
	} `json:"response_format"`
}

// contentText reads a message's content: a string or a list of parts.
func contentText(raw json.RawMessage) (text string, images []string) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var parts []struct {
		Type     string `json:"type"`
		Text     string `json:"text"`
		ImageURL struct {
			URL string `json:"url"`
		} `json:"image_url"`
	}
	_ = json.Unmarshal(raw, &parts)
	var texts []string
	for _, p := range parts {
		switch p.Type {
		case "text":
			texts = append(texts, p.Text)
		case "image_url":
			images = append(images, p.ImageURL.URL)
		}
	}
	return strings.Join(texts, "\n"), images
}

// words counts tokens the cheap way; the fake's usage need only be
// consistent.
func words(s string) int { return len(strings.Fields(s)) }

func (s *Server) chat(w *recorder, body []byte, seq int, fault *Fault) {
	var b chatBody
	if err := json.Unmarshal(body, &b); err != nil {
		badRequest(w, "We could not parse the JSON body of your request.", "")
		return
	}
	if b.Model == "" {
		badRequest(w, "you must provide a model parameter", "model")
		return
	}
	if len(b.Messages) == 0 {
		badRequest(w, "[] is too short - 'messages'", "messages")
		return
	}
	req := &ChatRequest{Model: b.Model, Stream: b.Stream}
	_ = json.Unmarshal(body, &req.Body)
	var system []string
	for _, m := range b.Messages {
		text, images := contentText(m.Content)
		switch m.Role {
		case "system", "developer":
			system = append(system, text)
		case "user":
			req.Prompt = text
			req.ImageURLs = append(req.ImageURLs, images...)
		}
	}
	req.System = strings.Join(system, "\n")
	if b.ResponseFormat != nil && (b.ResponseFormat.Type == "json_object" || b.ResponseFormat.Type == "json_schema") {
		req.JSONMode = true
		if b.ResponseFormat.Type == "json_object" && !strings.Contains(strings.ToLower(req.System+req.Prompt), "json") {
			badRequest(w, "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.", "messages")
			return
		}
	}
	reply := DefaultReply
	if s.Reply != nil {
		reply = s.Reply
	}
	text := reply(req)
	id := fmt.Sprintf("chatcmpl-openaitest-%d", seq)
	created := time.Now().Unix()
	prompt := words(req.System) + words(req.Prompt)
	usage := map[string]int{"prompt_tokens": prompt, "completion_tokens": words(text), "total_tokens": prompt + words(text)}
	if !b.Stream {
		writeJSON(w, http.StatusOK, map[string]any{
			"id": id, "object": "chat.completion", "created": created, "model": b.Model,
			"choices": []map[string]any{{"index": 0, "message": map[string]any{"role": "assistant", "content": text, "refusal": nil},
				"logprobs": nil, "finish_reason": "stop"}},
			"usage": usage,
		})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	send := func(v any) {
		data, _ := json.Marshal(v)
		fmt.Fprintf(w, "data: %s\n\n", data)
		w.Flush()
	}
	chunk := func(delta map[string]any, finish any) map[string]any {
		return map[string]any{"id": id, "object": "chat.completion.chunk", "created": created, "model": b.Model,
			"choices": []map[string]any{{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish}}}
	}
	send(chunk(map[string]any{"role": "assistant", "content": ""}, nil))
	for i, piece := range pieces(text) {
		if fault != nil && fault.CutAfter > 0 && i == fault.CutAfter {
			return
		}
		send(chunk(map[string]any{"content": piece}, nil))
	}
	send(chunk(map[string]any{}, "stop"))
	if b.StreamOptions != nil && b.StreamOptions.IncludeUsage {
		send(map[string]any{"id": id, "object": "chat.completion.chunk", "created": created, "model": b.Model,
			"choices": []any{}, "usage": usage})
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
	w.Flush()
}

// pieces splits text into word-sized deltas that join back to it.
func pieces(text string) []string {
	var out []string
	for len(text) > 0 {
		i := strings.IndexByte(text[1:], ' ')
		if i < 0 {
			out = append(out, text)
			break
		}
		out = append(out, text[:i+1])
		text = text[i+1:]
	}
	return out
}

// Vector is the embedding the server gives text: deterministic, unit
// length, dims long.
func Vector(text string, dims int) []float64 {
	v := make([]float64, dims)
	var sum float64
	for i := range v {
		h := fnv.New64a()
		fmt.Fprintf(h, "%d\x00%s", i, text)
		x := float64(h.Sum64()%20001)/10000 - 1
		v[i] = x
		sum += x * x
	}
	if sum > 0 {
		n := math.Sqrt(sum)
		for i := range v {
			v[i] /= n
		}
	}
	return v
}

func (s *Server) embeddings(w *recorder, body []byte) {
	var b struct {
		Model          string          `json:"model"`
		Input          json.RawMessage `json:"input"`
		Dimensions     int             `json:"dimensions"`
		EncodingFormat string          `json:"encoding_format"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		badRequest(w, "We could not parse the JSON body of your request.", "")
		return
	}
	if b.Model == "" {
		badRequest(w, "you must provide a model parameter", "model")
		return
	}
	var inputs []string
	var one string
	if json.Unmarshal(b.Input, &one) == nil {
		inputs = []string{one}
	} else if json.Unmarshal(b.Input, &inputs) != nil {
		badRequest(w, "'input' must be a string or an array of strings", "input")
		return
	}
	if s.HoldEmbedding != nil {
		for _, in := range inputs {
			s.HoldEmbedding(in)
		}
	}
	dims := b.Dimensions
	if dims == 0 {
		dims = s.EmbeddingDims
	}
	if dims == 0 {
		dims = 1536
	}
	data := make([]map[string]any, len(inputs))
	tokens := 0
	for i, in := range inputs {
		if in == "" {
			badRequest(w, "'$.input' is invalid: empty string", "input")
			return
		}
		tokens += words(in)
		vec := Vector(in, dims)
		var emb any = vec
		if b.EncodingFormat == "base64" {
			buf := make([]byte, 4*len(vec))
			for j, x := range vec {
				binary.LittleEndian.PutUint32(buf[4*j:], math.Float32bits(float32(x)))
			}
			emb = base64.StdEncoding.EncodeToString(buf)
		}
		data[i] = map[string]any{"object": "embedding", "index": i, "embedding": emb}
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data, "model": b.Model,
		"usage": map[string]int{"prompt_tokens": tokens, "total_tokens": tokens}})
}

// onePixelPNG is a valid 1×1 PNG for b64_json answers.
const onePixelPNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="

func (s *Server) images(w *recorder, body []byte) {
	var b struct {
		Prompt         string `json:"prompt"`
		Model          string `json:"model"`
		N              int    `json:"n"`
		Size           string `json:"size"`
		ResponseFormat string `json:"response_format"`
	}
	if err := json.Unmarshal(body, &b); err != nil || b.Prompt == "" {
		badRequest(w, "'prompt' is required", "prompt")
		return
	}
	if b.N == 0 {
		b.N = 1
	}
	data := make([]map[string]any, b.N)
	for i := range data {
		if b.ResponseFormat == "b64_json" || s.ImagesAsBase64 {
			data[i] = map[string]any{"b64_json": onePixelPNG}
		} else {
			data[i] = map[string]any{"url": fmt.Sprintf("%s/files/image-%d-%s.png", s.Root, i, b.Size), "revised_prompt": "A picture of " + b.Prompt}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"created": time.Now().Unix(), "data": data})
}

func (s *Server) transcription(w *recorder, r *http.Request, body []byte) {
	_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || params["boundary"] == "" {
		badRequest(w, "the request must be multipart/form-data", "")
		return
	}
	form, err := multipart.NewReader(bytes.NewReader(body), params["boundary"]).ReadForm(32 << 20)
	if err != nil {
		badRequest(w, "could not parse the multipart form: "+err.Error(), "")
		return
	}
	defer form.RemoveAll()
	if len(form.Value["model"]) == 0 || form.Value["model"][0] == "" {
		badRequest(w, "you must provide a model parameter", "model")
		return
	}
	files := form.File["file"]
	if len(files) == 0 {
		badRequest(w, "'file' is required", "file")
		return
	}
	text := fmt.Sprintf("Transcript of %s (%d bytes)", files[0].Filename, files[0].Size)
	if l := form.Value["language"]; len(l) > 0 {
		text += " in " + l[0]
	}
	writeJSON(w, http.StatusOK, map[string]any{"text": text + "."})
}

// SpeechContentTypes are the content types of speech by response_format.
var SpeechContentTypes = map[string]string{
	"mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac", "flac": "audio/flac", "wav": "audio/wav", "pcm": "audio/pcm",
}

func (s *Server) speech(w *recorder, body []byte) {
	var b struct {
		Model          string `json:"model"`
		Input          string `json:"input"`
		Voice          string `json:"voice"`
		ResponseFormat string `json:"response_format"`
	}
	if err := json.Unmarshal(body, &b); err != nil || b.Input == "" || b.Model == "" || b.Voice == "" {
		badRequest(w, "'model', 'input' and 'voice' are required", "input")
		return
	}
	if b.ResponseFormat == "" {
		b.ResponseFormat = "mp3"
	}
	ctype, ok := SpeechContentTypes[b.ResponseFormat]
	if !ok {
		badRequest(w, "unsupported response_format", "response_format")
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "FAKE-%s-AUDIO voice=%s: %s", strings.ToUpper(b.ResponseFormat), b.Voice, b.Input)
}
