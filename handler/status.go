package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/freshtoken/freshtoken/internal/human"
	"github.com/freshtoken/freshtoken/internal/redact"
	"github.com/freshtoken/freshtoken/internal/statuspage"
)

// statusCommand is `freshtoken status [--json] [--state STATE]`: every configured connection's
// state, built by statuspage.BuildQuery, the status page's own model, so that the two never
// disagree; a many-account connection with its counts and every one of its accounts (in state,
// when given), paging through them. --json prints the page's JSON (all accounts, so no
// continuation); otherwise a table for a person. Status 0 when every connection and account is
// ok or retrying, 1 when any needs a person (needs_consent, not_connected) or the table could not
// be read. Logs go to stderr.
func statusCommand(ctx context.Context, inv invocation, asJSON bool, state string) error {
	cfg, log, err := loadSettings(inv, inv.Stderr)
	if err != nil {
		return err
	}
	a, err := build(cfg, log)
	if err != nil {
		return err
	}
	q := statuspage.Query{All: true}
	if state != "" {
		if q.State, err = statuspage.AccountState(state); err != nil {
			return usagef("--state %s: want ok, retrying or needs_consent", quoteArg(state))
		}
	}
	sctx, cancel := context.WithTimeout(ctx, tableTimeout)
	m, err := statuspage.BuildQuery(sctx, a.store, pageConnections(a.conns), q, time.Now())
	cancel()
	if err != nil {
		return failed("%s", redact.String(err.Error(), maxShown))
	}
	if asJSON {
		b, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			return fmt.Errorf("status: encode JSON: %w", err)
		}
		if _, err := inv.Stdout.Write(append(b, '\n')); err != nil {
			return fmt.Errorf("status: write: %w", err)
		}
	} else if err := writeStatusTable(inv.Stdout, m); err != nil {
		return fmt.Errorf("status: write: %w", err)
	}
	var attention []string
	for _, c := range m.Connections {
		switch {
		case c.Accounts != nil && c.Accounts.Counts.NeedsConsent > 0:
			attention = append(attention, fmt.Sprintf("%s (%d accounts need consent)", c.Name, c.Accounts.Counts.NeedsConsent))
		case c.Accounts != nil:
		case c.State == statuspage.NeedsConsent || c.State == statuspage.NotConnected:
			attention = append(attention, c.Name+" ("+string(c.State)+")")
		}
	}
	if len(attention) > 0 {
		return failed("%d of %d connections need a person: %s", len(attention), len(m.Connections), strings.Join(attention, ", "))
	}
	return nil
}

// writeStatusTable writes the model for a person: one line per connection in configuration
// order, a many-account connection's line with its counts and its accounts indented below it,
// then what to do for those that need a person.
func writeStatusTable(w io.Writer, m statuspage.Model) error {
	now := m.GeneratedAt
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CONNECTION\tPROVIDER\tSTATE\tACCESS TOKEN EXPIRES\tLAST SUCCESS\tLAST FAILURE\tWARNING")
	var hints []statuspage.Status
	for _, c := range m.Connections {
		if c.Accounts == nil {
			writeStatusRow(tw, c.Name, c, now)
			hints = append(hints, c)
			continue
		}
		n := c.Accounts.Counts
		fmt.Fprintf(tw, "%s\t%s\t%s\t-\t-\t-\t%d accounts: %d ok, %d retrying, %d needs consent\n",
			c.Name, dash(c.Provider), c.State, n.Total(), n.OK, n.Retrying, n.NeedsConsent)
		for _, a := range c.Accounts.List {
			writeStatusRow(tw, "  "+a.Name, a, now)
			hints = append(hints, a)
		}
		if n.Total() == 0 {
			hints = append(hints, c)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, c := range hints {
		switch {
		case c.Accounts != nil:
			fmt.Fprintf(w, "%s has no account yet: freshtoken invite %s LABEL\n", c.Name, c.Name)
		case c.State == statuspage.NeedsConsent:
			fmt.Fprintf(w, "%s needs consent: open %s\n", c.Name, c.AuthorizeURL)
		case c.State == statuspage.NotConnected:
			fmt.Fprintf(w, "%s is not connected: open %s, or use freshtoken import %s\n", c.Name, c.AuthorizeURL, c.Name)
		}
	}
	return nil
}

// writeStatusRow writes the line of one connection or account, shown as name.
func writeStatusRow(tw io.Writer, name string, c statuspage.Status, now time.Time) {
	expires := "-"
	if c.State != statuspage.NotConnected {
		expires = relative(c.AccessTokenExpiresAt.Time, now, "no expiry")
	}
	failure := "-"
	if !c.LastFailure.IsZero() {
		failure = human.Relative(c.LastFailure.Time, now)
		if c.LastFailureClass != "" {
			failure += " (" + c.LastFailureClass + ")"
		}
		if c.LastFailureMessage != "" {
			failure += ": " + oneLine(c.LastFailureMessage)
		}
	}
	warning := "-"
	if c.Warning != "" {
		warning = oneLine(c.Warning)
	}
	if len(c.MissingScopes) > 0 {
		warning = strings.TrimPrefix(warning+"; missing scopes: "+strings.Join(c.MissingScopes, " "), "-; ")
	}
	fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, dash(c.Provider), c.State, expires,
		relative(c.LastSuccess.Time, now, "never"), failure, warning)
}

// relative is t from now for a person, or zero when t is zero.
func relative(t, now time.Time, zero string) string {
	if t.IsZero() {
		return zero
	}
	return human.Relative(t, now)
}

// oneLine keeps a table cell on one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
