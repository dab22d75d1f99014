package bootstrap

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// The templates of elizaOS are Handlebars templates rendered with the
// state's values, double braces meaning the same as triple (no HTML
// escaping). render implements the part of Handlebars that prompt templates
// use:
//
//	{{key}} {{{key}}} {{a.b}}        a value; missing keys render as ""
//	{{#if key}}…{{else}}…{{/if}}     truthiness as in Handlebars: "", 0,
//	                                 false, null and [] are false
//	{{#unless key}}…{{/unless}}
//	{{#each list}}…{{/each}}         with {{this}}, {{@index}}, {{@first}},
//	                                 {{@last}}, {{@key}}, the item's fields
//	                                 and {{../key}}
//	{{!comment}} {{!-- comment --}}
//	{{~key~}}                        trims the whitespace on that side
//
// After rendering, {{name1}} … {{name10}} left in the output (from example
// conversations) become random names, one name per number, as elizaOS's
// composeRandomUser does.

type tmplNode struct {
	kind     int // tText, tVar, tIf, tUnless, tEach
	text     string
	path     string
	body     []*tmplNode
	elseBody []*tmplNode
}

const (
	tText = iota
	tVar
	tIf
	tUnless
	tEach
)

// tmplToken is one piece of a template: text or a {{…}} tag.
type tmplToken struct {
	tag  bool
	text string // the tag's inside, trimmed, or the text
}

var tagRe = regexp.MustCompile(`(?s)\{\{\{?(~?)(.*?)(~?)\}?\}\}`)

func tokenize(tpl string) []tmplToken {
	var out []tmplToken
	pos := 0
	trimNext := false
	for _, m := range tagRe.FindAllStringSubmatchIndex(tpl, -1) {
		text := tpl[pos:m[0]]
		if trimNext {
			text = strings.TrimLeft(text, " \t\r\n")
		}
		if m[3] > m[2] { // {{~
			text = strings.TrimRight(text, " \t\r\n")
		}
		if text != "" {
			out = append(out, tmplToken{text: text})
		}
		out = append(out, tmplToken{tag: true, text: strings.TrimSpace(tpl[m[4]:m[5]])})
		trimNext = m[7] > m[6] // ~}}
		pos = m[1]
	}
	text := tpl[pos:]
	if trimNext {
		text = strings.TrimLeft(text, " \t\r\n")
	}
	if text != "" {
		out = append(out, tmplToken{text: text})
	}
	return out
}

// parseTemplate builds the tree of a template. Unbalanced block tags are
// rendered as text rather than failing: a prompt must always be produced.
func parseTemplate(tpl string) []*tmplNode {
	toks := tokenize(tpl)
	nodes, _, _ := parseBlock(toks, 0, "")
	return nodes
}

// parseBlock parses until the closing tag of block (or the end). It returns
// the nodes, the else-nodes, and the next token index.
func parseBlock(toks []tmplToken, i int, block string) (body []*tmplNode, elseBody []*tmplNode, next int) {
	cur := &body
	for i < len(toks) {
		t := toks[i]
		if !t.tag {
			*cur = append(*cur, &tmplNode{kind: tText, text: t.text})
			i++
			continue
		}
		s := t.text
		switch {
		case strings.HasPrefix(s, "!"):
			i++
		case strings.HasPrefix(s, "/"):
			if block != "" && strings.TrimSpace(s[1:]) == block {
				return body, elseBody, i + 1
			}
			i++ // a stray closing tag is dropped
		case s == "else" || s == "^":
			if block == "" {
				i++
				continue
			}
			cur = &elseBody
			i++
		case strings.HasPrefix(s, "#"):
			f := strings.Fields(s[1:])
			if len(f) == 0 {
				i++
				continue
			}
			kind := map[string]int{"if": tIf, "unless": tUnless, "each": tEach}[f[0]]
			if kind == 0 {
				// An unknown helper block: keep its body.
				b, _, n := parseBlock(toks, i+1, f[0])
				*cur = append(*cur, b...)
				i = n
				continue
			}
			path := ""
			if len(f) > 1 {
				path = f[1]
			}
			b, e, n := parseBlock(toks, i+1, f[0])
			*cur = append(*cur, &tmplNode{kind: kind, path: path, body: b, elseBody: e})
			i = n
		default:
			*cur = append(*cur, &tmplNode{kind: tVar, path: s})
			i++
		}
	}
	return body, elseBody, i
}

// scope is one level of the data stack: the root values, or an item of an
// #each.
type scope struct {
	data  any
	index int
	key   string
	first bool
	last  bool
	each  bool
}

func renderTemplate(tpl string, values map[string]any) string {
	var b strings.Builder
	renderNodes(&b, parseTemplate(tpl), []scope{{data: values}})
	return replaceRandomNames(b.String())
}

func renderNodes(b *strings.Builder, nodes []*tmplNode, stack []scope) {
	for _, n := range nodes {
		switch n.kind {
		case tText:
			b.WriteString(n.text)
		case tVar:
			b.WriteString(valueString(lookupPath(n.path, stack)))
		case tIf, tUnless:
			ok := truthy(lookupPath(n.path, stack))
			if n.kind == tUnless {
				ok = !ok
			}
			if ok {
				renderNodes(b, n.body, stack)
			} else {
				renderNodes(b, n.elseBody, stack)
			}
		case tEach:
			v := lookupPath(n.path, stack)
			rendered := false
			switch x := v.(type) {
			case []any:
				for i, item := range x {
					renderNodes(b, n.body, append(stack, scope{data: item, index: i, first: i == 0, last: i == len(x)-1, each: true}))
					rendered = true
				}
			case []string:
				for i, item := range x {
					renderNodes(b, n.body, append(stack, scope{data: item, index: i, first: i == 0, last: i == len(x)-1, each: true}))
					rendered = true
				}
			case map[string]any:
				keys := make([]string, 0, len(x))
				for k := range x {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for i, k := range keys {
					renderNodes(b, n.body, append(stack, scope{data: x[k], index: i, key: k, first: i == 0, last: i == len(keys)-1, each: true}))
					rendered = true
				}
			}
			if !rendered {
				renderNodes(b, n.elseBody, stack)
			}
		}
	}
}

// lookupPath resolves this, @index, ../key and dotted paths.
func lookupPath(path string, stack []scope) any {
	path = strings.TrimSpace(path)
	if i := strings.IndexAny(path, " \t"); i >= 0 {
		path = path[:i] // helper arguments are not supported; use the first word
	}
	top := len(stack) - 1
	for strings.HasPrefix(path, "../") {
		path = path[3:]
		if top > 0 {
			top--
		}
	}
	s := stack[top]
	switch path {
	case "this", ".", "":
		return s.data
	case "@index":
		return float64(s.index)
	case "@key":
		return s.key
	case "@first":
		return s.first
	case "@last":
		return s.last
	}
	path = strings.TrimPrefix(path, "this.")
	parts := strings.Split(path, ".")
	// Like Handlebars, a name not found in an #each item is not looked up
	// in the outer scope; only the root is searched from an item for
	// convenience with names the item cannot have.
	for level := top; level >= 0; level-- {
		if v, ok := walk(stack[level].data, parts); ok {
			return v
		}
		if !stack[level].each {
			break
		}
	}
	if v, ok := walk(stack[0].data, parts); ok {
		return v
	}
	return nil
}

func walk(data any, parts []string) (any, bool) {
	cur := data
	for _, p := range parts {
		switch m := cur.(type) {
		case map[string]any:
			v, ok := m[p]
			if !ok {
				return nil, false
			}
			cur = v
		case map[string]string:
			v, ok := m[p]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(m) {
				return nil, false
			}
			cur = m[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case float64:
		return x != 0
	case int:
		return x != 0
	case int64:
		return x != 0
	case []any:
		return len(x) > 0
	case []string:
		return len(x) > 0
	}
	return true
}

// valueString prints a value as JavaScript's string conversion does,
// except that objects print as JSON rather than "[object Object]".
func valueString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case float64:
		if x == float64(int64(x)) && x < 1e21 && x > -1e21 {
			return strconv.FormatInt(int64(x), 10)
		}
		return strconv.FormatFloat(x, 'f', -1, 64)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case []string:
		return strings.Join(x, ",")
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = valueString(e)
		}
		return strings.Join(parts, ",")
	case fmt.Stringer:
		return x.String()
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// randomNames fill {{name1}} … placeholders in examples.
var randomNames = []string{
	"Ada", "Bruno", "Chiara", "Dmitri", "Esther", "Farid", "Greta", "Hiro", "Ines", "Jonas",
	"Kemi", "Lars", "Mina", "Nikolai", "Olu", "Priya", "Quentin", "Rosa", "Sami", "Tove",
	"Ulla", "Viktor", "Wen", "Ximena", "Yusuf", "Zofia",
}

var nameRe = regexp.MustCompile(`\{\{name(10|[1-9])\}\}`)

func replaceRandomNames(s string) string {
	if !strings.Contains(s, "{{name") {
		return s
	}
	perm := rand.Perm(len(randomNames))
	return nameRe.ReplaceAllStringFunc(s, func(m string) string {
		n, _ := strconv.Atoi(nameRe.FindStringSubmatch(m)[1])
		return randomNames[perm[(n-1)%len(perm)]]
	})
}
