package offline

import "strings"

// Section headings of the prompt conventions in the package documentation,
// lower-case.
const (
	headConversation = "conversation messages"
	headReceived     = "received message"
	headAgent        = "agent:"
)

// maxSpeakerName bounds what counts as a "Name:" prefix, so that a sentence
// with a colon in it is not taken for a speaker.
const maxSpeakerName = 64

// message is one "Name: text" entry of the prompt.
type message struct {
	name, text string
}

// promptInfo is everything the text handler reads from a prompt.
type promptInfo struct {
	agent          string
	history        []string
	input          string
	wantsXML       bool
	shouldRespondQ bool
	// responseTags are the fields of the prompt's <response> template.
	responseTags []string
	// wantsDecision is set for a prompt that asks for
	// <decision>YES or NO</decision> and no <response>.
	wantsDecision bool
	// actions are the names listed under "# Available Actions".
	actions []string
}

// parsePrompt reads a prompt as the package documentation describes.
func parsePrompt(prompt string) (history []string, input string, wantsXML bool, shouldRespondQuestion bool) {
	p := readPrompt(prompt)
	return p.history, p.input, p.wantsXML, p.shouldRespondQ
}

func readPrompt(prompt string) promptInfo {
	var (
		p            promptInfo
		conversation []message
		received     []string
		actionLines  []string
		haveReceived bool
		section      string
		lastLine     string
	)
	p.wantsXML = strings.Contains(prompt, "<response>")
	p.shouldRespondQ = strings.Contains(prompt, "RESPOND") &&
		strings.Contains(prompt, "IGNORE") && strings.Contains(prompt, "STOP")
	if p.wantsXML {
		p.responseTags = responseTags(prompt)
	} else {
		p.wantsDecision = strings.Contains(prompt, "<decision>")
	}

	prompt = strings.ReplaceAll(prompt, "\r\n", "\n")
	for _, line := range strings.Split(prompt, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			head := strings.TrimSpace(strings.TrimLeft(trimmed, "#"))
			low := strings.ToLower(head)
			switch {
			case strings.HasPrefix(low, headConversation):
				section = headConversation
			case strings.HasPrefix(low, headReceived):
				section = headReceived
				haveReceived = true
				received = received[:0]
			case strings.HasPrefix(low, headActions):
				section = headActions
			case strings.HasPrefix(low, headAgent):
				if p.agent == "" {
					p.agent = strings.TrimSpace(head[len(headAgent):])
				}
				section = ""
			default:
				section = ""
			}
			continue
		}
		if trimmed != "" {
			lastLine = trimmed
		}
		switch section {
		case headActions:
			actionLines = append(actionLines, trimmed)
		case headConversation:
			if trimmed == "" {
				continue
			}
			if name, text, ok := splitSpeaker(trimmed); ok {
				conversation = append(conversation, message{name, text})
			} else if n := len(conversation); n > 0 {
				conversation[n-1].text += "\n" + trimmed
			}
		case headReceived:
			if len(received) == 0 {
				if trimmed == "" {
					continue
				}
				if _, text, ok := splitSpeaker(trimmed); ok {
					trimmed = text
				}
			}
			received = append(received, trimmed)
		}
	}

	p.actions = offeredActions(actionLines)
	var users []message
	for _, m := range conversation {
		if p.agent == "" || !strings.EqualFold(m.name, p.agent) {
			users = append(users, m)
		}
	}
	fromConversation := false
	switch {
	case haveReceived && strings.TrimSpace(strings.Join(received, "\n")) != "":
		p.input = strings.TrimSpace(strings.Join(received, "\n"))
	case len(users) > 0:
		p.input = users[len(users)-1].text
		fromConversation = true
	default:
		p.input = lastLine
		if _, text, ok := splitSpeaker(lastLine); ok {
			p.input = text
		}
	}
	// The conversation usually ends with the message being answered; the
	// engine must not see it twice, or it would take it for a repeat.
	if n := len(users); n > 0 && (fromConversation || strings.TrimSpace(users[n-1].text) == p.input) {
		users = users[:n-1]
	}
	for _, m := range users {
		p.history = append(p.history, m.text)
	}
	return p
}

// splitSpeaker splits "Name: text". The name must be short and must not
// look like markup, so that ordinary sentences with a colon stay whole.
func splitSpeaker(line string) (name, text string, ok bool) {
	i := strings.Index(line, ":")
	if i <= 0 || i > maxSpeakerName {
		return "", "", false
	}
	rest := line[i+1:]
	if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
		return "", "", false
	}
	name = strings.TrimSpace(line[:i])
	if name == "" || strings.ContainsAny(name, "<>#") {
		return "", "", false
	}
	return name, strings.TrimSpace(rest), true
}

// responseTags lists the fields of the last <response> template in a
// prompt: the elements directly inside it, in order, each once.
func responseTags(prompt string) []string {
	i := strings.LastIndex(prompt, "<response>")
	if i < 0 {
		return nil
	}
	rest := prompt[i+len("<response>"):]
	var tags []string
	seen := map[string]bool{}
	depth := 0
	for {
		j := strings.IndexByte(rest, '<')
		if j < 0 {
			return tags
		}
		rest = rest[j+1:]
		closing := strings.HasPrefix(rest, "/")
		if closing {
			rest = rest[1:]
		}
		n := 0
		for n < len(rest) && isTagByte(rest[n], n == 0) {
			n++
		}
		if n == 0 || n >= len(rest) || (rest[n] != '>' && !(rest[n] == '/' && n+1 < len(rest) && rest[n+1] == '>')) {
			continue // not a tag: a "<" in the text
		}
		name := rest[:n]
		selfClosing := rest[n] == '/'
		switch {
		case closing && name == "response" && depth == 0:
			return tags
		case closing:
			if depth > 0 {
				depth--
			}
		default:
			if depth == 0 && !seen[name] {
				seen[name] = true
				tags = append(tags, name)
			}
			if !selfClosing {
				depth++
			}
		}
	}
}

func isTagByte(c byte, first bool) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		return true
	case c >= '0' && c <= '9', c == '-', c == '.':
		return !first
	}
	return false
}
