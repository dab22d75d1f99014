package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/language"
)

// Character is an agent's definition, in elizaOS's JSON format.
type Character struct {
	ID              string             `json:"id,omitempty"`
	Name            string             `json:"name"`
	Username        string             `json:"username,omitempty"`
	System          string             `json:"system,omitempty"`
	Templates       map[string]string  `json:"templates,omitempty"`
	Bio             StringList         `json:"bio"`
	MessageExamples [][]ExampleMessage `json:"messageExamples,omitempty"`
	PostExamples    []string           `json:"postExamples,omitempty"`
	Topics          []string           `json:"topics,omitempty"`
	Adjectives      []string           `json:"adjectives,omitempty"`
	Knowledge       []json.RawMessage  `json:"knowledge,omitempty"`
	Plugins         []string           `json:"plugins,omitempty"`
	Settings        map[string]any     `json:"settings,omitempty"`
	Secrets         map[string]any     `json:"secrets,omitempty"`
	Style           Style              `json:"style,omitempty"`
}

// Style holds writing directions for every channel, chat and posts.
type Style struct {
	All  []string `json:"all,omitempty"`
	Chat []string `json:"chat,omitempty"`
	Post []string `json:"post,omitempty"`
}

// StringList is a string or a list of strings in JSON (elizaOS's bio).
type StringList []string

// UnmarshalJSON accepts "text" or ["text", ...].
func (s *StringList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = StringList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*s = many
	return nil
}

// MarshalJSON writes a list, [] when empty, never null: elizaOS rejects a
// null bio.
func (s StringList) MarshalJSON() ([]byte, error) {
	if s == nil {
		return []byte("[]"), nil
	}
	return json.Marshal([]string(s))
}

// MaxCharacterSize is the largest character file LoadCharacter and
// ParseCharacter accept. Real characters are a few KiB to a few hundred
// KiB: knowledge is referenced by path, not inlined.
const MaxCharacterSize = 16 << 20

// CharacterError is one problem found in a character file. Error() reads,
// for example:
//
//	character ./eliza.json: field "bio": want a string or a list of strings, got number (line 4, column 10)
//	character ./eliza.json: invalid JSON at line 3, column 5: invalid character '}' looking for beginning of object key string
//
// ParseCharacter and LoadCharacter return a *CharacterError, or several
// joined with errors.Join (one per line) when the file has several
// problems; errors.As finds the first.
type CharacterError struct {
	File    string // the file's path as given; empty for ParseCharacter
	Field   string // the JSON path of the field, e.g. bio[2] or style.chat; empty for whole-file problems
	Line    int    // 1-based line of the offending value; 0 when unknown
	Column  int    // 1-based column, in characters; 0 when unknown
	Problem string // what is wrong and, where it helps, what to write instead
	syntax  bool
}

func (e *CharacterError) Error() string {
	var b strings.Builder
	b.WriteString("character")
	if e.File != "" {
		b.WriteString(" ")
		b.WriteString(e.File)
	}
	b.WriteString(": ")
	switch {
	case e.syntax:
		fmt.Fprintf(&b, "invalid JSON at line %d, column %d: %s", e.Line, e.Column, e.Problem)
		return b.String()
	case e.Field != "":
		fmt.Fprintf(&b, "field %q: ", e.Field)
	}
	b.WriteString(e.Problem)
	if e.Line > 0 {
		fmt.Fprintf(&b, " (line %d, column %d)", e.Line, e.Column)
	}
	return b.String()
}

// maxReportedProblems caps how many problems one error lists.
const maxReportedProblems = 10

// LoadCharacter reads and validates an elizaOS character JSON file. Errors
// name the file and the field; see ParseCharacter.
func LoadCharacter(path string) (*Character, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &CharacterError{File: path, Problem: charReadProblem(err)}
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return nil, &CharacterError{File: path, Problem: "is a directory, want a character JSON file"}
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxCharacterSize+1))
	if err != nil {
		return nil, &CharacterError{File: path, Problem: charReadProblem(err)}
	}
	return parseCharacter(path, data)
}

func charReadProblem(err error) string {
	var pe *fs.PathError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "no such file"
	case errors.Is(err, fs.ErrPermission):
		return "permission denied: cannot read the file"
	case errors.As(err, &pe):
		return "cannot read the file: " + pe.Err.Error()
	}
	return "cannot read the file: " + err.Error()
}

// ParseCharacter validates and decodes an elizaOS character from JSON, as
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
// MaxCharacterSize is refused.
//
// Errors are *CharacterError values (see there), each naming the field
// and, where it can, the line and column.
func ParseCharacter(data []byte) (*Character, error) {
	return parseCharacter("", data)
}

func parseCharacter(file string, data []byte) (*Character, error) {
	fail := func(problem string) (*Character, error) {
		return nil, &CharacterError{File: file, Problem: problem}
	}
	if len(data) > MaxCharacterSize {
		return fail(fmt.Sprintf("larger than %d MiB, too big for a character file", MaxCharacterSize>>20))
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark
	if len(bytes.TrimSpace(data)) == 0 {
		return fail(`is empty, want a JSON object such as {"name": "Eliza", "bio": "..."}`)
	}
	if !json.Valid(data) {
		var discard any
		return nil, jsonProblem(file, data, json.Unmarshal(data, &discard))
	}
	var root any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers out of float64's range are reported with their field below
	if err := dec.Decode(&root); err != nil {
		return fail("invalid JSON: " + err.Error()) // unreachable after json.Valid
	}
	top, ok := root.(map[string]any)
	if !ok {
		return fail(fmt.Sprintf(`want a JSON object such as {"name": "Eliza", "bio": "..."} at the top level, got %s`, charJSONKind(root)))
	}

	v := &characterValidator{file: file, data: data}
	v.validate(top)
	if len(v.problems) > 0 {
		return nil, v.err()
	}
	return buildCharacter(top), nil
}

// buildCharacter makes a Character from a validated document. It matches
// keys exactly, as elizaOS does; encoding/json would also take "Text" for
// "text" inside nested objects where elizaOS keeps unknown keys.
func buildCharacter(top map[string]any) *Character {
	c := &Character{
		ID:           charStr(top, "id"),
		Name:         charStr(top, "name"),
		Username:     charStr(top, "username"),
		System:       charStr(top, "system"),
		PostExamples: charStrs(top["postExamples"]),
		Topics:       charStrs(top["topics"]),
		Adjectives:   charStrs(top["adjectives"]),
		Plugins:      charStrs(top["plugins"]),
	}
	switch b := top["bio"].(type) {
	case string:
		c.Bio = StringList{b}
	case []any:
		c.Bio = StringList(charStrs(b))
	}
	if t, ok := top["templates"].(map[string]any); ok {
		c.Templates = make(map[string]string, len(t))
		for k, v := range t {
			c.Templates[k] = v.(string)
		}
	}
	if convs, ok := top["messageExamples"].([]any); ok {
		c.MessageExamples = make([][]ExampleMessage, len(convs))
		for i, conv := range convs {
			msgs := conv.([]any)
			c.MessageExamples[i] = make([]ExampleMessage, len(msgs))
			for j, msg := range msgs {
				m := msg.(map[string]any)
				c.MessageExamples[i][j] = ExampleMessage{Name: charStr(m, "name"), Content: buildContent(m["content"].(map[string]any))}
			}
		}
	}
	if k, ok := top["knowledge"].([]any); ok {
		c.Knowledge = make([]json.RawMessage, len(k))
		for i, e := range k {
			c.Knowledge[i], _ = json.Marshal(e) // json.Number marshals as written
		}
	}
	if m, ok := top["settings"].(map[string]any); ok {
		c.Settings = plainJSON(m).(map[string]any)
	}
	if m, ok := top["secrets"].(map[string]any); ok {
		c.Secrets = plainJSON(m).(map[string]any)
	}
	if m, ok := top["style"].(map[string]any); ok {
		c.Style = Style{All: charStrs(m["all"]), Chat: charStrs(m["chat"]), Post: charStrs(m["post"])}
	}
	return c
}

// charStr returns m[k] if it is a string, else "".
func charStr(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// charStrs converts a validated list of strings; nil when x is no list.
func charStrs(x any) []string {
	list, ok := x.([]any)
	if !ok {
		return nil
	}
	out := make([]string, len(list))
	for i, e := range list {
		out[i] = e.(string)
	}
	return out
}

// buildContent makes a Content from a validated object: the named keys go
// to their fields, every other key to Extra.
func buildContent(m map[string]any) Content {
	c := Content{
		Text:        charStr(m, "text"),
		Thought:     charStr(m, "thought"),
		Actions:     charStrs(m["actions"]),
		Providers:   charStrs(m["providers"]),
		Source:      charStr(m, "source"),
		Target:      charStr(m, "target"),
		URL:         charStr(m, "url"),
		InReplyTo:   charStr(m, "inReplyTo"),
		ChannelType: ChannelType(charStr(m, "channelType")),
	}
	if list, ok := m["attachments"].([]any); ok {
		c.Attachments = make([]Media, len(list))
		for i, a := range list {
			am := a.(map[string]any)
			c.Attachments[i] = Media{
				ID: charStr(am, "id"), URL: charStr(am, "url"), Title: charStr(am, "title"), Source: charStr(am, "source"),
				Description: charStr(am, "description"), Text: charStr(am, "text"), ContentType: charStr(am, "contentType"),
			}
		}
	}
	for k, v := range m {
		if charContentKeys[k] {
			continue
		}
		if c.Extra == nil {
			c.Extra = map[string]any{}
		}
		c.Extra[k] = plainJSON(v)
	}
	return c
}

// charContentKeys are the keys buildContent puts in Content's fields.
var charContentKeys = map[string]bool{
	"text": true, "thought": true, "actions": true, "providers": true, "source": true,
	"target": true, "url": true, "inReplyTo": true, "attachments": true, "channelType": true,
}

// plainJSON returns x with every json.Number turned into a float64, as
// encoding/json decodes numbers into an any. Numbers were range-checked.
func plainJSON(x any) any {
	switch x := x.(type) {
	case json.Number:
		f, _ := strconv.ParseFloat(string(x), 64)
		return f
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plainJSON(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = plainJSON(e)
		}
		return out
	}
	return x
}

// jsonProblem turns an encoding/json syntax error into a CharacterError
// with the position of the offending byte.
func jsonProblem(file string, data []byte, err error) error {
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return &CharacterError{File: file, Problem: "invalid JSON: " + fmt.Sprint(err)}
	}
	off := int(se.Offset) - 1 // Offset counts the offending byte
	msg := se.Error()
	if msg == "unexpected end of JSON input" {
		off = len(data)
		msg = "the file ends in the middle of a value; a closing } or ] or \" may be missing"
	}
	line, col := charLineColumn(data, off)
	return &CharacterError{File: file, Line: line, Column: col, Problem: msg, syntax: true}
}

// charLineColumn gives the 1-based line and column (in characters) of byte
// offset off.
func charLineColumn(data []byte, off int) (line, col int) {
	if off > len(data) {
		off = len(data)
	}
	if off < 0 {
		off = 0
	}
	before := data[:off]
	line = 1 + bytes.Count(before, []byte("\n"))
	lineStart := bytes.LastIndexByte(before, '\n') + 1
	return line, 1 + utf8.RuneCount(before[lineStart:])
}

// charJSONKind names the JSON type of a decoded value for error messages.
func charJSONKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64, json.Number:
		return "number"
	case string:
		return "string"
	case []any:
		return "list"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// The top-level keys of elizaOS 1.x's character schema, in its order.
var characterKeys = []string{
	"id", "name", "username", "system", "templates", "bio", "messageExamples", "postExamples",
	"topics", "adjectives", "knowledge", "plugins", "settings", "secrets", "style",
}

// Hints for keys that elizaOS 0.x characters had and 1.x rejects.
var legacyKeyHints = map[string]string{
	"lore":                     `"lore" is from elizaOS 0.x; move its lines into "bio" and remove it`,
	"clients":                  `"clients" is from elizaOS 0.x; platforms are plugins now: list e.g. "@elizaos/plugin-discord" in "plugins" and remove it`,
	"modelProvider":            `"modelProvider" is from elizaOS 0.x; the model comes from a plugin now: list e.g. "@elizaos/plugin-openai" in "plugins" and remove it`,
	"imageModelProvider":       `"imageModelProvider" is from elizaOS 0.x; image models come from plugins now: remove it`,
	"imageVisionModelProvider": `"imageVisionModelProvider" is from elizaOS 0.x; vision models come from plugins now: remove it`,
	"people":                   `"people" is from elizaOS 0.x: remove it`,
}

// charPathElem is a key (string) or an index (int) in a JSON document.
type charPathElem any

func charFormatPath(path []charPathElem) string {
	var b strings.Builder
	for _, p := range path {
		switch p := p.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", p)
		case string:
			if charPlainKey(p) {
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(p)
			} else {
				fmt.Fprintf(&b, "[%s]", strconv.Quote(p))
			}
		}
	}
	return b.String()
}

func charPlainKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c != '_' && c != '$' && !('a' <= c && c <= 'z') && !('A' <= c && c <= 'Z') && !(i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

func charAppendPath(path []charPathElem, e charPathElem) []charPathElem {
	return append(path[:len(path):len(path)], e)
}

type characterValidator struct {
	file     string
	data     []byte
	problems []*CharacterError
	dropped  int
}

func (v *characterValidator) add(path []charPathElem, problem string) {
	if len(v.problems) >= maxReportedProblems {
		v.dropped++
		return
	}
	e := &CharacterError{File: v.file, Field: charFormatPath(path), Problem: problem}
	if off, ok := charLocateJSON(v.data, path); ok {
		e.Line, e.Column = charLineColumn(v.data, off)
	}
	v.problems = append(v.problems, e)
}

func (v *characterValidator) err() error {
	if len(v.problems) == 1 && v.dropped == 0 {
		return v.problems[0]
	}
	errs := make([]error, 0, len(v.problems)+1)
	for _, p := range v.problems {
		errs = append(errs, p)
	}
	if v.dropped > 0 {
		errs = append(errs, &CharacterError{File: v.file,
			Problem: fmt.Sprintf("and %d more problems not listed", v.dropped)})
	}
	return errors.Join(errs...)
}

func (v *characterValidator) validate(top map[string]any) {
	v.numbersInRange(nil, top)

	// Unknown keys first: a misspelt key often explains a missing one.
	known := make(map[string]bool, len(characterKeys))
	for _, k := range characterKeys {
		known[k] = true
	}
	for _, k := range charSortedKeys(top) {
		if !known[k] {
			v.add([]charPathElem{k}, unknownKeyProblem(k))
		}
	}

	p := func(k string) []charPathElem { return []charPathElem{k} }
	if id, ok := top["id"]; ok {
		s, isString := id.(string)
		switch {
		case !isString:
			v.add(p("id"), "want a UUID string such as \"b850bc30-45f8-0041-a00a-83df46d8555d\", got "+charJSONKind(id))
		case !IsUUID(s):
			v.add(p("id"), fmt.Sprintf("want a UUID (8-4-4-4-12 hex digits, such as \"b850bc30-45f8-0041-a00a-83df46d8555d\"), got %s; remove \"id\" to derive one from the name", charQuote(s)))
		}
	}
	if name, ok := top["name"]; !ok {
		v.add(nil, `missing field "name": every character needs one, e.g. "name": "Eliza"`)
	} else if s, isString := name.(string); !isString {
		v.add(p("name"), "want a string, got "+charJSONKind(name))
	} else if s == "" {
		v.add(p("name"), `must not be empty; give the agent a name, e.g. "name": "Eliza"`)
	}
	for _, k := range []string{"username", "system"} {
		if x, ok := top[k]; ok {
			v.wantString(p(k), x)
		}
	}
	if x, ok := top["templates"]; ok {
		v.stringMap(p("templates"), x, "a string (a prompt template)")
	}
	if bio, ok := top["bio"]; !ok {
		v.add(nil, `missing field "bio": want a string or a list of strings describing the character`)
	} else {
		switch b := bio.(type) {
		case string:
		case []any:
			for i, line := range b {
				if _, isString := line.(string); !isString {
					v.add(charAppendPath(p("bio"), i), "want a string (bio is a string or a list of strings), got "+charJSONKind(line))
				}
			}
		default:
			v.add(p("bio"), "want a string or a list of strings, got "+charJSONKind(bio))
		}
	}
	if x, ok := top["messageExamples"]; ok {
		v.messageExamples(p("messageExamples"), x)
	}
	for _, k := range []string{"postExamples", "topics", "adjectives", "plugins"} {
		if x, ok := top[k]; ok {
			v.stringList(p(k), x)
		}
	}
	if x, ok := top["knowledge"]; ok {
		v.knowledge(p("knowledge"), x)
	}
	if x, ok := top["settings"]; ok {
		v.settings(p("settings"), x)
	}
	if x, ok := top["secrets"]; ok {
		v.secrets(p("secrets"), x)
	}
	if x, ok := top["style"]; ok {
		v.style(p("style"), x)
	}
}

// numbersInRange reports every number in x that does not fit a float64
// (JavaScript would read it as Infinity).
func (v *characterValidator) numbersInRange(path []charPathElem, x any) {
	switch x := x.(type) {
	case json.Number:
		if _, err := strconv.ParseFloat(string(x), 64); err != nil {
			v.add(path, fmt.Sprintf("number %s is out of range", x))
		}
	case []any:
		for i, e := range x {
			v.numbersInRange(charAppendPath(path, i), e)
		}
	case map[string]any:
		for _, k := range charSortedKeys(x) {
			v.numbersInRange(charAppendPath(path, k), x[k])
		}
	}
}

func unknownKeyProblem(k string) string {
	if hint, ok := legacyKeyHints[k]; ok {
		return "unknown field: " + hint
	}
	norm := func(s string) string {
		return strings.ToLower(strings.NewReplacer("_", "", "-", "", " ", "").Replace(s))
	}
	for _, known := range characterKeys {
		if norm(known) == norm(k) {
			return fmt.Sprintf("unknown field; did you mean %q?", known)
		}
	}
	return "unknown field; a character may only have " + strings.Join(characterKeys, ", ")
}

func charQuote(s string) string {
	if utf8.RuneCountInString(s) > 60 {
		r := []rune(s)
		s = string(r[:60]) + "…"
	}
	return strconv.Quote(s)
}

func charSortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (v *characterValidator) wantString(path []charPathElem, x any) bool {
	if _, ok := x.(string); !ok {
		v.add(path, "want a string, got "+charJSONKind(x))
		return false
	}
	return true
}

func (v *characterValidator) wantBool(path []charPathElem, x any) {
	if _, ok := x.(bool); !ok {
		v.add(path, "want true or false, got "+charJSONKind(x))
	}
}

func (v *characterValidator) stringList(path []charPathElem, x any) {
	list, ok := x.([]any)
	if !ok {
		v.add(path, "want a list of strings, got "+charJSONKind(x))
		return
	}
	for i, e := range list {
		if _, ok := e.(string); !ok {
			v.add(charAppendPath(path, i), "want a string, got "+charJSONKind(e))
		}
	}
}

func (v *characterValidator) object(path []charPathElem, x any, want string) (map[string]any, bool) {
	m, ok := x.(map[string]any)
	if !ok {
		v.add(path, "want "+want+", got "+charJSONKind(x))
	}
	return m, ok
}

func (v *characterValidator) stringMap(path []charPathElem, x any, want string) {
	m, ok := v.object(path, x, "an object of names to strings")
	if !ok {
		return
	}
	for _, k := range charSortedKeys(m) {
		if _, ok := m[k].(string); !ok {
			v.add(charAppendPath(path, k), "want "+want+", got "+charJSONKind(m[k]))
		}
	}
}

func (v *characterValidator) settings(path []charPathElem, x any) {
	m, ok := v.object(path, x, "an object of setting names to values")
	if !ok {
		return
	}
	for _, k := range charSortedKeys(m) {
		if m[k] == nil {
			v.add(charAppendPath(path, k), "want a string, number, boolean, object or list, got null; remove the key to leave it unset")
		}
	}
}

func (v *characterValidator) secrets(path []charPathElem, x any) {
	m, ok := v.object(path, x, "an object of secret names to values")
	if !ok {
		return
	}
	for _, k := range charSortedKeys(m) {
		switch m[k].(type) {
		case string, bool, json.Number:
		default:
			v.add(charAppendPath(path, k), "want a string, number or boolean, got "+charJSONKind(m[k]))
		}
	}
}

func (v *characterValidator) style(path []charPathElem, x any) {
	m, ok := v.object(path, x, `an object with "all", "chat" and "post" lists`)
	if !ok {
		return
	}
	for _, k := range []string{"all", "chat", "post"} {
		if e, ok := m[k]; ok {
			v.stringList(charAppendPath(path, k), e)
		}
	}
}

func (v *characterValidator) knowledge(path []charPathElem, x any) {
	list, ok := x.([]any)
	if !ok {
		v.add(path, "want a list of file paths or {\"path\": ...} / {\"directory\": ...} objects, got "+charJSONKind(x))
		return
	}
	for i, e := range list {
		ep := charAppendPath(path, i)
		switch e := e.(type) {
		case string:
		case map[string]any:
			key := "path"
			if _, hasPath := e["path"]; !hasPath {
				if _, hasDir := e["directory"]; hasDir {
					key = "directory"
				}
			}
			if p, ok := e[key]; !ok {
				v.add(ep, `want "path" or "directory" in a knowledge entry`)
			} else {
				v.wantString(charAppendPath(ep, key), p)
			}
			if s, ok := e["shared"]; ok {
				v.wantBool(charAppendPath(ep, "shared"), s)
			}
		default:
			v.add(ep, "want a file path or a {\"path\": ...} / {\"directory\": ...} object, got "+charJSONKind(e))
		}
	}
}

var (
	charChannelTypes = []string{
		string(ChannelSelf), string(ChannelDM), string(ChannelGroup), string(ChannelVoiceDM),
		string(ChannelVoiceGroup), string(ChannelFeed), string(ChannelThread), string(ChannelWorld),
		string(ChannelForum), string(ChannelAPI),
	}
	charMediaTypes = []string{"image", "video", "audio", "document", "link"}
)

func (v *characterValidator) messageExamples(path []charPathElem, x any) {
	convs, ok := x.([]any)
	if !ok {
		v.add(path, "want a list of conversations (each a list of {\"name\": ..., \"content\": {\"text\": ...}}), got "+charJSONKind(x))
		return
	}
	for i, conv := range convs {
		cp := charAppendPath(path, i)
		msgs, ok := conv.([]any)
		if !ok {
			v.add(cp, "want a conversation: a list of {\"name\": ..., \"content\": {\"text\": ...}}, got "+charJSONKind(conv))
			continue
		}
		for j, msg := range msgs {
			mp := charAppendPath(cp, j)
			m, ok := v.object(mp, msg, `a message {"name": ..., "content": {"text": ...}}`)
			if !ok {
				continue
			}
			if name, ok := m["name"]; !ok {
				v.add(mp, `missing "name" (who speaks, e.g. "{{name1}}" or the character's name)`)
			} else {
				v.wantString(charAppendPath(mp, "name"), name)
			}
			if content, ok := m["content"]; !ok {
				v.add(mp, `missing "content", e.g. "content": {"text": "hello"}`)
			} else {
				v.content(charAppendPath(mp, "content"), content)
			}
		}
	}
}

func (v *characterValidator) content(path []charPathElem, x any) {
	m, ok := v.object(path, x, `an object such as {"text": "hello"}`)
	if !ok {
		return
	}
	for _, k := range []string{"text", "thought", "source", "target", "url"} {
		if e, ok := m[k]; ok {
			v.wantString(charAppendPath(path, k), e)
		}
	}
	for _, k := range []string{"actions", "providers"} {
		if e, ok := m[k]; ok {
			v.stringList(charAppendPath(path, k), e)
		}
	}
	if e, ok := m["inReplyTo"]; ok {
		if v.wantString(charAppendPath(path, "inReplyTo"), e) && !IsUUID(e.(string)) {
			v.add(charAppendPath(path, "inReplyTo"), "want a UUID, got "+charQuote(e.(string)))
		}
	}
	if e, ok := m["channelType"]; ok {
		v.enum(charAppendPath(path, "channelType"), e, charChannelTypes)
	}
	if e, ok := m["attachments"]; ok {
		list, isList := e.([]any)
		if !isList {
			v.add(charAppendPath(path, "attachments"), "want a list of media objects, got "+charJSONKind(e))
			return
		}
		for i, a := range list {
			ap := charAppendPath(charAppendPath(path, "attachments"), i)
			am, ok := v.object(ap, a, `a media object {"id": ..., "url": ...}`)
			if !ok {
				continue
			}
			for _, k := range []string{"id", "url"} {
				if f, ok := am[k]; !ok {
					v.add(ap, fmt.Sprintf("missing %q", k))
				} else {
					v.wantString(charAppendPath(ap, k), f)
				}
			}
			for _, k := range []string{"title", "source", "description", "text"} {
				if f, ok := am[k]; ok {
					v.wantString(charAppendPath(ap, k), f)
				}
			}
			if f, ok := am["contentType"]; ok {
				v.enum(charAppendPath(ap, "contentType"), f, charMediaTypes)
			}
		}
	}
}

func (v *characterValidator) enum(path []charPathElem, x any, allowed []string) {
	if !v.wantString(path, x) {
		return
	}
	for _, a := range allowed {
		if x.(string) == a {
			return
		}
	}
	v.add(path, fmt.Sprintf("want one of %s, got %s", strings.Join(allowed, ", "), charQuote(x.(string))))
}

// charLocateJSON returns the byte offset where the value at path starts in
// data, which must be valid JSON.
func charLocateJSON(data []byte, path []charPathElem) (int, bool) {
	if len(path) == 0 {
		return 0, false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var walk func(depth int, onPath bool) (int, bool, error)
	// walk reads one value. When onPath and depth == len(path) the value is
	// the target and its start is returned.
	walk = func(depth int, onPath bool) (int, bool, error) {
		start := int(dec.InputOffset())
		if onPath && depth == len(path) {
			for start < len(data) && strings.IndexByte(" \t\r\n:,", data[start]) >= 0 {
				start++
			}
			return start, true, nil
		}
		tok, err := dec.Token()
		if err != nil {
			return 0, false, err
		}
		delim, isDelim := tok.(json.Delim)
		if !isDelim {
			return 0, false, nil
		}
		for i := 0; dec.More(); i++ {
			want := onPath && depth < len(path)
			if delim == '{' {
				kt, err := dec.Token()
				if err != nil {
					return 0, false, err
				}
				k, _ := kt.(string)
				want = want && path[depth] == charPathElem(k)
			} else {
				want = want && path[depth] == charPathElem(i)
			}
			off, found, err := walk(depth+1, want)
			if err != nil || found {
				return off, found, err
			}
			if want {
				return 0, false, nil // the path leads into a value it is not in
			}
		}
		_, err = dec.Token() // the closing delimiter
		return 0, false, err
	}
	off, found, err := walk(0, true)
	return off, found && err == nil
}

// AgentID is the id of the agent this character defines: ID when it is a
// UUID, else StringToUUID(Name), as elizaOS derives it. Renaming a
// character without an id therefore changes its agent id.
func (c *Character) AgentID() string {
	if IsUUID(c.ID) {
		return c.ID
	}
	return StringToUUID(c.Name)
}

// Setting resolves a setting for this character the way elizaOS's
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
func (c *Character) Setting(key string, env map[string]string) (string, bool) {
	for _, v := range c.settingLayers(key, env) {
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
func (c *Character) settingLayers(key string, env map[string]string) [4]any {
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
// ResolvedSettings(env)[k] is what Setting(k, env) returns.
func (c *Character) ResolvedSettings(env map[string]string) map[string]string {
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
		if v, ok := c.Setting(k, env); ok {
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
func (c *Character) ApplyEnv(env map[string]string) {
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

// DefaultCharacter returns a new copy of the built-in character, Eliza, used
// when no character file is given. Its plugins list is empty: the host adds
// its default plugins.
func DefaultCharacter() *Character {
	return &Character{
		Name:     "Eliza",
		Username: "eliza",
		System: "You are Eliza, a friendly and capable assistant. Answer what was asked, " +
			"plainly and briefly, and say so when you are not sure. Ask a question back only " +
			"when a request is too unclear to act on.",
		Bio: StringList{
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
		Style: Style{
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
		MessageExamples: [][]ExampleMessage{
			{
				{Name: "{{name1}}", Content: Content{Text: "What's the difference between a list and a set?"}},
				{Name: "Eliza", Content: Content{Text: "A list keeps order and allows repeats; a set has no order and holds each item once. Use a set when you mostly ask \"is this in here?\"."}},
			},
			{
				{Name: "{{name1}}", Content: Content{Text: "I have to write a cover letter and I keep staring at the blank page."}},
				{Name: "Eliza", Content: Content{Text: "Start with one sentence on why this job and not another. Tell me the role and I'll help you shape the rest."}},
			},
			{
				{Name: "{{name1}}", Content: Content{Text: "Can you tell me tomorrow's weather in Lisbon?"}},
				{Name: "Eliza", Content: Content{Text: "I can't look that up from here, so I'd only be guessing. A weather service will have it; in spring Lisbon is usually mild."}},
			},
			{
				{Name: "{{name1}}", Content: Content{Text: "thanks, that fixed it!"}},
				{Name: "Eliza", Content: Content{Text: "Glad to hear it. Good luck with the rest."}},
			},
		},
		PostExamples: []string{
			"Naming things is hard because a name is a promise about what the thing will do.",
			"Small habit that pays off: write down the question before you search for the answer.",
			"A good example beats a good definition almost every time.",
		},
	}
}
