package host

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/character"
	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

// What a plugin is told about its agent. A plugin is untrusted code: it
// receives the settings its manifest declares, those the character grants it
// by name, and the character without its secrets — never the daemon's whole
// environment, and never what another plugin of the agent was given.

// grantsKey is the field of a character's settings where an operator grants
// a plugin settings its manifest does not declare:
//
//	"settings": {"grants": {"weather": ["OPENWEATHER_API_KEY"]}}
const grantsKey = "grants"

// hostOnlySetting reports whether key is the daemon's own configuration,
// which no plugin is given from the environment even if it asks: the API
// key, the database URL (the first-party database plugin gets it in Init),
// the listen address.
func hostOnlySetting(key string) bool {
	if strings.HasPrefix(key, "AGENTHOST_") {
		return true
	}
	switch key {
	case "ELIZA_SERVER_AUTH_TOKEN", "POSTGRES_URL", "DATABASE_URL", "PGLITE_DATA_DIR", "VECTOR_SEARCH",
		"SERVER_HOST", "SERVER_PORT", "API_CORS_ORIGIN", "CORS_ORIGIN":
		return true
	}
	return false
}

// settingsFor resolves the settings plugin p gets for the agent of ch: each
// setting its manifest m declares or the character grants it, resolved as
// elizaOS does (character secrets, settings, settings.secrets, then env).
//
// One rule protects the daemon's own keys: when the character points one of
// p's endpoint settings (OPENAI_BASE_URL, TELEGRAM_API_ROOT, ...) at an
// address the operator did not configure — neither the environment's value
// nor one listed in AGENTHOST_ALLOWED_ENDPOINTS — p's secrets come from the
// character alone: the environment's key is not sent to that address. The
// warnings say what was withheld.
func settingsFor(ch *sdk.Character, p *PluginProcess, m *pb.Manifest, env map[string]string, allowedEndpoints []string) (map[string]string, []string) {
	out := map[string]string{}
	var warnings []string
	foreign := ""
	for _, s := range m.GetSettings() {
		if !s.GetEndpoint() {
			continue
		}
		v, ok := character.Setting(ch, s.GetName(), nil)
		if ok && !sameEndpoint(v, env[s.GetName()]) && !endpointAllowed(v, allowedEndpoints) {
			foreign = s.GetName()
			break
		}
	}
	resolve := func(name string, secret bool) {
		if v, ok := character.Setting(ch, name, nil); ok {
			out[name] = v
			return
		}
		v, ok := env[name]
		if !ok || v == "" || hostOnlySetting(name) {
			return
		}
		if secret && foreign != "" {
			warnings = append(warnings, fmt.Sprintf("the character points plugin %s's %s at an address the operator did not configure, so the daemon's %s is not sent to it; give the agent its own %s in the character's secrets, or list the address in AGENTHOST_ALLOWED_ENDPOINTS",
				p.Name(), foreign, name, name))
			return
		}
		out[name] = v
	}
	for _, s := range m.GetSettings() {
		resolve(s.GetName(), s.GetSecret())
	}
	// A grant is the operator's explicit word; it is treated as a secret
	// for the endpoint rule, since nothing says it is not one.
	for _, name := range grantedTo(ch, p) {
		if _, done := out[name]; !done {
			resolve(name, true)
		}
	}
	return out, warnings
}

// grantedTo lists the settings a character grants p under settings.grants,
// by the plugin's short name, package name or alias.
func grantedTo(ch *sdk.Character, p *PluginProcess) []string {
	grants, _ := ch.Settings[grantsKey].(map[string]any)
	var out []string
	for name, keys := range grants {
		if !pluginNamed(p, name) {
			continue
		}
		list, _ := keys.([]any)
		for _, k := range list {
			if s, ok := k.(string); ok && strings.TrimSpace(s) != "" {
				out = append(out, strings.TrimSpace(s))
			}
		}
	}
	sort.Strings(out)
	return out
}

// pluginNamed reports whether name, as a character may write it, is p.
func pluginNamed(p *PluginProcess, name string) bool {
	n := strings.TrimSpace(name)
	short := n
	if i := strings.LastIndexByte(short, '/'); i >= 0 {
		short = short[i+1:]
	}
	short = strings.TrimPrefix(strings.TrimPrefix(short, ExecPrefix), "plugin-")
	if n == p.Name() || short == p.Name() {
		return true
	}
	aliases := p.Spec().Aliases
	if man := p.Manifest(); man != nil {
		aliases = append(aliases[:len(aliases):len(aliases)], man.GetAliases()...)
	}
	for _, a := range aliases {
		if a == n {
			return true
		}
	}
	return false
}

func sameEndpoint(a, b string) bool {
	return strings.TrimRight(strings.TrimSpace(a), "/") == strings.TrimRight(strings.TrimSpace(b), "/")
}

// endpointAllowed reports whether v is an address the operator listed, or
// lies under one (https://llm.example is allowed by https://llm.example,
// and so is https://llm.example/v1; https://llm.example.evil is not).
func endpointAllowed(v string, allowed []string) bool {
	v = strings.TrimRight(strings.TrimSpace(v), "/")
	for _, a := range allowed {
		a = strings.TrimRight(strings.TrimSpace(a), "/")
		if a != "" && (v == a || strings.HasPrefix(v, a+"/")) {
			return true
		}
	}
	return false
}

// allowedEndpoints reads AGENTHOST_ALLOWED_ENDPOINTS (comma-separated).
func allowedEndpoints(env map[string]string) []string {
	var out []string
	for _, s := range strings.Split(env["AGENTHOST_ALLOWED_ENDPOINTS"], ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// pluginCharacterJSON is the character as plugins see it: without
// "secrets", without "settings.secrets", and with only the object-valued
// blocks of "settings" (such as "discord"), since its plain values are
// settings, which each plugin receives filtered, and "grants" is the
// host's business.
func pluginCharacterJSON(ch *sdk.Character) ([]byte, error) {
	c := *ch
	c.Secrets = nil
	if len(ch.Settings) > 0 {
		c.Settings = map[string]any{}
		for k, v := range ch.Settings {
			if k == "secrets" || k == grantsKey {
				continue
			}
			switch v.(type) {
			case map[string]any, []any:
				c.Settings[k] = v
			}
		}
	}
	return json.Marshal(&c)
}
