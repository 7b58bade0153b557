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

// statusCommand is `freshtoken status [--json]`: every configured connection's state, built by
// statuspage.Build, the status page's own model, so that the two never disagree. --json prints
// the page's JSON; otherwise a table for a person. Status 0 when every connection is ok or
// retrying, 1 when any needs a person (needs_consent, not_connected) or the table could not be
// read. Logs go to stderr.
func statusCommand(ctx context.Context, inv invocation, asJSON bool) error {
	cfg, log, err := loadSettings(inv, inv.Stderr)
	if err != nil {
		return err
	}
	a, err := build(cfg, log)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, tableTimeout)
	m, err := statuspage.Build(sctx, a.store, pageConnections(a.conns), time.Now())
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
		if c.State == statuspage.NeedsConsent || c.State == statuspage.NotConnected {
			attention = append(attention, c.Name+" ("+string(c.State)+")")
		}
	}
	if len(attention) > 0 {
		return failed("%d of %d connections need a person: %s", len(attention), len(m.Connections), strings.Join(attention, ", "))
	}
	return nil
}

// writeStatusTable writes the model for a person: one line per connection, then what to do for
// those that need a person.
func writeStatusTable(w io.Writer, m statuspage.Model) error {
	now := m.GeneratedAt
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CONNECTION\tPROVIDER\tSTATE\tACCESS TOKEN EXPIRES\tLAST SUCCESS\tLAST FAILURE\tWARNING")
	for _, c := range m.Connections {
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, dash(c.Provider), c.State, expires,
			relative(c.LastSuccess.Time, now, "never"), failure, warning)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, c := range m.Connections {
		switch c.State {
		case statuspage.NeedsConsent:
			fmt.Fprintf(w, "%s needs consent: open %s\n", c.Name, c.AuthorizeURL)
		case statuspage.NotConnected:
			fmt.Fprintf(w, "%s is not connected: open %s, or use freshtoken import %s\n", c.Name, c.AuthorizeURL, c.Name)
		}
	}
	return nil
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
