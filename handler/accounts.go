package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/freshtoken/freshtoken/internal/config"
	"github.com/freshtoken/freshtoken/internal/connection"
	"github.com/freshtoken/freshtoken/internal/invite"
	"github.com/freshtoken/freshtoken/internal/withdraw"
	"github.com/rs/zerolog"
)

// defaultInviteValidity is how long an invitation stays valid without --for.
const defaultInviteValidity = 7 * 24 * time.Hour

// errNeedsAttention is returned by remove when the rows are gone but the provider was not told:
// the exit status says so (1), after the output said where the person can revoke.
var errNeedsAttention = errors.New("the provider was not told: pass on where the person can revoke the app's access (printed above)")

// inviteArgs are the arguments of `freshtoken invite NAME LABEL [--for 7d]` and
// `freshtoken invite NAME --many N --prefix P [--for 7d]`.
type inviteArgs struct {
	Connection string
	Label      string        // one invitation; "" with Many
	Many       int           // a roster of Many invitations labelled Prefix1..PrefixN
	Prefix     string        // with Many
	For        time.Duration // validity; 0: defaultInviteValidity
}

// invite prints invitations: the URL of one, or with Many a CSV roster (label,url). The expiry
// goes to stderr so that stdout holds only what is to be handed out.
func invitations(cfg config.Config, conns []*connection.Connection, o inviteArgs, stdout, stderr io.Writer) error {
	if cfg.InviteKey == nil {
		return fmt.Errorf("invite: %s is not set; invitations need it (make one with: openssl rand -base64 32)", config.SettingInviteKey)
	}
	c := findConnection(conns, o.Connection)
	if c == nil {
		return fmt.Errorf("invite: no connection named %q is configured (%s)", o.Connection, config.SettingConnections)
	}
	signer, err := invite.New(invite.Options{Key: cfg.InviteKey, Now: time.Now})
	if err != nil {
		return err
	}
	valid := o.For
	if valid == 0 {
		valid = defaultInviteValidity
	}
	labels := []string{o.Label}
	if o.Many > 0 {
		if o.Label != "" {
			return errors.New("invite: give a LABEL or --many N --prefix P, not both")
		}
		if labels, err = invite.Labels(o.Prefix, o.Many); err != nil {
			return err
		}
	}
	issued, err := signer.Roster(invite.Request{Connection: c, Labels: labels, Valid: valid})
	if err != nil {
		return err
	}
	if o.Many > 0 {
		err = invite.WriteCSV(stdout, issued)
	} else {
		_, err = fmt.Fprintln(stdout, issued[0].URL)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%d invitation(s) to %s, valid until %s; each connects its account once.\n",
		len(issued), c.Name, issued[0].Expires.Format(time.RFC3339))
	return nil
}

// remove revokes account label of connection name at the provider and deletes its rows (see
// package withdraw). With a single-account connection, label is "".
func remove(ctx context.Context, a *app, name, label string, keep bool, stdout io.Writer) error {
	c := findConnection(a.conns, name)
	if c == nil {
		return fmt.Errorf("remove: no connection named %q is configured (%s)", name, config.SettingConnections)
	}
	target := c
	if label != "" || c.Many {
		acct, err := c.Account(label)
		if err != nil {
			return fmt.Errorf("remove: %w", err)
		}
		target = acct
	}
	res, err := withdraw.Remove(ctx, withdraw.Options{Store: a.store, KeepOnFailure: keep}, target)
	if err != nil {
		return err
	}
	if err := res.Write(stdout); err != nil {
		return err
	}
	if res.Kept || res.RevokeErr != nil {
		return errNeedsAttention
	}
	return nil
}

func findConnection(conns []*connection.Connection, name string) *connection.Connection {
	for _, c := range conns {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// inviteCommand is `freshtoken invite`: it reads the settings and prints invitations; it
// contacts nothing.
func inviteCommand(_ context.Context, inv invocation, c command) error {
	o := inviteArgs{Connection: c.Connection, Label: c.Label, Many: c.Many, Prefix: c.Prefix}
	if c.For != "" {
		d, err := parseValidity(c.For)
		if err != nil {
			return err
		}
		o.For = d
	}
	cfg, err := loadQuiet(inv)
	if err != nil {
		return err
	}
	return invitations(cfg, resolve(cfg), o, inv.Stdout, inv.Stderr)
}

// removeCommand is `freshtoken remove`: exit status 0 when the account is gone and the provider
// was told (or has no revocation call), 1 when the provider could not be told or nothing was
// removed.
func removeCommand(ctx context.Context, inv invocation, c command) error {
	cfg, err := loadQuiet(inv)
	if err != nil {
		return err
	}
	a, err := build(cfg, zerolog.Nop())
	if err != nil {
		return err
	}
	err = remove(ctx, a, c.Connection, c.Label, c.Keep, inv.Stdout)
	if errors.Is(err, errNeedsAttention) {
		return &exitError{Code: exitFailed, Err: err}
	}
	return err
}

// loadQuiet reads the settings, printing their warnings to stderr.
func loadQuiet(inv invocation) (config.Config, error) {
	cfg, warnings, err := config.Load(inv.Getenv)
	if err != nil {
		return config.Config{}, err
	}
	for _, w := range warnings {
		fmt.Fprintln(inv.Stderr, "freshtoken: warning:", w)
	}
	return cfg, nil
}
