// Package withdraw removes an account: it revokes the account's access at the provider where the
// provider allows it, then deletes the account's rows (its tokens, its status and the record of
// the invitation that connected it), so a participant who withdraws is gone from the table and,
// where possible, from the provider's list of authorized apps.
//
// When the provider cannot be told (an error, or no revocation API), the rows are still deleted
// by default, and the result says so and where the person can revoke the app themselves: once
// withdrawn, an account must not go on being refreshed while someone retries. Options.KeepOnFailure
// keeps the rows instead when the revocation call failed, for a later retry.
package withdraw

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/freshtoken/freshtoken/internal/connection"
	"github.com/freshtoken/freshtoken/internal/store"
	"github.com/freshtoken/freshtoken/internal/tokenclient"
)

// Store is what a removal needs of the token store.
type Store interface {
	Get(ctx context.Context, name string) (*store.Record, error)
	// Remove deletes r's partition if it still holds what r read; store.ErrConflict otherwise.
	Remove(ctx context.Context, r *store.Record) (int, error)
}

// Options configure Remove. The zero value of each optional field works.
type Options struct {
	Store Store
	// KeepOnFailure keeps the rows when the revocation call failed (not when the provider has
	// no revocation API): nothing is deleted and the result says to run again.
	KeepOnFailure bool
	// Attempts bounds the re-reads after a concurrent write (a refresh committing meanwhile).
	// Default 3.
	Attempts int
}

// Result is what a removal did.
type Result struct {
	Partition string // NAME.LABEL, or NAME for a single-account connection
	Provider  string // the provider's name for people
	// Revoked says the provider confirmed it took the access back.
	Revoked bool
	// NoAPI says the provider has no revocation call: the person revokes (Help).
	NoAPI bool
	// RevokeErr is why the revocation call failed; nil when Revoked or NoAPI.
	RevokeErr error
	// Help is where the person can revoke the app's access themselves, when not Revoked.
	Help string
	// Unreadable says the stored refresh token could not be opened (TOKEN_ENCRYPTION_KEYS lacks
	// its key), so only the access token could be sent for revocation.
	Unreadable bool
	// Deleted is the number of rows deleted; Kept says they were kept (KeepOnFailure).
	Deleted int
	Kept    bool
}

// NeedsAttention says the provider may still list the app for the person: the coordinator
// should pass on Help, or run again.
func (r Result) NeedsAttention() bool { return !r.Revoked }

// Remove revokes and deletes account c (an account value from connection.Connection.Account, or
// a single-account connection). An account with no rows is an error wrapping store.ErrNotFound.
func Remove(ctx context.Context, o Options, c *connection.Connection) (Result, error) {
	attempts := o.Attempts
	if attempts <= 0 {
		attempts = 3
	}
	res := Result{Partition: c.Name, Provider: c.Title()}
	revoked := "" // the refresh (or access) token already revoked
	for attempt := range attempts {
		r, err := o.Store.Get(ctx, c.Name)
		if errors.Is(err, store.ErrNotFound) {
			// No token rows; invitation records alone may remain.
			n, rerr := o.Store.Remove(ctx, &store.Record{Name: c.Name})
			switch {
			case rerr == nil:
				res.Deleted += n
				return res, nil
			case errors.Is(rerr, store.ErrNotFound) && attempt > 0:
				return res, nil // a concurrent removal finished it
			case errors.Is(rerr, store.ErrNotFound):
				return res, fmt.Errorf("remove %s: nothing is stored for it: %w", c.Name, store.ErrNotFound)
			case errors.Is(rerr, store.ErrConflict):
				continue // connected meanwhile
			}
			return res, fmt.Errorf("remove %s: delete: %w", c.Name, rerr)
		}
		if err != nil {
			return res, fmt.Errorf("remove %s: read: %w", c.Name, err)
		}
		g := tokenclient.Grant{AccessToken: r.Tokens.AccessToken, RefreshToken: r.Tokens.RefreshToken, AccountID: r.Status.AccountID}
		res.Unreadable = r.SecretErr != nil
		if key := g.RefreshToken + "\x00" + g.AccessToken; key != revoked {
			revokeOnce(ctx, c, g, &res)
			revoked = key
		}
		if res.RevokeErr != nil && o.KeepOnFailure {
			res.Kept = true
			return res, nil
		}
		n, err := o.Store.Remove(ctx, r)
		if errors.Is(err, store.ErrConflict) {
			continue // written meanwhile: read again, and revoke what is there now
		}
		if err != nil {
			return res, fmt.Errorf("remove %s: delete: %w", c.Name, err)
		}
		res.Deleted += n
		return res, nil
	}
	return res, fmt.Errorf("remove %s: the rows kept changing during %d attempts; run again: %w", c.Name, attempts, store.ErrConflict)
}

// revokeOnce asks the provider to take g back and records the outcome in res.
func revokeOnce(ctx context.Context, c *connection.Connection, g tokenclient.Grant, res *Result) {
	rv, ok := c.Client.(tokenclient.Revoker)
	if !ok {
		res.NoAPI, res.Revoked, res.RevokeErr = true, false, nil
		return
	}
	out, err := rv.Revoke(ctx, g)
	res.Help = out.Help
	switch {
	case errors.Is(err, tokenclient.ErrNoRevokeAPI):
		res.NoAPI, res.Revoked, res.RevokeErr = true, false, nil
	case err != nil:
		res.NoAPI, res.Revoked, res.RevokeErr = false, false, err
	default:
		res.NoAPI, res.Revoked, res.RevokeErr, res.Help = false, out.Revoked, nil, ""
	}
}

// Write prints r for a person, one line, plus one saying where to revoke when the provider was
// not told.
func (r Result) Write(w io.Writer) error {
	var line string
	switch {
	case r.Kept:
		line = fmt.Sprintf("kept %s: %s could not be told (%v); nothing deleted. Run again, or without --keep-on-failure to delete anyway.\n",
			r.Partition, r.Provider, r.RevokeErr)
	case r.Revoked:
		line = fmt.Sprintf("removed %s: access revoked at %s; %d rows deleted.\n", r.Partition, r.Provider, r.Deleted)
	case r.NoAPI:
		line = fmt.Sprintf("removed %s: %d rows deleted; %s has no revocation call freshtoken can make.\n", r.Partition, r.Deleted, r.Provider)
	case r.RevokeErr != nil:
		line = fmt.Sprintf("removed %s: %d rows deleted, but %s could not be told (%v), so it may still list the app for this person.\n",
			r.Partition, r.Deleted, r.Provider, r.RevokeErr)
	default:
		line = fmt.Sprintf("removed %s: %d rows deleted.\n", r.Partition, r.Deleted)
	}
	if _, err := io.WriteString(w, line); err != nil {
		return err
	}
	if r.Unreadable {
		if _, err := io.WriteString(w, "  the stored refresh token could not be opened (see TOKEN_ENCRYPTION_KEYS): only the access token was sent\n"); err != nil {
			return err
		}
	}
	if !r.Revoked && r.Help != "" {
		if _, err := fmt.Fprintf(w, "  to revoke the app's access: %s\n", r.Help); err != nil {
			return err
		}
	}
	return nil
}
