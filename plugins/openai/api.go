package openai

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/agenthost/agenthost/sdk"
)

// The plugin speaks the five endpoints it uses in plain HTTP and JSON. An
// official client library covers the whole API: it made this plugin's
// process, and every bundled plugin's since they share one binary, map
// 22 MB more code and data, and decoding an embedding through it cost a
// quarter of the plugin's time.

// maxAnswerBytes bounds what the plugin reads of one answer.
const maxAnswerBytes = 64 << 20

// endpoint is a base URL with the key that goes with it.
type endpoint struct {
	http    *http.Client
	baseURL string
	apiKey  string
}

// url joins the base URL and an endpoint's path ("chat/completions").
func (e endpoint) url(path string) string {
	return strings.TrimRight(e.baseURL, "/") + "/" + path
}

func (e endpoint) newRequest(ctx context.Context, path, contentType string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url(path), bytes.NewReader(body))
	if err != nil {
		return nil, permanent(fmt.Errorf("build the request: %w", err))
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "agenthost-plugin-openai/"+Version)
	if e.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+e.apiKey)
	}
	return req, nil
}

// do sends a request and returns the answer of a 2xx; any other status is
// an *httpError with the server's message.
func (e endpoint) do(req *http.Request) (*http.Response, error) {
	res, err := e.http.Do(req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode/100 != 2 {
		defer res.Body.Close()
		return nil, readError(res)
	}
	return res, nil
}

// newJSONRequest is a request with v as its JSON body.
func (e endpoint) newJSONRequest(ctx context.Context, path string, v any) (*http.Request, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, permanent(fmt.Errorf("encode the request: %w", err))
	}
	return e.newRequest(ctx, path, "application/json", body)
}

// send posts v as JSON to path and returns the answer of a 2xx.
func (e endpoint) send(ctx context.Context, path string, v any, accept string) (*http.Response, error) {
	req, err := e.newJSONRequest(ctx, path, v)
	if err != nil {
		return nil, err
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	return e.do(req)
}

// readAll reads a body of at most limit bytes; what names it in the error.
func readAll(body io.Reader, limit int64, what string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, badResponse("the %s is more than %d bytes", what, limit)
	}
	return b, nil
}

// post sends v as JSON to path and decodes the answer.
func post[T any](ctx context.Context, e endpoint, path string, v any) (*T, error) {
	var out T
	if err := e.postJSON(ctx, path, v, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// postJSON sends v as JSON to path and decodes the answer into out.
func (e endpoint) postJSON(ctx context.Context, path string, v, out any) error {
	res, err := e.send(ctx, path, v, "application/json")
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := readAll(res.Body, maxAnswerBytes, "answer")
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, out); err != nil {
		return badResponse("the answer is not the JSON expected: %v", err)
	}
	return nil
}

// httpError is an answer with a status other than 2xx, with what OpenAI's
// error body says about it.
type httpError struct {
	StatusCode int
	Code       string
	Type       string
	Message    string
	Header     http.Header
}

func (e *httpError) Error() string {
	s := "HTTP " + strconv.Itoa(e.StatusCode)
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

func readError(res *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	e := &httpError{StatusCode: res.StatusCode, Header: res.Header}
	var body struct {
		Error json.RawMessage `json:"error"`
	}
	var detail struct {
		Message string          `json:"message"`
		Type    string          `json:"type"`
		Code    json.RawMessage `json:"code"`
	}
	switch {
	case json.Unmarshal(b, &body) == nil && json.Unmarshal(body.Error, &detail) == nil:
		e.Message, e.Type = detail.Message, detail.Type
		// The code is a string, a number, or null.
		var s string
		if json.Unmarshal(detail.Code, &s) == nil {
			e.Code = s
		} else if c := string(detail.Code); c != "null" {
			e.Code = c
		}
	case json.Unmarshal(b, &body) == nil && len(body.Error) > 0:
		// Some servers answer {"error": "message"}.
		_ = json.Unmarshal(body.Error, &e.Message)
	default:
		e.Message = strings.TrimSpace(string(b))
	}
	return e
}

// Chat completions.

type chatMessage struct {
	Role string `json:"role"`
	// Content is a string, or a list of parts for images.
	Content any `json:"content"`
}

type chatPart struct {
	Type     string        `json:"type"`
	Text     string        `json:"text,omitempty"`
	ImageURL *chatImageURL `json:"image_url,omitempty"`
}

type chatImageURL struct {
	URL string `json:"url"`
}

type chatRequest struct {
	Model               string          `json:"model"`
	Messages            []chatMessage   `json:"messages"`
	MaxTokens           *int            `json:"max_tokens,omitempty"`
	MaxCompletionTokens *int            `json:"max_completion_tokens,omitempty"`
	Stop                []string        `json:"stop,omitempty"`
	Temperature         *float64        `json:"temperature,omitempty"`
	FrequencyPenalty    *float64        `json:"frequency_penalty,omitempty"`
	PresencePenalty     *float64        `json:"presence_penalty,omitempty"`
	ResponseFormat      *responseFormat `json:"response_format,omitempty"`
	Stream              bool            `json:"stream,omitempty"`
	StreamOptions       *streamOptions  `json:"stream_options,omitempty"`
}

type responseFormat struct {
	Type       string      `json:"type"`
	JSONSchema *jsonSchema `json:"json_schema,omitempty"`
}

type jsonSchema struct {
	Name   string `json:"name"`
	Schema any    `json:"schema,omitempty"`
	Strict bool   `json:"strict"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

type tokenUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type chatResponse struct {
	Model   string `json:"model"`
	Choices []struct {
		Message struct {
			Content string `json:"content"`
			Refusal string `json:"refusal"`
		} `json:"message"`
	} `json:"choices"`
	Usage tokenUsage `json:"usage"`
}

type chatChunk struct {
	Model   string `json:"model"`
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage *tokenUsage     `json:"usage"`
	Error json.RawMessage `json:"error"`
}

func (e endpoint) chat(ctx context.Context, r *chatRequest) (*chatResponse, error) {
	return post[chatResponse](ctx, e, "chat/completions", r)
}

// chatStream sends a streamed chat completion and calls each with every
// chunk of the server-sent events until [DONE] or the end of the body.
func (e endpoint) chatStream(ctx context.Context, r *chatRequest, each func(*chatChunk) error) error {
	res, err := e.send(ctx, "chat/completions", r, "text/event-stream")
	if err != nil {
		return err
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 8<<20)
	var data []byte
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) > 0 {
			if v, ok := bytes.CutPrefix(line, []byte("data:")); ok {
				if len(data) > 0 {
					data = append(data, '\n')
				}
				data = append(data, bytes.TrimPrefix(v, []byte(" "))...)
			}
			continue
		}
		// A blank line ends an event.
		if len(data) == 0 {
			continue
		}
		if bytes.Equal(data, []byte("[DONE]")) {
			return nil
		}
		var c chatChunk
		if err := json.Unmarshal(data, &c); err != nil {
			return badResponse("a streamed chunk is not JSON: %.200s", data)
		}
		if len(c.Error) > 0 && string(c.Error) != "null" {
			return fmt.Errorf("received error while streaming: %s", c.Error)
		}
		if err := each(&c); err != nil {
			return err
		}
		data = data[:0]
	}
	return sc.Err()
}

// Embeddings.

type embeddingRequest struct {
	Model          string `json:"model"`
	Input          string `json:"input"`
	EncodingFormat string `json:"encoding_format"`
	Dimensions     int    `json:"dimensions,omitempty"`
}

type embeddingResponse struct {
	Model string `json:"model"`
	Data  []struct {
		// Embedding is kept raw and read by floats: 1536 numbers through
		// reflection were most of the plugin's time per message.
		Embedding json.RawMessage `json:"embedding"`
	} `json:"data"`
	Usage tokenUsage `json:"usage"`
}

func (e endpoint) embed(ctx context.Context, r *embeddingRequest) (*embeddingResponse, error) {
	res, err := e.send(ctx, "embeddings", r, "application/json")
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := readAll(res.Body, maxAnswerBytes, "answer")
	if err != nil {
		return nil, err
	}
	return decodeEmbeddings(b)
}

// decodeEmbeddings decodes an embeddings answer. Through encoding/json,
// each array of 1536 numbers would be read twice (once to check the whole
// document, once more to skip it into a RawMessage), and that was most of
// the time the plugin spent on an embedding. The arrays are cut out first,
// each replaced by its index; encoding/json checks and decodes the rest, a
// few hundred bytes; floats then reads each array once. An array cut in
// the wrong place (a bracket inside a string, a nested array) leaves the
// rest malformed or the array unreadable: an error either way.
func decodeEmbeddings(b []byte) (*embeddingResponse, error) {
	rest, arrays := cutArrays(b, "embedding")
	var out embeddingResponse
	if err := json.Unmarshal(rest, &out); err != nil {
		return nil, badResponse("the answer is not the JSON expected: %v", err)
	}
	used := make([]bool, len(arrays))
	for i := range out.Data {
		raw := out.Data[i].Embedding
		if len(raw) == 0 || raw[0] < '0' || raw[0] > '9' {
			continue // not an array: floats says what it is
		}
		// A number here is an array's index, unless the server sent a
		// number: then it names no array, or one taken already.
		n, err := strconv.Atoi(string(raw))
		if err != nil || n >= len(arrays) || used[n] {
			return nil, badResponse("embedding %d is a number, not an array of numbers", i)
		}
		used[n] = true
		out.Data[i].Embedding = arrays[n]
	}
	return &out, nil
}

// cutArrays returns doc with each array value of key replaced by its index
// among the arrays, and the arrays. Only the strings and those arrays are
// looked at: a document malformed elsewhere is left for encoding/json to
// reject.
func cutArrays(doc []byte, key string) (rest []byte, arrays [][]byte) {
	rest = make([]byte, 0, 512)
	last := 0
	for i := 0; i < len(doc); i++ {
		if doc[i] != '"' {
			continue
		}
		end := stringEnd(doc, i)
		if end < 0 {
			break
		}
		isKey := string(doc[i+1:end]) == key
		i = end
		if !isKey {
			continue
		}
		k := skipSpace(doc, end+1)
		if k >= len(doc) || doc[k] != ':' {
			continue
		}
		k = skipSpace(doc, k+1)
		if k >= len(doc) || doc[k] != '[' {
			continue
		}
		stop := bytes.IndexByte(doc[k:], ']')
		if stop < 0 {
			break
		}
		stop += k
		rest = append(rest, doc[last:k]...)
		rest = strconv.AppendInt(rest, int64(len(arrays)), 10)
		arrays = append(arrays, doc[k:stop+1])
		last = stop + 1
		i = stop
	}
	return append(rest, doc[last:]...), arrays
}

// stringEnd returns the index of the quote that closes the JSON string
// opening at doc[open], or -1.
func stringEnd(doc []byte, open int) int {
	for i := open + 1; i < len(doc); i++ {
		switch doc[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

func skipSpace(doc []byte, i int) int {
	for i < len(doc) && (doc[i] == ' ' || doc[i] == '\t' || doc[i] == '\n' || doc[i] == '\r') {
		i++
	}
	return i
}

// floats reads a JSON array of numbers, as float32.
func floats(raw json.RawMessage) ([]float32, error) {
	b := bytes.TrimSpace(raw)
	if len(b) < 2 || b[0] != '[' || b[len(b)-1] != ']' {
		return nil, errors.New("not an array of numbers")
	}
	b = b[1 : len(b)-1]
	out := make([]float32, 0, bytes.Count(b, []byte(","))+1)
	for len(bytes.TrimSpace(b)) > 0 {
		num := b
		i := bytes.IndexByte(b, ',')
		if i >= 0 {
			num, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		num = bytes.TrimSpace(num)
		// JSON numbers only: strconv would also take "NaN", "Inf", hex
		// and underscores.
		for _, c := range num {
			if (c < '0' || c > '9') && c != '-' && c != '+' && c != '.' && c != 'e' && c != 'E' {
				return nil, fmt.Errorf("%q is not a number", num)
			}
		}
		f, err := strconv.ParseFloat(string(num), 32)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", num)
		}
		out = append(out, float32(f))
	}
	return out, nil
}

// Images.

type imageRequest struct {
	Prompt string `json:"prompt"`
	Model  string `json:"model"`
	N      int    `json:"n"`
	Size   string `json:"size"`
}

type mediaUsage struct {
	InputTokens  int `json:"input_tokens"`
	OutputTokens int `json:"output_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

func (u mediaUsage) sdk() sdk.Usage {
	return sdk.Usage{PromptTokens: u.InputTokens, CompletionTokens: u.OutputTokens, TotalTokens: u.TotalTokens}
}

type imageResponse struct {
	OutputFormat string `json:"output_format"`
	Data         []struct {
		URL           string `json:"url"`
		B64JSON       string `json:"b64_json"`
		RevisedPrompt string `json:"revised_prompt"`
	} `json:"data"`
	Usage mediaUsage `json:"usage"`
}

func (e endpoint) generateImages(ctx context.Context, r *imageRequest) (*imageResponse, error) {
	return post[imageResponse](ctx, e, "images/generations", r)
}

// Audio.

type transcriptionRequest struct {
	Model, Language, Prompt string
	Audio                   []byte
	Filename, ContentType   string
}

type transcriptionResponse struct {
	Text  string     `json:"text"`
	Usage mediaUsage `json:"usage"`
}

func (e endpoint) transcribe(ctx context.Context, r *transcriptionRequest) (*transcriptionResponse, error) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, r.Filename))
	h.Set("Content-Type", r.ContentType)
	part, err := w.CreatePart(h)
	if err == nil {
		_, err = part.Write(r.Audio)
	}
	for _, f := range [][2]string{{"model", r.Model}, {"language", r.Language}, {"prompt", r.Prompt}} {
		if err == nil && f[1] != "" {
			err = w.WriteField(f[0], f[1])
		}
	}
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		return nil, permanent(fmt.Errorf("encode the upload: %w", err))
	}
	req, err := e.newRequest(ctx, "audio/transcriptions", w.FormDataContentType(), buf.Bytes())
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	res, err := e.do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var out transcriptionResponse
	if err := json.NewDecoder(io.LimitReader(res.Body, maxAnswerBytes)).Decode(&out); err != nil {
		return nil, badResponse("the answer is not the JSON expected: %v", err)
	}
	return &out, nil
}

type speechRequest struct {
	Model          string   `json:"model"`
	Input          string   `json:"input"`
	Voice          string   `json:"voice"`
	ResponseFormat string   `json:"response_format"`
	Instructions   string   `json:"instructions,omitempty"`
	Speed          *float64 `json:"speed,omitempty"`
}

// speak returns the answer of a speech request; the caller reads and
// closes its body.
func (e endpoint) speak(ctx context.Context, r *speechRequest) (*http.Response, error) {
	return e.send(ctx, "audio/speech", r, "")
}
