package discord

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// fences counts the ``` fences of s as Discord reads them: left to right,
// without overlap.
func fences(s string) int {
	n := 0
	for {
		i := strings.Index(s, "```")
		if i < 0 {
			return n
		}
		n++
		s = s[i+3:]
	}
}

// checkSplit checks the splitter's promises for one input.
func checkSplit(t *testing.T, text string, limit int) []chunk {
	t.Helper()
	chunks := splitChunks(text, limit)
	var joined strings.Builder
	for i, c := range chunks {
		if c.text == "" {
			t.Fatalf("chunk %d is empty", i)
		}
		joined.WriteString(c.text)
		out := c.render()
		if n := len16(out); n > max(limit, minSplitLimit) {
			t.Fatalf("chunk %d has %d UTF-16 units, limit %d: %q", i, n, limit, out)
		}
		if fences(out)%2 != 0 {
			t.Fatalf("chunk %d has unbalanced code fences: %q", i, out)
		}
	}
	if want := string([]rune(text)); joined.String() != want {
		t.Fatalf("the chunks' texts joined differ from the input:\n got %q\nwant %q", joined.String(), want)
	}
	return chunks
}

func TestSplitShortTextIsOneMessage(t *testing.T) {
	t.Parallel()
	if got := SplitMessage("hello", 0); len(got) != 1 || got[0] != "hello" {
		t.Fatalf("got %q", got)
	}
	if got := SplitMessage("", 0); len(got) != 0 {
		t.Fatalf("empty text: got %q", got)
	}
	if got := SplitMessage(strings.Repeat("x", MaxMessageLength), 0); len(got) != 1 {
		t.Fatalf("exactly %d characters should be one message, got %d", MaxMessageLength, len(got))
	}
}

func TestSplitPrefersParagraphsThenLinesThenWords(t *testing.T) {
	t.Parallel()
	para := strings.Repeat("word ", 150) // 750
	text := para + "\n\n" + para + "\n\n" + para
	got := SplitMessage(text, 0)
	if len(got) != 2 {
		t.Fatalf("want 2 messages, got %d", len(got))
	}
	if !strings.HasSuffix(got[0], "\n\n") || !strings.HasPrefix(got[1], "word") {
		t.Errorf("the split should fall between paragraphs: %q | %q", tail(got[0], 20), head(got[1], 20))
	}
	words := strings.Repeat("lorem ipsum ", 400) // one long line
	for i, m := range SplitMessage(words, 0) {
		if strings.HasPrefix(m, "psum") || strings.HasPrefix(m, "orem") {
			t.Errorf("message %d starts mid-word: %q", i, head(m, 20))
		}
	}
}

func TestSplitKeepsCodeBlockWhole(t *testing.T) {
	t.Parallel()
	code := "```go\n" + strings.Repeat("fmt.Println(\"x\")\n", 60) + "```\n" // ~1030
	text := strings.Repeat("Some words here. ", 80) + "\n" + code + "after"
	got := SplitMessage(text, 0)
	if len(got) != 2 {
		t.Fatalf("want 2 messages, got %d: %q", len(got), got)
	}
	if !strings.HasPrefix(got[1], "```go\n") || fences(got[0]) != 0 {
		t.Errorf("the code block should move whole to the second message:\n%q\n%q", tail(got[0], 40), head(got[1], 40))
	}
}

func TestSplitLongCodeBlockReopensFence(t *testing.T) {
	t.Parallel()
	code := "```python\n" + strings.Repeat("print('hello world')\n", 250) + "```"
	got := SplitMessage("Here:\n"+code, 0)
	if len(got) < 3 {
		t.Fatalf("want at least 3 messages, got %d", len(got))
	}
	for i, m := range got {
		if fences(m)%2 != 0 {
			t.Errorf("message %d has unbalanced fences", i)
		}
		if i > 0 && !strings.HasPrefix(m, "```python\n") {
			t.Errorf("message %d should reopen the python block: %q", i, head(m, 30))
		}
		if i < len(got)-1 && !strings.HasSuffix(m, "\n```") {
			t.Errorf("message %d should close the block: %q", i, tail(m, 30))
		}
		if strings.Contains(m, "print('hello world')") && strings.Count(m, "print(") != strings.Count(m, "print('hello world')\n") {
			t.Errorf("message %d splits a line of code", i)
		}
	}
}

func TestSplitCountsUTF16(t *testing.T) {
	t.Parallel()
	text := strings.Repeat("😀", 1500) // 3000 UTF-16 units
	got := SplitMessage(text, 0)
	if len(got) != 2 {
		t.Fatalf("want 2 messages, got %d", len(got))
	}
	for _, m := range got {
		if !utf8.ValidString(m) || len16(m) > MaxMessageLength {
			t.Fatalf("bad message of %d units", len16(m))
		}
	}
}

func TestSplitBacktickRuns(t *testing.T) {
	t.Parallel()
	for _, text := range []string{
		strings.Repeat("`", 500),
		strings.Repeat("````` ", 100),
		"```" + strings.Repeat("a", 300) + "```" + strings.Repeat("`", 200),
	} {
		checkSplit(t, text, 64)
	}
}

func TestSplitUnclosedFenceIsClosed(t *testing.T) {
	t.Parallel()
	text := "```js\n" + strings.Repeat("x = 1;\n", 400)
	for i, m := range SplitMessage(text, 0) {
		if fences(m)%2 != 0 {
			t.Fatalf("message %d has unbalanced fences", i)
		}
	}
}

func TestSplitWhitespaceOnlyPartsAreDropped(t *testing.T) {
	t.Parallel()
	text := "a" + strings.Repeat(" ", 5000) + "b"
	for _, m := range SplitMessage(text, 0) {
		if strings.TrimSpace(m) == "" {
			t.Fatal("a whitespace-only message would be refused by Discord")
		}
	}
}

func FuzzSplit(f *testing.F) {
	f.Add("hello world", uint16(0))
	f.Add(strings.Repeat("word ", 100)+"\n\n```go\nx := 1\n```\n"+strings.Repeat("more ", 50), uint16(10))
	f.Add("```"+strings.Repeat("line\n", 80)+"```", uint16(3))
	f.Add(strings.Repeat("`", 301), uint16(1))
	f.Add("``` ```` `````\n```py\n"+strings.Repeat("é😀\n", 100), uint16(40))
	f.Add(strings.Repeat("a", 1000), uint16(100))
	f.Fuzz(func(t *testing.T, text string, l uint16) {
		limit := minSplitLimit + int(l)%300
		checkSplit(t, text, limit)
		for _, m := range SplitMessage(text, limit) {
			if strings.TrimSpace(m) == "" {
				t.Fatal("whitespace-only message")
			}
		}
	})
}

func head(s string, n int) string {
	r := []rune(s)
	return string(r[:min(n, len(r))])
}

func tail(s string, n int) string {
	r := []rune(s)
	return string(r[max(0, len(r)-n):])
}
