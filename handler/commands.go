package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/freshtoken/freshtoken/internal/config"
	"github.com/freshtoken/freshtoken/internal/connection"
	"github.com/freshtoken/freshtoken/internal/redact"
	"github.com/freshtoken/freshtoken/internal/refresh"
	"github.com/freshtoken/freshtoken/internal/server"
)

// tableTimeout bounds a subcommand's single reads of the table (opening it included).
const tableTimeout = 30 * time.Second

// maxShown bounds an error message quoted in a subcommand's output.
const maxShown = 300

// failed is the exit status 1 with a message; the message must already be free of secrets.
func failed(format string, a ...any) error {
	return &exitError{Code: exitFailed, Err: fmt.Errorf(format, a...)}
}

// refreshCommand is `freshtoken refresh`: one pass through the same wiring as under the host
// (build and pass: the same lease, classification, logging, notifications and heartbeat), then
// exit. Its logs go where the handler's go: information to stdout, warnings and errors to
// stderr. The status is 1 when the table could not be read or a due connection was left without
// a fresh pair.
func refreshCommand(ctx context.Context, inv invocation) error {
	cfg, log, err := loadSettings(inv, inv.Stdout)
	if err != nil {
		return err
	}
	a, err := build(cfg, log)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, server.DefaultPassTimeout)
	report := a.pass(pctx)
	cancel()
	held := a.flushHeld(ctx)

	if report.Err != nil {
		return failed("the pass could not run: %s", redact.String(report.Err.Error(), maxShown))
	}
	var names []string
	for _, res := range report.Results {
		if res.Outcome == refresh.Failed {
			names = append(names, res.Connection)
		}
	}
	if len(held) > 0 {
		return failed("the provider issued a new pair for %s that could not be stored, and it is lost when this "+
			"process exits; where the provider rotates refresh tokens, open the Authorize URL to connect again",
			strings.Join(held, ", "))
	}
	if len(names) > 0 {
		return failed("%d of %d connections left without a fresh pair: %s (see the lines above)",
			len(names), len(report.Results), strings.Join(names, ", "))
	}
	return nil
}

// flushHeld retries, for up to a lease, writing the pairs the pass could not store (a one-shot
// process has no next pass to write them), and returns those still held.
func (a *app) flushHeld(ctx context.Context) []string {
	// The pairs matter more than an interrupt: a spent refresh token cannot be sent again.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.Lease)
	defer cancel()
	delay := time.Second
	for {
		held := a.refresher.Flush(fctx)
		if len(held) == 0 {
			return nil
		}
		select {
		case <-fctx.Done():
			return held
		case <-time.After(delay):
		}
		delay = min(2*delay, 15*time.Second)
	}
}

// lookup is the configured connection called name, or an account NAME.LABEL of a many-account
// connection. An unknown name is exit status 2, naming the configured ones.
func (a *app) lookup(name string) (*connection.Connection, error) {
	base, label, isAccount := strings.Cut(name, connection.LabelSeparator)
	c := findConnection(a.conns, base)
	switch {
	case c == nil:
		return nil, unknownConnection(name, a.cfg)
	case !isAccount && c.Many:
		return nil, &exitError{Code: exitUsage, Err: fmt.Errorf("connection %s holds many accounts: name one as %s.LABEL", c.Name, c.Name)}
	case !isAccount:
		return c, nil
	}
	acc, err := c.Account(label)
	if err != nil {
		return nil, &exitError{Code: exitUsage, Err: err}
	}
	return acc, nil
}

// unknownConnection is exit status 2 for a name that OAUTH_CONNECTIONS does not list.
func unknownConnection(name string, cfg config.Config) error {
	names := make([]string, 0, len(cfg.Connections))
	for _, c := range cfg.Connections {
		names = append(names, c.Name)
	}
	slices.Sort(names)
	return &exitError{Code: exitUsage, Err: fmt.Errorf("unknown connection %s: %s lists %s",
		quoteArg(name), config.SettingConnections, strings.Join(names, ", "))}
}

// rekeyCommand is `freshtoken rekey`: every secret in the table sealed under the first key of
// TOKEN_ENCRYPTION_KEYS. It prints what it scanned and changed, and each row it left as it was
// (connection and key id, never a key or a value); status 1 when any was left or no keys are set.
func rekeyCommand(ctx context.Context, inv invocation) error {
	cfg, log, err := loadSettings(inv, inv.Stderr)
	if err != nil {
		return err
	}
	if cfg.Store.Keys == nil {
		return failed("%s is not set: there is no key to encrypt with. Set it (KID:BASE64, a key from "+
			"`openssl rand -base64 32`) and run rekey again", config.SettingEncryptionKeys)
	}
	a, err := build(cfg, log)
	if err != nil {
		return err
	}
	octx, cancel := context.WithTimeout(ctx, tableTimeout)
	s, err := a.store.Open(octx)
	cancel()
	if err != nil {
		return failed("open the token table: %s", redact.String(err.Error(), maxShown))
	}
	res, err := s.Rekey(ctx)
	fmt.Fprintf(inv.Stdout, "rekey: %d rows hold a secret; %d rewritten under key %s; %d left as they were\n",
		res.Scanned, res.Changed, cfg.Store.Keys.Primary(), len(res.Failed))
	for _, f := range res.Failed {
		fmt.Fprintf(inv.Stdout, "  not rekeyed: %s\n", redact.String(f.Error(), maxShown))
	}
	switch {
	case len(res.Failed) > 0:
		return failed("%d of %d rows are not under key %s yet: keep the old keys in %s until rekey reports none",
			len(res.Failed), res.Scanned, cfg.Store.Keys.Primary(), config.SettingEncryptionKeys)
	case err != nil:
		return failed("%s", redact.String(err.Error(), maxShown))
	}
	return nil
}

// readerURLCommand is `freshtoken reader-url CONNECTION`: a SAS URL that reads only the
// connection's AccessToken row, valid for valid. The URL is a credential: it is written to
// stdout alone, and nothing else ever prints it.
func readerURLCommand(ctx context.Context, inv invocation, name string, valid time.Duration) error {
	cfg, log, err := loadSettings(inv, inv.Stderr)
	if err != nil {
		return err
	}
	a, err := build(cfg, log)
	if err != nil {
		return err
	}
	c, err := a.lookup(name)
	if err != nil {
		return err
	}
	now := time.Now()
	u, err := readerURL(cfg.Store, c.Name, valid, now)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(inv.Stdout, u); err != nil {
		return fmt.Errorf("write the URL: %w", err)
	}
	log.Info().Str("connection", c.Name).Time("expires", now.Add(valid).UTC()).
		Msg("printed a reader URL: query only, on this connection's AccessToken row; keep it like a password")
	return nil
}

// errNeedsAccountKey explains reader-url without an account key.
var errNeedsAccountKey = errors.New("reader-url needs the storage account key: a table SAS is signed with it, " +
	"and tables have no user-delegation SAS. This store is reached with Microsoft Entra ID (" +
	config.SettingStoreEndpoint + ") or a connection string without AccountKey. Either give " +
	config.SettingStoreConnection + " a connection string with AccountKey, or grant the reader the " +
	`"Storage Table Data Reader" role instead; that role can be scoped to a table but not to a row, ` +
	"so keep what a reader may see in a table of its own")
