package telegram

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The agent writes Markdown (what language models produce: **bold**,
// *italic*, `code`, fenced blocks, [links](url), headings, lists). Telegram
// reads MarkdownV2, whose every special character must be escaped outside
// markup. The text is parsed into spans of plain text with a style, and the
// spans are rendered, and cut into messages, from there: an escape or a
// marker is never cut, and a style cut by a message boundary is closed at
// the end of one message and opened again at the start of the next.

// style is the formatting of a span. Code and pre exclude the others: in
// MarkdownV2 they contain no other entity and are part of none.
type style struct {
	bold, italic, strike, spoiler bool
	code, pre                     bool
	lang                          string
	url                           string
}

type span struct {
	text string
	st   style
}

// specialV2 are the characters MarkdownV2 wants escaped in ordinary text.
const specialV2 = "_*[]()~`>#+-=|{}.!\\"

// EscapeMarkdownV2 escapes text so that Telegram shows it as it is.
func EscapeMarkdownV2(text string) string {
	return escapeWith(text, specialV2)
}

func escapeCode(text string) string { return escapeWith(text, "`\\") }
func escapeURL(text string) string  { return escapeWith(text, ")\\") }

func escapeWith(text, special string) string {
	n := 0
	for i := 0; i < len(text); i++ {
		if strings.IndexByte(special, text[i]) >= 0 {
			n++
		}
	}
	if n == 0 {
		return text
	}
	var b strings.Builder
	b.Grow(len(text) + n)
	for i := 0; i < len(text); i++ {
		if strings.IndexByte(special, text[i]) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(text[i])
	}
	return b.String()
}

// escapedUnits is utf16Len(escapeWith(text, special)) without building it.
func escapedUnits(text, special string) int {
	n := 0
	for _, r := range text {
		n += runeUnits(r)
		if r < utf8.RuneSelf && strings.IndexByte(special, byte(r)) >= 0 {
			n++
		}
	}
	return n
}

var (
	fenceRE   = regexp.MustCompile("^ {0,3}(```+|~~~+)\\s*([^`\\s]*)[^`]*$")
	headingRE = regexp.MustCompile(`^ {0,3}#{1,6}[ \t]+(.*?)[ \t#]*$`)
	bulletRE  = regexp.MustCompile(`^( *)[-*+][ \t]+`)
	langRE    = regexp.MustCompile(`^[A-Za-z0-9_+#.-]{1,32}$`)
)

// parseMarkdown turns Markdown into styled spans. It is forgiving: markup
// it does not understand stays text, and every character of the text ends
// up in some span.
func parseMarkdown(md string) []span {
	md = strings.ReplaceAll(md, "\r\n", "\n")
	var spans []span
	var text strings.Builder
	flush := func() {
		if text.Len() > 0 {
			spans = append(spans, parseInline(text.String(), style{})...)
			text.Reset()
		}
	}
	lines := strings.SplitAfter(md, "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		body := strings.TrimSuffix(line, "\n")
		if m := fenceRE.FindStringSubmatch(body); m != nil {
			// A fenced block runs to its closing fence or to the end.
			fence := m[1]
			var code []string
			j := i + 1
			closed := false
			for ; j < len(lines); j++ {
				l := strings.TrimSuffix(lines[j], "\n")
				if t := strings.TrimSpace(l); strings.HasPrefix(t, fence[:3]) && strings.Trim(t, fence[:1]) == "" && len(t) >= len(fence) {
					closed = true
					break
				}
				code = append(code, l)
			}
			flush()
			lang := m[2]
			if !langRE.MatchString(lang) {
				lang = ""
			}
			if c := strings.Join(code, "\n"); c != "" {
				spans = append(spans, span{text: c, st: style{pre: true, lang: lang}})
			}
			i = j
			if closed && strings.HasSuffix(lines[j], "\n") {
				// The line break after the closing fence is text.
				text.WriteString("\n")
			}
			continue
		}
		if m := headingRE.FindStringSubmatch(body); m != nil {
			flush()
			spans = append(spans, parseInline(m[1], style{bold: true})...)
			if strings.HasSuffix(line, "\n") {
				text.WriteString("\n")
			}
			continue
		}
		if m := bulletRE.FindStringSubmatch(body); m != nil {
			line = m[1] + "• " + line[len(m[0]):]
		}
		text.WriteString(line)
	}
	flush()
	return mergeSpans(spans)
}

// mergeSpans joins neighbours of the same style and drops empty spans.
func mergeSpans(in []span) []span {
	out := in[:0]
	for _, s := range in {
		if s.text == "" {
			continue
		}
		if n := len(out); n > 0 && out[n-1].st == s.st && !s.st.pre {
			out[n-1].text += s.text
			continue
		}
		out = append(out, s)
	}
	return out
}

// inline tokens: text, or a delimiter run that may open or close a style.
type itok struct {
	text     string
	delim    string // "*", "**", "***", "_", "__", "___", "~~", "||"
	open     bool
	close    bool
	match    int // index of the matching token, or -1
	code     bool
	link     string // for a link token: the url
	linkText string
}

// parseInline parses emphasis, code spans and links within text.
func parseInline(text string, base style) []span {
	toks := tokenizeInline(text)
	matchDelims(toks)
	var spans []span
	st := base
	var stack []int
	for i, t := range toks {
		switch {
		case t.code:
			spans = append(spans, span{text: t.text, st: style{code: true}})
		case t.link != "":
			ls := st
			ls.url = t.link
			spans = append(spans, parseInline(t.linkText, ls)...)
		case t.delim != "" && t.match >= 0 && t.match > i:
			stack = append(stack, i)
			st = applyDelim(st, t.delim, true)
		case t.delim != "" && t.match >= 0 && t.match < i:
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			st = applyDelim(st, t.delim, false)
			st = reapply(base, toks, stack)
		default:
			s := t.text
			if t.delim != "" {
				s = t.delim
			}
			spans = append(spans, span{text: s, st: st})
		}
	}
	return spans
}

// reapply rebuilds the style from the openers still open.
func reapply(base style, toks []itok, stack []int) style {
	st := base
	for _, i := range stack {
		st = applyDelim(st, toks[i].delim, true)
	}
	return st
}

func applyDelim(st style, d string, on bool) style {
	switch d {
	case "*", "_":
		st.italic = on
	case "**", "__":
		st.bold = on
	case "***", "___":
		st.bold, st.italic = on, on
	case "~~":
		st.strike = on
	case "||":
		st.spoiler = on
	}
	return st
}

func isPunct(r rune) bool { return unicode.IsPunct(r) || unicode.IsSymbol(r) }

func tokenizeInline(s string) []itok {
	var toks []itok
	var text strings.Builder
	flush := func() {
		if text.Len() > 0 {
			toks = append(toks, itok{text: text.String(), match: -1})
			text.Reset()
		}
	}
	prevRune := func(i int) rune {
		if i == 0 {
			return ' '
		}
		r, _ := utf8.DecodeLastRuneInString(s[:i])
		return r
	}
	nextRune := func(i int) rune {
		if i >= len(s) {
			return ' '
		}
		r, _ := utf8.DecodeRuneInString(s[i:])
		return r
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && s[i+1] < utf8.RuneSelf && isPunct(rune(s[i+1])):
			text.WriteByte(s[i+1])
			i += 2
			continue
		case c == '`':
			n := runLen(s, i, '`')
			if end := findCodeClose(s, i+n, n); end >= 0 {
				code := s[i+n : end]
				if len(code) >= 2 && code[0] == ' ' && code[len(code)-1] == ' ' && strings.Trim(code, " ") != "" {
					code = code[1 : len(code)-1]
				}
				flush()
				if code != "" {
					toks = append(toks, itok{text: code, code: true, match: -1})
				}
				i = end + n
				continue
			}
			text.WriteString(s[i : i+n])
			i += n
			continue
		case c == '[':
			if lt, url, n, ok := parseLink(s[i:]); ok {
				flush()
				toks = append(toks, itok{link: url, linkText: lt, match: -1})
				i += n
				continue
			}
		case c == '<':
			if j := strings.IndexByte(s[i:min(len(s), i+2048)], '>'); j > 0 {
				u := s[i+1 : i+j]
				if (strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://")) && !strings.ContainsAny(u, " \t\n<") {
					flush()
					toks = append(toks, itok{link: u, linkText: escapeInlineSource(u), match: -1})
					i += j + 1
					continue
				}
			}
		case c == '*' || c == '_' || c == '~' || c == '|':
			n := runLen(s, i, c)
			d := s[i : i+n]
			ok := false
			switch c {
			case '*', '_':
				ok = n <= 3
			case '~', '|':
				ok = n == 2
			}
			if ok {
				before, after := prevRune(i), nextRune(i+n)
				left := !unicode.IsSpace(after) && (!isPunct(after) || unicode.IsSpace(before) || isPunct(before))
				right := !unicode.IsSpace(before) && (!isPunct(before) || unicode.IsSpace(after) || isPunct(after))
				open, cl := left, right
				if c == '_' {
					open = left && (!right || isPunct(before))
					cl = right && (!left || isPunct(after))
				}
				if open || cl {
					flush()
					toks = append(toks, itok{delim: d, open: open, close: cl, match: -1})
					i += n
					continue
				}
			}
			text.WriteString(d)
			i += n
			continue
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		text.WriteString(s[i : i+size])
		i += size
	}
	flush()
	return toks
}

// escapeInlineSource protects text that will be parsed again as inline
// Markdown (a link's text) from being read as markup.
func escapeInlineSource(s string) string { return escapeWith(s, "\\`*_~|[]<") }

func runLen(s string, i int, c byte) int {
	n := 0
	for i+n < len(s) && s[i+n] == c {
		n++
	}
	return n
}

// findCodeClose finds a run of exactly n backticks from i, within 64 KiB.
func findCodeClose(s string, i, n int) int {
	s = s[:min(len(s), i+64<<10)]
	for i < len(s) {
		j := strings.IndexByte(s[i:], '`')
		if j < 0 {
			return -1
		}
		j += i
		m := runLen(s, j, '`')
		if m == n {
			return j
		}
		i = j + m
	}
	return -1
}

// parseLink reads [text](url) at the start of s.
func parseLink(s string) (text, url string, n int, ok bool) {
	// A link's text is short; looking further would make a text of many
	// brackets slow to read.
	s = s[:min(len(s), 8192)]
	depth := 0
	end := -1
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '[':
			depth++
		case ']':
			depth--
			if depth == 0 {
				end = i
			}
		case '\n':
			if i+1 < len(s) && s[i+1] == '\n' {
				return "", "", 0, false
			}
		}
		if end >= 0 {
			break
		}
	}
	if end < 1 || end+1 >= len(s) || s[end+1] != '(' {
		return "", "", 0, false
	}
	close := strings.IndexByte(s[end+2:], ')')
	if close < 0 {
		return "", "", 0, false
	}
	url = strings.TrimSpace(s[end+2 : end+2+close])
	if strings.HasPrefix(url, "<") && strings.HasSuffix(url, ">") {
		url = url[1 : len(url)-1]
	}
	if url == "" || strings.ContainsAny(url, " \t\n") || !linkable(url) {
		return "", "", 0, false
	}
	return s[1:end], url, end + 2 + close + 1, true
}

// linkable reports whether Telegram accepts url in a text link.
func linkable(url string) bool {
	l := strings.ToLower(url)
	return strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://") || strings.HasPrefix(l, "tg://") || strings.HasPrefix(l, "mailto:")
}

// matchDelims pairs closers with the nearest opener of the same kind;
// openers left inside a matched pair become text.
func matchDelims(toks []itok) {
	var openers []int
	for i := range toks {
		t := &toks[i]
		if t.delim == "" {
			continue
		}
		if t.close {
			found := -1
			for k := len(openers) - 1; k >= 0; k-- {
				if toks[openers[k]].delim == t.delim {
					found = k
					break
				}
			}
			if found >= 0 {
				o := openers[found]
				// An empty pair (**) is not markup.
				if o == i-1 {
					openers = openers[:found]
					continue
				}
				toks[o].match, t.match = i, o
				openers = openers[:found]
				continue
			}
		}
		if t.open {
			openers = append(openers, i)
		}
	}
}

// ---- rendering ----

// The order styles nest in, outermost first. Code and pre stand alone.
const (
	kLink = iota
	kBold
	kItalic
	kStrike
	kSpoiler
	kCode
	kPre
)

// marker is an open style; arg is a link's url or a pre block's language.
type marker struct {
	kind int
	arg  string
}

func (m marker) open() string {
	switch m.kind {
	case kLink:
		return "["
	case kBold:
		return "*"
	case kItalic:
		return "_"
	case kStrike:
		return "~"
	case kCode:
		return "`"
	case kPre:
		return "```" + m.arg + "\n"
	}
	return "||"
}

func (m marker) close() string {
	switch m.kind {
	case kLink:
		return "](" + escapeURL(m.arg) + ")"
	case kPre:
		return "\n```"
	}
	return m.open()
}

func markersOf(st style) []marker {
	switch {
	case st.pre:
		return []marker{{kind: kPre, arg: st.lang}}
	case st.code:
		return []marker{{kind: kCode}}
	}
	var ms []marker
	if st.url != "" {
		ms = append(ms, marker{kind: kLink, arg: st.url})
	}
	if st.bold {
		ms = append(ms, marker{kind: kBold})
	}
	if st.italic {
		ms = append(ms, marker{kind: kItalic})
	}
	if st.strike {
		ms = append(ms, marker{kind: kStrike})
	}
	if st.spoiler {
		ms = append(ms, marker{kind: kSpoiler})
	}
	return ms
}

// renderer writes spans as MarkdownV2, keeping the stack of open markers.
type renderer struct {
	b     strings.Builder
	units int
	open  []marker
}

// transition returns the markers to write to go from the open stack to
// target (before a span of style target).
func transition(open []marker, target []marker) (s string, keep int) {
	keep = 0
	for keep < len(open) && keep < len(target) && open[keep] == target[keep] {
		keep++
	}
	var b strings.Builder
	for i := len(open) - 1; i >= keep; i-- {
		b.WriteString(open[i].close())
	}
	for _, m := range target[keep:] {
		b.WriteString(m.open())
	}
	return b.String(), keep
}

func closing(open []marker) string {
	var b strings.Builder
	for i := len(open) - 1; i >= 0; i-- {
		b.WriteString(open[i].close())
	}
	return b.String()
}

// body renders a span's own text, escaped for where it stands.
func body(s span) string {
	if s.st.pre || s.st.code {
		return escapeCode(s.text)
	}
	return EscapeMarkdownV2(s.text)
}

func bodyUnits(s span) int {
	if s.st.pre || s.st.code {
		return escapedUnits(s.text, "`\\")
	}
	return escapedUnits(s.text, specialV2)
}

// cost is how long the rendering grows, closing markers included, if s is
// written next; it does not write.
func (r *renderer) cost(s span) int {
	target := markersOf(s.st)
	t, _ := transition(r.open, target)
	return r.units + utf16Len(t) + bodyUnits(s) + utf16Len(closing(target))
}

func (r *renderer) write(s span) {
	target := markersOf(s.st)
	t, _ := transition(r.open, target)
	r.b.WriteString(t)
	r.b.WriteString(body(s))
	r.units += utf16Len(t) + bodyUnits(s)
	r.open = append(r.open[:0], target...)
}

func (r *renderer) finish() string {
	r.b.WriteString(closing(r.open))
	r.open = nil
	return r.b.String()
}

// MarkdownToV2 converts Markdown to MarkdownV2 in one piece.
func MarkdownToV2(md string) string {
	var r renderer
	for _, s := range parseMarkdown(md) {
		r.write(s)
	}
	return r.finish()
}

// Chunk is one message of a reply: its MarkdownV2 text and the same text
// plain, to send if Telegram refuses the markup.
type Chunk struct {
	V2    string
	Plain string
}

// Blank reports whether the chunk shows nothing (Telegram refuses to send
// it).
func (c Chunk) Blank() bool { return strings.TrimSpace(c.Plain) == "" }

// atom is the unit a chunk boundary never cuts: a word, a run of spaces or
// line breaks, or a line of a code block.
type atom struct {
	span
	// brk is how good a place to cut the end of this atom is: 0 none,
	// 1 a space, 2 a line break, 3 a blank line.
	brk int
}

func atomize(spans []span) []atom {
	var out []atom
	for _, s := range spans {
		if s.st.pre {
			for _, line := range strings.SplitAfter(s.text, "\n") {
				if line != "" {
					b := 0
					if strings.HasSuffix(line, "\n") {
						b = 2
					}
					out = append(out, atom{span: span{text: line, st: s.st}, brk: b})
				}
			}
			continue
		}
		t := s.text
		for t != "" {
			r, _ := utf8.DecodeRuneInString(t)
			space := unicode.IsSpace(r)
			end := len(t)
			for i, c := range t {
				if unicode.IsSpace(c) != space {
					end = i
					break
				}
			}
			piece := t[:end]
			b := 0
			if space {
				switch n := strings.Count(piece, "\n"); {
				case n >= 2:
					b = 3
				case n == 1:
					b = 2
				default:
					b = 1
				}
			}
			out = append(out, atom{span: span{text: piece, st: s.st}, brk: b})
			t = t[end:]
		}
	}
	return out
}

// SplitMarkdown converts Markdown to MarkdownV2 messages of at most limit
// UTF-16 units each. Cuts go after a blank line, else a line break, in the
// second half of a message, else after the last space; a word (or a line of
// code) is cut only when it alone does not fit. The plain texts of the
// chunks, joined, are the plain text of the whole; a chunk may be blank
// (see Chunk.Blank).
func SplitMarkdown(md string, limit int) []Chunk {
	if limit < 64 {
		limit = 64
	}
	atoms := atomize(parseMarkdown(md))
	var chunks []Chunk
	var cur []atom
	var r renderer
	// prefix[k] is the rendered length, closed, of cur[:k+1].
	var prefix []int
	emit := func(as []atom) {
		var rr renderer
		var plain strings.Builder
		for _, a := range as {
			rr.write(a.span)
			plain.WriteString(a.text)
		}
		chunks = append(chunks, Chunk{V2: rr.finish(), Plain: plain.String()})
	}
	queue := atoms
	for len(queue) > 0 {
		a := queue[0]
		if c := r.cost(a.span); c <= limit {
			r.write(a.span)
			cur = append(cur, a)
			prefix = append(prefix, c)
			queue = queue[1:]
			continue
		}
		if len(cur) == 0 {
			var r0 renderer
			if a.st.url != "" && r0.cost(span{st: a.st}) > limit/2 {
				// A link whose address alone fills half a message is
				// shown as its text.
				a.st.url = ""
				queue[0] = a
				continue
			}
			// One atom does not fit in a message of its own: cut it.
			head, tail := cutAtom(a, limit)
			queue = append([]atom{head, tail}, queue[1:]...)
			continue
		}
		k := bestCut(cur, prefix, limit)
		emit(cur[:k])
		rest := append([]atom(nil), cur[k:]...)
		queue = append(rest, queue...)
		cur, prefix, r = nil, nil, renderer{}
	}
	if len(cur) > 0 {
		emit(cur)
	}
	return chunks
}

// bestCut picks how many atoms of cur go into the message.
func bestCut(cur []atom, prefix []int, limit int) int {
	for _, want := range []int{3, 2} {
		for k := len(cur) - 1; k >= 0; k-- {
			if prefix[k] < limit/2 {
				break
			}
			if cur[k].brk >= want {
				return k + 1
			}
		}
	}
	for k := len(cur) - 1; k >= 0; k-- {
		if cur[k].brk >= 1 {
			return k + 1
		}
	}
	return len(cur)
}

// cutAtom splits an atom too long for one message so that its head fits.
func cutAtom(a atom, limit int) (atom, atom) {
	var r renderer
	over := r.cost(span{text: "", st: a.st}) // markers and fences alone
	budget := limit - over
	if budget < 2 {
		budget = 2
	}
	special := specialV2
	if a.st.code || a.st.pre {
		special = "`\\"
	}
	units := 0
	end := 0
	for i, c := range a.text {
		u := runeUnits(c)
		if c < utf8.RuneSelf && strings.IndexByte(special, byte(c)) >= 0 {
			u++
		}
		if units+u > budget {
			end = i
			break
		}
		units += u
		end = i + utf8.RuneLen(c)
	}
	end = graphemeSafe(a.text, end)
	if end >= len(a.text) {
		_, size := utf8.DecodeLastRuneInString(a.text)
		end = len(a.text) - size
	}
	head := atom{span: span{text: a.text[:end], st: a.st}}
	tail := atom{span: span{text: a.text[end:], st: a.st}, brk: a.brk}
	return head, tail
}
