package telegram

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/agenthost/agenthost/plugins/telegram/telegramtest"
)

func spansText(spans []span) string {
	var b strings.Builder
	for _, s := range spans {
		b.WriteString(s.text)
	}
	return b.String()
}

func TestEscapeMarkdownV2(t *testing.T) {
	t.Parallel()
	in := `_*[]()~` + "`" + `>#+-=|{}.!\ plain é😀`
	want := `\_\*\[\]\(\)\~\` + "`" + `\>\#\+\-\=\|\{\}\.\!\\ plain é😀`
	if got := EscapeMarkdownV2(in); got != want {
		t.Fatalf("EscapeMarkdownV2:\n got %s\nwant %s", got, want)
	}
	if got, err := telegramtest.ParseMarkdownV2(want); err != nil || got != in {
		t.Fatalf("escaped text reads back as %q, %v", got, err)
	}
}

func TestMarkdownToV2(t *testing.T) {
	t.Parallel()
	cases := []struct{ md, want string }{
		{"Hello. (world)!", `Hello\. \(world\)\!`},
		{"**bold** and *it* and _it2_", `*bold* and _it_ and _it2_`},
		{"snake_case_name and 2 * 3 * 4", `snake\_case\_name and 2 \* 3 \* 4`},
		{"`a_b*c` and `` x`y ``", "`a_b*c` and `x\\`y`"},
		{"see [the docs](https://example.com/a_(b)", `see [the docs](https://example.com/a_(b)`},
		{"[x](https://e.com/p?q=1) end.", `[x](https://e.com/p?q=1) end\.`},
		{"# Title\ntext", "*Title*\ntext"},
		{"- one\n- two", "• one\n• two"},
		{"~~gone~~ ||secret||", `~gone~ ||secret||`},
		{"***both***", `*_both_*`},
		{"```go\nfmt.Println(\"a`b\\\\c\")\n```\nafter.", "```go\nfmt.Println(\"a\\`b\\\\\\\\c\")\n```\nafter\\."},
		{"unclosed **bold", `unclosed \*\*bold`},
		{`escaped \*star\*`, `escaped \*star\*`},
		{"**a *b* c**", `*a _b_ c*`},
		{"1. first\n2. second", "1\\. first\n2\\. second"},
	}
	for _, c := range cases {
		got := MarkdownToV2(c.md)
		if got != c.want {
			t.Errorf("MarkdownToV2(%q):\n got %s\nwant %s", c.md, got, c.want)
		}
		if _, err := telegramtest.ParseMarkdownV2(got); err != nil {
			t.Errorf("MarkdownToV2(%q) = %s is not valid MarkdownV2: %v", c.md, got, err)
		}
	}
}

// checkChunks asserts SplitMarkdown's promises for one input.
func checkChunks(t *testing.T, md string, limit int) []Chunk {
	t.Helper()
	chunks := SplitMarkdown(md, limit)
	var joined strings.Builder
	for i, c := range chunks {
		if n := utf16Len(c.V2); n > limit {
			t.Fatalf("chunk %d is %d units, over %d: %q", i, n, limit, c.V2)
		}
		seen, err := telegramtest.ParseMarkdownV2(c.V2)
		if err != nil {
			t.Fatalf("chunk %d is not valid MarkdownV2: %v\n%q\nfrom %q", i, err, c.V2, md)
		}
		want := c.Plain
		if strings.Contains(c.V2, "```") {
			// A pre block loses one line break before its closing fence.
			want = strings.TrimSuffix(want, "\n")
			seen = strings.TrimSuffix(seen, "\n")
		}
		if seen != want {
			t.Fatalf("chunk %d shows %q, its plain text is %q", i, seen, c.Plain)
		}
		joined.WriteString(c.Plain)
	}
	if want := spansText(parseMarkdown(md)); joined.String() != want {
		t.Fatalf("chunks lose text:\n got %q\nwant %q", joined.String(), want)
	}
	return chunks
}

func TestSplitMarkdownKeepsMarkupWhole(t *testing.T) {
	t.Parallel()
	para := "Some **bold words** and *italic ones* with `code` and a [link](https://example.com/x). "
	md := strings.Repeat(para, 120) + "\n\n```python\n" + strings.Repeat("print('hello world')\n", 300) + "```\nThe end."
	chunks := checkChunks(t, md, MaxMessageLength)
	if len(chunks) < 4 {
		t.Fatalf("want several chunks, got %d", len(chunks))
	}
	for i, c := range chunks {
		if strings.Count(c.V2, "```")%2 != 0 {
			t.Errorf("chunk %d has an unbalanced code fence", i)
		}
	}
	// A bold run longer than a message is closed and reopened.
	long := "**" + strings.TrimSpace(strings.Repeat("loud ", 2000)) + "**"
	chunks = checkChunks(t, long, MaxMessageLength)
	for i, c := range chunks {
		if !strings.HasPrefix(c.V2, "*") {
			t.Errorf("chunk %d of a bold text does not open bold: %.20q", i, c.V2)
		}
	}
	// Escapes count towards the limit: 3000 dots are 6000 units.
	checkChunks(t, strings.Repeat(".", 3000)+" "+strings.Repeat(".", 3000), MaxMessageLength)
}

func TestSplitMarkdownCutsAtParagraphs(t *testing.T) {
	t.Parallel()
	p1 := strings.Repeat("alpha ", 400)
	p2 := strings.Repeat("beta ", 400)
	chunks := checkChunks(t, p1+"\n\n"+p2, MaxMessageLength)
	if len(chunks) != 2 || chunks[0].Plain != p1+"\n\n" {
		t.Fatalf("want the cut after the blank line: %d chunks", len(chunks))
	}
}

func FuzzSplitMarkdown(f *testing.F) {
	f.Add("**bold** _it_ `code` [l](https://a.b) ~~s~~ ||sp||", uint16(70))
	f.Add("```go\nx := 1\n```\n# h\n- a\n- b", uint16(64))
	f.Add("a_b*c*d **e _f_ g** h\\*", uint16(80))
	f.Add(strings.Repeat("😀 *x* ", 40), uint16(100))
	f.Add("***a*** __b__ ___c___", uint16(64))
	f.Fuzz(func(t *testing.T, md string, limit uint16) {
		if !utf8.ValidString(md) {
			return
		}
		checkChunks(t, md, int(limit%500)+64)
	})
}
