package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/freshtoken/freshtoken/internal/azuritetest"
)

// One Azurite serves the package's integration tests, each with its own table; it starts with
// the first test that needs it, so the unit tests run without it.
var (
	azuriteOnce sync.Once
	azuriteSrv  *azuritetest.Server
	azuriteErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if azuriteSrv != nil {
		if err := azuriteSrv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	os.Exit(code)
}

func azurite(t *testing.T) *azuritetest.Server {
	t.Helper()
	azuriteOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		azuriteSrv, azuriteErr = azuritetest.Run(ctx, azuritetest.Options{})
	})
	if azuriteErr != nil {
		t.Fatal(azuriteErr)
	}
	return azuriteSrv
}

// countingTransport counts the requests a Store sends.
type countingTransport struct {
	n  atomic.Int64
	rt http.RoundTripper
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.rt.RoundTrip(r)
}

// newStore opens a Store on a fresh table of the shared Azurite. The clock is fixed.
func newStore(t *testing.T) (*Store, *countingTransport) {
	t.Helper()
	srv := azurite(t)
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	ct := &countingTransport{rt: http.DefaultTransport}
	s, err := Open(context.Background(), Options{
		ConnectionString: srv.ConnectionString(),
		Table:            "t" + hex.EncodeToString(b[:]),
		HTTPClient:       &http.Client{Transport: ct, Timeout: 30 * time.Second},
		Now:              func() time.Time { return testNow },
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s, ct
}

var testNow = time.Date(2025, 3, 4, 5, 6, 7, 891234567, time.UTC)

func testTokens(tag string) Tokens {
	return Tokens{
		AccessToken:      "at-" + tag + "-" + "secret",
		TokenType:        "Bearer",
		ExpiresAt:        testNow.Add(time.Hour),
		Scope:            "openid email",
		RefreshToken:     "rt-" + tag + "-" + "secret",
		RefreshExpiresAt: testNow.Add(90 * 24 * time.Hour),
	}
}

func fullStatus() Status {
	loc := time.FixedZone("X", 3*3600)
	return Status{
		State:               StateRetrying,
		Provider:            "google",
		AccountID:           "user@example.com",
		GrantedScopes:       "openid email",
		MissingScopes:       "calendar",
		ConnectedAt:         testNow.Add(-48 * time.Hour),
		LastSuccess:         testNow.Add(-time.Hour).In(loc),
		LastFailure:         testNow.Add(-time.Minute),
		LastFailureClass:    "transient",
		LastFailureMessage:  "token endpoint: HTTP 503",
		ConsecutiveFailures: 3,
		NextAttempt:         testNow.Add(5 * time.Minute),
		LeaseOwner:          "host-1/1234",
		LeaseUntil:          testNow.Add(2 * time.Minute),
		InFlight:            Fingerprint("rt-old"),
		InFlightSince:       testNow.Add(-time.Second),
		Generation:          1 << 40,
		FailingSince:        testNow.Add(-2 * time.Hour).In(loc),
		NotifiedEvent:       "failing",
		NotifiedAt:          testNow.Add(-30 * time.Minute),
		NotifyClaim:         "needs_consent:revoked",
		NotifyClaimUntil:    testNow.Add(time.Minute),
	}
}

// sameTokens compares pairs without printing token values.
func sameTokens(t *testing.T, got, want Tokens) {
	t.Helper()
	if got.AccessToken != want.AccessToken || got.RefreshToken != want.RefreshToken {
		t.Errorf("tokens: got access %s refresh %s; want access %s refresh %s",
			Fingerprint(got.AccessToken), Fingerprint(got.RefreshToken), Fingerprint(want.AccessToken), Fingerprint(want.RefreshToken))
	}
	got.AccessToken, got.RefreshToken, want.AccessToken, want.RefreshToken = "", "", "", ""
	if want = normTokens(want); got != want {
		t.Errorf("token metadata: got %+v; want %+v", got, want)
	}
}

func sameStatus(t *testing.T, got, want Status) {
	t.Helper()
	if want = normStatus(want); got != want {
		t.Errorf("status:\ngot  %+v\nwant %+v", got, want)
	}
}

func mustGet(t *testing.T, s *Store, name string) *Record {
	t.Helper()
	c, err := s.Get(context.Background(), name)
	if err != nil {
		t.Fatalf("Get(%q): %v", name, err)
	}
	return c
}

// rawRow reads one row as the service returns it, type annotations included.
func rawRow(t *testing.T, s *Store, pk, rk string) map[string]any {
	t.Helper()
	resp, err := s.client.GetEntity(context.Background(), pk, rk, nil)
	if err != nil {
		t.Fatalf("GetEntity(%s, %s): %v", pk, rk, classify(err))
	}
	var m map[string]any
	if err := json.Unmarshal(resp.Value, &m); err != nil {
		t.Fatalf("decode raw row %s: %v", rk, err)
	}
	return m
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	tok, st := testTokens("a"), fullStatus()
	if err := s.SaveConsent(ctx, "gmail", tok, st); err != nil {
		t.Fatalf("SaveConsent: %v", err)
	}
	c := mustGet(t, s, "gmail")
	if c.Name != "gmail" || !c.HasAccess || !c.HasRefresh || !c.HasStatus {
		t.Errorf("got name %q has access/refresh/status %v/%v/%v; want gmail true/true/true", c.Name, c.HasAccess, c.HasRefresh, c.HasStatus)
	}
	if c.ETags.Access == "" || c.ETags.Refresh == "" || c.ETags.Status == "" {
		t.Errorf("got ETags %q %q %q; want all set", c.ETags.Access, c.ETags.Refresh, c.ETags.Status)
	}
	sameTokens(t, c.Tokens, tok)
	// The Status row mirrors the refresh token's deadline so one row tells a connection's health.
	wantSt := st
	wantSt.RefreshDeadline = tok.RefreshExpiresAt
	sameStatus(t, c.Status, wantSt)

	// The layout other apps read: typed properties, exact names.
	access := rawRow(t, s, "gmail", RowAccessToken)
	for prop, want := range map[string]any{
		"Value":                tok.AccessToken,
		"TokenType":            "Bearer",
		"Scope":                "openid email",
		"ExpiresAt":            "2025-03-04T06:06:07.8912345Z",
		"ExpiresAt@odata.type": "Edm.DateTime",
		"UpdatedAt":            "2025-03-04T05:06:07.8912345Z",
		"UpdatedAt@odata.type": "Edm.DateTime",
		"PartitionKey":         "gmail",
		"RowKey":               "AccessToken",
	} {
		if got := access[prop]; got != want {
			if prop == "Value" {
				t.Errorf("AccessToken.Value: got %s; want %s", Fingerprint(fmt.Sprint(got)), Fingerprint(tok.AccessToken))
				continue
			}
			t.Errorf("AccessToken.%s: got %v; want %v", prop, got, want)
		}
	}
	status := rawRow(t, s, "gmail", RowStatus)
	for prop, want := range map[string]any{
		"State":                    "retrying",
		"Generation":               "1099511627776",
		"Generation@odata.type":    "Edm.Int64",
		"ConsecutiveFailures":      float64(3),
		"LeaseUntil@odata.type":    "Edm.DateTime",
		"InFlightSince@odata.type": "Edm.DateTime",
		"LastSuccess":              "2025-03-04T04:06:07.8912345Z", // stored in UTC
	} {
		if got := status[prop]; got != want {
			t.Errorf("Status.%s: got %v (%T); want %v (%T)", prop, got, got, want, want)
		}
	}
	if _, ok := status["ConsecutiveFailures@odata.type"]; ok {
		t.Errorf("Status.ConsecutiveFailures has a type annotation; want a plain Int32")
	}
}

func TestZeroTimesOmitted(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	tok := Tokens{AccessToken: "at", TokenType: "Bearer", RefreshToken: "rt"}
	st := Status{State: StateOK, Provider: "github"}
	if err := s.SaveConsent(ctx, "gh", tok, st); err != nil {
		t.Fatalf("SaveConsent: %v", err)
	}
	for rk, absent := range map[string][]string{
		RowAccessToken:  {"ExpiresAt"},
		RowRefreshToken: {"ExpiresAt"},
		RowStatus:       {"ConnectedAt", "LastSuccess", "LastFailure", "NextAttempt", "LeaseUntil", "InFlightSince"},
	} {
		row := rawRow(t, s, "gh", rk)
		for _, p := range absent {
			if v, ok := row[p]; ok {
				t.Errorf("%s.%s = %v; want it omitted", rk, p, v)
			}
		}
	}
	c := mustGet(t, s, "gh")
	sameTokens(t, c.Tokens, tok)
	sameStatus(t, c.Status, st)
}

func TestListOneQuery(t *testing.T) {
	t.Parallel()
	s, ct := newStore(t)
	ctx := context.Background()
	names := []string{"alpha", "beta-2", "gamma"}
	for i, n := range names {
		st := Status{State: StateOK, Generation: int64(i)}
		if err := s.SaveConsent(ctx, n, testTokens(n), st); err != nil {
			t.Fatalf("SaveConsent(%s): %v", n, err)
		}
	}
	// A pending authorization and a partition with only a Status row.
	if err := s.PutAuthState(ctx, "alpha", "abcdef01", AuthState{Verifier: "v", ExpiresAt: testNow}); err != nil {
		t.Fatalf("PutAuthState: %v", err)
	}
	lone := &Record{Name: "delta"}
	if err := s.Lease(ctx, lone, Status{State: StateNeedsConsent}); err != nil {
		t.Fatalf("Lease: %v", err)
	}

	before := ct.n.Load()
	m, err := s.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if got := ct.n.Load() - before; got != 1 {
		t.Errorf("List sent %d requests; want 1", got)
	}
	if len(m) != 4 {
		t.Fatalf("List returned %d connections; want 4", len(m))
	}
	for i, n := range names {
		c := m[n]
		if c == nil {
			t.Errorf("List lacks %s", n)
			continue
		}
		if !c.HasAccess || !c.HasRefresh || !c.HasStatus || c.ETags.Status == "" || c.ETags.Access == "" || c.ETags.Refresh == "" {
			t.Errorf("%s: has %v/%v/%v ETags %q/%q/%q; want all", n, c.HasAccess, c.HasRefresh, c.HasStatus, c.ETags.Access, c.ETags.Refresh, c.ETags.Status)
		}
		sameTokens(t, c.Tokens, testTokens(n))
		if c.Status.Generation != int64(i) {
			t.Errorf("%s: Generation %d; want %d", n, c.Status.Generation, i)
		}
	}
	if d := m["delta"]; d == nil || d.HasAccess || d.HasRefresh || !d.HasStatus || d.Status.State != StateNeedsConsent {
		t.Errorf("delta: got %+v; want only a needs_consent Status row", d)
	}
}

func TestGetNotFound(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	// A partition holding only a pending authorization is not a connection.
	if err := s.PutAuthState(ctx, "pending", "00ff", AuthState{ExpiresAt: testNow}); err != nil {
		t.Fatalf("PutAuthState: %v", err)
	}
	for _, name := range []string{"missing", "pending"} {
		if c, err := s.Get(ctx, name); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q) = %v, %v; want ErrNotFound", name, c, err)
		}
	}
}

func TestGetHostileName(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	for _, n := range []string{"alpha", "beta"} {
		if err := s.SaveConsent(ctx, n, testTokens(n), Status{State: StateOK}); err != nil {
			t.Fatalf("SaveConsent(%s): %v", n, err)
		}
	}
	for _, name := range []string{
		"x' or '1' eq '1",
		"alpha' or PartitionKey ne '",
		"' or PartitionKey gt '",
		"alpha') or (PartitionKey ne 'alpha",
		"alpha'",
		"ålpha’",
		"alpha\u0000",
		"alpha or true",
	} {
		if c, err := s.Get(ctx, name); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q) = %v, %v; want ErrNotFound", name, c, err)
		}
		// Below Get's own check: the query itself returns nothing.
		f, err := filter("PartitionKey eq {pk} and (RowKey eq {a} or RowKey eq {r} or RowKey eq {s})",
			map[string]string{"pk": name, "a": RowAccessToken, "r": RowRefreshToken, "s": RowStatus})
		if err != nil {
			t.Fatalf("filter: %v", err)
		}
		m, err := s.query(ctx, f)
		if err != nil {
			t.Errorf("query for %q: %v", name, err)
		}
		if len(m) != 0 {
			t.Errorf("query for %q returned %d partitions; want 0", name, len(m))
		}
	}
	// The same filter does find a real name, so the empty answers above mean something.
	if _, err := s.Get(ctx, "alpha"); err != nil {
		t.Errorf("Get(alpha): %v", err)
	}
}

func TestLease(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	if err := s.SaveConsent(ctx, "c", testTokens("a"), Status{State: StateOK}); err != nil {
		t.Fatalf("SaveConsent: %v", err)
	}
	c1, c2 := mustGet(t, s, "c"), mustGet(t, s, "c")
	st1 := Status{State: StateOK, LeaseOwner: "one", LeaseUntil: testNow.Add(time.Minute), InFlight: Fingerprint("rt-a")}
	if err := s.Lease(ctx, c1, st1); err != nil {
		t.Fatalf("first Lease: %v", err)
	}
	sameStatus(t, c1.Status, st1)
	if err := s.Lease(ctx, c2, Status{State: StateOK, LeaseOwner: "two"}); !errors.Is(err, ErrConflict) {
		t.Errorf("Lease with a stale ETag: got %v; want ErrConflict", err)
	}
	// c1 holds the new ETag: its holder can go on writing without a re-read.
	st1b := st1
	st1b.LastFailure, st1b.LastFailureClass = testNow, "transient"
	if err := s.SetStatus(ctx, c1, st1b); err != nil {
		t.Errorf("SetStatus after Lease: %v", err)
	}
	if err := s.SetStatus(ctx, c2, Status{State: StateNeedsConsent}); !errors.Is(err, ErrConflict) {
		t.Errorf("SetStatus with a stale ETag: got %v; want ErrConflict", err)
	}
	sameStatus(t, mustGet(t, s, "c").Status, st1b)
}

func TestLeaseInsertConflict(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	a, b := &Record{Name: "new"}, &Record{Name: "new"}
	if err := s.Lease(ctx, a, Status{LeaseOwner: "a"}); err != nil {
		t.Fatalf("first Lease: %v", err)
	}
	if !a.HasStatus || a.ETags.Status == "" {
		t.Errorf("after Lease: HasStatus %v ETag %q; want true and set", a.HasStatus, a.ETags.Status)
	}
	if err := s.Lease(ctx, b, Status{LeaseOwner: "b"}); !errors.Is(err, ErrConflict) {
		t.Errorf("second insert: got %v; want ErrConflict", err)
	}
	if got := mustGet(t, s, "new").Status.LeaseOwner; got != "a" {
		t.Errorf("LeaseOwner %q; want a", got)
	}
}

func TestCommit(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()

	// A connection with no rows: Commit inserts all three.
	c := &Record{Name: "fresh"}
	st := Status{State: StateOK, Generation: 1}
	if err := s.Commit(ctx, c, testTokens("1"), st); err != nil {
		t.Fatalf("Commit inserting: %v", err)
	}
	// c holds the new ETags, so the next conditional writes succeed without a re-read.
	st.Generation = 2
	if err := s.Commit(ctx, c, testTokens("2"), st); err != nil {
		t.Fatalf("Commit after Commit: %v", err)
	}
	if err := s.Lease(ctx, c, Status{State: StateOK, Generation: 2, LeaseOwner: "me"}); err != nil {
		t.Fatalf("Lease after Commit: %v", err)
	}
	got := mustGet(t, s, "fresh")
	sameTokens(t, got.Tokens, testTokens("2"))
	if got.Status.LeaseOwner != "me" || got.Status.Generation != 2 {
		t.Errorf("status: got owner %q generation %d; want me 2", got.Status.LeaseOwner, got.Status.Generation)
	}
	if got.ETags.Access != c.ETags.Access || got.ETags.Refresh != c.ETags.Refresh || got.ETags.Status != c.ETags.Status {
		t.Errorf("ETags held after writes differ from those read")
	}
}

func TestCommitAtomic(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	if err := s.SaveConsent(ctx, "c", testTokens("old"), Status{State: StateOK, Generation: 7}); err != nil {
		t.Fatalf("SaveConsent: %v", err)
	}
	c := mustGet(t, s, "c")

	// Someone else rewrites only the RefreshToken row: c's ETag for it is now stale.
	other := Tokens{RefreshToken: "rt-other-secret"}
	body, err := encodeEntity("c", RowRefreshToken, refreshProps(other, testNow))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.UpsertEntity(ctx, body, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace}); err != nil {
		t.Fatalf("rewrite RefreshToken row: %v", classify(err))
	}

	if err := s.Commit(ctx, c, testTokens("new"), Status{State: StateOK, Generation: 8}); !errors.Is(err, ErrConflict) {
		t.Fatalf("Commit with one stale ETag: got %v; want ErrConflict", err)
	}
	got := mustGet(t, s, "c")
	want := testTokens("old")
	want.RefreshToken, want.RefreshExpiresAt = other.RefreshToken, time.Time{}
	sameTokens(t, got.Tokens, want)
	if got.Status.Generation != 7 {
		t.Errorf("Generation %d; want 7 (Status row unchanged)", got.Status.Generation)
	}
	// c's in-memory view is untouched by the failed commit.
	sameTokens(t, c.Tokens, testTokens("old"))
}

func TestCommitAfterConsent(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	if err := s.SaveConsent(ctx, "c", testTokens("old"), Status{State: StateOK, Generation: 1}); err != nil {
		t.Fatalf("SaveConsent: %v", err)
	}
	refresher := mustGet(t, s, "c")
	if err := s.Lease(ctx, refresher, Status{State: StateOK, Generation: 1, LeaseOwner: "r"}); err != nil {
		t.Fatalf("Lease: %v", err)
	}
	// A person consents again while the refresh is in flight.
	if err := s.SaveConsent(ctx, "c", testTokens("consent"), Status{State: StateOK, Generation: 1}); err != nil {
		t.Fatalf("second SaveConsent: %v", err)
	}
	if err := s.Commit(ctx, refresher, testTokens("refreshed"), Status{State: StateOK, Generation: 2}); !errors.Is(err, ErrConflict) {
		t.Fatalf("Commit after a consent: got %v; want ErrConflict", err)
	}
	got := mustGet(t, s, "c")
	sameTokens(t, got.Tokens, testTokens("consent"))
	if got.Status.LeaseOwner != "" {
		t.Errorf("LeaseOwner %q; want the consent's empty one", got.Status.LeaseOwner)
	}
}

func TestCommitUnknownETag(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	// A connection claiming rows it holds no ETags for was not read from the store.
	c := &Record{Name: "c", HasAccess: true, HasRefresh: true, HasStatus: true}
	if err := s.Commit(context.Background(), c, testTokens("x"), Status{}); !errors.Is(err, ErrConflict) {
		t.Errorf("Commit: got %v; want ErrConflict", err)
	}
	if err := s.Lease(context.Background(), c, Status{}); !errors.Is(err, ErrConflict) {
		t.Errorf("Lease: got %v; want ErrConflict", err)
	}
}

func TestTakeAuthStateOnce(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	key := hex.EncodeToString([]byte("sha256-of-state"))
	want := AuthState{Verifier: "pkce-verifier-secret", ExpiresAt: testNow.Add(10 * time.Minute), Replace: true}
	if err := s.PutAuthState(ctx, "c", key, want); err != nil {
		t.Fatalf("PutAuthState: %v", err)
	}

	const takers = 20
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		won      []AuthState
		notFound int
		other    []error
	)
	start := make(chan struct{})
	for range takers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			a, err := s.TakeAuthState(ctx, "c", key)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won = append(won, a)
			case errors.Is(err, ErrNotFound):
				notFound++
			default:
				other = append(other, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if len(won) != 1 || notFound != takers-1 || len(other) != 0 {
		t.Fatalf("got %d successes, %d ErrNotFound, other errors %v; want 1, %d, none", len(won), notFound, other, takers-1)
	}
	if got := won[0]; got.Verifier != want.Verifier || !got.ExpiresAt.Equal(storedTime(want.ExpiresAt)) || got.Replace != want.Replace {
		t.Errorf("got verifier %s expires %v replace %v; want %s %v %v",
			Fingerprint(got.Verifier), got.ExpiresAt, got.Replace, Fingerprint(want.Verifier), want.ExpiresAt, want.Replace)
	}
	if _, err := s.TakeAuthState(ctx, "c", key); !errors.Is(err, ErrNotFound) {
		t.Errorf("take after take: got %v; want ErrNotFound", err)
	}
}

func TestAuthStateKeys(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	if _, err := s.TakeAuthState(ctx, "c", "deadbeef"); !errors.Is(err, ErrNotFound) {
		t.Errorf("take of a missing key: got %v; want ErrNotFound", err)
	}
	for _, key := range []string{"", "xyz", "00ff'", "../Status", "AuthState-00"} {
		if err := s.PutAuthState(ctx, "c", key, AuthState{}); err == nil {
			t.Errorf("PutAuthState(key %q): got nil error; want one", key)
		}
		if _, err := s.TakeAuthState(ctx, "c", key); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("TakeAuthState(key %q): got %v; want a validation error", key, err)
		}
	}
}

func TestWriteRejectsBadNames(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	for _, name := range []string{"", "a'b", "a/b", "a#b", "a?b", "a\\b", "a\nb"} {
		if err := s.SaveConsent(ctx, name, testTokens("x"), Status{}); err == nil {
			t.Errorf("SaveConsent(%q): got nil error; want one", name)
		}
		if err := s.Lease(ctx, &Record{Name: name}, Status{}); err == nil {
			t.Errorf("Lease(%q): got nil error; want one", name)
		}
	}
}

func TestOpenExistingTable(t *testing.T) {
	t.Parallel()
	srv := azurite(t)
	ctx := context.Background()
	o := Options{ConnectionString: srv.ConnectionString(), Table: "reopened"}
	s1, err := Open(ctx, o)
	if err != nil {
		t.Fatalf("first Open: %v", err)
	}
	if err := s1.SaveConsent(ctx, "c", testTokens("a"), Status{State: StateOK}); err != nil {
		t.Fatalf("SaveConsent: %v", err)
	}
	s2, err := Open(ctx, o)
	if err != nil {
		t.Fatalf("Open of an existing table: %v", err)
	}
	sameTokens(t, mustGet(t, s2, "c").Tokens, testTokens("a"))
}

func TestUnreachableIsTransient(t *testing.T) {
	t.Parallel()
	// A port nothing listens on: Open fails fast, and the failure is transient.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = Open(context.Background(), Options{
		ConnectionString: "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" + devAccountKey +
			";TableEndpoint=http://" + addr + "/devstoreaccount1",
		Retry: &policy.RetryOptions{MaxRetries: -1},
	})
	if err == nil {
		t.Fatal("Open: got nil error; want one")
	}
	if !IsTransient(err) {
		t.Errorf("IsTransient(%v) = false; want true", err)
	}
}

func TestFingerprint(t *testing.T) {
	a, b := Fingerprint("token-a"), Fingerprint("token-b")
	if len(a) != 12 || a == b || a != Fingerprint("token-a") {
		t.Errorf("Fingerprint: got %q and %q; want 12 stable hex digits, different for different input", a, b)
	}
	if got := Fingerprint(""); got != "" {
		t.Errorf("Fingerprint(\"\") = %q; want \"\"", got)
	}
}
