package refresh_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/connection"
	"github.com/freshtoken/freshtoken/internal/refresh"
	"github.com/freshtoken/freshtoken/internal/seal"
	"github.com/freshtoken/freshtoken/internal/store"
	"github.com/freshtoken/freshtoken/internal/store/storetest"
	"github.com/freshtoken/freshtoken/internal/tokenclient"
)

// sealAs overwrites name's stored refresh token with plain sealed under keys for the binding of
// row (name, or another connection's to play a copied value), as a handler with those keys
// would have written it.
func sealAs(t *testing.T, s *storetest.Memory, keys *seal.Keyring, name, bindTo, plain string) string {
	t.Helper()
	v, err := keys.Seal(plain, store.Binding(store.DefaultTable, bindTo, store.RowRefreshToken, "Value"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetRawSecret(context.Background(), name, store.RowRefreshToken, v); err != nil {
		t.Fatalf("set raw secret of %s: %v", name, err)
	}
	return v
}

func rawRT(t *testing.T, s *storetest.Memory, name string) string {
	t.Helper()
	v, err := s.RawSecret(context.Background(), name, store.RowRefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func peek(t *testing.T, s *storetest.Memory, name string) *store.Record {
	t.Helper()
	r, ok := s.Peek(name)
	if !ok {
		t.Fatalf("%s has no rows", name)
	}
	return r
}

// TestSecretUnreadable: a sealed refresh token that cannot be opened fails that connection with
// class secret, naming the key id; nothing reaches the provider and its rows are unchanged, while
// the other connections refresh.
func TestSecretUnreadable(t *testing.T) {
	cases := []struct {
		name   string
		writer []string // keys the victim's token was sealed with
		reader []string // keys of the pass; nil: none configured
		// spoil changes the victim's stored value after it was sealed; nil: none.
		spoil func(t *testing.T, e *env, keys *seal.Keyring, plain string)
		kid   string // the key id the message must name
	}{
		{name: "unknown key id", writer: []string{"old"}, reader: []string{"new"}, kid: "old"},
		{name: "no keys configured", writer: []string{"k1"}, kid: "k1"},
		{name: "another key under the same id", writer: []string{"k1"}, reader: []string{"k1/2"}, kid: "k1"},
		{name: "tampered", writer: []string{"k1"}, reader: []string{"k1"}, kid: "k1",
			spoil: func(t *testing.T, e *env, _ *seal.Keyring, _ string) {
				v := []byte(rawRT(t, e.store, "victim"))
				i := len(seal.Prefix + "k1:")
				if v[i] == 'A' { // a character of the nonce: the value stays well formed
					v[i] = 'B'
				} else {
					v[i] = 'A'
				}
				if err := e.store.SetRawSecret(context.Background(), "victim", store.RowRefreshToken, string(v)); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "copied from another connection", writer: []string{"k1"}, reader: []string{"k1"}, kid: "k1",
			spoil: func(t *testing.T, e *env, _ *seal.Keyring, _ string) {
				// healthy's sealed value, verbatim, in victim's row.
				if err := e.store.SetRawSecret(context.Background(), "victim", store.RowRefreshToken, rawRT(t, e.store, "healthy")); err != nil {
					t.Fatal(err)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			var readerKeys *seal.Keyring
			if tc.reader != nil {
				readerKeys = storetest.Keyring(t, tc.reader...)
			}
			writerKeys := storetest.Keyring(t, tc.writer...)
			e.store = storetest.NewSealed(readerKeys)
			victimProv, healthyProv := e.provider(true), e.provider(true)
			victim := e.seed("victim", time.Minute)
			healthy := e.seed("healthy", time.Minute)
			sealAs(t, e.store, writerKeys, "victim", "victim", victim.RefreshToken)
			// healthy is sealed as this pass's keys seal (plain text without keys).
			if readerKeys != nil {
				sealAs(t, e.store, readerKeys, "healthy", "healthy", healthy.RefreshToken)
			}
			if tc.spoil != nil {
				tc.spoil(t, e, writerKeys, victim.RefreshToken)
			}
			before, raw := peek(t, e.store, "victim"), rawRT(t, e.store, "victim")
			if before.SecretErr == nil {
				t.Fatalf("the victim's token opens with the pass's keys; the case sets nothing up")
			}

			r := e.refresher("host", conn("victim", victimProv, strict), conn("healthy", healthyProv, strict))
			rep := e.run(t.Context(), r)

			res := resultOf(t, rep, "victim")
			if res.Outcome != refresh.Failed || res.Class != refresh.ClassSecret {
				t.Errorf("victim: got %q (class %q); want failed, class %q", res.Line(), res.Class, refresh.ClassSecret)
			}
			if !strings.Contains(res.Detail, `"`+tc.kid+`"`) {
				t.Errorf("victim: detail %q; want it to name key id %q", res.Detail, tc.kid)
			}
			if strings.Contains(res.Line(), raw) || strings.Contains(res.Detail, seal.Prefix) {
				t.Errorf("victim: the result holds the stored value")
			}
			if !rep.Failed() {
				t.Errorf("the report does not fail; want it to, for the victim")
			}
			if n := victimProv.total(); n != 0 {
				t.Errorf("victim: got %d provider calls; want 0", n)
			}
			if n := writes(e.store, "victim"); n != 0 {
				t.Errorf("victim: got %d writes; want none", n)
			}
			after := peek(t, e.store, "victim")
			if after.ETags != before.ETags || rawRT(t, e.store, "victim") != raw {
				t.Errorf("victim: ETags %+v; want them unchanged (%+v), the stored value too", after.ETags, before.ETags)
			}

			if res := resultOf(t, rep, "healthy"); res.Outcome != refresh.Refreshed {
				t.Errorf("healthy: got %q; want refreshed", res.Line())
			}
			checkRefreshed(t, e, healthyProv, "healthy", healthy)
			if healthyProv.callsWith(healthy.RefreshToken) != 1 {
				t.Errorf("healthy: the provider got %d calls with the plain stored token; want 1", healthyProv.callsWith(healthy.RefreshToken))
			}
			if id, sealed := seal.KeyID(rawRT(t, e.store, "healthy")); sealed != (readerKeys != nil) || id != readerKeys.Primary() {
				t.Errorf("healthy: stored under key id %q (sealed %v); want %q", id, sealed, readerKeys.Primary())
			}
		})
	}
}

// TestSecretSealedRefresh: with keys the provider gets the plain token, the in-flight marker is
// the plain token's fingerprint, and every write seals under the first key.
func TestSecretSealedRefresh(t *testing.T) {
	e := newEnv(t)
	e.store = storetest.NewSealed(storetest.Keyring(t, "k1"))
	p := e.provider(true)
	old := e.seed("a", time.Minute)
	sealAs(t, e.store, storetest.Keyring(t, "k1"), "a", "a", old.RefreshToken)
	var marker string
	p.setDuring(func(context.Context, string) { marker = peek(t, e.store, "a").Status.InFlight })

	// The handler restarted with a new key put first.
	e.store = e.store.WithKeys(storetest.Keyring(t, "k2", "k1"))
	rep := e.run(t.Context(), e.refresher("host", conn("a", p, strict)))
	if res := resultOf(t, rep, "a"); res.Outcome != refresh.Refreshed {
		t.Fatalf("got %q; want refreshed", res.Line())
	}
	if p.callsWith(old.RefreshToken) != 1 || p.total() != 1 {
		t.Errorf("got %d provider calls, %d with the plain token; want 1, 1", p.total(), p.callsWith(old.RefreshToken))
	}
	if want := store.Fingerprint(old.RefreshToken); marker != want {
		t.Errorf("InFlight during the call %q; want the plain token's fingerprint %q", marker, want)
	}
	checkRefreshed(t, e, p, "a", old)
	ans, _ := p.answerFor(old.RefreshToken)
	raw := rawRT(t, e.store, "a")
	if id, _ := seal.KeyID(raw); id != "k2" || strings.Contains(raw, ans.RefreshToken) {
		t.Errorf("stored under key id %q; want k2, without the plain token", id)
	}
}

// setRT overwrites name's stored refresh token with raw, as another writer would.
func setRT(t *testing.T, e *env, name, raw string) {
	t.Helper()
	if err := e.store.SetRawSecret(context.Background(), name, store.RowRefreshToken, raw); err != nil {
		t.Error(err)
	}
}

// TestSecretReReads: the re-reads after a conflict, of a kept pair and before a repeat do not take
// an unreadable refresh token for a newer pair.
func TestSecretReReads(t *testing.T) {
	keys := storetest.Keyring(t, "k1")
	foreign := storetest.Keyring(t, "x9")

	t.Run("commit conflict", func(t *testing.T) {
		e := newEnv(t)
		e.store = storetest.NewSealed(keys)
		p := e.provider(true)
		old := e.seed("a", time.Minute)
		good := sealAs(t, e.store, keys, "a", "a", old.RefreshToken)
		var spoiled string
		p.setDuring(func(context.Context, string) { spoiled = sealAs(t, e.store, foreign, "a", "a", old.RefreshToken) })
		// A short lease bounds the pass's retries of the conflicting commit.
		r := e.refresherWith(refresh.Options{Owner: "host", Connections: []*connection.Connection{conn("a", p, strict)}, LeaseDuration: time.Second})
		rep := e.run(t.Context(), r)
		res := resultOf(t, rep, "a")
		if res.Outcome != refresh.Failed || res.Class != refresh.ClassStorage || !strings.Contains(res.Detail, "kept in memory") {
			t.Fatalf("got %q; want failed, class storage, the pair kept in memory (not dropped as superseded)", res.Line())
		}
		if got := rawRT(t, e.store, "a"); got != spoiled {
			t.Errorf("the unreadable value was overwritten; want it left as it is")
		}

		// Once the value opens again and is still the token that was sent, the kept pair is
		// written first, and the provider is not asked again.
		setRT(t, e, "a", good)
		e.clock.Advance(time.Minute)
		e.store.ResetCalls()
		rep = e.run(t.Context(), r)
		if log := callLog(e.store); len(log) < 2 || log[0] != "Get a" || log[1] != "Commit a" {
			t.Errorf("got store calls %q; want Get a, Commit a first", log)
		}
		if p.total() != 1 {
			t.Errorf("got %d provider calls; want 1", p.total())
		}
		checkRefreshed(t, e, p, "a", old)
	})

	t.Run("kept pair", func(t *testing.T) {
		e := newEnv(t)
		e.store = storetest.NewSealed(keys)
		p := e.provider(true)
		old := e.seed("a", time.Minute)
		good := sealAs(t, e.store, keys, "a", "a", old.RefreshToken)
		r := e.refresherWith(refresh.Options{Owner: "host", Connections: []*connection.Connection{conn("a", p, strict)}, LeaseDuration: time.Second})
		e.store.Inject(-1, storetest.Fault{Op: mCommit, Err: errTransient})
		if res := resultOf(t, e.run(t.Context(), r), "a"); res.Outcome != refresh.Failed || res.Class != refresh.ClassStorage {
			t.Fatalf("first pass: got %q; want failed, class storage", res.Line())
		}
		e.store.ClearFaults()

		spoiled := sealAs(t, e.store, foreign, "a", "a", old.RefreshToken)
		e.clock.Advance(time.Minute)
		e.store.ResetCalls()
		rep := e.run(t.Context(), r)
		if got := e.store.Count(mCommit, ""); got != 0 {
			t.Errorf("second pass: got %d Commit calls over the unreadable value; want 0", got)
		}
		if res := resultOf(t, rep, "a"); res.Class != refresh.ClassSecret || !strings.Contains(res.Detail, `"x9"`) {
			t.Errorf("second pass: got %q; want class secret naming x9", res.Line())
		}
		if got := rawRT(t, e.store, "a"); got != spoiled || p.total() != 1 {
			t.Errorf("second pass: the value changed or the provider was asked again (%d calls); want neither", p.total())
		}

		// Not dropped: once the token opens again, the kept pair is written.
		setRT(t, e, "a", good)
		e.clock.Advance(time.Minute)
		e.store.ResetCalls()
		rep = e.run(t.Context(), r)
		if log := callLog(e.store); len(log) < 2 || log[0] != "Get a" || log[1] != "Commit a" {
			t.Errorf("third pass: got store calls %q; want Get a, Commit a first", log)
		}
		if p.total() != 1 {
			t.Errorf("got %d provider calls in all; want 1", p.total())
		}
		checkRefreshed(t, e, p, "a", old)
	})

	t.Run("repeat", func(t *testing.T) {
		e := newEnv(t)
		e.store = storetest.NewSealed(keys)
		p := e.repeatableProvider().then(step{issued: true, err: &tokenclient.Error{Op: "refresh", Class: tokenclient.Ambiguous,
			Detail: "context deadline exceeded"}})
		old := e.seed("a", time.Minute)
		sealAs(t, e.store, keys, "a", "a", old.RefreshToken)
		var spoiled string
		first := true
		p.setDuring(func(context.Context, string) {
			if first {
				first = false
				spoiled = sealAs(t, e.store, foreign, "a", "a", old.RefreshToken)
			}
		})
		rep := e.run(t.Context(), e.refresher("host", conn("a", p, repeatable)))
		res := resultOf(t, rep, "a")
		if res.Outcome != refresh.Failed || res.Class != refresh.ClassAmbiguous || !strings.Contains(res.Detail, "could not be re-read") {
			t.Errorf("got %q; want failed, ambiguous, the table could not be re-read (not another pass's newer pair)", res.Line())
		}
		if p.total() != 1 {
			t.Errorf("got %d provider calls; want 1 (no repeat without the stored token)", p.total())
		}
		if got := rawRT(t, e.store, "a"); got != spoiled {
			t.Errorf("the unreadable value was overwritten; want it left as it is")
		}
	})
}
