package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/freshtoken/freshtoken/internal/seal"
)

// keyring parses "id=byte,..." into a Keyring whose key id is id and whose key is 32 times byte.
func keyring(t *testing.T, spec string) *seal.Keyring {
	t.Helper()
	var entries []string
	for _, e := range strings.Split(spec, ",") {
		id, b, _ := strings.Cut(e, "=")
		entries = append(entries, id+":"+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte(b), 32)))
	}
	k, err := seal.Parse("TOKEN_ENCRYPTION_KEYS", strings.Join(entries, ","), nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newTableName(t *testing.T) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "t" + hex.EncodeToString(b[:])
}

// openStore opens a Store with keys on table of the shared Azurite; stores opened on the same
// table with different keys play a handler restarted with another TOKEN_ENCRYPTION_KEYS.
func openStore(t *testing.T, table string, keys *seal.Keyring) *Store {
	t.Helper()
	s, err := Open(context.Background(), Options{
		ConnectionString: azurite(t).ConnectionString(),
		Table:            table,
		HTTPClient:       &http.Client{Timeout: 30 * time.Second},
		Now:              func() time.Time { return testNow },
		Keys:             keys,
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// rawValue is a row's property as stored.
func rawValue(t *testing.T, s *Store, pk, rk, prop string) string {
	t.Helper()
	v, _ := rawRow(t, s, pk, rk)[prop].(string)
	return v
}

// setRaw overwrites one string property of a row, bypassing the Store.
func setRaw(t *testing.T, s *Store, pk, rk, prop, value string) {
	t.Helper()
	body, err := encodeEntity(pk, rk, map[string]any{prop: value})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.client.UpsertEntity(context.Background(), body, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeMerge}); err != nil {
		t.Fatalf("overwrite %s/%s: %v", pk, rk, classify(err))
	}
}

func TestSealedAtRest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t, newTableName(t), keyring(t, "k1=a"))
	tok := testTokens("sealed")
	if err := s.SaveConsent(ctx, "strava", tok, fullStatus()); err != nil {
		t.Fatal(err)
	}
	check := func(when string, want Tokens) {
		t.Helper()
		rt := rawValue(t, s, "strava", RowRefreshToken, "Value")
		if id, sealed := seal.KeyID(rt); !sealed || id != "k1" || strings.Contains(rt, want.RefreshToken) {
			t.Errorf("%s: stored RefreshToken.Value is sealed %v under %q; want sealed under k1 without the plain text", when, sealed, id)
		}
		if got := rawValue(t, s, "strava", RowAccessToken, "Value"); got != want.AccessToken {
			t.Errorf("%s: stored AccessToken.Value is %s; want the plain access token %s", when, Fingerprint(got), Fingerprint(want.AccessToken))
		}
		c := mustGet(t, s, "strava")
		if c.SecretErr != nil {
			t.Fatalf("%s: SecretErr = %v; want nil", when, c.SecretErr)
		}
		sameTokens(t, c.Tokens, want)
	}
	check("after SaveConsent", tok)

	c := mustGet(t, s, "strava")
	next := testTokens("next")
	if err := s.Commit(ctx, c, next, c.Status); err != nil {
		t.Fatal(err)
	}
	sameTokens(t, c.Tokens, next)
	check("after Commit", next)

	// The pending authorization's verifier is sealed too, bound to its row.
	if err := s.PutAuthState(ctx, "strava", "abcd", AuthState{Verifier: "pkce-verifier-secret", ExpiresAt: testNow}); err != nil {
		t.Fatal(err)
	}
	if v := rawValue(t, s, "strava", rowAuthStatePrefix+"abcd", "Verifier"); !strings.HasPrefix(v, "ft1:k1:") || strings.Contains(v, "pkce-verifier-secret") {
		t.Errorf("stored Verifier %.12q...; want sealed under k1", v)
	}
	a, err := s.TakeAuthState(ctx, "strava", "abcd")
	if err != nil || a.Verifier != "pkce-verifier-secret" {
		t.Errorf("TakeAuthState = %s, %v; want the verifier, nil", Fingerprint(a.Verifier), err)
	}
}

func TestSealedLegacyPlainRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	table := newTableName(t)
	plain := openStore(t, table, nil)
	tok := testTokens("legacy")
	if err := plain.SaveConsent(ctx, "fitbit", tok, fullStatus()); err != nil {
		t.Fatal(err)
	}
	if got := rawValue(t, plain, "fitbit", RowRefreshToken, "Value"); got != tok.RefreshToken {
		t.Fatalf("without keys RefreshToken.Value is stored as %s; want plain %s", Fingerprint(got), Fingerprint(tok.RefreshToken))
	}
	sealed := openStore(t, table, keyring(t, "k1=a"))
	c := mustGet(t, sealed, "fitbit")
	if c.SecretErr != nil {
		t.Fatalf("plain row read with keys: SecretErr = %v; want nil", c.SecretErr)
	}
	sameTokens(t, c.Tokens, tok)
	next := testTokens("next")
	if err := sealed.Commit(ctx, c, next, c.Status); err != nil {
		t.Fatal(err)
	}
	if id, _ := seal.KeyID(rawValue(t, sealed, "fitbit", RowRefreshToken, "Value")); id != "k1" {
		t.Errorf("after the next write RefreshToken.Value is under key %q; want k1", id)
	}
}

func TestSealedUnreadablePerConnection(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	table := newTableName(t)
	s := openStore(t, table, keyring(t, "k1=a"))
	for _, name := range []string{"alpha", "beta", "gamma"} {
		if err := s.SaveConsent(ctx, name, testTokens(name), fullStatus()); err != nil {
			t.Fatal(err)
		}
	}
	// beta's refresh token copied into alpha's row: it must not open there.
	setRaw(t, s, "alpha", RowRefreshToken, "Value", rawValue(t, s, "beta", RowRefreshToken, "Value"))

	tests := []struct {
		name   string
		keys   *seal.Keyring
		failed map[string]error // connection -> reason; the others read fine
	}{
		{"copied value", keyring(t, "k1=a"), map[string]error{"alpha": seal.ErrAuthentication}},
		{"unrelated key", keyring(t, "k2=b"), map[string]error{"alpha": seal.ErrUnknownKey, "beta": seal.ErrUnknownKey, "gamma": seal.ErrUnknownKey}},
		{"other key under the same id", keyring(t, "k1=b"), map[string]error{"alpha": seal.ErrAuthentication, "beta": seal.ErrAuthentication, "gamma": seal.ErrAuthentication}},
		{"no keys", nil, map[string]error{"alpha": seal.ErrNoKeys, "beta": seal.ErrNoKeys, "gamma": seal.ErrNoKeys}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := openStore(t, table, tt.keys)
			m, err := r.List(ctx)
			if err != nil {
				t.Fatalf("List: %v; want per-connection failures only", err)
			}
			for _, name := range []string{"alpha", "beta", "gamma"} {
				c := m[name]
				if c == nil {
					t.Fatalf("List has no %s", name)
				}
				want := tt.failed[name]
				if want == nil {
					if c.SecretErr != nil {
						t.Errorf("%s: SecretErr = %v; want nil", name, c.SecretErr)
					}
					sameTokens(t, c.Tokens, testTokens(name))
					continue
				}
				var oe *seal.OpenError
				if !errors.As(c.SecretErr, &oe) || !errors.Is(c.SecretErr, want) {
					t.Errorf("%s: SecretErr = %v; want a *seal.OpenError wrapping %v", name, c.SecretErr, want)
					continue
				}
				if msg := c.SecretErr.Error(); !strings.Contains(msg, `"k1"`) || !strings.Contains(msg, name) || strings.Contains(msg, "ft1:") {
					t.Errorf("%s: SecretErr %q; want it to name the connection and key id k1, and not quote the value", name, msg)
				}
				if c.Tokens.RefreshToken != "" {
					t.Errorf("%s: unreadable refresh token reads as %s; want \"\"", name, Fingerprint(c.Tokens.RefreshToken))
				}
				// The access token and status still read: the handler can report the failure.
				if c.Tokens.AccessToken != testTokens(name).AccessToken || c.Status.Provider != "google" {
					t.Errorf("%s: access token or status lost with the unreadable refresh token", name)
				}
			}
			// Get reports it the same way.
			if c, err := r.Get(ctx, "alpha"); err != nil || c.SecretErr == nil {
				t.Errorf("Get(alpha) = SecretErr %v, %v; want a SecretErr, nil", c.SecretErr, err)
			}
		})
	}
}

func TestSealedAuthStateUnreadable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	table := newTableName(t)
	s := openStore(t, table, keyring(t, "k1=a"))
	if err := s.PutAuthState(ctx, "strava", "abcd", AuthState{Verifier: "v-secret", ExpiresAt: testNow}); err != nil {
		t.Fatal(err)
	}
	for _, keys := range []*seal.Keyring{nil, keyring(t, "k2=b")} {
		_, err := openStore(t, table, keys).TakeAuthState(ctx, "strava", "abcd")
		var oe *seal.OpenError
		if !errors.As(err, &oe) || oe.KeyID != "k1" {
			t.Errorf("TakeAuthState with keys %v: %v; want a *seal.OpenError for k1", keys.KeyIDs(), err)
		}
	}
	// A verifier moved to another pending authorization does not open there.
	setRaw(t, s, "strava", rowAuthStatePrefix+"ef01", "Verifier", rawValue(t, s, "strava", rowAuthStatePrefix+"abcd", "Verifier"))
	if _, err := s.TakeAuthState(ctx, "strava", "ef01"); !errors.Is(err, seal.ErrAuthentication) {
		t.Errorf("TakeAuthState of a moved verifier: %v; want ErrAuthentication", err)
	}
	// The failed takes left the row: the right keys still take it.
	if a, err := s.TakeAuthState(ctx, "strava", "abcd"); err != nil || a.Verifier != "v-secret" {
		t.Errorf("TakeAuthState after failed takes = %s, %v; want the verifier", Fingerprint(a.Verifier), err)
	}
}

func TestSealedRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	table := newTableName(t)
	old := openStore(t, table, keyring(t, "old=a"))
	if err := old.SaveConsent(ctx, "strava", testTokens("x"), fullStatus()); err != nil {
		t.Fatal(err)
	}
	rotated := openStore(t, table, keyring(t, "new=b,old=a"))
	c := mustGet(t, rotated, "strava")
	if c.SecretErr != nil {
		t.Fatalf("old value with the old key second: %v", c.SecretErr)
	}
	sameTokens(t, c.Tokens, testTokens("x"))
	if err := rotated.Commit(ctx, c, testTokens("y"), c.Status); err != nil {
		t.Fatal(err)
	}
	if id, _ := seal.KeyID(rawValue(t, rotated, "strava", RowRefreshToken, "Value")); id != "new" {
		t.Errorf("the write after rotation is under %q; want new", id)
	}
}
