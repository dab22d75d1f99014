package offline

import (
	"context"
	"encoding/xml"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/sdk"
)

func TestNew(t *testing.T) {
	p := New()
	if p.Name != "offline" || p.Version != "0.1.0" || p.Description == "" {
		t.Errorf("manifest = %q %q %q", p.Name, p.Version, p.Description)
	}
	if len(p.Aliases) != 1 || p.Aliases[0] != "eliza-offline" {
		t.Errorf("aliases = %q", p.Aliases)
	}
	types := map[string]bool{}
	for _, m := range p.Models {
		if m.Handler == nil || m.Priority != 0 {
			t.Errorf("model %s: handler %v, priority %d", m.Type, m.Handler != nil, m.Priority)
		}
		types[m.Type] = true
	}
	for _, want := range []string{sdk.ModelTextSmall, sdk.ModelTextLarge, sdk.ModelTextEmbedding} {
		if !types[want] {
			t.Errorf("model %s not served", want)
		}
	}
}

const xmlPrompt = `# Agent: Eliza
# Conversation Messages
Ada: Hello
Eliza: Hello. What would you like to talk about today?

# Received Message
Ada: I am sad about my job & <my> boss

Answer in this format:
<response>
<thought>your thought</thought>
<actions>REPLY</actions>
<providers></providers>
<text>your reply</text>
</response>`

func TestHandleTextXML(t *testing.T) {
	for _, typ := range []string{sdk.ModelTextSmall, sdk.ModelTextLarge} {
		res, err := handleText(context.Background(), nil, &sdk.ModelRequest{Type: typ, Prompt: xmlPrompt})
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Thought   string `xml:"thought"`
			Actions   string `xml:"actions"`
			Providers string `xml:"providers"`
			Text      string `xml:"text"`
		}
		if err := xml.Unmarshal([]byte(res.Text), &got); err != nil {
			t.Fatalf("%s: reply %q is not XML: %v", typ, res.Text, err)
		}
		if got.Actions != "REPLY" || got.Thought == "" || got.Providers != "" {
			t.Errorf("%s: parsed %+v", typ, got)
		}
		if !strings.Contains(got.Text, "your job") {
			t.Errorf("%s: text %q, want the reply to the received message", typ, got.Text)
		}
		if !strings.Contains(got.Text, "your job and your boss") {
			t.Errorf("%s: text %q, want & spelled out", typ, got.Text)
		}
		if res.Model != "eliza" || res.Usage.PromptTokens == 0 || res.Usage.CompletionTokens == 0 ||
			res.Usage.TotalTokens != res.Usage.PromptTokens+res.Usage.CompletionTokens {
			t.Errorf("%s: model %q usage %+v", typ, res.Model, res.Usage)
		}
	}
}

func TestHandleTextPlain(t *testing.T) {
	prompt := "# Conversation Messages\nAda: hello\nAda: My mother hates me"
	res, err := handleText(context.Background(), nil, &sdk.ModelRequest{Type: sdk.ModelTextLarge, Prompt: prompt})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(res.Text, "<") {
		t.Errorf("plain prompt got markup: %q", res.Text)
	}
	if want := NewEngine().Reply([]string{"hello"}, "My mother hates me"); res.Text != want {
		t.Errorf("text = %q, want %q", res.Text, want)
	}
}

func TestHandleTextShouldRespond(t *testing.T) {
	prompt := "# Agent: Eliza & Co\n# Conversation Messages\nAda: hi all\n\n" +
		"Decide: RESPOND, IGNORE or STOP.\n<response><name>..</name><reasoning>..</reasoning><action>..</action></response>"
	res, err := handleText(context.Background(), nil, &sdk.ModelRequest{Type: sdk.ModelTextSmall, Prompt: prompt})
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Name      string `xml:"name"`
		Reasoning string `xml:"reasoning"`
		Action    string `xml:"action"`
	}
	if err := xml.Unmarshal([]byte(res.Text), &got); err != nil {
		t.Fatalf("%q: %v", res.Text, err)
	}
	if got.Name != "Eliza & Co" || got.Action != "RESPOND" || got.Reasoning == "" {
		t.Errorf("parsed %+v", got)
	}

	// Without "# Agent:", the character's name, then "agent".
	prompt = "RESPOND IGNORE STOP <response>"
	a := &sdk.Agent{Character: &sdk.Character{Name: "Ada"}}
	for agent, want := range map[*sdk.Agent]string{nil: "agent", a: "Ada"} {
		res, err := handleText(context.Background(), agent, &sdk.ModelRequest{Prompt: prompt})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(res.Text, "<name>"+want+"</name>") {
			t.Errorf("reply %q, want name %q", res.Text, want)
		}
	}
}

func TestHandleTextErrors(t *testing.T) {
	if _, err := handleText(context.Background(), nil, nil); err == nil {
		t.Error("nil request: no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := handleText(ctx, nil, &sdk.ModelRequest{Prompt: "hi"}); err == nil {
		t.Error("cancelled context: no error")
	}
	res, err := handleText(context.Background(), nil, &sdk.ModelRequest{})
	if err != nil || res.Text == "" {
		t.Errorf("empty prompt: %v, %q", err, res.Text)
	}
}

func TestHandleEmbedding(t *testing.T) {
	ctx := context.Background()
	res, err := handleEmbedding(ctx, nil, &sdk.ModelRequest{Type: sdk.ModelTextEmbedding, Text: "hello world"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Embedding) != DefaultEmbeddingDimensions {
		t.Errorf("len = %d", len(res.Embedding))
	}
	want := Embed("hello world", DefaultEmbeddingDimensions)
	for i := range want {
		if res.Embedding[i] != want[i] {
			t.Fatalf("component %d = %v, want %v", i, res.Embedding[i], want[i])
		}
	}

	for setting, dim := range map[string]int{"64": 64, " 1024 ": 1024, "8": 8, "4096": 4096,
		"7": 384, "4097": 384, "lots": 384, "": 384} {
		a := &sdk.Agent{Settings: map[string]string{SettingEmbeddingDimensions: setting}}
		res, err := handleEmbedding(ctx, a, &sdk.ModelRequest{Text: "hello"})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Embedding) != dim {
			t.Errorf("setting %q: len %d, want %d", setting, len(res.Embedding), dim)
		}
	}

	a := &sdk.Agent{Settings: map[string]string{SettingEmbeddingDimensions: "32"}}
	res, err = handleEmbedding(ctx, a, &sdk.ModelRequest{Probe: true, Text: "ignored"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Embedding) != 32 {
		t.Errorf("probe len = %d, want 32", len(res.Embedding))
	}
	for _, x := range res.Embedding {
		if x != 0 {
			t.Fatalf("probe vector not zero: %v", res.Embedding)
		}
	}
	if _, err := handleEmbedding(ctx, nil, nil); err == nil {
		t.Error("nil request: no error")
	}
}

func TestEscapeXML(t *testing.T) {
	if got, want := escapeXML(`a & b <c> "d"`), `a &amp; b &lt;c&gt; "d"`; got != want {
		t.Errorf("escapeXML = %q, want %q", got, want)
	}
}

// The handlers are registered as sdk.Model handlers; this keeps their
// signature in step with the SDK.
var _ = sdk.Model{Handler: handleText}
var _ = sdk.Model{Handler: handleEmbedding}

// actionsPrompt is a message handler prompt as bootstrap writes it, with
// the actions it offers.
func actionsPrompt(received string) string {
	return `# Agent: Eliza
# Available Actions
- REPLY: Answer the message.
- WAVE: Wave at the user.
- SEND_MESSAGE: Send a message to another room.
  It names the room.
- IGNORE: Stay silent.

# Action Examples
Ann: hi (actions: REPLY)

# Received Message
Ada: ` + received + `

<response>
<thought>…</thought>
<actions>REPLY</actions>
<providers></providers>
<text>…</text>
</response>`
}

func TestHandleTextChoosesNamedActions(t *testing.T) {
	for _, c := range []struct {
		msg  string
		want string
	}{
		{"wave at me", "REPLY,WAVE"},
		{"Could you WAVE?", "REPLY,WAVE"},
		{"she was waving at me", "REPLY,WAVE"},
		{"send message to bob and wave", "REPLY,SEND_MESSAGE,WAVE"},
		{"wave, then send message", "REPLY,WAVE,SEND_MESSAGE"},
		{"please reply", "REPLY"},
		{"I feel a wavelength of sadness", "REPLY"},
		{"send a message", "REPLY"},
		{"hello there", "REPLY"},
	} {
		for i := 0; i < 2; i++ { // the same request, the same answer
			res, err := handleText(context.Background(), nil, &sdk.ModelRequest{Type: sdk.ModelTextLarge, Prompt: actionsPrompt(c.msg)})
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				Actions string `xml:"actions"`
				Text    string `xml:"text"`
			}
			if err := xml.Unmarshal([]byte(res.Text), &got); err != nil {
				t.Fatalf("%q: %v", res.Text, err)
			}
			if got.Actions != c.want || got.Text == "" {
				t.Errorf("%q: actions %q text %q, want %q with a text", c.msg, got.Actions, got.Text, c.want)
			}
		}
	}
}

func TestChooseActionsBySimile(t *testing.T) {
	offered := []string{"REPLY", "WAVE", "MUTE_ROOM"}
	sims := map[string][]string{"WAVE": {"SAY_HELLO_WAVE", "GREET_WITH_HAND"}, "MUTE_ROOM": {"BE_QUIET"}}
	for msg, want := range map[string]string{
		"please greet with hand":       "REPLY,WAVE",
		"greet me with hand":           "REPLY",
		"be quiet":                     "REPLY,MUTE_ROOM",
		"be quiet and greet with hand": "REPLY,MUTE_ROOM,WAVE",
		"quiet please":                 "REPLY",
	} {
		if got := strings.Join(chooseActions(offered, sims, msg), ","); got != want {
			t.Errorf("%q: %s, want %s", msg, got, want)
		}
	}
	// An action the prompt does not offer is never chosen.
	if got := chooseActions([]string{"REPLY"}, sims, "wave at me"); len(got) != 1 {
		t.Errorf("chose %v from REPLY alone", got)
	}
}
