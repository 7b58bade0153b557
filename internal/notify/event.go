package notify

import (
	"strings"
	"time"

	"github.com/freshtoken/freshtoken/internal/store"
)

// Defaults of the settings NOTIFY_AFTER and NOTIFY_REMINDER.
const (
	DefaultAfter    = time.Hour
	DefaultReminder = 24 * time.Hour
	// DeadlineAhead is how far ahead of a refresh token's known deadline the warning goes out.
	DeadlineAhead = 14 * 24 * time.Hour
)

// Kind is what happened to a connection.
type Kind string

const (
	NeedsConsent Kind = "needs_consent" // a person must consent again
	Failing      Kind = "failing"       // transient failures for longer than Policy.After
	DeadlineSoon Kind = "deadline_soon" // the refresh token's known deadline is near
	Recovered    Kind = "recovered"     // fresh again after a reported failure
	Reminder     Kind = "reminder"      // still needs consent
)

// Reason says why a connection needs consent.
type Reason string

const (
	Revoked        Reason = "revoked"         // the provider refused the grant
	LostInFlight   Reason = "lost_in_flight"  // a refresh's answer was lost; resending is unsafe
	Gone           Reason = "gone"            // the provider's API is shut down (Fitbit)
	DeadlinePassed Reason = "deadline_passed" // the refresh token's known deadline passed
)

// Event is one notification to send.
type Event struct {
	Kind   Kind
	Reason Reason // NeedsConsent and Reminder only
}

// key is how an event is stored in NotifiedEvent: "needs_consent:revoked", "failing", ...
// A reminder is stored as the needs-consent event it repeats.
func (e Event) key() string {
	switch e.Kind {
	case NeedsConsent, Reminder:
		return string(NeedsConsent) + ":" + string(e.Reason)
	}
	return string(e.Kind)
}

// Current is a connection's status as the decision needs it.
type Current struct {
	// State is ok, retrying or needs_consent; "" when the connection has no Status row.
	State  store.State
	Reason Reason // why consent is needed, when State is needs_consent
	// FailingSince is the first failure of the streak; zero when unknown or while ok.
	FailingSince time.Time
	// LastFailure is the latest failure; it starts the streak when FailingSince is unknown.
	LastFailure time.Time
	// RefreshDeadline is the refresh token's known deadline, zero when none is known.
	RefreshDeadline time.Time
}

// Record is what the Status row says was last notified.
type Record struct {
	Event        string    // NotifiedEvent: the last event key delivered, "" for none
	At           time.Time // NotifiedAt
	FailingSince time.Time // the streak's start as the notifier keeps it
}

// Policy holds the settings. Zero values are meaningful: After 0 reports a transient failure
// at once, Reminder 0 sends no reminders.
type Policy struct {
	After    time.Duration // NOTIFY_AFTER
	Reminder time.Duration // NOTIFY_REMINDER
}

// Decision is what Decide chose: Send is nil when nothing is to be sent, and Next is the
// record to store once Send was delivered (or at once when Send is nil and Next differs).
type Decision struct {
	Send *Event
	Next Record
}

// Decide chooses which event, if any, to send for a connection whose last notification is prev
// and whose status is cur, at now. It is pure. Each condition is notified once per
// transition: needs consent (then a reminder every p.Reminder), failing for longer than
// p.After, the refresh-token deadline DeadlineAhead away, and recovered, which is sent only
// when a needs-consent or failing notification went out before.
func Decide(prev Record, cur Current, now time.Time, p Policy) Decision {
	next := prev
	last := Kind(prev.Event)
	if i := strings.IndexByte(prev.Event, ':'); i >= 0 {
		last = Kind(prev.Event[:i])
	}
	reported := last == NeedsConsent || last == Failing

	switch cur.State {
	case "":
		return Decision{Next: prev}
	case store.StateOK:
		next.FailingSince = time.Time{}
		if reported {
			return send(Event{Kind: Recovered}, next, now)
		}
		soon := !cur.RefreshDeadline.IsZero() && cur.RefreshDeadline.Sub(now) < DeadlineAhead && cur.RefreshDeadline.After(now)
		switch {
		case soon && last != DeadlineSoon:
			return send(Event{Kind: DeadlineSoon}, next, now)
		case !soon && last == DeadlineSoon:
			// A new consent moved the deadline: a later one warns again.
			next.Event, next.At = "", time.Time{}
		}
		return Decision{Next: next}
	}

	// Failing: retrying or needs_consent.
	if next.FailingSince.IsZero() || !cur.FailingSince.IsZero() {
		next.FailingSince = cur.FailingSince
	}
	if next.FailingSince.IsZero() {
		next.FailingSince = cur.LastFailure
	}
	if next.FailingSince.IsZero() {
		next.FailingSince = now
	}

	if cur.State == store.StateNeedsConsent {
		reason := cur.Reason
		if reason == "" {
			reason = Revoked
		}
		if last != NeedsConsent {
			return send(Event{Kind: NeedsConsent, Reason: reason}, next, now)
		}
		if p.Reminder > 0 && now.Sub(prev.At) >= p.Reminder {
			// The stored event keeps its original reason: a reminder is the same transition.
			ev := Event{Kind: Reminder, Reason: Reason(strings.TrimPrefix(prev.Event, string(NeedsConsent)+":"))}
			d := send(ev, next, now)
			d.Next.Event = prev.Event
			return d
		}
		return Decision{Next: next}
	}

	// Retrying.
	if last != Failing && last != NeedsConsent && now.Sub(next.FailingSince) >= p.After {
		return send(Event{Kind: Failing}, next, now)
	}
	return Decision{Next: next}
}

func send(ev Event, next Record, now time.Time) Decision {
	next.Event, next.At = ev.key(), now
	return Decision{Send: &ev, Next: next}
}

// CurrentOf reads a Status row into the decision's input.
func CurrentOf(st store.Status, now time.Time) Current {
	return Current{
		State:           st.State,
		Reason:          ReasonOf(st, now),
		FailingSince:    st.FailingSince,
		LastFailure:     st.LastFailure,
		RefreshDeadline: st.RefreshDeadline,
	}
}

// RecordOf reads what the Status row says was last notified.
func RecordOf(st store.Status) Record {
	return Record{Event: st.NotifiedEvent, At: st.NotifiedAt, FailingSince: st.FailingSince}
}

// withRecord returns st carrying r.
func withRecord(st store.Status, r Record) store.Status {
	st.NotifiedEvent, st.NotifiedAt, st.FailingSince = r.Event, r.At, r.FailingSince
	return st
}

// Carry copies the notification fields of prev into next: a write that builds a Status row
// from scratch (a new consent) calls it so that "recovered" still follows a reported failure.
func Carry(prev, next store.Status) store.Status {
	next.NotifiedEvent, next.NotifiedAt = prev.NotifiedEvent, prev.NotifiedAt
	next.NotifyClaim, next.NotifyClaimUntil = prev.NotifyClaim, prev.NotifyClaimUntil
	return next
}

// ReasonOf says why a connection in needs_consent needs it. The failure classes are
// refresh's: "gone" for a shut-down API, "ambiguous" for a refresh lost in flight.
func ReasonOf(st store.Status, now time.Time) Reason {
	if st.State != store.StateNeedsConsent {
		return ""
	}
	switch {
	case st.LastFailureClass == string(Gone):
		return Gone
	case st.LastFailureClass == "ambiguous":
		return LostInFlight
	case !st.RefreshDeadline.IsZero() && !st.RefreshDeadline.After(now):
		return DeadlinePassed
	}
	return Revoked
}
