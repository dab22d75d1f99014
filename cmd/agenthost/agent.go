package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

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
"agent list".`,
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

// resolveAgent turns a list number into the agent's id; names and ids go
// to the daemon as they are.
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
		if n < len(agents) {
			return agents[n].ID, nil
		}
		return "", fmt.Errorf("no agent number %d: the daemon has %d agents", n, len(agents))
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

func withName(cmd *cobra.Command) *cobra.Command {
	cmd.Flags().StringP("name", "n", "", "the agent: name, id or number in `agent list`")
	return cmd
}

func agentListCmd() *cobra.Command {
	return &cobra.Command{
		Use: "list", Aliases: []string{"ls"}, Short: "List the agents", Args: cobra.NoArgs,
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
			tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "#\tNAME\tID\tSTATUS\tPLUGINS")
			for i, a := range agents {
				st := a.Status
				if a.Error != "" {
					st += ": " + a.Error
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", i, a.Name, a.ID, st, strings.Join(a.Plugins, ","))
			}
			return tw.Flush()
		},
	}
}

func agentGetCmd() *cobra.Command {
	cmd := withName(&cobra.Command{
		Use: "get [NAME]", Aliases: []string{"g"}, Short: "Show an agent and its character (secrets redacted)", Args: cobra.MaximumNArgs(1),
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
		Use: "start [NAME]", Aliases: []string{"s"}, Short: "Start a stopped agent, or create one from a character file and start it",
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
				b, err := os.ReadFile(path)
				if err != nil {
					return fmt.Errorf("character %s: %w", path, err)
				}
				if !json.Valid(b) {
					return fmt.Errorf("character %s: not valid JSON", path)
				}
				var a agentRow
				if err := c.do(cmd.Context(), "POST", "/api/agents", map[string]any{"characterJson": json.RawMessage(b), "start": true}, &a); err != nil {
					var ae *apiError
					if !errors.As(err, &ae) || ae.Code != "AGENT_EXISTS" {
						return fmt.Errorf("character %s: %w", path, err)
					}
					// It exists: start it by its name.
					var ch struct {
						Name string `json:"name"`
					}
					_ = json.Unmarshal(b, &ch)
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
		Use: "stop [NAME]", Aliases: []string{"st"}, Short: "Stop an agent (it stays listed)", Args: cobra.MaximumNArgs(1),
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
fields are replaced, null removes one, "settings" and "secrets" merge key by key.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := agentName(cmd, args)
			if err != nil {
				return err
			}
			config, _ := cmd.Flags().GetString("config")
			file, _ := cmd.Flags().GetString("file")
			var raw []byte
			switch {
			case config != "" && file != "":
				return errors.New("give the changes with -c or -f, not both")
			case config != "":
				raw = []byte(config)
			case file != "":
				if raw, err = os.ReadFile(file); err != nil {
					return err
				}
			default:
				return errors.New(`give the changes: -c '{"bio": "…"}' or -f changes.json`)
			}
			var patch map[string]json.RawMessage
			if err := json.Unmarshal(raw, &patch); err != nil || patch == nil {
				return fmt.Errorf("the changes must be a JSON object of character fields: %v", err)
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
			if err := c.do(cmd.Context(), "PATCH", agentPath(id), patch, &a); err != nil {
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
