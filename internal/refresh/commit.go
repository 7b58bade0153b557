package refresh

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/freshtoken/freshtoken/internal/redact"
	"github.com/freshtoken/freshtoken/internal/store"
)

// errSuperseded: a newer pair than ours is stored; ours was dropped on purpose.
var errSuperseded = errors.New("a newer pair was stored meanwhile")

// commit stores a pair the provider issued. Transient storage errors are retried until ctx
// ends. On a conflict it re-reads: while the stored refresh token is still the one that was
// sent, nobody stored a newer pair and the write is repeated against the fresh ETags; otherwise
// ours is older and is dropped. A pair that still could not be stored is kept in memory and
// written first by the next pass of this process.
func (r *Refresher) commit(ctx context.Context, sc *store.Record, t store.Tokens, st store.Status) error {
	sent := store.Fingerprint(sc.Tokens.RefreshToken)
	err := r.writePair(ctx, sc, t, st, sent)
	if err == nil || errors.Is(err, errSuperseded) {
		return err
	}
	r.mu.Lock()
	r.pending[sc.Name] = pendingPair{conn: sc, tokens: t, status: st, sent: sent}
	r.mu.Unlock()
	r.o.Log.Error().Str("connection", sc.Name).Str("error", redact.String(err.Error(), 300)).
		Msg("the provider issued a new pair that could not be stored; it is kept in memory and written first at the next pass")
	return fmt.Errorf("the provider issued a new pair but it could not be stored (kept in memory for the next pass): %s", redact.String(err.Error(), 300))
}

// writePair is commit without the in-memory fallback.
func (r *Refresher) writePair(ctx context.Context, sc *store.Record, t store.Tokens, st store.Status, sent string) error {
	delay := 200 * time.Millisecond
	for {
		err := r.o.Store.Commit(ctx, sc, t, st)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, store.ErrConflict):
			fresh, gerr := r.o.Store.Get(ctx, sc.Name)
			if gerr == nil && fresh.SecretErr != nil {
				// An unreadable refresh token would look like a newer pair: keep ours.
				gerr = fresh.SecretErr
			}
			if gerr != nil {
				err = gerr
				break
			}
			if fresh.Tokens.AccessToken == t.AccessToken && fresh.Tokens.RefreshToken == t.RefreshToken {
				// Our pair is stored: a write that committed but whose answer was lost, retried
				// by the store into a conflict (or an identical repeat stored by another pass).
				return nil
			}
			if store.Fingerprint(fresh.Tokens.RefreshToken) != sent {
				r.o.Log.Warn().Str("connection", sc.Name).Msg("a newer pair was stored while this refresh ran; this pass's pair is dropped")
				return errSuperseded
			}
			// Only the status changed (a lease taken over, a failure recorded): ours is newer.
			st.Generation = fresh.Status.Generation + 1
			sc = fresh
			continue
		case !store.IsTransient(err):
			return err
		}
		if ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
		if delay < 2*time.Second {
			delay *= 2
		}
	}
}

// flushPending writes the pairs earlier passes could not store, before anything else.
func (r *Refresher) flushPending(ctx context.Context) {
	r.mu.Lock()
	pending := make(map[string]pendingPair, len(r.pending))
	for k, v := range r.pending {
		pending[k] = v
	}
	r.mu.Unlock()
	for name, p := range pending {
		fresh, err := r.o.Store.Get(ctx, name)
		if err == nil && fresh.SecretErr != nil {
			err = fresh.SecretErr
		}
		switch {
		case err != nil:
		case store.Fingerprint(fresh.Tokens.RefreshToken) != p.sent:
			// The stored pair is no longer the one ours was exchanged for: a newer pair (a
			// consent, another pass, or ours already) is stored, and ours must not replace it.
			err = errSuperseded
		default:
			p.status.Generation = fresh.Status.Generation + 1
			p.status.LeaseOwner, p.status.LeaseUntil = "", time.Time{}
			err = r.writePair(ctx, fresh, p.tokens, p.status, p.sent)
		}
		switch {
		case err == nil:
			r.o.Log.Warn().Str("connection", name).Msg("stored a pair kept in memory since an earlier pass")
		case errors.Is(err, errSuperseded):
		default:
			r.o.Log.Error().Str("connection", name).Str("error", redact.String(err.Error(), 300)).
				Msg("a pair kept in memory still could not be stored")
			continue
		}
		r.mu.Lock()
		delete(r.pending, name)
		r.mu.Unlock()
	}
}

// Flush writes the pairs earlier passes could not store, as the next Run would first, and
// returns the names of the connections whose pair is still held in memory only, sorted. A
// process that exits after one pass calls it until it returns none (or gives up): nothing else
// would ever write those pairs.
func (r *Refresher) Flush(ctx context.Context) []string {
	r.flushPending(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.pending))
	for name := range r.pending {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}
