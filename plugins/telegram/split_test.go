package telegram

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// checkSplit asserts the splitter's promises for one input.
func checkSplit(t *testing.T, text string, limit int, pieces []string) {
	t.Helper()
	if got := strings.Join(pieces, ""); got != text {
		t.Fatalf("pieces do not join to the text:\n got %q\nwant %q", got, text)
	}
	for i, p := range pieces {
		if n := utf16Len(p); n > limit {
			t.Fatalf("piece %d is %d units, over the limit %d: %q", i, n, limit, p)
		}
		if p == "" && len(pieces) > 1 {
			t.Fatalf("piece %d is empty", i)
		}
		if !utf8.ValidString(p) && utf8.ValidString(text) {
			t.Fatalf("piece %d cuts a character: %q", i, p)
		}
	}
	// A cut between two letters of one word is allowed only when that
	// word alone does not fit.
	for i := 0; i+1 < len(pieces); i++ {
		a, b := pieces[i], pieces[i+1]
		last, _ := utf8.DecodeLastRuneInString(a)
		first, _ := utf8.DecodeRuneInString(b)
		if unicode.IsSpace(last) || unicode.IsSpace(first) {
			continue
		}
		word := lastWord(a) + firstWord(b)
		if utf16Len(word) <= limit {
			t.Fatalf("cut inside the word %q (%d units, limit %d) between pieces %d and %d", word, utf16Len(word), limit, i, i+1)
		}
	}
}

func lastWord(s string) string {
	i := strings.LastIndexFunc(s, unicode.IsSpace)
	if i < 0 {
		return s
	}
	_, size := utf8.DecodeRuneInString(s[i:])
	return s[i+size:]
}

func firstWord(s string) string {
	i := strings.IndexFunc(s, unicode.IsSpace)
	if i < 0 {
		return s
	}
	return s[:i]
}

func TestSplitTextShort(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "hello", strings.Repeat("a", MaxMessageLength)} {
		got := SplitText(s, MaxMessageLength)
		if len(got) != 1 || got[0] != s {
			t.Errorf("SplitText(%d chars) = %d pieces, want the text whole", len(s), len(got))
		}
	}
}

func TestSplitTextPrefersParagraphsThenLinesThenSpaces(t *testing.T) {
	t.Parallel()
	para := strings.Repeat("word ", 600) // 3000 chars
	text := para + "\n\n" + para
	got := SplitText(text, MaxMessageLength)
	checkSplit(t, text, MaxMessageLength, got)
	if len(got) != 2 || got[0] != para+"\n\n" {
		t.Fatalf("want the cut after the blank line, got %d pieces, first ends %q", len(got), got[0][max(0, len(got[0])-10):])
	}
	lines := strings.Repeat("a line of text\n", 400) // 6000 chars
	got = SplitText(lines, MaxMessageLength)
	checkSplit(t, lines, MaxMessageLength, got)
	if !strings.HasSuffix(got[0], "\n") {
		t.Fatalf("want a cut after a line break, first piece ends %q", got[0][len(got[0])-10:])
	}
	words := strings.Repeat("lorem ipsum ", 800)
	got = SplitText(words, MaxMessageLength)
	checkSplit(t, words, MaxMessageLength, got)
}

func TestSplitTextLongWordAndSurrogates(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 10000)
	got := SplitText(long, MaxMessageLength)
	checkSplit(t, long, MaxMessageLength, got)
	if len(got) != 3 {
		t.Fatalf("want 3 pieces of a 10000-char word, got %d", len(got))
	}
	// 😀 is two UTF-16 units: 3000 of them are 6000 units.
	emoji := strings.Repeat("😀", 3000)
	got = SplitText(emoji, MaxMessageLength)
	checkSplit(t, emoji, MaxMessageLength, got)
	if utf16Len(got[0]) != MaxMessageLength {
		t.Errorf("first piece = %d units, want it full", utf16Len(got[0]))
	}
	// A combining accent stays with its letter.
	accents := strings.Repeat("e\u0301", 5000)
	got = SplitText(accents, MaxMessageLength)
	checkSplit(t, accents, MaxMessageLength, got)
	for i := 1; i < len(got); i++ {
		if r, _ := utf8.DecodeRuneInString(got[i]); r == '\u0301' {
			t.Fatalf("piece %d starts with a combining mark", i)
		}
	}
}

func FuzzSplitText(f *testing.F) {
	f.Add("hello world", uint16(5))
	f.Add(strings.Repeat("ab cd\n", 50), uint16(17))
	f.Add("😀😀😀 😀", uint16(3))
	f.Add("a\n\nb\n\nc", uint16(2))
	f.Add("e\u0301e\u0301e\u0301", uint16(2))
	f.Fuzz(func(t *testing.T, text string, limit uint16) {
		l := int(limit%300) + 2
		pieces := SplitText(text, l)
		checkSplit(t, text, l, pieces)
		if got := SplitText(text, MaxMessageLength); strings.Join(got, "") != text {
			t.Fatal("4096 split does not join back")
		}
	})
}
