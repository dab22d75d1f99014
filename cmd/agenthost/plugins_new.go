package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/agenthost/agenthost/internal/scaffold"
	"github.com/spf13/cobra"
)

func pluginsNewCmd() *cobra.Command {
	var lang, dir, checkout string
	cmd := &cobra.Command{
		Use:   "new NAME --lang go|typescript|python",
		Short: "Write a new plugin, ready to build, test and check",
		Long: `Write a new plugin into DIR (default ./agenthost-plugin-NAME): one provider,
one action, a test, a README and a Makefile. "make" builds the executable
DIR/agenthost-plugin-NAME (for TypeScript and Python, a launcher that runs
the code with its interpreter and packages); "make test" runs the plugin's
test, which also runs "agenthost plugins check" on it.

The plugin builds against the agenthost checkout DIR is in, else the one
given with --agenthost-dir, else the one this agenthost was built from: the
SDKs are not published yet (the README of the new plugin says what to
change once they are).`,
		Example: `  agenthost plugins new weather --lang go
  agenthost plugins new weather --lang typescript --dir ~/src/weather
  agenthost plugins new weather --lang python --agenthost-dir ~/src/agenthost`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if lang == "" {
				return fmt.Errorf("say which language with --lang (%s)", strings.Join(scaffold.Languages, ", "))
			}
			if dir == "" {
				dir = "agenthost-plugin-" + name
			}
			res, err := scaffold.Write(scaffold.Options{Name: name, Lang: lang, Dir: dir, AgenthostDir: checkout})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			rel := dir
			if !filepath.IsAbs(rel) {
				rel = "./" + filepath.Clean(rel)
			}
			fmt.Fprintf(out, "wrote the %s plugin %s into %s: %s\n", lang, name, rel, strings.Join(res.Files, ", "))
			if res.Checkout != "" {
				fmt.Fprintf(out, "it builds against the agenthost checkout %s\n", res.Checkout)
			} else {
				fmt.Fprintf(out, "no agenthost checkout was found: its README says what to point at one before it builds\n")
			}
			fmt.Fprintf(out, "next: cd %s && make && make test\n", rel)
			return nil
		},
	}
	cmd.Flags().StringVar(&lang, "lang", "", "the plugin's language: "+strings.Join(scaffold.Languages, ", "))
	cmd.Flags().StringVar(&dir, "dir", "", "where to write it (default ./agenthost-plugin-NAME); it must not exist or be empty")
	cmd.Flags().StringVar(&checkout, "agenthost-dir", "", "a checkout of agenthost to build against (default: the one DIR is in, else the one this agenthost was built from)")
	return cmd
}
