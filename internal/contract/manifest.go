package contract

import (
	"fmt"
	"strings"
	"unicode"

	pb "github.com/agenthost/agenthost/sdk/proto/agenthost/plugin/v1"
)

// MinPluginMinor is the oldest protocol minor a host accepts: minor 1 added
// the runtime token, without which a plugin's Runtime calls are refused.
const MinPluginMinor = 1

// ManifestProblems lists what is wrong with a manifest, each in a sentence
// naming the entry: an empty or malformed name, a missing version, a
// protocol minor the host refuses, a name declared twice, an event type or
// a setting name that cannot be one. The host refuses a plugin whose name
// does not match its file (see CheckManifestName); `agenthost plugins
// check` holds a plugin to all of these.
func ManifestProblems(m *pb.Manifest) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if !ValidPluginName(m.GetName()) {
		add("name %q is not a plugin name: letters, digits, '-', '_' and '.', starting with a letter or digit", m.GetName())
	}
	if strings.TrimSpace(m.GetVersion()) == "" {
		add("version is empty")
	}
	if m.GetProtocolMinor() < MinPluginMinor {
		add("protocol_minor is %d; the host needs %d or newer", m.GetProtocolMinor(), MinPluginMinor)
	}
	names := func(kind string, list []string) {
		seen := map[string]bool{}
		for _, n := range list {
			switch {
			case strings.TrimSpace(n) == "":
				add("a %s has an empty name", kind)
			case strings.IndexFunc(n, unicode.IsSpace) >= 0:
				add("%s %q has white space in its name", kind, n)
			case seen[n]:
				add("%s %q is declared twice", kind, n)
			}
			seen[n] = true
		}
	}
	var actions, providers, evaluators, models, settings []string
	for _, a := range m.GetActions() {
		actions = append(actions, a.GetName())
	}
	for _, p := range m.GetProviders() {
		providers = append(providers, p.GetName())
	}
	for _, e := range m.GetEvaluators() {
		evaluators = append(evaluators, e.GetName())
	}
	for _, md := range m.GetModels() {
		models = append(models, md.GetType())
	}
	for _, s := range m.GetSettings() {
		settings = append(settings, s.GetName())
		if s.GetRequired() && s.GetDefaultValue() != "" {
			add("setting %s is required and has a default; keep one of them", s.GetName())
		}
	}
	names("action", actions)
	names("provider", providers)
	names("evaluator", evaluators)
	names("model type", models)
	names("event type", m.GetEvents())
	names("message source", m.GetMessageSources())
	names("setting", settings)
	return out
}

// ValidPluginName reports whether name can name a plugin: the NAME of an
// executable agenthost-plugin-NAME and the name characters list.
func ValidPluginName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for i, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case i > 0 && (r == '-' || r == '_' || r == '.'):
		default:
			return false
		}
	}
	return true
}

// CheckManifestName says what is wrong when a plugin found as NAME (its
// file agenthost-plugin-NAME, or a bundled plugin's name) describes itself
// under another name: characters name the plugin by its file, while its
// logs, runs and errors would carry the other name.
func CheckManifestName(fileName string, m *pb.Manifest) error {
	if m.GetName() == fileName {
		return nil
	}
	if m.GetName() == "" {
		return fmt.Errorf("its manifest has no name: the manifest's name must be %q, the NAME of its file agenthost-plugin-NAME", fileName)
	}
	return fmt.Errorf("its manifest names it %q, but it was found as %q: the manifest's name must be the NAME of its file agenthost-plugin-NAME (rename the file to agenthost-plugin-%s, or change the name in the plugin)",
		m.GetName(), fileName, m.GetName())
}
