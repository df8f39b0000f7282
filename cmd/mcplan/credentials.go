package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"mcplan.io/mcplan/steps"
)

// writeCredentials prints the credentials table of plan and verify, then
// a warning line for each due or expired one. It returns how many are
// expired.
func writeCredentials(w, warn io.Writer, creds []steps.Credential) int {
	if len(creds) == 0 {
		return 0
	}
	fmt.Fprintln(w, "\nCredentials:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  STATUS\tCREDENTIAL\tEXPIRES\tWHERE")
	expired := 0
	for _, c := range creds {
		expires := "-"
		if !c.NotAfter.IsZero() {
			expires = c.NotAfter.Format("2006-01-02")
		}
		if c.Note != "" {
			expires += " (" + c.Note + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", c.Status, c.What, expires, c.Where)
	}
	tw.Flush()
	for _, c := range creds {
		switch c.Status {
		case steps.CredentialExpired:
			expired++
			fmt.Fprintf(warn, "Error: the %s has expired (%s): %s\n", c.What, c.NotAfter.Format("2006-01-02"), c.Where)
		case steps.CredentialRenew:
			fmt.Fprintf(warn, "Warning: the %s %s\n", c.What, c.Note)
		}
	}
	return expired
}
