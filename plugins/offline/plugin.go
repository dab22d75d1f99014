package offline

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

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

// engine is shared by every agent and call; it holds no conversation
// state. It is built at its first use: every process of agenthost runs the
// same executable, and only the one serving this plugin needs it.
var engine = sync.OnceValue(NewEngine)

// New returns the plugin.
func New() sdk.Plugin {
	return sdk.Plugin{
		Name:    "offline",
		Version: Version,
		Description: "A model provider that needs no network and no key: an ELIZA-style " +
			"rule engine for text and hashed bag-of-words embeddings.",
		Aliases: []string{"eliza-offline"},
		// The agent's actions are read again when it is configured again.
		Configure: func(ctx context.Context, a *sdk.Agent) ([]string, error) {
			forgetActions(ctx, a)
			return nil, nil
		},
		Unconfigure: forgetActions,
		Settings: []sdk.Setting{{
			Name:        SettingEmbeddingDimensions,
			Description: "Length of TEXT_EMBEDDING vectors (8 to 4096).",
			Default:     strconv.Itoa(DefaultEmbeddingDimensions),
		}},
		Models: []sdk.Model{
			{Type: sdk.ModelTextSmall, Priority: 0, Handler: handleText},
			{Type: sdk.ModelTextLarge, Priority: 0, Handler: handleText},
			{Type: sdk.ModelObjectSmall, Priority: 0, Handler: handleObject},
			{Type: sdk.ModelObjectLarge, Priority: 0, Handler: handleObject},
			{Type: sdk.ModelTextEmbedding, Priority: 0, Handler: handleEmbedding},
			{Type: sdk.ModelTokenizerEncode, Priority: 0, Handler: handleEncode},
			{Type: sdk.ModelTokenizerDecode, Priority: 0, Handler: handleDecode},
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
		name := agentName(p, a)
		text = "<response><name>" + escapeXML(name) + "</name>" +
			"<reasoning>The offline model cannot judge relevance, so it always answers.</reasoning>" +
			"<action>RESPOND</action></response>"
	case p.wantsXML:
		actions := []string{"REPLY"}
		if len(p.actions) > 0 {
			actions = chooseActions(p.actions, actionSimiles(ctx, a), p.input)
		}
		text = xmlAnswer(p, engine().respond(p.history, p.input), agentName(p, a), actions)
	case p.wantsDecision:
		// A yes/no confirmation before a change of room state: the
		// offline model cannot tell, and a wrong YES would mute or
		// follow a room on a guess.
		text = "<decision>NO</decision>"
	default:
		text = engine().Reply(p.history, p.input)
	}
	return &sdk.ModelResponse{
		Text:  text,
		Model: modelName,
		Usage: usage(req.System+"\n"+req.Prompt, text),
	}, nil
}

// agentName is the name from "# Agent:", else the character's, else
// "agent".
func agentName(p promptInfo, a *sdk.Agent) string {
	name := p.agent
	if name == "" && a != nil && a.Character != nil {
		name = a.Character.Name
	}
	if name == "" {
		name = "agent"
	}
	return name
}

// defaultResponseTags are the fields of the message handler's answer, used
// when a prompt asks for <response> without listing its fields.
var defaultResponseTags = []string{"thought", "actions", "providers", "text"}

// xmlAnswer fills in the fields the prompt's <response> template asks for,
// in its order: what the engine says for the reply fields, its reason for
// the thought fields, the chosen actions (see chooseActions) for actions,
// the received message as an image prompt, and nothing for fields the
// engine cannot know (facts, relationships, extracted values), which parse
// as empty.
func xmlAnswer(p promptInfo, r reply, name string, actions []string) string {
	tags := p.responseTags
	if len(tags) == 0 {
		tags = defaultResponseTags
	}
	var b strings.Builder
	b.WriteString("<response>")
	for _, tag := range tags {
		var v string
		switch strings.ToLower(tag) {
		case "thought", "reasoning":
			v = thought(r)
		case "text", "message", "reply":
			v = r.text
		case "actions":
			v = strings.Join(actions, ",")
		case "action":
			v = "REPLY"
		case "name":
			v = name
		case "prompt":
			v = p.input
		}
		b.WriteString("<" + tag + ">" + escapeXML(v) + "</" + tag + ">")
	}
	b.WriteString("</response>")
	return b.String()
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
	n, err := strconv.Atoi(strings.TrimSpace(a.Setting(SettingEmbeddingDimensions)))
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
