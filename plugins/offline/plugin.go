package offline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/agenthost/agenthost/sdk"
)

// Version is the plugin's version.
const Version = "0.1.0"

// SettingEmbeddingDimensions sets the length of the embedding vectors.
const SettingEmbeddingDimensions = "OFFLINE_EMBEDDING_DIMENSIONS"

// The range accepted for SettingEmbeddingDimensions; anything else falls
// back to the default rather than failing the agent, because a bad number
// here should not stop a model that exists to always work.
const (
	minEmbeddingDimensions = 8
	maxEmbeddingDimensions = 4096
)

// modelName is reported in every response, so logs show which answers came
// from the rule engine rather than a language model.
const modelName = "eliza"

// engine is shared by every agent and call; it holds no conversation state.
var engine = NewEngine()

// New returns the plugin.
func New() sdk.Plugin {
	return sdk.Plugin{
		Name:    "offline",
		Version: Version,
		Description: "A model provider that needs no network and no key: an ELIZA-style " +
			"rule engine for text and hashed bag-of-words embeddings.",
		Aliases: []string{"eliza-offline"},
		Settings: []sdk.Setting{{
			Name:        SettingEmbeddingDimensions,
			Description: "Length of TEXT_EMBEDDING vectors (8 to 4096).",
			Default:     strconv.Itoa(DefaultEmbeddingDimensions),
		}},
		Models: []sdk.Model{
			{Type: sdk.ModelTextSmall, Priority: 0, Handler: handleText},
			{Type: sdk.ModelTextLarge, Priority: 0, Handler: handleText},
			{Type: sdk.ModelTextEmbedding, Priority: 0, Handler: handleEmbedding},
		},
	}
}

var errNoRequest = errors.New("offline: nil model request")

// handleText serves TEXT_SMALL and TEXT_LARGE. a may be nil.
func handleText(ctx context.Context, a *sdk.Agent, req *sdk.ModelRequest) (*sdk.ModelResponse, error) {
	if req == nil {
		return nil, errNoRequest
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p := readPrompt(req.Prompt)
	var text string
	switch {
	case p.shouldRespondQ:
		// The bootstrap plugin asks this in group rooms. An offline model
		// cannot judge relevance, and staying silent would look broken, so
		// it always takes part.
		name := p.agent
		if name == "" && a != nil && a.Character != nil {
			name = a.Character.Name
		}
		if name == "" {
			name = "agent"
		}
		text = "<response><name>" + escapeXML(name) + "</name>" +
			"<reasoning>The offline model cannot judge relevance, so it always answers.</reasoning>" +
			"<action>RESPOND</action></response>"
	case p.wantsXML:
		r := engine.respond(p.history, p.input)
		text = "<response><thought>" + escapeXML(thought(r)) + "</thought>" +
			"<actions>REPLY</actions><providers></providers>" +
			"<text>" + escapeXML(r.text) + "</text></response>"
	default:
		text = engine.Reply(p.history, p.input)
	}
	return &sdk.ModelResponse{
		Text:  text,
		Model: modelName,
		Usage: usage(req.System+"\n"+req.Prompt, text),
	}, nil
}

// handleEmbedding serves TEXT_EMBEDDING. a may be nil.
func handleEmbedding(ctx context.Context, a *sdk.Agent, req *sdk.ModelRequest) (*sdk.ModelResponse, error) {
	if req == nil {
		return nil, errNoRequest
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dim := embeddingDimensions(a)
	text := req.Text
	if req.Probe {
		// A probe only learns the dimension; the zero vector says so
		// without pretending to mean anything.
		text = ""
	}
	return &sdk.ModelResponse{
		Embedding: Embed(text, dim),
		Model:     fmt.Sprintf("hashed-bow-%d", dim),
		Usage:     usage(text, ""),
	}, nil
}

func embeddingDimensions(a *sdk.Agent) int {
	if a == nil {
		return DefaultEmbeddingDimensions
	}
	n, err := strconv.Atoi(strings.TrimSpace(a.Settings[SettingEmbeddingDimensions]))
	if err != nil || n < minEmbeddingDimensions || n > maxEmbeddingDimensions {
		return DefaultEmbeddingDimensions
	}
	return n
}

// thought says in one sentence why the engine answered as it did, so that
// the run log of an offline agent reads like a model's.
func thought(r reply) string {
	switch r.kind {
	case kindRule:
		return "The message touches on " + r.topic + "; reflect it back and invite them to say more."
	case kindMemory:
		return "Nothing new stood out, so return to something they said earlier."
	case kindRepeat:
		return "They repeated themselves; ask why it stays on their mind."
	case kindEmpty:
		return "They said nothing; give them room to start."
	}
	return "No keyword stood out; encourage them to keep talking."
}

var xmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func escapeXML(s string) string { return xmlEscaper.Replace(s) }

// usage counts words, which is close enough to tokens for the run log and
// costs nothing.
func usage(prompt, completion string) sdk.Usage {
	p, c := len(strings.Fields(prompt)), len(strings.Fields(completion))
	return sdk.Usage{PromptTokens: p, CompletionTokens: c, TotalTokens: p + c}
}
