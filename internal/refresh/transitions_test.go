package refresh_test

// One test per line of the state table in the package doc (doc.go), named
// TestTransition<From><Event>. Each checks the state it ends in and exactly the rows written.

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/connection"
	"github.com/freshtoken/freshtoken/internal/refresh"
	"github.com/freshtoken/freshtoken/internal/store"
	"github.com/freshtoken/freshtoken/internal/store/storetest"
	"github.com/freshtoken/freshtoken/internal/tokenclient"
)

// passOnce runs one pass of a Refresher for connection a on provider p and returns a's result.
func passOnce(t *testing.T, e *env, p *fakeProvider, preset func() refresh.Options) refresh.Result {
	t.Helper()
	o := preset()
	r := e.refresherWith(o)
	return resultOf(t, e.run(t.Context(), r), "a")
}

func strictPass(p *fakeProvider) func() refresh.Options {
	return func() refresh.Options {
		return refresh.Options{Owner: "host", Connections: []*connection.Connection{conn("a", p, strict)}}
	}
}

func repeatablePass(p *fakeProvider) func() refresh.Options {
	return func() refresh.Options {
		return refresh.Options{Owner: "host", Connections: []*connection.Connection{conn("a", p, repeatable)}}
	}
}

// wrote checks the store calls of a pass that wrote rows for a: the ops in order, after List.
func wrote(t *testing.T, e *env, want ...storetest.Op) {
	t.Helper()
	var got []string
	for _, c := range e.store.Calls() {
		if c.Op != mList && c.Op != mGet && c.Err == nil {
			got = append(got, string(c.Op))
		}
	}
	var w []string
	for _, op := range want {
		w = append(w, string(op))
	}
	if strings.Join(got, ",") != strings.Join(w, ",") {
		t.Errorf("got writes %q; want %q", got, w)
	}
}

func wantState(t *testing.T, e *env, state store.State) store.Status {
	t.Helper()
	_, st := row(e.store, "a")
	if st.State != state {
		t.Errorf("got state %q; want %q", st.State, state)
	}
	return st
}

func TestTransitionOKNotDue(t *testing.T) {
	e := newEnv(t)
	p := e.provider(true)
	old := e.seed("a", 2*time.Hour)
	if res := passOnce(t, e, p, strictPass(p)); res.Outcome != refresh.NotDue {
		t.Fatalf("got %q; want not due", res.Line())
	}
	wrote(t, e)
	wantState(t, e, store.StateOK)
	checkPairUnchanged(t, e, "a", old)
	if p.total() != 0 {
		t.Errorf("got %d provider calls; want 0", p.total())
	}
}

func TestTransitionOKDueLeaseWon(t *testing.T) {
	e := newEnv(t)
	p := e.provider(true)
	old := e.seed("a", 10*time.Minute)
	// While the refresh token is at the provider, the Status row holds the lease and the
	// in-flight fingerprint of the token sent.
	var during store.Status
	p.setDuring(func(context.Context, string) { _, during = row(e.store, "a") })
	if res := passOnce(t, e, p, strictPass(p)); res.Outcome != refresh.Refreshed {
		t.Fatalf("got %q; want refreshed", res.Line())
	}
	if !strings.HasPrefix(during.LeaseOwner, "host#") || !during.LeaseUntil.After(t0) {
		t.Errorf("during the call: lease %q until %v; want this pass's, ahead", during.LeaseOwner, during.LeaseUntil)
	}
	if during.InFlight != store.Fingerprint(old.RefreshToken) || !during.InFlightSince.Equal(t0) {
		t.Errorf("during the call: InFlight %q since %v; want the sent token's fingerprint since now", during.InFlight, during.InFlightSince)
	}
}

func TestTransitionLeasedAnswer(t *testing.T) {
	e := newEnv(t)
	p := e.provider(true)
	old := e.seed("a", 10*time.Minute)
	if res := passOnce(t, e, p, strictPass(p)); res.Outcome != refresh.Refreshed {
		t.Fatalf("got %q; want refreshed", res.Line())
	}
	wrote(t, e, mLease, mCommit)
	checkRefreshed(t, e, p, "a", old) // state ok, lease and InFlight cleared, Generation+1
}

func TestTransitionRetryingDueLeaseWon(t *testing.T) {
	e := newEnv(t)
	p := e.provider(true)
	old := e.seed("a", 10*time.Minute, func(st *store.Status) {
		st.State, st.ConsecutiveFailures, st.NextAttempt = store.StateRetrying, 2, t0.Add(-time.Second)
		st.LastFailureClass, st.LastFailureMessage = "transient", "HTTP 503"
	})
	if res := passOnce(t, e, p, strictPass(p)); res.Outcome != refresh.Refreshed {
		t.Fatalf("got %q; want refreshed", res.Line())
	}
	wrote(t, e, mLease, mCommit)
	checkRefreshed(t, e, p, "a", old)
}

func TestTransitionRetryingNotYetNextAttempt(t *testing.T) {
	e := newEnv(t)
	p := e.provider(true)
	old := e.seed("a", 10*time.Minute, func(st *store.Status) {
		st.State, st.ConsecutiveFailures, st.NextAttempt = store.StateRetrying, 1, t0.Add(time.Minute)
		st.LastFailureClass, st.LastFailureMessage = "transient", "HTTP 503"
	})
	res := passOnce(t, e, p, strictPass(p))
	if res.Outcome != refresh.Failed || res.Class != refresh.ClassTransient {
		t.Fatalf("got %q; want failed (transient) until the next attempt", res.Line())
	}
	wrote(t, e)
	wantState(t, e, store.StateRetrying)
	checkPairUnchanged(t, e, "a", old)
	if p.total() != 0 {
		t.Errorf("got %d provider calls; want 0", p.total())
	}
}

func TestTransitionAnyDueLeaseLost(t *testing.T) {
	t.Run("a conflicting lease write", func(t *testing.T) {
		e := newEnv(t)
		p := e.provider(true)
		old := e.seed("a", 10*time.Minute)
		e.store.Inject(1, storetest.Fault{Op: mLease, Err: errConflict})
		if res := passOnce(t, e, p, strictPass(p)); res.Outcome != refresh.InProgress {
			t.Fatalf("got %q; want in progress elsewhere", res.Line())
		}
		wrote(t, e)
		checkPairUnchanged(t, e, "a", old)
		if p.total() != 0 {
			t.Errorf("got %d provider calls; want 0", p.total())
		}
	})
	t.Run("a lease held by another pass", func(t *testing.T) {
		e := newEnv(t)
		p := e.provider(true)
		old := e.seed("a", 10*time.Minute, func(st *store.Status) {
			st.LeaseOwner, st.LeaseUntil = "other#1", t0.Add(time.Minute)
		})
		if res := passOnce(t, e, p, strictPass(p)); res.Outcome != refresh.InProgress {
			t.Fatalf("got %q; want in progress elsewhere", res.Line())
		}
		wrote(t, e)
		checkPairUnchanged(t, e, "a", old)
		if p.total() != 0 {
			t.Errorf("got %d provider calls; want 0", p.total())
		}
	})
}

func TestTransitionLeasedRevoked(t *testing.T) {
	e := newEnv(t)
	p := e.provider(true).then(step{err: &tokenclient.Error{Op: "refresh", Class: tokenclient.Revoked,
		StatusCode: http.StatusBadRequest, Code: "invalid_grant"}})
	old := e.seed("a", 10*time.Minute)
	res := passOnce(t, e, p, strictPass(p))
	if res.Outcome != refresh.Failed || res.Class != refresh.ClassRevoked {
		t.Fatalf("got %q; want failed (revoked)", res.Line())
	}
	wrote(t, e, mLease, mSetStatus)
	st := wantState(t, e, store.StateNeedsConsent)
	if st.LeaseOwner != "" || st.InFlight != "" {
		t.Errorf("lease %q, InFlight %q; want both cleared", st.LeaseOwner, st.InFlight)
	}
	checkPairUnchanged(t, e, "a", old)
}

func TestTransitionLeasedTransient(t *testing.T) {
	e := newEnv(t)
	p := e.provider(true).then(step{err: &tokenclient.Error{Op: "refresh", Class: tokenclient.Transient,
		StatusCode: http.StatusTooManyRequests, RetryAfter: 10 * time.Minute}})
	old := e.seed("a", 20*time.Minute)
	res := passOnce(t, e, p, strictPass(p))
	if res.Outcome != refresh.Failed || res.Class != refresh.ClassTransient {
		t.Fatalf("got %q; want failed (transient)", res.Line())
	}
	wrote(t, e, mLease, mSetStatus)
	st := wantState(t, e, store.StateRetrying)
	if st.NextAttempt.Before(t0.Add(10*time.Minute)) || st.LeaseOwner != "" || st.InFlight != "" {
		t.Errorf("NextAttempt %v, lease %q, InFlight %q; want at least Retry-After ahead, both cleared", st.NextAttempt, st.LeaseOwner, st.InFlight)
	}
	checkPairUnchanged(t, e, "a", old)
}

func ambiguous(issued bool) step {
	return step{issued: issued, err: &tokenclient.Error{Op: "refresh", Class: tokenclient.Ambiguous, Detail: "connection reset after the request was sent"}}
}

func TestTransitionLeasedAmbiguousInsideRepeatWindow(t *testing.T) {
	e := newEnv(t)
	p := e.repeatableProvider().then(ambiguous(true))
	old := e.seed("a", 10*time.Minute)
	if res := passOnce(t, e, p, repeatablePass(p)); res.Outcome != refresh.Refreshed {
		t.Fatalf("got %q; want refreshed by an identical repeat", res.Line())
	}
	if got := p.callsWith(old.RefreshToken); got != 2 || p.total() != 2 {
		t.Errorf("got %d calls (%d with the stored token); want 2, both with it", p.total(), got)
	}
	wrote(t, e, mLease, mLease, mCommit)
	checkRefreshed(t, e, p, "a", old)
}

func TestTransitionLeasedAmbiguousRepeatUnanswered(t *testing.T) {
	e := newEnv(t)
	p := e.repeatableProvider().then(ambiguous(true), ambiguous(false))
	old := e.seed("a", 10*time.Minute)
	res := passOnce(t, e, p, repeatablePass(p))
	if res.Outcome != refresh.Failed || res.Class != refresh.ClassAmbiguous {
		t.Fatalf("got %q; want failed (ambiguous)", res.Line())
	}
	wrote(t, e, mLease, mLease, mSetStatus)
	st := wantState(t, e, store.StateRetrying)
	if st.InFlight != store.Fingerprint(old.RefreshToken) || st.NextAttempt.After(t0) {
		t.Errorf("InFlight %q, NextAttempt %v; want the sent token kept in flight, next attempt now", st.InFlight, st.NextAttempt)
	}
	checkPairUnchanged(t, e, "a", old)
}

func TestTransitionLeasedAmbiguousNoRepeatWindow(t *testing.T) {
	e := newEnv(t)
	p := e.provider(true).then(ambiguous(true))
	old := e.seed("a", 10*time.Minute)
	res := passOnce(t, e, p, strictPass(p))
	if res.Outcome != refresh.Failed || res.Class != refresh.ClassAmbiguous || !strings.Contains(res.Detail, "lost in flight") {
		t.Fatalf("got %q; want failed (ambiguous), lost in flight", res.Line())
	}
	if p.total() != 1 {
		t.Errorf("got %d provider calls; want 1: the token is never resent", p.total())
	}
	wrote(t, e, mLease, mSetStatus)
	st := wantState(t, e, store.StateNeedsConsent)
	if st.InFlight != store.Fingerprint(old.RefreshToken) {
		t.Errorf("InFlight %q; want the sent token's fingerprint kept", st.InFlight)
	}
	checkPairUnchanged(t, e, "a", old)
}

func TestTransitionLeasedCommitFailing(t *testing.T) {
	e := newEnv(t)
	p := e.provider(true)
	old := e.seed("a", 10*time.Minute)
	e.store.Inject(-1, storetest.Fault{Op: mCommit, Err: errTransient})
	r := e.refresherWith(strictPass(p)())
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	res := resultOf(t, e.run(ctx, r), "a")
	if res.Outcome != refresh.Failed || res.Class != refresh.ClassStorage {
		t.Fatalf("got %q; want failed (storage): the pair is held in memory", res.Line())
	}
	checkPairUnchanged(t, e, "a", old)

	// TestTransitionPendingPairNextPass's half: the same process writes it first next time.
	e.store.ClearFaults()
	e.store.ResetCalls()
	res = resultOf(t, e.run(t.Context(), r), "a")
	if res.Outcome != refresh.NotDue {
		t.Errorf("next pass: got %q; want not due, the held pair stored", res.Line())
	}
	checkRefreshed(t, e, p, "a", old)
}

func TestTransitionPendingPairNextPass(t *testing.T) {
	t.Run("stored when nothing newer is", TestTransitionLeasedCommitFailing)
	t.Run("dropped when a consent stored a newer pair", func(t *testing.T) {
		e := newEnv(t)
		p := e.provider(true)
		e.seed("a", 10*time.Minute)
		e.store.Inject(-1, storetest.Fault{Op: mCommit, Err: errTransient})
		r := e.refresherWith(strictPass(p)())
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		e.run(ctx, r)
		e.store.ClearFaults()
		e.saveConsent("a")
		e.store.ResetCalls()
		e.run(t.Context(), r)
		if got := e.store.Count(mCommit, ""); got != 0 {
			t.Errorf("got %d Commit calls; want 0: the held pair must not replace the consent's", got)
		}
		if tk, _ := row(e.store, "a"); tk.RefreshToken != e.consented("a").RefreshToken {
			t.Errorf("the stored pair is not the consent's")
		}
	})
}

func TestTransitionLeasedNewerPairStored(t *testing.T) {
	e := newEnv(t)
	p := e.provider(true)
	e.seed("a", 10*time.Minute)
	p.setDuring(func(context.Context, string) { e.saveConsent("a") })
	res := passOnce(t, e, p, strictPass(p))
	if res.Outcome != refresh.InProgress || !strings.Contains(res.Detail, "newer pair") {
		t.Fatalf("got %q; want in progress: a newer pair was stored", res.Line())
	}
	tk, st := row(e.store, "a")
	if tk.RefreshToken != e.consented("a").RefreshToken || st.Generation != 1 {
		t.Errorf("the stored pair is not the consent's (Generation %d)", st.Generation)
	}
}

func TestTransitionLeasedCrash(t *testing.T) {
	// A process that dies after the provider answered writes nothing more: every write after
	// the lease is lost with it. What it leaves is the lease and the in-flight marker.
	e := newEnv(t)
	p := e.provider(true)
	old := e.seed("a", 10*time.Minute)
	p.setDuring(func(context.Context, string) {
		e.store.Inject(-1, storetest.Fault{Op: mCommit, Err: errPermanent})
		e.store.Inject(-1, storetest.Fault{Op: mSetStatus, Err: errPermanent})
	})
	passOnce(t, e, p, strictPass(p))
	_, st := row(e.store, "a")
	if st.InFlight != store.Fingerprint(old.RefreshToken) || st.LeaseOwner == "" {
		t.Errorf("left InFlight %q, lease %q; want the sent token in flight under the lease", st.InFlight, st.LeaseOwner)
	}
	checkPairUnchanged(t, e, "a", old)
}

// inFlight seeds a connection that a crashed pass left in flight sentAgo, its lease expired.
func inFlight(e *env, p *fakeProvider, sentAgo time.Duration) store.Tokens {
	old := e.seed("a", 10*time.Minute, func(st *store.Status) {
		st.LeaseOwner, st.LeaseUntil = "crashed#1", t0.Add(-time.Second)
		st.InFlightSince = t0.Add(-sentAgo)
	})
	otherWriterStatus(e.t, e.store, "a", func(st *store.Status) { st.InFlight = store.Fingerprint(old.RefreshToken) })
	e.clock.Advance(-sentAgo)
	if _, err := p.Refresh(context.Background(), old.RefreshToken); err != nil {
		e.t.Fatalf("the crashed pass's refresh: %v", err)
	}
	e.clock.Advance(sentAgo)
	e.store.ResetCalls()
	return old
}

func TestTransitionInFlightLeaseExpiryInsideRepeatWindow(t *testing.T) {
	e := newEnv(t)
	p := e.repeatableProvider()
	old := inFlight(e, p, 90*time.Second)
	if res := passOnce(t, e, p, repeatablePass(p)); res.Outcome != refresh.Refreshed {
		t.Fatalf("got %q; want refreshed by the identical repeat", res.Line())
	}
	wrote(t, e, mLease, mCommit)
	checkRefreshed(t, e, p, "a", old)
}

func TestTransitionInFlightLeaseExpiryWindowClosed(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    func(e *env) *fakeProvider
		pass func(p *fakeProvider) func() refresh.Options
	}{
		{"no repeat window", func(e *env) *fakeProvider { return e.provider(true) }, strictPass},
		{"past the repeat window", func(e *env) *fakeProvider { return e.repeatableProvider() }, repeatablePass},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			p := tc.p(e)
			old := inFlight(e, p, 3*time.Minute)
			res := passOnce(t, e, p, tc.pass(p))
			if res.Outcome != refresh.Failed || res.Class != refresh.ClassAmbiguous {
				t.Fatalf("got %q; want failed (ambiguous)", res.Line())
			}
			if p.total() != 1 {
				t.Errorf("got %d provider calls; want only the crashed pass's", p.total())
			}
			wrote(t, e, mSetStatus)
			st := wantState(t, e, store.StateNeedsConsent)
			if st.InFlight == "" || st.LeaseOwner != "" {
				t.Errorf("InFlight %q, lease %q; want InFlight kept and the expired lease cleared", st.InFlight, st.LeaseOwner)
			}
			checkPairUnchanged(t, e, "a", old)
		})
	}
}

func TestTransitionNeedsConsentAnyPass(t *testing.T) {
	e := newEnv(t)
	p := e.provider(true)
	old := e.seed("a", 10*time.Minute, func(st *store.Status) {
		st.State, st.LastFailureClass, st.LastFailureMessage = store.StateNeedsConsent, "revoked", "invalid_grant"
	})
	res := passOnce(t, e, p, strictPass(p))
	if res.Outcome != refresh.Failed || !strings.Contains(res.Detail, authorizeURL("a")) {
		t.Fatalf("got %q; want failed with the Authorize URL", res.Line())
	}
	wrote(t, e)
	wantState(t, e, store.StateNeedsConsent)
	checkPairUnchanged(t, e, "a", old)
	if p.total() != 0 {
		t.Errorf("got %d provider calls; want 0", p.total())
	}
}

func TestTransitionAnyConsent(t *testing.T) {
	e := newEnv(t)
	p := e.provider(true)
	e.seed("a", 10*time.Minute, func(st *store.Status) {
		st.State, st.LeaseOwner, st.LeaseUntil = store.StateNeedsConsent, "other#1", t0.Add(time.Minute)
	})
	e.saveConsent("a")
	st := wantState(t, e, store.StateOK)
	if st.LeaseOwner != "" {
		t.Errorf("lease %q; want the consent's fresh status", st.LeaseOwner)
	}
	if res := passOnce(t, e, p, strictPass(p)); res.Outcome != refresh.NotDue {
		t.Errorf("after the consent: got %q; want not due", res.Line())
	}
}
