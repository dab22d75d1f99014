package telegram

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxMessageLength is Telegram's limit on a message's text, in UTF-16 code
// units (the unit Telegram counts in: an emoji outside the Basic
// Multilingual Plane counts twice).
const MaxMessageLength = 4096

// MaxCaptionLength is Telegram's limit on a media caption.
const MaxCaptionLength = 1024

// utf16Len is the length of s in UTF-16 code units.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += runeUnits(r)
	}
	return n
}

func runeUnits(r rune) int {
	if r >= 0x10000 {
		return 2
	}
	return 1
}

// prefixWithin returns the largest byte length of a prefix of s that is at
// most limit UTF-16 units long and ends on a rune boundary.
func prefixWithin(s string, limit int) int {
	units := 0
	for i, r := range s {
		units += runeUnits(r)
		if units > limit {
			return i
		}
	}
	return len(s)
}

// SplitText cuts text into pieces of at most limit UTF-16 units whose
// concatenation is exactly text. A cut goes after a blank line if one lies
// in the second half of the piece, else after a line break there, else
// after the last space; a word is cut only when it alone is longer than
// limit, and then never inside a character or before a combining mark.
func SplitText(text string, limit int) []string {
	if limit < 2 {
		limit = 2
	}
	var out []string
	rest := text
	for units := utf16Len(rest); units > limit; {
		end := prefixWithin(rest, limit)
		cut := breakPoint(rest[:end])
		if cut <= 0 {
			cut = graphemeSafe(rest, end)
		}
		out = append(out, rest[:cut])
		units -= utf16Len(rest[:cut])
		rest = rest[cut:]
	}
	if rest != "" || len(out) == 0 {
		out = append(out, rest)
	}
	return out
}

// breakPoint returns where to cut window (a byte offset just after a
// break), or 0 when the window holds no whitespace to cut after.
func breakPoint(window string) int {
	half := len(window) / 2
	if i := strings.LastIndex(window, "\n\n"); i >= 0 && i+2 > half {
		return i + 2
	}
	if i := strings.LastIndexByte(window, '\n'); i >= 0 && i+1 > half {
		return i + 1
	}
	for i := len(window); i > 0; {
		r, size := utf8.DecodeLastRuneInString(window[:i])
		if unicode.IsSpace(r) {
			return i
		}
		i -= size
	}
	return 0
}

// graphemeSafe moves a hard cut at end back so that it does not separate a
// character from the marks and joiners that belong to it. It never returns
// less than one rune.
func graphemeSafe(s string, end int) int {
	first := end
	if first == 0 {
		_, first = utf8.DecodeRuneInString(s)
		return first
	}
	for i := end; i > 0; {
		next, _ := utf8.DecodeRuneInString(s[i:])
		prev, size := utf8.DecodeLastRuneInString(s[:i])
		if !joins(next) && prev != '\u200d' {
			return i
		}
		i -= size
	}
	return first
}

// joins reports whether r attaches to the character before it.
func joins(r rune) bool {
	return unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Me, r) || r == '\u200d' ||
		(r >= 0xfe00 && r <= 0xfe0f) || (r >= 0x1f3fb && r <= 0x1f3ff)
}
