package discord

import (
	"strings"
	"testing"

	"github.com/agenthost/agenthost/sdk"
)

func TestAPIBase(t *testing.T) {
	t.Parallel()
	cases := []struct{ root, want, warn string }{
		{"", "https://discord.com/api/v9/", ""},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080/api/v9/", ""},
		{"http://localhost:8080/", "http://localhost:8080/api/v9/", ""},
		{"https://proxy.internal/discord/api/v10", "https://proxy.internal/discord/api/v10/", ""},
		{"https://proxy.internal/api", "https://proxy.internal/api/v9/", ""},
		{"http://proxy.internal:8080", "http://proxy.internal:8080/api/v9/", "unencrypted"},
	}
	for _, c := range cases {
		got, warn, err := apiBase(c.root)
		if err != nil || got != c.want || (c.warn == "") != (warn == "") || !strings.Contains(warn, c.warn) {
			t.Errorf("apiBase(%q) = %q, %q, %v; want %q, %q", c.root, got, warn, err, c.want, c.warn)
		}
	}
	for _, bad := range []string{"discord.com", "ftp://x", "http://"} {
		if _, _, err := apiBase(bad); err == nil || !strings.Contains(err.Error(), SettingAPIRoot) {
			t.Errorf("apiBase(%q): want an error naming the setting, got %v", bad, err)
		}
	}
}

func TestConfigPrecedence(t *testing.T) {
	t.Parallel()
	ch := &sdk.Character{Name: "X", Settings: map[string]any{"discord": map[string]any{
		"shouldIgnoreBotMessages":     false,
		"shouldIgnoreDirectMessages":  "true",
		"shouldRespondOnlyToMentions": true,
		"allowedChannelIds":           []any{"111", "222", "not-an-id"},
	}}}
	a := &sdk.Agent{ID: testAgent, Character: ch, Settings: map[string]string{
		SettingToken: "Bot abc", SettingOnlyMentions: "false", SettingListenChannelIDs: "333, 444",
	}}
	c, warnings, err := parseConfig(a)
	if err != nil {
		t.Fatal(err)
	}
	if c.token != "abc" {
		t.Errorf("a token pasted with its Bot prefix: %q", c.token)
	}
	if c.ignoreBots || !c.ignoreDMs || c.onlyMentions {
		t.Errorf("the setting wins over the block, the block over the default: %+v", c)
	}
	if !c.allowed["111"] || !c.allowed["222"] || len(c.allowed) != 2 || !c.listen["333"] || !c.listen["444"] {
		t.Errorf("channels: allowed %v listen %v", c.allowed, c.listen)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "not-an-id") {
		t.Errorf("warnings: %v", warnings)
	}
	d, _, _ := parseConfig(&sdk.Agent{ID: testAgent, Settings: map[string]string{SettingIgnoreBots: "maybe"}})
	if !d.ignoreBots || d.ignoreDMs || d.onlyMentions || len(d.allowed) != 0 {
		t.Errorf("defaults: %+v", d)
	}
	if _, w, _ := parseConfig(&sdk.Agent{ID: testAgent, Settings: map[string]string{SettingIgnoreBots: "maybe"}}); len(w) != 1 {
		t.Errorf("a bad boolean is a warning: %v", w)
	}
	e, _, _ := parseConfig(&sdk.Agent{ID: testAgent, Settings: map[string]string{SettingChannelIDs: "555"}, Character: ch})
	if !e.allowed["555"] || e.allowed["111"] {
		t.Errorf("CHANNEL_IDS replaces the block's list: %v", e.allowed)
	}
}
