// Package character reads, checks and resolves elizaOS characters, the
// agents' definitions: [Load] and [Parse] validate a character file as
// strictly as elizaOS 1.x's schema and report each problem with its field,
// line and column; [CheckPatch] checks a change to one; [Setting],
// [ResolvedSettings] and [ApplyEnv] resolve its settings and secrets as
// elizaOS's runtime does; [Default] is the built-in character.
//
// The host uses it; a plugin receives its agent's character already
// parsed, as [sdk.Agent].Character. The validator itself lives in
// sdk/internal/charjson, so that package sdk checks the characters it
// receives with the same rules.
package character

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/agenthost/agenthost/sdk"
	"github.com/agenthost/agenthost/sdk/internal/charjson"
	"github.com/agenthost/agenthost/sdk/internal/wire"
	"golang.org/x/text/cases"
	"golang.org/x/text/language"
)

// parse is sdk's own parser, which validates with sdk/internal/charjson
// and builds the character: sdk parses the characters plugins receive with
// it, and cannot import this package (see sdk/internal/wire).
var parse = wire.Conversions.(interface {
	ParseCharacter(file string, data []byte) (*sdk.Character, error)
}).ParseCharacter

// Load reads and validates an elizaOS character JSON file. Errors
// name the file and the field; see Parse.
func Load(path string) (*sdk.Character, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{File: path, Problem: charjson.ReadProblem(err)}
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return nil, &Error{File: path, Problem: "is a directory, want a character JSON file"}
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, &Error{File: path, Problem: charjson.ReadProblem(err)}
	}
	return parse(path, data)
}

// Parse validates and decodes an elizaOS character from JSON, as
// strictly as elizaOS 1.x's character schema: the top level must be an
// object; unknown top-level keys are rejected; "name" is required and
// non-empty; "bio" is required (a string or a list of strings); every other
// field is optional but must have its documented type (null is not
// accepted for any of them); "id", when present, must be a UUID; numbers
// must fit a float64. Keys are matched exactly, as in JavaScript. Keys that
// elizaOS drops inside nested objects (style, message examples, media,
// knowledge entries) are dropped here too; unknown keys of a message
// example's content are kept in Content.Extra.
//
// Two leniencies over elizaOS: a leading UTF-8 byte order mark is skipped,
// and ID is not filled in (AgentID derives it). Input larger than
// MaxSize is refused.
//
// Errors are *Error values (see there), each naming the field
// and, where it can, the line and column.
func Parse(data []byte) (*sdk.Character, error) {
	return parse("", data)
}

// Setting resolves a setting for character c the way elizaOS's
// runtime.getSetting does, first match wins:
//
//	secrets[key] → settings[key] → settings.secrets[key] → env[key]
//
// where env is the process environment (or whatever the host passes in its
// place). A missing key, null or "" passes on to the next place. The first
// other value found decides: a string is returned as it is, a boolean as
// "true" or "false", a number as JavaScript prints it (3, 0.5, 1e+21); an
// object or list gives ("", false) like elizaOS's null.
//
// One deliberate difference: elizaOS chains the places with JavaScript's
// ||, so false and 0 also pass on to the next place, and a character can
// never set a setting to false. Here false and 0 are values like any other.
// Secrets are returned as they are in the character; elizaOS's encryption
// at rest is the storage's business.
func Setting(c *sdk.Character, key string, env map[string]string) (string, bool) {
	for _, v := range settingLayers(c, key, env) {
		if v == nil {
			continue
		}
		if s, ok := v.(string); ok && s == "" {
			continue
		}
		return settingString(v)
	}
	return "", false
}

// settingLayers returns the value of key in each place Setting looks, in
// its order of precedence; nil where absent.
func settingLayers(c *sdk.Character, key string, env map[string]string) [4]any {
	var out [4]any
	out[0] = c.Secrets[key]
	out[1] = c.Settings[key]
	out[2] = settingsSecrets(c.Settings)[key]
	if e, ok := env[key]; ok {
		out[3] = e
	}
	return out
}

// settingsSecrets returns settings.secrets as a map, or nil.
func settingsSecrets(settings map[string]any) map[string]any {
	switch s := settings["secrets"].(type) {
	case map[string]any:
		return s
	case map[string]string:
		m := make(map[string]any, len(s))
		for k, v := range s {
			m[k] = v
		}
		return m
	}
	return nil
}

// ResolvedSettings flattens everything Setting can see into one map, for
// handing to plugins: the env map lowest, then settings.secrets, then
// settings, then secrets highest. Only keys whose winning value is a
// scalar are kept (see Setting), so for every key k,
// ResolvedSettings(c, env)[k] is what Setting(c, k, env) returns.
func ResolvedSettings(c *sdk.Character, env map[string]string) map[string]string {
	keys := make(map[string]struct{}, len(env)+len(c.Settings)+len(c.Secrets))
	for k := range env {
		keys[k] = struct{}{}
	}
	for k := range settingsSecrets(c.Settings) {
		keys[k] = struct{}{}
	}
	for k := range c.Settings {
		keys[k] = struct{}{}
	}
	for k := range c.Secrets {
		keys[k] = struct{}{}
	}
	out := make(map[string]string, len(keys))
	for k := range keys {
		if v, ok := Setting(c, k, env); ok {
			out[k] = v
		}
	}
	return out
}

// settingString prints a string, boolean or number like JavaScript's
// String(v); other values are not scalars.
func settingString(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case float64:
		return jsNumberString(v), true
	case float32:
		return jsNumberString(float64(v)), true
	case int:
		return strconv.Itoa(v), true
	case int8, int16, int32, int64:
		return fmt.Sprint(v), true
	case uint, uint8, uint16, uint32, uint64:
		return fmt.Sprint(v), true
	case json.Number:
		f, err := v.Float64()
		if err != nil {
			return v.String(), true
		}
		return jsNumberString(f), true
	}
	return "", false
}

// jsNumberString formats f as JavaScript's Number.prototype.toString does: the
// shortest digits that round-trip, plain notation for 1e-6 <= |f| < 1e21,
// exponent notation ("1e+21", "1.5e-7") outside it.
func jsNumberString(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		return "0" // also for -0
	}
	if a := math.Abs(f); a >= 1e-6 && a < 1e21 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	s := strconv.FormatFloat(f, 'e', -1, 64) // e.g. 1.5e-07, 1e+21
	mant, exp, _ := strings.Cut(s, "e")
	sign, digits := exp[:1], strings.TrimLeft(exp[1:], "0")
	return mant + "e" + sign + digits
}

// ApplyEnv merges character-specific environment variables into the
// character's secrets, as elizaOS 1.x's character loader does. A variable
//
//	CHARACTER.<NAME>.<KEY>     NAME: the name in upper case, each character other than A-Z 0-9 as _
//	CHARACTER.<ID>.<KEY>       ID: AgentID() in upper case with - as _
//
// sets secrets[KEY]; for the character "Dr. Who" that is
// CHARACTER.DR__WHO.OPENAI_API_KEY. When both forms name the same KEY the
// id form wins. When at least one variable matches, elizaOS also copies
// settings.secrets into secrets (variables win over both), and so does
// ApplyEnv; otherwise the character is left as it is.
//
// elizaOS 1.7 also honours a bare <NAME>_<KEY> prefix; ApplyEnv does not,
// as it captures unrelated variables (a character named "Node" would take
// NODE_ENV as its secret ENV).
func ApplyEnv(c *sdk.Character, env map[string]string) {
	var prefixes []string // in increasing precedence
	if c.Name != "" {
		prefixes = append(prefixes, "CHARACTER."+envNameKey(c.Name)+".")
	}
	prefixes = append(prefixes, "CHARACTER."+strings.ReplaceAll(strings.ToUpper(c.AgentID()), "-", "_")+".")

	found := map[string]string{}
	for _, prefix := range prefixes {
		for k, val := range env {
			if key, ok := strings.CutPrefix(k, prefix); ok && key != "" {
				found[key] = val
			}
		}
	}
	if len(found) == 0 {
		return
	}
	merged := make(map[string]any, len(c.Secrets)+len(found))
	for k, val := range c.Secrets {
		merged[k] = val
	}
	for k, val := range settingsSecrets(c.Settings) {
		if _, scalar := settingString(val); scalar {
			merged[k] = val
		}
	}
	for k, val := range found {
		merged[k] = val
	}
	c.Secrets = merged
}

var upperCaser = cases.Upper(language.Und)

// envNameKey maps a character name to its environment variable form like
// elizaOS's name.toUpperCase().replace(/[^A-Z0-9]/g, "_"): full Unicode
// upper-casing ("straße" → "STRASSE"), then every UTF-16 code unit other
// than A-Z 0-9 becomes "_" (so a character outside the BMP becomes "__").
func envNameKey(name string) string {
	up := upperCaser.String(name)
	var b strings.Builder
	for _, r := range up {
		switch {
		case 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
			b.WriteRune(r)
		case utf16.RuneLen(r) == 2:
			b.WriteString("__")
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// Default returns a new copy of the built-in character, Eliza, used
// when no character file is given. Its plugins list is empty: the host adds
// its default plugins.
func Default() *sdk.Character {
	return &sdk.Character{
		Name:     "Eliza",
		Username: "eliza",
		System: "You are Eliza, a friendly and capable assistant. Answer what was asked, " +
			"plainly and briefly, and say so when you are not sure. Ask a question back only " +
			"when a request is too unclear to act on.",
		Bio: sdk.StringList{
			"Eliza is a general-purpose assistant who lives in chat rooms and direct messages.",
			"She prefers a short, correct answer to a long, impressive one.",
			"She explains technical things with small concrete examples.",
			"She is curious about how things work and happy to think a problem through out loud.",
			"She remembers what was said earlier in a conversation and builds on it.",
			"She admits mistakes quickly and fixes them without fuss.",
			"She keeps her opinions light and her facts checked.",
			"She likes puzzles, plain-language writing and a well-made cup of tea.",
		},
		Adjectives: []string{
			"helpful", "curious", "concise", "patient", "warm", "practical", "honest", "witty",
		},
		Topics: []string{
			"software and programming", "how things work", "writing and editing", "planning and organising",
			"science explained simply", "language and words", "puzzles and logic", "everyday questions",
		},
		Style: sdk.Style{
			All: []string{
				"keep answers short unless asked for detail",
				"use plain words; explain any jargon you cannot avoid",
				"be warm but do not gush",
				"say when you do not know",
				"never invent facts, names or links",
			},
			Chat: []string{
				"answer the question first, then add context if it helps",
				"match the other person's tone and length",
				"ask at most one question back",
			},
			Post: []string{
				"one idea per post",
				"no hashtags unless asked",
				"write for someone scrolling past: lead with the interesting part",
			},
		},
		MessageExamples: [][]sdk.ExampleMessage{
			{
				{Name: "{{name1}}", Content: sdk.Content{Text: "What's the difference between a list and a set?"}},
				{Name: "Eliza", Content: sdk.Content{Text: "A list keeps order and allows repeats; a set has no order and holds each item once. Use a set when you mostly ask \"is this in here?\"."}},
			},
			{
				{Name: "{{name1}}", Content: sdk.Content{Text: "I have to write a cover letter and I keep staring at the blank page."}},
				{Name: "Eliza", Content: sdk.Content{Text: "Start with one sentence on why this job and not another. Tell me the role and I'll help you shape the rest."}},
			},
			{
				{Name: "{{name1}}", Content: sdk.Content{Text: "Can you tell me tomorrow's weather in Lisbon?"}},
				{Name: "Eliza", Content: sdk.Content{Text: "I can't look that up from here, so I'd only be guessing. A weather service will have it; in spring Lisbon is usually mild."}},
			},
			{
				{Name: "{{name1}}", Content: sdk.Content{Text: "thanks, that fixed it!"}},
				{Name: "Eliza", Content: sdk.Content{Text: "Glad to hear it. Good luck with the rest."}},
			},
		},
		PostExamples: []string{
			"Naming things is hard because a name is a promise about what the thing will do.",
			"Small habit that pays off: write down the question before you search for the answer.",
			"A good example beats a good definition almost every time.",
		},
	}
}

// MaxSize is the largest character file Load and Parse accept. Real characters are a few KiB to a few hundred
// KiB: knowledge is referenced by path, not inlined.
const MaxSize = charjson.MaxSize

// Error is one problem found in a character file. Error() reads,
// for example:
//
//	character ./eliza.json: field "bio": want a string or a list of strings, got number (line 4, column 10)
//	character ./eliza.json: invalid JSON at line 3, column 5: invalid character '}' looking for beginning of object key string
//
// Parse and Load return an *Error, or several joined with
// errors.Join (one per line) when the file has several problems;
// errors.As finds the first. Its fields: File (the file's path as given;
// empty for Parse), Field (the JSON path of the field, such as bio[2] or
// style.chat; empty for whole-file problems), Line and Column (1-based, in
// characters; 0 when unknown) and Problem (what is wrong and, where it
// helps, what to write instead).
type Error = charjson.Error

// CheckPatch checks a change to a character as `agenthost agent
// set` and PATCH /api/agents/{id} take it: a JSON object of top-level
// fields, each replacing the character's (null removes one; "settings" and
// "secrets" merge key by key, and null removes a key). Every field it sets
// is checked as Parse checks it, and each problem gives its line and
// column in patch itself: in the text the user wrote, not in the merged
// character. "name" and "bio" may change but not be removed. file names
// the change in errors ("" for none).
func CheckPatch(file string, patch []byte) error { return charjson.CheckPatch(file, patch) }
