package storetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/store"
)

// Store is what the contract exercises: the methods of store.Store that refresh and consent use,
// and Put, a raw write standing for another writer (see Memory.Put).
type Store interface {
	List(ctx context.Context) (map[string]*store.Record, error)
	Get(ctx context.Context, name string) (*store.Record, error)
	Lease(ctx context.Context, c *store.Record, st store.Status) error
	SetStatus(ctx context.Context, c *store.Record, st store.Status) error
	Commit(ctx context.Context, c *store.Record, t store.Tokens, st store.Status) error
	SaveConsent(ctx context.Context, name string, t store.Tokens, st store.Status) error
	PutAuthState(ctx context.Context, name, key string, a store.AuthState) error
	TakeAuthState(ctx context.Context, name, key string) (store.AuthState, error)
	SaveInvitedConsent(ctx context.Context, name string, t store.Tokens, st store.Status, inv store.SpentInvite) error
	GetInvite(ctx context.Context, name, id string) (store.SpentInvite, error)
	Remove(ctx context.Context, r *store.Record) (int, error)
	// Put writes the rows r has, unconditionally, leaving the others; it sets r's ETags for them.
	Put(ctx context.Context, r *store.Record) error
}

// RunContract checks that the stores open returns behave as the table store does: ETags and
// conditional writes, inserts against replaces, all-or-nothing transactions, the round trip of
// every field (times in UTC at 100 ns), not-found answers, take-once authorizations and the
// names refused; and, for stores that implement KeyedStore, the sealing of secrets at rest
// (store.Options.Keys). Each subtest calls open once and may run in parallel with the others.
func RunContract(t *testing.T, open func(t *testing.T) Store) {
	for _, tc := range append(append(contractTests, accountContractTests...), pageContractTests...) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, open(t))
		})
	}
	for _, tc := range sealingTests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runSealing(t, open(t), tc.run)
		})
	}
}

var contractTests = []struct {
	name string
	run  func(t *testing.T, s Store)
}{
	{"RoundTrip", testRoundTrip},
	{"TimeTruncation", testTimeTruncation},
	{"ZeroValues", testZeroValues},
	{"WriteEqualsReadBack", testWriteEqualsReadBack},
	{"NewETagPerWrite", testNewETagPerWrite},
	{"StaleETag", testStaleETag},
	{"InsertOfExistingRow", testInsertOfExistingRow},
	{"ReplaceOfMissingRow", testReplaceOfMissingRow},
	{"UnknownETag", testUnknownETag},
	{"CommitAtomic", testCommitAtomic},
	{"ConsentWins", testConsentWins},
	{"ChainedWrites", testChainedWrites},
	{"ConcurrentLeases", testConcurrentLeases},
	{"PutWritesOnlyItsRows", testPutWritesOnlyItsRows},
	{"NotFound", testNotFound},
	{"List", testList},
	{"Int32Failures", testInt32Failures},
	{"CancelledContext", testCancelledContext},
	{"NilRecord", testNilRecord},
	{"AuthState", testAuthState},
	{"AuthStateTakeOnce", testAuthStateTakeOnce},
	{"AuthStateBadKeys", testAuthStateBadKeys},
	{"BadNames", testBadNames},
	{"HostileGet", testHostileGet},
	{"UnusualNames", testUnusualNames},
	{"Scan", testScan},
	{"ScanReadsDueWhole", testScanReadsDueWhole},
}

// base is a time with nanoseconds below the table's 100 ns precision.
var base = time.Date(2025, 3, 4, 5, 6, 7, 891234567, time.UTC)

var east = time.FixedZone("UTC+3", 3*3600)

func fullTokens(tag string) store.Tokens {
	return store.Tokens{
		AccessToken: "at-" + tag + "-secret", TokenType: "Bearer", ExpiresAt: base.Add(time.Hour).In(east),
		Scope: "openid email", RefreshToken: "rt-" + tag + "-secret", RefreshExpiresAt: base.Add(90 * 24 * time.Hour),
	}
}

// fullStatus sets every field, times in another zone and below 100 ns.
func fullStatus(gen int64) store.Status {
	return store.Status{
		State: store.StateRetrying, Provider: "google", AccountID: "user@example.com",
		GrantedScopes: "openid email", MissingScopes: "calendar",
		ConnectedAt: base.Add(-48 * time.Hour), LastSuccess: base.Add(-time.Hour).In(east),
		LastFailure: base.Add(-time.Minute), LastFailureClass: "transient",
		LastFailureMessage: "token endpoint: HTTP 503 \"quoted\" ünïcode\nsecond line", ConsecutiveFailures: 3,
		NextAttempt: base.Add(5 * time.Minute), LeaseOwner: "host-1/1234", LeaseUntil: base.Add(2 * time.Minute),
		InFlight: store.Fingerprint("rt-old"), InFlightSince: base.Add(-time.Second).In(east),
		Generation: gen, RefreshDeadline: base.Add(time.Minute), Warning: "refresh token expires in 3 days",
		FailingSince: base.Add(-2 * time.Hour).In(east), NotifiedEvent: "failing", NotifiedAt: base.Add(-30 * time.Minute),
		NotifyClaim: "needs_consent:revoked", NotifyClaimUntil: base.Add(time.Minute).In(east),
	}
}

// show prints r with token values replaced by their fingerprints.
func show(r *store.Record) string {
	if r == nil {
		return "<nil>"
	}
	c := *r
	c.Tokens.AccessToken = "fp:" + store.Fingerprint(c.Tokens.AccessToken)
	c.Tokens.RefreshToken = "fp:" + store.Fingerprint(c.Tokens.RefreshToken)
	return fmt.Sprintf("%+v", c)
}

func sameRecord(t *testing.T, what string, got, want *store.Record) {
	t.Helper()
	if got == nil || want == nil || *got != *want {
		t.Errorf("%s:\ngot  %s\nwant %s", what, show(got), show(want))
	}
}

func mustGet(t *testing.T, s Store, name string) *store.Record {
	t.Helper()
	r, err := s.Get(context.Background(), name)
	if err != nil {
		t.Fatalf("Get(%q): %v", name, err)
	}
	return r
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func wantConflict(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("%s: got %v; want ErrConflict", what, err)
	}
}

// stored is the Record a successful SaveConsent or Commit of t and st leaves, ETags aside.
func stored(name string, t store.Tokens, st store.Status) store.Record {
	st.RefreshDeadline = t.RefreshExpiresAt
	return store.Record{Name: name, HasAccess: true, HasRefresh: true, HasStatus: true, Tokens: normTokens(t), Status: normStatus(st)}
}

func testRoundTrip(t *testing.T, s Store) {
	ctx := context.Background()
	tk, st := fullTokens("a"), fullStatus(1<<40)
	must(t, "SaveConsent", s.SaveConsent(ctx, "gmail", tk, st))
	got := mustGet(t, s, "gmail")
	if got.ETags.Access == "" || got.ETags.Refresh == "" || got.ETags.Status == "" {
		t.Errorf("ETags %+v; want all three set", got.ETags)
	}
	// RefreshDeadline mirrors the refresh token's deadline, whatever the caller put there.
	want := stored("gmail", tk, st)
	want.ETags = got.ETags
	sameRecord(t, "read back", got, &want)
	m, err := s.List(ctx)
	must(t, "List", err)
	sameRecord(t, "listed", m["gmail"], got)
}

func testTimeTruncation(t *testing.T, s Store) {
	ctx := context.Background()
	in := time.Date(2025, 3, 4, 8, 6, 7, 891234567, east)
	want := time.Date(2025, 3, 4, 5, 6, 7, 891234500, time.UTC)
	tk := store.Tokens{AccessToken: "at", ExpiresAt: in, RefreshToken: "rt", RefreshExpiresAt: in}
	st := store.Status{LeaseUntil: in, InFlightSince: in}
	must(t, "SaveConsent", s.SaveConsent(ctx, "c", tk, st))
	got := mustGet(t, s, "c")
	for what, v := range map[string]time.Time{
		"ExpiresAt": got.Tokens.ExpiresAt, "RefreshExpiresAt": got.Tokens.RefreshExpiresAt,
		"LeaseUntil": got.Status.LeaseUntil, "InFlightSince": got.Status.InFlightSince, "RefreshDeadline": got.Status.RefreshDeadline,
	} {
		if v != want || v.Location() != time.UTC {
			t.Errorf("%s = %v (%v); want %v in UTC", what, v, v.Location(), want)
		}
	}
	must(t, "PutAuthState", s.PutAuthState(ctx, "c", "0a", store.AuthState{ExpiresAt: in}))
	a, err := s.TakeAuthState(ctx, "c", "0a")
	must(t, "TakeAuthState", err)
	if a.ExpiresAt != want {
		t.Errorf("AuthState.ExpiresAt = %v; want %v", a.ExpiresAt, want)
	}
}

func testZeroValues(t *testing.T, s Store) {
	ctx := context.Background()
	must(t, "SaveConsent", s.SaveConsent(ctx, "z", store.Tokens{}, store.Status{}))
	got := mustGet(t, s, "z")
	// The RefreshToken row is written even without a refresh token.
	want := store.Record{Name: "z", HasAccess: true, HasRefresh: true, HasStatus: true, ETags: got.ETags}
	sameRecord(t, "read back", got, &want)
}

func testWriteEqualsReadBack(t *testing.T, s Store) {
	ctx := context.Background()
	c := &store.Record{Name: "c"}
	must(t, "Commit inserting", s.Commit(ctx, c, fullTokens("1"), fullStatus(1)))
	sameRecord(t, "after an inserting Commit", c, mustGet(t, s, "c"))
	must(t, "Commit replacing", s.Commit(ctx, c, fullTokens("2"), fullStatus(2)))
	sameRecord(t, "after a replacing Commit", c, mustGet(t, s, "c"))
	// Commit sets RefreshDeadline from the tokens, as SaveConsent does.
	want := stored("c", fullTokens("2"), fullStatus(2))
	want.ETags = c.ETags
	sameRecord(t, "committed", c, &want)
	must(t, "Lease", s.Lease(ctx, c, fullStatus(3)))
	sameRecord(t, "after Lease", c, mustGet(t, s, "c"))
	must(t, "SetStatus", s.SetStatus(ctx, c, fullStatus(4)))
	sameRecord(t, "after SetStatus", c, mustGet(t, s, "c"))

	lone := &store.Record{Name: "lone"}
	must(t, "inserting Lease", s.Lease(ctx, lone, fullStatus(5)))
	sameRecord(t, "after an inserting Lease", lone, mustGet(t, s, "lone"))
}

func testNewETagPerWrite(t *testing.T, s Store) {
	ctx := context.Background()
	c := &store.Record{Name: "c"}
	st := store.Status{State: store.StateOK}
	must(t, "Lease", s.Lease(ctx, c, st))
	seen := map[string]bool{string(c.ETags.Status): true}
	old := *c
	for i := range 3 {
		// The same content again: the version changes all the same.
		must(t, "SetStatus", s.SetStatus(ctx, c, st))
		if seen[string(c.ETags.Status)] {
			t.Errorf("write %d: ETag %q seen before; want a new one per write", i, c.ETags.Status)
		}
		seen[string(c.ETags.Status)] = true
	}
	wantConflict(t, "SetStatus with the first ETag", s.SetStatus(ctx, &old, st))
}

func testStaleETag(t *testing.T, s Store) {
	ctx := context.Background()
	must(t, "SaveConsent", s.SaveConsent(ctx, "c", fullTokens("old"), fullStatus(1)))
	a, b := mustGet(t, s, "c"), mustGet(t, s, "c")
	st := fullStatus(1)
	st.LeaseOwner = "a"
	must(t, "Lease a", s.Lease(ctx, a, st))
	bWas := *b
	wantConflict(t, "Lease with a stale ETag", s.Lease(ctx, b, fullStatus(9)))
	wantConflict(t, "SetStatus with a stale ETag", s.SetStatus(ctx, b, fullStatus(9)))
	wantConflict(t, "Commit with a stale Status ETag", s.Commit(ctx, b, fullTokens("b"), fullStatus(9)))
	sameRecord(t, "stored after the losing writes", mustGet(t, s, "c"), a)
	sameRecord(t, "the loser's Record", b, &bWas)
}

func testInsertOfExistingRow(t *testing.T, s Store) {
	ctx := context.Background()
	must(t, "SaveConsent", s.SaveConsent(ctx, "c", fullTokens("old"), fullStatus(1)))
	before := mustGet(t, s, "c")
	wantConflict(t, "inserting Lease", s.Lease(ctx, &store.Record{Name: "c"}, fullStatus(2)))
	wantConflict(t, "inserting SetStatus", s.SetStatus(ctx, &store.Record{Name: "c"}, fullStatus(2)))
	wantConflict(t, "inserting Commit", s.Commit(ctx, &store.Record{Name: "c"}, fullTokens("new"), fullStatus(2)))
	sameRecord(t, "stored", mustGet(t, s, "c"), before)

	a, b := &store.Record{Name: "new"}, &store.Record{Name: "new"}
	must(t, "first insert", s.Lease(ctx, a, store.Status{LeaseOwner: "a"}))
	wantConflict(t, "second insert", s.Lease(ctx, b, store.Status{LeaseOwner: "b"}))
	sameRecord(t, "after two inserts", mustGet(t, s, "new"), a)
}

func testReplaceOfMissingRow(t *testing.T, s Store) {
	ctx := context.Background()
	must(t, "SaveConsent", s.SaveConsent(ctx, "here", fullTokens("x"), fullStatus(1)))
	here := mustGet(t, s, "here")
	// A Record claiming rows, with real-looking ETags, of a partition that has none.
	ghost := *here
	ghost.Name = "gone"
	err := s.Lease(ctx, &ghost, fullStatus(2))
	if !errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
		t.Errorf("Lease replacing a missing row: got %v; want ErrNotFound", err)
	}
	err = s.Commit(ctx, &ghost, fullTokens("y"), fullStatus(2))
	if !errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
		t.Errorf("Commit replacing missing rows: got %v; want ErrNotFound", err)
	}
	if r, err := s.Get(ctx, "gone"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(gone) = %s, %v; want ErrNotFound", show(r), err)
	}
}

func testUnknownETag(t *testing.T, s Store) {
	ctx := context.Background()
	must(t, "SaveConsent", s.SaveConsent(ctx, "c", fullTokens("x"), fullStatus(1)))
	before := mustGet(t, s, "c")
	// A Record claiming rows it holds no ETags for was not read from the store.
	c := &store.Record{Name: "c", HasAccess: true, HasRefresh: true, HasStatus: true}
	wantConflict(t, "Commit", s.Commit(ctx, c, fullTokens("y"), store.Status{}))
	wantConflict(t, "Lease", s.Lease(ctx, c, store.Status{}))
	wantConflict(t, "SetStatus", s.SetStatus(ctx, c, store.Status{}))
	sameRecord(t, "stored", mustGet(t, s, "c"), before)
}

func testCommitAtomic(t *testing.T, s Store) {
	ctx := context.Background()
	t.Run("stale access row", func(t *testing.T) {
		must(t, "SaveConsent", s.SaveConsent(ctx, "a", fullTokens("old"), fullStatus(7)))
		c := mustGet(t, s, "a")
		cWas := *c
		other := &store.Record{Name: "a", HasAccess: true, Tokens: store.Tokens{AccessToken: "at-other-secret", TokenType: "mac"}}
		must(t, "Put", s.Put(ctx, other))
		wantConflict(t, "Commit", s.Commit(ctx, c, fullTokens("new"), fullStatus(8)))
		want := cWas
		want.Tokens.AccessToken, want.Tokens.TokenType, want.Tokens.Scope, want.Tokens.ExpiresAt = "at-other-secret", "mac", "", time.Time{}
		want.ETags.Access = other.ETags.Access
		sameRecord(t, "stored", mustGet(t, s, "a"), &want)
		sameRecord(t, "the Record of the failed Commit", c, &cWas)
	})
	t.Run("stale refresh row", func(t *testing.T) {
		must(t, "SaveConsent", s.SaveConsent(ctx, "r", fullTokens("old"), fullStatus(7)))
		c := mustGet(t, s, "r")
		other := &store.Record{Name: "r", HasRefresh: true, Tokens: store.Tokens{RefreshToken: "rt-other-secret"}}
		must(t, "Put", s.Put(ctx, other))
		wantConflict(t, "Commit", s.Commit(ctx, c, fullTokens("new"), fullStatus(8)))
		want := *c
		want.Tokens.RefreshToken, want.Tokens.RefreshExpiresAt = "rt-other-secret", time.Time{}
		want.ETags.Refresh = other.ETags.Refresh
		sameRecord(t, "stored", mustGet(t, s, "r"), &want)
	})
	t.Run("insert of one existing row", func(t *testing.T) {
		lone := &store.Record{Name: "i"}
		must(t, "Lease", s.Lease(ctx, lone, fullStatus(1)))
		c := mustGet(t, s, "i") // holds only the Status row
		other := &store.Record{Name: "i", HasAccess: true, Tokens: store.Tokens{AccessToken: "at-other-secret"}}
		must(t, "Put", s.Put(ctx, other))
		wantConflict(t, "Commit inserting over a row", s.Commit(ctx, c, fullTokens("new"), fullStatus(2)))
		got := mustGet(t, s, "i")
		if got.HasRefresh || got.ETags.Status != c.ETags.Status || got.Tokens.AccessToken != "at-other-secret" {
			t.Errorf("after the failed Commit: got %s; want the Status row unchanged, no RefreshToken row, the other access token", show(got))
		}
	})
}

func testConsentWins(t *testing.T, s Store) {
	ctx := context.Background()
	must(t, "SaveConsent", s.SaveConsent(ctx, "c", fullTokens("old"), fullStatus(1)))
	refresher := mustGet(t, s, "c")
	st := fullStatus(1)
	st.LeaseOwner = "r"
	must(t, "Lease", s.Lease(ctx, refresher, st))
	// A person consents again while the refresh is in flight: no condition, it replaces all.
	consent, cst := fullTokens("consent"), store.Status{State: store.StateOK, Generation: 1}
	must(t, "second SaveConsent", s.SaveConsent(ctx, "c", consent, cst))
	wantConflict(t, "Commit after a consent", s.Commit(ctx, refresher, fullTokens("refreshed"), fullStatus(2)))
	got := mustGet(t, s, "c")
	want := stored("c", consent, cst)
	want.ETags = got.ETags
	sameRecord(t, "stored", got, &want)
}

func testChainedWrites(t *testing.T, s Store) {
	ctx := context.Background()
	c := &store.Record{Name: "c"}
	must(t, "Commit inserting", s.Commit(ctx, c, fullTokens("1"), store.Status{State: store.StateOK, Generation: 1}))
	// c holds the new ETags: its holder goes on writing without a re-read.
	must(t, "Commit after Commit", s.Commit(ctx, c, fullTokens("2"), store.Status{State: store.StateOK, Generation: 2}))
	must(t, "Lease after Commit", s.Lease(ctx, c, store.Status{State: store.StateOK, Generation: 2, LeaseOwner: "me"}))
	must(t, "SetStatus after Lease", s.SetStatus(ctx, c, store.Status{State: store.StateRetrying, Generation: 2}))
	must(t, "Commit after SetStatus", s.Commit(ctx, c, fullTokens("3"), store.Status{State: store.StateOK, Generation: 3}))
	sameRecord(t, "stored", mustGet(t, s, "c"), c)
}

func testConcurrentLeases(t *testing.T, s Store) {
	ctx := context.Background()
	must(t, "SaveConsent", s.SaveConsent(ctx, "c", fullTokens("x"), fullStatus(1)))
	const n = 10
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		won       []int
		conflicts int
		other     []error
	)
	recs := make([]*store.Record, n)
	for i := range recs {
		recs[i] = mustGet(t, s, "c")
	}
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			err := s.Lease(ctx, recs[i], store.Status{LeaseOwner: fmt.Sprint(i)})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won = append(won, i)
			case errors.Is(err, store.ErrConflict):
				conflicts++
			default:
				other = append(other, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if len(won) != 1 || conflicts != n-1 || len(other) != 0 {
		t.Fatalf("got %d winners, %d conflicts, other errors %v; want 1, %d, none", len(won), conflicts, other, n-1)
	}
	if got := mustGet(t, s, "c").Status.LeaseOwner; got != fmt.Sprint(won[0]) {
		t.Errorf("LeaseOwner %q; want the winner's %d", got, won[0])
	}
}

func testPutWritesOnlyItsRows(t *testing.T, s Store) {
	ctx := context.Background()
	r := &store.Record{Name: "p", HasStatus: true, Status: fullStatus(3)}
	must(t, "Put", s.Put(ctx, r))
	got := mustGet(t, s, "p")
	// Put stores the status as given: RefreshDeadline is not derived from tokens.
	want := store.Record{Name: "p", HasStatus: true, Status: normStatus(fullStatus(3)), ETags: store.ETags{Status: r.ETags.Status}}
	sameRecord(t, "after Put of the Status row", got, &want)
	sameRecord(t, "the Record put", r, &want)
	if r.ETags.Status == "" {
		t.Errorf("Put set no ETag")
	}
}

func testNotFound(t *testing.T, s Store) {
	ctx := context.Background()
	// A partition holding only a pending authorization is not a connection.
	must(t, "PutAuthState", s.PutAuthState(ctx, "pending", "00ff", store.AuthState{ExpiresAt: base}))
	for _, name := range []string{"missing", "pending", ""} {
		if r, err := s.Get(ctx, name); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get(%q) = %s, %v; want ErrNotFound", name, show(r), err)
		}
	}
	m, err := s.List(ctx)
	must(t, "List", err)
	if len(m) != 0 {
		t.Errorf("List returned %d connections; want 0", len(m))
	}
}

func testList(t *testing.T, s Store) {
	ctx := context.Background()
	names := []string{"alpha", "beta-2", "gamma"}
	for i, n := range names {
		must(t, "SaveConsent", s.SaveConsent(ctx, n, fullTokens(n), store.Status{State: store.StateOK, Generation: int64(i)}))
	}
	must(t, "PutAuthState", s.PutAuthState(ctx, "alpha", "abcdef01", store.AuthState{Verifier: "v", ExpiresAt: base}))
	lone := &store.Record{Name: "delta"}
	must(t, "Lease", s.Lease(ctx, lone, store.Status{State: store.StateNeedsConsent}))
	m, err := s.List(ctx)
	must(t, "List", err)
	if len(m) != 4 {
		t.Fatalf("List returned %d connections; want 4", len(m))
	}
	for _, n := range append(names, "delta") {
		sameRecord(t, "listed "+n, m[n], mustGet(t, s, n))
	}
	sameRecord(t, "delta", m["delta"], lone)
}

func testInt32Failures(t *testing.T, s Store) {
	ctx := context.Background()
	c := &store.Record{Name: "c"}
	for _, tc := range []struct{ in, want int }{{1 << 40, math.MaxInt32}, {-(1 << 40), math.MinInt32}, {math.MaxInt32, math.MaxInt32}} {
		must(t, "Lease", s.Lease(ctx, c, store.Status{ConsecutiveFailures: tc.in}))
		if got := mustGet(t, s, "c").Status.ConsecutiveFailures; got != tc.want {
			t.Errorf("ConsecutiveFailures %d read back as %d; want %d (an Int32 property)", tc.in, got, tc.want)
		}
	}
}

func testCancelledContext(t *testing.T, s Store) {
	must(t, "SaveConsent", s.SaveConsent(context.Background(), "c", fullTokens("x"), fullStatus(1)))
	before := mustGet(t, s, "c")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := *before
	if err := s.Lease(ctx, &c, store.Status{LeaseOwner: "late"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Lease: got %v; want context.Canceled", err)
	}
	if err := s.Commit(ctx, &c, fullTokens("y"), fullStatus(2)); !errors.Is(err, context.Canceled) {
		t.Errorf("Commit: got %v; want context.Canceled", err)
	}
	if err := s.SaveConsent(ctx, "c", fullTokens("y"), fullStatus(2)); !errors.Is(err, context.Canceled) {
		t.Errorf("SaveConsent: got %v; want context.Canceled", err)
	}
	if _, err := s.Get(ctx, "c"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get: got %v; want context.Canceled", err)
	}
	sameRecord(t, "stored", mustGet(t, s, "c"), before)
	sameRecord(t, "the Record", &c, before)
}

func testNilRecord(t *testing.T, s Store) {
	ctx := context.Background()
	if err := s.Lease(ctx, nil, store.Status{}); err == nil {
		t.Errorf("Lease(nil): got nil error; want one")
	}
	if err := s.SetStatus(ctx, nil, store.Status{}); err == nil {
		t.Errorf("SetStatus(nil): got nil error; want one")
	}
	if err := s.Commit(ctx, nil, store.Tokens{}, store.Status{}); err == nil {
		t.Errorf("Commit(nil): got nil error; want one")
	}
}

func testAuthState(t *testing.T, s Store) {
	ctx := context.Background()
	want := store.AuthState{Verifier: "pkce-verifier-secret", ExpiresAt: base.In(east), Replace: true}
	must(t, "PutAuthState", s.PutAuthState(ctx, "c", "abcd", store.AuthState{Verifier: "first"}))
	// Writing the same key again replaces the row.
	must(t, "PutAuthState again", s.PutAuthState(ctx, "c", "abcd", want))
	must(t, "PutAuthState of another connection", s.PutAuthState(ctx, "d", "abcd", store.AuthState{Verifier: "d"}))
	if _, err := s.TakeAuthState(ctx, "c", "ABCD"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("take with the key in other case: got %v; want ErrNotFound (keys are case-sensitive)", err)
	}
	got, err := s.TakeAuthState(ctx, "c", "abcd")
	must(t, "TakeAuthState", err)
	if got.Verifier != want.Verifier || got.ExpiresAt != storedTime(want.ExpiresAt) || got.Replace != want.Replace {
		t.Errorf("got verifier %s expires %v replace %v; want %s %v %v", store.Fingerprint(got.Verifier), got.ExpiresAt, got.Replace,
			store.Fingerprint(want.Verifier), storedTime(want.ExpiresAt), want.Replace)
	}
	if _, err := s.TakeAuthState(ctx, "c", "abcd"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("take after take: got %v; want ErrNotFound", err)
	}
	if _, err := s.TakeAuthState(ctx, "c", "deadbeef"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("take of a missing key: got %v; want ErrNotFound", err)
	}
	if d, err := s.TakeAuthState(ctx, "d", "abcd"); err != nil || d.Verifier != "d" {
		t.Errorf("take of the other connection's: got verifier %s, %v; want its own", store.Fingerprint(d.Verifier), err)
	}
}

func testAuthStateTakeOnce(t *testing.T, s Store) {
	ctx := context.Background()
	must(t, "PutAuthState", s.PutAuthState(ctx, "c", "0123456789abcdef", store.AuthState{Verifier: "v"}))
	const takers = 20
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		won      int
		notFound int
		other    []error
	)
	start := make(chan struct{})
	for range takers {
		wg.Go(func() {
			<-start
			_, err := s.TakeAuthState(ctx, "c", "0123456789abcdef")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case errors.Is(err, store.ErrNotFound):
				notFound++
			default:
				other = append(other, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if won != 1 || notFound != takers-1 || len(other) != 0 {
		t.Errorf("got %d successes, %d ErrNotFound, other errors %v; want 1, %d, none", won, notFound, other, takers-1)
	}
}

func testAuthStateBadKeys(t *testing.T, s Store) {
	ctx := context.Background()
	for _, key := range []string{"", "xyz", "00ff'", "../Status", "AuthState-00", strings.Repeat("a", 129)} {
		if err := s.PutAuthState(ctx, "c", key, store.AuthState{}); err == nil {
			t.Errorf("PutAuthState(key %q): got nil error; want one", key)
		}
		if _, err := s.TakeAuthState(ctx, "c", key); err == nil || errors.Is(err, store.ErrNotFound) {
			t.Errorf("TakeAuthState(key %q): got %v; want a validation error", key, err)
		}
	}
	must(t, "PutAuthState of the longest key", s.PutAuthState(ctx, "c", strings.Repeat("a", 128), store.AuthState{}))
}

// badNames are refused by every write.
var badNames = []string{"", "a'b", "a/b", "a#b", "a?b", "a\\b", "a\nb", "a\x7fb", "a\u0085b", strings.Repeat("x", 513)}

func testBadNames(t *testing.T, s Store) {
	ctx := context.Background()
	for _, name := range badNames {
		for what, err := range map[string]error{
			"SaveConsent":   s.SaveConsent(ctx, name, fullTokens("x"), store.Status{}),
			"Lease":         s.Lease(ctx, &store.Record{Name: name}, store.Status{}),
			"SetStatus":     s.SetStatus(ctx, &store.Record{Name: name}, store.Status{}),
			"Commit":        s.Commit(ctx, &store.Record{Name: name}, fullTokens("x"), store.Status{}),
			"PutAuthState":  s.PutAuthState(ctx, name, "00", store.AuthState{}),
			"TakeAuthState": func() error { _, err := s.TakeAuthState(ctx, name, "00"); return err }(),
		} {
			if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
				t.Errorf("%s(%q): got %v; want a validation error", what, name, err)
			}
		}
	}
	m, err := s.List(ctx)
	must(t, "List", err)
	if len(m) != 0 {
		t.Errorf("List after refused writes: %d connections; want 0", len(m))
	}
}

func testHostileGet(t *testing.T, s Store) {
	ctx := context.Background()
	for _, n := range []string{"alpha", "beta"} {
		must(t, "SaveConsent", s.SaveConsent(ctx, n, fullTokens(n), store.Status{State: store.StateOK}))
	}
	for _, name := range []string{
		"x' or '1' eq '1", "alpha' or PartitionKey ne '", "' or PartitionKey gt '",
		"alpha') or (PartitionKey ne 'alpha", "alpha'", "ålpha’", "alpha\u0000", "alpha or true", "ALPHA", "alpha ",
	} {
		if r, err := s.Get(ctx, name); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Get(%q) = %s, %v; want ErrNotFound", name, show(r), err)
		}
	}
	if r, err := s.Get(ctx, "alpha\xff"); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get of invalid UTF-8 = %s, %v; want an error other than ErrNotFound", show(r), err)
	}
	// The same lookup finds a real name, so the empty answers above mean something.
	mustGet(t, s, "alpha")
}

func testUnusualNames(t *testing.T, s Store) {
	ctx := context.Background()
	names := []string{"a b", "ålpha’", "a%2Fb", "a+b&c=d", "日本語", "a.b-c_d~!$()*,;:@[]", "AuthState-00", "Status", strings.Repeat("x", 512)}
	for _, name := range names {
		must(t, "SaveConsent", s.SaveConsent(ctx, name, fullTokens("n"), fullStatus(1)))
		c := mustGet(t, s, name)
		if c.Name != name {
			t.Errorf("Get(%q).Name = %q", name, c.Name)
		}
		must(t, "Lease", s.Lease(ctx, c, fullStatus(2)))
		must(t, "Commit", s.Commit(ctx, c, fullTokens("m"), fullStatus(3)))
		sameRecord(t, fmt.Sprintf("%q after writes", name), mustGet(t, s, name), c)
		must(t, "PutAuthState", s.PutAuthState(ctx, name, "00", store.AuthState{Verifier: "v"}))
		if _, err := s.TakeAuthState(ctx, name, "00"); err != nil {
			t.Errorf("TakeAuthState(%q): %v", name, err)
		}
	}
	m, err := s.List(ctx)
	must(t, "List", err)
	if len(m) != len(names) {
		t.Errorf("List: %d connections; want %d", len(m), len(names))
	}
}
