package telegramtest

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// reservedV2 are the characters MarkdownV2 wants escaped outside markup.
const reservedV2 = "_*[]()~`>#+-=|{}.!\\"

// ParseMarkdownV2 reads MarkdownV2 as strictly as Telegram does and
// returns the text a user sees. It fails on an unescaped reserved character, an
// unclosed or badly nested entity, an empty entity, or an entity inside
// code.
func ParseMarkdownV2(s string) (string, error) {
	var out strings.Builder
	var stack []string
	top := func() string {
		if len(stack) == 0 {
			return ""
		}
		return stack[len(stack)-1]
	}
	has := func(k string) bool {
		for _, x := range stack {
			if x == k {
				return true
			}
		}
		return false
	}
	// starts[i] is where the entity stack[i] began in out, to refuse
	// empty entities.
	var starts []int
	push := func(k string) { stack = append(stack, k); starts = append(starts, out.Len()) }
	pop := func(k string) error {
		if top() != k {
			return fmt.Errorf("%q closes while %q is open", k, top())
		}
		if out.Len() == starts[len(starts)-1] {
			return fmt.Errorf("empty %s entity", k)
		}
		stack, starts = stack[:len(stack)-1], starts[:len(starts)-1]
		return nil
	}
	readCode := func(i int, fence string) (string, int, error) {
		var b strings.Builder
		for i < len(s) {
			if s[i] == '\\' {
				if i+1 >= len(s) || s[i+1] < 1 || s[i+1] > 126 {
					return "", 0, fmt.Errorf("bad escape in code at %d", i)
				}
				b.WriteByte(s[i+1])
				i += 2
				continue
			}
			if strings.HasPrefix(s[i:], fence) {
				return b.String(), i + len(fence), nil
			}
			if s[i] == '`' {
				return "", 0, fmt.Errorf("unescaped ` inside code at %d", i)
			}
			b.WriteByte(s[i])
			i++
		}
		return "", 0, fmt.Errorf("unclosed code")
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			if i+1 >= len(s) || s[i+1] < 1 || s[i+1] > 126 {
				return "", fmt.Errorf("bad escape at %d", i)
			}
			out.WriteByte(s[i+1])
			i += 2
		case strings.HasPrefix(s[i:], "```"):
			if len(stack) > 0 {
				return "", fmt.Errorf("pre inside %v", stack)
			}
			nl := strings.IndexByte(s[i+3:], '\n')
			if nl < 0 {
				return "", fmt.Errorf("pre without a line break")
			}
			code, next, err := readCode(i+3+nl+1, "```")
			if err != nil {
				return "", err
			}
			code = strings.TrimSuffix(code, "\n")
			if code == "" {
				return "", fmt.Errorf("empty pre")
			}
			out.WriteString(code)
			i = next
		case c == '`':
			if has("link") || len(stack) > 0 {
				return "", fmt.Errorf("code inside %v", stack)
			}
			code, next, err := readCode(i+1, "`")
			if err != nil {
				return "", err
			}
			if code == "" {
				return "", fmt.Errorf("empty code")
			}
			out.WriteString(code)
			i = next
		case c == '*' || c == '_' || c == '~' || strings.HasPrefix(s[i:], "||"):
			k := map[byte]string{'*': "bold", '_': "italic", '~': "strike", '|': "spoiler"}[c]
			n := 1
			if c == '|' {
				n = 2
			}
			if c == '_' && strings.HasPrefix(s[i:], "__") && !(top() == "italic" && strings.HasPrefix(s[i+1:], "_")) {
				return "", fmt.Errorf("ambiguous __ at %d", i)
			}
			if has(k) {
				if err := pop(k); err != nil {
					return "", err
				}
			} else {
				push(k)
			}
			i += n
		case c == '[':
			if has("link") {
				return "", fmt.Errorf("link in link")
			}
			push("link")
			i++
		case c == ']':
			if err := pop("link"); err != nil {
				return "", err
			}
			if i+1 >= len(s) || s[i+1] != '(' {
				return "", fmt.Errorf("] without (url)")
			}
			_, next, err := readURL(s, i+2)
			if err != nil {
				return "", err
			}
			i = next
		case strings.IndexByte(reservedV2, c) >= 0:
			return "", fmt.Errorf("reserved character %q at %d is not escaped", c, i)
		default:
			_, size := utf8.DecodeRuneInString(s[i:])
			out.WriteString(s[i : i+size])
			i += size
		}
	}
	if len(stack) > 0 {
		return "", fmt.Errorf("unclosed %v", stack)
	}
	return out.String(), nil
}

func readURL(s string, i int) (string, int, error) {
	var b strings.Builder
	for i < len(s) {
		switch s[i] {
		case '\\':
			if i+1 >= len(s) {
				return "", 0, fmt.Errorf("bad escape in url")
			}
			b.WriteByte(s[i+1])
			i += 2
			continue
		case ')':
			return b.String(), i + 1, nil
		}
		b.WriteByte(s[i])
		i++
	}
	return "", 0, fmt.Errorf("unclosed url")
}
