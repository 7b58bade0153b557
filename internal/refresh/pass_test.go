package refresh_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/azuritetest"
	"github.com/freshtoken/freshtoken/internal/connection"
	"github.com/freshtoken/freshtoken/internal/provider"
	"github.com/freshtoken/freshtoken/internal/refresh"
	"github.com/freshtoken/freshtoken/internal/store"
	"github.com/freshtoken/freshtoken/internal/tokenclient"
	"github.com/rs/zerolog"
)

// One Azurite serves the tests of accounts, each with its own table; it starts with the first
// test that needs it.
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

func runAzurite(ctx context.Context) (*azuritetest.Server, error) {
	return azuritetest.Run(ctx, azuritetest.Options{})
}

// counting counts the requests sent through it.
type counting struct {
	n  atomic.Int64
	rt http.RoundTripper
}

func (c *counting) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.rt.RoundTrip(r)
}

// tableEnv is a real store on a fresh table of the shared Azurite, with a fake clock.
type tableEnv struct {
	t     *testing.T
	clock *fakeClock
	store *store.Store
	reqs  *counting
	logs  *syncBuffer
}

func newTableEnv(t *testing.T) *tableEnv {
	t.Helper()
	azuriteOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		azuriteSrv, azuriteErr = runAzurite(ctx)
	})
	if azuriteErr != nil {
		t.Fatal(azuriteErr)
	}
	var b [6]byte
	rand.Read(b[:])
	e := &tableEnv{t: t, clock: &fakeClock{t: t0}, reqs: &counting{rt: http.DefaultTransport}, logs: &syncBuffer{}}
	s, err := store.Open(t.Context(), store.Options{
		ConnectionString: azuriteSrv.ConnectionString(),
		Table:            "t" + hex.EncodeToString(b[:]),
		HTTPClient:       &http.Client{Transport: e.reqs, Timeout: 30 * time.Second},
		Now:              e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.store = s
	return e
}

// seed stores a connected pair in partition pk, whose access token expires in expiresIn.
func (e *tableEnv) seed(pk string, expiresIn time.Duration, change ...func(*store.Tokens, *store.Status)) {
	e.t.Helper()
	now := e.clock.Now()
	tk := store.Tokens{AccessToken: randomToken(), TokenType: "Bearer", ExpiresAt: now.Add(expiresIn), RefreshToken: randomToken()}
	st := store.Status{State: store.StateOK, Provider: "test", ConnectedAt: now.Add(-time.Hour), LastSuccess: now.Add(-time.Hour)}
	for _, f := range change {
		f(&tk, &st)
	}
	if err := e.store.SaveConsent(context.Background(), pk, tk, st); err != nil {
		e.t.Fatal(err)
	}
}

func (e *tableEnv) refresher(o refresh.Options) *refresh.Refresher {
	o.Store = e.store
	o.Now = e.clock.Now
	o.Log = zerolog.New(e.logs)
	o.Jitter = func() float64 { return 1 }
	if o.Owner == "" {
		o.Owner = "host"
	}
	return refresh.New(o)
}

func manyConn(name string, p refresher, preset provider.Preset) *connection.Connection {
	c := conn(name, p, preset)
	c.Many = true
	return c
}

func results(rep refresh.Report) map[string]refresh.Result {
	m := map[string]refresh.Result{}
	for _, r := range rep.Results {
		m[r.Connection] = r
	}
	return m
}

// TestAccounts: the accounts of a many-account connection, each in its own partition, in every
// state of the state machine, beside a single connection that behaves as before.
func TestAccounts(t *testing.T) {
	e := newTableEnv(t)
	p := newFakeProvider(e.clock.Now, true)
	single := newFakeProvider(e.clock.Now, true)
	e.seed("demo", 10*time.Minute)
	e.seed("strava.due", 10*time.Minute)
	e.seed("strava.expired", -time.Hour)
	e.seed("strava.idle", 5*time.Hour)
	e.seed("strava.idle-2", 5*time.Hour)
	e.seed("strava.consent", 5*time.Hour, func(_ *store.Tokens, st *store.Status) {
		st.State, st.LastFailureMessage, st.LastFailureClass = store.StateNeedsConsent, "revoked", "revoked"
	})
	e.seed("strava.retrying", 10*time.Minute, func(_ *store.Tokens, st *store.Status) {
		st.State, st.LastFailureClass, st.LastFailureMessage = store.StateRetrying, "transient", "HTTP 503"
		st.NextAttempt = t0.Add(time.Hour)
	})
	e.seed("strava.leased", 10*time.Minute, func(_ *store.Tokens, st *store.Status) {
		st.LeaseOwner, st.LeaseUntil = "other#1", t0.Add(time.Minute)
	})
	e.seed("strava.inflight", 5*time.Hour, func(tk *store.Tokens, st *store.Status) {
		st.InFlight, st.InFlightSince = store.Fingerprint(tk.RefreshToken), t0.Add(-time.Hour)
	})
	e.seed("strava.warned", 5*time.Hour, func(tk *store.Tokens, st *store.Status) {
		tk.RefreshExpiresAt = t0.Add(3 * 24 * time.Hour)
	})
	e.seed("other.alice", 10*time.Minute) // no such connection: never touched
	e.seed("strava.Bad", 10*time.Minute)  // not a label: never touched

	r := e.refresher(refresh.Options{Connections: []*connection.Connection{
		conn("demo", single, strict), manyConn("strava", p, strict),
	}})
	rep := r.Run(t.Context())
	got := results(rep)
	want := map[string]refresh.Outcome{
		"demo":            refresh.Refreshed,
		"strava.due":      refresh.Refreshed,
		"strava.expired":  refresh.Refreshed,
		"strava.consent":  refresh.Failed,
		"strava.retrying": refresh.Failed,
		"strava.leased":   refresh.InProgress,
		"strava.inflight": refresh.Failed,
		"strava.warned":   refresh.NotDue,
	}
	for name, o := range want {
		if got[name].Outcome != o {
			t.Errorf("%s: got %q; want %q", name, got[name].Line(), o)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d result lines; want %d (idle accounts only counted): %q", len(got), len(want), rep.Lines())
	}
	if w := got["strava.warned"].Warning; w == nil {
		t.Errorf("strava.warned: no deadline warning; want one")
	}
	if !strings.Contains(got["strava.consent"].Detail, authorizeURL("strava")+"/consent") {
		t.Errorf("strava.consent: %q; want the account's Authorize URL", got["strava.consent"].Detail)
	}
	if len(rep.Summaries) != 1 {
		t.Fatalf("got %d summaries; want 1", len(rep.Summaries))
	}
	s := rep.Summaries[0]
	if s.Counts[refresh.Refreshed] != 2 || s.Counts[refresh.Failed] != 3 || s.Counts[refresh.InProgress] != 1 || s.Counts[refresh.NotDue] != 1 {
		t.Errorf("summary %q; want 2 refreshed, 3 failed, 1 in progress, 1 not due", s.Line())
	}
	if !rep.Failed() {
		t.Error("the pass did not fail; want failed (accounts need consent)")
	}
	for _, pk := range []string{"strava.due", "strava.expired", "demo"} {
		c, err := e.store.Get(t.Context(), pk)
		if err != nil {
			t.Fatal(err)
		}
		if c.Status.Generation != 1 || !c.Tokens.ExpiresAt.After(t0.Add(30*time.Minute)) {
			t.Errorf("%s: generation %d expiry %v; want a new pair stored", pk, c.Status.Generation, c.Tokens.ExpiresAt)
		}
	}
	c, err := e.store.Get(t.Context(), "strava.inflight")
	if err != nil {
		t.Fatal(err)
	}
	if c.Status.State != store.StateNeedsConsent {
		t.Errorf("strava.inflight: state %q; want needs_consent (lost in flight, no repeat window)", c.Status.State)
	}
	for _, pk := range []string{"other.alice", "strava.Bad", "strava.idle"} {
		c, err := e.store.Get(t.Context(), pk)
		if err != nil {
			t.Fatal(err)
		}
		if c.Status.Generation != 0 || c.Status.LeaseOwner != "" {
			t.Errorf("%s was touched: %+v", pk, c.Status)
		}
	}
	if n := p.total(); n != 2 {
		t.Errorf("strava got %d refreshes; want 2", n)
	}
}

// TestIdlePassRequests: an idle pass's storage requests grow by at most one per 1,000 accounts.
func TestIdlePassRequests(t *testing.T) {
	e := newTableEnv(t)
	p := newFakeProvider(e.clock.Now, true)
	r := e.refresher(refresh.Options{Connections: []*connection.Connection{conn("demo", p, strict), manyConn("strava", p, strict)}})
	e.seed("demo", 5*time.Hour)
	idle := func() int64 {
		e.reqs.n.Store(0)
		rep := r.Run(t.Context())
		if rep.Failed() {
			t.Fatalf("idle pass failed: %q", rep.Lines())
		}
		return e.reqs.n.Load()
	}
	base := idle()
	seeded := 0
	for _, n := range []int{100, 1200} {
		var wg sync.WaitGroup
		sem := make(chan struct{}, 32)
		for i := seeded; i < n; i++ {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				e.seed(fmt.Sprintf("strava.p%05d", i), 5*time.Hour)
			}()
		}
		wg.Wait()
		seeded = n
		got := idle()
		if limit := base + int64(n/1000); got > limit {
			t.Errorf("idle pass over %d accounts: %d storage requests; want at most %d (%d with none)", n, got, limit, base)
		}
	}
	if p.total() != 0 {
		t.Errorf("idle passes sent %d refreshes; want 0", p.total())
	}
}

// TestRateLimit: a due pass sends no more token requests than the app's limit allows; the
// accounts left go first in the next pass, and a 429 holds every account of the app.
func TestRateLimit(t *testing.T) {
	e := newTableEnv(t)
	p := newFakeProvider(e.clock.Now, true)
	whoop := strict
	whoop.Name = "whoop" // 100 a minute
	r := e.refresher(refresh.Options{Connections: []*connection.Connection{manyConn("w", p, whoop)}, Reserve: time.Millisecond})
	for i := range 130 {
		e.seed(fmt.Sprintf("w.a%03d", i), time.Duration(i)*time.Second)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	rep := r.Run(ctx)
	s := rep.Summaries[0]
	if s.Counts[refresh.Refreshed] != 100 || s.Counts[refresh.Deferred] != 30 {
		t.Fatalf("first pass: %q; want 100 refreshed, 30 left", s.Line())
	}
	for i := range 100 - refresh.DefaultConcurrency {
		// The earliest expiries went first (up to the order in which the concurrent workers
		// reached the limit).
		c, _ := e.store.Get(t.Context(), fmt.Sprintf("w.a%03d", i))
		if c.Status.Generation != 1 {
			t.Errorf("w.a%03d was not refreshed in the first pass; want the earliest expiries first", i)
		}
	}
	// A minute later the window has room; the left accounts go first.
	e.clock.Advance(time.Minute)
	rep = r.Run(ctx)
	if s := rep.Summaries[0]; s.Counts[refresh.Refreshed] != 30 || s.Counts[refresh.Deferred] != 0 {
		t.Errorf("second pass: %q; want 30 refreshed", s.Line())
	}

	// A 429 pauses the app: the other due accounts are not sent.
	e2 := newTableEnv(t)
	p2 := newFakeProvider(e2.clock.Now, true).then(step{err: &tokenclient.Error{Op: "refresh", Class: tokenclient.Transient,
		StatusCode: http.StatusTooManyRequests, RetryAfter: 10 * time.Minute}})
	r2 := e2.refresher(refresh.Options{Connections: []*connection.Connection{manyConn("w", p2, strict)}, Concurrency: 1, Reserve: time.Second})
	for i := range 5 {
		e2.seed(fmt.Sprintf("w.a%d", i), time.Duration(i)*time.Second)
	}
	ctx2, cancel2 := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel2()
	rep = r2.Run(ctx2)
	if s := rep.Summaries[0]; s.Counts[refresh.Failed] != 1 || s.Counts[refresh.Deferred] != 4 || p2.total() != 1 {
		t.Errorf("after a 429: %q with %d token requests; want 1 failed, 4 left, 1 request", s.Line(), p2.total())
	}
}

// TestLastStart: a pass whose deadline is nearer than the reserve starts no refresh, takes no
// lease and says how many due accounts it left.
func TestLastStart(t *testing.T) {
	e := newTableEnv(t)
	p := newFakeProvider(e.clock.Now, true)
	r := e.refresher(refresh.Options{Connections: []*connection.Connection{manyConn("s", p, strict)}, Reserve: time.Minute})
	for i := range 3 {
		e.seed(fmt.Sprintf("s.a%d", i), time.Minute)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	rep := r.Run(ctx)
	if s := rep.Summaries[0]; s.Counts[refresh.Deferred] != 3 || !strings.Contains(s.Line(), "3 left for the next pass") {
		t.Errorf("got %q; want 3 left for the next pass", s.Line())
	}
	if p.total() != 0 {
		t.Errorf("got %d token requests; want 0", p.total())
	}
	for i := range 3 {
		c, _ := e.store.Get(t.Context(), fmt.Sprintf("s.a%d", i))
		if c.Status.LeaseOwner != "" || c.Status.InFlight != "" {
			t.Errorf("s.a%d holds a lease: %+v", i, c.Status)
		}
	}
	if rep.Failed() {
		t.Error("the pass failed; want not failed (nothing was lost)")
	}
}

// TestLinesBounded: the invocation's Logs answer keeps every single connection's line, at most
// MaxAccountLines account lines (failures first) and the summaries.
func TestLinesBounded(t *testing.T) {
	rep := refresh.Report{Results: []refresh.Result{{Connection: "demo", Outcome: refresh.NotDue}}}
	for i := range 150 {
		o := refresh.Refreshed
		if i%3 == 0 {
			o = refresh.Failed
		}
		rep.Results = append(rep.Results, refresh.Result{Connection: fmt.Sprintf("s.a%03d", i), Outcome: o})
	}
	rep.Summaries = []refresh.Summary{{Connection: "s", Counts: map[refresh.Outcome]int{refresh.Refreshed: 100, refresh.Failed: 50, refresh.NotDue: 9000}}}
	lines := rep.Lines()
	if len(lines) != 1+refresh.MaxAccountLines+1+1 {
		t.Fatalf("got %d lines; want %d", len(lines), 1+refresh.MaxAccountLines+2)
	}
	if lines[0] != "demo: not due" {
		t.Errorf("first line %q; want the single connection's", lines[0])
	}
	for i := 1; i <= 50; i++ {
		if !strings.Contains(lines[i], "failed") {
			t.Errorf("line %d %q; want the failures first", i, lines[i])
		}
	}
	if want := "... and 50 more account lines in the handler's log"; lines[len(lines)-2] != want {
		t.Errorf("got %q; want %q", lines[len(lines)-2], want)
	}
	if want := "s: 9150 accounts looked at: 100 refreshed, 50 failed, 9000 not due"; lines[len(lines)-1] != want {
		t.Errorf("got %q; want %q", lines[len(lines)-1], want)
	}
}

// TestIdleWithoutHorizon: with a timing whose margin grows with the token's lifetime, the scan
// reads every AccessToken row (keys and times only) and the pass reads whole only the accounts
// that may be due.
func TestIdleWithoutHorizon(t *testing.T) {
	e := newTableEnv(t)
	p := newFakeProvider(e.clock.Now, true)
	grace := repeatable // a repeat window: the adaptive timing has no horizon there
	tm := refresh.DefaultTiming()
	if h := tm.Horizon(grace); h != 0 {
		t.Fatalf("horizon %v; want none for this test", h)
	}
	// Stored 10 hours ago, expiring in 1 hour: due at 55% of an 11-hour lifetime.
	e.clock.Advance(-10 * time.Hour)
	e.seed("g.old", 11*time.Hour, func(_ *store.Tokens, st *store.Status) {})
	e.clock.Advance(10 * time.Hour)
	const n = 1000
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			e.seed(fmt.Sprintf("g.p%04d", i), 5*time.Hour) // 5 h of 5 h left: not due
		}()
	}
	wg.Wait()
	r := e.refresher(refresh.Options{Connections: []*connection.Connection{manyConn("g", p, grace)}, Timing: tm})
	e.reqs.n.Store(0)
	rep := r.Run(t.Context())
	s := rep.Summaries[0]
	if s.Counts[refresh.Refreshed] != 1 || s.Counts[refresh.NotDue] != n {
		t.Errorf("got %q; want 1 refreshed, %d not due", s.Line(), n)
	}
	// The scan: 2 pages of AccessToken rows, 1 of empty ones, 1 of Status rows; then one read,
	// the lease and the commit of g.old.
	if got := e.reqs.n.Load(); got > 7 {
		t.Errorf("the pass sent %d storage requests; want at most 7 (no read of an idle account)", got)
	}
	if !s.Bound.IsZero() {
		t.Errorf("summary bound %v; want none (every account counted)", s.Bound)
	}
}

// wholeless is a store whose scan never reads a partition whole, as for rows an earlier version
// wrote without the access-token expiry on the RefreshToken and Status rows.
type wholeless struct{ *store.Store }

func (w wholeless) Scan(ctx context.Context, o store.ScanOptions) (map[string]store.Candidate, error) {
	m, err := w.Store.Scan(ctx, o)
	for pk, c := range m {
		c.Record = nil
		m[pk] = c
	}
	return m, err
}

// TestDuePassRequests: a due account costs its lease and its commit, and no read of its own:
// the scan read it whole. Where the scan could not, the pass reads the accounts in batches just
// ahead of the refreshes, with the same outcome.
func TestDuePassRequests(t *testing.T) {
	const n = 50
	for _, tc := range []struct {
		name  string
		wrap  func(*store.Store) refresh.Store
		reads int64 // requests besides the leases and commits
	}{
		{"read whole by the scan", func(s *store.Store) refresh.Store { return s }, 3},
		{"rows without the copy", func(s *store.Store) refresh.Store { return wholeless{s} }, 3 + (n+store.GetManyBatch-1)/store.GetManyBatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTableEnv(t)
			p := newFakeProvider(e.clock.Now, true)
			for i := range n {
				e.seed(fmt.Sprintf("s.a%02d", i), time.Minute)
			}
			r := refresh.New(refresh.Options{Store: tc.wrap(e.store), Connections: []*connection.Connection{manyConn("s", p, strict)},
				Now: e.clock.Now, Log: zerolog.New(e.logs), Jitter: func() float64 { return 1 }, Owner: "host"})
			e.reqs.n.Store(0)
			rep := r.Run(t.Context())
			if s := rep.Summaries[0]; s.Counts[refresh.Refreshed] != n {
				t.Fatalf("%q; want %d refreshed", s.Line(), n)
			}
			if got, want := e.reqs.n.Load(), tc.reads+2*n; got != want {
				t.Errorf("the pass sent %d storage requests; want %d (%d reads, a lease and a commit per account)", got, want, tc.reads)
			}
			for i := range n {
				c, err := e.store.Get(t.Context(), fmt.Sprintf("s.a%02d", i))
				if err != nil || c.Status.Generation != 1 || c.Status.LeaseOwner != "" {
					t.Errorf("s.a%02d after the pass: %+v, %v; want refreshed once, no lease", i, c, err)
				}
			}
		})
	}
}
