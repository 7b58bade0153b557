package provider_test

// The presets whose quirks reach a person, driven through the real consent pages and refresh
// pass with the real token clients, against test servers answering in the providers' shapes:
// Fitbit's shutdown, Polar's missing refresh token, Withings' 30-second codes.

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/connection"
	"github.com/freshtoken/freshtoken/internal/consent"
	"github.com/freshtoken/freshtoken/internal/provider"
	"github.com/freshtoken/freshtoken/internal/refresh"
	"github.com/freshtoken/freshtoken/internal/store"
	"github.com/freshtoken/freshtoken/internal/store/storetest"
	"github.com/freshtoken/freshtoken/internal/tokenclient"
	"github.com/rs/zerolog"
)

const (
	accessToken  = "at-FLOWS-ACCESS-TOKEN-0123456789abcdefXYZ"
	refreshToken = "rt-FLOWS-REFRESH-TOKEN-0123456789abcdefXYZ"
	clientSecret = "cs-FLOWS-CLIENT-SECRET-0123456789abcdefXYZ"
	authCode     = "code-FLOWS-AUTH-CODE-0123456789abcdefXYZ"
)

var t0 = time.Date(2026, 10, 5, 12, 0, 0, 0, time.UTC)

// fitbit410 is a shut-down endpoint's answer: a page long enough to crowd a cut status line.
var fitbit410 = "<!DOCTYPE html><html><head><title>410 Gone</title></head><body><h1>Gone</h1><p>" +
	strings.Repeat("The Fitbit Web API has been retired. ", 10) + "</p></body></html>"

func clock() time.Time { return t0 }

// tokenEndpoint answers every request with one canned answer and counts them.
type tokenEndpoint struct {
	*httptest.Server
	mu   sync.Mutex
	hits int
}

func newTokenEndpoint(t *testing.T, status int, body string) *tokenEndpoint {
	t.Helper()
	te := &tokenEndpoint{}
	te.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		te.mu.Lock()
		te.hits++
		te.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(te.Close)
	return te
}

func (te *tokenEndpoint) count() int {
	te.mu.Lock()
	defer te.mu.Unlock()
	return te.hits
}

// conn is a connection of the named preset whose token endpoint is tokenURL.
func conn(t *testing.T, name, preset, tokenURL string, scopes ...string) *connection.Connection {
	t.Helper()
	p, ok := provider.Lookup(preset)
	if !ok {
		t.Fatalf("no preset %s", preset)
	}
	if tokenURL != "" {
		p.TokenURL = tokenURL
	}
	redirect := "https://freshtoken.example/api/callback/" + name
	return &connection.Connection{
		Name: name, Preset: p, Scopes: scopes, RedirectURL: redirect,
		AuthorizeURL: "https://freshtoken.example/api/authorize/" + name,
		Client: tokenclient.For(tokenclient.Options{
			Preset: p, ClientID: "client-" + name, ClientSecret: clientSecret, Scopes: scopes,
			RedirectURL: redirect, Timeout: 2 * time.Second, Now: clock,
		}),
	}
}

// consentFlow serves Authorize and Callback for the connections.
func consentFlow(t *testing.T, st consent.Store, conns ...*connection.Connection) *http.ServeMux {
	t.Helper()
	h := consent.New(consent.Options{Store: st, Connections: conns, Now: clock, Log: zerolog.Nop()})
	mux := http.NewServeMux()
	h.Register(mux)
	return mux
}

func get(mux *http.ServeMux, target string, cookies ...*http.Cookie) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	for _, c := range cookies {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	return w
}

// signIn opens Authorize, then brings the provider's redirect back to Callback with a code.
func signIn(t *testing.T, mux *http.ServeMux, name string) *httptest.ResponseRecorder {
	t.Helper()
	a := get(mux, "/api/authorize/"+name)
	if a.Code != http.StatusFound {
		t.Fatalf("authorize: got status %d; want 302: %s", a.Code, a.Body)
	}
	loc, err := url.Parse(a.Header().Get("Location"))
	if err != nil {
		t.Fatalf("authorize: Location: %v", err)
	}
	q := url.Values{"code": {authCode}, "state": {loc.Query().Get("state")}}
	return get(mux, "/api/callback/"+name+"?"+q.Encode(), a.Result().Cookies()...)
}

// page is the text of an HTML page, unescaped.
func page(w *httptest.ResponseRecorder) string { return html.UnescapeString(w.Body.String()) }

func checkNoSecret(t *testing.T, what, text string) {
	t.Helper()
	for _, s := range []string{accessToken, refreshToken, clientSecret, authCode} {
		if strings.Contains(text, s) {
			t.Errorf("%s holds a secret (%d bytes)", what, len(s))
		}
	}
}

func TestFitbitAuthorizeIsGone(t *testing.T) {
	te := newTokenEndpoint(t, http.StatusGone, fitbit410)
	c := conn(t, "steps", "fitbit", te.URL)
	mux := consentFlow(t, storetest.New(), c)

	w := get(mux, "/api/authorize/steps")
	if w.Code != http.StatusGone {
		t.Errorf("got status %d; want 410", w.Code)
	}
	body := page(w)
	for _, s := range append([]string{"google preset"}, provider.GoogleHealthScopeNames...) {
		if !strings.Contains(body, s) {
			t.Errorf("the page does not say %q:\n%s", s, body)
		}
	}
	if w.Header().Get("Location") != "" {
		t.Errorf("got a redirect to %q; want none", w.Header().Get("Location"))
	}
	if n := te.count(); n != 0 {
		t.Errorf("the token endpoint got %d requests; want none", n)
	}
}

// TestFitbitCallbackMeetsGone: a sign-in started before the shutdown (the page let it start)
// comes back to a token endpoint that answers 410.
func TestFitbitCallbackMeetsGone(t *testing.T) {
	te := newTokenEndpoint(t, http.StatusGone, fitbit410)
	c := conn(t, "steps", "fitbit", te.URL)
	started := *c
	started.Preset.Gone = "" // what Authorize saw
	st := storetest.New()
	mux := consentFlow(t, st, &started)

	w := signIn(t, mux, "steps")
	if w.Code != http.StatusGone {
		t.Errorf("got status %d; want 410", w.Code)
	}
	body := page(w)
	for _, s := range provider.GoogleHealthScopeNames {
		if !strings.Contains(body, s) {
			t.Errorf("the page does not name %s:\n%s", s, body)
		}
	}
	if _, ok := st.Peek("steps"); ok {
		t.Errorf("a connection was stored; want none")
	}
	checkNoSecret(t, "the page", body)
}

func pass(t *testing.T, st *storetest.Memory, c *connection.Connection) refresh.Result {
	t.Helper()
	r := refresh.New(refresh.Options{
		Store: st, Now: clock, Log: zerolog.Nop(), Owner: "flows-test",
		Connections: []*connection.Connection{c},
	})
	rep := r.Run(context.Background())
	if rep.Err != nil || len(rep.Results) != 1 {
		t.Fatalf("pass: got %v with %d results; want one result", rep.Err, len(rep.Results))
	}
	return rep.Results[0]
}

func TestFitbitRefreshMeetsGone(t *testing.T) {
	te := newTokenEndpoint(t, http.StatusGone, fitbit410)
	c := conn(t, "steps", "fitbit", te.URL)
	st := storetest.New()
	if err := st.Put(context.Background(), &store.Record{
		Name: "steps", HasAccess: true, HasRefresh: true, HasStatus: true,
		Tokens: store.Tokens{AccessToken: accessToken, RefreshToken: refreshToken, ExpiresAt: t0.Add(5 * time.Minute)},
		Status: store.Status{State: store.StateOK, Provider: "fitbit", AccountID: "26FWFL"},
	}); err != nil {
		t.Fatal(err)
	}

	res := pass(t, st, c)
	if res.Outcome != refresh.Failed || res.Class != refresh.ClassGone {
		t.Errorf("got %s (%s); want failed (gone)", res.Outcome, res.Class)
	}
	line := res.Line()
	for _, s := range append([]string{"google preset"}, provider.GoogleHealthScopeNames...) {
		if !strings.Contains(line, s) {
			t.Errorf("the pass's line does not say %q: %s", s, line)
		}
	}
	if sc, _ := st.Peek("steps"); sc.Status.State != store.StateNeedsConsent {
		t.Errorf("got state %q; want %q", sc.Status.State, store.StateNeedsConsent)
	}
	if n := te.count(); n != 1 {
		t.Errorf("the token endpoint got %d requests; want 1", n)
	}
	checkNoSecret(t, "the pass's line", line)
}

// TestPolarConnectsWithoutRefreshToken: the consent stores the access token alone without a
// warning, and a pass leaves the connection alone and says why.
func TestPolarConnectsWithoutRefreshToken(t *testing.T) {
	te := newTokenEndpoint(t, http.StatusOK, `{"access_token":"`+accessToken+`","token_type":"bearer","expires_in":31535999,"x_user_id":10000000}`)
	c := conn(t, "polar", "polar", te.URL, "accesslink.read_all")
	st := storetest.New()
	mux := consentFlow(t, st, c)

	w := signIn(t, mux, "polar")
	if w.Code != http.StatusOK {
		t.Fatalf("callback: got status %d; want 200: %s", w.Code, page(w))
	}
	body := page(w)
	if strings.Contains(body, "issued no refresh token") {
		t.Errorf("the page warns about the missing refresh token; want no warning for polar:\n%s", body)
	}
	if !strings.Contains(body, "10000000") {
		t.Errorf("the page does not name the account 10000000:\n%s", body)
	}
	checkNoSecret(t, "the page", body)
	rec, ok := st.Peek("polar")
	if !ok {
		t.Fatal("nothing was stored")
	}
	saved := rec.Tokens
	if saved.AccessToken != accessToken || saved.RefreshToken != "" || !saved.RefreshExpiresAt.IsZero() {
		t.Errorf("stored access token %d bytes, refresh token %d bytes, refresh deadline %v; want the access token alone",
			len(saved.AccessToken), len(saved.RefreshToken), saved.RefreshExpiresAt)
	}
	if got := rec.Status.AccountID; got != "10000000" {
		t.Errorf("stored AccountID %q; want 10000000", got)
	}

	// The pass: the refresh row exists with an empty value, as SaveConsent writes it.
	st.ResetCalls()
	hits := te.count()
	res := pass(t, st, c)
	if res.Outcome != refresh.NotDue {
		t.Errorf("got outcome %s (%s); want %s", res.Outcome, res.Line(), refresh.NotDue)
	}
	if !strings.Contains(res.Detail, "no refresh token") {
		t.Errorf("got detail %q; want it to say there is no refresh token", res.Detail)
	}
	if n := te.count() - hits; n != 0 {
		t.Errorf("the pass sent %d token requests; want none", n)
	}
	for _, m := range st.Calls() {
		if m.Op != storetest.OpList {
			t.Errorf("the pass called %s; want only List", m)
		}
	}
}

// TestWithingsExpiredCodeOnCallback: the callback page says why the code was refused.
func TestWithingsExpiredCodeOnCallback(t *testing.T) {
	te := newTokenEndpoint(t, http.StatusOK, `{"status":503,"body":{},"error":"Invalid Params: invalid code"}`)
	c := conn(t, "scale", "withings", te.URL, "user.metrics")
	st := storetest.New()
	mux := consentFlow(t, st, c)

	w := signIn(t, mux, "scale")
	if w.Code < 400 {
		t.Errorf("got status %d; want a failure", w.Code)
	}
	body := page(w)
	for _, s := range []string{"refused the code", "30 seconds", "/api/authorize/scale"} {
		if !strings.Contains(body, s) {
			t.Errorf("the page does not say %q:\n%s", s, body)
		}
	}
	if _, ok := st.Peek("scale"); ok {
		t.Errorf("a connection was stored; want none")
	}
	checkNoSecret(t, "the page", body)
}
