package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/store"
)

// Scanner is the paged reading a refresh pass uses on a large table.
type Scanner interface {
	Scan(ctx context.Context, o store.ScanOptions) (map[string]store.Candidate, error)
	GetMany(ctx context.Context, names []string) (map[string]*store.Record, error)
}

// testScan: Scan selects the due AccessToken rows and the Status rows needing attention, and
// GetMany reads what Get reads.
func testScan(t *testing.T, s Store) {
	sc, ok := s.(Scanner)
	if !ok {
		t.Skip("the store does not scan")
	}
	ctx := context.Background()
	tok := func(in time.Duration) store.Tokens {
		x := fullTokens("s")
		x.ExpiresAt, x.RefreshExpiresAt = base.Add(in), time.Time{}
		return x
	}
	ok1 := store.Status{State: store.StateOK}
	save := func(name string, x store.Tokens, st store.Status) {
		t.Helper()
		must(t, "SaveConsent "+name, s.SaveConsent(ctx, name, x, st))
	}
	save("s.idle", tok(5*time.Hour), ok1)
	save("s.due", tok(10*time.Minute), ok1)
	save("s.edge", tok(30*time.Minute), ok1)
	never := tok(0)
	never.ExpiresAt = time.Time{}
	save("s.never", never, ok1)
	empty := tok(5 * time.Hour)
	empty.AccessToken = ""
	save("s.empty", empty, ok1)
	save("s.consent", tok(5*time.Hour), store.Status{State: store.StateNeedsConsent})
	save("s.leased", tok(5*time.Hour), store.Status{State: store.StateOK, LeaseOwner: "x"})
	save("s.inflight", tok(5*time.Hour), store.Status{State: store.StateOK, InFlight: "f"})
	dl := tok(5 * time.Hour)
	dl.RefreshExpiresAt = base.Add(24 * time.Hour)
	save("s.deadline", dl, ok1)
	must(t, "PutAuthState", s.PutAuthState(ctx, "s.auth", "abcd", store.AuthState{ExpiresAt: base}))

	got, err := sc.Scan(ctx, store.ScanOptions{ExpiresBefore: base.Add(30 * time.Minute), DeadlineBefore: base.Add(48 * time.Hour)})
	must(t, "Scan", err)
	var names []string
	for n := range got {
		names = append(names, n)
	}
	slices.Sort(names)
	want := []string{"s.consent", "s.deadline", "s.due", "s.edge", "s.empty", "s.inflight", "s.leased"}
	if !slices.Equal(names, want) {
		t.Errorf("Scan selected %q; want %q", names, want)
	}
	if c := got["s.due"]; !c.Access || c.Attention || !c.Expiry.Equal(storedTime(base.Add(10*time.Minute))) {
		t.Errorf("s.due = %+v; want Access with its expiry", c)
	}
	if c := got["s.consent"]; c.Access || !c.Attention {
		t.Errorf("s.consent = %+v; want Attention only", c)
	}
	all, err := sc.Scan(ctx, store.ScanOptions{})
	must(t, "Scan", err)
	if len(all) != 9 {
		t.Errorf("Scan without bounds selected %d; want every partition with an AccessToken row (9)", len(all))
	}

	var ask []string
	for i := range 15 {
		ask = append(ask, fmt.Sprintf("s.x%02d", i))
	}
	ask = append(ask, "s.due", "s.consent")
	recs, err := sc.GetMany(ctx, ask)
	must(t, "GetMany", err)
	if len(recs) != 2 {
		t.Errorf("GetMany returned %d; want the 2 stored", len(recs))
	}
	for _, n := range []string{"s.due", "s.consent"} {
		sameRecord(t, "GetMany "+n, recs[n], mustGet(t, s, n))
	}
}

// testScanReadsDueWhole: with ExpiresBefore, Scan reads a due partition whole, as Get would,
// ETags included, after a consent, a lease and a commit alike; a partition it does not find due
// has no Record.
func testScanReadsDueWhole(t *testing.T, s Store) {
	sc, ok := s.(Scanner)
	if !ok {
		t.Skip("the store does not scan")
	}
	ctx := context.Background()
	tok := func(tag string, in time.Duration) store.Tokens {
		x := fullTokens(tag)
		x.ExpiresAt = base.Add(in).In(east)
		return x
	}
	must(t, "SaveConsent w.due", s.SaveConsent(ctx, "w.due", tok("a", 10*time.Minute), fullStatus(1)))
	must(t, "SaveConsent w.idle", s.SaveConsent(ctx, "w.idle", tok("b", 5*time.Hour), fullStatus(1)))
	empty := tok("c", 5*time.Hour)
	empty.AccessToken = ""
	must(t, "SaveConsent w.empty", s.SaveConsent(ctx, "w.empty", empty, store.Status{State: store.StateOK}))
	o := store.ScanOptions{ExpiresBefore: base.Add(30 * time.Minute)}
	scan := func(what string) map[string]store.Candidate {
		t.Helper()
		got, err := sc.Scan(ctx, o)
		must(t, "Scan "+what, err)
		return got
	}

	got := scan("after the consent")
	sameRecord(t, "Scan's record after the consent", got["w.due"].Record, mustGet(t, s, "w.due"))
	if got["w.due"].Record == nil {
		t.FailNow()
	}
	if c := got["w.idle"]; c.Access || c.Record != nil {
		t.Errorf("Scan selected w.idle by its expiry, which is after ExpiresBefore: %+v", c)
	}
	if c := got["w.empty"]; !c.Empty || c.Record != nil {
		t.Errorf("w.empty = %+v; want selected as empty, without a Record (its expiry is after ExpiresBefore)", c)
	}
	all, err := sc.Scan(ctx, store.ScanOptions{})
	must(t, "Scan without bounds", err)
	for n, c := range all {
		if c.Record != nil {
			t.Errorf("Scan without ExpiresBefore read %s whole", n)
		}
	}

	// A write from the scanned record: its ETags are the rows' own.
	rec := got["w.due"].Record
	lease := rec.Status
	lease.LeaseOwner, lease.LeaseUntil = "pass-1", base.Add(3*time.Minute)
	must(t, "Lease from the scanned record", s.Lease(ctx, rec, lease))
	got = scan("after the lease")
	sameRecord(t, "Scan's record after the lease", got["w.due"].Record, mustGet(t, s, "w.due"))

	rec = got["w.due"].Record
	st := rec.Status
	st.LeaseOwner, st.LeaseUntil = "", time.Time{}
	must(t, "Commit from the scanned record", s.Commit(ctx, rec, tok("d", 20*time.Minute), st))
	got = scan("after the commit")
	sameRecord(t, "Scan's record after the commit", got["w.due"].Record, mustGet(t, s, "w.due"))
	if got["w.due"].Record.Tokens.RefreshToken != "rt-d-secret" {
		t.Errorf("Scan's record after the commit holds the old pair")
	}

	rec = got["w.due"].Record
	must(t, "Commit a pair expiring later", s.Commit(ctx, rec, tok("e", 5*time.Hour), st))
	if c := scan("after the later pair")["w.due"]; c.Access || c.Record != nil {
		t.Errorf("Scan selected w.due by its expiry after it stored a pair expiring after ExpiresBefore: %+v", c)
	}
}
