package openai

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/plugins/openai/openaitest"
	"github.com/agenthost/agenthost/sdk"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestImage(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.configure(e.settings(), nil)
	res := e.mustUse(sdk.ModelRequest{Type: sdk.ModelImage, Params: map[string]any{"prompt": "a red fox", "size": "512x512", "count": 2.0}})
	var images []struct {
		URL           string `json:"url"`
		RevisedPrompt string `json:"revisedPrompt"`
	}
	if err := json.Unmarshal(res.JSON, &images); err != nil {
		t.Fatalf("%s: %v", res.JSON, err)
	}
	if len(images) != 2 || !strings.HasSuffix(images[1].URL, "image-1-512x512.png") || images[0].RevisedPrompt != "A picture of a red fox" {
		t.Errorf("images = %+v", images)
	}
	body := e.srv.Requests("/images/generations")[0].JSON()
	if body["model"] != DefaultImageModel || body["n"] != 2.0 || body["size"] != "512x512" || body["prompt"] != "a red fox" {
		t.Errorf("request = %v", body)
	}

	e.srv.ImagesAsBase64 = true
	res = e.mustUse(sdk.ModelRequest{Type: sdk.ModelImage, Prompt: "a blue fox"})
	if err := json.Unmarshal(res.JSON, &images); err != nil || len(images) != 1 || !strings.HasPrefix(images[0].URL, "data:image/png;base64,iVBOR") {
		t.Errorf("inline image = %s", res.JSON)
	}
	if _, err := e.use(sdk.ModelRequest{Type: sdk.ModelImage}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("no prompt: %v", err)
	}
	e.events(2)
}

func TestImageDescription(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.configure(e.settings(), nil)
	e.srv.Reply = func(r *openaitest.ChatRequest) string {
		if len(r.ImageURLs) != 1 || r.ImageURLs[0] != "https://pictures.test/cat.jpg" {
			return "no image"
		}
		return `{"title": "A cat", "description": "A grey cat asleep on a mat."}`
	}
	res := e.mustUse(sdk.ModelRequest{Type: sdk.ModelImageDescribe, Params: map[string]any{"imageUrl": "https://pictures.test/cat.jpg"}})
	if string(res.JSON) != `{"description":"A grey cat asleep on a mat.","title":"A cat"}` || res.Text != "A grey cat asleep on a mat." {
		t.Errorf("description = %s / %q", res.JSON, res.Text)
	}
	body := e.srv.Requests("/chat/completions")[0].JSON()
	if body["model"] != DefaultImageDescriptionModel || body["max_tokens"] != float64(DefaultImageDescriptionMax) {
		t.Errorf("request = %v", body)
	}

	// A model that answers in prose still gives a title and a description;
	// the URL may come as the prompt, as elizaOS allows.
	e.srv.Reply = func(r *openaitest.ChatRequest) string { return "Title: A dog\nDescription: A dog in the rain." }
	res = e.mustUse(sdk.ModelRequest{Type: sdk.ModelImageDescribe, Prompt: "https://pictures.test/dog.jpg"})
	if string(res.JSON) != `{"description":"A dog in the rain.","title":"A dog"}` {
		t.Errorf("prose description = %s", res.JSON)
	}
	if _, err := e.use(sdk.ModelRequest{Type: sdk.ModelImageDescribe, Prompt: "describe something"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("no image: %v", err)
	}
}

func TestTranscription(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.configure(e.settings(), nil)
	audio := []byte("RIFF....WAVEfake audio bytes")
	res := e.mustUse(sdk.ModelRequest{Type: sdk.ModelTranscription, Params: map[string]any{
		"audio": base64.StdEncoding.EncodeToString(audio), "mimeType": "audio/wav", "language": "en"}})
	if res.Text != "Transcript of audio.wav (28 bytes) in en." {
		t.Errorf("text = %q", res.Text)
	}
	req := e.srv.Requests("/audio/transcriptions")[0]
	if !strings.HasPrefix(req.Header.Get("Content-Type"), "multipart/form-data") || !strings.Contains(string(req.Body), DefaultTranscriptionModel) {
		t.Errorf("request %s: %.300s", req.Header.Get("Content-Type"), req.Body)
	}

	// A data: URL, and an http URL the plugin fetches.
	res = e.mustUse(sdk.ModelRequest{Type: sdk.ModelTranscription, Params: map[string]any{
		"audioUrl": "data:audio/ogg;base64," + base64.StdEncoding.EncodeToString([]byte("OggS1234"))}})
	if res.Text != "Transcript of audio.ogg (8 bytes)." {
		t.Errorf("data URL: %q", res.Text)
	}
	media := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "audio/mpeg")
		_, _ = w.Write([]byte("ID3 mp3 bytes"))
	}))
	defer media.Close()
	res = e.mustUse(sdk.ModelRequest{Type: sdk.ModelTranscription, Prompt: media.URL + "/voice.mp3"})
	if res.Text != "Transcript of audio.mp3 (13 bytes)." {
		t.Errorf("fetched URL: %q", res.Text)
	}

	// A retried upload sends the whole file again.
	e.srv.FailNext("/audio/transcriptions", openaitest.Fault{Status: 503})
	res = e.mustUse(sdk.ModelRequest{Type: sdk.ModelTranscription, Params: map[string]any{"audio": base64.StdEncoding.EncodeToString(audio)}})
	if res.Text != "Transcript of audio.mp3 (28 bytes)." {
		t.Errorf("after a retry: %q", res.Text)
	}
	for _, bad := range []map[string]any{{}, {"audio": "%%%"}, {"audioUrl": "ftp://x/y"}} {
		if _, err := e.use(sdk.ModelRequest{Type: sdk.ModelTranscription, Params: bad}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%v: %v", bad, err)
		}
	}
}

func TestTextToSpeech(t *testing.T) {
	t.Parallel()
	e := start(t)
	e.configure(e.settings(SettingTTSInstructions, "Speak slowly."), nil)
	res := e.mustUse(sdk.ModelRequest{Type: sdk.ModelTextToSpeech, Text: "Hello there"})
	if string(res.Data) != "FAKE-MP3-AUDIO voice=nova: Hello there" || res.ContentType != "audio/mpeg" || res.Model != DefaultTTSModel {
		t.Errorf("speech = %q %q %q", res.Data, res.ContentType, res.Model)
	}
	body := e.srv.Requests("/audio/speech")[0].JSON()
	if body["instructions"] != "Speak slowly." || body["voice"] != "nova" || body["model"] != DefaultTTSModel {
		t.Errorf("request = %v", body)
	}
	res = e.mustUse(sdk.ModelRequest{Type: sdk.ModelTextToSpeech, Params: map[string]any{"text": "Bye", "voice": "alloy", "format": "wav", "speed": 1.5}})
	if string(res.Data) != "FAKE-WAV-AUDIO voice=alloy: Bye" || res.ContentType != "audio/wav" {
		t.Errorf("wav speech = %q %q", res.Data, res.ContentType)
	}
	if s := e.srv.Requests("/audio/speech")[1].JSON()["speed"]; s != 1.5 {
		t.Errorf("speed = %v", s)
	}
	for _, bad := range []sdk.ModelRequest{{Type: sdk.ModelTextToSpeech}, {Type: sdk.ModelTextToSpeech, Text: "x", Params: map[string]any{"format": "midi"}}} {
		if _, err := e.use(bad); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%+v: %v", bad, err)
		}
	}
}
