package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/freshtoken/freshtoken/internal/connection"
	"github.com/freshtoken/freshtoken/internal/human"
	"github.com/freshtoken/freshtoken/internal/notify"
	"github.com/freshtoken/freshtoken/internal/redact"
	"github.com/freshtoken/freshtoken/internal/store"
	"github.com/freshtoken/freshtoken/internal/tokenclient"
)

// importWriteFor bounds how long import keeps trying to store a pair the provider issued: the
// refresh token it was given may be spent by then.
const importWriteFor = 2 * time.Minute

// pairSaver stores the first pair of a grant and its status in one transaction (*store.Lazy).
type pairSaver interface {
	SaveConsent(ctx context.Context, name string, t store.Tokens, st store.Status) error
}

// importCommand is `freshtoken import CONNECTION [--replace]`: a connection started from a
// refresh token the user already holds, read from stdin only. A stored pair is refused without
// --replace before the token is read. The token is refreshed once at the provider, and the new
// pair is stored with a fresh Status row in one transaction, as the Callback does. A token the
// provider refuses leaves the table as it was (status 1). Logs go to stderr; stdout says when the
// new access token expires.
func importCommand(ctx context.Context, inv invocation, name string, replace bool) error {
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
	if c.Preset.NoRefreshToken {
		return &exitError{Code: exitUsage, Err: fmt.Errorf("%s issues no refresh token, so there is nothing to import for %s: open %s to connect", c.Title(), c.Name, c.AuthorizeURL)}
	}

	gctx, cancel := context.WithTimeout(ctx, tableTimeout)
	prev, err := a.store.Get(gctx, c.Name)
	cancel()
	switch {
	case errors.Is(err, store.ErrNotFound):
		prev = nil
	case err != nil:
		return failed("read connection %s from the token table: %s; nothing was changed", c.Name, redact.String(err.Error(), maxShown))
	case (prev.HasAccess || prev.HasRefresh) && !replace:
		held := ""
		if prev.Status.AccountID != "" {
			held = " (account " + prev.Status.AccountID + ")"
		}
		return failed("connection %s already has a stored pair%s: nothing was changed; add --replace to replace it", c.Name, held)
	}

	token, err := readRefreshToken(inv.Stdin, inv.Stderr, c.Name)
	if err != nil {
		return &exitError{Code: exitUsage, Err: err}
	}
	tok, err := c.Client.Refresh(ctx, token)
	if err != nil {
		return failed("%s refused the refresh token: %s; nothing was stored", c.Title(), refreshFailure(err, token))
	}
	t, st, missing := c.NewPair(prev, tok, "", time.Now())
	if prev != nil {
		// As after a consent: "recovered" still follows a reported failure.
		st = notify.Carry(prev.Status, st)
	}
	if err := savePair(ctx, a.store, c.Name, t, st, importWriteFor); err != nil {
		return lostPair(c, token, tok, err)
	}
	log.Info().Str("connection", c.Name).Str("account", tok.AccountID).Int64("generation", st.Generation).
		Bool("rotated", tok.Rotated).Msg("import: stored the pair")

	var b strings.Builder
	fmt.Fprintf(&b, "%s: imported", c.Name)
	if tok.AccountID != "" {
		fmt.Fprintf(&b, " (account %s)", tok.AccountID)
	}
	if t.ExpiresAt.IsZero() {
		b.WriteString("; the provider gave the access token no expiry\n")
	} else {
		fmt.Fprintf(&b, "; the access token expires %s (%s)\n", t.ExpiresAt.UTC().Format(time.RFC3339), human.Relative(t.ExpiresAt, time.Now()))
	}
	if len(missing) > 0 {
		fmt.Fprintf(&b, "warning: the grant lacks scopes asked for in the settings: %s\n", strings.Join(missing, " "))
	}
	if tok.Rotated {
		b.WriteString("The refresh token you gave is spent: only freshtoken's copy works now. Stop the old refresher and delete its copy.\n")
	}
	_, err = fmt.Fprint(inv.Stdout, b.String())
	return err
}

// refreshFailure describes a refused refresh without the token or the raw body.
func refreshFailure(err error, token string) string {
	var te *tokenclient.Error
	if errors.As(err, &te) {
		switch {
		case te.Gone != "":
			return te.Gone
		case te.Class == tokenclient.Revoked:
			why := "it is invalid, expired or revoked"
			if te.Code != "" || te.Detail != "" {
				why += " (" + strings.Trim(te.Code+": "+te.Detail, ": ") + ")"
			}
			return redact.String(why, maxShown, token)
		case te.Class == tokenclient.Ambiguous:
			return redact.String(err.Error(), maxShown, token) + "; the answer was lost, and the provider may have spent the token"
		}
	}
	return redact.String(err.Error(), maxShown, token)
}

// savePair stores the pair, retrying for up to within: the provider has issued it, and the
// refresh token given may be spent, so giving up early loses the grant. An interrupt does not
// cut it short.
func savePair(ctx context.Context, s pairSaver, name string, t store.Tokens, st store.Status, within time.Duration) error {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), within)
	defer cancel()
	delay := 500 * time.Millisecond
	for {
		err := s.SaveConsent(wctx, name, t, st)
		if err == nil {
			return nil
		}
		select {
		case <-wctx.Done():
			return err
		case <-time.After(delay):
		}
		delay = min(2*delay, 10*time.Second)
	}
}

// lostPair is the error of an import whose pair the provider issued but the table did not take.
// When the provider rotated, the given refresh token is spent and the new one exists only here:
// it is written to a file readable by this user alone (never to the output), so that a later
// `import --replace` can bring it in.
func lostPair(c *connection.Connection, given string, tok *tokenclient.Token, err error) error {
	why := redact.String(err.Error(), maxShown, given, tok.AccessToken, tok.RefreshToken)
	if !tok.Rotated || tok.RefreshToken == given {
		return failed("the provider accepted the refresh token but the pair could not be stored: %s. "+
			"The provider did not rotate it, so the token you gave still works: run the import again", why)
	}
	path, ferr := rescue(c.Name, tok.RefreshToken)
	if ferr != nil {
		return failed("the provider issued a new pair but it could not be stored: %s. The refresh token you gave "+
			"is spent, and the new one could not be kept either (%s): open %s to connect again",
			why, redact.String(ferr.Error(), maxShown, tok.RefreshToken), c.AuthorizeURL)
	}
	return failed("the provider issued a new pair but it could not be stored: %s. The refresh token you gave is spent; "+
		"the new one is saved in %s (readable by you only). When the table is reachable, run "+
		"`freshtoken import %s --replace < %s`, then delete the file", why, path, c.Name, path)
}

// rescue writes refreshToken to a new file of mode 0600 in the working directory (else the
// temporary directory) and returns its path.
func rescue(name, refreshToken string) (string, error) {
	pattern := "freshtoken-" + name + "-refresh-token-*.txt"
	f, err := os.CreateTemp(".", pattern)
	if err != nil {
		if f, err = os.CreateTemp("", pattern); err != nil {
			return "", fmt.Errorf("create a file for the new refresh token: %w", err)
		}
	}
	_, werr := f.WriteString(refreshToken + "\n")
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("write %s: %w", f.Name(), err)
	}
	if abs, err := filepath.Abs(f.Name()); err == nil {
		return abs, nil
	}
	return f.Name(), nil
}
