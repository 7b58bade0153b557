package store

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestFilterValues(t *testing.T) {
	at := time.Date(2026, 12, 1, 22, 30, 0, 123456789, time.FixedZone("X", 3600))
	got, err := filterValues("RowKey eq {a} and ExpiresAt le {t}", map[string]any{"a": "it's", "t": at})
	if err != nil {
		t.Fatal(err)
	}
	want := "RowKey eq 'it''s' and ExpiresAt le datetime'2026-12-01T21:30:00.1234567Z'"
	if got != want {
		t.Errorf("filterValues = %q; want %q", got, want)
	}
	if _, err := filterValues("X eq {n}", map[string]any{"n": 3}); err == nil {
		t.Error("an int value: no error; want one")
	}
}

// TestScan seeds partitions in every state the pass must see and checks which ones Scan selects.
func TestScan(t *testing.T) {
	s, ct := newStore(t)
	ctx := context.Background()
	now := testNow
	ok := Status{State: StateOK}
	save := func(name string, tok Tokens, st Status) {
		t.Helper()
		if err := s.SaveConsent(ctx, name, tok, st); err != nil {
			t.Fatal(err)
		}
	}
	tok := func(expiresIn time.Duration) Tokens {
		x := testTokens("x")
		x.ExpiresAt = now.Add(expiresIn)
		x.RefreshExpiresAt = time.Time{}
		return x
	}
	save("a.idle", tok(5*time.Hour), ok)
	save("a.due", tok(10*time.Minute), ok)
	save("a.expired", tok(-time.Hour), ok)
	noExpiry := tok(0)
	noExpiry.ExpiresAt = time.Time{}
	save("a.noexpiry", noExpiry, ok)
	empty := tok(5 * time.Hour)
	empty.AccessToken = ""
	save("a.empty", empty, ok)
	save("a.consent", tok(5*time.Hour), Status{State: StateNeedsConsent})
	save("a.retrying", tok(5*time.Hour), Status{State: StateRetrying, NextAttempt: now.Add(time.Hour)})
	save("a.leased", tok(5*time.Hour), Status{State: StateOK, LeaseOwner: "x#1", LeaseUntil: now.Add(time.Minute)})
	save("a.inflight", tok(5*time.Hour), Status{State: StateOK, InFlight: "abc"})
	deadline := tok(5 * time.Hour)
	deadline.RefreshExpiresAt = now.Add(24 * time.Hour)
	save("a.deadline", deadline, ok)
	far := tok(5 * time.Hour)
	far.RefreshExpiresAt = now.Add(300 * 24 * time.Hour)
	save("a.fardeadline", far, ok)
	if err := s.PutAuthState(ctx, "a.pending", "ab12", AuthState{ExpiresAt: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}

	ct.n.Store(0)
	got, err := s.Scan(ctx, ScanOptions{ExpiresBefore: now.Add(30 * time.Minute), DeadlineBefore: now.Add(14 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if n := ct.n.Load(); n != 3 {
		t.Errorf("Scan sent %d requests; want 3", n)
	}
	var names []string
	for name := range got {
		names = append(names, name)
	}
	slices.Sort(names)
	want := []string{"a.consent", "a.deadline", "a.due", "a.empty", "a.expired", "a.inflight", "a.leased", "a.retrying"}
	if !slices.Equal(names, want) {
		t.Errorf("Scan selected %q; want %q", names, want)
	}
	if c := got["a.due"]; !c.Access || c.Attention || c.Empty || !c.Expiry.Equal(storedTime(now.Add(10*time.Minute))) || !c.Stored.Equal(storedTime(now)) {
		t.Errorf("a.due = %+v; want Access, the expiry and when it was stored, no Attention", c)
	}
	if c := got["a.empty"]; !c.Access || !c.Empty {
		t.Errorf("a.empty = %+v; want Access and Empty", c)
	}
	if c := got["a.consent"]; c.Access || !c.Attention {
		t.Errorf("a.consent = %+v; want Attention only", c)
	}

	all, err := s.Scan(ctx, ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a.idle", "a.noexpiry", "a.fardeadline"} {
		if !all[name].Access {
			t.Errorf("Scan without a bound: %s not selected; want every AccessToken row", name)
		}
	}
	if _, ok := all["a.pending"]; ok {
		t.Error("Scan selected a partition of AuthState rows only")
	}
}

func TestScanPages(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds 2,100 partitions")
	}
	s, ct := newStore(t)
	ctx := context.Background()
	const n = 2100
	sem := make(chan struct{}, 32)
	errs := make(chan error, n)
	for i := range n {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			x := testTokens("p")
			x.ExpiresAt = testNow.Add(time.Duration(i) * time.Second)
			errs <- s.SaveConsent(ctx, fmt.Sprintf("b.p%04d", i), x, Status{State: StateOK})
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	ct.n.Store(0)
	got, err := s.Scan(ctx, ScanOptions{ExpiresBefore: testNow.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Errorf("Scan found %d partitions; want %d", len(got), n)
	}
	// Every partition is due and read whole: 6,300 rows in seven pages; then one empty page
	// each of empty access tokens and of status rows.
	if r := ct.n.Load(); r != 9 {
		t.Errorf("Scan over %d due partitions sent %d requests; want 9", n, r)
	}
	for name, c := range got {
		if c.Record == nil || c.Record.Tokens.RefreshToken == "" || c.Record.ETags.Status == "" {
			t.Fatalf("%s: Scan did not read the due partition whole: %+v", name, c)
		}
	}
	// Without a bound, the AccessToken rows' keys and times only: three pages.
	ct.n.Store(0)
	if got, err = s.Scan(ctx, ScanOptions{}); err != nil {
		t.Fatal(err)
	}
	if r := ct.n.Load(); len(got) != n || r != 5 {
		t.Errorf("Scan without a bound found %d partitions in %d requests; want %d in 5", len(got), r, n)
	}
}

// TestScanWholeNeedsTheCopies: Scan reads a due partition whole only when its RefreshToken and
// Status rows carry its access token's expiry: rows written without it (by an earlier version,
// or by another program) or out of step with it are read again by the pass.
func TestScanWholeNeedsTheCopies(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	soon := testNow.Add(10 * time.Minute)
	for _, name := range []string{"d.plain", "d.old", "d.stale"} {
		x := testTokens(name)
		x.ExpiresAt = soon
		if err := s.SaveConsent(ctx, name, x, Status{State: StateOK}); err != nil {
			t.Fatal(err)
		}
	}
	// d.old: the Status row as an earlier version wrote it, without the copy.
	rec, err := s.Get(ctx, "d.old")
	if err != nil {
		t.Fatal(err)
	}
	props := statusProps(rec.Status, time.Time{})
	body, err := encodeEntity("d.old", RowStatus, props)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.UpsertEntity(ctx, body, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace}); err != nil {
		t.Fatal(err)
	}
	// d.stale: a RefreshToken row whose copy names another expiry.
	rec, err = s.Get(ctx, "d.stale")
	if err != nil {
		t.Fatal(err)
	}
	other := rec.Tokens
	other.ExpiresAt = testNow.Add(5 * time.Minute)
	body, err = encodeEntity("d.stale", RowRefreshToken, refreshProps(other, testNow))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.UpsertEntity(ctx, body, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace}); err != nil {
		t.Fatal(err)
	}

	got, err := s.Scan(ctx, ScanOptions{ExpiresBefore: testNow.Add(30 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if c := got["d.plain"]; c.Record == nil {
		t.Errorf("d.plain, written by SaveConsent: no Record")
	}
	for _, name := range []string{"d.old", "d.stale"} {
		if c, ok := got[name]; !ok || !c.Access || c.Record != nil {
			t.Errorf("%s = %+v (selected %v); want selected by its expiry, without a Record", name, c, ok)
		}
	}
}

func TestGetMany(t *testing.T) {
	s, ct := newStore(t)
	ctx := context.Background()
	var names []string
	for i := range 30 {
		name := fmt.Sprintf("c.p%02d", i)
		names = append(names, name)
		if i%3 == 0 {
			continue // not stored
		}
		if err := s.SaveConsent(ctx, name, testTokens(name), Status{State: StateOK, AccountID: name}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutAuthState(ctx, "c.p01", "cd34", AuthState{ExpiresAt: testNow}); err != nil {
		t.Fatal(err)
	}
	ct.n.Store(0)
	got, err := s.GetMany(ctx, names)
	if err != nil {
		t.Fatal(err)
	}
	if r, want := ct.n.Load(), int64((len(names)+GetManyBatch-1)/GetManyBatch); r != want {
		t.Errorf("GetMany of %d sent %d requests; want %d", len(names), r, want)
	}
	if len(got) != 20 {
		t.Errorf("GetMany found %d partitions; want 20", len(got))
	}
	for name, c := range got {
		if c.Status.AccountID != name || !c.HasAccess || !c.HasRefresh || !c.HasStatus || c.ETags.Status == "" {
			t.Errorf("%s = %+v; want all three rows with ETags", name, c.Status)
		}
		one, err := s.Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if one.ETags != c.ETags || one.Tokens != c.Tokens {
			t.Errorf("%s: GetMany and Get differ", name)
		}
		var i int
		fmt.Sscanf(strings.TrimPrefix(name, "c.p"), "%d", &i)
		if i%3 == 0 {
			t.Errorf("GetMany returned %s, which is not stored", name)
		}
	}
}

// TestConditionalWritesMergeOrReplace: a conditional write that drops no property of the row
// merges, keeping a property another program added; one that drops a property (a lease's
// LeaseUntil, cleared by the commit) replaces, and the property is gone.
func TestConditionalWritesMergeOrReplace(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	if err := s.SaveConsent(ctx, "m.a", testTokens("m"), Status{State: StateOK}); err != nil {
		t.Fatal(err)
	}
	// Another program adds a property to the Status row.
	add, err := json.Marshal(map[string]any{"PartitionKey": "m.a", "RowKey": RowStatus, "Note": "mine"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.UpdateEntity(ctx, add, &aztables.UpdateEntityOptions{UpdateMode: aztables.UpdateModeMerge}); err != nil {
		t.Fatal(err)
	}
	note := func() string {
		t.Helper()
		resp, err := s.client.GetEntity(ctx, "m.a", RowStatus, nil)
		if err != nil {
			t.Fatal(err)
		}
		var e map[string]any
		if err := json.Unmarshal(resp.Value, &e); err != nil {
			t.Fatal(err)
		}
		n, _ := e["Note"].(string)
		return n
	}
	rec, err := s.Get(ctx, "m.a")
	if err != nil {
		t.Fatal(err)
	}
	lease := rec.Status
	lease.LeaseOwner, lease.LeaseUntil = "pass", testNow.Add(3*time.Minute)
	if err := s.Lease(ctx, rec, lease); err != nil {
		t.Fatal(err)
	}
	if got := note(); got != "mine" {
		t.Errorf("after the lease (which drops nothing) Note = %q; want it kept", got)
	}
	st := rec.Status
	st.LeaseOwner, st.LeaseUntil = "", time.Time{}
	if err := s.Commit(ctx, rec, testTokens("n"), st); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "m.a")
	if err != nil {
		t.Fatal(err)
	}
	if !got.Status.LeaseUntil.IsZero() || got.Status.LeaseOwner != "" {
		t.Errorf("after the commit the lease remains: %+v", got.Status)
	}
	if n := note(); n != "" {
		t.Errorf("after the commit (which drops LeaseUntil, so replaces) Note = %q; want it gone", n)
	}
	if got.Tokens.RefreshToken != testTokens("n").RefreshToken {
		t.Errorf("the commit did not store the new pair")
	}
}
