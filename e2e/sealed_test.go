package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/freshtoken/freshtoken/e2e/funchost"
	"github.com/freshtoken/freshtoken/e2e/oauthserver"
	"github.com/freshtoken/freshtoken/internal/seal"
	"github.com/freshtoken/freshtoken/internal/store"
)

// testKey is a TOKEN_ENCRYPTION_KEYS entry: id and a fresh random 32-byte key.
func testKey(t *testing.T, id string) string {
	t.Helper()
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		t.Fatal(err)
	}
	return id + ":" + base64.StdEncoding.EncodeToString(k[:])
}

// keyring parses a TOKEN_ENCRYPTION_KEYS value as the handler does.
func keyring(t *testing.T, entries ...string) *seal.Keyring {
	t.Helper()
	k, err := seal.Parse("TOKEN_ENCRYPTION_KEYS", strings.Join(entries, ","), nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// rawRows reads every row of the world's table as stored, by "partition/row", each with its
// odata.etag: two reads are equal only if nothing was written between them.
func (w *world) rawRows() map[string]map[string]any {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := map[string]map[string]any{}
	pager := w.tableClient().NewListEntitiesPager(&aztables.ListEntitiesOptions{Format: toPtr(aztables.MetadataFormatFull)})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			w.t.Fatalf("list rows: %v", err)
		}
		for _, raw := range page.Entities {
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				w.t.Fatal(err)
			}
			out[str(m, "PartitionKey")+"/"+str(m, "RowKey")] = m
		}
	}
	return out
}

// noIssuedRefreshToken fails the test when any property of any row holds a refresh token the
// server issued.
func (w *world) noIssuedRefreshToken(when string) {
	w.t.Helper()
	issued := w.oauth.Issued().RefreshTokens
	if len(issued) == 0 {
		w.t.Fatalf("%s: the server issued no refresh token", when)
	}
	for key, row := range w.rawRows() {
		for prop, v := range row {
			s := fmt.Sprint(v)
			for i, rt := range issued {
				if strings.Contains(s, rt) {
					w.t.Errorf("%s: row %s property %s holds issued refresh token #%d in plain text", when, key, prop, i)
				}
			}
		}
	}
}

// openRefresh returns conn's refresh token as sealed in its row, opened with keys, and the key
// id it is sealed under.
func (w *world) openRefresh(keys *seal.Keyring, conn string) (plain, kid string) {
	w.t.Helper()
	raw := str(w.row(conn, "RefreshToken"), "Value")
	kid, sealed := seal.KeyID(raw)
	if !sealed {
		w.t.Fatalf("%s: the RefreshToken row's Value is not sealed", conn)
	}
	plain, _, err := keys.Open(raw, store.Binding(w.table, conn, store.RowRefreshToken, "Value"))
	if err != nil {
		w.t.Fatalf("%s: open the stored refresh token: %v", conn, err)
	}
	return plain, kid
}

// failedLine returns the line of a failed invocation's logs for conn.
func failedLine(t *testing.T, res *funchost.InvokeResult, conn string) string {
	t.Helper()
	for _, l := range responseLogs(t, res) {
		if strings.HasPrefix(l, conn+": ") {
			return l
		}
	}
	t.Fatalf("no log line for %s in %q", conn, responseLogs(t, res))
	return ""
}

// TestSecretsAtRest runs the handler with TOKEN_ENCRYPTION_KEYS through consent, refreshes, a key
// rotation, a pass with only an unrelated key, and a refresh token copied between connections.
func TestSecretsAtRest(t *testing.T) {
	var tokenRequests atomic.Int64
	w := newWorld(t, oauthserver.Options{OnTokenRequest: func(*http.Request) { tokenRequests.Add(1) }}, "alpha", "beta")
	k1, k2, stray := testKey(t, "k1"), testKey(t, "k2"), testKey(t, "stray")
	w.env["TOKEN_ENCRYPTION_KEYS"] = k1
	h1 := w.start(true)
	b := browser()

	// A pending sign-in's verifier is sealed.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(h1.URL() + "/api/authorize/alpha?code=" + h1.FunctionKey())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	pending := 0
	for key, row := range w.rawRows() {
		if strings.HasPrefix(key, "alpha/AuthState-") {
			pending++
			if v := str(row, "Verifier"); !strings.HasPrefix(v, seal.Prefix+"k1:") {
				t.Errorf("pending verifier of %s stored as %.8q...; want sealed under k1", key, v)
			}
		}
	}
	if pending != 1 {
		t.Errorf("%d pending sign-ins stored; want 1", pending)
	}

	for _, c := range w.conns {
		if status, page := w.consent(h1, b, c); status != http.StatusOK || !strings.Contains(page, c+" is connected") {
			t.Fatalf("consent %s = %d %q", c, status, page)
		}
	}
	keys1 := keyring(t, k1)
	issued := w.oauth.Issued()
	if len(issued.AccessTokens) != 2 {
		t.Fatalf("the server issued %d access tokens; want 2, one per consent", len(issued.AccessTokens))
	}
	for i, c := range w.conns {
		if got := str(w.row(c, "AccessToken"), "Value"); got != issued.AccessTokens[i] || !w.oauth.ActiveAccessToken(got) {
			t.Errorf("%s: the AccessToken row does not hold the issued access token in plain text", c)
		}
		if rt, kid := w.openRefresh(keys1, c); kid != "k1" || rt != issued.RefreshTokens[i] || !w.oauth.Accepts(rt) {
			t.Errorf("%s: the sealed refresh token (key id %q) is not the issued one the server accepts", c, kid)
		}
	}
	w.noIssuedRefreshToken("after consent")

	// Refreshes work, and write sealed pairs.
	for _, c := range w.conns {
		w.expireAccessToken(c)
	}
	res := invoke(t, h1)
	for _, c := range w.conns {
		if res.Failed || !containsLine(res.Logs, c+": refreshed") {
			t.Fatalf("pass with k1: failed=%v reason=%q logs=%q; want %s refreshed", res.Failed, res.Reason, res.Logs, c)
		}
		if rt, kid := w.openRefresh(keys1, c); kid != "k1" || !w.oauth.Accepts(rt) {
			t.Errorf("%s after the refresh: sealed under %q, accepted %v; want k1, true", c, kid, w.oauth.Accepts(rt))
		}
		if at := str(w.row(c, "AccessToken"), "Value"); !w.oauth.ActiveAccessToken(at) {
			t.Errorf("%s: the stored access token after the refresh is not active", c)
		}
	}
	w.noIssuedRefreshToken("after a refresh")
	if s := w.oauth.Stats(); s.Refreshes != 2 || s.ReuseDetections != 0 {
		t.Errorf("server stats = %+v; want 2 refreshes, no reuse", s)
	}

	// A new key put first: the next refresh writes under it; beta, not due, stays under k1 and
	// still opens.
	w.env["TOKEN_ENCRYPTION_KEYS"] = k2 + "," + k1
	h2 := w.start(false)
	keys21 := keyring(t, k2, k1)
	w.expireAccessToken("alpha")
	res = invoke(t, h2)
	if res.Failed || !containsLine(res.Logs, "alpha: refreshed") || !containsLine(res.Logs, "beta: not due") {
		t.Fatalf("pass with k2,k1: failed=%v reason=%q logs=%q; want alpha refreshed, beta not due", res.Failed, res.Reason, res.Logs)
	}
	if rt, kid := w.openRefresh(keys21, "alpha"); kid != "k2" || !w.oauth.Accepts(rt) {
		t.Errorf("alpha after the rotation: sealed under %q, accepted %v; want k2, true", kid, w.oauth.Accepts(rt))
	}
	if _, kid := w.openRefresh(keys21, "beta"); kid != "k1" {
		t.Errorf("beta: sealed under %q; want k1 still (not written)", kid)
	}
	w.noIssuedRefreshToken("after the rotation")

	// Only an unrelated key: the pass fails naming each key id, nothing reaches the provider, and
	// the rows are as they were.
	w.env["TOKEN_ENCRYPTION_KEYS"] = stray
	h3 := w.start(false)
	for _, c := range w.conns {
		w.expireAccessToken(c)
	}
	before, requests := w.rawRows(), tokenRequests.Load()
	res = invoke(t, h3)
	if !res.Failed {
		t.Errorf("pass with an unrelated key: not failed; want it to fail")
	}
	for c, kid := range map[string]string{"alpha": "k2", "beta": "k1"} {
		if l := failedLine(t, res, c); !strings.HasPrefix(l, c+": failed (secret)") || !strings.Contains(l, `"`+kid+`"`) {
			t.Errorf("%s with an unrelated key: %q; want failed (secret) naming key id %q", c, l, kid)
		}
	}
	if got := tokenRequests.Load(); got != requests {
		t.Errorf("token requests during the pass with an unrelated key: %d; want 0", got-requests)
	}
	if after := w.rawRows(); !reflect.DeepEqual(after, before) {
		t.Errorf("the rows changed in the pass with an unrelated key")
	}

	// alpha's sealed refresh token copied into beta's row: refused, nothing sent, rows unchanged.
	copied := str(w.row("alpha", "RefreshToken"), "Value")
	ent, err := aztables.EDMEntity{
		Entity:     aztables.Entity{PartitionKey: "beta", RowKey: "RefreshToken"},
		Properties: map[string]any{"Value": copied},
	}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := w.tableClient().UpdateEntity(ctx, ent, &aztables.UpdateEntityOptions{UpdateMode: aztables.UpdateModeMerge}); err != nil {
		t.Fatal(err)
	}
	w.expireAccessToken("alpha")
	before, requests = w.rawRows(), tokenRequests.Load()
	res = invoke(t, h2)
	if !res.Failed {
		t.Errorf("pass with a copied refresh token: not failed; want it to fail")
	}
	if l := failedLine(t, res, "beta"); !strings.HasPrefix(l, "beta: failed (secret)") || !strings.Contains(l, `"k2"`) {
		t.Errorf("beta with alpha's sealed token: %q; want failed (secret) naming key id k2", l)
	}
	// alpha is due too and refreshes, so one token request is alpha's; none is beta's.
	if !containsLine(responseLogs(t, res), "alpha: refreshed") {
		t.Errorf("alpha beside the refused copy: logs %q; want refreshed", responseLogs(t, res))
	}
	if got := tokenRequests.Load() - requests; got != 1 {
		t.Errorf("token requests during the pass: %d; want 1 (alpha's), none for beta", got)
	}
	after := w.rawRows()
	for key := range before {
		if strings.HasPrefix(key, "beta/") && !reflect.DeepEqual(after[key], before[key]) {
			t.Errorf("row %s changed in the pass that refused its copied token", key)
		}
	}
	if s := w.oauth.Stats(); s.ReuseDetections != 0 || s.RefreshFailures != 0 {
		t.Errorf("server stats = %+v; want no failed refresh and no reuse", s)
	}
	w.noIssuedRefreshToken("at the end")
}
