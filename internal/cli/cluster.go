package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// NewClusterStatusCommand is `gatehouse cluster status`: the nodes of the stack, their roles,
// workers and readiness, and the stored state's JetStream (leader, peers, replicas), as the node the
// command talks to sees them. `gatehouse cluster` itself, with `token`, belongs to the node's
// commands.
func NewClusterStatusCommand(stdout io.Writer) *cobra.Command {
	var flags adminFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Print the cluster's nodes (role, workers, readiness) and its JetStream's health",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := flags.client(cmd.Context())
			if err != nil {
				return err
			}
			st, raw, err := c.Cluster(cmd.Context())
			if err != nil || flags.json {
				return printJSONOr(stdout, raw, err)
			}
			fmt.Fprintf(stdout, "mode %s, answered by node %s\n\n", st.Mode, st.Node)
			t := newTable(stdout, "NODE", "ROLE", "READY", "WORKERS", "GATEWAY", "SEEN")
			for _, n := range st.Nodes {
				ready := "yes"
				if !n.Ready {
					ready = "no: " + n.Reason
				}
				seen := "now"
				if n.ID != st.Node {
					seen = (time.Duration(n.SeenMS) * time.Millisecond).String() + " ago"
				}
				t.row(n.ID, n.Role, ready, fmt.Sprint(len(n.Workers)), dash(n.Gateway), seen)
			}
			if err := t.flush(); err != nil {
				return err
			}
			js := st.JetStream
			fmt.Fprintf(stdout, "\njetstream: reachable %v", js.Reachable)
			if js.Size > 0 {
				fmt.Fprintf(stdout, ", %d servers, leader %s", js.Size, dash(js.Leader))
			}
			fmt.Fprintln(stdout)
			if len(js.Peers) > 0 {
				t := newTable(stdout, "PEER", "CURRENT", "OFFLINE", "ACTIVE", "LAG")
				for _, p := range js.Peers {
					t.row(p.Name, fmt.Sprint(p.Current), fmt.Sprint(p.Offline), (time.Duration(p.ActiveMS) * time.Millisecond).String(), fmt.Sprint(p.Lag))
				}
				if err := t.flush(); err != nil {
					return err
				}
			}
			if len(js.Streams) > 0 {
				fmt.Fprintln(stdout)
				t := newTable(stdout, "STREAM", "REPLICAS", "LEADER")
				for _, s := range js.Streams {
					t.row(s.Name, fmt.Sprint(s.Replicas), dash(s.Leader))
				}
				return t.flush()
			}
			return nil
		},
	}
	flags.register(cmd)
	return cmd
}

func dash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}
