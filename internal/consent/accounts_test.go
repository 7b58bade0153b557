package consent

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/invite"
	"github.com/freshtoken/freshtoken/internal/store"
	"github.com/freshtoken/freshtoken/internal/store/storetest"
)

// issue makes an invitation value for study's account label.
func (e *env) issue(conn, label string, valid time.Duration) (invite.Invitation, string) {
	e.t.Helper()
	inv, v, err := e.invites.Issue(conn, label, valid)
	if err != nil {
		e.t.Fatal(err)
	}
	return inv, v
}

// open sends GET /api/callback/<name>?invite=<value>, as a browser opening an invitation.
func (e *env) open(name, value string) *http.Response {
	return e.callback(name, query(invite.Param, value))
}

// startAccount runs Authorize for account label of connection name and returns the state and
// cookie.
func (e *env) startAccount(name, label, rawQuery string) (string, *http.Cookie) {
	e.t.Helper()
	state, ck := stateOf(e.t.(*testing.T), e.authorize(name+"/"+label, rawQuery), name)
	e.mu.Lock()
	e.states = append(e.states, state)
	e.mu.Unlock()
	return state, ck
}

// stateOf returns the state a 302 to the provider carries and the cookie set for name.
func stateOf(t *testing.T, resp *http.Response, name string) (string, *http.Cookie) {
	t.Helper()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status %d; want 302 to the provider", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), "https://provider.example/auth?") {
		t.Fatalf("Location %q; want the provider's consent page", loc)
	}
	ck := cookieNamed(resp, cookieName(name))
	if ck == nil || ck.Value == "" || ck.Value != loc.Query().Get("state") || !ck.HttpOnly {
		t.Fatalf("state cookie %+v; want an HttpOnly cookie holding the redirect's state", ck)
	}
	return loc.Query().Get("state"), ck
}

func TestAuthorizeAccount(t *testing.T) {
	e := newEnv(t)
	_, ck := e.startAccount("study", "alice", "")
	_, a := onlyState(t, e.store, "study")
	if a.Label != "alice" || a.Invite != "" || a.Replace {
		t.Errorf("pending authorization: label %q invite %q replace %t; want alice, none, false", a.Label, a.Invite, a.Replace)
	}
	if ck.Path != "/api/callback/study" {
		t.Errorf("cookie path %q; want the connection's callback path", ck.Path)
	}
	if as := e.store.AuthStates("study.alice"); len(as) != 0 {
		t.Errorf("%d pending authorizations in the account's partition; want them in the connection's", len(as))
	}
	e.startAccount("study", "bob", "replace=true")
	for _, a := range e.store.AuthStates("study") {
		if a.Label == "bob" && !a.Replace {
			t.Errorf("bob's sign-in with ?replace=true: Replace false")
		}
	}
}

func TestAuthorizeAccountRefused(t *testing.T) {
	tests := []struct {
		path string
		want string
	}{
		{"study", "/api/authorize/study/LABEL"},
		{"google/alice", "holds one account"},
		{"study/Alice", "cannot name an account"},
		{"study/a.b", "cannot name an account"},
		{"study/" + strings.Repeat("a", 64), "cannot name an account"},
		{"nosuch/alice", "No connection named"},
	}
	for _, tt := range tests {
		e := newEnv(t)
		resp := e.authorize(tt.path, "")
		body := readPage(t, resp)
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, tt.want) {
			t.Errorf("GET /api/authorize/%s: status %d, page lacks %q: %t; want 404 and the text", tt.path, resp.StatusCode, tt.want, !strings.Contains(body, tt.want))
		}
		if len(resp.Cookies()) != 0 || len(e.store.Calls()) != 0 {
			t.Errorf("GET /api/authorize/%s: %d cookies, store calls %v; want none", tt.path, len(resp.Cookies()), e.store.Calls())
		}
	}
}

func TestCallbackAccount(t *testing.T) {
	e := newEnv(t)
	put(t, e.store, store.Record{Name: "study.bob", HasStatus: true, Status: store.Status{State: store.StateOK, AccountID: "acct-bob"}})
	state, ck := e.startAccount("study", "alice", "")
	resp := e.callback("study", query("state", state, "code", authCode), ck)
	body := readPage(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "study.alice is connected") {
		t.Fatalf("status %d; want 200 naming study.alice; page:\n%s", resp.StatusCode, e.masked(body))
	}
	checkCleared(t, resp, "study")
	got := saved(t, e.store, "study.alice")
	if got.Tokens.AccessToken != accessToken || got.Status.AccountID != "acct-1" || got.Status.Generation != 1 {
		t.Errorf("study.alice: access token stored %t, account %q, generation %d; want true, acct-1, 1",
			got.Tokens.AccessToken == accessToken, got.Status.AccountID, got.Status.Generation)
	}
	if _, ok := e.store.Peek("study"); ok {
		t.Errorf("the connection's own partition holds a pair; want only the account's")
	}
	if b := saved(t, e.store, "study.bob"); b.Status.AccountID != "acct-bob" || b.HasAccess {
		t.Errorf("study.bob changed: %+v", b.Status)
	}
}

// Account pinning applies per account: another provider account is refused for alice, not bob.
func TestCallbackAccountPinning(t *testing.T) {
	e := newEnv(t)
	put(t, e.store, store.Record{Name: "study.alice", HasStatus: true, Status: store.Status{State: store.StateOK, AccountID: "acct-9", Generation: 2}})
	state, ck := e.startAccount("study", "alice", "")
	resp := e.callback("study", query("state", state, "code", authCode), ck)
	body := readPage(t, resp)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "/api/authorize/study/alice?replace=true") {
		t.Fatalf("status %d; want 409 pointing at /api/authorize/study/alice?replace=true; page:\n%s", resp.StatusCode, e.masked(body))
	}
	if n := saveCount(e.store); n != 0 {
		t.Errorf("%d consents saved; want none", n)
	}
	state, ck = e.startAccount("study", "bob", "")
	if resp := e.callback("study", query("state", state, "code", authCode), ck); resp.StatusCode != http.StatusOK {
		t.Errorf("bob: status %d; want 200", resp.StatusCode)
	}
	state, ck = e.startAccount("study", "alice", "replace=true")
	if resp := e.callback("study", query("state", state, "code", authCode), ck); resp.StatusCode != http.StatusOK {
		t.Errorf("alice with ?replace=true: status %d; want 200", resp.StatusCode)
	}
	if a := saved(t, e.store, "study.alice"); a.Status.AccountID != "acct-1" || a.Status.Generation != 3 {
		t.Errorf("alice after replace: account %q generation %d; want acct-1, 3", a.Status.AccountID, a.Status.Generation)
	}
}

func TestInvitation(t *testing.T) {
	e := newEnv(t)
	inv, v := e.issue("study", "p1", 7*24*time.Hour)
	resp := e.open("study", v)
	state, ck := stateOf(t, resp, "study")
	_, a := onlyState(t, e.store, "study")
	if a.Label != "p1" || a.Invite != inv.ID || a.Replace {
		t.Errorf("pending authorization: label %q invite %q replace %t; want p1, %s, false", a.Label, a.Invite, a.Replace, inv.ID)
	}
	e.mu.Lock()
	e.states = append(e.states, state)
	e.mu.Unlock()

	e.clock.advance(time.Minute)
	resp = e.callback("study", query("state", state, "code", authCode), ck)
	body := readPage(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "study.p1 is connected") {
		t.Fatalf("callback: status %d; want 200; page:\n%s", resp.StatusCode, e.masked(body))
	}
	if n := succeeded(e.store, storetest.OpSaveInvitedConsent); n != 1 || saveCount(e.store) != 0 {
		t.Errorf("SaveInvitedConsent %d, SaveConsent %d; want 1, 0", n, saveCount(e.store))
	}
	spent := e.store.Invites("study.p1")[inv.ID]
	if !spent.SpentAt.Equal(t0.Add(time.Minute)) || spent.Fingerprint != store.Fingerprint(accessToken) {
		t.Errorf("invitation record %+v; want spent at %v with the access token's fingerprint", spent, t0.Add(time.Minute))
	}

	// Reopened: refused, nothing stored.
	before := saved(t, e.store, "study.p1")
	e.store.ResetCalls()
	resp = e.open("study", v)
	body = readPage(t, resp)
	if resp.StatusCode != http.StatusGone || !strings.Contains(body, "already connected study.p1") {
		t.Errorf("reopened: status %d; want 410 saying it was used; page:\n%s", resp.StatusCode, e.masked(body))
	}
	if len(resp.Cookies()) != 0 || len(e.store.AuthStates("study")) != 0 {
		t.Errorf("reopened: %d cookies, %d pending authorizations; want none", len(resp.Cookies()), len(e.store.AuthStates("study")))
	}
	if after := saved(t, e.store, "study.p1"); *after != *before {
		t.Errorf("reopened: the account changed")
	}
	for _, c := range e.store.Calls() {
		if c.Op != storetest.OpGetInvite {
			t.Errorf("reopened: store call %s; want only the invitation's read", c)
		}
	}
}

func TestInvitationRefused(t *testing.T) {
	e0 := newEnv(t)
	_, v := e0.issue("study", "p1", time.Hour)
	raw, _ := base64.RawURLEncoding.DecodeString(v)
	raw[5] ^= 0x20
	altered := base64.RawURLEncoding.EncodeToString(raw)
	other, _ := invite.New(invite.Options{Key: make([]byte, invite.KeySize)})
	_, forged, _ := other.Issue("study", "p1", time.Hour)
	_, forGoogle := e0.issue("google", "p1", time.Hour)
	_, forOther := e0.issue("study-b", "p1", time.Hour)

	tests := []struct {
		name, conn, value string
		advance           time.Duration
		status            int
		want              string
	}{
		{"altered", "study", altered, 0, http.StatusBadRequest, "not valid"},
		{"cut short", "study", v[:len(v)-3], 0, http.StatusBadRequest, "not valid"},
		{"forged with another key", "study", forged, 0, http.StatusBadRequest, "not valid"},
		{"another connection's", "study", forOther, 0, http.StatusBadRequest, "not valid"},
		{"empty", "study", "", 0, http.StatusBadRequest, "not valid"},
		{"expired", "study", v, time.Hour, http.StatusGone, "expired at 2026-10-01T13:00:00Z"},
		{"single-account connection", "google", forGoogle, 0, http.StatusNotFound, "holds one account"},
		{"unknown connection", "nosuch", v, 0, http.StatusNotFound, "No connection named"},
	}
	for _, tt := range tests {
		e := newEnv(t)
		e.clock.advance(tt.advance)
		resp := e.open(tt.conn, tt.value)
		body := readPage(t, resp)
		if resp.StatusCode != tt.status || !strings.Contains(body, tt.want) {
			t.Errorf("%s: status %d, page has %q: %t; want %d and the text; page:\n%s", tt.name, resp.StatusCode, tt.want,
				strings.Contains(body, tt.want), tt.status, e.masked(body))
		}
		if len(resp.Cookies()) != 0 {
			t.Errorf("%s: %d cookies set; want none", tt.name, len(resp.Cookies()))
		}
		if calls := e.store.Calls(); len(calls) != 0 {
			t.Errorf("%s: store calls %v; want none", tt.name, calls)
		}
		if strings.Contains(body, tt.value) && tt.value != "" {
			t.Errorf("%s: the page echoes the invitation", tt.name)
		}
	}

	// Without a signing key no invitation is accepted.
	e := newEnv(t)
	e.h.invites = nil
	resp := e.open("study", v)
	if body := readPage(t, resp); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "INVITE_SIGNING_KEY") {
		t.Errorf("without a key: status %d; want 404 naming INVITE_SIGNING_KEY", resp.StatusCode)
	}
}

// Two sign-ins from one invitation (two tabs): the first to finish connects, the second stores
// nothing.
func TestInvitationSpentMeanwhile(t *testing.T) {
	e := newEnv(t)
	inv, v := e.issue("study", "p2", time.Hour)
	s1, ck1 := stateOf(t, e.open("study", v), "study")
	s2, ck2 := stateOf(t, e.open("study", v), "study")
	e.mu.Lock()
	e.states = append(e.states, s1, s2)
	e.mu.Unlock()
	if resp := e.callback("study", query("state", s1, "code", authCode), ck1); resp.StatusCode != http.StatusOK {
		t.Fatalf("first: status %d; want 200", resp.StatusCode)
	}
	first := saved(t, e.store, "study.p2")
	e.ex["study"].tok.AccessToken = accessToken + "-second"
	resp := e.callback("study", query("state", s2, "code", authCode), ck2)
	body := readPage(t, resp)
	if resp.StatusCode != http.StatusGone || !strings.Contains(body, "while this sign-in was under way") {
		t.Errorf("second: status %d; want 410; page:\n%s", resp.StatusCode, e.masked(body))
	}
	if after := saved(t, e.store, "study.p2"); *after != *first {
		t.Errorf("second sign-in changed the account")
	}
	if got := e.store.Invites("study.p2")[inv.ID]; got.Fingerprint != store.Fingerprint(accessToken) {
		t.Errorf("invitation record names another save")
	}
}

// A save that landed but whose answer was lost is this sign-in's own: connected.
func TestInvitationLostAnswer(t *testing.T) {
	e := newEnv(t)
	_, v := e.issue("study", "p3", time.Hour)
	state, ck := stateOf(t, e.open("study", v), "study")
	e.mu.Lock()
	e.states = append(e.states, state)
	e.mu.Unlock()
	e.store.Inject(1, storetest.Fault{Op: storetest.OpSaveInvitedConsent, Applied: true})
	resp := e.callback("study", query("state", state, "code", authCode), ck)
	if body := readPage(t, resp); resp.StatusCode != http.StatusOK {
		t.Errorf("status %d; want 200; page:\n%s", resp.StatusCode, e.masked(body))
	}
	// A failure that did not land says so.
	_, v = e.issue("study", "p4", time.Hour)
	state, ck = stateOf(t, e.open("study", v), "study")
	e.mu.Lock()
	e.states = append(e.states, state)
	e.mu.Unlock()
	e.store.Inject(1, storetest.Fault{Op: storetest.OpSaveInvitedConsent})
	resp = e.callback("study", query("state", state, "code", authCode), ck)
	if body := readPage(t, resp); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "invitation link again") {
		t.Errorf("status %d; want 503 asking to open the invitation again; page:\n%s", resp.StatusCode, e.masked(body))
	}
	if _, ok := e.store.Peek("study.p4"); ok {
		t.Errorf("study.p4 stored after a failed save")
	}
}
