package openai

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/agenthost/agenthost/internal/contract"
	"github.com/agenthost/agenthost/sdk"
)

// Limits on media moved through the plugin. Audio for transcription is
// capped at OpenAI's upload limit; speech at what one gRPC message holds.
const (
	maxAudioBytes  = 25 << 20
	maxSpeechBytes = contract.MaxMessageSize - 1<<20
)

// requestText is the text a request carries for media calls: params
// "text" or "prompt", else Text, else Prompt.
func requestText(req *sdk.ModelRequest, keys ...string) string {
	for _, k := range keys {
		if s := paramString(req.Params, k); s != "" {
			return s
		}
	}
	if req.Text != "" {
		return req.Text
	}
	return req.Prompt
}

// handleImage serves IMAGE: params "prompt" (or Prompt), "size" (default
// 1024x1024) and "count" (or "n", default 1). The answer is JSON, as
// elizaOS's: [{"url": …}, …]; images returned inline become data: URLs.
func (p *provider) handleImage(ctx context.Context, a *sdk.Agent, req *sdk.ModelRequest) (*sdk.ModelResponse, error) {
	if req == nil {
		return nil, errNoRequest
	}
	c, err := p.clientFor(a)
	if err != nil {
		return nil, err
	}
	prompt := requestText(req, "prompt")
	if strings.TrimSpace(prompt) == "" {
		return nil, fmt.Errorf("openai IMAGE: the prompt is empty: %w", sdk.ErrInvalid)
	}
	size := paramString(req.Params, "size")
	if size == "" {
		size = "1024x1024"
	}
	n, ok, err := paramInt(req.Params, "count")
	if err == nil && !ok {
		n, ok, err = paramInt(req.Params, "n")
	}
	if err != nil {
		return nil, fmt.Errorf("openai IMAGE: %w: %w", err, sdk.ErrInvalid)
	}
	if !ok {
		n = 1
	}
	if n < 1 || n > 10 {
		return nil, fmt.Errorf("openai IMAGE: count %d is not from 1 to 10: %w", n, sdk.ErrInvalid)
	}
	params := &imageRequest{Prompt: prompt, Model: c.cfg.imageModel, N: n, Size: size}

	type image struct {
		URL           string `json:"url"`
		RevisedPrompt string `json:"revisedPrompt,omitempty"`
	}
	var images []image
	start := time.Now()
	rec := callRecord{modelType: sdk.ModelImage, model: c.cfg.imageModel}
	rec.attempts, err = c.retry.do(ctx, a.Logger(ctx), sdk.ModelImage+" "+c.cfg.imageModel, func(int) error {
		res, err := c.api.generateImages(ctx, params)
		if err != nil {
			return err
		}
		images = images[:0]
		for _, d := range res.Data {
			u := d.URL
			if u == "" && d.B64JSON != "" {
				format := res.OutputFormat
				if format == "" {
					format = "png"
				}
				u = "data:image/" + format + ";base64," + d.B64JSON
			}
			if u != "" {
				images = append(images, image{URL: u, RevisedPrompt: d.RevisedPrompt})
			}
		}
		if len(images) == 0 {
			return badResponse("the server answered with no image")
		}
		rec.usage = res.Usage.sdk()
		return nil
	})
	p.finish(ctx, a, c, req, rec, start, err)
	if err != nil {
		return nil, fmt.Errorf("openai IMAGE (%s): %w", c.cfg.imageModel, err)
	}
	out, _ := json.Marshal(images)
	return &sdk.ModelResponse{JSON: out, Model: rec.model, Usage: rec.usage}, nil
}

const defaultDescriptionPrompt = "Please analyze this image and provide a title and a detailed description."

// handleImageDescription serves IMAGE_DESCRIPTION: params "imageUrl" (an
// http(s) or data: URL; else Prompt or Text when it is one) and "prompt".
// The answer is JSON {"title", "description"}, and Text the description.
func (p *provider) handleImageDescription(ctx context.Context, a *sdk.Agent, req *sdk.ModelRequest) (*sdk.ModelResponse, error) {
	if req == nil {
		return nil, errNoRequest
	}
	c, err := p.clientFor(a)
	if err != nil {
		return nil, err
	}
	imageURL := paramString(req.Params, "imageUrl")
	prompt := paramString(req.Params, "prompt")
	if imageURL == "" {
		for _, s := range []string{strings.TrimSpace(req.Prompt), strings.TrimSpace(req.Text)} {
			if isMediaURL(s) {
				imageURL = s
				break
			}
		}
	} else if prompt == "" && !isMediaURL(strings.TrimSpace(req.Prompt)) {
		prompt = req.Prompt
	}
	if !isMediaURL(imageURL) {
		return nil, fmt.Errorf("openai IMAGE_DESCRIPTION: no image URL (params \"imageUrl\"): %w", sdk.ErrInvalid)
	}
	if prompt == "" {
		prompt = defaultDescriptionPrompt
	}
	prompt += "\nAnswer with one JSON object {\"title\": \"a short title\", \"description\": \"the description\"} and nothing else."
	model := c.cfg.imageDescriptionModel
	params := &chatRequest{Model: model, Messages: []chatMessage{{Role: "user", Content: []chatPart{
		{Type: "text", Text: prompt},
		{Type: "image_url", ImageURL: &chatImageURL{URL: imageURL}},
	}}}}
	c.setMaxTokens(params, c.cfg.imageDescriptionMax)
	start := time.Now()
	rec := callRecord{modelType: sdk.ModelImageDescribe, model: model}
	text, err := p.complete(ctx, a, c, params, &rec)
	if err == nil && strings.TrimSpace(text) == "" {
		err = badResponse("the model described the image with no text")
	}
	p.finish(ctx, a, c, req, rec, start, err)
	if err != nil {
		return nil, fmt.Errorf("openai IMAGE_DESCRIPTION (%s): %w", model, err)
	}
	title, description := titleAndDescription(text)
	out, _ := json.Marshal(map[string]string{"title": title, "description": description})
	return &sdk.ModelResponse{JSON: out, Text: description, Model: rec.model, Usage: rec.usage}, nil
}

// titleAndDescription reads the model's description: the JSON asked for,
// else "Title: …" lines, else the first line as the title.
func titleAndDescription(text string) (string, string) {
	if raw, err := extractJSON(text); err == nil {
		var v struct {
			Title       string `json:"title"`
			Description string `json:"description"`
		}
		if json.Unmarshal(raw, &v) == nil && (v.Title != "" || v.Description != "") {
			return v.Title, v.Description
		}
	}
	text = strings.TrimSpace(text)
	var title string
	var rest []string
	for _, line := range strings.Split(text, "\n") {
		l := strings.TrimSpace(line)
		low := strings.ToLower(l)
		switch {
		case title == "" && strings.HasPrefix(low, "title:"):
			title = strings.TrimSpace(l[len("title:"):])
		case strings.HasPrefix(low, "description:"):
			rest = append(rest, strings.TrimSpace(l[len("description:"):]))
		default:
			rest = append(rest, line)
		}
	}
	description := strings.TrimSpace(strings.Join(rest, "\n"))
	if title == "" {
		title, _, _ = strings.Cut(text, "\n")
		title = strings.Trim(strings.TrimSpace(title), "#* ")
	}
	if description == "" {
		description = text
	}
	return title, description
}

func isMediaURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "data:")
}

// handleTranscription serves TRANSCRIPTION. The audio is params "audio"
// (base64) or "audioUrl" (an http(s) or data: URL; else Prompt or Text when
// it is one), with optional "mimeType", "filename", "language" and
// "prompt". The answer is Text.
func (p *provider) handleTranscription(ctx context.Context, a *sdk.Agent, req *sdk.ModelRequest) (*sdk.ModelResponse, error) {
	if req == nil {
		return nil, errNoRequest
	}
	c, err := p.clientFor(a)
	if err != nil {
		return nil, err
	}
	audio, ctype, err := p.audioOf(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("openai TRANSCRIPTION: %w", err)
	}
	if t := paramString(req.Params, "mimeType"); t != "" {
		ctype = t
	}
	filename := paramString(req.Params, "filename")
	if filename == "" {
		filename = "audio." + audioExtension(ctype)
	}
	model := c.cfg.transcriptionModel
	params := &transcriptionRequest{Model: model, Language: paramString(req.Params, "language"), Prompt: paramString(req.Params, "prompt"),
		Audio: audio, Filename: filename, ContentType: ctype}
	start := time.Now()
	rec := callRecord{modelType: sdk.ModelTranscription, model: model}
	var text string
	rec.attempts, err = c.retry.do(ctx, a.Logger(ctx), sdk.ModelTranscription+" "+model, func(int) error {
		res, err := c.api.transcribe(ctx, params)
		if err != nil {
			return err
		}
		text = res.Text
		rec.usage = res.Usage.sdk()
		return nil
	})
	p.finish(ctx, a, c, req, rec, start, err)
	if err != nil {
		return nil, fmt.Errorf("openai TRANSCRIPTION (%s): %w", model, err)
	}
	return &sdk.ModelResponse{Text: text, Model: rec.model, Usage: rec.usage}, nil
}

// audioOf reads the audio of a transcription request.
func (p *provider) audioOf(ctx context.Context, req *sdk.ModelRequest) ([]byte, string, error) {
	if s := paramString(req.Params, "audio"); s != "" {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, "", fmt.Errorf("param \"audio\" is not base64: %w: %w", err, sdk.ErrInvalid)
		}
		if len(b) > maxAudioBytes {
			return nil, "", fmt.Errorf("the audio is %d bytes, more than %d: %w", len(b), maxAudioBytes, sdk.ErrInvalid)
		}
		return b, "application/octet-stream", nil
	}
	u := paramString(req.Params, "audioUrl")
	if u == "" {
		for _, s := range []string{strings.TrimSpace(req.Prompt), strings.TrimSpace(req.Text)} {
			if isMediaURL(s) {
				u = s
				break
			}
		}
	}
	if u == "" {
		return nil, "", fmt.Errorf("no audio (params \"audio\" or \"audioUrl\"): %w", sdk.ErrInvalid)
	}
	return p.fetch(ctx, u, maxAudioBytes)
}

// fetch reads a data: or http(s) URL, up to limit bytes.
func (p *provider) fetch(ctx context.Context, raw string, limit int64) ([]byte, string, error) {
	if rest, ok := strings.CutPrefix(raw, "data:"); ok {
		meta, data, found := strings.Cut(rest, ",")
		if !found {
			return nil, "", fmt.Errorf("malformed data: URL: %w", sdk.ErrInvalid)
		}
		ctype, isBase64 := strings.CutSuffix(meta, ";base64")
		var b []byte
		var err error
		if isBase64 {
			b, err = base64.StdEncoding.DecodeString(data)
		} else {
			var s string
			s, err = url.PathUnescape(data)
			b = []byte(s)
		}
		if err != nil {
			return nil, "", fmt.Errorf("malformed data: URL: %w: %w", err, sdk.ErrInvalid)
		}
		if int64(len(b)) > limit {
			return nil, "", fmt.Errorf("the data is %d bytes, more than %d: %w", len(b), limit, sdk.ErrInvalid)
		}
		return b, ctype, nil
	}
	if err := checkURL(raw); err != nil {
		return nil, "", fmt.Errorf("%w: %w", err, sdk.ErrInvalid)
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	hreq, err := http.NewRequestWithContext(rctx, http.MethodGet, raw, nil)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", err, sdk.ErrInvalid)
	}
	res, err := p.http.Do(hreq)
	if err != nil {
		return nil, "", fmt.Errorf("fetch the audio: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("fetch the audio: HTTP %d", res.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, limit+1))
	if err != nil {
		return nil, "", fmt.Errorf("fetch the audio: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, "", fmt.Errorf("the audio at the URL is more than %d bytes: %w", limit, sdk.ErrInvalid)
	}
	return b, res.Header.Get("Content-Type"), nil
}

// audioExtension names the upload so that the server knows its format.
func audioExtension(ctype string) string {
	t, _, _ := mime.ParseMediaType(ctype)
	switch t {
	case "audio/wav", "audio/x-wav", "audio/wave":
		return "wav"
	case "audio/ogg":
		return "ogg"
	case "audio/webm", "video/webm":
		return "webm"
	case "audio/mp4", "audio/m4a", "audio/x-m4a":
		return "m4a"
	case "audio/flac", "audio/x-flac":
		return "flac"
	}
	return "mp3"
}

var speechTypes = map[string]string{
	"mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac", "flac": "audio/flac", "wav": "audio/wav", "pcm": "audio/pcm",
}

// handleSpeech serves TEXT_TO_SPEECH: params "text" (else Text, else
// Prompt), "voice", "speed", "instructions" and "format" (mp3 by default).
// The answer is Data, with its ContentType.
func (p *provider) handleSpeech(ctx context.Context, a *sdk.Agent, req *sdk.ModelRequest) (*sdk.ModelResponse, error) {
	if req == nil {
		return nil, errNoRequest
	}
	c, err := p.clientFor(a)
	if err != nil {
		return nil, err
	}
	text := requestText(req, "text")
	if strings.TrimSpace(text) == "" {
		return nil, fmt.Errorf("openai TEXT_TO_SPEECH: the text is empty: %w", sdk.ErrInvalid)
	}
	format := paramString(req.Params, "format")
	if format == "" {
		format = "mp3"
	}
	ctype, ok := speechTypes[format]
	if !ok {
		return nil, fmt.Errorf("openai TEXT_TO_SPEECH: format %q is not one of mp3, opus, aac, flac, wav, pcm: %w", format, sdk.ErrInvalid)
	}
	voice := paramString(req.Params, "voice")
	if voice == "" {
		voice = c.cfg.ttsVoice
	}
	model := c.cfg.ttsModel
	params := &speechRequest{Input: text, Model: model, Voice: voice, ResponseFormat: format,
		Instructions: paramString(req.Params, "instructions")}
	if params.Instructions == "" {
		params.Instructions = c.cfg.ttsInstructions
	}
	speed, ok, err := paramFloat(req.Params, "speed")
	if err != nil {
		return nil, fmt.Errorf("openai TEXT_TO_SPEECH: %w: %w", err, sdk.ErrInvalid)
	}
	if ok {
		params.Speed = &speed
	}
	start := time.Now()
	rec := callRecord{modelType: sdk.ModelTextToSpeech, model: model}
	var data []byte
	rec.attempts, err = c.retry.do(ctx, a.Logger(ctx), sdk.ModelTextToSpeech+" "+model, func(int) error {
		res, err := c.api.speak(ctx, params)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		b, err := readAll(res.Body, maxSpeechBytes, "speech")
		if err != nil {
			return err
		}
		if len(b) == 0 {
			return badResponse("the server answered with no audio")
		}
		if t := res.Header.Get("Content-Type"); strings.HasPrefix(t, "audio/") {
			ctype = t
		}
		data = b
		return nil
	})
	if err == nil {
		n := estimateUsage(model, text, "").PromptTokens
		rec.usage, rec.estimated = sdk.Usage{PromptTokens: n, TotalTokens: n}, true
	}
	p.finish(ctx, a, c, req, rec, start, err)
	if err != nil {
		return nil, fmt.Errorf("openai TEXT_TO_SPEECH (%s): %w", model, err)
	}
	return &sdk.ModelResponse{Data: data, ContentType: ctype, Model: model, Usage: rec.usage}, nil
}
