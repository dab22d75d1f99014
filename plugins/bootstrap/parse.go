package bootstrap

import (
	"html"
	"strings"
)

// response is the model's parsed answer.
type response struct {
	Thought   string
	Actions   []string
	Providers []string
	Text      string
}

// parseResponse reads elizaOS's XML response format. A model that ignores
// the format and answers in plain text still produces a reply: the whole
// answer becomes the text.
func parseResponse(s string) response {
	body, ok := tagContent(s, "response")
	if !ok {
		if t, ok := tagContent(s, "text"); ok {
			return response{Text: strings.TrimSpace(unescape(t)), Actions: []string{"REPLY"}}
		}
		return response{Text: strings.TrimSpace(stripFences(s))}
	}
	var r response
	if t, ok := tagContent(body, "thought"); ok {
		r.Thought = strings.TrimSpace(unescape(t))
	}
	if t, ok := tagContent(body, "text"); ok {
		r.Text = strings.TrimSpace(unescape(t))
	}
	if t, ok := tagContent(body, "actions"); ok {
		r.Actions = splitList(unescape(t))
	}
	if t, ok := tagContent(body, "providers"); ok {
		r.Providers = splitList(unescape(t))
	}
	return r
}

// tagContent returns what lies between <tag> and </tag>.
func tagContent(s, tag string) (string, bool) {
	open, close := "<"+tag+">", "</"+tag+">"
	i := strings.Index(s, open)
	if i < 0 {
		return "", false
	}
	rest := s[i+len(open):]
	j := strings.LastIndex(rest, close)
	if j < 0 {
		return "", false
	}
	return rest[:j], true
}

func unescape(s string) string {
	if !strings.ContainsRune(s, '&') {
		return s
	}
	return html.UnescapeString(s)
}

// splitList splits "REPLY, SEND_MESSAGE" and one-per-line lists alike.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' }) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func stripFences(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "```") {
		s = strings.TrimPrefix(s, "```")
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
		s = strings.TrimSuffix(strings.TrimSpace(s), "```")
	}
	return s
}
