package discord

import (
	"strings"
	"unicode"
	"unicode/utf16"
)

// MaxMessageLength is the most characters Discord accepts in one message.
// Discord counts UTF-16 code units, as JavaScript does; so does the
// splitter, which is the stricter of the two usual counts.
const MaxMessageLength = 2000

// minSplitLimit is the smallest limit the splitter works with: a reopened
// code fence with its language and the closing fence must fit with room to
// spare.
const minSplitLimit = 64

// maxFenceLang is the longest fence info string ("```python") carried over
// to the next part when a code block is split.
const maxFenceLang = 24

// SplitMessage splits text into messages of at most limit UTF-16 code units
// (MaxMessageLength when limit is 0). It breaks between paragraphs, then
// lines, then words, and only mid-word when a word is longer than a
// message. It keeps code blocks whole when a block fits in one message; a
// block that does not is split at a line inside it, closed at the end of
// one message and opened again, with its language, at the start of the
// next, so every message renders as code where the original did. Messages
// that would hold only whitespace are left out.
func SplitMessage(text string, limit int) []string {
	var out []string
	for _, c := range splitChunks(text, limit) {
		s := c.render()
		if strings.TrimSpace(s) == "" {
			continue
		}
		out = append(out, s)
	}
	return out
}

// chunk is one message of a split: a piece of the original text, with the
// code fence reopened before it and closed after it when the piece starts
// or ends inside a code block.
type chunk struct {
	prefix, text, suffix string
}

func (c chunk) render() string { return c.prefix + c.text + c.suffix }

// splitChunks does the work of SplitMessage. The texts of the chunks,
// joined, are exactly the input.
func splitChunks(text string, limit int) []chunk {
	if limit <= 0 {
		limit = MaxMessageLength
	}
	limit = max(limit, minSplitLimit)
	r := []rune(text)
	if len(r) == 0 {
		return nil
	}
	// width[i] is the UTF-16 length of r[:i].
	width := make([]int, len(r)+1)
	for i, c := range r {
		width[i+1] = width[i] + utf16Len(c)
	}
	var out []chunk
	inFence, lang := false, ""
	start := 0
	for start < len(r) {
		prefix := ""
		if inFence {
			prefix = "```" + lang + "\n"
		}
		// The rest fits: the last chunk.
		endIn, _ := fenceState(r, start, len(r), inFence, lang)
		suffix := closing(r, len(r), endIn)
		if len16(prefix)+width[len(r)]-width[start]+len16(suffix) <= limit {
			out = append(out, chunk{prefix: prefix, text: string(r[start:]), suffix: suffix})
			break
		}
		budget := limit - len16(prefix) - len16("\n```")
		end := start
		for end < len(r) && width[end+1]-width[start] <= budget {
			end++
		}
		cut := chooseCut(r, start, end, inFence)
		ci, cl := fenceState(r, start, cut, inFence, lang)
		out = append(out, chunk{prefix: prefix, text: string(r[start:cut]), suffix: closing(r, cut, ci)})
		inFence, lang = ci, cl
		start = cut
	}
	return out
}

// closing is the fence that closes a chunk ending at r[:end] inside a code
// block, or "" outside one.
func closing(r []rune, end int, inFence bool) string {
	switch {
	case !inFence:
		return ""
	case end > 0 && r[end-1] == '\n':
		return "```"
	}
	return "\n```"
}

// chooseCut picks where a chunk starting at start and holding at most
// r[start:end] ends. The result is in (start, end].
func chooseCut(r []rune, start, end int, inFence bool) int {
	if end <= start {
		return min(start+1, len(r))
	}
	// A code block that opens in the window and does not close in it
	// moves to the next chunk whole, unless that leaves this one nearly
	// empty.
	if open := lastUnclosedOpen(r, start, end, inFence); open >= 0 {
		line := lineStart(r, start, open)
		if line > start && line-start >= (end-start)/4 {
			return line
		}
	}
	// inside[i-start] says whether a cut at i falls inside a code block.
	inside := make([]bool, end-start+1)
	st := inFence
	for i := start; i < end; {
		inside[i-start] = st
		if i+3 <= len(r) && r[i] == '`' && r[i+1] == '`' && r[i+2] == '`' {
			st = !st
			for j := 1; j <= 3 && i+j <= end; j++ {
				inside[i+j-start] = st
			}
			i += 3
			continue
		}
		i++
		inside[i-start] = st
	}
	isNL := func(i int) bool { return r[i-1] == '\n' }
	isPara := func(i int) bool { return i-2 >= start && r[i-1] == '\n' && r[i-2] == '\n' }
	isSpace := func(i int) bool { return r[i-1] != '\n' && unicode.IsSpace(r[i-1]) }
	out := func(i int) bool { return !inside[i-start] }
	in := func(i int) bool { return inside[i-start] }
	both := func(f, g func(int) bool) func(int) bool { return func(i int) bool { return f(i) && g(i) } }
	half := start + (end-start)/2
	tiers := []struct {
		from int
		ok   func(int) bool
	}{
		{half, both(isPara, out)},
		{half, both(isNL, out)},
		{half, both(isSpace, out)},
		{half, both(isNL, in)},
		{start + 1, both(isNL, out)},
		{start + 1, both(isSpace, out)},
		{start + 1, isNL},
		{start + 1, isSpace},
	}
	for _, t := range tiers {
		for i := end; i >= max(t.from, start+1); i-- {
			if t.ok(i) {
				return aligned(r, start, i)
			}
		}
	}
	return aligned(r, start, end)
}

// aligned moves a cut that falls inside a run of backticks back to a
// multiple of three from the run's start, so that each chunk reads the
// run's fences as the whole text does. It never returns start or less
// when a cut further in is possible.
func aligned(r []rune, start, cut int) int {
	if cut <= 0 || cut >= len(r) || r[cut-1] != '`' || r[cut] != '`' {
		return cut
	}
	run := cut - 1
	for run > 0 && r[run-1] == '`' {
		run--
	}
	c := run + (cut-run)/3*3
	if c > start {
		return c
	}
	// The chunk starts inside this run, at a multiple of three from it.
	if c+3 <= len(r) && c+3 > start {
		return c + 3
	}
	return cut
}

// fenceState scans r[from:to] for ``` fences, starting inside a block or
// not, and returns whether r[:to] ends inside a block and that block's
// language.
func fenceState(r []rune, from, to int, inFence bool, lang string) (bool, string) {
	for i := from; i+3 <= to; {
		if r[i] == '`' && r[i+1] == '`' && r[i+2] == '`' {
			inFence = !inFence
			if inFence {
				lang = fenceLang(r, i+3)
			} else {
				lang = ""
			}
			i += 3
			continue
		}
		i++
	}
	return inFence, lang
}

// fenceLang reads the info string after an opening fence: a short word
// followed by a newline, or nothing.
func fenceLang(r []rune, at int) string {
	var b strings.Builder
	for i := at; i < len(r) && i-at <= maxFenceLang; i++ {
		c := r[i]
		switch {
		case c == '\n':
			return b.String()
		case unicode.IsLetter(c) || unicode.IsDigit(c) || strings.ContainsRune("+-_.#", c):
			b.WriteRune(c)
		default:
			return ""
		}
	}
	return ""
}

// lastUnclosedOpen returns the index of the last fence in r[start:end]
// that opens a block still open at end, or -1.
func lastUnclosedOpen(r []rune, start, end int, inFence bool) int {
	open := -1
	for i := start; i+3 <= end; {
		if r[i] == '`' && r[i+1] == '`' && r[i+2] == '`' {
			inFence = !inFence
			if inFence {
				open = i
			} else {
				open = -1
			}
			i += 3
			continue
		}
		i++
	}
	if !inFence {
		return -1
	}
	return open
}

func lineStart(r []rune, start, at int) int {
	for i := at; i > start; i-- {
		if r[i-1] == '\n' {
			return i
		}
	}
	return start
}

func utf16Len(c rune) int {
	if n := utf16.RuneLen(c); n > 0 {
		return n
	}
	return 1 // an invalid rune is sent as U+FFFD
}

func len16(s string) int {
	n := 0
	for _, c := range s {
		n += utf16Len(c)
	}
	return n
}
