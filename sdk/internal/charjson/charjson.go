package charjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/agenthost/agenthost/internal/contract"
)

// MaxSize is the largest character file Decode accepts. Real characters are a few KiB to a few hundred
// KiB: knowledge is referenced by path, not inlined.
const MaxSize = 16 << 20

// Error is one problem found in a character file. Error() reads,
// for example:
//
//	character ./eliza.json: field "bio": want a string or a list of strings, got number (line 4, column 10)
//	character ./eliza.json: invalid JSON at line 3, column 5: invalid character '}' looking for beginning of object key string
//
// Decode and CheckPatch return an *Error, or several
// joined with errors.Join (one per line) when the file has several
// problems; errors.As finds the first.
type Error struct {
	File    string // the file's path as given; empty for none
	Field   string // the JSON path of the field, e.g. bio[2] or style.chat; empty for whole-file problems
	Line    int    // 1-based line of the offending value; 0 when unknown
	Column  int    // 1-based column, in characters; 0 when unknown
	Problem string // what is wrong and, where it helps, what to write instead
	syntax  bool
}

func (e *Error) Error() string {
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

// Decode validates an elizaOS character in JSON, as strictly as elizaOS
// 1.x's character schema (see sdk/character.Parse), and returns its
// top-level object with numbers as json.Number. Errors are *Error values,
// each naming the field and, where it can, the line and column. file names
// the character in errors ("" for none).
func Decode(file string, data []byte) (map[string]any, error) {
	fail := func(problem string) (map[string]any, error) {
		return nil, &Error{File: file, Problem: problem}
	}
	if len(data) > MaxSize {
		return fail(fmt.Sprintf("larger than %d MiB, too big for a character file", MaxSize>>20))
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
	return top, nil
}

// maxReportedProblems caps how many problems one error lists.
const maxReportedProblems = 10

// ReadProblem says why a character file could not be read, in words a
// user can act on.
func ReadProblem(err error) string {
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

// CheckPatch checks a change to a character as `agenthost agent
// set` and PATCH /api/agents/{id} take it: a JSON object of top-level
// fields, each replacing the character's (null removes one; "settings" and
// "secrets" merge key by key, and null removes a key). Every field it sets
// is checked as Decode checks it, and each problem gives its line
// and column in patch itself: in the text the user wrote, not in the
// merged character. "name" and "bio" may change but not be removed. file
// names the change in errors ("" for none).
func CheckPatch(file string, patch []byte) error {
	fail := func(problem string) error { return &Error{File: file, Problem: problem} }
	if len(patch) > MaxSize {
		return fail(fmt.Sprintf("larger than %d MiB, too big for a character", MaxSize>>20))
	}
	data := bytes.TrimPrefix(patch, []byte("\xef\xbb\xbf"))
	const want = `want a JSON object of the fields to change, such as {"bio": "..."}`
	if len(bytes.TrimSpace(data)) == 0 {
		return fail("is empty, " + want)
	}
	if !json.Valid(data) {
		var discard any
		return jsonProblem(file, data, json.Unmarshal(data, &discard))
	}
	var root any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&root); err != nil {
		return fail("invalid JSON: " + err.Error())
	}
	top, ok := root.(map[string]any)
	if !ok {
		return fail(want + " at the top level, got " + charJSONKind(root))
	}
	v := &characterValidator{file: file, data: data, patch: true}
	v.validate(top)
	if len(v.problems) > 0 {
		return v.err()
	}
	return nil
}

// dropNulls deletes the null values of an object (and of its object under
// key inner): in a patch they remove keys and have nothing to check.
func dropNulls(x any, inner string) {
	m, ok := x.(map[string]any)
	if !ok {
		return
	}
	for k, e := range m {
		if e == nil {
			delete(m, k)
		}
	}
	if inner != "" {
		dropNulls(m[inner], "")
	}
}

// jsonProblem turns an encoding/json syntax error into an *Error
// with the position of the offending byte.
func jsonProblem(file string, data []byte, err error) error {
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return &Error{File: file, Problem: "invalid JSON: " + fmt.Sprint(err)}
	}
	off := int(se.Offset) - 1 // Offset counts the offending byte
	msg := se.Error()
	if msg == "unexpected end of JSON input" {
		off = len(data)
		msg = "the file ends in the middle of a value; a closing } or ] or \" may be missing"
	}
	line, col := charLineColumn(data, off)
	return &Error{File: file, Line: line, Column: col, Problem: msg, syntax: true}
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
	problems []*Error
	dropped  int
	// patch: the document is a change to a character (CheckPatch),
	// whose null values remove what they name and whose required fields
	// may be left out.
	patch bool
}

func (v *characterValidator) add(path []charPathElem, problem string) {
	if len(v.problems) >= maxReportedProblems {
		v.dropped++
		return
	}
	e := &Error{File: v.file, Field: charFormatPath(path), Problem: problem}
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
		errs = append(errs, &Error{File: v.file,
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
	if v.patch {
		for _, k := range []string{"name", "bio"} {
			if x, ok := top[k]; ok && x == nil {
				v.add(p(k), "cannot be removed: every character needs one; give a new value instead of null")
				delete(top, k)
			}
		}
		for k, x := range top {
			if x == nil {
				delete(top, k) // removes the field: nothing to check
			}
		}
		dropNulls(top["settings"], "secrets")
		dropNulls(top["secrets"], "")
	}
	if id, ok := top["id"]; ok {
		s, isString := id.(string)
		switch {
		case !isString:
			v.add(p("id"), "want a UUID string such as \"b850bc30-45f8-0041-a00a-83df46d8555d\", got "+charJSONKind(id))
		case !contract.IsUUID(s):
			v.add(p("id"), fmt.Sprintf("want a UUID (8-4-4-4-12 hex digits, such as \"b850bc30-45f8-0041-a00a-83df46d8555d\"), got %s; remove \"id\" to derive one from the name", charQuote(s)))
		}
	}
	if name, ok := top["name"]; !ok {
		if !v.patch {
			v.add(nil, `missing field "name": every character needs one, e.g. "name": "Eliza"`)
		}
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
		if !v.patch {
			v.add(nil, `missing field "bio": want a string or a list of strings describing the character`)
		}
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
	// ChannelTypes are the values of sdk.ChannelType (sdk's tests check
	// that they agree): this package is below sdk and cannot name them.
	ChannelTypes = []string{
		"SELF", "DM", "GROUP", "VOICE_DM", "VOICE_GROUP", "FEED", "THREAD", "WORLD", "FORUM", "API",
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
		if v.wantString(charAppendPath(path, "inReplyTo"), e) && !contract.IsUUID(e.(string)) {
			v.add(charAppendPath(path, "inReplyTo"), "want a UUID, got "+charQuote(e.(string)))
		}
	}
	if e, ok := m["channelType"]; ok {
		v.enum(charAppendPath(path, "channelType"), e, ChannelTypes)
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
