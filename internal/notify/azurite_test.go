package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/azuritetest"
	"github.com/freshtoken/freshtoken/internal/store"
	"github.com/rs/zerolog"
)

// countingSender counts deliveries per title; every Send takes a while, so that concurrent
// dispatchers overlap.
type countingSender struct {
	mu     sync.Mutex
	titles map[string]int
}

func (s *countingSender) Send(ctx context.Context, m Message) error {
	time.Sleep(20 * time.Millisecond)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.titles[m.Title]++
	return nil
}

// TestOnceAgainstAzurite: two processes (two stores on one table) each running ten passes
// at once send one needs-consent notification, then one recovered.
func TestOnceAgainstAzurite(t *testing.T) {
	srv := azuritetest.Start(t)
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	table := "n" + hex.EncodeToString(b[:])
	open := func() *store.Store {
		s, err := store.Open(context.Background(), store.Options{ConnectionString: srv.ConnectionString(), Table: table})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	}
	s1, s2 := open(), open()
	ctx := context.Background()
	tok := store.Tokens{AccessToken: "at", RefreshToken: "rt", ExpiresAt: time.Now().Add(time.Hour)}
	if err := s1.SaveConsent(ctx, "strava", tok, revokedStatus()); err != nil {
		t.Fatal(err)
	}
	snd := &countingSender{titles: map[string]int{}}
	var logs bytes.Buffer
	var logMu sync.Mutex
	log := zerolog.New(zerolog.SyncWriter(&lockedWriter{&logMu, &logs}))
	procs := []*Dispatcher{
		{Store: s1, Sender: snd, Policy: Policy{After: time.Hour, Reminder: 24 * time.Hour}, Log: log},
		{Store: s2, Sender: snd, Policy: Policy{After: time.Hour, Reminder: 24 * time.Hour}, Log: log},
	}
	run := func() {
		var wg sync.WaitGroup
		for _, d := range procs {
			for range 10 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					d.Pass(ctx, []Target{strava})
				}()
			}
		}
		wg.Wait()
	}
	run()
	run()
	if got := snd.titles["freshtoken: strava needs consent"]; got != 1 || len(snd.titles) != 1 {
		t.Errorf("got %v; want one needs consent", snd.titles)
	}

	// A new consent (which carries the notification fields) then passes: one recovered.
	rec, err := s1.Get(ctx, "strava")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status.NotifiedEvent != "needs_consent:revoked" || rec.Status.NotifyClaim != "" {
		t.Errorf("got row notified %q claim %q; want needs_consent:revoked and no claim", rec.Status.NotifiedEvent, rec.Status.NotifyClaim)
	}
	if err := s2.SaveConsent(ctx, "strava", tok, Carry(rec.Status, store.Status{State: store.StateOK, LastSuccess: time.Now()})); err != nil {
		t.Fatal(err)
	}
	run()
	run()
	if got := snd.titles["freshtoken: strava recovered"]; got != 1 || len(snd.titles) != 2 {
		t.Errorf("got %v; want one needs consent and one recovered", snd.titles)
	}
	if strings.Contains(logs.String(), "error") {
		t.Errorf("passes logged errors:\n%s", logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
