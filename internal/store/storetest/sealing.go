package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/freshtoken/freshtoken/internal/seal"
	"github.com/freshtoken/freshtoken/internal/store"
)

// KeyedStore is a Store that seals secrets at rest as store.Options.Keys says, with what the
// sealing cases of RunContract need to look beneath it. The stores open returns that implement
// it run those cases; the others skip them.
type KeyedStore interface {
	Store
	// Reopen returns a store on the same rows that seals and opens with keys (nil: none): the
	// handler restarted with another TOKEN_ENCRYPTION_KEYS. The receiver is unchanged.
	Reopen(keys *seal.Keyring) KeyedStore
	// RawSecret returns the secret property (store.SecretProperty) of a row as stored.
	RawSecret(ctx context.Context, name, rowKey string) (string, error)
	// SetRawSecret overwrites the secret property of an existing row with value as given, never
	// sealed, leaving the row's other properties, as another writer would.
	SetRawSecret(ctx context.Context, name, rowKey, value string) error
}

// Reopen is WithKeys as a KeyedStore.
func (m *Memory) Reopen(keys *seal.Keyring) KeyedStore { return m.WithKeys(keys) }

// Keyring returns a keyring of the given key ids, the first sealing. Each id's key is derived
// from the spec: "k1" is the same key in every Keyring, "k1/2" is another key under id k1.
func Keyring(t testing.TB, specs ...string) *seal.Keyring {
	t.Helper()
	var entries []string
	for _, spec := range specs {
		id, _, _ := strings.Cut(spec, "/")
		sum := sha256.Sum256([]byte("storetest key " + spec))
		entries = append(entries, id+":"+base64.StdEncoding.EncodeToString(sum[:]))
	}
	k, err := seal.Parse("TOKEN_ENCRYPTION_KEYS", strings.Join(entries, ","), nil)
	if err != nil {
		t.Fatalf("storetest: keyring %q: %v", specs, err)
	}
	return k
}

var sealingTests = []struct {
	name string
	run  func(t *testing.T, s KeyedStore)
}{
	{"SealedAtRest", testSealedAtRest},
	{"SealedAuthState", testSealedAuthState},
	{"SealedLegacyPlain", testSealedLegacyPlain},
	{"SealedRotation", testSealedRotation},
	{"SealedUnreadable", testSealedUnreadable},
	{"SealedAuthStateUnreadable", testSealedAuthStateUnreadable},
}

// runSealing runs the sealing cases when s seals.
func runSealing(t *testing.T, s Store, run func(t *testing.T, s KeyedStore)) {
	ks, ok := s.(KeyedStore)
	if !ok {
		t.Skip("the store does not implement storetest.KeyedStore")
	}
	run(t, ks)
}

func rawSecret(t *testing.T, s KeyedStore, name, rowKey string) string {
	t.Helper()
	v, err := s.RawSecret(context.Background(), name, rowKey)
	must(t, "RawSecret "+name+"/"+rowKey, err)
	return v
}

// wantSealed checks that raw is sealed under key id kid and does not hold plain.
func wantSealed(t *testing.T, what, raw, plain, kid string) {
	t.Helper()
	id, sealed := seal.KeyID(raw)
	if !sealed || id != kid || !strings.HasPrefix(raw, seal.Prefix+kid+":") {
		t.Errorf("%s: stored as %.12q... (key id %q, sealed %v); want sealed under %q", what, raw, id, sealed, kid)
	}
	if plain != "" && strings.Contains(raw, plain) {
		t.Errorf("%s: the stored value holds the plain text", what)
	}
}

func testSealedAtRest(t *testing.T, s KeyedStore) {
	ctx := context.Background()
	s = s.Reopen(Keyring(t, "k1"))
	tk := fullTokens("a")
	must(t, "SaveConsent", s.SaveConsent(ctx, "a", tk, fullStatus(1)))
	first := rawSecret(t, s, "a", store.RowRefreshToken)
	wantSealed(t, "RefreshToken after SaveConsent", first, tk.RefreshToken, "k1")
	got := mustGet(t, s, "a")
	want := stored("a", tk, fullStatus(1))
	want.ETags = got.ETags
	sameRecord(t, "read back", got, &want)

	// The same token sealed again is another value: the nonce is random.
	must(t, "SaveConsent again", s.SaveConsent(ctx, "a", tk, fullStatus(1)))
	if again := rawSecret(t, s, "a", store.RowRefreshToken); again == first {
		t.Errorf("the same token sealed twice gave the same value; want a fresh nonce each time")
	}

	c := mustGet(t, s, "a")
	must(t, "Commit", s.Commit(ctx, c, fullTokens("b"), fullStatus(2)))
	wantSealed(t, "RefreshToken after Commit", rawSecret(t, s, "a", store.RowRefreshToken), fullTokens("b").RefreshToken, "k1")
	sameRecord(t, "after Commit", c, mustGet(t, s, "a"))

	// No refresh token: the empty value is sealed too, and reads back empty.
	must(t, "SaveConsent without a refresh token", s.SaveConsent(ctx, "e", store.Tokens{AccessToken: "at-e-secret"}, store.Status{}))
	wantSealed(t, "empty RefreshToken", rawSecret(t, s, "e", store.RowRefreshToken), "", "k1")
	if got := mustGet(t, s, "e"); got.Tokens.RefreshToken != "" || got.SecretErr != nil || got.Tokens.AccessToken != "at-e-secret" {
		t.Errorf("empty refresh token read back as %s; want it empty, no SecretErr", show(got))
	}
}

func testSealedAuthState(t *testing.T, s KeyedStore) {
	ctx := context.Background()
	s = s.Reopen(Keyring(t, "k1"))
	a := store.AuthState{Verifier: "pkce-verifier-secret", ExpiresAt: base, Replace: true}
	must(t, "PutAuthState", s.PutAuthState(ctx, "c", "ab12", a))
	wantSealed(t, "Verifier", rawSecret(t, s, "c", "AuthState-ab12"), a.Verifier, "k1")
	got, err := s.TakeAuthState(ctx, "c", "ab12")
	must(t, "TakeAuthState", err)
	if got.Verifier != a.Verifier || got.Replace != a.Replace || got.ExpiresAt != storedTime(a.ExpiresAt) {
		t.Errorf("took verifier %s replace %v expires %v; want %s %v %v", store.Fingerprint(got.Verifier), got.Replace, got.ExpiresAt,
			store.Fingerprint(a.Verifier), a.Replace, storedTime(a.ExpiresAt))
	}
}

func testSealedLegacyPlain(t *testing.T, s KeyedStore) {
	ctx := context.Background()
	plain := s.Reopen(nil)
	tk := fullTokens("p")
	must(t, "SaveConsent without keys", plain.SaveConsent(ctx, "p", tk, fullStatus(1)))
	if raw := rawSecret(t, plain, "p", store.RowRefreshToken); raw != tk.RefreshToken {
		t.Errorf("without keys the refresh token is stored as %s; want it as given", store.Fingerprint(raw))
	}
	must(t, "PutAuthState without keys", plain.PutAuthState(ctx, "p", "00", store.AuthState{Verifier: "v-plain"}))

	keyed := s.Reopen(Keyring(t, "k1"))
	c := mustGet(t, keyed, "p")
	if c.SecretErr != nil || c.Tokens.RefreshToken != tk.RefreshToken {
		t.Fatalf("a plain value read with keys: got %s, SecretErr %v; want it as stored", show(c), c.SecretErr)
	}
	if a, err := keyed.TakeAuthState(ctx, "p", "00"); err != nil || a.Verifier != "v-plain" {
		t.Errorf("a plain verifier taken with keys: got %s, %v; want it as stored", store.Fingerprint(a.Verifier), err)
	}
	// The next write seals it.
	must(t, "Commit with keys", keyed.Commit(ctx, c, tk, fullStatus(2)))
	wantSealed(t, "after the Commit with keys", rawSecret(t, keyed, "p", store.RowRefreshToken), tk.RefreshToken, "k1")
}

func testSealedRotation(t *testing.T, s KeyedStore) {
	ctx := context.Background()
	old := s.Reopen(Keyring(t, "k1"))
	must(t, "SaveConsent under k1", old.SaveConsent(ctx, "r", fullTokens("1"), fullStatus(1)))
	must(t, "PutAuthState under k1", old.PutAuthState(ctx, "r", "01", store.AuthState{Verifier: "v-1"}))

	rotated := s.Reopen(Keyring(t, "k2", "k1"))
	c := mustGet(t, rotated, "r")
	if c.SecretErr != nil || c.Tokens.RefreshToken != fullTokens("1").RefreshToken {
		t.Fatalf("k1's value read with k2,k1: SecretErr %v, token %s; want it opened", c.SecretErr, store.Fingerprint(c.Tokens.RefreshToken))
	}
	if a, err := rotated.TakeAuthState(ctx, "r", "01"); err != nil || a.Verifier != "v-1" {
		t.Errorf("k1's verifier taken with k2,k1: got %s, %v; want it opened", store.Fingerprint(a.Verifier), err)
	}
	must(t, "Commit with k2,k1", rotated.Commit(ctx, c, fullTokens("2"), fullStatus(2)))
	wantSealed(t, "after the Commit", rawSecret(t, rotated, "r", store.RowRefreshToken), fullTokens("2").RefreshToken, "k2")

	// A handler still on k1 alone cannot open it, and says which key it lacks.
	stale := mustGet(t, old, "r")
	var oe *seal.OpenError
	if !errors.As(stale.SecretErr, &oe) || oe.KeyID != "k2" || !errors.Is(stale.SecretErr, seal.ErrUnknownKey) {
		t.Errorf("k2's value read with k1 only: SecretErr %v; want an unknown key error naming k2", stale.SecretErr)
	}
}

func testSealedUnreadable(t *testing.T, s KeyedStore) {
	ctx := context.Background()
	writer := s.Reopen(Keyring(t, "k1"))
	names := []string{"ok", "copy", "tamper", "malformed"}
	for _, n := range names {
		must(t, "SaveConsent "+n, writer.SaveConsent(ctx, n, fullTokens(n), fullStatus(1)))
	}
	rawOK := rawSecret(t, writer, "ok", store.RowRefreshToken)
	must(t, "copy", writer.SetRawSecret(ctx, "copy", store.RowRefreshToken, rawOK))
	tampered := []byte(rawSecret(t, writer, "tamper", store.RowRefreshToken))
	// A character of the nonce: every one of its bits is data, so the value stays well formed.
	flip := &tampered[len(seal.Prefix+"k1:")+1]
	if *flip == 'A' {
		*flip = 'B'
	} else {
		*flip = 'A'
	}
	must(t, "tamper", writer.SetRawSecret(ctx, "tamper", store.RowRefreshToken, string(tampered)))
	must(t, "malform", writer.SetRawSecret(ctx, "malformed", store.RowRefreshToken, seal.Prefix+"k1:not base64!"))
	before := map[string]*store.Record{}
	for _, n := range names {
		before[n] = mustGet(t, writer, n)
	}

	for _, tc := range []struct {
		reader *seal.Keyring
		name   string
		want   error // nil: readable
		kid    string
	}{
		{Keyring(t, "k1"), "ok", nil, ""},
		{Keyring(t, "k1"), "copy", seal.ErrAuthentication, "k1"},
		{Keyring(t, "k1"), "tamper", seal.ErrAuthentication, "k1"},
		{Keyring(t, "k1"), "malformed", seal.ErrMalformed, "k1"},
		{Keyring(t, "other"), "ok", seal.ErrUnknownKey, "k1"},
		{Keyring(t, "k1/2"), "ok", seal.ErrAuthentication, "k1"},
		{nil, "ok", seal.ErrNoKeys, "k1"},
	} {
		r := s.Reopen(tc.reader)
		what := tc.name + " read with " + strings.Join(tc.reader.KeyIDs(), ",")
		got := mustGet(t, r, tc.name)
		listed, err := r.List(ctx)
		must(t, "List", err)
		var oe *seal.OpenError
		switch {
		case tc.want == nil:
			if got.SecretErr != nil || got.Tokens.RefreshToken != fullTokens(tc.name).RefreshToken {
				t.Errorf("%s: SecretErr %v, token %s; want it opened", what, got.SecretErr, store.Fingerprint(got.Tokens.RefreshToken))
			}
		case !errors.Is(got.SecretErr, tc.want) || !errors.As(got.SecretErr, &oe) || oe.KeyID != tc.kid:
			t.Errorf("%s: SecretErr %v; want %v naming key id %q", what, got.SecretErr, tc.want, tc.kid)
		default:
			msg := got.SecretErr.Error()
			if !strings.Contains(msg, `"`+tc.kid+`"`) || !strings.Contains(msg, tc.name) {
				t.Errorf("%s: SecretErr %q; want it to name the connection and key id %q", what, msg, tc.kid)
			}
			raw := rawSecret(t, r, tc.name, store.RowRefreshToken)
			if strings.Contains(msg, raw) || strings.Contains(msg, fullTokens(tc.name).RefreshToken) {
				t.Errorf("%s: SecretErr holds the stored value or the token", what)
			}
			// Never a plain-text read of the ciphertext; the rest of the partition reads.
			want := *before[tc.name]
			want.Tokens.RefreshToken, want.SecretErr = "", got.SecretErr
			sameRecord(t, what, got, &want)
		}
		// The Record listed agrees, and the other connections are not affected.
		for _, n := range names {
			l := listed[n]
			if l == nil {
				t.Errorf("%s: List lacks %s", what, n)
				continue
			}
			if n == tc.name && (l.SecretErr == nil) != (got.SecretErr == nil) {
				t.Errorf("%s: listed SecretErr %v; Get gave %v", what, l.SecretErr, got.SecretErr)
			}
		}
		// Reading changes nothing.
		for _, n := range names {
			if now := mustGet(t, writer, n); now.ETags != before[n].ETags {
				t.Errorf("after %s: %s ETags %+v; want %+v", what, n, now.ETags, before[n].ETags)
			}
		}
	}
	// The readable connections of a List beside unreadable ones.
	listed, err := writer.List(ctx)
	must(t, "List", err)
	if l := listed["ok"]; l == nil || l.SecretErr != nil || l.Tokens.RefreshToken != fullTokens("ok").RefreshToken {
		t.Errorf("List: ok = %s; want it opened beside the unreadable ones", show(l))
	}
	for _, n := range names[1:] {
		if l := listed[n]; l == nil || l.SecretErr == nil || l.Tokens.RefreshToken != "" {
			t.Errorf("List: %s = %s; want SecretErr and no token", n, show(l))
		}
	}

	// A consent writes a new pair over the unreadable one; a Commit from it clears SecretErr.
	c := mustGet(t, writer, "copy")
	must(t, "Commit over an unreadable token", writer.Commit(ctx, c, fullTokens("new"), fullStatus(2)))
	if c.SecretErr != nil {
		t.Errorf("after Commit: SecretErr %v; want nil", c.SecretErr)
	}
	sameRecord(t, "after Commit", c, mustGet(t, writer, "copy"))
	must(t, "SaveConsent over an unreadable token", writer.SaveConsent(ctx, "tamper", fullTokens("t2"), fullStatus(1)))
	if got := mustGet(t, writer, "tamper"); got.SecretErr != nil || got.Tokens.RefreshToken != fullTokens("t2").RefreshToken {
		t.Errorf("after SaveConsent: %s, SecretErr %v; want the new pair", show(got), got.SecretErr)
	}
}

func testSealedAuthStateUnreadable(t *testing.T, s KeyedStore) {
	ctx := context.Background()
	writer := s.Reopen(Keyring(t, "k1"))
	must(t, "PutAuthState", writer.PutAuthState(ctx, "c", "aa", store.AuthState{Verifier: "v-aa"}))
	must(t, "PutAuthState", writer.PutAuthState(ctx, "c", "bb", store.AuthState{Verifier: "v-bb"}))
	must(t, "copy", writer.SetRawSecret(ctx, "c", "AuthState-bb", rawSecret(t, writer, "c", "AuthState-aa")))

	for _, tc := range []struct {
		reader *seal.Keyring
		key    string
		want   error
	}{
		{Keyring(t, "other"), "aa", seal.ErrUnknownKey},
		{nil, "aa", seal.ErrNoKeys},
		{Keyring(t, "k1"), "bb", seal.ErrAuthentication},
	} {
		a, err := s.Reopen(tc.reader).TakeAuthState(ctx, "c", tc.key)
		var oe *seal.OpenError
		if !errors.Is(err, tc.want) || !errors.As(err, &oe) || oe.KeyID != "k1" || errors.Is(err, store.ErrNotFound) {
			t.Errorf("take %s with %q: got %v; want %v naming k1", tc.key, tc.reader.KeyIDs(), err, tc.want)
		}
		if a.Verifier != "" {
			t.Errorf("take %s with %q: verifier %s; want none", tc.key, tc.reader.KeyIDs(), store.Fingerprint(a.Verifier))
		}
	}
	// The refused takes left the row: with the right key it is taken once.
	if a, err := writer.TakeAuthState(ctx, "c", "aa"); err != nil || a.Verifier != "v-aa" {
		t.Errorf("take aa with k1 after refused takes: got %s, %v; want it", store.Fingerprint(a.Verifier), err)
	}
	if _, err := writer.TakeAuthState(ctx, "c", "aa"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("take aa again: got %v; want ErrNotFound", err)
	}
}
