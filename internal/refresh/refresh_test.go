package refresh_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/connection"
	"github.com/freshtoken/freshtoken/internal/provider"
	"github.com/freshtoken/freshtoken/internal/refresh"
	"github.com/freshtoken/freshtoken/internal/store"
	"github.com/freshtoken/freshtoken/internal/store/storetest"
	"github.com/freshtoken/freshtoken/internal/tokenclient"
	"github.com/rs/zerolog"
)

// t0 is the fake clock's start, well before the wall clock: a Refresher that mixes the two
// (a context deadline computed from Options.Now) fails these tests.
var t0 = time.Date(2025, 1, 6, 9, 0, 0, 0, time.UTC)

var (
	strict     = provider.Preset{Name: "strict"}
	repeatable = provider.Preset{Name: "repeatable", RepeatWindow: 2 * time.Minute}
)

const generation = 7 // the Generation of every seeded Status row

// env is one test's world: a fake clock, store and providers, and everything the Refreshers
// said, which is checked for secrets when the test ends.
type env struct {
	t     *testing.T
	clock *fakeClock
	store *storetest.Memory
	logs  *syncBuffer

	mu       sync.Mutex
	provs    []*fakeProvider
	seeded   []string
	said     []string // report lines and details
	consents map[string]store.Tokens
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, clock: &fakeClock{t: t0}, logs: &syncBuffer{}}
	e.store = storetest.New()
	t.Cleanup(e.checkInvariants)
	return e
}

// checkInvariants fails the test if any secret appears in what the Refreshers said or logged, or
// if a provider saw a rotated-away refresh token outside its repeat window.
func (e *env) checkInvariants() {
	e.mu.Lock()
	defer e.mu.Unlock()
	secrets := append([]string(nil), e.seeded...)
	for i, p := range e.provs {
		secrets = append(secrets, p.secrets()...)
		if n := p.reuses(); n != 0 {
			e.t.Errorf("provider %d: got %d refreshes with a rotated-away token; want 0", i, n)
		}
	}
	texts := map[string]string{"the log": e.logs.String(), "the report": strings.Join(e.said, "\n")}
	for where, text := range texts {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				e.t.Errorf("a token (fingerprint %s) appears in %s", store.Fingerprint(s), where)
			}
		}
	}
}

func (e *env) provider(rotate bool) *fakeProvider {
	p := newFakeProvider(e.clock.Now, rotate)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.provs = append(e.provs, p)
	return p
}

func (e *env) repeatableProvider() *fakeProvider {
	p := e.provider(true)
	p.repeatWindow = repeatable.RepeatWindow
	return p
}

// seed stores a connected pair for name whose access token expires in expiresIn.
func (e *env) seed(name string, expiresIn time.Duration, change ...func(*store.Status)) store.Tokens {
	now := e.clock.Now()
	tk := store.Tokens{
		AccessToken: randomToken(), TokenType: "Bearer", ExpiresAt: now.Add(expiresIn), Scope: "read",
		RefreshToken: randomToken(),
	}
	st := store.Status{
		State: store.StateOK, Provider: "test", ConnectedAt: now.Add(-30 * 24 * time.Hour),
		LastSuccess: now.Add(-time.Hour), Generation: generation,
	}
	for _, f := range change {
		f(&st)
	}
	seed(e.t, e.store, name, tk, st)
	e.mu.Lock()
	e.seeded = append(e.seeded, tk.AccessToken, tk.RefreshToken)
	e.mu.Unlock()
	return tk
}

func (e *env) refresher(owner string, conns ...*connection.Connection) *refresh.Refresher {
	return e.refresherWith(refresh.Options{Owner: owner, Connections: conns})
}

func (e *env) refresherWith(o refresh.Options) *refresh.Refresher {
	o.Store = e.store
	o.Now = e.clock.Now
	o.Log = zerolog.New(e.logs)
	o.Jitter = func() float64 { return 1 }
	return refresh.New(o)
}

func (e *env) run(ctx context.Context, r *refresh.Refresher) refresh.Report {
	rep := r.Run(ctx)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.said = append(e.said, rep.Lines()...)
	for _, res := range rep.Results {
		e.said = append(e.said, res.Detail)
	}
	return rep
}

func authorizeURL(name string) string {
	return "https://freshtoken.example.net/api/Authorize?connection=" + name
}

func conn(name string, p refresher, preset provider.Preset) *connection.Connection {
	return &connection.Connection{Name: name, Preset: preset, Client: tokenSource{p}, AuthorizeURL: authorizeURL(name)}
}

// refresher is what a pass asks of a connection's token client.
type refresher interface {
	Refresh(ctx context.Context, refreshToken string) (*tokenclient.Token, error)
}

// tokenSource is a token client that only refreshes: a pass never starts a consent.
type tokenSource struct{ refresher }

func (tokenSource) AuthCodeURL(string, string) string { return "" }
func (tokenSource) UsesPKCE() bool                    { return false }
func (tokenSource) Exchange(context.Context, string, string) (*tokenclient.Token, error) {
	return nil, errors.New("a pass never exchanges a code")
}

func resultOf(t *testing.T, rep refresh.Report, name string) refresh.Result {
	t.Helper()
	for _, r := range rep.Results {
		if r.Connection == name {
			return r
		}
	}
	t.Fatalf("no result for %s in %q", name, rep.Lines())
	return refresh.Result{}
}

// checkRefreshed checks that name's rows hold the pair the provider issued for sent, stored by
// one successful commit on top of a seeded row.
func checkRefreshed(t *testing.T, e *env, p *fakeProvider, name string, old store.Tokens) {
	t.Helper()
	ans, ok := p.answerFor(old.RefreshToken)
	if !ok {
		t.Fatalf("%s: the provider issued no pair for the stored refresh token", name)
	}
	tk, st := row(e.store, name)
	if tk.AccessToken != ans.AccessToken {
		t.Errorf("%s: stored access token is not the one the provider issued", name)
	}
	wantRT := ans.RefreshToken
	if wantRT == "" {
		wantRT = old.RefreshToken
	}
	if tk.RefreshToken != wantRT {
		t.Errorf("%s: stored refresh token (fingerprint %s); want %s", name, store.Fingerprint(tk.RefreshToken), store.Fingerprint(wantRT))
	}
	if !tk.ExpiresAt.Equal(ans.Expiry) {
		t.Errorf("%s: stored expiry %v; want %v", name, tk.ExpiresAt, ans.Expiry)
	}
	if st.Generation != generation+1 {
		t.Errorf("%s: Generation %d; want %d", name, st.Generation, generation+1)
	}
	if st.State != store.StateOK {
		t.Errorf("%s: State %q; want %q", name, st.State, store.StateOK)
	}
	if st.LeaseOwner != "" || !st.LeaseUntil.IsZero() || st.InFlight != "" || !st.InFlightSince.IsZero() {
		t.Errorf("%s: lease %q until %v, in flight %q since %v; want all cleared", name, st.LeaseOwner, st.LeaseUntil, st.InFlight, st.InFlightSince)
	}
	if st.ConsecutiveFailures != 0 || !st.NextAttempt.IsZero() {
		t.Errorf("%s: ConsecutiveFailures %d, NextAttempt %v; want 0 and zero", name, st.ConsecutiveFailures, st.NextAttempt)
	}
}

// checkPairUnchanged checks that name still holds the seeded pair.
func checkPairUnchanged(t *testing.T, e *env, name string, old store.Tokens) {
	t.Helper()
	tk, _ := row(e.store, name)
	if tk.RefreshToken != old.RefreshToken || tk.AccessToken != old.AccessToken {
		t.Errorf("%s: the stored pair changed (refresh token fingerprint %s); want the seeded pair (%s)",
			name, store.Fingerprint(tk.RefreshToken), store.Fingerprint(old.RefreshToken))
	}
}

func TestOutcomes(t *testing.T) {
	cases := []struct {
		name        string
		seed        bool
		expiresIn   time.Duration
		status      func(*store.Status)
		rotate      bool
		omit        bool
		want        refresh.Outcome
		wantCalls   int
		wantWrites  int
		wantKeepsRT bool // the stored refresh token after the pass is the seeded one
	}{
		{name: "not connected", want: refresh.NotConnected},
		{name: "not due", seed: true, expiresIn: 2 * time.Hour, want: refresh.NotDue, wantKeepsRT: true},
		{name: "just outside the margin", seed: true, expiresIn: 30*time.Minute + time.Second, want: refresh.NotDue, wantKeepsRT: true},
		{name: "due, rotating", seed: true, expiresIn: 10 * time.Minute, rotate: true,
			status: func(st *store.Status) {
				st.State, st.ConsecutiveFailures, st.LastFailureClass = store.StateRetrying, 2, "transient"
				st.NextAttempt = t0.Add(-time.Minute)
			},
			want: refresh.Refreshed, wantCalls: 1, wantWrites: 2},
		{name: "at the margin", seed: true, expiresIn: 30 * time.Minute, rotate: true, want: refresh.Refreshed, wantCalls: 1, wantWrites: 2},
		{name: "expired", seed: true, expiresIn: -5 * time.Minute, rotate: true, want: refresh.Refreshed, wantCalls: 1, wantWrites: 2},
		{name: "due, not rotating", seed: true, expiresIn: 10 * time.Minute, want: refresh.Refreshed, wantCalls: 1, wantWrites: 2, wantKeepsRT: true},
		{name: "due, answer without a refresh token", seed: true, expiresIn: 10 * time.Minute, omit: true,
			want: refresh.Refreshed, wantCalls: 1, wantWrites: 2, wantKeepsRT: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			p := e.provider(tc.rotate)
			p.omit = tc.omit
			var old store.Tokens
			if tc.seed {
				var change []func(*store.Status)
				if tc.status != nil {
					change = append(change, tc.status)
				}
				old = e.seed("a", tc.expiresIn, change...)
			}
			r := e.refresher("host", conn("a", p, strict))
			rep := e.run(t.Context(), r)
			res := resultOf(t, rep, "a")

			if res.Outcome != tc.want {
				t.Fatalf("got %q; want %q", res.Line(), tc.want)
			}
			if got := p.total(); got != tc.wantCalls {
				t.Errorf("got %d provider calls; want %d", got, tc.wantCalls)
			}
			if got := e.store.Count(mList, ""); got != 1 {
				t.Errorf("got %d List calls; want 1", got)
			}
			if got := writes(e.store, "a"); got != tc.wantWrites {
				t.Errorf("got %d store writes (%q); want %d", got, callLog(e.store), tc.wantWrites)
			}
			if rep.Failed() {
				t.Errorf("report failed: %q; want not failed", rep.Lines())
			}
			switch tc.want {
			case refresh.NotConnected:
				if !strings.Contains(res.Detail, authorizeURL("a")) {
					t.Errorf("got detail %q; want it to name %s", res.Detail, authorizeURL("a"))
				}
			case refresh.NotDue:
				checkPairUnchanged(t, e, "a", old)
			case refresh.Refreshed:
				checkRefreshed(t, e, p, "a", old)
				tk, _ := row(e.store, "a")
				if got := tk.RefreshToken == old.RefreshToken; got != tc.wantKeepsRT {
					t.Errorf("stored refresh token is the old one: %v; want %v", got, tc.wantKeepsRT)
				}
				ans, _ := p.answerFor(old.RefreshToken)
				if !res.Expiry.Equal(ans.Expiry) {
					t.Errorf("got Result.Expiry %v; want %v", res.Expiry, ans.Expiry)
				}
				if want := ans.Expiry.UTC().Format(time.RFC3339); !strings.Contains(res.Line(), want) {
					t.Errorf("got line %q; want it to hold the expiry %s", res.Line(), want)
				}
				if got := e.store.Count(mLease, "a"); got != 1 {
					t.Errorf("got %d Lease calls; want 1 (before the provider call)", got)
				}
				if log := callLog(e.store); !slices.Equal(log, []string{"List", "Lease a", "Commit a"}) {
					t.Errorf("got store calls %q; want List, Lease, Commit", log)
				}
			}
		})
	}
}

func TestBudget(t *testing.T) {
	e := newEnv(t)
	due := map[string]bool{"a": true, "c": true, "e": true}
	provs := map[string]*fakeProvider{}
	old := map[string]store.Tokens{}
	var conns []*connection.Connection
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		expires := 3 * time.Hour
		if due[name] {
			expires = 5 * time.Minute
		}
		old[name] = e.seed(name, expires)
		provs[name] = e.provider(true)
		conns = append(conns, conn(name, provs[name], strict))
	}
	rep := e.run(t.Context(), e.refresher("host", conns...))

	if got := e.store.Count(mList, ""); got != 1 {
		t.Errorf("got %d List calls; want 1", got)
	}
	if got := e.store.Count(mGet, ""); got != 0 {
		t.Errorf("got %d Get calls; want 0", got)
	}
	for name, p := range provs {
		res := resultOf(t, rep, name)
		if !due[name] {
			if res.Outcome != refresh.NotDue || p.total() != 0 || writes(e.store, name) != 0 {
				t.Errorf("%s: got %q, %d provider calls, %d writes; want not due, 0, 0", name, res.Line(), p.total(), writes(e.store, name))
			}
			continue
		}
		if res.Outcome != refresh.Refreshed {
			t.Errorf("%s: got %q; want refreshed", name, res.Line())
		}
		if got := p.callsWith(old[name].RefreshToken); got != 1 || p.total() != 1 {
			t.Errorf("%s: got %d provider calls (%d with the stored token); want exactly 1", name, p.total(), got)
		}
		lease, commit, setStatus := e.store.Count(mLease, name), e.store.Count(mCommit, name), e.store.Count(mSetStatus, name)
		if lease != 1 || commit != 1 || setStatus != 0 {
			t.Errorf("%s: got %d Lease, %d Commit, %d SetStatus; want 1, 1, 0", name, lease, commit, setStatus)
		}
		if total := lease + commit + setStatus + e.store.Count(mGet, name); total > 3 {
			t.Errorf("%s: got %d table requests; want at most 3", name, total)
		}
		checkRefreshed(t, e, p, name, old[name])
	}
}

func TestRevoked(t *testing.T) {
	const gone = "the Fitbit Web API is shut down: connect the Google Health API instead"
	cases := []struct {
		name      string
		err       *tokenclient.Error
		wantLine  []string
		wantClass refresh.Class
	}{
		{"invalid_grant", &tokenclient.Error{Op: "refresh", Class: tokenclient.Revoked, StatusCode: http.StatusBadRequest,
			Code: "invalid_grant", Detail: "token has been revoked"}, []string{"invalid_grant", authorizeURL("a")}, refresh.ClassRevoked},
		{"410 gone", &tokenclient.Error{Op: "refresh", Class: tokenclient.Revoked, StatusCode: http.StatusGone, Gone: gone},
			[]string{gone}, refresh.ClassGone},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			p := e.provider(true).then(step{err: tc.err})
			old := e.seed("a", 10*time.Minute)
			r := e.refresher("host", conn("a", p, strict))

			rep := e.run(t.Context(), r)
			res := resultOf(t, rep, "a")
			if res.Outcome != refresh.Failed || res.Class != tc.wantClass || !rep.Failed() {
				t.Errorf("got %q (report failed: %v); want failed (%s)", res.Line(), rep.Failed(), tc.wantClass)
			}
			for _, want := range tc.wantLine {
				if !strings.Contains(res.Line(), want) {
					t.Errorf("got line %q; want it to hold %q", res.Line(), want)
				}
			}
			_, st := row(e.store, "a")
			if st.State != store.StateNeedsConsent || st.LastFailureClass != string(tc.wantClass) || st.ConsecutiveFailures != 1 {
				t.Errorf("got status %q class %q failures %d; want needs_consent, %s, 1", st.State, st.LastFailureClass, st.ConsecutiveFailures, tc.wantClass)
			}
			if !st.FailingSince.Equal(t0) {
				t.Errorf("got FailingSince %v; want the streak's start %v", st.FailingSince, t0)
			}
			if st.LeaseOwner != "" || st.InFlight != "" {
				t.Errorf("got lease %q in flight %q; want both cleared", st.LeaseOwner, st.InFlight)
			}
			checkPairUnchanged(t, e, "a", old)
			if got := p.total(); got != 1 {
				t.Errorf("got %d provider calls; want 1", got)
			}

			e.clock.Advance(time.Hour)
			e.store.ResetCalls()
			rep = e.run(t.Context(), r)
			res = resultOf(t, rep, "a")
			if res.Outcome != refresh.Failed || !strings.Contains(res.Line(), authorizeURL("a")) {
				t.Errorf("next pass: got %q; want failed, naming %s", res.Line(), authorizeURL("a"))
			}
			if got := p.total(); got != 1 {
				t.Errorf("next pass: got %d provider calls in all; want still 1", got)
			}
			if got := writes(e.store, "a"); got != 0 {
				t.Errorf("next pass: got %d store writes; want 0", got)
			}
			checkPairUnchanged(t, e, "a", old)
		})
	}
}

func TestTransient(t *testing.T) {
	cases := []struct {
		name       string
		retryAfter time.Duration
		wantWait   time.Duration
	}{
		{"Retry-After 10m", 10 * time.Minute, 10 * time.Minute},
		{"no Retry-After: first backoff", 0, time.Minute},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			p := e.provider(true).then(step{err: &tokenclient.Error{Op: "refresh", Class: tokenclient.Transient,
				StatusCode: http.StatusTooManyRequests, RetryAfter: tc.retryAfter}})
			old := e.seed("a", 20*time.Minute)
			r := e.refresher("host", conn("a", p, strict))

			rep := e.run(t.Context(), r)
			res := resultOf(t, rep, "a")
			if res.Outcome != refresh.Failed || res.Class != refresh.ClassTransient {
				t.Errorf("got %q; want failed (transient)", res.Line())
			}
			_, st := row(e.store, "a")
			if st.State != store.StateRetrying {
				t.Errorf("got state %q; want %q", st.State, store.StateRetrying)
			}
			if want := t0.Add(tc.wantWait); st.NextAttempt.Before(want) {
				t.Errorf("got NextAttempt %v; want at or after %v", st.NextAttempt, want)
			}
			if st.LeaseOwner != "" || st.InFlight != "" {
				t.Errorf("got lease %q in flight %q; want both cleared", st.LeaseOwner, st.InFlight)
			}
			checkPairUnchanged(t, e, "a", old)

			// Before NextAttempt: no provider call, no write.
			e.clock.Advance(tc.wantWait / 2)
			e.store.ResetCalls()
			rep = e.run(t.Context(), r)
			if res := resultOf(t, rep, "a"); res.Outcome != refresh.Failed {
				t.Errorf("before NextAttempt: got %q; want failed", res.Line())
			}
			if got := p.total(); got != 1 {
				t.Errorf("before NextAttempt: got %d provider calls in all; want 1", got)
			}
			if got := writes(e.store, "a"); got != 0 {
				t.Errorf("before NextAttempt: got %d store writes; want 0", got)
			}

			// After it: refreshed with the same, still valid, refresh token.
			e.clock.Advance(tc.wantWait)
			rep = e.run(t.Context(), r)
			if res := resultOf(t, rep, "a"); res.Outcome != refresh.Refreshed {
				t.Errorf("after NextAttempt: got %q; want refreshed", res.Line())
			}
			if got := p.callsWith(old.RefreshToken); got != 2 {
				t.Errorf("got %d provider calls with the stored token; want 2", got)
			}
			checkRefreshed(t, e, p, "a", old)
		})
	}
}

func TestAmbiguousStrict(t *testing.T) {
	e := newEnv(t)
	// The provider rotated, and its answer was lost.
	p := e.provider(true).then(step{issued: true, err: &tokenclient.Error{Op: "refresh", Class: tokenclient.Ambiguous,
		Detail: "read tcp: connection reset by peer"}})
	old := e.seed("a", 10*time.Minute)
	r := e.refresher("host", conn("a", p, strict))

	rep := e.run(t.Context(), r)
	res := resultOf(t, rep, "a")
	if res.Outcome != refresh.Failed || res.Class != refresh.ClassAmbiguous {
		t.Errorf("got %q; want failed (ambiguous)", res.Line())
	}
	if !strings.Contains(res.Detail, "lost in flight") {
		t.Errorf("got detail %q; want it to say the refresh was lost in flight", res.Detail)
	}
	_, st := row(e.store, "a")
	if st.State != store.StateNeedsConsent {
		t.Errorf("got state %q; want %q", st.State, store.StateNeedsConsent)
	}
	checkPairUnchanged(t, e, "a", old)
	if got := e.store.Count(mGet, ""); got != 0 {
		t.Errorf("got %d Get calls; want 0 (no repeat on a strict preset)", got)
	}

	for _, later := range []time.Duration{time.Minute, 5 * time.Minute, 3 * time.Hour} {
		e.clock.Advance(later)
		rep := e.run(t.Context(), r)
		if res := resultOf(t, rep, "a"); res.Outcome != refresh.Failed {
			t.Errorf("%v later: got %q; want failed", later, res.Line())
		}
	}
	if got := p.total(); got != 1 {
		t.Errorf("got %d provider calls in all; want exactly 1 (the old token is never resent)", got)
	}
}

func TestAmbiguousRepeat(t *testing.T) {
	cases := []struct {
		name      string
		callTakes time.Duration // fake time the first provider call takes
		want      refresh.Outcome
		wantCalls int
	}{
		{"answer lost within the window", 10 * time.Second, refresh.Refreshed, 2},
		{"answer lost after the window", 3 * time.Minute, refresh.Failed, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			p := e.repeatableProvider().then(step{issued: true, err: &tokenclient.Error{Op: "refresh", Class: tokenclient.Ambiguous,
				Detail: "context deadline exceeded"}})
			first := true
			p.setDuring(func(context.Context, string) {
				if first {
					first = false
					e.clock.Advance(tc.callTakes)
				}
			})
			old := e.seed("a", 10*time.Minute)
			r := e.refresher("host", conn("a", p, repeatable))

			rep := e.run(t.Context(), r)
			res := resultOf(t, rep, "a")
			if res.Outcome != tc.want {
				t.Fatalf("got %q; want %q", res.Line(), tc.want)
			}
			if got := p.callsWith(old.RefreshToken); got != tc.wantCalls || p.total() != tc.wantCalls {
				t.Errorf("got %d provider calls (%d with the stored token); want %d, all with it", p.total(), got, tc.wantCalls)
			}
			if tc.want == refresh.Failed {
				_, st := row(e.store, "a")
				if res.Class != refresh.ClassAmbiguous || st.State != store.StateNeedsConsent {
					t.Errorf("got %q, state %q; want ambiguous and needs_consent", res.Line(), st.State)
				}
				checkPairUnchanged(t, e, "a", old)
				return
			}
			if got := e.store.Count(mGet, ""); got != 1 {
				t.Errorf("got %d Get calls; want 1 (the re-read before the repeat)", got)
			}
			checkRefreshed(t, e, p, "a", old)
		})
	}
}

func TestLeases(t *testing.T) {
	cases := []struct {
		name   string
		preset provider.Preset
		// sentAgo: a crashed pass sent the stored refresh token this long ago (0: not sent).
		sentAgo    time.Duration
		status     func(st *store.Status, rt string)
		want       refresh.Outcome
		wantState  store.State
		wantCalls  int // provider calls in all, the crashed pass's included
		wantWrites int
	}{
		{name: "held by another owner", preset: repeatable, sentAgo: time.Minute,
			status: func(st *store.Status, rt string) {
				st.LeaseOwner, st.LeaseUntil = "other-host#3", t0.Add(2*time.Minute)
				st.InFlight, st.InFlightSince = store.Fingerprint(rt), t0.Add(-time.Minute)
			},
			want: refresh.InProgress, wantState: store.StateOK, wantCalls: 1},
		{name: "expired, in flight, strict", preset: strict, sentAgo: 4 * time.Minute,
			status: func(st *store.Status, rt string) {
				st.LeaseOwner, st.LeaseUntil = "crashed#1", t0.Add(-time.Minute)
				st.InFlight, st.InFlightSince = store.Fingerprint(rt), t0.Add(-4*time.Minute)
			},
			want: refresh.Failed, wantState: store.StateNeedsConsent, wantCalls: 1, wantWrites: 1},
		{name: "expired, in flight, within the repeat window", preset: repeatable, sentAgo: 90 * time.Second,
			status: func(st *store.Status, rt string) {
				st.LeaseOwner, st.LeaseUntil = "crashed#1", t0.Add(-time.Second)
				st.InFlight, st.InFlightSince = store.Fingerprint(rt), t0.Add(-90*time.Second)
			},
			want: refresh.Refreshed, wantState: store.StateOK, wantCalls: 2, wantWrites: 2},
		{name: "expired, in flight, past the repeat window", preset: repeatable, sentAgo: 3 * time.Minute,
			status: func(st *store.Status, rt string) {
				st.LeaseOwner, st.LeaseUntil = "crashed#1", t0.Add(-time.Second)
				st.InFlight, st.InFlightSince = store.Fingerprint(rt), t0.Add(-3*time.Minute)
			},
			want: refresh.Failed, wantState: store.StateNeedsConsent, wantCalls: 1, wantWrites: 1},
		{name: "expired, an older token in flight", preset: strict,
			status: func(st *store.Status, rt string) {
				st.LeaseOwner, st.LeaseUntil = "crashed#1", t0.Add(-time.Second)
				st.InFlight, st.InFlightSince = store.Fingerprint("an older refresh token"), t0.Add(-time.Hour)
			},
			want: refresh.Refreshed, wantState: store.StateOK, wantCalls: 1, wantWrites: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			p := e.provider(true)
			p.repeatWindow = tc.preset.RepeatWindow
			old := e.seed("a", 10*time.Minute)
			rt := old.RefreshToken
			otherWriterStatus(e.t, e.store, "a", func(st *store.Status) { tc.status(st, rt) })
			if tc.sentAgo > 0 {
				// The crashed pass's call: the provider rotated, nobody stored the answer.
				e.clock.Advance(-tc.sentAgo)
				if _, err := p.Refresh(t.Context(), rt); err != nil {
					t.Fatalf("crashed pass's refresh: %v", err)
				}
				e.clock.Advance(tc.sentAgo)
			}
			r := e.refresher("host", conn("a", p, tc.preset))
			rep := e.run(t.Context(), r)
			res := resultOf(t, rep, "a")

			if res.Outcome != tc.want {
				t.Fatalf("got %q; want %q", res.Line(), tc.want)
			}
			if got := p.callsWith(rt); got != tc.wantCalls || p.total() != tc.wantCalls {
				t.Errorf("got %d provider calls (%d with the stored token); want %d", p.total(), got, tc.wantCalls)
			}
			if got := writes(e.store, "a"); got != tc.wantWrites {
				t.Errorf("got %d store writes (%q); want %d", got, callLog(e.store), tc.wantWrites)
			}
			if got := rep.Failed(); got != (tc.want == refresh.Failed) {
				t.Errorf("report failed: %v; want %v", got, tc.want == refresh.Failed)
			}
			_, st := row(e.store, "a")
			if st.State != tc.wantState {
				t.Errorf("got state %q; want %q", st.State, tc.wantState)
			}
			switch tc.want {
			case refresh.Refreshed:
				checkRefreshed(t, e, p, "a", old)
			case refresh.Failed:
				checkPairUnchanged(t, e, "a", old)
				if res.Class != refresh.ClassAmbiguous || !strings.Contains(res.Detail, authorizeURL("a")) {
					t.Errorf("got %q; want class ambiguous and %s named", res.Line(), authorizeURL("a"))
				}
				if st.LeaseOwner != "" {
					t.Errorf("got lease owner %q; want the expired lease cleared", st.LeaseOwner)
				}
			case refresh.InProgress:
				checkPairUnchanged(t, e, "a", old)
			}
		})
	}
}

type runKey struct{}

// TestConcurrentPasses runs 20 passes at once against one table while the provider holds its
// answers: every due connection must be refreshed by exactly one of them.
func TestConcurrentPasses(t *testing.T) {
	const passes = 20
	cases := []struct {
		name       string
		refreshers int
		// listFirst holds every List until all passes have listed, so all of them decide from
		// the same read and race for each lease.
		listFirst bool
	}{
		{"one refresher", 1, false},
		{"one refresher, all list first", 1, true},
		{"two refreshers", 2, false},
		{"two refreshers, all list first", 2, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			gate := make(chan struct{})
			var mu sync.Mutex
			inProvider := map[int]bool{} // passes that called the provider
			finished := map[int]bool{}
			due := map[string]bool{"a": true, "c": true, "e": true}
			provs := map[string]*fakeProvider{}
			old := map[string]store.Tokens{}
			var conns []*connection.Connection
			for _, name := range []string{"a", "b", "c", "d", "e"} {
				expires := 3 * time.Hour
				if due[name] {
					expires = 5 * time.Minute
				}
				old[name] = e.seed(name, expires)
				p := e.provider(true)
				p.setGate(gate)
				p.setDuring(func(ctx context.Context, _ string) {
					mu.Lock()
					defer mu.Unlock()
					inProvider[ctx.Value(runKey{}).(int)] = true
				})
				provs[name] = p
				conns = append(conns, conn(name, p, strict))
			}
			if tc.listFirst {
				var listed atomic.Int32
				all := make(chan struct{})
				e.store.SetHook(func(method storetest.Op, _ string) {
					if method == mList {
						if listed.Add(1) == passes {
							close(all)
						}
						<-all
					}
				})
			}
			var rs []*refresh.Refresher
			for i := range tc.refreshers {
				rs = append(rs, e.refresher(fmt.Sprintf("host-%d", i+1), conns...))
			}

			reports := make([]refresh.Report, passes)
			var wg sync.WaitGroup
			for i := range passes {
				wg.Go(func() {
					reports[i] = e.run(context.WithValue(t.Context(), runKey{}, i), rs[i%len(rs)])
					mu.Lock()
					finished[i] = true
					mu.Unlock()
				})
			}
			// Release the provider once every pass has either finished or is waiting for it.
			guard := time.Now().Add(30 * time.Second)
			for {
				mu.Lock()
				n := len(finished)
				for i := range inProvider {
					if !finished[i] {
						n++
					}
				}
				mu.Unlock()
				if n == passes {
					break
				}
				if time.Now().After(guard) {
					close(gate)
					t.Fatalf("stuck: %d passes finished or waiting for the provider; want %d", n, passes)
				}
				time.Sleep(time.Millisecond)
			}
			close(gate)
			wg.Wait()

			for name, p := range provs {
				outcomes := map[refresh.Outcome]int{}
				for _, rep := range reports {
					outcomes[resultOf(t, rep, name).Outcome]++
				}
				if !due[name] {
					if outcomes[refresh.NotDue] != passes || p.total() != 0 {
						t.Errorf("%s: got outcomes %v, %d provider calls; want all not due, 0", name, outcomes, p.total())
					}
					continue
				}
				if got := p.callsWith(old[name].RefreshToken); got != 1 || p.total() != 1 {
					t.Errorf("%s: got %d provider calls (%d with the stored token); want exactly 1", name, p.total(), got)
				}
				if outcomes[refresh.Refreshed] != 1 || outcomes[refresh.Refreshed]+outcomes[refresh.InProgress]+outcomes[refresh.NotDue] != passes {
					t.Errorf("%s: got outcomes %v; want 1 refreshed, the rest in progress or not due", name, outcomes)
				}
				if got := e.store.Count(mCommit, name); got != 1 {
					t.Errorf("%s: got %d Commit calls; want 1", name, got)
				}
				if got := e.store.Count(mLease, name); tc.listFirst && got != passes {
					t.Errorf("%s: got %d Lease calls; want %d (every pass tried, one won)", name, got, passes)
				}
				checkRefreshed(t, e, p, name, old[name])
			}
			for i, rep := range reports {
				if rep.Failed() {
					t.Errorf("pass %d failed: %q", i, rep.Lines())
				}
			}
		})
	}
}

func TestCommitFailures(t *testing.T) {
	cases := []struct {
		name    string
		faults  int
		err     error
		timeout time.Duration // of the first pass; 0: none
		// cancelAt cancels the first pass's context as its cancelAt-th Commit starts; 0: never.
		cancelAt int
		// want is the first pass's outcome; Failed means the pair is kept for the next pass.
		want        refresh.Outcome
		wantCommits int // exact; 0: at least 1
	}{
		{name: "transient twice", faults: 2, err: errTransient, want: refresh.Refreshed, wantCommits: 3},
		{name: "transient until the pass's deadline", faults: 1 << 20, err: errTransient, timeout: 300 * time.Millisecond, want: refresh.Failed},
		{name: "transient until the pass is cancelled", faults: 1 << 20, err: errTransient, cancelAt: 3, want: refresh.Failed, wantCommits: 3},
		{name: "permanent", faults: 1, err: errPermanent, want: refresh.Failed, wantCommits: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			p := e.provider(true)
			old := e.seed("a", 10*time.Minute)
			r := e.refresher("host", conn("a", p, strict))
			e.store.Inject(tc.faults, storetest.Fault{Op: mCommit, Err: tc.err})

			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tc.timeout > 0 {
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			if tc.cancelAt > 0 {
				var commits atomic.Int32
				e.store.SetHook(func(method storetest.Op, _ string) {
					if method == mCommit && int(commits.Add(1)) == tc.cancelAt {
						cancel()
					}
				})
			}
			rep := e.run(ctx, r)
			e.store.SetHook(nil)
			res := resultOf(t, rep, "a")
			if res.Outcome != tc.want {
				t.Fatalf("got %q; want %q", res.Line(), tc.want)
			}
			commits := e.store.Count(mCommit, "")
			if tc.wantCommits > 0 && commits != tc.wantCommits || commits < 1 {
				t.Errorf("got %d Commit calls; want %d (0: at least 1)", commits, tc.wantCommits)
			}
			if p.total() != 1 {
				t.Errorf("got %d provider calls; want 1", p.total())
			}
			if tc.want == refresh.Refreshed {
				checkRefreshed(t, e, p, "a", old)
				return
			}
			if res.Class != refresh.ClassStorage {
				t.Errorf("got class %q; want storage", res.Class)
			}
			checkPairUnchanged(t, e, "a", old)

			// The next pass writes the kept pair before anything else.
			e.store.ClearFaults()
			e.store.ResetCalls()
			e.clock.Advance(time.Minute)
			rep = e.run(t.Context(), r)
			log := callLog(e.store)
			if len(log) < 3 || log[0] != "Get a" || log[1] != "Commit a" || log[2] != "List" {
				t.Errorf("got store calls %q; want Get a, Commit a, then List", log)
			}
			if res := resultOf(t, rep, "a"); res.Outcome != refresh.NotDue || rep.Failed() {
				t.Errorf("next pass: got %q; want not due (the kept pair is fresh)", res.Line())
			}
			if p.total() != 1 {
				t.Errorf("got %d provider calls in all; want 1", p.total())
			}
			checkRefreshed(t, e, p, "a", old)

			// And only once.
			e.store.ResetCalls()
			e.run(t.Context(), r)
			if got := e.store.Count(mCommit, ""); got != 0 {
				t.Errorf("third pass: got %d Commit calls; want 0", got)
			}
		})
	}
}

func TestCommitConflicts(t *testing.T) {
	cases := []struct {
		name   string
		rotate bool
		// meanwhile runs while the provider answers.
		meanwhile func(e *env)
		// lostCommit makes the first commit land with its answer lost.
		lostCommit bool
		// conflicts is the number of plain conflicts injected into Commit.
		conflicts   int
		want        refresh.Outcome
		wantConsent bool // the consent's pair is what is stored
		wantCommits int
	}{
		{name: "consent meanwhile", rotate: true, meanwhile: func(e *env) {
			e.saveConsent("a")
		}, want: refresh.InProgress, wantConsent: true, wantCommits: 1},
		{name: "consent meanwhile, not rotating", meanwhile: func(e *env) {
			e.saveConsent("a")
		}, want: refresh.InProgress, wantConsent: true, wantCommits: 1},
		{name: "another writer's status meanwhile", rotate: true, meanwhile: func(e *env) {
			otherWriterStatus(e.t, e.store, "a", func(st *store.Status) {
				st.LastFailure, st.LastFailureClass, st.LastFailureMessage = e.clock.Now(), "ambiguous", "recorded by another pass"
			})
		}, want: refresh.Refreshed, wantCommits: 2},
		{name: "injected conflict", rotate: true, conflicts: 1, want: refresh.Refreshed, wantCommits: 2},
		{name: "own commit landed, answer lost", rotate: true, lostCommit: true, want: refresh.Refreshed, wantCommits: 1},
		{name: "own commit landed, answer lost, not rotating", lostCommit: true, want: refresh.Refreshed, wantCommits: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			p := e.provider(tc.rotate)
			if tc.meanwhile != nil {
				p.setDuring(func(context.Context, string) { tc.meanwhile(e) })
			}
			if tc.lostCommit {
				e.store.Inject(1, storetest.Fault{Op: mCommit, Err: errConflict, Applied: true})
			}
			e.store.Inject(tc.conflicts, storetest.Fault{Op: mCommit, Err: errConflict})
			old := e.seed("a", 10*time.Minute)
			r := e.refresher("host", conn("a", p, strict))
			rep := e.run(t.Context(), r)
			res := resultOf(t, rep, "a")
			if res.Outcome != tc.want || rep.Failed() {
				t.Errorf("got %q (report failed: %v); want %q, not failed", res.Line(), rep.Failed(), tc.want)
			}
			if got := e.store.Count(mCommit, ""); got != tc.wantCommits {
				t.Errorf("got %d Commit calls; want %d", got, tc.wantCommits)
			}
			if got := e.store.Count(mGet, ""); got != 1 {
				t.Errorf("got %d Get calls; want 1 (the re-read after the conflict)", got)
			}
			if p.total() != 1 {
				t.Errorf("got %d provider calls; want 1", p.total())
			}
			if !tc.wantConsent {
				checkRefreshed(t, e, p, "a", old)
				return
			}
			tk, st := row(e.store, "a")
			consent := e.consented("a")
			if tk.RefreshToken != consent.RefreshToken || tk.AccessToken != consent.AccessToken {
				t.Errorf("stored refresh token fingerprint %s; want the consent's %s", store.Fingerprint(tk.RefreshToken), store.Fingerprint(consent.RefreshToken))
			}
			if st.Generation != 1 || st.State != store.StateOK {
				t.Errorf("got Generation %d state %q; want the consent's status (1, ok)", st.Generation, st.State)
			}
		})
	}
}

// saveConsent replaces name's rows with a fresh consent's, as the Callback does.
func (e *env) saveConsent(name string) {
	now := e.clock.Now()
	tk := store.Tokens{AccessToken: randomToken(), TokenType: "Bearer", ExpiresAt: now.Add(time.Hour), RefreshToken: randomToken()}
	e.mu.Lock()
	e.seeded = append(e.seeded, tk.AccessToken, tk.RefreshToken)
	if e.consents == nil {
		e.consents = map[string]store.Tokens{}
	}
	e.consents[name] = tk
	e.mu.Unlock()
	if err := e.store.SaveConsent(context.Background(), name, tk, store.Status{State: store.StateOK, ConnectedAt: now, Generation: 1}); err != nil {
		e.t.Errorf("SaveConsent: %v", err)
	}
}

func (e *env) consented(name string) store.Tokens {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.consents[name]
}

// TestStoreErrorsBeforeTheProvider: without a lease nothing is sent.
func TestStoreErrorsBeforeTheProvider(t *testing.T) {
	cases := []struct {
		name       string
		method     storetest.Op
		err        error
		want       refresh.Outcome // "" : the pass could not run (Report.Err)
		wantFailed bool
	}{
		{"List transient", mList, errTransient, "", true},
		{"List permanent", mList, errPermanent, "", true},
		{"Lease conflict", mLease, errConflict, refresh.InProgress, false},
		{"Lease transient", mLease, errTransient, refresh.Failed, true},
		{"Lease permanent", mLease, errPermanent, refresh.Failed, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			p := e.provider(true)
			old := e.seed("a", 10*time.Minute)
			e.store.Inject(1, storetest.Fault{Op: tc.method, Err: tc.err})
			rep := e.run(t.Context(), e.refresher("host", conn("a", p, strict)))

			if got := rep.Failed(); got != tc.wantFailed {
				t.Errorf("report failed: %v (%q); want %v", got, rep.Lines(), tc.wantFailed)
			}
			if tc.want == "" {
				if rep.Err == nil || len(rep.Results) != 0 {
					t.Errorf("got Err set %v and %d results; want Err set and none", rep.Err != nil, len(rep.Results))
				}
			} else if res := resultOf(t, rep, "a"); res.Outcome != tc.want || tc.want == refresh.Failed && res.Class != refresh.ClassStorage {
				t.Errorf("got %q; want %q (storage when failed)", res.Line(), tc.want)
			}
			if p.total() != 0 {
				t.Errorf("got %d provider calls; want 0", p.total())
			}
			if got := e.store.Count(mCommit, "") + e.store.Count(mSetStatus, ""); got != 0 {
				t.Errorf("got %d Commit and SetStatus calls; want 0", got)
			}
			checkPairUnchanged(t, e, "a", old)
		})
	}
}

// TestFailureRecordedAfterProviderTimeout: a provider call that uses up the lease's time budget
// and fails without reaching the provider must still be recorded as transient, or a later
// pass would find the refresh "in flight" and ask for consent.
func TestFailureRecordedAfterProviderTimeout(t *testing.T) {
	e := newEnv(t)
	p := e.provider(true).then(step{err: &tokenclient.Error{Op: "refresh", Class: tokenclient.Transient, Detail: "dial tcp: i/o timeout"}})
	p.setDuring(func(ctx context.Context, _ string) { <-ctx.Done() })
	old := e.seed("a", 10*time.Minute)
	r := e.refresherWith(refresh.Options{Owner: "host", Connections: []*connection.Connection{conn("a", p, strict)},
		LeaseDuration: 50 * time.Millisecond})

	rep := e.run(t.Context(), r)
	if res := resultOf(t, rep, "a"); res.Outcome != refresh.Failed || res.Class != refresh.ClassTransient {
		t.Errorf("got %q; want failed (transient)", res.Line())
	}
	_, st := row(e.store, "a")
	if st.State != store.StateRetrying || st.InFlight != "" || st.LeaseOwner != "" {
		t.Errorf("got state %q, in flight %q, lease %q; want retrying, none, none", st.State, st.InFlight, st.LeaseOwner)
	}

	p.setDuring(nil)
	e.clock.Advance(2 * time.Minute)
	rep = e.run(t.Context(), r)
	if res := resultOf(t, rep, "a"); res.Outcome != refresh.Refreshed {
		t.Errorf("later pass: got %q; want refreshed", res.Line())
	}
	if got := p.callsWith(old.RefreshToken); got != 2 {
		t.Errorf("got %d provider calls with the stored token; want 2", got)
	}
	checkRefreshed(t, e, p, "a", old)
}

// TestNoSecrets feeds the Refresher error texts that quote tokens, as a careless provider or
// store would; the invariant check of newEnv then looks for every token in the report and log.
func TestNoSecrets(t *testing.T) {
	e := newEnv(t)
	var conns []*connection.Connection
	seeds := map[string]store.Tokens{}
	for _, name := range []string{"revoked", "ambiguous", "transient", "repeat", "commit", "ok"} {
		seeds[name] = e.seed(name, 10*time.Minute)
	}
	echo := func(name string, class tokenclient.Class) step {
		return step{issued: class == tokenclient.Ambiguous, err: &tokenclient.Error{Op: "refresh", Class: class,
			Detail: "Refresh token invalid: " + seeds[name].RefreshToken}}
	}
	pRevoked := e.provider(true).then(echo("revoked", tokenclient.Revoked))
	pAmbiguous := e.provider(true).then(echo("ambiguous", tokenclient.Ambiguous))
	pTransient := e.provider(true).then(echo("transient", tokenclient.Transient))
	pRepeat := e.repeatableProvider().then(echo("repeat", tokenclient.Ambiguous))
	pCommit, pOK := e.provider(true), e.provider(false)
	conns = append(conns,
		conn("revoked", pRevoked, strict), conn("ambiguous", pAmbiguous, strict), conn("transient", pTransient, strict),
		conn("repeat", pRepeat, repeatable), conn("commit", pCommit, strict), conn("ok", pOK, strict))
	e.store.Inject(1, storetest.Fault{Op: mCommit, Name: "commit", Err: fmt.Errorf("entity rejected: Value=%s: %w", seeds["commit"].RefreshToken, errPermanent)})
	r := e.refresher("host", conns...)

	rep := e.run(t.Context(), r)
	wantOutcome := map[string]refresh.Outcome{"revoked": refresh.Failed, "ambiguous": refresh.Failed,
		"transient": refresh.Failed, "repeat": refresh.Refreshed, "commit": refresh.Failed, "ok": refresh.Refreshed}
	for name, want := range wantOutcome {
		if got := resultOf(t, rep, name).Outcome; got != want {
			t.Errorf("%s: got %q; want %q", name, resultOf(t, rep, name).Line(), want)
		}
	}

	// Status writes and the table read fail with texts quoting tokens.
	e.clock.Advance(10 * time.Minute)
	pTransient.then(echo("transient", tokenclient.Transient))
	e.store.Inject(10, storetest.Fault{Op: mSetStatus, Name: "transient", Err: fmt.Errorf("status rejected: %s: %w", seeds["transient"].AccessToken, errPermanent)})
	e.store.ResetCalls()
	e.run(t.Context(), r)
	if got := e.store.Count(mSetStatus, "transient"); got != 1 {
		t.Errorf("got %d SetStatus calls for transient; want 1 (failing, quoting a token)", got)
	}
	if got := e.store.Count(mCommit, "commit"); got != 1 {
		t.Errorf("got %d Commit calls for commit; want 1 (the kept pair)", got)
	}
	e.store.Inject(1, storetest.Fault{Op: mList, Err: fmt.Errorf("query failed near %s: %w", seeds["ok"].RefreshToken, errTransient)})
	rep = e.run(t.Context(), r)
	if rep.Err == nil || !rep.Failed() || !store.IsTransient(rep.Err) {
		t.Errorf("got report error set %v, failed %v; want a failed report with a transient table error", rep.Err != nil, rep.Failed())
	}
	if out := e.logs.String(); !strings.Contains(out, "Refresh token invalid") {
		t.Errorf("the log lacks the provider's (redacted) message; the leak check would prove nothing")
	}
}

// TestRefreshDeadlineWarning: a refresh token with a known deadline less than two weeks away is
// warned about on every pass, and the Status row of a refreshed connection carries the warning.
func TestRefreshDeadlineWarning(t *testing.T) {
	e := newEnv(t)
	p := e.provider(false) // a provider that keeps the refresh token, so the deadline stands
	now := e.clock.Now()
	deadline := now.Add(5 * 24 * time.Hour)
	for _, name := range []string{"soon-fresh", "soon-due"} {
		expires := time.Hour
		if name == "soon-due" {
			expires = time.Minute
		}
		tk := store.Tokens{AccessToken: randomToken(), ExpiresAt: now.Add(expires), RefreshToken: randomToken(), RefreshExpiresAt: deadline}
		seed(e.t, e.store, name, tk, store.Status{State: store.StateOK, Generation: generation})
		e.mu.Lock()
		e.seeded = append(e.seeded, tk.AccessToken, tk.RefreshToken)
		e.mu.Unlock()
	}
	r := e.refresher("a", conn("soon-fresh", p, provider.Preset{Name: "test"}), conn("soon-due", p, provider.Preset{Name: "test"}))
	rep := e.run(context.Background(), r)
	want := "expires " + deadline.UTC().Format(time.RFC3339)

	fresh := resultOf(t, rep, "soon-fresh")
	if fresh.Outcome != refresh.NotDue || !strings.Contains(fresh.Line(), want) {
		t.Errorf("not-due line = %q; want not due with %q", fresh.Line(), want)
	}
	due := resultOf(t, rep, "soon-due")
	if due.Outcome != refresh.Refreshed || !strings.Contains(due.Line(), want) {
		t.Errorf("refreshed line = %q; want refreshed with %q", due.Line(), want)
	}
	_, st := row(e.store, "soon-due")
	if !strings.Contains(st.Warning, want) {
		t.Errorf("Status.Warning = %q; want %q", st.Warning, want)
	}
	if rep.Failed() {
		t.Errorf("a deadline warning failed the pass: %q", rep.Lines())
	}
	if !strings.Contains(e.logs.String(), `"level":"warn"`) {
		t.Errorf("no warn-level log line for the deadline")
	}
}
