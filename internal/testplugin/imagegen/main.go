// Command imagegen is a test plugin: an IMAGE model that "draws" by
// returning a data URL naming the prompt, and an IMAGE_DESCRIPTION model
// that describes any image by its URL. With it an agent has an image
// model, and bootstrap offers GENERATE_IMAGE.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/agenthost/agenthost/sdk"
)

func main() {
	sdk.Serve(sdk.Plugin{
		Name:    "imagegen",
		Version: "0.0.1",
		Models: []sdk.Model{
			{Type: sdk.ModelImage, Handler: draw},
			{Type: sdk.ModelImageDescribe, Handler: describe},
		},
	})
}

func draw(ctx context.Context, a *sdk.Agent, req *sdk.ModelRequest) (*sdk.ModelResponse, error) {
	prompt, _ := req.Params["prompt"].(string)
	if prompt == "" {
		return nil, fmt.Errorf("IMAGE: no prompt: %w", sdk.ErrInvalid)
	}
	url := "data:text/plain;base64," + base64.StdEncoding.EncodeToString([]byte("image of: "+prompt))
	b, _ := json.Marshal([]map[string]string{{"url": url}})
	return &sdk.ModelResponse{JSON: b, Model: "imagegen"}, nil
}

func describe(ctx context.Context, a *sdk.Agent, req *sdk.ModelRequest) (*sdk.ModelResponse, error) {
	url, _ := req.Params["imageUrl"].(string)
	b, _ := json.Marshal(map[string]string{"title": "A test picture", "description": "a picture found at " + url})
	return &sdk.ModelResponse{JSON: b, Model: "imagegen"}, nil
}
