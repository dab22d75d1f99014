package character

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/agenthost/agenthost/sdk"
)

func TestLoadCharacterFull(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "characters", "eliza.json"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "Eliza" || c.Username != "eliza" || c.ID != "b850bc30-45f8-0041-a00a-83df46d8555d" {
		t.Errorf("name/username/id = %q %q %q", c.Name, c.Username, c.ID)
	}
	if c.AgentID() != c.ID {
		t.Errorf("AgentID() = %s, want the id %s", c.AgentID(), c.ID)
	}
	if len(c.Bio) != 3 || !strings.HasPrefix(c.Bio[0], "Eliza helps") {
		t.Errorf("bio = %q", c.Bio)
	}
	if !strings.Contains(c.Templates["replyTemplate"], "{{providers}}") || len(c.Templates) != 2 {
		t.Errorf("templates = %q", c.Templates)
	}
	if len(c.MessageExamples) != 2 || len(c.MessageExamples[1]) != 2 {
		t.Fatalf("messageExamples = %+v", c.MessageExamples)
	}
	reply := c.MessageExamples[1][1].Content
	if reply.Text != "Understood, I'll stay quiet here." || !reflect.DeepEqual(reply.Actions, []string{"MUTE_ROOM"}) ||
		reply.ChannelType != sdk.ChannelGroup || len(reply.Attachments) != 1 || reply.Attachments[0].ContentType != "image" ||
		reply.Extra["simple"] != true {
		t.Errorf("example reply = %+v", reply)
	}
	if len(c.Knowledge) != 3 || len(c.Plugins) != 3 || c.Plugins[2] != "@elizaos/plugin-openai" {
		t.Errorf("knowledge = %s, plugins = %q", c.Knowledge, c.Plugins)
	}
	if len(c.Topics) != 3 || len(c.Adjectives) != 3 || len(c.PostExamples) != 2 {
		t.Errorf("topics %q adjectives %q posts %q", c.Topics, c.Adjectives, c.PostExamples)
	}
	if len(c.Style.All) != 2 || len(c.Style.Chat) != 1 || len(c.Style.Post) != 1 {
		t.Errorf("style = %+v", c.Style)
	}
	if c.Settings["temperature"] != 0.7 || c.Secrets["VERBOSE"] != true {
		t.Errorf("settings %v secrets %v", c.Settings, c.Secrets)
	}

	// What the host marshals for a plugin parses back to the same character.
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(b)
	if err != nil {
		t.Fatalf("round trip: %v\n%s", err, b)
	}
	if b2, _ := json.Marshal(back); !bytes.Equal(b2, b) {
		t.Errorf("round trip changed the character:\n got %s\nwant %s", b2, b)
	}
}

func TestLoadCharacterBioString(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "characters", "bio-string.json"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (sdk.StringList{"Ada is a terse assistant who answers in one sentence."}); !reflect.DeepEqual(c.Bio, want) {
		t.Errorf("bio = %q, want %q", c.Bio, want)
	}
	if c.ID != "" || c.AgentID() != sdk.StringToUUID("Ada") {
		t.Errorf("id %q, AgentID %s, want %s", c.ID, c.AgentID(), sdk.StringToUUID("Ada"))
	}
}

func TestParseCharacterValid(t *testing.T) {
	for name, in := range map[string]string{
		"minimal":             `{"name": "A", "bio": ""}`,
		"bio empty list":      `{"name": "A", "bio": []}`,
		"upper-case id":       `{"id": "B850BC30-45F8-0041-A00A-83DF46D8555D", "name": "A", "bio": "b"}`,
		"byte order mark":     "\xef\xbb\xbf" + `{"name": "A", "bio": "b"}`,
		"settings any values": `{"name": "A", "bio": "b", "settings": {"s": "x", "b": true, "n": 1, "o": {"k": null}, "l": [null, 1]}}`,
		"empty style":         `{"name": "A", "bio": "b", "style": {}}`,
		"extra keys in nested objects elizaOS ignores": `{"name": "A", "bio": "b", "style": {"all": [], "voice": 1},
			"knowledge": [{"path": "p", "note": 1}], "messageExamples": [[{"name": "n", "content": {}, "extra": 1}]]}`,
		"empty lists": `{"name": "A", "bio": "b", "plugins": [], "topics": [], "messageExamples": [[]], "knowledge": []}`,
	} {
		if _, err := Parse([]byte(in)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	c, err := Parse([]byte(`{"id": "B850BC30-45F8-0041-A00A-83DF46D8555D", "name": "A", "bio": "b"}`))
	if err != nil || c.AgentID() != "B850BC30-45F8-0041-A00A-83DF46D8555D" {
		t.Errorf("upper-case id: AgentID() = %v, %v; want it unchanged", c, err)
	}
}

func TestParseCharacterKeysAreCaseSensitive(t *testing.T) {
	// elizaOS matches keys exactly: "Text" is an extra content key, "ALL"
	// an unknown style key it drops, "ID" an extra media key.
	c, err := Parse([]byte(`{"name": "A", "bio": "b", "style": {"ALL": "x", "all": ["y"]},
		"messageExamples": [[{"name": "n", "NAME": 1, "content": {"Text": 5, "text": "hi",
			"attachments": [{"ID": 1, "id": "i", "url": "u", "Url": 2}]}}]],
		"knowledge": [ {"path" : "p", "x": 1e2} ]}`))
	if err != nil {
		t.Fatal(err)
	}
	content := c.MessageExamples[0][0].Content
	if content.Text != "hi" || content.Extra["Text"] != 5.0 || len(content.Extra) != 1 {
		t.Errorf("content = %+v", content)
	}
	if a := content.Attachments[0]; a.ID != "i" || a.URL != "u" {
		t.Errorf("attachment = %+v", a)
	}
	if !reflect.DeepEqual(c.Style, sdk.Style{All: []string{"y"}}) {
		t.Errorf("style = %+v", c.Style)
	}
	if string(c.Knowledge[0]) != `{"path":"p","x":1e2}` {
		t.Errorf("knowledge = %s", c.Knowledge[0])
	}
}

func TestParseCharacterInvalid(t *testing.T) {
	garbage := make([]byte, 10<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range garbage {
		garbage[i] = byte(r.Uint32())
	}
	garbage[0] = '#' // never a valid start of JSON

	for _, tc := range []struct {
		name string
		in   string
		want []string // all must appear in the error text
	}{
		{"syntax error", "{\n  \"name\": \"Broken\",\n  \"bio\": [\"one\", \"two\",]\n}",
			[]string{"character: invalid JSON at line 3, column 24: invalid character ']'"}},
		{"syntax error after non-ASCII", "{\"name\": \"日本語\" \"bio\": \"x\"}",
			[]string{"invalid JSON at line 1, column 16", "after object key:value pair"}},
		{"truncated", `{"name": "A", "bio": ["x"`, []string{"invalid JSON at line 1, column 26", "ends in the middle of a value"}},
		{"trailing data", `{"name": "A", "bio": "b"} {}`, []string{"invalid JSON at line 1, column 27", "after top-level value"}},
		{"empty", " \n", []string{"character: is empty, want a JSON object"}},
		{"list at top level", `[]`, []string{"want a JSON object", "at the top level, got list"}},
		{"null at top level", `null`, []string{"at the top level, got null"}},
		{"string at top level", `"Eliza"`, []string{"at the top level, got string"}},
		{"number out of range", `{"name": "A", "bio": "b", "settings": {"n": 1e999}}`,
			[]string{`field "settings.n": number 1e999 is out of range`}},
		{"missing name", `{"bio": "b"}`, []string{`character: missing field "name"`}},
		{"empty name", `{"name": "", "bio": "b"}`, []string{`field "name": must not be empty`}},
		{"name a number", `{"name": 7, "bio": "b"}`, []string{`field "name": want a string, got number`}},
		{"name null", `{"name": null, "bio": "b"}`, []string{`field "name": want a string, got null`}},
		{"missing bio", `{"name": "A"}`, []string{`missing field "bio": want a string or a list of strings`}},
		{"bio a number", `{"name": "A", "bio": 42}`,
			[]string{`character: field "bio": want a string or a list of strings, got number (line 1, column 22)`}},
		{"bio an object", `{"name": "A", "bio": {}}`, []string{`field "bio": want a string or a list of strings, got object`}},
		{"bio list with a number", `{"name": "A", "bio": ["a", 2]}`, []string{`field "bio[1]": want a string`, "got number (line 1, column 28)"}},
		{"unknown key", `{"name": "A", "bio": "b", "favouriteColour": "blue"}`,
			[]string{`field "favouriteColour": unknown field; a character may only have id, name, username`}},
		{"0.x lore", `{"name": "A", "bio": "b", "lore": []}`, []string{`field "lore": unknown field: "lore" is from elizaOS 0.x; move its lines into "bio"`}},
		{"0.x clients", `{"name": "A", "bio": "b", "clients": ["discord"]}`, []string{`field "clients"`, `"plugins"`}},
		{"misspelt key", `{"name": "A", "bio": "b", "message_examples": []}`, []string{`field "message_examples": unknown field; did you mean "messageExamples"?`}},
		{"plugins not a list", `{"name": "A", "bio": "b", "plugins": "@elizaos/plugin-sql"}`,
			[]string{`field "plugins": want a list of strings, got string`}},
		{"plugins entry not a string", `{"name": "A", "bio": "b", "plugins": ["x", {"name": "y"}]}`,
			[]string{`field "plugins[1]": want a string, got object`}},
		{"id not a UUID", `{"id": "eliza-1", "name": "A", "bio": "b"}`,
			[]string{`field "id": want a UUID`, `got "eliza-1"`, `remove "id"`}},
		{"id a number", `{"id": 1, "name": "A", "bio": "b"}`, []string{`field "id": want a UUID string`, "got number"}},
		{"id without hyphens", `{"id": "b850bc3045f80041a00a83df46d8555d", "name": "A", "bio": "b"}`, []string{`field "id": want a UUID`}},
		{"username null", `{"name": "A", "bio": "b", "username": null}`, []string{`field "username": want a string, got null`}},
		{"system a list", `{"name": "A", "bio": "b", "system": ["x"]}`, []string{`field "system": want a string, got list`}},
		{"template not a string", `{"name": "A", "bio": "b", "templates": {"replyTemplate": 1}}`,
			[]string{`field "templates.replyTemplate": want a string (a prompt template), got number`}},
		{"settings a list", `{"name": "A", "bio": "b", "settings": []}`, []string{`field "settings": want an object`, "got list"}},
		{"setting null", `{"name": "A", "bio": "b", "settings": {"a.b": null}}`, []string{`field "settings[\"a.b\"]": want a string, number, boolean, object or list, got null`}},
		{"secret an object", `{"name": "A", "bio": "b", "secrets": {"KEY": {"v": 1}}}`,
			[]string{`field "secrets.KEY": want a string, number or boolean, got object`}},
		{"style.chat a string", `{"name": "A", "bio": "b", "style": {"chat": "be brief"}}`,
			[]string{`field "style.chat": want a list of strings, got string`}},
		{"style a list", `{"name": "A", "bio": "b", "style": []}`, []string{`field "style": want an object`}},
		{"knowledge entry a number", `{"name": "A", "bio": "b", "knowledge": ["a", 3]}`, []string{`field "knowledge[1]": want a file path`}},
		{"knowledge entry without path", `{"name": "A", "bio": "b", "knowledge": [{"shared": true}]}`, []string{`field "knowledge[0]": want "path" or "directory"`}},
		{"knowledge shared not bool", `{"name": "A", "bio": "b", "knowledge": [{"directory": "d", "shared": "yes"}]}`,
			[]string{`field "knowledge[0].shared": want true or false, got string`}},
		{"conversation not a list", `{"name": "A", "bio": "b", "messageExamples": [{"name": "a"}]}`,
			[]string{`field "messageExamples[0]": want a conversation`}},
		{"example without content", `{"name": "A", "bio": "b", "messageExamples": [[{"name": "a"}]]}`,
			[]string{`field "messageExamples[0][0]": missing "content"`}},
		{"example text a number", `{"name": "A", "bio": "b", "messageExamples": [[{"name": "a", "content": {"text": 1}}]]}`,
			[]string{`field "messageExamples[0][0].content.text": want a string, got number (line 1, column 82)`}},
		{"example channel type", `{"name": "A", "bio": "b", "messageExamples": [[{"name": "a", "content": {"channelType": "dm"}}]]}`,
			[]string{`field "messageExamples[0][0].content.channelType": want one of SELF, DM,`, `got "dm"`}},
		{"example inReplyTo", `{"name": "A", "bio": "b", "messageExamples": [[{"name": "a", "content": {"inReplyTo": "x"}}]]}`,
			[]string{`field "messageExamples[0][0].content.inReplyTo": want a UUID`}},
		{"example attachment", `{"name": "A", "bio": "b", "messageExamples": [[{"name": "a", "content": {"attachments": [{"id": "i", "contentType": "gif"}]}}]]}`,
			[]string{`field "messageExamples[0][0].content.attachments[0]": missing "url"`, `field "messageExamples[0][0].content.attachments[0].contentType": want one of image, video`}},
		{"several problems", `{"name": "", "bio": 1, "plugins": {}}`,
			[]string{`field "name": must not be empty`, `field "bio": want a string`, `field "plugins": want a list`}},
		{"10 MiB of garbage", string(garbage), []string{"character: invalid JSON at line 1, column 1: invalid character '#'"}},
		{"too big", strings.Repeat(" ", MaxSize+1), []string{"character: larger than 16 MiB"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.in))
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("error %T is not a *CharacterError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n  %v\ndoes not contain\n  %s", err, w)
				}
			}
		})
	}
}

func TestParseCharacterManyProblemsCapped(t *testing.T) {
	in := `{"name": "A", "bio": [` + strings.Repeat("1, ", 30) + `1]}`
	_, err := Parse([]byte(in))
	if err == nil {
		t.Fatal("accepted")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 10+1 || !strings.Contains(lines[len(lines)-1], "and 21 more problems not listed") {
		t.Errorf("got %d lines:\n%v", len(lines), err)
	}
}

func TestLoadCharacterErrorsNameTheFile(t *testing.T) {
	dir := filepath.Join("testdata", "characters")
	for _, tc := range []struct{ path, want string }{
		{filepath.Join(dir, "bio-number.json"),
			`character testdata/characters/bio-number.json: field "bio": want a string or a list of strings, got number (line 3, column 10)`},
		{filepath.Join(dir, "syntax-error.json"),
			`character testdata/characters/syntax-error.json: invalid JSON at line 3, column 24: invalid character ']' looking for beginning of value`},
		{filepath.Join(dir, "missing.json"), `character testdata/characters/missing.json: no such file`},
		{dir, `character testdata/characters: is a directory, want a character JSON file`},
	} {
		_, err := Load(tc.path)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Load(%s):\n got %v\nwant %s", tc.path, err, tc.want)
		}
	}

	big := filepath.Join(t.TempDir(), "big.json")
	if err := os.WriteFile(big, bytes.Repeat([]byte(" "), MaxSize+10), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "big.json: larger than 16 MiB") {
		t.Errorf("big file: %v", err)
	}
}

func TestDefault(t *testing.T) {
	c := Default()
	if c.Name != "Eliza" || len(c.Bio) == 0 || len(c.Adjectives) == 0 || len(c.Topics) == 0 ||
		len(c.Style.All) == 0 || len(c.MessageExamples) == 0 || len(c.Plugins) != 0 {
		t.Errorf("Default() = %+v", c)
	}
	if c.AgentID() != "b850bc30-45f8-0041-a00a-83df46d8555d" {
		t.Errorf("AgentID() = %s, want elizaOS's id for Eliza", c.AgentID())
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(b)
	if err != nil {
		t.Fatalf("the default character does not validate: %v", err)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("round trip changed it:\n got %+v\nwant %+v", back, c)
	}
	c.Bio[0] = "changed"
	if Default().Bio[0] == "changed" {
		t.Error("DefaultCharacter shares state between calls")
	}
}

func TestStringListMarshalsNilAsEmptyList(t *testing.T) {
	b, _ := json.Marshal(&sdk.Character{Name: "A"})
	if _, err := Parse(b); err != nil {
		t.Errorf("%s: %v", b, err)
	}
}

func TestSettingPrecedence(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "characters", "eliza.json"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"OPENAI_API_KEY": "key-from-env",
		"model":          "model-from-env",
		"ONLY_ENV":       "env-value",
		"EMPTY_ENV":      "",
		"discord":        "env-discord",
	}
	for _, tc := range []struct {
		key  string
		want string
		ok   bool
	}{
		{"OPENAI_API_KEY", "key-from-secrets", true},               // secrets beat all
		{"DISCORD_API_TOKEN", "token-from-settings-secrets", true}, // settings.secrets beats env
		{"model", "gpt-4o-mini", true},                             // settings beat env
		{"ONLY_ENV", "env-value", true},
		{"temperature", "0.7", true},
		{"maxTokens", "2048", true}, // no trailing .0
		{"voiceEnabled", "false", true},
		{"RETRIES", "3", true},
		{"VERBOSE", "true", true},
		{"discord", "", false}, // an object wins and is no string, like elizaOS's null
		{"allowedUsers", "", false},
		{"secrets", "", false},
		{"EMPTY_ENV", "", false},
		{"NOWHERE", "", false},
	} {
		got, ok := Setting(c, tc.key, env)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Setting(%q) = %q, %v; want %q, %v", tc.key, got, ok, tc.want, tc.ok)
		}
	}

	// Each place against the next, one key.
	layered := &sdk.Character{
		Secrets:  map[string]any{"K": "secret", "E": "", "F": false, "Z": 0.0},
		Settings: map[string]any{"K": "setting", "E": "setting-e", "S": "setting", "secrets": map[string]any{"K": "nested", "S": "nested", "N": "nested", "F": true, "Z": 5.0}},
	}
	lenv := map[string]string{"K": "env", "S": "env", "N": "env", "V": "env"}
	for key, want := range map[string]string{
		"K": "secret",    // secrets first
		"E": "setting-e", // "" passes on, as in elizaOS
		"S": "setting",   // settings before settings.secrets
		"N": "nested",    // settings.secrets before env
		"V": "env",
		"F": "false", // unlike elizaOS, false is a value
		"Z": "0",     // and so is 0
	} {
		if got, ok := Setting(layered, key, lenv); got != want || !ok {
			t.Errorf("Setting(%q) = %q, %v; want %q", key, got, ok, want)
		}
	}
	if got, ok := Setting(&sdk.Character{}, "V", nil); ok {
		t.Errorf("empty character, nil env: %q", got)
	}
	if got, _ := Setting(&sdk.Character{}, "V", lenv); got != "env" {
		t.Errorf("empty character: %q", got)
	}
}

func TestResolvedSettings(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "characters", "eliza.json"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"OPENAI_API_KEY": "env", "ONLY_ENV": "x", "model": "env", "discord": "env", "EMPTY": ""}
	got := ResolvedSettings(c, env)
	want := map[string]string{
		"OPENAI_API_KEY":    "key-from-secrets",
		"DISCORD_API_TOKEN": "token-from-settings-secrets",
		"ONLY_ENV":          "x",
		"model":             "gpt-4o-mini",
		"temperature":       "0.7",
		"maxTokens":         "2048",
		"voiceEnabled":      "false",
		"avatar":            "https://example.invalid/eliza.png",
		"RETRIES":           "3",
		"VERBOSE":           "true",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ResolvedSettings:\n got %v\nwant %v", got, want)
	}
	// It agrees with Setting for every key, present or not.
	for _, k := range []string{"OPENAI_API_KEY", "discord", "secrets", "allowedUsers", "EMPTY", "model", "nope"} {
		s, ok := Setting(c, k, env)
		r, rok := got[k]
		if s != r || ok != rok {
			t.Errorf("key %q: Setting = %q, %v; ResolvedSettings = %q, %v", k, s, ok, r, rok)
		}
	}
	if m := ResolvedSettings(&sdk.Character{}, nil); len(m) != 0 {
		t.Errorf("empty: %v", m)
	}
}

func TestJSNumberString(t *testing.T) {
	// Expected strings are what Node 20 prints for String(x).
	for x, want := range map[float64]string{
		0: "0", math.Copysign(0, -1): "0", 1: "1", -1: "-1", 2048: "2048", 0.7: "0.7", 0.30000000000000004: "0.30000000000000004",
		1e-7: "1e-7", 1e-6: "0.000001", 1.5e-7: "1.5e-7", 9.99e-7: "9.99e-7", 1e21: "1e+21", 1e20: "100000000000000000000",
		123456789012345680000: "123456789012345680000", -1.5e-10: "-1.5e-10", 5e-324: "5e-324",
		math.MaxFloat64: "1.7976931348623157e+308", math.Inf(1): "Infinity", math.Inf(-1): "-Infinity",
	} {
		if got := jsNumberString(x); got != want {
			t.Errorf("jsNumberString(%v) = %q, want %q", x, got, want)
		}
	}
	if got, ok := settingString(json.Number("2.50")); got != "2.5" || !ok {
		t.Errorf("json.Number: %q", got)
	}
	if got, ok := settingString(int64(7)); got != "7" || !ok {
		t.Errorf("int64: %q", got)
	}
}

func TestEnvNameKey(t *testing.T) {
	// Expected values are what Node 20 prints for
	// name.toUpperCase().replace(/[^A-Z0-9]/g, "_"), the expression elizaOS
	// 1.7.2's loader uses.
	for name, want := range map[string]string{
		"Eliza": "ELIZA", "Dr. Who": "DR__WHO", "straße": "STRASSE", "ﬁx bot": "FIX_BOT", "🎉bot": "__BOT",
		"ǰoe": "J_OE", "mia-2": "MIA_2", "日本": "__", "ı": "I", "Ünï": "_N_",
	} {
		if got := envNameKey(name); got != want {
			t.Errorf("envNameKey(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestApplyEnv(t *testing.T) {
	c := &sdk.Character{
		Name:     "Dr. Who",
		Secrets:  map[string]any{"A": "file", "B": "file", "N": 1.0},
		Settings: map[string]any{"secrets": map[string]any{"B": "nested", "C": "nested", "O": map[string]any{}}},
	}
	idKey := strings.ReplaceAll(strings.ToUpper(sdk.StringToUUID("Dr. Who")), "-", "_")
	ApplyEnv(c, map[string]string{
		"CHARACTER.DR__WHO.A":          "env",
		"CHARACTER.DR__WHO.D":          "env-name",
		"CHARACTER." + idKey + ".D":    "env-id",
		"CHARACTER." + idKey + ".E":    "env-id",
		"CHARACTER.DR__WHO.":           "no key",
		"CHARACTER.OTHER.F":            "other character",
		"CHARACTER.DR. WHO.G":          "not the elizaOS 1.7 form",
		"DR__WHO_H":                    "bare prefix, not honoured",
		"OPENAI_API_KEY":               "global",
		"character.dr__who.lowercase":  "case matters",
		"CHARACTER.DR__WHO.with.dots":  "kept",
		"CHARACTER.DR__WHO.MULTI_WORD": "kept",
	})
	want := map[string]any{
		"A": "env", "B": "nested", "C": "nested", "N": 1.0, "D": "env-id", "E": "env-id",
		"with.dots": "kept", "MULTI_WORD": "kept",
	}
	if !reflect.DeepEqual(c.Secrets, want) {
		t.Errorf("secrets after ApplyEnv:\n got %v\nwant %v", c.Secrets, want)
	}
	if got, _ := Setting(c, "A", nil); got != "env" {
		t.Errorf("Setting(A) = %q", got)
	}

	// No matching variable: nothing changes, not even the secrets map.
	d := &sdk.Character{Name: "Eliza", Settings: map[string]any{"secrets": map[string]any{"X": "y"}}}
	ApplyEnv(d, map[string]string{"CHARACTER.ADA.K": "v"})
	if d.Secrets != nil {
		t.Errorf("secrets = %v, want nil", d.Secrets)
	}

	// A fixed id gives the id prefix.
	e := &sdk.Character{ID: "b850bc30-45f8-0041-a00a-83df46d8555d", Name: "Someone"}
	ApplyEnv(e, map[string]string{"CHARACTER.B850BC30_45F8_0041_A00A_83DF46D8555D.TOKEN": "t"})
	if e.Secrets["TOKEN"] != "t" {
		t.Errorf("id prefix: %v", e.Secrets)
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"eliza.json", "bio-string.json", "syntax-error.json", "bio-number.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", "characters", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"name": "A", "bio": ["a", 2], "messageExamples": [[{"name": "a", "content": {"text": 1}}]]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), "character: ") {
				t.Fatalf("error %T %q", err, err)
			}
			return
		}
		if c.Name == "" {
			t.Fatal("accepted an empty name")
		}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(b); err != nil {
			t.Fatalf("re-parsing %s: %v", b, err)
		}
	})
}

func TestCheckCharacterPatch(t *testing.T) {
	for _, c := range []struct {
		name, patch string
		want        string // "" for a valid patch
	}{
		{"replace bio", `{"bio": ["a", "b"]}`, ""},
		{"remove a field", `{"username": null, "system": null}`, ""},
		{"remove settings keys", `{"settings": {"A": null, "secrets": {"K": null}}, "secrets": {"X": null, "Y": "v"}}`, ""},
		{"bio of a wrong type", `{"bio": 12345}`, `character: field "bio": want a string or a list of strings, got number (line 1, column 9)`},
		{"position in the user's lines", "{\n  \"topics\": [\n    \"tea\",\n    7\n  ]\n}", `field "topics[1]": want a string, got number (line 4, column 5)`},
		{"name removed", `{"name": null}`, `field "name": cannot be removed`},
		{"bio removed", `{"bio": null}`, `field "bio": cannot be removed`},
		{"unknown field", `{"lore": ["x"]}`, `field "lore": unknown field`},
		{"syntax", "{\n  \"bio\": \"x\",\n}", "invalid JSON at line 3, column 1"},
		{"not an object", `["bio"]`, "want a JSON object of the fields to change"},
		{"empty", ` `, "is empty"},
	} {
		err := CheckPatch("", []byte(c.patch))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
	err := CheckPatch("changes.json", []byte(`{"bio": 1}`))
	if err == nil || !strings.HasPrefix(err.Error(), "character changes.json: ") {
		t.Errorf("the error should name the file: %v", err)
	}
}

// TestBioRequired: a character without "bio" is refused, as elizaOS's
// schema refuses it, wherever it comes from.
func TestBioRequired(t *testing.T) {
	_, err := Parse([]byte(`{"name": "NoBio"}`))
	if err == nil || !strings.Contains(err.Error(), `missing field "bio"`) {
		t.Errorf("ParseCharacter: %v", err)
	}
	path := filepath.Join(t.TempDir(), "nobio.json")
	if err := os.WriteFile(path, []byte(`{"name": "NoBio"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path)
	if err == nil || !strings.Contains(err.Error(), `missing field "bio"`) {
		t.Errorf("LoadCharacter: %v", err)
	}
}
