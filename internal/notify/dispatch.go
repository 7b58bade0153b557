package notify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/freshtoken/freshtoken/internal/redact"
	"github.com/freshtoken/freshtoken/internal/store"
	"github.com/rs/zerolog"
)

// StatusStore is the token table as the dispatcher uses it (a *store.Store).
type StatusStore interface {
	Get(ctx context.Context, name string) (*store.Record, error)
	// SetStatus writes st conditionally on the Status ETag c holds; store.ErrConflict when
	// another writer came first. On success c holds st and the new ETag.
	SetStatus(ctx context.Context, c *store.Record, st store.Status) error
}

// Sender delivers a message (a *Notifier).
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// Dispatcher decides and sends the notifications of a refresh pass, once across passes,
// processes and instances.
//
// For one connection it reads the Status row, calls Decide, and when an event is due writes a
// claim (NotifyClaim, NotifyClaimUntil) conditionally on the row's ETag: of several processes
// only the one whose write lands sends. After delivery it records NotifiedEvent and NotifiedAt
// and clears the claim; after a failed delivery it clears the claim, so the next pass tries
// again. Delivery is at least once: a process that dies after sending and before recording
// leaves a claim that expires after ClaimFor, and the next pass sends again.
type Dispatcher struct {
	Store  StatusStore
	Sender Sender
	Policy Policy
	// ClaimFor is how long a claim holds off other processes; it must outlast a delivery.
	// Default 2m.
	ClaimFor time.Duration
	Now      func() time.Time // default time.Now
	Log      zerolog.Logger   // for Pass
}

// Pass runs Connection for every target after a refresh pass, reading each Status row afresh,
// and logs what it sent or could not send. It never fails: a notification that cannot be
// delivered is logged and tried again at the next pass. Call it once per pass, after the
// pass's results are stored, with every configured connection. A nil Dispatcher, or one
// without a Sender, does nothing: build one only when NOTIFY_URLS is set, or events would be
// recorded as notified without anyone hearing of them.
func (d *Dispatcher) Pass(ctx context.Context, targets []Target) {
	if d == nil || d.Sender == nil {
		return
	}
	for _, t := range targets {
		out, err := d.Connection(ctx, t, nil)
		switch {
		case err != nil:
			ev := d.Log.Warn().Str("connection", t.Name)
			if out.Event != nil {
				ev = ev.Str("event", out.Event.key())
			}
			ev.Str("error", err.Error()).Msg("notification not delivered; the next pass tries again")
		case out.Sent != nil:
			d.Log.Info().Str("connection", t.Name).Str("event", string(out.Sent.Kind)).Msg("notification sent")
		case out.Skip != "":
			d.Log.Debug().Str("connection", t.Name).Str("reason", out.Skip).Msg("notification deferred")
		}
	}
}

// Outcome is what Connection did, for the pass's log.
type Outcome struct {
	Sent  *Event // the event delivered, nil when none
	Skip  string // why nothing was sent although something may be due ("" otherwise)
	Event *Event // the event that was due, delivered or not
}

// maxConflicts bounds the re-reads after losing a conditional write.
const maxConflicts = 3

// Connection decides for one connection and sends at most one notification. rec is the
// connection as last read or written (its Status ETag guards the claim), or nil to read it.
// It never changes tokens or the connection's state, only the notification fields of the
// Status row. Its error says what failed, redacted; the caller logs it and goes on: a
// notification that cannot be delivered never fails a pass.
func (d *Dispatcher) Connection(ctx context.Context, t Target, rec *store.Record) (Outcome, error) {
	now := d.now()
	for range maxConflicts {
		if rec == nil {
			fresh, err := d.Store.Get(ctx, t.Name)
			if errors.Is(err, store.ErrNotFound) {
				return Outcome{}, nil
			}
			if err != nil {
				return Outcome{}, fmt.Errorf("notify %s: read status: %s", t.Name, redact.String(err.Error(), 300))
			}
			rec = fresh
		}
		if !rec.HasStatus {
			return Outcome{}, nil
		}
		st := rec.Status
		if st.LeaseOwner != "" && st.LeaseUntil.After(now) {
			// A refresh is under way; the pass that holds the lease decides after it.
			return Outcome{Skip: "a refresh holds the lease"}, nil
		}
		if st.NotifyClaim != "" && st.NotifyClaimUntil.After(now) {
			return Outcome{Skip: "another process is sending " + st.NotifyClaim}, nil
		}
		prev := RecordOf(st)
		dec := Decide(prev, CurrentOf(st, now), now, d.Policy)
		if dec.Send == nil {
			if dec.Next == prev && st.NotifyClaim == "" {
				return Outcome{}, nil
			}
			st = withRecord(st, dec.Next)
			st.NotifyClaim, st.NotifyClaimUntil = "", time.Time{}
			err := d.Store.SetStatus(ctx, rec, st)
			if errors.Is(err, store.ErrConflict) {
				rec = nil
				continue
			}
			if err != nil {
				return Outcome{}, fmt.Errorf("notify %s: record: %s", t.Name, redact.String(err.Error(), 300))
			}
			return Outcome{}, nil
		}

		// Claim the event.
		claimed := st
		claimed.FailingSince = dec.Next.FailingSince
		claimed.NotifyClaim = dec.Send.key()
		claimed.NotifyClaimUntil = now.Add(d.claimFor())
		err := d.Store.SetStatus(ctx, rec, claimed)
		if errors.Is(err, store.ErrConflict) {
			rec = nil
			continue
		}
		if err != nil {
			return Outcome{Event: dec.Send}, fmt.Errorf("notify %s: claim %s: %s", t.Name, claimed.NotifyClaim, redact.String(err.Error(), 300))
		}
		claim := claimOf(rec.Status)

		msg := Compose(*dec.Send, t, dec.Next.FailingSince, st.RefreshDeadline, now)
		sendErr := d.Sender.Send(ctx, msg)
		// Record the outcome even when ctx has ended: a claim left behind delays a retry.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if sendErr != nil {
			werr := d.finish(wctx, t.Name, rec, claim, nil)
			err := fmt.Errorf("notify %s: send %s: %w", t.Name, claim.event, sendErr)
			if werr != nil {
				err = errors.Join(err, werr)
			}
			return Outcome{Event: dec.Send}, err
		}
		next := dec.Next
		if werr := d.finish(wctx, t.Name, rec, claim, &next); werr != nil {
			return Outcome{Sent: dec.Send, Event: dec.Send}, werr
		}
		return Outcome{Sent: dec.Send, Event: dec.Send}, nil
	}
	return Outcome{Skip: "the Status row kept changing"}, nil
}

// claimID identifies a claim as written.
type claimID struct {
	event string
	until time.Time
}

func claimOf(st store.Status) claimID { return claimID{st.NotifyClaim, st.NotifyClaimUntil} }

// finish clears the claim c wrote, recording next when the delivery succeeded (next non-nil).
// After a conflict it re-reads and retries while the claim in the row is still c: the other
// writer (a lease, a failure recorded) changed only what it owns.
func (d *Dispatcher) finish(ctx context.Context, name string, rec *store.Record, c claimID, next *Record) error {
	for range maxConflicts {
		st := rec.Status
		if claimOf(st) != c {
			return fmt.Errorf("notify %s: the claim for %s was taken over before it was recorded", name, c.event)
		}
		if next != nil {
			st.NotifiedEvent, st.NotifiedAt = next.Event, next.At
			switch {
			case st.State == store.StateOK:
				st.FailingSince = time.Time{}
			case st.FailingSince.IsZero():
				st.FailingSince = next.FailingSince
			}
		}
		st.NotifyClaim, st.NotifyClaimUntil = "", time.Time{}
		err := d.Store.SetStatus(ctx, rec, st)
		if err == nil {
			return nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("notify %s: record %s: %s", name, c.event, redact.String(err.Error(), 300))
		}
		fresh, gerr := d.Store.Get(ctx, name)
		if gerr != nil {
			return fmt.Errorf("notify %s: record %s: %s", name, c.event, redact.String(gerr.Error(), 300))
		}
		rec = fresh
	}
	return fmt.Errorf("notify %s: record %s: the Status row kept changing", name, c.event)
}

func (d *Dispatcher) now() time.Time {
	if d.Now == nil {
		return time.Now()
	}
	return d.Now()
}

func (d *Dispatcher) claimFor() time.Duration {
	if d.ClaimFor <= 0 {
		return 2 * time.Minute
	}
	return d.ClaimFor
}
