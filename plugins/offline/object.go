package offline

import (
	"context"
	"encoding/json"
	"sort"
	"strings"

	"github.com/agenthost/agenthost/sdk"
)

// handleObject serves OBJECT_SMALL and OBJECT_LARGE with valid JSON that
// has the shape asked for and no invented content, so that whatever reads
// it finds nothing to act on: with params "output" = "enum", the first of
// "enumValues"; with "array", []; with a JSON Schema in "schema", a value
// of that schema; else the shape of the last JSON example in the prompt;
// else {"thought", "text"}. In every shape, fields named thought, text,
// message or reply carry the engine's answer; other strings are empty,
// numbers 0, booleans false and lists empty. a may be nil.
func handleObject(ctx context.Context, a *sdk.Agent, req *sdk.ModelRequest) (*sdk.ModelResponse, error) {
	if req == nil {
		return nil, errNoRequest
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p := readPrompt(req.Prompt)
	r := engine().respond(p.history, p.input)
	f := filler{thought: thought(r), text: r.text}

	var v any
	output, _ := req.Params["output"].(string)
	switch {
	case output == "enum":
		v = ""
		if values, ok := req.Params["enumValues"].([]any); ok && len(values) > 0 {
			v = values[0]
		}
	case output == "array":
		v = []any{}
	case req.Params["schema"] != nil:
		v = f.fromSchema(req.Params["schema"], "", 0)
	default:
		if example, ok := lastJSONExample(req.Prompt); ok {
			v = f.fromExample(example, "", 0)
		} else {
			v = map[string]any{"thought": f.thought, "text": f.text}
		}
	}
	out, err := json.Marshal(v)
	if err != nil {
		out = []byte("{}")
	}
	return &sdk.ModelResponse{JSON: out, Model: modelName, Usage: usage(req.System+"\n"+req.Prompt, string(out))}, nil
}

// maxShapeDepth bounds recursion through a schema or example.
const maxShapeDepth = 16

// filler builds values; thought and text go into fields so named.
type filler struct{ thought, text string }

func (f filler) stringFor(key string) string {
	switch strings.ToLower(key) {
	case "thought", "reasoning":
		return f.thought
	case "text", "message", "reply", "response":
		return f.text
	}
	return ""
}

// fromSchema returns the least value that fits a JSON Schema: required and
// listed properties, a const or the first enum value, the first type of a
// union or the first branch of anyOf/oneOf/allOf.
func (f filler) fromSchema(s any, key string, depth int) any {
	m, ok := s.(map[string]any)
	if !ok || depth > maxShapeDepth {
		return nil
	}
	if c, ok := m["const"]; ok {
		return c
	}
	if e, ok := m["enum"].([]any); ok && len(e) > 0 {
		return e[0]
	}
	for _, k := range []string{"anyOf", "oneOf", "allOf"} {
		if alts, ok := m[k].([]any); ok && len(alts) > 0 {
			return f.fromSchema(alts[0], key, depth+1)
		}
	}
	typ := m["type"]
	if list, ok := typ.([]any); ok {
		typ = nil
		for _, t := range list {
			if t != "null" {
				typ = t
				break
			}
		}
	}
	if typ == nil {
		if _, ok := m["properties"]; ok {
			typ = "object"
		} else if _, ok := m["items"]; ok {
			typ = "array"
		}
	}
	switch typ {
	case "object":
		out := map[string]any{}
		props, _ := m["properties"].(map[string]any)
		for _, name := range sortedKeys(props) {
			out[name] = f.fromSchema(props[name], name, depth+1)
		}
		return out
	case "array":
		return []any{}
	case "string":
		return f.stringFor(key)
	case "number", "integer":
		if min, ok := m["minimum"].(float64); ok && min > 0 {
			return min
		}
		return 0
	case "boolean":
		return false
	}
	return nil
}

// fromExample keeps an example's shape and empties its content.
func (f filler) fromExample(v any, key string, depth int) any {
	if depth > maxShapeDepth {
		return nil
	}
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = f.fromExample(e, k, depth+1)
		}
		return out
	case []any:
		return []any{}
	case string:
		return f.stringFor(key)
	case float64:
		return 0
	case bool:
		return false
	}
	return nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// lastJSONExample finds the last JSON object in a prompt: the last
// balanced {…} that parses, fenced or not.
func lastJSONExample(prompt string) (any, bool) {
	// A bounded number of candidates: a prompt full of braces costs little.
	for end, tries := len(prompt), 0; end > 0 && tries < 32; tries++ {
		j := strings.LastIndexByte(prompt[:end], '}')
		if j < 0 {
			return nil, false
		}
		// Walk back to the '{' that balances it, ignoring braces in
		// strings.
		depth, inString := 0, false
		for i := j; i >= 0; i-- {
			c := prompt[i]
			if c == '"' && (i == 0 || prompt[i-1] != '\\') {
				inString = !inString
			}
			if inString {
				continue
			}
			if c == '}' {
				depth++
			} else if c == '{' {
				depth--
				if depth == 0 {
					var v any
					if json.Unmarshal([]byte(prompt[i:j+1]), &v) == nil {
						if _, ok := v.(map[string]any); ok {
							return v, true
						}
					}
					break
				}
			}
		}
		end = j
	}
	return nil, false
}
