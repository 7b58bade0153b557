package notify

import (
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/store"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func TestDecide(t *testing.T) {
	p := Policy{After: time.Hour, Reminder: 24 * time.Hour}
	ago := func(d time.Duration) time.Time { return t0.Add(-d) }
	consent := func(r Reason) Current {
		return Current{State: store.StateNeedsConsent, Reason: r, LastFailure: ago(time.Minute)}
	}
	tests := []struct {
		name     string
		prev     Record
		cur      Current
		p        Policy
		want     *Event
		wantNext Record
	}{
		{"not connected", Record{}, Current{}, p, nil, Record{}},
		{"ok, nothing notified", Record{}, Current{State: store.StateOK}, p, nil, Record{}},
		{"needs consent: revoked", Record{}, consent(Revoked), p,
			&Event{NeedsConsent, Revoked}, Record{"needs_consent:revoked", t0, ago(time.Minute)}},
		{"needs consent: lost in flight", Record{}, consent(LostInFlight), p,
			&Event{NeedsConsent, LostInFlight}, Record{"needs_consent:lost_in_flight", t0, ago(time.Minute)}},
		{"needs consent: gone", Record{}, consent(Gone), p,
			&Event{NeedsConsent, Gone}, Record{"needs_consent:gone", t0, ago(time.Minute)}},
		{"needs consent: deadline passed", Record{}, consent(DeadlinePassed), p,
			&Event{NeedsConsent, DeadlinePassed}, Record{"needs_consent:deadline_passed", t0, ago(time.Minute)}},
		{"needs consent without a reason is revoked", Record{}, Current{State: store.StateNeedsConsent}, p,
			&Event{NeedsConsent, Revoked}, Record{"needs_consent:revoked", t0, t0}},
		{"needs consent after failing", Record{"failing", ago(time.Hour), ago(3 * time.Hour)}, consent(Revoked), p,
			&Event{NeedsConsent, Revoked}, Record{"needs_consent:revoked", t0, ago(3 * time.Hour)}},
		{"needs consent already sent", Record{"needs_consent:revoked", ago(time.Hour), ago(2 * time.Hour)}, consent(Revoked), p,
			nil, Record{"needs_consent:revoked", ago(time.Hour), ago(2 * time.Hour)}},
		{"a new reason is the same transition", Record{"needs_consent:lost_in_flight", ago(time.Hour), ago(2 * time.Hour)}, consent(Revoked), p,
			nil, Record{"needs_consent:lost_in_flight", ago(time.Hour), ago(2 * time.Hour)}},
		{"reminder due", Record{"needs_consent:revoked", ago(24 * time.Hour), ago(25 * time.Hour)}, consent(Revoked), p,
			&Event{Reminder, Revoked}, Record{"needs_consent:revoked", t0, ago(25 * time.Hour)}},
		{"reminder keeps the first reason", Record{"needs_consent:gone", ago(30 * time.Hour), ago(31 * time.Hour)}, consent(Revoked), p,
			&Event{Reminder, Gone}, Record{"needs_consent:gone", t0, ago(31 * time.Hour)}},
		{"reminder not yet due", Record{"needs_consent:revoked", ago(23 * time.Hour), ago(25 * time.Hour)}, consent(Revoked), p,
			nil, Record{"needs_consent:revoked", ago(23 * time.Hour), ago(25 * time.Hour)}},
		{"reminders off", Record{"needs_consent:revoked", ago(300 * time.Hour), ago(301 * time.Hour)}, consent(Revoked), Policy{After: time.Hour},
			nil, Record{"needs_consent:revoked", ago(300 * time.Hour), ago(301 * time.Hour)}},
		{"retrying, streak starts at the last failure", Record{}, Current{State: store.StateRetrying, LastFailure: ago(time.Minute)}, p,
			nil, Record{FailingSince: ago(time.Minute)}},
		{"retrying shorter than After", Record{FailingSince: ago(59 * time.Minute)}, Current{State: store.StateRetrying, LastFailure: ago(time.Minute)}, p,
			nil, Record{FailingSince: ago(59 * time.Minute)}},
		{"retrying for After", Record{FailingSince: ago(time.Hour)}, Current{State: store.StateRetrying, LastFailure: ago(time.Minute)}, p,
			&Event{Kind: Failing}, Record{"failing", t0, ago(time.Hour)}},
		{"the row's FailingSince wins", Record{FailingSince: ago(time.Minute)}, Current{State: store.StateRetrying, FailingSince: ago(2 * time.Hour)}, p,
			&Event{Kind: Failing}, Record{"failing", t0, ago(2 * time.Hour)}},
		{"After 0 reports at once", Record{}, Current{State: store.StateRetrying, LastFailure: t0}, Policy{},
			&Event{Kind: Failing}, Record{"failing", t0, t0}},
		{"failing already sent", Record{"failing", ago(time.Hour), ago(5 * time.Hour)}, Current{State: store.StateRetrying}, p,
			nil, Record{"failing", ago(time.Hour), ago(5 * time.Hour)}},
		{"failing after a deadline warning", Record{"deadline_soon", ago(48 * time.Hour), ago(2 * time.Hour)}, Current{State: store.StateRetrying}, p,
			&Event{Kind: Failing}, Record{"failing", t0, ago(2 * time.Hour)}},
		{"recovered after needs consent", Record{"needs_consent:revoked", ago(time.Hour), ago(2 * time.Hour)}, Current{State: store.StateOK}, p,
			&Event{Kind: Recovered}, Record{"recovered", t0, time.Time{}}},
		{"recovered after failing", Record{"failing", ago(time.Hour), ago(2 * time.Hour)}, Current{State: store.StateOK}, p,
			&Event{Kind: Recovered}, Record{"recovered", t0, time.Time{}}},
		{"no recovered without a reported failure", Record{FailingSince: ago(10 * time.Minute)}, Current{State: store.StateOK}, p,
			nil, Record{}},
		{"recovered is sent once", Record{"recovered", ago(time.Minute), time.Time{}}, Current{State: store.StateOK}, p,
			nil, Record{"recovered", ago(time.Minute), time.Time{}}},
		{"deadline two weeks away", Record{}, Current{State: store.StateOK, RefreshDeadline: t0.Add(13 * 24 * time.Hour)}, p,
			&Event{Kind: DeadlineSoon}, Record{"deadline_soon", t0, time.Time{}}},
		{"deadline warning after recovered", Record{"recovered", ago(time.Hour), time.Time{}}, Current{State: store.StateOK, RefreshDeadline: t0.Add(24 * time.Hour)}, p,
			&Event{Kind: DeadlineSoon}, Record{"deadline_soon", t0, time.Time{}}},
		{"deadline warning sent once", Record{"deadline_soon", ago(time.Hour), time.Time{}}, Current{State: store.StateOK, RefreshDeadline: t0.Add(24 * time.Hour)}, p,
			nil, Record{"deadline_soon", ago(time.Hour), time.Time{}}},
		{"deadline far away", Record{}, Current{State: store.StateOK, RefreshDeadline: t0.Add(15 * 24 * time.Hour)}, p,
			nil, Record{}},
		{"a new consent moves the deadline: the warning is re-armed", Record{"deadline_soon", ago(time.Hour), time.Time{}}, Current{State: store.StateOK, RefreshDeadline: t0.Add(300 * 24 * time.Hour)}, p,
			nil, Record{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(tt.prev, tt.cur, t0, tt.p)
			switch {
			case (d.Send == nil) != (tt.want == nil):
				t.Errorf("got send %v; want %v", d.Send, tt.want)
			case d.Send != nil && *d.Send != *tt.want:
				t.Errorf("got send %+v; want %+v", *d.Send, *tt.want)
			}
			if d.Next != tt.wantNext {
				t.Errorf("got next %+v; want %+v", d.Next, tt.wantNext)
			}
		})
	}
}

// TestDecideTwentyPasses: a connection that keeps failing gets one notification per
// transition, however many passes see it.
func TestDecideTwentyPasses(t *testing.T) {
	p := Policy{After: time.Hour, Reminder: 0}
	var rec Record
	var sent []Kind
	now := t0
	for i := range 40 {
		cur := Current{State: store.StateRetrying, LastFailure: now}
		if i >= 20 {
			cur = Current{State: store.StateNeedsConsent, Reason: Revoked, LastFailure: now}
		}
		if i >= 30 {
			cur = Current{State: store.StateOK}
		}
		d := Decide(rec, cur, now, p)
		if d.Send != nil {
			sent = append(sent, d.Send.Kind)
		}
		rec = d.Next
		now = now.Add(10 * time.Minute)
	}
	want := []Kind{Failing, NeedsConsent, Recovered}
	if len(sent) != len(want) || sent[0] != want[0] || sent[1] != want[1] || sent[2] != want[2] {
		t.Errorf("got events %v; want %v", sent, want)
	}
}

func TestReasonOf(t *testing.T) {
	nc := store.StateNeedsConsent
	tests := []struct {
		name string
		st   store.Status
		want Reason
	}{
		{"ok has no reason", store.Status{State: store.StateOK, LastFailureClass: "revoked"}, ""},
		{"revoked", store.Status{State: nc, LastFailureClass: "revoked"}, Revoked},
		{"ambiguous is lost in flight", store.Status{State: nc, LastFailureClass: "ambiguous"}, LostInFlight},
		{"gone class", store.Status{State: nc, LastFailureClass: "gone"}, Gone},
		// The refresh pass records a shut-down API as its own class; the message is never read.
		{"shut-down text under another class", store.Status{State: nc, LastFailureClass: "revoked", LastFailureMessage: "refresh: revoked: the Fitbit Web API is shut down: consent again"}, Revoked},
		{"deadline passed", store.Status{State: nc, LastFailureClass: "revoked", RefreshDeadline: t0.Add(-time.Hour)}, DeadlinePassed},
		{"deadline ahead", store.Status{State: nc, LastFailureClass: "revoked", RefreshDeadline: t0.Add(time.Hour)}, Revoked},
	}
	for _, tt := range tests {
		if got := ReasonOf(tt.st, t0); got != tt.want {
			t.Errorf("%s: got %q; want %q", tt.name, got, tt.want)
		}
	}
}

func TestCarry(t *testing.T) {
	prev := store.Status{State: store.StateNeedsConsent, NotifiedEvent: "needs_consent:revoked", NotifiedAt: t0, NotifyClaim: "x", NotifyClaimUntil: t0}
	got := Carry(prev, store.Status{State: store.StateOK, Provider: "strava"})
	want := store.Status{State: store.StateOK, Provider: "strava", NotifiedEvent: "needs_consent:revoked", NotifiedAt: t0, NotifyClaim: "x", NotifyClaimUntil: t0}
	if got != want {
		t.Errorf("got %+v; want %+v", got, want)
	}
}
