package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// commands lists every command a user sees (not cobra's help and
// completion, nor the hidden __plugin).
func commands(c *cobra.Command) []*cobra.Command {
	var out []*cobra.Command
	for _, sub := range c.Commands() {
		if sub.Hidden || sub.Name() == "help" || sub.Name() == "completion" {
			continue
		}
		out = append(out, sub)
		out = append(out, commands(sub)...)
	}
	return out
}

// shellWords splits an example's command line as a shell would, without
// its leading VAR=value assignments and from a "#" comment or a "|" on.
func shellWords(line string) []string {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range line {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case (r == '#' || r == '|') && !inWord:
			return trimAssignments(words)
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return trimAssignments(words)
}

func trimAssignments(words []string) []string {
	for len(words) > 0 && regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=`).MatchString(words[0]) {
		words = words[1:]
	}
	return words
}

// TestHelpExamples: every command has examples, and each example is a
// command line agenthost takes: its command exists and its flags parse.
func TestHelpExamples(t *testing.T) {
	t.Parallel()
	root := rootCmd()
	for _, c := range append([]*cobra.Command{root}, commands(root)...) {
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%q has no examples", c.CommandPath())
			continue
		}
		for _, line := range strings.Split(c.Example, "\n") {
			words := shellWords(strings.TrimSpace(line))
			if len(words) == 0 || words[0] != "agenthost" {
				t.Errorf("%q: example %q does not run agenthost", c.CommandPath(), line)
				continue
			}
			fresh := rootCmd()
			fresh.InitDefaultVersionFlag() // Execute adds --version
			found, rest, err := fresh.Find(words[1:])
			if err != nil {
				t.Errorf("%q: example %q: %v", c.CommandPath(), line, err)
				continue
			}
			if err := found.ParseFlags(rest); err != nil {
				t.Errorf("%q: example %q: %v", c.CommandPath(), line, err)
			}
			if found.Args != nil {
				if err := found.Args(found, found.Flags().Args()); err != nil {
					t.Errorf("%q: example %q: %v", c.CommandPath(), line, err)
				}
			}
		}
	}
}

// TestHelpFlags: no flag's help shows a made-up type (pflag takes a word
// in backquotes for the type of the value), and the aliases that read as
// typos are gone.
func TestHelpFlags(t *testing.T) {
	t.Parallel()
	root := rootCmd()
	for _, c := range append([]*cobra.Command{root}, commands(root)...) {
		check := func(f *pflag.Flag) {
			if strings.Contains(f.Usage, "`") {
				name, _ := pflag.UnquoteUsage(f)
				t.Errorf("%s --%s: the help shows it as --%s %s", c.CommandPath(), f.Name, f.Name, name)
			}
		}
		c.LocalFlags().VisitAll(check)
		c.PersistentFlags().VisitAll(check)
		for _, a := range c.Aliases {
			if a == "s" || a == "st" {
				t.Errorf("%s still has the alias %q", c.CommandPath(), a)
			}
		}
	}
}

// TestVersionFlag: --version says what the version command says.
func TestVersionFlag(t *testing.T) {
	t.Parallel()
	run := func(args ...string) string {
		root := rootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs(args)
		if err := root.Execute(); err != nil {
			t.Fatalf("agenthost %s: %v", strings.Join(args, " "), err)
		}
		return out.String()
	}
	flag, cmd := run("--version"), run("version")
	if flag != cmd || !strings.HasPrefix(flag, "agenthost "+version) {
		t.Errorf("--version printed %q, version printed %q", flag, cmd)
	}
}

// TestStartHelpListsEnvironment: `start --help` names every variable the
// daemon reads from the environment.
func TestStartHelpListsEnvironment(t *testing.T) {
	t.Parallel()
	var help bytes.Buffer
	root := rootCmd()
	root.SetOut(&help)
	root.SetArgs([]string{"start", "--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("../../host/*.go")
	files = append(files, "start.go", "env.go")
	read := regexp.MustCompile(`env\["([A-Z][A-Z0-9_]*)"\]`)
	ranged := regexp.MustCompile(`range \[\]string\{([^}]*)\}`)
	literal := regexp.MustCompile(`"([A-Z][A-Z0-9]*_[A-Z0-9_]*)"`)
	names := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range read.FindAllStringSubmatch(string(src), -1) {
			names[m[1]] = true
		}
		// for _, k := range []string{"A", "B"} { … env[k] … }
		for _, m := range ranged.FindAllStringSubmatch(string(src), -1) {
			for _, l := range literal.FindAllStringSubmatch(m[1], -1) {
				names[l[1]] = true
			}
		}
	}
	for _, want := range []string{"SERVER_HOST", "SERVER_PORT", "POSTGRES_URL", "LOG_LEVEL", "AGENTHOST_API_KEY"} {
		if !names[want] {
			t.Errorf("the scan of the sources missed %s: it no longer finds what the daemon reads", want)
		}
	}
	for n := range names {
		if !strings.Contains(help.String(), n) {
			t.Errorf("start --help does not name %s, which the daemon reads", n)
		}
	}
}
