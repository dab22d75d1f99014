package bootstrap

import (
	"reflect"
	"testing"

	"github.com/agenthost/agenthost/sdk"
)

func TestParseResponse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want response
		kind answerKind
	}{
		{"full", `<response><thought>hm</thought><actions>REPLY, SEND_MESSAGE</actions><providers>FACTS</providers><text>Hi &amp; bye</text></response>`,
			response{Thought: "hm", Actions: []string{"REPLY", "SEND_MESSAGE"}, Providers: []string{"FACTS"}, Text: "Hi & bye"}, answerXML},
		{"fenced with prose around", "Sure!\n```xml\n<response>\n <actions>REPLY</actions>\n <text>ok</text>\n</response>\n```",
			response{Actions: []string{"REPLY"}, Text: "ok"}, answerXML},
		{"no wrapper", `<thought>t</thought><actions>IGNORE</actions>`,
			response{Thought: "t", Actions: []string{"IGNORE"}}, answerXML},
		{"plain text is a reply", "Just a plain answer: yes.",
			response{Text: "Just a plain answer: yes.", Actions: []string{"REPLY"}}, answerPlain},
		{"broken markup", `<response><thought>only a thought`, response{}, answerBroken},
		{"thought only", `<response><thought>thinking</thought></response>`, response{Thought: "thinking"}, answerBroken},
		{"empty", "   ", response{}, answerEmpty},
		{"self-closing providers", `<response><actions>REPLY</actions><providers/><text>x</text></response>`,
			response{Actions: []string{"REPLY"}, Text: "x"}, answerXML},
		{"text with angle brackets", `<response><actions>REPLY</actions><text>use a < b and c > d</text></response>`,
			response{Actions: []string{"REPLY"}, Text: "use a < b and c > d"}, answerXML},
		{"first block wins", `<response><text>one</text></response><response><text>two</text></response>`,
			response{Text: "one"}, answerXML},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, kind := parseResponse(tt.in)
			if kind != tt.kind {
				t.Fatalf("kind = %v, want %v", kind, tt.kind)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// Action lists must not break on commas inside an action's parameters, and
// names match whatever their case.
func TestSplitActions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []string
	}{
		{"REPLY, SEND_MESSAGE", []string{"REPLY", "SEND_MESSAGE"}},
		{`REPLY, SEND_MESSAGE(to: "Ann, Bob", text: "hi, there"), MUTE_ROOM`, []string{"REPLY", "SEND_MESSAGE", "MUTE_ROOM"}},
		{"REPLY\nSEND_MESSAGE {\"to\": \"a,b\"}", []string{"REPLY", "SEND_MESSAGE"}},
		{"- reply\n- follow room", []string{"reply", "follow room"}},
		{"1. REPLY\n2. NONE", []string{"REPLY", "NONE"}},
		{"REPLY, reply, Reply", []string{"REPLY"}},
		{"`REPLY`; 'IGNORE'", []string{"REPLY", "IGNORE"}},
		{"SEND_MESSAGE: to Ann, then REPLY", []string{"SEND_MESSAGE", "then REPLY"}},
	}
	for _, tt := range tests {
		n := parseXML("<response><actions>" + tt.in + "</actions></response>")
		got := splitActions(n.child("actions"))
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitActions(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	n := parseXML(`<response><actions><action>REPLY</action><action><name>SEND_MESSAGE</name><params>a, b</params></action></actions></response>`)
	if got := splitActions(n.child("actions")); !reflect.DeepEqual(got, []string{"REPLY", "SEND_MESSAGE"}) {
		t.Errorf("nested actions = %q", got)
	}
}

func TestCanonicalActions(t *testing.T) {
	t.Parallel()
	info := &sdk.AgentInfo{Plugins: []sdk.PluginInfo{{Name: "bootstrap", Actions: []sdk.ActionInfo{
		{Name: "REPLY", Similes: []string{"RESPOND"}}, {Name: "SEND_MESSAGE", Similes: []string{"DM"}},
		{Name: "IGNORE"}, {Name: "MUTE_ROOM"},
	}}}}
	got := canonicalActions(info, []string{"reply", "Send Message", "dm", "then MUTE_ROOM", "UNKNOWN_THING", "Respond"})
	want := []string{"REPLY", "SEND_MESSAGE", "MUTE_ROOM", "UNKNOWN_THING"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("canonicalActions = %q, want %q", got, want)
	}
}

func TestNormalizeIgnore(t *testing.T) {
	t.Parallel()
	if got := normalizeIgnore([]string{"REPLY", "IGNORE"}, ""); !reflect.DeepEqual(got, []string{"IGNORE"}) {
		t.Errorf("no text: %q", got)
	}
	if got := normalizeIgnore([]string{"IGNORE", "MUTE_ROOM"}, "bye"); !reflect.DeepEqual(got, []string{"MUTE_ROOM"}) {
		t.Errorf("with text: %q", got)
	}
	if got := normalizeIgnore([]string{"IGNORE"}, "x"); !reflect.DeepEqual(got, []string{"IGNORE"}) {
		t.Errorf("alone: %q", got)
	}
}

func TestShouldRespondDecision(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want bool
	}{
		{`<response><name>Eliza</name><reasoning>asked</reasoning><action>RESPOND</action></response>`, true},
		{`<response><action>REPLY</action></response>`, true}, // elizaOS missed this one (issue 4921)
		{`<response><action>IGNORE</action></response>`, false},
		{`<response><action>STOP</action></response>`, false}, // elizaOS answered anyway
		{`<response><action>NONE</action></response>`, false},
		{"RESPOND", true},
		{"I think I should IGNORE this.", false},
		{"no idea", false},
		{"", false},
	}
	for _, tt := range tests {
		if got, _ := shouldRespondDecision(tt.in); got != tt.want {
			t.Errorf("shouldRespondDecision(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestParseYesNo(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bool{
		"YES": true, "yes.": true, "<decision>YES</decision>": true, "<response><decision>no</decision></response>": false,
		"No, not now": false, "maybe": false, "True": true, "": false,
	} {
		if got := parseYesNo(in); got != want {
			t.Errorf("parseYesNo(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestParseNested(t *testing.T) {
	t.Parallel()
	n := parseXML(`<response><thought>t</thought><facts><fact><claim>Ann likes tea</claim><type>fact</type><in_bio>false</in_bio></fact><fact><claim>Bob, a cook</claim></fact></facts><relationships><relationship><sourceEntityId>a</sourceEntityId><targetEntityId>b</targetEntityId><tags>friend, colleague</tags></relationship></relationships></response>`)
	facts := n.child("facts").all("fact")
	if len(facts) != 2 || facts[0].get("claim") != "Ann likes tea" || facts[1].get("claim") != "Bob, a cook" {
		t.Fatalf("facts = %+v", facts)
	}
	rels := n.child("relationships").all("relationship")
	if len(rels) != 1 || rels[0].get("targetEntityId") != "b" || !reflect.DeepEqual(splitList(rels[0].get("tags")), []string{"friend", "colleague"}) {
		t.Fatalf("relationships = %+v", rels)
	}
}

func TestMentions(t *testing.T) {
	t.Parallel()
	a := &sdk.Agent{ID: "x", Character: &sdk.Character{Name: "Eli", Username: "eli_bot"}}
	for text, want := range map[string]bool{
		"hey Eli, you there?": true, "@eli_bot help": true, "Elisabeth is here": false, "ELI!": true, "deli": false,
	} {
		if got := mentions(a, text); got != want {
			t.Errorf("mentions(%q) = %v, want %v", text, got, want)
		}
	}
}

func TestBypass(t *testing.T) {
	t.Parallel()
	a := &sdk.Agent{ID: "x", Settings: map[string]string{SettingBypassTypes: "[GROUP]", SettingBypassSources: "discord"}}
	plain := &sdk.Agent{ID: "x", Settings: map[string]string{}}
	cases := []struct {
		a    *sdk.Agent
		typ  sdk.ChannelType
		src  string
		want bool
	}{
		{plain, sdk.ChannelDM, "telegram", true},
		{plain, sdk.ChannelSelf, "x", true},
		{plain, sdk.ChannelGroup, "api", true},
		{plain, sdk.ChannelGroup, "client_chat", true},
		{plain, sdk.ChannelGroup, "telegram", false},
		{a, sdk.ChannelGroup, "telegram", true},
		{a, sdk.ChannelThread, "discord", true},
	}
	for _, c := range cases {
		if got := bypass(c.a, c.typ, c.src); got != c.want {
			t.Errorf("bypass(%s, %s) = %v, want %v", c.typ, c.src, got, c.want)
		}
	}
}

func TestPickOption(t *testing.T) {
	t.Parallel()
	tasks := []Task{
		{ID: "aaaa1111-0000-0000-0000-000000000000", Metadata: map[string]any{"options": []any{map[string]any{"name": "blue"}, "red"}}},
		{ID: "bbbb2222-0000-0000-0000-000000000000", Metadata: map[string]any{"options": []any{"green"}}},
	}
	if task, opt := pickOption(tasks, "", "Green"); task == nil || task.ID[:4] != "bbbb" || opt != "green" {
		t.Errorf("by option: %v %q", task, opt)
	}
	if task, opt := pickOption(tasks, "aaaa1111", "RED"); task == nil || opt != "red" {
		t.Errorf("by id: %v %q", task, opt)
	}
	if task, _ := pickOption(tasks, "bbbb2222", "red"); task != nil {
		t.Errorf("option of another task was accepted")
	}
	if _, opt := pickOption(tasks, "aaaa", "abort"); opt != "ABORT" {
		t.Errorf("abort: %q", opt)
	}
}

func TestCanModifyRole(t *testing.T) {
	t.Parallel()
	cases := []struct {
		cur, target, nw string
		want            bool
	}{
		{RoleOwner, RoleNone, RoleAdmin, true},
		{RoleOwner, RoleOwner, RoleNone, false},
		{RoleAdmin, RoleNone, RoleAdmin, true},
		{RoleAdmin, RoleNone, RoleOwner, false},
		{RoleAdmin, RoleAdmin, RoleNone, false},
		{RoleNone, RoleNone, RoleAdmin, false},
	}
	for _, c := range cases {
		if got := canModifyRole(c.cur, c.target, c.nw); got != c.want {
			t.Errorf("canModifyRole(%s, %s, %s) = %v", c.cur, c.target, c.nw, got)
		}
	}
}
