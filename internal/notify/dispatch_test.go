package notify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/freshtoken/freshtoken/internal/store"
)

// memStore is one Status row with ETags, as the table keeps it.
type memStore struct {
	mu      sync.Mutex
	st      store.Status
	version int
	// beforeWrite, when set, runs before each conditional write is checked (another writer).
	beforeWrite func(m *memStore)
	failWrites  error
}

func (m *memStore) etag() azcore.ETag { return azcore.ETag(fmt.Sprintf("v%d", m.version)) }

func (m *memStore) Get(ctx context.Context, name string) (*store.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return &store.Record{Name: name, HasStatus: true, Status: m.st, ETags: store.ETags{Status: m.etag()}}, nil
}

func (m *memStore) SetStatus(ctx context.Context, c *store.Record, st store.Status) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if f := m.beforeWrite; f != nil {
		m.beforeWrite = nil
		f(m)
	}
	if m.failWrites != nil {
		return m.failWrites
	}
	if c.ETags.Status != m.etag() {
		return store.ErrConflict
	}
	m.st = st
	m.version++
	c.Status, c.ETags.Status = st, m.etag()
	return nil
}

// otherWrite is a write by another process (a refresh recording a failure).
func (m *memStore) otherWrite(f func(st *store.Status)) {
	f(&m.st)
	m.version++
}

type memSender struct {
	mu   sync.Mutex
	sent []Message
	err  error
	// during runs inside Send (a second process acting meanwhile).
	during func()
}

func (s *memSender) Send(ctx context.Context, m Message) error {
	if s.during != nil {
		f := s.during
		s.during = nil
		f()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.sent = append(s.sent, m)
	return nil
}

func (s *memSender) titles() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ts []string
	for _, m := range s.sent {
		ts = append(ts, m.Title)
	}
	return ts
}

var strava = Target{Name: "strava", AuthorizeURL: "https://ft.example.com/api/authorize/strava"}

func revokedStatus() store.Status {
	return store.Status{State: store.StateNeedsConsent, LastFailureClass: "revoked", LastFailure: t0.Add(-time.Minute),
		LastFailureMessage: "invalid_grant: refresh token abcdefghijklmnopqrstuvwxyz0123456789 rejected", ConsecutiveFailures: 1, Generation: 7}
}

func TestDispatcherOnceAcrossProcesses(t *testing.T) {
	st := &memStore{st: revokedStatus()}
	snd := &memSender{}
	now := t0
	clock := func() time.Time { return now }
	a := &Dispatcher{Store: st, Sender: snd, Policy: Policy{After: time.Hour, Reminder: 24 * time.Hour}, Now: clock}
	b := &Dispatcher{Store: st, Sender: snd, Policy: a.Policy, Now: clock}

	// B runs while A is sending: it sees A's claim and sends nothing.
	var bOut Outcome
	snd.during = func() {
		var err error
		if bOut, err = b.Connection(context.Background(), strava, nil); err != nil {
			t.Errorf("B: %v", err)
		}
	}
	out, err := a.Connection(context.Background(), strava, nil)
	if err != nil || out.Sent == nil || out.Sent.Kind != NeedsConsent {
		t.Fatalf("A: got %+v, %v; want needs consent sent", out, err)
	}
	if bOut.Sent != nil || !strings.Contains(bOut.Skip, "another process is sending") {
		t.Errorf("B during A's send: got %+v; want skipped for the claim", bOut)
	}
	// Twenty more passes of both processes.
	for i := range 20 {
		now = now.Add(10 * time.Minute)
		d := a
		if i%2 == 1 {
			d = b
		}
		if _, err := d.Connection(context.Background(), strava, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := snd.titles(); len(got) != 1 || got[0] != "freshtoken: strava needs consent" {
		t.Errorf("got notifications %q; want one needs consent", got)
	}
	for _, m := range snd.sent {
		if strings.Contains(m.Body, "abcdefghijklmnop") || !strings.Contains(m.Body, strava.AuthorizeURL) {
			t.Errorf("body %q: want the Authorize URL and nothing of the failure message", m.Body)
		}
	}
	got := st.st
	if got.NotifiedEvent != "needs_consent:revoked" || !got.NotifiedAt.Equal(t0) || got.NotifyClaim != "" {
		t.Errorf("got row notified %q at %v claim %q; want needs_consent:revoked at %v, no claim", got.NotifiedEvent, got.NotifiedAt, got.NotifyClaim, t0)
	}
	// Nothing else of the row changed.
	want := revokedStatus()
	got.NotifiedEvent, got.NotifiedAt, got.FailingSince = "", time.Time{}, time.Time{}
	if got != want {
		t.Errorf("the notifier changed the connection's status: got %+v; want %+v", got, want)
	}

	// Reconnected: one recovered, from whichever process comes first.
	st.otherWrite(func(s *store.Status) { *s = Carry(*s, store.Status{State: store.StateOK, LastSuccess: now}) })
	for _, d := range []*Dispatcher{a, b, a} {
		if _, err := d.Connection(context.Background(), strava, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := snd.titles(); len(got) != 2 || got[1] != "freshtoken: strava recovered" {
		t.Errorf("got notifications %q; want needs consent then recovered", got)
	}
}

func TestDispatcherFailedDeliveryIsRetried(t *testing.T) {
	st := &memStore{st: revokedStatus()}
	snd := &memSender{err: errors.New("URL 1 (generic): unexpected status 500")}
	d := &Dispatcher{Store: st, Sender: snd, Policy: Policy{Reminder: 24 * time.Hour}, Now: func() time.Time { return t0 }}
	out, err := d.Connection(context.Background(), strava, nil)
	if err == nil || out.Event == nil || out.Sent != nil {
		t.Fatalf("got %+v, %v; want an error and nothing sent", out, err)
	}
	if st.st.NotifyClaim != "" || st.st.NotifiedEvent != "" {
		t.Errorf("after a failed delivery: got claim %q notified %q; want both empty so the next pass retries", st.st.NotifyClaim, st.st.NotifiedEvent)
	}
	snd.err = nil
	if out, err := d.Connection(context.Background(), strava, nil); err != nil || out.Sent == nil {
		t.Errorf("next pass: got %+v, %v; want the notification sent", out, err)
	}
}

func TestDispatcherCrashAfterClaim(t *testing.T) {
	// A process claimed, maybe sent, and died: its claim expires and the event goes out again.
	s := revokedStatus()
	s.NotifyClaim, s.NotifyClaimUntil = "needs_consent:revoked", t0.Add(time.Minute)
	st := &memStore{st: s}
	snd := &memSender{}
	now := t0
	d := &Dispatcher{Store: st, Sender: snd, Now: func() time.Time { return now }}
	if out, _ := d.Connection(context.Background(), strava, nil); out.Sent != nil {
		t.Fatalf("under a live claim: got %+v; want nothing sent", out)
	}
	now = t0.Add(2 * time.Minute)
	if out, err := d.Connection(context.Background(), strava, nil); err != nil || out.Sent == nil {
		t.Fatalf("after the claim expired: got %+v, %v; want the notification sent", out, err)
	}
	if st.st.NotifyClaim != "" || st.st.NotifiedEvent != "needs_consent:revoked" {
		t.Errorf("got claim %q notified %q; want no claim, needs_consent:revoked", st.st.NotifyClaim, st.st.NotifiedEvent)
	}
}

func TestDispatcherConflicts(t *testing.T) {
	t.Run("a write before the claim: re-read and decide again", func(t *testing.T) {
		st := &memStore{st: revokedStatus()}
		st.beforeWrite = func(m *memStore) { m.otherWrite(func(s *store.Status) { s.ConsecutiveFailures = 2 }) }
		snd := &memSender{}
		d := &Dispatcher{Store: st, Sender: snd, Now: func() time.Time { return t0 }}
		if out, err := d.Connection(context.Background(), strava, nil); err != nil || out.Sent == nil {
			t.Fatalf("got %+v, %v; want sent after a re-read", out, err)
		}
		if st.st.ConsecutiveFailures != 2 || st.st.NotifiedEvent == "" {
			t.Errorf("got failures %d notified %q; want the other write kept and the event recorded", st.st.ConsecutiveFailures, st.st.NotifiedEvent)
		}
	})
	t.Run("a write during the send: recorded on the fresh row", func(t *testing.T) {
		st := &memStore{st: revokedStatus()}
		snd := &memSender{}
		snd.during = func() {
			st.mu.Lock()
			st.otherWrite(func(s *store.Status) { s.Generation = 99 })
			st.mu.Unlock()
		}
		d := &Dispatcher{Store: st, Sender: snd, Now: func() time.Time { return t0 }}
		if out, err := d.Connection(context.Background(), strava, nil); err != nil || out.Sent == nil {
			t.Fatalf("got %+v, %v; want sent", out, err)
		}
		if st.st.Generation != 99 || st.st.NotifiedEvent != "needs_consent:revoked" || st.st.NotifyClaim != "" {
			t.Errorf("got generation %d notified %q claim %q; want 99, needs_consent:revoked, none", st.st.Generation, st.st.NotifiedEvent, st.st.NotifyClaim)
		}
	})
	t.Run("a lease is held: wait for its pass", func(t *testing.T) {
		s := revokedStatus()
		s.LeaseOwner, s.LeaseUntil = "other#1", t0.Add(time.Minute)
		st := &memStore{st: s}
		snd := &memSender{}
		d := &Dispatcher{Store: st, Sender: snd, Now: func() time.Time { return t0 }}
		if out, _ := d.Connection(context.Background(), strava, nil); out.Sent != nil || out.Skip == "" {
			t.Errorf("got %+v; want skipped", out)
		}
	})
	t.Run("storage errors are redacted", func(t *testing.T) {
		st := &memStore{st: revokedStatus(), failWrites: errors.New("HTTP 500 sig=abcdefghijklmnopqrstuvwxyz0123456789ABCD")}
		d := &Dispatcher{Store: st, Sender: &memSender{}, Now: func() time.Time { return t0 }}
		_, err := d.Connection(context.Background(), strava, nil)
		if err == nil || strings.Contains(err.Error(), "abcdefghijklmnop") {
			t.Errorf("got %v; want an error with the signature redacted", err)
		}
	})
}

func TestDispatcherRecordsFailingSince(t *testing.T) {
	st := &memStore{st: store.Status{State: store.StateRetrying, LastFailure: t0, ConsecutiveFailures: 1}}
	snd := &memSender{}
	now := t0
	d := &Dispatcher{Store: st, Sender: snd, Policy: Policy{After: time.Hour}, Now: func() time.Time { return now }}
	for range 7 {
		st.otherWrite(func(s *store.Status) { s.LastFailure = now; s.ConsecutiveFailures++ })
		if _, err := d.Connection(context.Background(), strava, nil); err != nil {
			t.Fatal(err)
		}
		now = now.Add(10 * time.Minute)
	}
	if !st.st.FailingSince.Equal(t0) {
		t.Errorf("got FailingSince %v; want the streak's first failure %v", st.st.FailingSince, t0)
	}
	if got := snd.titles(); len(got) != 1 || got[0] != "freshtoken: strava is failing" {
		t.Errorf("got %q; want one failing notification after an hour", got)
	}
}
