package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"gatehouse.dev/gatehouse/internal/adminapi"
)

func newAliasCommand(stdout io.Writer) *cobra.Command {
	var flags adminFlags
	var weight, description string
	cmd := &cobra.Command{Use: "alias", Short: "Manage a function's aliases (names for versions)"}
	set := &cobra.Command{
		Use:   "set FN NAME VERSION",
		Short: "Point an alias at a version (a number or $LATEST), optionally sharing traffic with another",
		Long: `Point the alias NAME of function FN at VERSION: a version number, or $LATEST (quote it so the shell
leaves it alone: '$LATEST'). With --weight V2=W, the share W (0 to 1) of the alias's requests goes to
version V2 instead: --weight 4=0.1 sends 10% to version 4.`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, err := parseAliasTarget(args[2], weight)
			if err != nil {
				return err
			}
			body.Description = description
			c, err := flags.client(cmd.Context())
			if err != nil {
				return err
			}
			out, raw, err := c.SetAlias(cmd.Context(), args[0], args[1], body)
			if err != nil || flags.json {
				return printJSONOr(stdout, raw, err)
			}
			fmt.Fprintf(stdout, "alias %s:%s → %s (revision %d)\n", args[0], out.Name, aliasRoute(out), out.Revision)
			return nil
		},
	}
	set.Flags().StringVar(&weight, "weight", "", "send a share of requests to another version: V2=W, W from 0 to 1 (e.g. 4=0.1)")
	set.Flags().StringVar(&description, "description", "", "the alias's description")
	ls := &cobra.Command{
		Use:   "ls FN",
		Short: "List a function's aliases",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := flags.client(cmd.Context())
			if err != nil {
				return err
			}
			out, raw, err := c.Aliases(cmd.Context(), args[0])
			if err != nil || flags.json {
				return printJSONOr(stdout, raw, err)
			}
			t := newTable(stdout, "NAME", "VERSION", "ROUTING", "REVISION", "UPDATED", "DESCRIPTION")
			for _, a := range out.Aliases {
				routing := "-"
				if a.AdditionalVersion != 0 && a.AdditionalWeight > 0 {
					routing = fmt.Sprintf("%s%% to %d", percent(a.AdditionalWeight), a.AdditionalVersion)
				}
				t.row(a.Name, aliasTarget(a), routing, a.Revision, showTime(a.UpdatedAt), a.Description)
			}
			return t.flush()
		},
	}
	rm := &cobra.Command{
		Use:   "rm FN NAME",
		Short: "Delete an alias",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return deleteAndSay(cmd, &flags, stdout, func(ctx context.Context, c *adminapi.Client) error {
				return c.DeleteAlias(ctx, args[0], args[1])
			}, "deleted alias %s:%s", args[0], args[1])
		},
	}
	for _, c := range []*cobra.Command{set, ls, rm} {
		flags.register(c)
		cmd.AddCommand(c)
	}
	return cmd
}

// parseAliasTarget reads alias set's VERSION argument and --weight flag (empty when not given).
func parseAliasTarget(version, weight string) (adminapi.AliasRequest, error) {
	var r adminapi.AliasRequest
	switch {
	case version == adminapi.LatestQualifier:
	case version == "":
		return r, errors.New("VERSION is empty: give a version number or $LATEST (in single quotes, '$LATEST', so the shell leaves it alone)")
	default:
		n, err := strconv.Atoi(version)
		if err != nil || n < 1 {
			return r, fmt.Errorf("VERSION %q: want a version number (1, 2, …) or $LATEST", version)
		}
		r.Version = n
	}
	if weight == "" {
		return r, nil
	}
	v2, w, ok := strings.Cut(weight, "=")
	if !ok {
		return r, fmt.Errorf("--weight %q: want VERSION=WEIGHT, e.g. 4=0.1 to send 10%% of requests to version 4", weight)
	}
	n, err := strconv.Atoi(v2)
	if err != nil || n < 1 {
		return r, fmt.Errorf("--weight %q: %q is not a version number (want 1, 2, …)", weight, v2)
	}
	f, err := strconv.ParseFloat(w, 64)
	if err != nil || !(f >= 0 && f <= 1) {
		return r, fmt.Errorf("--weight %q: the weight %q must be a number from 0 to 1 (0.1 sends 10%% of requests to version %d)", weight, w, n)
	}
	if n == r.Version {
		return r, fmt.Errorf("--weight %q: version %d is the alias's version already; give another version, or leave out --weight", weight, n)
	}
	r.AdditionalVersion, r.AdditionalWeight = n, f
	return r, nil
}

// aliasTarget is the version an alias points at: a number or $LATEST.
func aliasTarget(a adminapi.AliasView) string {
	switch {
	case a.Target != "":
		return a.Target
	case a.Version == 0:
		return adminapi.LatestQualifier
	}
	return strconv.Itoa(a.Version)
}

// aliasRoute describes where an alias sends requests: "3", or "3, 10% to version 4".
func aliasRoute(a adminapi.AliasView) string {
	s := aliasTarget(a)
	if a.AdditionalVersion != 0 && a.AdditionalWeight > 0 {
		s += fmt.Sprintf(", %s%% to version %d", percent(a.AdditionalWeight), a.AdditionalVersion)
	}
	return s
}
