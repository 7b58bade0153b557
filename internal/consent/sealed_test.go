package consent

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/freshtoken/freshtoken/internal/seal"
	"github.com/freshtoken/freshtoken/internal/store/storetest"
)

// TestCallbackSealedVerifier: with keys the PKCE verifier is sealed at rest, and a pending
// verifier that cannot be opened (its key gone, no keys, a value copied from another pending
// sign-in) ends the callback with a clear page before anything reaches the provider, leaving the
// pending row for a handler that holds the key.
func TestCallbackSealedVerifier(t *testing.T) {
	k1 := storetest.Keyring(t, "k1")
	cases := []struct {
		name   string
		reader *seal.Keyring // the keys of the handler the browser comes back to
		copied bool          // the pending verifier is another pending sign-in's sealed value
	}{
		{name: "key no longer configured", reader: storetest.Keyring(t, "k2")},
		{name: "no keys configured"},
		{name: "copied from another sign-in", reader: k1, copied: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnvOn(t, storetest.NewSealed(k1))
			state, ck := e.start("google", "")
			key, pending := onlyState(t, e.store, "google")
			id, sealed := seal.KeyID(pending.Verifier)
			if !sealed || id != "k1" {
				t.Fatalf("the pending verifier is stored under key id %q (sealed %v); want sealed under k1", id, sealed)
			}
			e.noSecrets("the stored verifier", pending.Verifier)
			if tc.copied {
				e.start("strava", "") // strava has no PKCE: its verifier is the sealed ""
				_, other := onlyState(t, e.store, "strava")
				if err := e.store.SetRawSecret(context.Background(), "google", "AuthState-"+key, other.Verifier); err != nil {
					t.Fatal(err)
				}
			}

			// The handler restarted with tc.reader: a new Handler on the same rows.
			back := newEnvOn(t, e.store.WithKeys(tc.reader))
			resp := back.callback("google", query("state", state, "code", authCode), ck)
			body := readPage(t, resp)
			if resp.StatusCode != http.StatusInternalServerError {
				t.Errorf("status %d; want 500", resp.StatusCode)
			}
			for _, s := range []string{"sealed with an encryption key this app does not hold", "TOKEN_ENCRYPTION_KEYS", "/api/authorize/google"} {
				if !strings.Contains(body, s) {
					t.Errorf("page lacks %q; page:\n%s", s, e.masked(body))
				}
			}
			e.noSecrets("the page", body)
			e.noSecrets("the log", back.logs.String())
			if strings.Contains(body, seal.Prefix) || strings.Contains(back.logs.String(), pending.Verifier) {
				t.Errorf("the page or the log holds the stored value")
			}
			if !strings.Contains(back.logs.String(), `k1`) {
				t.Errorf("the log does not name key id k1:\n%s", e.masked(back.logs.String()))
			}
			if n := back.ex["google"].callCount(); n != 0 {
				t.Errorf("Exchange calls = %d; want 0", n)
			}
			if n := saveCount(back.store); n != 0 {
				t.Errorf("SaveConsent calls = %d; want 0", n)
			}
			if _, ok := back.store.Peek("google"); ok {
				t.Errorf("a connection was stored; want none")
			}
			if n := len(e.store.AuthStates("google")); n != 1 {
				t.Errorf("%d pending authorizations left; want the one that could not be opened", n)
			}
			if tc.copied {
				return
			}
			// The handler that holds the key finishes the same sign-in.
			resp = e.callback("google", query("state", state, "code", authCode), ck)
			if body := readPage(t, resp); resp.StatusCode != http.StatusOK {
				t.Fatalf("with k1: status %d; want 200; page:\n%s", resp.StatusCode, e.masked(body))
			}
			ex := e.ex["google"]
			if len(ex.calls) != 1 || ex.calls[0].verifier == "" || ex.calls[0].verifier != ex.verifiers[0] {
				t.Errorf("with k1: Exchange got the issued verifier: %t; want true", len(ex.calls) == 1 && ex.calls[0].verifier == ex.verifiers[0])
			}
		})
	}
}
