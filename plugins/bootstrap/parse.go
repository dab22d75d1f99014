package bootstrap

import (
	"html"
	"regexp"
	"strings"

	"github.com/agenthost/agenthost/internal/contract"
)

// node is one element of the model's XML-ish answer: a tag with either text
// or child elements. Models write XML loosely, so the parser is tolerant:
// text that is not a well-formed element is kept as text, an unclosed tag
// is text, and the first <response> block wins.
type node struct {
	Name     string
	Text     string // the raw content, trimmed and unescaped
	Children []*node
}

// child returns the first child named name (case-insensitive).
func (n *node) child(name string) *node {
	if n == nil {
		return nil
	}
	for _, c := range n.Children {
		if strings.EqualFold(c.Name, name) {
			return c
		}
	}
	return nil
}

// all returns every child named name.
func (n *node) all(name string) []*node {
	if n == nil {
		return nil
	}
	var out []*node
	for _, c := range n.Children {
		if strings.EqualFold(c.Name, name) {
			out = append(out, c)
		}
	}
	return out
}

// get returns the text of the first child named name, or "".
func (n *node) get(name string) string {
	if c := n.child(name); c != nil {
		return c.Text
	}
	return ""
}

// has reports whether a child named name exists.
func (n *node) has(name string) bool { return n.child(name) != nil }

var tagName = regexp.MustCompile(`^<([A-Za-z_][A-Za-z0-9_.\-]*)(\s[^<>]*)?(/?)>`)

// parseElements reads the well-formed elements of s, in order. Anything
// between them is ignored.
func parseElements(s string) []*node {
	var out []*node
	for i := 0; i < len(s); {
		j := strings.IndexByte(s[i:], '<')
		if j < 0 {
			break
		}
		i += j
		m := tagName.FindStringSubmatch(s[i:])
		if m == nil {
			i++
			continue
		}
		name := m[1]
		if m[3] == "/" { // <providers/>
			out = append(out, &node{Name: name})
			i += len(m[0])
			continue
		}
		start := i + len(m[0])
		end, after := findClose(s, start, name)
		if end < 0 {
			i++ // an unclosed tag is text
			continue
		}
		out = append(out, newNode(name, s[start:end]))
		i = after
	}
	return out
}

// findClose finds the </name> that closes an element whose content starts
// at start, counting nested elements of the same name. It returns the end
// of the content and the index after the closing tag, or -1.
func findClose(s string, start int, name string) (int, int) {
	open, close := "<"+strings.ToLower(name), "</"+strings.ToLower(name)+">"
	low := strings.ToLower(s)
	depth := 0
	for i := start; i < len(s); {
		c := strings.Index(low[i:], close)
		if c < 0 {
			return -1, -1
		}
		// Nested openings of the same name before this close.
		o := strings.Index(low[i:], open)
		if o >= 0 && o < c && isTagBoundary(low, i+o+len(open)) {
			depth++
			i += o + len(open)
			continue
		}
		if depth == 0 {
			return i + c, i + c + len(close)
		}
		depth--
		i += c + len(close)
	}
	return -1, -1
}

func isTagBoundary(s string, i int) bool {
	return i < len(s) && (s[i] == '>' || s[i] == ' ' || s[i] == '/' || s[i] == '\t' || s[i] == '\n')
}

func newNode(name, content string) *node {
	n := &node{Name: name}
	if strings.Contains(content, "<") {
		n.Children = parseElements(content)
	}
	n.Text = strings.TrimSpace(unescape(stripCDATA(content)))
	return n
}

func stripCDATA(s string) string {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "<![CDATA[") && strings.HasSuffix(t, "]]>") {
		return t[len("<![CDATA[") : len(t)-len("]]>")]
	}
	return s
}

// parseXML returns the first <response> block of s, or else a node holding
// every top-level element of s; nil when s has no element at all.
func parseXML(s string) *node {
	s = stripFences(s)
	for _, n := range parseElements(s) {
		if strings.EqualFold(n.Name, "response") {
			return n
		}
	}
	els := parseElements(s)
	if len(els) == 0 {
		return nil
	}
	// One wrapper element (the model named its block differently): use it.
	if len(els) == 1 && len(els[0].Children) > 0 {
		return els[0]
	}
	return &node{Name: "response", Children: els}
}

func unescape(s string) string {
	if !strings.ContainsRune(s, '&') {
		return s
	}
	return html.UnescapeString(s)
}

func stripFences(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "```") {
		s = strings.TrimPrefix(s, "```")
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		} else {
			s = ""
		}
		s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "```"))
	}
	return s
}

// response is the model's parsed main answer.
type response struct {
	Thought   string
	Actions   []string
	Providers []string
	Text      string
	Simple    bool
}

// answerKind says how usable a model's answer was.
type answerKind int

const (
	answerEmpty  answerKind = iota // nothing at all
	answerBroken                   // markup, but no response in it
	answerPlain                    // plain text without markup: a reply
	answerXML                      // a parsed response
)

// looksLikeMarkup reports whether s has something tag-shaped in it.
var markupRe = regexp.MustCompile(`</?[A-Za-z_][A-Za-z0-9_.\-]*[^<>]*>`)

// parseResponse reads elizaOS's response format. A model that ignores the
// format and answers in plain text still produces a reply: the whole answer
// becomes the text.
func parseResponse(s string) (response, answerKind) {
	s = strings.TrimSpace(s)
	if s == "" {
		return response{}, answerEmpty
	}
	n := parseXML(s)
	if n != nil && (n.has("text") || n.has("actions") || n.has("message") || n.has("thought")) {
		r := response{Thought: n.get("thought"), Text: n.get("text")}
		if r.Text == "" {
			r.Text = n.get("message")
		}
		if a := n.child("actions"); a != nil {
			r.Actions = splitActions(a)
		}
		if p := n.child("providers"); p != nil {
			r.Providers = splitNames(p)
		}
		r.Simple = strings.EqualFold(n.get("simple"), "true")
		if len(r.Actions) == 0 && r.Text == "" {
			return r, answerBroken
		}
		return r, answerXML
	}
	if markupRe.MatchString(s) {
		return response{}, answerBroken
	}
	return response{Text: stripFences(s), Actions: []string{"REPLY"}}, answerPlain
}

// splitActions reads an action list. The model may write
// "REPLY, SEND_MESSAGE", one per line, <action> elements, or actions with
// parameters such as SEND_MESSAGE(to: "Ann, Bob"): commas inside brackets
// or quotes do not split, and only the leading name of each item counts.
func splitActions(n *node) []string {
	if items := n.all("action"); len(items) > 0 {
		var out []string
		for _, it := range items {
			name := it.get("name")
			if name == "" {
				name = it.Text
			}
			out = append(out, splitList(name)...)
		}
		return dedupeNames(out)
	}
	return dedupeNames(splitList(n.Text))
}

// splitNames reads a provider list the same way.
func splitNames(n *node) []string {
	if items := n.all("provider"); len(items) > 0 {
		var out []string
		for _, it := range items {
			out = append(out, splitList(it.Text)...)
		}
		return dedupeNames(out)
	}
	return dedupeNames(splitList(n.Text))
}

// splitList splits s at commas, semicolons and new lines that are outside
// brackets and quotes, and keeps the name at the start of each item.
func splitList(s string) []string {
	var items []string
	depth := 0
	var quote rune
	start := 0
	flush := func(end int) {
		if name := leadingName(s[start:end]); name != "" {
			items = append(items, name)
		}
	}
	for i, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'' || r == '`':
			quote = r
		case r == '(' || r == '[' || r == '{':
			depth++
		case (r == ')' || r == ']' || r == '}') && depth > 0:
			depth--
		case depth == 0 && (r == ',' || r == ';' || r == '\n' || r == '|'):
			flush(i)
			start = i + 1
		}
	}
	flush(len(s))
	return items
}

// leadingName is the action or provider name an item starts with: list
// markers, quotes and anything from a bracket, colon or equals sign on are
// dropped.
func leadingName(item string) string {
	s := strings.TrimSpace(item)
	s = strings.TrimLeft(s, "-*•> \t")
	if i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }); i > 0 && i < len(s) && (s[i] == '.' || s[i] == ')') {
		s = strings.TrimSpace(s[i+1:]) // "1. REPLY"
	}
	s = strings.Trim(s, "\"'`* ")
	if i := strings.IndexAny(s, "([{:=\"'`"); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(strings.Trim(s, "\"'`*. "))
}

func dedupeNames(names []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range names {
		k := contract.NormalizeAction(n)
		if k == "" || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, n)
	}
	return out
}

// shouldRespondDecision reads the should-respond answer. RESPOND (or REPLY,
// or YES) means respond; IGNORE, NONE and STOP mean not. A model that
// skipped the format is read for those words; nothing recognizable means
// no.
func shouldRespondDecision(s string) (respond bool, reason string) {
	n := parseXML(s)
	word := ""
	if n != nil {
		word = n.get("action")
		if word == "" {
			word = n.get("decision")
		}
		reason = n.get("reasoning")
	}
	if word == "" {
		word = s
	}
	up := strings.ToUpper(word)
	find := func(w string) int {
		re := regexp.MustCompile(`\b` + w + `\b`)
		if loc := re.FindStringIndex(up); loc != nil {
			return loc[0]
		}
		return -1
	}
	best, bestAt := "", -1
	for _, w := range []string{"RESPOND", "REPLY", "YES", "IGNORE", "NONE", "STOP", "NO"} {
		if at := find(w); at >= 0 && (bestAt < 0 || at < bestAt) {
			best, bestAt = w, at
		}
	}
	switch best {
	case "RESPOND", "REPLY", "YES":
		return true, reason
	}
	return false, reason
}

// parseYesNo reads a confirmation: YES/NO (or true/false) as the answer,
// inside a <decision>, <answer> or <response> element or alone.
func parseYesNo(s string) bool {
	if n := parseXML(s); n != nil {
		for _, k := range []string{"decision", "answer", "confirm", "result"} {
			if v := n.get(k); v != "" {
				s = v
				break
			}
		}
		if n.Text != "" && len(n.Children) == 0 {
			s = n.Text
		}
	}
	s = strings.ToLower(strings.TrimSpace(markupRe.ReplaceAllString(s, " ")))
	f := strings.FieldsFunc(s, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') })
	if len(f) == 0 {
		return false
	}
	switch f[0] {
	case "yes", "y", "true", "affirmative", "confirm", "confirmed", "ok", "sure":
		return true
	}
	return false
}

// truncate cuts s to at most n runes, adding an ellipsis.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
