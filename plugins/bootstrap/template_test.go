package bootstrap

import (
	"regexp"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/sdk"
)

func TestRenderTemplate(t *testing.T) {
	t.Parallel()
	values := map[string]any{
		"agentName": "Eliza", "empty": "", "zero": 0.0, "list": []any{"a", "b"}, "none": []any{},
		"people": []any{map[string]any{"name": "Ann", "age": 30.0}, map[string]any{"name": "Bob"}},
		"nested": map[string]any{"inner": map[string]any{"x": "deep"}},
		"flag":   true, "html": "<b>&</b>", "n": 2.5,
	}
	tests := []struct{ tpl, want string }{
		{"Hi {{agentName}}!", "Hi Eliza!"},
		{"{{{agentName}}} and {{ agentName }}", "Eliza and Eliza"},
		{"[{{missing}}]", "[]"},
		{"{{html}}", "<b>&</b>"}, // no HTML escaping, as elizaOS upgrades {{ to {{{
		{"{{nested.inner.x}}", "deep"},
		{"{{#if flag}}yes{{else}}no{{/if}}", "yes"},
		{"{{#if empty}}yes{{else}}no{{/if}}", "no"},
		{"{{#if zero}}yes{{else}}no{{/if}}", "no"},
		{"{{#if none}}yes{{else}}no{{/if}}", "no"},
		{"{{#unless empty}}shown{{/unless}}", "shown"},
		{"{{#each list}}{{@index}}={{this}} {{/each}}", "0=a 1=b "},
		{"{{#each people}}{{name}}{{#if age}} ({{age}}){{/if}}{{#unless @last}}, {{/unless}}{{/each}}", "Ann (30), Bob"},
		{"{{#each people}}{{name}} of {{../agentName}};{{/each}}", "Ann of Eliza;Bob of Eliza;"},
		{"{{#each none}}x{{else}}empty{{/each}}", "empty"},
		{"{{list}}", "a,b"},
		{"{{n}}", "2.5"},
		{"a {{! a comment }}b{{!-- another --}}", "a b"},
		{"a   {{~agentName~}}   b", "aElizab"},
		{"{{#if flag}}unclosed", "unclosed"},
		{"stray {{/if}}end", "stray end"},
	}
	for _, tt := range tests {
		if got := renderTemplate(tt.tpl, values); got != tt.want {
			t.Errorf("render(%q) = %q, want %q", tt.tpl, got, tt.want)
		}
	}
}

// {{nameN}} left in the output (from examples in provider text) become
// random names: the same number the same name.
func TestRandomNames(t *testing.T) {
	t.Parallel()
	out := renderTemplate("{{examples}}", map[string]any{"examples": "{{name1}}: hi\n{{name2}}: yo\n{{name1}}: bye"})
	if strings.Contains(out, "{{") {
		t.Fatalf("placeholders left: %q", out)
	}
	lines := strings.Split(out, "\n")
	n1 := strings.SplitN(lines[0], ":", 2)[0]
	n2 := strings.SplitN(lines[1], ":", 2)[0]
	if n1 != strings.SplitN(lines[2], ":", 2)[0] || n1 == n2 {
		t.Errorf("names = %q", out)
	}
}

// The default templates follow the offline model's conventions: the main
// prompt wants XML and must never look like the should-respond question
// (RESPOND, IGNORE and STOP all present), which only the should-respond
// prompt does.
func TestTemplatesOfflineCompatible(t *testing.T) {
	t.Parallel()
	a := &sdk.Agent{ID: "x", Character: &sdk.Character{Name: "Eliza"}}
	isShouldRespond := func(p string) bool {
		return strings.Contains(p, "RESPOND") && strings.Contains(p, "IGNORE") && strings.Contains(p, "STOP")
	}
	st := &sdk.State{Text: "# Conversation Messages\nAnn: hi\n\n# Received Message\nAnn: hi", Values: map[string]any{"actionNames": "REPLY, IGNORE, NONE, MUTE_ROOM"}}
	main := renderPrompt(a, "messageHandlerTemplate", st, nil)
	if !strings.HasPrefix(main, "# Agent: Eliza\n") || !strings.Contains(main, "<response>") || isShouldRespond(main) {
		t.Errorf("main prompt breaks the offline conventions:\n%s", main)
	}
	if !regexp.MustCompile(`# Received Message\nAnn: hi\n\n# Instructions`).MatchString(main) {
		t.Errorf("the received message must be followed by a heading:\n%s", main)
	}
	sr := renderPrompt(a, "shouldRespondTemplate", st, nil)
	if !isShouldRespond(sr) {
		t.Errorf("should-respond prompt must name RESPOND, IGNORE and STOP:\n%s", sr)
	}
	for name := range defaultTemplates {
		if name == "shouldRespondTemplate" {
			continue
		}
		if p := renderPrompt(a, name, st, nil); isShouldRespond(p) {
			t.Errorf("%s looks like the should-respond question to the offline model", name)
		}
	}
	// A character's template wins.
	a.Character.Templates = map[string]string{"messageHandlerTemplate": "custom {{agentName}}"}
	if got := renderPrompt(a, "messageHandlerTemplate", st, nil); got != "custom Eliza" {
		t.Errorf("override = %q", got)
	}
}
