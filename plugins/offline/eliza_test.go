package offline

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

func TestScriptCompiles(t *testing.T) {
	s, err := compileScript(builtinRules, builtinGroups)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.rules) < 40 {
		t.Errorf("rule set has %d keywords, want at least 40", len(s.rules))
	}
	for _, r := range s.rules {
		if r.topic == "" {
			t.Errorf("rule %q has no topic", r.name)
		}
		if len(r.decomp) == 0 {
			t.Errorf("rule %q has no decompositions", r.name)
		}
	}
}

func TestCompileScriptRejectsMistakes(t *testing.T) {
	for name, defs := range map[string][]ruleDef{
		"reference past the pattern": {{name: "x", topic: "x", words: []string{"x"}, decomps: []decompDef{{"* x", []string{"(3)"}}}}},
		"unknown group":              {{name: "x", topic: "x", words: []string{"@nope"}, decomps: []decompDef{{"*", []string{"a"}}}}},
		"unknown goto":               {{name: "x", topic: "x", words: []string{"x"}, decomps: []decompDef{{"*", []string{"=nope"}}}}},
		"no templates":               {{name: "x", topic: "x", words: []string{"x"}, decomps: []decompDef{{"*", []string{}}}}},
		"duplicate rule": {
			{name: "x", topic: "x", words: []string{"x"}, decomps: []decompDef{{"*", []string{"a"}}}},
			{name: "x", topic: "x", words: []string{"y"}, decomps: []decompDef{{"*", []string{"a"}}}},
		},
	} {
		if _, err := compileScript(defs, builtinGroups); err == nil {
			t.Errorf("%s: compiled without error", name)
		}
	}
}

func TestReplyShapes(t *testing.T) {
	e := NewEngine()
	for _, tc := range []struct {
		input string
		want  []string // the reply contains one of these
	}{
		{"I am sad about my job", []string{"your job"}},
		{"Hello", []string{"hello", "hi"}},
		{"hi there", []string{"hello", "hi"}},
		{"Good morning!", []string{"hello", "hi"}},
		{"My mother hates me", []string{"your mother"}},
		{"My older sister is mean", []string{"your older sister", "your sister"}},
		{"I want a new bicycle", []string{"a new bicycle"}},
		{"You hate me", []string{"i hate you"}},
		{"I hate you", []string{"hate me"}},
		{"I dreamt about the sea", []string{"the sea", "dream"}},
		{"Are you a computer?", []string{"computer", "machine", "program"}},
		{"What is your name?", []string{"name", "call me"}},
		{"My name is Ada", []string{"ada"}},
		{"I'm sorry", []string{"apolog"}},
		{"sorry about that", []string{"apolog"}},
		{"Because it hurts", []string{"?"}},
		{"I always lose", []string{"always"}},
		{"Nobody listens to me", []string{"?"}},
		{"yes", []string{"."}},
		{"no", []string{"?"}},
		{"I can't sleep", []string{"sleep"}},
		{"Do you remember my birthday?", []string{"your birthday"}},
		{"You remind me of my father", []string{"your father"}},
		{"I was afraid of you", []string{"afraid"}},
		{"I was a good student", []string{"a good student"}},
		{"how are you?", []string{"how are you"}},
		{"who are you", []string{"program"}},
		{"goodbye", []string{"goodbye"}},
		{"thanks!", []string{"welcome"}},
		{"qwertz uiop", lower(fallbackReplies)},
	} {
		got := e.Reply(nil, tc.input)
		if !containsAny(strings.ToLower(got), tc.want) {
			t.Errorf("Reply(%q) = %q, want it to contain one of %q", tc.input, got, tc.want)
		}
		checkReply(t, tc.input, got)
	}
}

func lower(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = strings.ToLower(s)
	}
	return out
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// checkReply holds every reply to the shape a chat user should see.
func checkReply(t *testing.T, input, got string) {
	t.Helper()
	switch {
	case got == "":
		t.Errorf("Reply(%q) is empty", input)
	case !utf8.ValidString(got):
		t.Errorf("Reply(%q) = %q is not valid UTF-8", input, got)
	case strings.Contains(got, "  "), strings.Contains(got, " ?"), strings.Contains(got, " ."):
		t.Errorf("Reply(%q) = %q has stray spaces", input, got)
	case strings.ContainsAny(got, "()\x00"):
		t.Errorf("Reply(%q) = %q has template or control characters", input, got)
	}
}

func TestReflection(t *testing.T) {
	for in, want := range map[string]string{
		"i am sad":              "you are sad",
		"my job bores me":       "your job bores you",
		"you were right":        "I was right",
		"i was wrong about you": "you were wrong about me",
		"you know yourself":     "I know myself",
		"give it to you":        "give it to me",
		"your ideas and mine":   "my ideas and yours",
	} {
		var ws []token
		for _, w := range strings.Fields(in) {
			ws = append(ws, token{low: w, text: w})
		}
		if got := reflectWords(ws); got != want {
			t.Errorf("reflectWords(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNamesKeepTheirCase(t *testing.T) {
	got := NewEngine().Reply(nil, "I miss Paris so much")
	if !strings.Contains(got, "Paris") {
		t.Errorf("reply %q lost the capital of Paris", got)
	}
	got = NewEngine().Reply(nil, "I AM SAD ABOUT MY JOB")
	if strings.Contains(got, "JOB") || !strings.Contains(got, "your job") {
		t.Errorf("reply %q should quote shouted words in lower case", got)
	}
}

func TestTemplatesCycleWithHistory(t *testing.T) {
	e := NewEngine()
	var hist []string
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		in := fmt.Sprintf("I want a new bicycle number %d", i)
		seen[e.Reply(hist, in)] = true
		hist = append(hist, in)
	}
	if len(seen) != 3 {
		t.Errorf("three lines for one pattern gave %d distinct replies, want 3: %v", len(seen), seen)
	}
}

func TestMemoryStack(t *testing.T) {
	e := NewEngine()
	hist := []string{"My cat ran away last week", "My sister laughed at me"}
	got := e.Reply(hist, "hmm")
	if !strings.Contains(got, "your sister laughed at you") {
		t.Errorf("first recall = %q, want the latest memory (your sister laughed at you)", got)
	}
	got = e.Reply(append(hist, "hmm"), "well then")
	if !strings.Contains(got, "your cat ran away last week") {
		t.Errorf("second recall = %q, want the older memory (your cat ran away last week)", got)
	}
	got = e.Reply(append(hist, "hmm", "well then"), "whatever")
	if !containsAny(got, fallbackReplies) {
		t.Errorf("with the stack empty, reply = %q, want a fallback", got)
	}
}

func TestFallback(t *testing.T) {
	e := NewEngine()
	var hist []string
	for i := 0; i < len(fallbackReplies)+1; i++ {
		in := fmt.Sprintf("zzz %d", i)
		got := e.Reply(hist, in)
		if want := fallbackReplies[i%len(fallbackReplies)]; got != want {
			t.Errorf("fallback %d = %q, want %q", i, got, want)
		}
		hist = append(hist, in)
	}
}

func TestRepeatAndEmpty(t *testing.T) {
	e := NewEngine()
	if got := e.Reply([]string{"the weather is grey today"}, "The weather is grey today!"); !containsAny(got, repeatReplies) {
		t.Errorf("repeated line got %q, want a remark on the repeat", got)
	}
	if got := e.Reply([]string{"hi"}, "hi"); containsAny(got, repeatReplies) {
		t.Errorf("a repeated greeting got %q, want a greeting", got)
	}
	if got := e.Reply(nil, "   "); !containsAny(got, emptyReplies) {
		t.Errorf("empty line got %q", got)
	}
}

func TestDeterministic(t *testing.T) {
	hist := []string{"Hello", "I am sad", "My dog is ill", "I am sad"}
	for _, in := range []string{"I am sad", "hmm", "You are a machine", "", "my mother"} {
		a := NewEngine().Reply(hist, in)
		b := NewEngine().Reply(hist, in)
		c := NewEngine().Reply(append([]string(nil), hist...), in)
		if a != b || a != c {
			t.Errorf("Reply(%q) differs between calls: %q, %q, %q", in, a, b, c)
		}
	}
}

func TestConcurrentReplies(t *testing.T) {
	e := NewEngine()
	hist := []string{"My job is dull", "I feel tired"}
	want := e.Reply(hist, "I am afraid of my boss")
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				if got := e.Reply(hist, "I am afraid of my boss"); got != want {
					t.Errorf("concurrent reply %q, want %q", got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestHostileInput(t *testing.T) {
	e := NewEngine()
	big := strings.Repeat("my i you am because if ", 1<<20/24)
	for name, in := range map[string]string{
		"empty":        "",
		"1 MiB":        big,
		"1 MiB no gap": strings.Repeat("a", 1<<20),
		"invalid utf8": "I am \xff\xfe sad \xc3 about my \x80job",
		"nul bytes":    "my\x00mother\x00 hates \x00 me",
		"emoji":        "I am 😢😢 about my 🐶",
		"emoji only":   "🙂🙃🙂",
		"rtl":          "أنا حزين جدا my عمل",
		"hebrew":       "שלום, I am happy",
		"marks":        "I am sa\u0301d about my jo\u0308b",
		"punctuation":  "?!.,;:...???",
		"many clauses": strings.Repeat("my x, ", 10000),
		"wildcards":    strings.Repeat("i ", 2000) + "you",
		"long word":    "my " + strings.Repeat("x", 1<<16),
	} {
		got := e.Reply([]string{in, in, big}, in)
		checkReply(t, name, got)
		if len(got) > 1000 {
			t.Errorf("%s: reply of %d bytes", name, len(got))
		}
	}
}

func TestHugeHistory(t *testing.T) {
	hist := make([]string, 10000)
	for i := range hist {
		hist[i] = fmt.Sprintf("my thing number %d is broken because I said so", i)
	}
	checkReply(t, "huge history", NewEngine().Reply(hist, "hmm"))
}

func FuzzReply(f *testing.F) {
	for _, seed := range [][2]string{
		{"", ""},
		{"Hello", "I am sad about my job"},
		{"my mother hates me", "hmm"},
		{"you are a robot", "are you a computer?"},
		{"\xff\x00", "my \xffname is \x00"},
		{"i i i i i i", "i i i i you you you me"},
		{"but but but", "my but your but i am but"},
		{"I'm", "you're"},
		{"no one", "no one, no one"},
	} {
		f.Add(seed[0], seed[1])
	}
	e := NewEngine()
	f.Fuzz(func(t *testing.T, earlier, input string) {
		hist := []string{earlier}
		got := e.Reply(hist, input)
		if got == "" || !utf8.ValidString(got) {
			t.Fatalf("Reply(%q, %q) = %q", hist, input, got)
		}
		if again := e.Reply(hist, input); again != got {
			t.Fatalf("Reply(%q, %q) gave %q then %q", hist, input, got, again)
		}
	})
}

func ExampleEngine_Reply() {
	e := NewEngine()
	var history []string
	for _, line := range []string{
		"Hello",
		"I am sad about my job",
		"My mother says I work too much",
		"Are you a computer?",
		"hmm",
	} {
		fmt.Println("> " + line)
		fmt.Println(e.Reply(history, line))
		history = append(history, line)
	}
	// Output:
	// > Hello
	// Hello. What would you like to talk about today?
	// > I am sad about my job
	// When did you start feeling sad about your job?
	// > My mother says I work too much
	// Your mother says you work too much? How does that feel?
	// > Are you a computer?
	// Would it change anything for you if I were a computer?
	// > hmm
	// Earlier you said your mother says you work too much. Tell me more about that.
}
