package host

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/character"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

// fakeDescribed is a plugin whose running process declared m.
func fakeDescribed(name string, m *pb.Manifest) *PluginProcess {
	m.Name = name
	return &PluginProcess{spec: PluginSpec{Name: name}, state: StateRunning, cur: &pluginConn{manifest: m}}
}

func TestSettingsForGivesOnlyWhatIsDeclaredOrGranted(t *testing.T) {
	t.Parallel()
	model := fakeDescribed("openai", &pb.Manifest{Settings: []*pb.SettingSpec{
		{Name: "OPENAI_API_KEY", Secret: true},
		{Name: "OPENAI_BASE_URL", Endpoint: true},
		{Name: "OPENAI_SMALL_MODEL"},
	}})
	weather := fakeDescribed("weather", &pb.Manifest{Settings: []*pb.SettingSpec{{Name: "WEATHER_CITY"}}})
	env := map[string]string{
		"OPENAI_API_KEY": "sk-env", "OPENAI_BASE_URL": "https://api.operator.example/v1",
		"AWS_SECRET_ACCESS_KEY": "aws", "AGENTHOST_API_KEY": "daemon-key", "POSTGRES_URL": "postgres://db",
		"TELEGRAM_BOT_TOKEN": "tg", "WEATHER_CITY": "Oslo",
	}
	parse := func(js string) *sdk.Character {
		t.Helper()
		ch, err := character.Parse([]byte(js))
		if err != nil {
			t.Fatal(err)
		}
		return ch
	}
	cases := []struct {
		name      string
		char      string
		plugin    *PluginProcess
		allowed   []string
		want      map[string]string
		warnsFor  string
		wantQuiet bool
	}{
		{
			name:   "declared settings come from the environment, nothing else does",
			char:   `{"name":"A","bio":"b"}`,
			plugin: model,
			want:   map[string]string{"OPENAI_API_KEY": "sk-env", "OPENAI_BASE_URL": "https://api.operator.example/v1"},
		},
		{
			name:   "the character wins over the environment",
			char:   `{"name":"A","bio":"b","settings":{"OPENAI_SMALL_MODEL":"m1","secrets":{"OPENAI_API_KEY":"sk-own"}}}`,
			plugin: model,
			want:   map[string]string{"OPENAI_API_KEY": "sk-own", "OPENAI_BASE_URL": "https://api.operator.example/v1", "OPENAI_SMALL_MODEL": "m1"},
		},
		{
			name:     "a foreign endpoint does not get the daemon's key",
			char:     `{"name":"A","bio":"b","settings":{"OPENAI_BASE_URL":"http://attacker.example"}}`,
			plugin:   model,
			want:     map[string]string{"OPENAI_BASE_URL": "http://attacker.example"},
			warnsFor: "OPENAI_API_KEY",
		},
		{
			name:   "a foreign endpoint with the agent's own key",
			char:   `{"name":"A","bio":"b","secrets":{"OPENAI_API_KEY":"sk-own","OPENAI_BASE_URL":"http://my.example"}}`,
			plugin: model,
			want:   map[string]string{"OPENAI_API_KEY": "sk-own", "OPENAI_BASE_URL": "http://my.example"},
		},
		{
			name:   "the environment's own endpoint, written again in the character",
			char:   `{"name":"A","bio":"b","settings":{"OPENAI_BASE_URL":"https://api.operator.example/v1/"}}`,
			plugin: model,
			want:   map[string]string{"OPENAI_API_KEY": "sk-env", "OPENAI_BASE_URL": "https://api.operator.example/v1/"},
		},
		{
			name:    "an endpoint the operator allowed",
			char:    `{"name":"A","bio":"b","settings":{"OPENAI_BASE_URL":"http://llm.lan:8080/v1"}}`,
			plugin:  model,
			allowed: []string{"http://llm.lan:8080"},
			want:    map[string]string{"OPENAI_API_KEY": "sk-env", "OPENAI_BASE_URL": "http://llm.lan:8080/v1"},
		},
		{
			name:     "an allowed prefix does not allow a longer host name",
			char:     `{"name":"A","bio":"b","settings":{"OPENAI_BASE_URL":"http://llm.lan.attacker.example"}}`,
			plugin:   model,
			allowed:  []string{"http://llm.lan"},
			want:     map[string]string{"OPENAI_BASE_URL": "http://llm.lan.attacker.example"},
			warnsFor: "OPENAI_API_KEY",
		},
		{
			name:   "grants add names; the daemon's own settings are never given",
			char:   `{"name":"A","bio":"b","settings":{"grants":{"@acme/plugin-weather":["AWS_SECRET_ACCESS_KEY","AGENTHOST_API_KEY","POSTGRES_URL"],"openai":["TELEGRAM_BOT_TOKEN"]}}}`,
			plugin: weather,
			want:   map[string]string{"WEATHER_CITY": "Oslo", "AWS_SECRET_ACCESS_KEY": "aws"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.plugin == weather {
				weather.spec.Aliases = []string{"@acme/plugin-weather"}
			}
			got, warnings := settingsFor(parse(c.char), c.plugin, c.plugin.Manifest(), env, c.allowed)
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("settings = %v, want %v", got, c.want)
			}
			joined := strings.Join(warnings, "\n")
			if c.warnsFor != "" && (!strings.Contains(joined, c.warnsFor) || !strings.Contains(joined, "AGENTHOST_ALLOWED_ENDPOINTS")) {
				t.Errorf("warnings %q should say that %s was withheld and how to allow it", joined, c.warnsFor)
			}
			if c.warnsFor == "" && len(warnings) > 0 {
				t.Errorf("unexpected warnings %q", joined)
			}
		})
	}
}

func TestPluginCharacterHasNoSecrets(t *testing.T) {
	t.Parallel()
	ch, err := character.Parse([]byte(`{"name":"A","bio":"b",
		"secrets":{"OPENAI_API_KEY":"sk-1"},
		"settings":{"TELEGRAM_BOT_TOKEN":"tg-2","secrets":{"DISCORD_API_TOKEN":"dc-3"},
			"grants":{"x":["Y"]},"discord":{"shouldIgnoreBotMessages":true}}}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := pluginCharacterJSON(ch)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"sk-1", "tg-2", "dc-3", "grants"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("the character a plugin sees holds %q: %s", secret, b)
		}
	}
	var back sdk.Character
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Name != "A" || back.Settings["discord"] == nil {
		t.Errorf("the character lost what plugins need: %s", b)
	}
	if ch.Secrets["OPENAI_API_KEY"] != "sk-1" {
		t.Error("redacting changed the agent's own character")
	}
}
