package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/agenthost/agenthost/sdk/character"
	"github.com/spf13/cobra"
)

type agentRow struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Username string   `json:"username,omitempty"`
	Status   string   `json:"status"`
	Error    string   `json:"error,omitempty"`
	Bio      []string `json:"bio"`
	Plugins  []string `json:"plugins"`
}

// agentCmd is `agenthost agent …`: clients of a running daemon's API.
func agentCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Manage the agents of a running daemon (AGENTHOST_URL, default " + defaultURL + ")",
		Long: `Manage the agents of a running daemon over its HTTP API. The daemon is
AGENTHOST_URL (default ` + defaultURL + `) or --url; when it needs an API key, set
AGENTHOST_API_KEY. An agent is named by its name, its id, or its number in
"agent list" (from 1).`,
		Example: `  agenthost agent list
  agenthost agent start --path bob.json
  agenthost agent set Bob -c '{"bio": "A patient listener."}'
  AGENTHOST_URL=http://10.0.0.5:3000 agenthost agent stop --all`,
	}
	cmd.PersistentFlags().Bool("json", false, "print JSON")
	cmd.PersistentFlags().String("url", "", "the daemon's URL (default AGENTHOST_URL or "+defaultURL+")")
	cmd.AddCommand(agentListCmd(), agentGetCmd(), agentStartCmd(), agentStopCmd(), agentRemoveCmd(), agentSetCmd(), agentClearCmd())
	return cmd
}

func jsonFlag(cmd *cobra.Command) bool {
	v, _ := cmd.Flags().GetBool("json")
	return v
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func listAgents(cmd *cobra.Command, c *apiClient) ([]agentRow, error) {
	var data struct {
		Agents []agentRow `json:"agents"`
	}
	if err := c.do(cmd.Context(), "GET", "/api/agents", nil, &data); err != nil {
		return nil, err
	}
	return data.Agents, nil
}

// agentName takes the agent from the argument or -n/--name.
func agentName(cmd *cobra.Command, args []string) (string, error) {
	name, _ := cmd.Flags().GetString("name")
	if len(args) > 0 {
		if name != "" && name != args[0] {
			return "", fmt.Errorf("name the agent once: %q or --name %q", args[0], name)
		}
		name = args[0]
	}
	if strings.TrimSpace(name) == "" {
		return "", errors.New("name the agent: agenthost agent " + cmd.Name() + " NAME (its name, id or number in `agenthost agent list`)")
	}
	return name, nil
}

// resolveAgent turns a number of `agent list` (from 1) into the agent's
// id; names and ids go to the daemon as they are.
func resolveAgent(cmd *cobra.Command, c *apiClient, name string) (string, error) {
	if n, err := strconv.Atoi(name); err == nil && n >= 0 && n < 1000 {
		agents, err := listAgents(cmd, c)
		if err != nil {
			return "", err
		}
		for _, a := range agents {
			if a.Name == name {
				return a.ID, nil
			}
		}
		if n >= 1 && n <= len(agents) {
			return agents[n-1].ID, nil
		}
		return "", fmt.Errorf("no agent number %d: `agenthost agent list` numbers the daemon's %d agents from 1", n, len(agents))
	}
	return name, nil
}

func agentPath(id string, rest ...string) string {
	p := "/api/agents/" + url.PathEscape(id)
	for _, r := range rest {
		p += "/" + r
	}
	return p
}

// withoutBOM drops a UTF-8 byte order mark, which the character parser
// skips but which is not JSON inside a request.
func withoutBOM(b []byte) []byte { return bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) }

func withName(cmd *cobra.Command) *cobra.Command {
	cmd.Flags().StringP("name", "n", "", `the agent: its name, id or number in "agent list"`)
	return cmd
}

func agentListCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use: "list", Aliases: []string{"ls"}, Short: "List the agents, numbered from 1", Args: cobra.NoArgs,
		Long: `List the agents of the daemon, numbered from 1: a number names an agent in the
other agent commands. The table fits 120 columns: ids are shortened and long
failure reasons cut; --wide, --json and "agent get" show them whole.`,
		Example: `  agenthost agent list
  agenthost agent ls --json
  agenthost agent list --wide    # failure reasons in full`,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			agents, err := listAgents(cmd, c)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if jsonFlag(cmd) {
				return printJSON(out, map[string]any{"agents": agents})
			}
			if len(agents) == 0 {
				fmt.Fprintln(out, "no agents")
				return nil
			}
			wide, _ := cmd.Flags().GetBool("wide")
			tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "#\tNAME\tID\tSTATUS\tPLUGINS")
			cut := false
			for i, a := range agents {
				st := a.Status
				if a.Error != "" {
					st += ": " + a.Error
				}
				id, name, plugins := a.ID, a.Name, strings.Join(a.Plugins, ",")
				if !wide {
					// Budgets that keep a line under 120 columns.
					id, name, plugins = clip(id, 9), clip(name, 20), clip(plugins, 30)
					if short := clip(st, 48); short != st {
						st, cut = short, true
					}
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", i+1, name, id, st, plugins)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if cut {
				fmt.Fprintln(cmd.ErrOrStderr(), "(reasons cut short: see them with --wide or `agenthost agent get NAME`)")
			}
			return nil
		},
	}
	cmd.Flags().Bool("wide", false, "whole ids, names, failure reasons and plugin lists")
	return cmd
}

// clip cuts s to n characters, the last an ellipsis.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// clipLeft cuts s to its last n characters, the first an ellipsis: the end
// of a path is the part that tells.
func clipLeft(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return "…" + string(r[len(r)-n+1:])
}

func agentGetCmd() *cobra.Command {
	cmd := withName(&cobra.Command{
		Use: "get [NAME]", Aliases: []string{"g"}, Short: "Show an agent and its character (secrets redacted)", Args: cobra.MaximumNArgs(1),
		Example: `  agenthost agent get Eliza
  agenthost agent get 2 --json
  agenthost agent get Eliza -o eliza.json    # edit it, then: agenthost agent set Eliza -f eliza.json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := agentName(cmd, args)
			if err != nil {
				return err
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			id, err := resolveAgent(cmd, c, name)
			if err != nil {
				return err
			}
			var data struct {
				ID        string          `json:"id"`
				Name      string          `json:"name"`
				Status    string          `json:"status"`
				Error     string          `json:"error"`
				Plugins   []string        `json:"plugins"`
				Character json.RawMessage `json:"character"`
			}
			if err := c.do(cmd.Context(), "GET", agentPath(id), nil, &data); err != nil {
				return err
			}
			if path, _ := cmd.Flags().GetString("output"); path != "" {
				var ch any
				_ = json.Unmarshal(data.Character, &ch)
				b, _ := json.MarshalIndent(ch, "", "  ")
				if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s's character to %s\n", data.Name, path)
				return nil
			}
			out := cmd.OutOrStdout()
			if jsonFlag(cmd) {
				return printJSON(out, data)
			}
			fmt.Fprintf(out, "name:    %s\nid:      %s\nstatus:  %s\n", data.Name, data.ID, data.Status)
			if data.Error != "" {
				fmt.Fprintf(out, "error:   %s\n", data.Error)
			}
			fmt.Fprintf(out, "plugins: %s\ncharacter:\n", strings.Join(data.Plugins, ", "))
			var ch any
			_ = json.Unmarshal(data.Character, &ch)
			b, _ := json.MarshalIndent(ch, "  ", "  ")
			fmt.Fprintf(out, "  %s\n", b)
			return nil
		},
	})
	cmd.Flags().StringP("output", "o", "", "write the character JSON to this file")
	return cmd
}

func printAgent(cmd *cobra.Command, a agentRow, verb string) error {
	if jsonFlag(cmd) {
		return printJSON(cmd.OutOrStdout(), a)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s %s (%s): %s\n", verb, a.Name, a.ID, a.Status)
	return nil
}

func agentStartCmd() *cobra.Command {
	cmd := withName(&cobra.Command{
		Use: "start [NAME]", Short: "Start a stopped agent, or create one from a character file and start it",
		Example: `  agenthost agent start Eliza
  agenthost agent start --path bob.json    # create Bob (if new) and start him`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			if path, _ := cmd.Flags().GetString("path"); path != "" {
				if len(args) > 0 {
					return errors.New("give a NAME or --path, not both")
				}
				// Checked here first, so that a problem names the file and
				// its line and column in it.
				ch, err := character.Load(path)
				if err != nil {
					return err
				}
				b, err := os.ReadFile(path)
				if err != nil {
					return fmt.Errorf("character %s: %w", path, err)
				}
				// The file goes as it is: a problem the daemon finds still
				// has the file's line and column.
				body := append(append([]byte(`{"start": true, "characterJson": `), withoutBOM(b)...), '}')
				var a agentRow
				if err := c.do(cmd.Context(), "POST", "/api/agents", rawJSON(body), &a); err != nil {
					var ae *apiError
					if !errors.As(err, &ae) || ae.Code != "AGENT_EXISTS" {
						return fmt.Errorf("%s: %w", path, err)
					}
					// It exists: start it by its name.
					if err := c.do(cmd.Context(), "POST", agentPath(ch.Name, "start"), nil, &a); err != nil {
						return err
					}
				}
				return printAgent(cmd, a, "started")
			}
			name, err := agentName(cmd, args)
			if err != nil {
				return err
			}
			id, err := resolveAgent(cmd, c, name)
			if err != nil {
				return err
			}
			var a agentRow
			if err := c.do(cmd.Context(), "POST", agentPath(id, "start"), nil, &a); err != nil {
				return err
			}
			return printAgent(cmd, a, "started")
		},
	})
	cmd.Flags().String("path", "", "a character JSON file: create the agent (if new) and start it")
	return cmd
}

func agentStopCmd() *cobra.Command {
	cmd := withName(&cobra.Command{
		Use: "stop [NAME]", Short: "Stop an agent (it stays listed)", Args: cobra.MaximumNArgs(1),
		Example: `  agenthost agent stop Eliza
  agenthost agent stop --all`,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			var ids []string
			if all, _ := cmd.Flags().GetBool("all"); all {
				if len(args) > 0 {
					return errors.New("give a NAME or --all, not both")
				}
				agents, err := listAgents(cmd, c)
				if err != nil {
					return err
				}
				for _, a := range agents {
					if a.Status == "running" {
						ids = append(ids, a.ID)
					}
				}
			} else {
				name, err := agentName(cmd, args)
				if err != nil {
					return err
				}
				id, err := resolveAgent(cmd, c, name)
				if err != nil {
					return err
				}
				ids = []string{id}
			}
			var stopped []agentRow
			for _, id := range ids {
				var a agentRow
				if err := c.do(cmd.Context(), "POST", agentPath(id, "stop"), nil, &a); err != nil {
					return err
				}
				stopped = append(stopped, a)
			}
			if jsonFlag(cmd) {
				if all, _ := cmd.Flags().GetBool("all"); all {
					if stopped == nil {
						stopped = []agentRow{}
					}
					return printJSON(cmd.OutOrStdout(), map[string]any{"agents": stopped})
				}
			}
			for _, a := range stopped {
				if err := printAgent(cmd, a, "stopped"); err != nil {
					return err
				}
			}
			return nil
		},
	})
	cmd.Flags().Bool("all", false, "stop every running agent")
	return cmd
}

func agentRemoveCmd() *cobra.Command {
	return withName(&cobra.Command{
		Use: "remove [NAME]", Aliases: []string{"rm"}, Short: "Stop and remove an agent (its memories stay stored)", Args: cobra.MaximumNArgs(1),
		Example: `  agenthost agent remove Bob
  agenthost agent rm 2`,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := agentName(cmd, args)
			if err != nil {
				return err
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			id, err := resolveAgent(cmd, c, name)
			if err != nil {
				return err
			}
			var data struct {
				ID      string `json:"id"`
				Name    string `json:"name"`
				Removed bool   `json:"removed"`
			}
			if err := c.do(cmd.Context(), "DELETE", agentPath(id), nil, &data); err != nil {
				return err
			}
			if jsonFlag(cmd) {
				return printJSON(cmd.OutOrStdout(), data)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s (%s)\n", data.Name, data.ID)
			return nil
		},
	})
}

func agentSetCmd() *cobra.Command {
	cmd := withName(&cobra.Command{
		Use:   "set [NAME]",
		Short: "Change an agent's character fields (a running agent restarts)",
		Long: `Change an agent's character: -c '{"bio": "…"}' or -f changes.json. Top-level
fields are replaced, null removes one, "settings" and "secrets" merge key by key.
A problem in the changes names its line and column in them.`,
		Example: `  agenthost agent set Eliza -c '{"bio": ["Helpful.", "Brief."]}'
  agenthost agent set Eliza -c '{"settings": {"OPENAI_SMALL_MODEL": "gpt-4o-mini"}}'
  agenthost agent set Eliza -c '{"system": null}'    # remove a field
  agenthost agent set Eliza -f changes.json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := agentName(cmd, args)
			if err != nil {
				return err
			}
			config, _ := cmd.Flags().GetString("config")
			file, _ := cmd.Flags().GetString("file")
			var raw []byte
			label := file
			switch {
			case config != "" && file != "":
				return errors.New("give the changes with -c or -f, not both")
			case config != "":
				raw, label = []byte(config), "change (-c)"
			case file != "":
				if raw, err = os.ReadFile(file); err != nil {
					return err
				}
			default:
				return errors.New(`give the changes: -c '{"bio": "…"}' or -f changes.json`)
			}
			// Checked here, where the line and column of a problem are in
			// the text the user wrote; it goes to the daemon as it is.
			if err := character.CheckPatch(label, raw); err != nil {
				return err
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			id, err := resolveAgent(cmd, c, name)
			if err != nil {
				return err
			}
			var a agentRow
			if err := c.do(cmd.Context(), "PATCH", agentPath(id), rawJSON(withoutBOM(raw)), &a); err != nil {
				return err
			}
			return printAgent(cmd, a, "updated")
		},
	})
	cmd.Flags().StringP("config", "c", "", "the changes as JSON")
	cmd.Flags().StringP("file", "f", "", "a JSON file with the changes")
	return cmd
}

func agentClearCmd() *cobra.Command {
	cmd := withName(&cobra.Command{
		Use: "clear-memories [NAME]", Aliases: []string{"clear"}, Short: "Delete an agent's memories (of every room, or of --room)",
		Example: `  agenthost agent clear-memories Eliza
  agenthost agent clear-memories Eliza --room 5c2e…    # a room id from the API or the web page`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := agentName(cmd, args)
			if err != nil {
				return err
			}
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			id, err := resolveAgent(cmd, c, name)
			if err != nil {
				return err
			}
			path := "/api/memory/" + url.PathEscape(id) + "/memories"
			if room, _ := cmd.Flags().GetString("room"); room != "" {
				path += "?roomId=" + url.QueryEscape(room)
			}
			var data struct {
				Deleted int64 `json:"deleted"`
			}
			if err := c.do(cmd.Context(), "DELETE", path, nil, &data); err != nil {
				return err
			}
			if jsonFlag(cmd) {
				return printJSON(cmd.OutOrStdout(), data)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %d memories of %s\n", data.Deleted, name)
			return nil
		},
	})
	cmd.Flags().String("room", "", "only this room (its id)")
	return cmd
}
