package store

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/seal"
)

func TestRekey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	table := newTableName(t)
	plain := openStore(t, table, nil)
	old := openStore(t, table, keyring(t, "old=a"))
	stranger := openStore(t, table, keyring(t, "zz=z"))
	if err := plain.SaveConsent(ctx, "legacy", testTokens("legacy"), fullStatus()); err != nil {
		t.Fatal(err)
	}
	if err := old.SaveConsent(ctx, "old", testTokens("old"), fullStatus()); err != nil {
		t.Fatal(err)
	}
	if err := stranger.SaveConsent(ctx, "stranger", testTokens("stranger"), fullStatus()); err != nil {
		t.Fatal(err)
	}
	if err := old.PutAuthState(ctx, "old", "abcd", AuthState{Verifier: "v-old", ExpiresAt: testNow}); err != nil {
		t.Fatal(err)
	}
	rotated := openStore(t, table, keyring(t, "new=b,old=a"))
	if err := rotated.SaveConsent(ctx, "current", testTokens("current"), fullStatus()); err != nil {
		t.Fatal(err)
	}
	beforeOld := rawRow(t, rotated, "old", RowRefreshToken)

	res, err := rotated.Rekey(ctx)
	if res.Scanned != 5 || res.Changed != 3 || len(res.Failed) != 1 {
		t.Errorf("Rekey = scanned %d, changed %d, failed %d; want 5, 3, 1", res.Scanned, res.Changed, len(res.Failed))
	}
	var oe *seal.OpenError
	if !errors.As(err, &oe) || oe.KeyID != "zz" || !strings.Contains(err.Error(), `"stranger"`) {
		t.Errorf("Rekey error = %v; want one naming connection stranger and key id zz", err)
	}

	for name, wantID := range map[string]string{"legacy": "new", "old": "new", "current": "new", "stranger": "zz"} {
		if id, _ := seal.KeyID(rawValue(t, rotated, name, RowRefreshToken, "Value")); id != wantID {
			t.Errorf("%s: RefreshToken.Value under %q after Rekey; want %q", name, id, wantID)
		}
		if name == "stranger" {
			continue
		}
		c := mustGet(t, rotated, name)
		if c.SecretErr != nil {
			t.Fatalf("%s: %v", name, c.SecretErr)
		}
		sameTokens(t, c.Tokens, testTokens(name))
	}
	if v := rawValue(t, rotated, "old", rowAuthStatePrefix+"abcd", "Verifier"); !strings.HasPrefix(v, "ft1:new:") {
		t.Errorf("AuthState Verifier %.10q... after Rekey; want it under new", v)
	}
	// Only the seal changed: the row's other properties are as they were.
	after := rawRow(t, rotated, "old", RowRefreshToken)
	for _, p := range []string{"ExpiresAt", "UpdatedAt"} {
		if after[p] != beforeOld[p] {
			t.Errorf("old: %s = %v after Rekey; want %v", p, after[p], beforeOld[p])
		}
	}
	// The old key can go now.
	if c := mustGet(t, openStore(t, table, keyring(t, "new=b")), "old"); c.SecretErr != nil {
		t.Errorf("after Rekey without the old key: %v", c.SecretErr)
	}

	again, err := rotated.Rekey(ctx)
	if again.Changed != 0 || len(again.Failed) != 1 || err == nil {
		t.Errorf("second Rekey = changed %d, failed %d, %v; want 0, 1 (stranger), an error", again.Changed, len(again.Failed), err)
	}
	if _, err := plain.Rekey(ctx); err == nil {
		t.Errorf("Rekey without keys: got no error")
	}
}

// TestRekeyBesideHandler: a handler's Commit that lands between Rekey's read and its write
// makes Rekey's write lose; Rekey re-reads and never writes back the pair it read first.
func TestRekeyBesideHandler(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	table := newTableName(t)
	tests := []struct {
		name         string
		handlerKeys  string // the keys of the handler racing Rekey
		wantChanged  int
		wantWrites   int // Rekey's writes of the RefreshToken row, the lost one included
		wantTokensOf string
	}{
		// A handler already on the new keys writes under the new key: nothing left to do.
		{"handler on new keys", "new=b,old=a", 0, 1, "handler"},
		// A second instance still on the old keys: Rekey seals what it wrote.
		{"handler on old keys", "old=a", 1, 2, "handler"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := "conn" + string(rune('a'+i))
			old := openStore(t, table, keyring(t, "old=a"))
			if err := old.SaveConsent(ctx, conn, testTokens("first"), fullStatus()); err != nil {
				t.Fatal(err)
			}
			handler := openStore(t, table, keyring(t, tt.handlerKeys))
			var once sync.Once
			var writes int
			var mu sync.Mutex
			rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				if r.Method != http.MethodGet && strings.Contains(r.URL.Path, "RowKey='RefreshToken'") && strings.Contains(r.URL.Path, conn) {
					mu.Lock()
					writes++
					mu.Unlock()
					once.Do(func() {
						c := mustGet(t, handler, conn)
						if err := handler.Commit(ctx, c, testTokens("handler"), c.Status); err != nil {
							t.Errorf("handler Commit: %v", err)
						}
					})
				}
				return http.DefaultTransport.RoundTrip(r)
			})
			rekeyer, err := Open(ctx, Options{
				ConnectionString: azurite(t).ConnectionString(),
				Table:            table,
				HTTPClient:       &http.Client{Transport: rt, Timeout: 30 * time.Second},
				Now:              func() time.Time { return testNow },
				Keys:             keyring(t, "new=b,old=a"),
			})
			if err != nil {
				t.Fatal(err)
			}
			res, err := rekeyer.Rekey(ctx)
			if err != nil {
				t.Fatalf("Rekey: %v", err)
			}
			// The earlier subtests' rows are already under the new key.
			if res.Changed != tt.wantChanged {
				t.Errorf("Rekey changed %d rows; want %d", res.Changed, tt.wantChanged)
			}
			if writes != tt.wantWrites {
				t.Errorf("Rekey wrote %s's RefreshToken row %d times; want %d", conn, writes, tt.wantWrites)
			}
			if id, _ := seal.KeyID(rawValue(t, rekeyer, conn, RowRefreshToken, "Value")); id != "new" {
				t.Errorf("RefreshToken.Value under %q; want new", id)
			}
			sameTokens(t, mustGet(t, rekeyer, conn).Tokens, testTokens(tt.wantTokensOf))
		})
	}
}

// TestCommitAfterRekey: a handler holding ETags read before Rekey loses its Commit, and its
// re-read shows the same plain refresh token, so it may commit again (refresh's writePair).
func TestCommitAfterRekey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	table := newTableName(t)
	s := openStore(t, table, keyring(t, "old=a"))
	if err := s.SaveConsent(ctx, "strava", testTokens("x"), fullStatus()); err != nil {
		t.Fatal(err)
	}
	rotated := openStore(t, table, keyring(t, "new=b,old=a"))
	c := mustGet(t, rotated, "strava")
	if _, err := rotated.Rekey(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rotated.Commit(ctx, c, testTokens("y"), c.Status); !errors.Is(err, ErrConflict) {
		t.Fatalf("Commit with pre-Rekey ETags: %v; want ErrConflict", err)
	}
	fresh := mustGet(t, rotated, "strava")
	if Fingerprint(fresh.Tokens.RefreshToken) != Fingerprint(c.Tokens.RefreshToken) {
		t.Errorf("after Rekey the refresh token reads differently; want the same plain text")
	}
	if err := rotated.Commit(ctx, fresh, testTokens("y"), fresh.Status); err != nil {
		t.Errorf("Commit after re-read: %v", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
