package offline

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Bounds on the work one reply may cost. Patterns with several wildcards
// backtrack, so hostile input must not reach the matcher at full length;
// nobody writes a forty-word clause to a chat bot and expects it quoted back.
const (
	maxLineBytes   = 8 << 10
	maxClauses     = 16
	maxClauseWords = 40
	maxWordRunes   = 48
	maxHistory     = 100
	maxMemory      = 8
	maxGoto        = 3
	// Repeats shorter than this are greetings and "yes", not a user stuck
	// on one thought.
	minRepeatWords = 3
)

// Engine answers like ELIZA with this package's rule set. Its zero value is
// not usable; call NewEngine. An Engine is immutable and safe for concurrent
// use.
type Engine struct {
	s *script
}

// NewEngine returns an engine with the built-in rule set.
func NewEngine() *Engine {
	return &Engine{s: builtinScript()}
}

// Reply answers input, the user's newest line. history holds the user's
// earlier lines of the same conversation, oldest first (not the agent's
// replies); it decides which of a pattern's templates comes next and what
// the memory stack holds. Reply is a pure function of its arguments.
func (e *Engine) Reply(history []string, input string) string {
	return e.respond(history, input).text
}

// reply is one answer and what produced it, for the model's "thought".
type reply struct {
	text string
	// topic is the winning rule's topic; empty for memory, repeat, empty
	// and fallback answers.
	topic string
	kind  replyKind
}

type replyKind int

const (
	kindRule replyKind = iota
	kindMemory
	kindRepeat
	kindEmpty
	kindFallback
)

func (e *Engine) respond(history []string, input string) reply {
	st := e.s.newState()
	if len(history) > maxHistory {
		history = history[len(history)-maxHistory:]
	}
	for _, line := range history {
		e.s.step(st, line)
	}
	return e.s.step(st, input)
}

// token is one word of the input.
type token struct {
	low string // lower-case, for matching
	// text is the word as written. It is quoted back only for words that
	// look like names (capitalized, not first in the clause), so that
	// "My name is Ada" keeps "Ada" while "SAD" comes back as "sad".
	text string
	keep bool
}

func (t token) String() string {
	if t.keep {
		return t.text
	}
	return t.low
}

// elemKind is the kind of one element of a decomposition pattern.
type elemKind uint8

const (
	elemAny   elemKind = iota // "*": zero or more words
	elemWord                  // a literal word
	elemGroup                 // "@name": one word of a synonym group
)

type elem struct {
	kind  elemKind
	word  string
	group map[string]bool
}

func (el elem) matches(w string) bool {
	switch el.kind {
	case elemWord:
		return w == el.word
	case elemGroup:
		return el.group[w]
	}
	return true
}

type decomposition struct {
	id     int
	elems  []elem
	reasms []reassembly
}

// reassembly is a parsed template: literal text and references to parts of
// the decomposition, or a hand-over to another rule.
type reassembly struct {
	gotoRule string
	parts    []tmplPart
}

type tmplPart struct {
	text string
	ref  int // 1-based part of the decomposition; 0 for literal text
}

// usable reports whether every part the template quotes is non-empty: "How
// long have you been ?" is worse than moving on to the next template.
func (r reassembly) usable(caps [][]token) bool {
	for _, p := range r.parts {
		if p.ref > 0 && len(caps[p.ref-1]) == 0 {
			return false
		}
	}
	return true
}

func (r reassembly) render(caps [][]token) string {
	parts := make([]string, len(caps))
	for _, p := range r.parts {
		if p.ref > 0 {
			parts[p.ref-1] = reflectWords(caps[p.ref-1])
		}
	}
	return r.fill(parts)
}

// fill renders the template with parts that are already reflected.
func (r reassembly) fill(parts []string) string {
	var b strings.Builder
	for _, p := range r.parts {
		if p.ref == 0 {
			b.WriteString(p.text)
		} else {
			b.WriteString(parts[p.ref-1])
		}
	}
	return tidy(b.String())
}

type rule struct {
	name   string
	topic  string
	rank   int
	decomp []*decomposition
}

// script is a compiled rule set.
type script struct {
	rules     []*rule
	byName    map[string]*rule
	byWord    map[string][]*rule
	nDecomp   int
	memory    *decomposition // "* my *": what the memory stack remembers
	memTmpl   []reassembly
	fallbacks []string
	repeats   []string
	empties   []string
}

var builtinScript = sync.OnceValue(func() *script {
	s, err := compileScript(builtinRules, builtinGroups)
	if err != nil {
		// The rule set is a constant of this package; its test compiles
		// it, so this cannot happen in a released build.
		panic("offline: " + err.Error())
	}
	return s
})

func compileScript(defs []ruleDef, groups map[string][]string) (*script, error) {
	sets := make(map[string]map[string]bool, len(groups))
	for name, words := range groups {
		set := make(map[string]bool, len(words))
		for _, w := range words {
			set[w] = true
		}
		sets[name] = set
	}
	s := &script{
		byName:    map[string]*rule{},
		byWord:    map[string][]*rule{},
		fallbacks: fallbackReplies,
		repeats:   repeatReplies,
		empties:   emptyReplies,
	}
	for _, d := range defs {
		if s.byName[d.name] != nil {
			return nil, fmt.Errorf("rule %q defined twice", d.name)
		}
		r := &rule{name: d.name, topic: d.topic, rank: d.rank}
		for _, w := range d.words {
			if g, ok := strings.CutPrefix(w, "@"); ok {
				if groups[g] == nil {
					return nil, fmt.Errorf("rule %q: unknown group %q", d.name, g)
				}
				for _, gw := range groups[g] {
					s.byWord[gw] = appendRule(s.byWord[gw], r)
				}
				continue
			}
			s.byWord[w] = appendRule(s.byWord[w], r)
		}
		for _, dd := range d.decomps {
			dec, err := s.compileDecomp(dd.pattern, dd.replies, sets)
			if err != nil {
				return nil, fmt.Errorf("rule %q: %w", d.name, err)
			}
			r.decomp = append(r.decomp, dec)
		}
		s.rules = append(s.rules, r)
		s.byName[r.name] = r
	}
	for _, r := range s.rules {
		for _, d := range r.decomp {
			for _, re := range d.reasms {
				if re.gotoRule != "" && s.byName[re.gotoRule] == nil {
					return nil, fmt.Errorf("rule %q: goto to unknown rule %q", r.name, re.gotoRule)
				}
			}
		}
	}
	mem, err := s.compileDecomp("* my *", nil, sets)
	if err != nil {
		return nil, err
	}
	s.memory = mem
	for _, t := range memoryReplies {
		re, err := parseTemplate(t, 1)
		if err != nil {
			return nil, err
		}
		s.memTmpl = append(s.memTmpl, re)
	}
	return s, nil
}

func appendRule(rs []*rule, r *rule) []*rule {
	for _, x := range rs {
		if x == r {
			return rs
		}
	}
	return append(rs, r)
}

func (s *script) compileDecomp(pattern string, replies []string, sets map[string]map[string]bool) (*decomposition, error) {
	d := &decomposition{id: s.nDecomp}
	s.nDecomp++
	for _, f := range strings.Fields(pattern) {
		switch {
		case f == "*":
			d.elems = append(d.elems, elem{kind: elemAny})
		case strings.HasPrefix(f, "@"):
			set := sets[f[1:]]
			if set == nil {
				return nil, fmt.Errorf("pattern %q: unknown group %q", pattern, f)
			}
			d.elems = append(d.elems, elem{kind: elemGroup, group: set})
		default:
			d.elems = append(d.elems, elem{kind: elemWord, word: f})
		}
	}
	if len(d.elems) == 0 {
		return nil, fmt.Errorf("empty pattern")
	}
	for _, t := range replies {
		re, err := parseTemplate(t, len(d.elems))
		if err != nil {
			return nil, fmt.Errorf("pattern %q: %w", pattern, err)
		}
		d.reasms = append(d.reasms, re)
	}
	if replies != nil && len(d.reasms) == 0 {
		return nil, fmt.Errorf("pattern %q has no templates", pattern)
	}
	return d, nil
}

// parseTemplate reads "text (n) text" or "=rule". n must name one of the
// pattern's nparts parts.
func parseTemplate(t string, nparts int) (reassembly, error) {
	if name, ok := strings.CutPrefix(t, "="); ok {
		return reassembly{gotoRule: name}, nil
	}
	var re reassembly
	rest := t
	for rest != "" {
		i := strings.IndexByte(rest, '(')
		if i < 0 {
			re.parts = append(re.parts, tmplPart{text: rest})
			break
		}
		j := strings.IndexByte(rest[i:], ')')
		if j < 0 {
			return re, fmt.Errorf("template %q: unclosed (", t)
		}
		n, err := strconv.Atoi(rest[i+1 : i+j])
		if err != nil || n < 1 || n > nparts {
			return re, fmt.Errorf("template %q: bad reference %q", t, rest[i:i+j+1])
		}
		if i > 0 {
			re.parts = append(re.parts, tmplPart{text: rest[:i]})
		}
		re.parts = append(re.parts, tmplPart{ref: n})
		rest = rest[i+j+1:]
	}
	return re, nil
}

// convState is what ELIZA would have kept between lines. It is rebuilt from
// the history for every reply.
type convState struct {
	uses                          []int // per decomposition id
	memory                        []string
	memUses, fallUses, repeatUses int
	emptyUses                     int
	last                          string // the previous line, normalized
}

func (s *script) newState() *convState {
	return &convState{uses: make([]int, s.nDecomp)}
}

// step answers one line and advances st.
func (s *script) step(st *convState, line string) reply {
	clauses := s.clauses(line)
	norm := normalize(clauses)
	if norm == "" {
		if strings.TrimSpace(line) == "" {
			st.last = ""
			return reply{text: cycle(s.empties, &st.emptyUses), kind: kindEmpty}
		}
	} else if norm == st.last && strings.Count(norm, " ")+1 >= minRepeatWords {
		return reply{text: cycle(s.repeats, &st.repeatUses), kind: kindRepeat}
	}
	st.last = norm

	// What follows "my" is remembered whatever rule answers, so that a
	// later line with no keyword can return to it.
	remembered := ""
	for _, c := range clauses {
		caps := make([][]token, len(s.memory.elems))
		// "my name is ..." is answered by the name rule and makes an odd
		// memory ("Earlier you said your name is Ada").
		if matchPattern(s.memory.elems, c, caps) && len(caps[2]) > 0 && caps[2][0].low != "name" {
			remembered = reflectWords(caps[2])
			break
		}
	}
	r := s.answer(st, clauses)
	if remembered != "" {
		st.memory = append(st.memory, remembered)
		if len(st.memory) > maxMemory {
			st.memory = st.memory[1:]
		}
	}
	return r
}

func (s *script) answer(st *convState, clauses [][]token) reply {
	for _, c := range s.candidates(clauses) {
		if text, r, ok := s.apply(st, c.rule, c.words, 0); ok {
			return reply{text: text, topic: r.topic, kind: kindRule}
		}
	}
	if n := len(st.memory); n > 0 {
		m := st.memory[n-1]
		st.memory = st.memory[:n-1]
		re := s.memTmpl[st.memUses%len(s.memTmpl)]
		st.memUses++
		return reply{text: re.fill([]string{m}), kind: kindMemory}
	}
	return reply{text: cycle(s.fallbacks, &st.fallUses), kind: kindFallback}
}

func cycle(list []string, n *int) string {
	t := list[*n%len(list)]
	*n++
	return t
}

type candidate struct {
	rule  *rule
	words []token
}

// candidates lists the rules the input's keywords trigger, best first: by
// rank, then by where the keyword appears.
func (s *script) candidates(clauses [][]token) []candidate {
	type key struct {
		r *rule
		c int
	}
	var out []candidate
	seen := map[key]bool{}
	for ci, c := range clauses {
		for _, t := range c {
			for _, r := range s.byWord[t.low] {
				if seen[key{r, ci}] {
					continue
				}
				seen[key{r, ci}] = true
				out = append(out, candidate{rule: r, words: c})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].rule.rank > out[j].rule.rank })
	return out
}

// apply tries r's decompositions on one clause and renders the next usable
// template of the first that matches.
func (s *script) apply(st *convState, r *rule, words []token, depth int) (string, *rule, bool) {
	for _, d := range r.decomp {
		caps := make([][]token, len(d.elems))
		if !matchPattern(d.elems, words, caps) {
			continue
		}
		n := len(d.reasms)
		start := st.uses[d.id]
		for k := 0; k < n; k++ {
			re := d.reasms[(start+k)%n]
			if re.gotoRule != "" {
				if depth >= maxGoto {
					continue
				}
				if text, used, ok := s.apply(st, s.byName[re.gotoRule], words, depth+1); ok {
					st.uses[d.id]++
					return text, used, true
				}
				continue
			}
			if !re.usable(caps) {
				continue
			}
			st.uses[d.id]++
			return re.render(caps), r, true
		}
	}
	return "", nil, false
}

// matchPattern matches the whole of ws against p, filling caps (one entry
// per element) on success. Wildcards take as few words as they can, as
// Weizenbaum's matcher did, so "* my *" splits at the first "my".
func matchPattern(p []elem, ws []token, caps [][]token) bool {
	if len(p) == 0 {
		return len(ws) == 0
	}
	el := p[0]
	if el.kind != elemAny {
		if len(ws) == 0 || !el.matches(ws[0].low) || !matchPattern(p[1:], ws[1:], caps[1:]) {
			return false
		}
		caps[0] = ws[:1]
		return true
	}
	if len(p) == 1 {
		caps[0] = ws
		return true
	}
	next := p[1]
	for i := 0; i <= len(ws); i++ {
		// Only try split points where the next element can start; this
		// keeps the search near linear for ordinary patterns.
		if next.kind != elemAny && (i == len(ws) || !next.matches(ws[i].low)) {
			continue
		}
		if matchPattern(p[1:], ws[i:], caps[1:]) {
			caps[0] = ws[:i]
			return true
		}
	}
	return false
}

// clauses splits a line into clauses of pre-substituted words.
func (s *script) clauses(line string) [][]token {
	if len(line) > maxLineBytes {
		line = line[:maxLineBytes]
	}
	var (
		out  [][]token
		cur  []token
		word []rune
	)
	flushWord := func() {
		if len(word) > maxWordRunes {
			word = word[:maxWordRunes]
		}
		w := strings.TrimFunc(string(word), func(r rune) bool { return r == '\'' || r == '-' })
		word = word[:0]
		if w == "" || len(cur) >= maxClauseWords {
			return
		}
		low := strings.ToLower(w)
		cur = append(cur, token{low: low, text: w, keep: len(cur) > 0 && titleCase(w)})
	}
	flushClause := func() {
		flushWord()
		for _, c := range splitBut(preSubstitute(cur)) {
			if len(c) > 0 && len(out) < maxClauses {
				out = append(out, c)
			}
		}
		cur = nil
	}
	for _, r := range line {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r):
			word = append(word, r)
		case r == '\'' || r == '’' || r == '‘' || r == '-':
			if len(word) > 0 {
				word = append(word, normApostrophe(r))
			}
		case r == '&':
			// Spelled out so that "my job & my boss" keeps its meaning
			// when quoted back.
			flushWord()
			word = append(word, 'a', 'n', 'd')
			flushWord()
		case isClauseBreak(r):
			flushClause()
		default:
			flushWord()
		}
		if len(out) >= maxClauses {
			return out
		}
	}
	flushClause()
	return out
}

func normApostrophe(r rune) rune {
	if r == '-' {
		return r
	}
	return '\''
}

func isClauseBreak(r rune) bool {
	switch r {
	case '.', ',', ';', ':', '!', '?', '\n', '。', '、', '！', '？', '؟', '،', '…':
		return true
	}
	return false
}

// titleCase reports whether w is written like a name: "Ada", not "ADA".
func titleCase(w string) bool {
	r, n := utf8.DecodeRuneInString(w)
	if !unicode.IsUpper(r) || n == len(w) {
		return false
	}
	for _, r := range w[n:] {
		if unicode.IsUpper(r) {
			return false
		}
	}
	return true
}

// preSubstitute expands contractions and folds spellings so that patterns
// need to know only one form.
func preSubstitute(ws []token) []token {
	if len(ws) == 0 {
		return ws
	}
	out := make([]token, 0, len(ws))
	for i := 0; i < len(ws); i++ {
		if i+1 < len(ws) {
			if sub, ok := prePhrases[[2]string{ws[i].low, ws[i+1].low}]; ok {
				out = appendWords(out, sub)
				i++
				continue
			}
		}
		if sub, ok := preWords[ws[i].low]; ok {
			out = appendWords(out, sub)
			continue
		}
		out = append(out, ws[i])
	}
	if len(out) > maxClauseWords {
		out = out[:maxClauseWords]
	}
	return out
}

func appendWords(out []token, words string) []token {
	for _, w := range strings.Fields(words) {
		out = append(out, token{low: w, text: w})
	}
	return out
}

// splitBut treats "but" as a clause break, as the original did: what
// follows "but" is usually what the user means.
func splitBut(ws []token) [][]token {
	var out [][]token
	start := 0
	for i, t := range ws {
		if t.low == "but" {
			out = append(out, ws[start:i])
			start = i + 1
		}
	}
	return append(out, ws[start:])
}

func normalize(clauses [][]token) string {
	var b strings.Builder
	for _, c := range clauses {
		for _, t := range c {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(t.low)
		}
	}
	return b.String()
}

// reflectWords turns the user's words into the agent's: "my job" becomes "your
// job", "you hate me" becomes "I hate you".
func reflectWords(ws []token) string {
	out := make([]string, 0, len(ws)+2)
	for i := 0; i < len(ws); i++ {
		w := ws[i].low
		next := ""
		if i+1 < len(ws) {
			next = ws[i+1].low
		}
		switch w {
		case "i":
			switch next {
			case "am":
				out = append(out, "you are")
				i++
			case "was":
				out = append(out, "you were")
				i++
			default:
				out = append(out, "you")
			}
		case "you":
			switch {
			case next == "are":
				out = append(out, "I am")
				i++
			case next == "were":
				out = append(out, "I was")
				i++
			case i > 0 && objectContext[ws[i-1].low], next == "":
				out = append(out, "me")
			default:
				out = append(out, "I")
			}
		default:
			if r, ok := reflections[w]; ok {
				out = append(out, r)
			} else {
				out = append(out, ws[i].String())
			}
		}
	}
	return strings.Join(out, " ")
}

// reflections are the swaps that need no look at the neighbours.
var reflections = map[string]string{
	"am":       "are",
	"me":       "you",
	"my":       "your",
	"mine":     "yours",
	"myself":   "yourself",
	"your":     "my",
	"yours":    "mine",
	"yourself": "myself",
}

// objectContext holds words after which "you" is an object ("to you" → "to
// me") rather than a subject ("you said" → "I said").
var objectContext = map[string]bool{
	"to": true, "with": true, "for": true, "at": true, "about": true, "of": true,
	"from": true, "on": true, "by": true, "than": true, "like": true, "love": true,
	"hate": true, "tell": true, "told": true, "see": true, "saw": true, "call": true,
	"help": true, "know": true, "miss": true, "need": true, "want": true, "trust": true,
	"understand": true, "ask": true, "asked": true, "give": true, "gave": true,
	"make": true, "made": true, "thank": true, "without": true, "against": true,
}

// tidy joins the rendered pieces into one sentence-cased line.
func tidy(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	for _, p := range []string{"?", ".", ",", "!"} {
		s = strings.ReplaceAll(s, " "+p, p)
	}
	r, n := utf8.DecodeRuneInString(s)
	if unicode.IsLower(r) {
		s = string(unicode.ToUpper(r)) + s[n:]
	}
	return s
}
