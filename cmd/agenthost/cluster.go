package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// clusterView is GET /api/cluster's data.
type clusterView struct {
	Nodes []struct {
		ID       string    `json:"id"`
		Address  string    `json:"address"`
		Agents   int       `json:"agents"`
		LastSeen time.Time `json:"lastSeen"`
	} `json:"nodes"`
	Agents []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
		Node string `json:"node"`
	} `json:"agents"`
}

// clusterCmd is `agenthost cluster …`: a running cluster node's view.
func clusterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "See the cluster a daemon belongs to (AGENTHOST_URL, default " + defaultURL + ")",
		Long: `See the cluster of daemons that a running daemon belongs to (a daemon started
with AGENTHOST_NATS_URL and POSTGRES_URL). Any node answers for the whole
cluster.`,
		Example: `  agenthost cluster status
  AGENTHOST_URL=http://10.0.0.6:3000 agenthost cluster status --json`,
	}
	cmd.PersistentFlags().Bool("json", false, "print JSON")
	cmd.PersistentFlags().String("url", "", "the daemon's URL (default AGENTHOST_URL or "+defaultURL+")")
	cmd.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "The live nodes and the node that runs each agent",
		Args:  cobra.NoArgs,
		Example: `  agenthost cluster status
  AGENTHOST_URL=http://10.0.0.6:3000 agenthost cluster status --json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd)
			if err != nil {
				return err
			}
			var v clusterView
			if err := c.do(cmd.Context(), "GET", "/api/cluster", nil, &v); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if jsonFlag(cmd) {
				return printJSON(out, v)
			}
			tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NODE\tADDRESS\tAGENTS\tLAST SEEN")
			for _, n := range v.Nodes {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s ago\n", n.ID, n.Address, n.Agents, time.Since(n.LastSeen).Round(100*time.Millisecond))
			}
			fmt.Fprintln(tw)
			fmt.Fprintln(tw, "AGENT\tID\tNODE")
			for _, a := range v.Agents {
				node := a.Node
				if node == "" {
					node = "(none: stopped or moving)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", a.Name, a.ID, node)
			}
			return tw.Flush()
		},
	})
	return cmd
}
