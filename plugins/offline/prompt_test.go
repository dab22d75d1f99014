package offline

import (
	"reflect"
	"testing"
)

func TestParsePrompt(t *testing.T) {
	for _, tc := range []struct {
		name        string
		prompt      string
		history     []string
		input       string
		xml, should bool
	}{
		{
			name: "full bootstrap prompt",
			prompt: `# Agent: Eliza
# About Eliza
A kind listener.

# Conversation Messages
Ada: Hello
Eliza: Hello. What would you like to talk about today?
Ada: I am sad about my job
Eliza: How long have you been sad about your job?
Ada: Since March.
It got worse in May.

# Received Message
Ada: My boss shouts at me

# Response format
Respond in XML:
<response><thought>...</thought><text>...</text></response>`,
			history: []string{"Hello", "I am sad about my job", "Since March.\nIt got worse in May."},
			input:   "My boss shouts at me",
			xml:     true,
		},
		{
			name: "received message repeated at the end of the conversation",
			prompt: `# Agent: Eliza
# Conversation Messages
Ada: Hello
Eliza: Hi there.
Ada: my dog died

# Received Message
Ada: my dog died`,
			history: []string{"Hello"},
			input:   "my dog died",
		},
		{
			name: "received message over several lines",
			prompt: `## received message
Bob: first line
second line: with a colon

# Instructions
Be brief.`,
			input: "first line\nsecond line: with a colon",
		},
		{
			name: "no agent line: every speaker is a user",
			prompt: `# Conversation Messages
Ada: one
Eliza: two
Ada: three`,
			history: []string{"one", "two"},
			input:   "three",
		},
		{
			name:   "plain last line with a speaker",
			prompt: "Some system text.\n\nUser: I feel lonely\n\n",
			input:  "I feel lonely",
		},
		{
			name:   "plain last line without a speaker",
			prompt: "I dreamt about trains",
			input:  "I dreamt about trains",
		},
		{
			name:   "a colon that is not a speaker",
			prompt: "note this:important",
			input:  "note this:important",
		},
		{
			name: "should respond",
			prompt: `# Agent: Eliza
# Task: decide whether Eliza should respond.
# Conversation Messages
Ada: Eliza, are you there?
Choose RESPOND, IGNORE or STOP.
<response><name>Eliza</name><reasoning>...</reasoning><action>RESPOND | IGNORE | STOP</action></response>`,
			input:  "Eliza, are you there?\nChoose RESPOND, IGNORE or STOP.\n<response><name>Eliza</name><reasoning>...</reasoning><action>RESPOND | IGNORE | STOP</action></response>",
			xml:    true,
			should: true,
		},
		{
			name:   "lower-case words are not the question",
			prompt: "Should I respond, ignore you or stop?",
			input:  "Should I respond, ignore you or stop?",
		},
		{
			name:   "empty",
			prompt: "",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, in, xml, should := parsePrompt(tc.prompt)
			if !reflect.DeepEqual(h, tc.history) {
				t.Errorf("history = %q, want %q", h, tc.history)
			}
			if in != tc.input {
				t.Errorf("input = %q, want %q", in, tc.input)
			}
			if xml != tc.xml || should != tc.should {
				t.Errorf("wantsXML, shouldRespond = %v, %v, want %v, %v", xml, should, tc.xml, tc.should)
			}
		})
	}
}

func TestReadPromptAgent(t *testing.T) {
	p := readPrompt("#   Agent:   Dr. Sbaitso  \n# Conversation Messages\nDR. SBAITSO: hi\nAda: hey")
	if p.agent != "Dr. Sbaitso" {
		t.Errorf("agent = %q", p.agent)
	}
	if len(p.history) != 0 || p.input != "hey" {
		t.Errorf("history %q, input %q: the agent's lines must not count", p.history, p.input)
	}
}
