package consent

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/connection"
	"github.com/freshtoken/freshtoken/internal/invite"
	"github.com/freshtoken/freshtoken/internal/provider"
	"github.com/freshtoken/freshtoken/internal/store"
	"github.com/freshtoken/freshtoken/internal/store/storetest"
	"github.com/freshtoken/freshtoken/internal/tokenclient"
	"github.com/rs/zerolog"
	"golang.org/x/oauth2"
)

// The fakes' secrets. Each is long and token-like, so that a leak cannot hide behind chance.
const (
	accessToken  = "ya29.FAKE-ACCESS-TOKEN-0123456789abcdefXYZ"
	refreshToken = "1//FAKE-REFRESH-TOKEN-0123456789abcdefXYZ"
	clientSecret = "FAKE-CLIENT-SECRET-0123456789abcdefXYZ"
	authCode     = "4/FAKE-AUTH-CODE-0123456789abcdefXYZ"
)

var t0 = time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)

// inviteKey signs the env's invitations.
var inviteKey = bytes.Repeat([]byte{0x5a}, invite.KeySize)

const (
	googleRedirect = "https://freshtoken.example/api/callback/google"
	stravaRedirect = "http://localhost:7071/api/callback/strava"
	studyRedirect  = "https://freshtoken.example/api/callback/study"
	sleepScope     = "https://www.googleapis.com/auth/googlehealth.sleep.readonly"
	emailScopeLong = "https://www.googleapis.com/auth/userinfo.email"
)

// succeeded is the number of calls of op that returned no error.
func succeeded(s *storetest.Memory, op storetest.Op) int {
	n := 0
	for _, c := range s.Calls() {
		if c.Op == op && c.Err == nil {
			n++
		}
	}
	return n
}

// saveCount is the number of consents stored.
func saveCount(s *storetest.Memory) int { return succeeded(s, storetest.OpSaveConsent) }

// seedState records a pending authorization as Authorize would.
func seedState(t testing.TB, s *storetest.Memory, name, state string, a store.AuthState) {
	t.Helper()
	if err := s.PutAuthState(context.Background(), name, stateKey(state), a); err != nil {
		t.Fatalf("seed auth state: %v", err)
	}
}

// put writes r's rows as an earlier consent or pass would have.
func put(t testing.TB, s *storetest.Memory, r store.Record) {
	t.Helper()
	if err := s.Put(context.Background(), &r); err != nil {
		t.Fatalf("put %s: %v", r.Name, err)
	}
}

// onlyState is name's single pending authorization and its key.
func onlyState(t testing.TB, s *storetest.Memory, name string) (string, store.AuthState) {
	t.Helper()
	as := s.AuthStates(name)
	if len(as) != 1 {
		t.Fatalf("%s: %d pending authorizations stored; want 1", name, len(as))
	}
	for k, a := range as {
		return k, a
	}
	return "", store.AuthState{}
}

// saved is what the store holds for name after a consent.
func saved(t testing.TB, s *storetest.Memory, name string) *store.Record {
	t.Helper()
	r, ok := s.Peek(name)
	if !ok {
		t.Fatalf("%s: no connection stored", name)
	}
	return r
}

// fakeExchanger issues tok for any code, or fails with err.
type fakeExchanger struct {
	pkce     bool
	redirect string

	mu        sync.Mutex
	tok       tokenclient.Token
	err       error
	calls     []exchangeCall
	verifiers []string // given to AuthCodeURL: every verifier Authorize stored
}

type exchangeCall struct{ code, verifier string }

func (f *fakeExchanger) AuthCodeURL(state, verifier string) string {
	f.mu.Lock()
	if verifier != "" {
		f.verifiers = append(f.verifiers, verifier)
	}
	f.mu.Unlock()
	v := url.Values{"state": {state}, "redirect_uri": {f.redirect}}
	if verifier != "" {
		v.Set("code_challenge", oauth2.S256ChallengeFromVerifier(verifier))
	}
	return "https://provider.example/auth?" + v.Encode()
}

func (f *fakeExchanger) UsesPKCE() bool { return f.pkce }

func (f *fakeExchanger) Exchange(_ context.Context, code, verifier string) (*tokenclient.Token, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, exchangeCall{code, verifier})
	if f.err != nil {
		return nil, f.err
	}
	tok := f.tok
	tok.Scope = slices.Clone(f.tok.Scope)
	return &tok, nil
}

// Refresh is never called by consent.
func (f *fakeExchanger) Refresh(context.Context, string) (*tokenclient.Token, error) {
	return nil, errors.New("consent never refreshes")
}

func (f *fakeExchanger) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// syncBuffer collects log lines from concurrent handlers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// env is a Handler on a mux with fake dependencies. Connections: google (PKCE, https redirect),
// strava (no PKCE, http://localhost redirect, comma scopes), fitbit (shut down) and spotifyish (a
// custom preset whose refresh tokens live 180 days from consent).
type env struct {
	t     testing.TB
	h     *Handler
	mux   *http.ServeMux
	store *storetest.Memory
	ex    map[string]*fakeExchanger
	clock *clock
	logs  *syncBuffer
	// invites signs invitations with inviteKey, on the env's clock.
	invites *invite.Signer
	// states are the states Authorize issued, for leak checks.
	mu     sync.Mutex
	states []string
}

// testSettings are what the settings say of one connection.
type testSettings struct {
	Name                   string
	Preset                 provider.Preset
	ClientID, ClientSecret string
	Scopes                 []string
	RedirectURL            string
	Many                   bool
}

func testConnections() map[string]testSettings {
	google, _ := provider.Lookup("google")
	strava, _ := provider.Lookup("strava")
	fitbit, _ := provider.Lookup("fitbit")
	custom := provider.Preset{
		Name: provider.Custom, AuthURL: "https://auth.example/authorize", TokenURL: "https://auth.example/token",
		AuthStyle: oauth2.AuthStyleInHeader, ScopeSeparator: " ",
		RefreshTokenLifetime: 180 * 24 * time.Hour, RefreshLifetimeFromConsent: true,
	}
	return map[string]testSettings{
		"google": {Name: "google", Preset: google, ClientID: "google-client", ClientSecret: clientSecret,
			Scopes: []string{"email", sleepScope}, RedirectURL: googleRedirect},
		"strava": {Name: "strava", Preset: strava, ClientID: "12345", ClientSecret: clientSecret,
			Scopes: []string{"read", "activity:read_all"}, RedirectURL: stravaRedirect},
		"fitbit": {Name: "fitbit", Preset: fitbit, ClientID: "FB123", ClientSecret: clientSecret,
			Scopes: []string{"activity", "sleep"}, RedirectURL: "https://freshtoken.example/api/callback/fitbit"},
		"spotifyish": {Name: "spotifyish", Preset: custom, ClientID: "sp", ClientSecret: clientSecret,
			Scopes: []string{"user-read-recently-played"}, RedirectURL: "https://freshtoken.example/api/callback/spotifyish"},
		"study": {Name: "study", Preset: google, ClientID: "study-client", ClientSecret: clientSecret,
			Scopes: []string{"email"}, RedirectURL: studyRedirect, Many: true},
	}
}

func newEnv(t testing.TB) *env { return newEnvOn(t, storetest.New()) }

// newEnvOn is newEnv with the Handler on s.
func newEnvOn(t testing.TB, s *storetest.Memory) *env {
	e := &env{
		t:     t,
		mux:   http.NewServeMux(),
		store: s,
		ex:    map[string]*fakeExchanger{},
		clock: &clock{t: t0},
		logs:  &syncBuffer{},
	}
	var conns []*connection.Connection
	for name, c := range testConnections() {
		ex := &fakeExchanger{
			pkce:     c.Preset.PKCE,
			redirect: c.RedirectURL,
			tok: tokenclient.Token{
				AccessToken: accessToken, TokenType: "Bearer", RefreshToken: refreshToken, Rotated: true,
				Expiry: t0.Add(time.Hour), AccountID: "acct-1",
			},
		}
		e.ex[name] = ex
		conns = append(conns, resolve(c, ex))
	}
	signer, err := invite.New(invite.Options{Key: inviteKey, Now: e.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	e.invites = signer
	e.h = New(Options{
		Store:       e.store,
		Connections: conns,
		Now:         e.clock.now,
		Log:         zerolog.New(e.logs),
		Invites:     signer,
	})
	e.h.Register(e.mux)
	t.Cleanup(func() { e.noSecrets("the log", e.logs.String()) })
	return e
}

// resolve is the connection the handler wiring makes of c, with client as its token client.
func resolve(c testSettings, client tokenclient.Provider) *connection.Connection {
	return &connection.Connection{
		Name: c.Name, Preset: c.Preset, Scopes: c.Scopes, RedirectURL: c.RedirectURL,
		AuthorizeURL: "https://freshtoken.example/api/authorize/" + c.Name, Client: client, Many: c.Many,
	}
}

// secrets lists every secret the handler has seen, labelled for messages that never print them.
func (e *env) secrets() map[string]string {
	s := map[string]string{
		"access token": accessToken, "refresh token": refreshToken,
		"client secret": clientSecret, "authorization code": authCode,
	}
	i := 0
	for _, ex := range e.ex {
		ex.mu.Lock()
		for _, v := range ex.verifiers {
			s["verifier #"+strconv.Itoa(i)] = v
			i++
		}
		ex.mu.Unlock()
	}
	e.mu.Lock()
	for i, st := range e.states {
		s["state #"+strconv.Itoa(i)] = st
	}
	e.mu.Unlock()
	return s
}

// masked is text with every secret replaced by its label, safe to print.
func (e *env) masked(text string) string {
	for label, v := range e.secrets() {
		text = strings.ReplaceAll(text, v, "<"+label+">")
	}
	return text
}

// noSecrets fails when text holds a secret, naming it by label only.
func (e *env) noSecrets(where, text string) {
	e.t.Helper()
	for label, v := range e.secrets() {
		if strings.Contains(text, v) {
			e.t.Errorf("%s contains the %s (length %d)", where, label, len(v))
		}
	}
}

// authorize sends GET /api/authorize/<name>?<rawQuery>.
func (e *env) authorize(name, rawQuery string) *http.Response {
	r := httptest.NewRequest(http.MethodGet, "/api/authorize/"+name, nil)
	r.URL.RawQuery = rawQuery
	w := httptest.NewRecorder()
	e.mux.ServeHTTP(w, r)
	return w.Result()
}

// start runs Authorize and returns the state and the cookie it set.
func (e *env) start(name, rawQuery string) (string, *http.Cookie) {
	e.t.Helper()
	resp := e.authorize(name, rawQuery)
	if resp.StatusCode != http.StatusFound {
		e.t.Fatalf("authorize %s: status %d; want 302", name, resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		e.t.Fatalf("authorize %s: Location does not parse", name)
	}
	state := loc.Query().Get("state")
	ck := cookieNamed(resp, cookieName(name))
	if state == "" || ck == nil {
		e.t.Fatalf("authorize %s: state present %t, cookie present %t; want both", name, state != "", ck != nil)
	}
	e.mu.Lock()
	e.states = append(e.states, state)
	e.mu.Unlock()
	return state, ck
}

// callback sends GET /api/callback/<name>?<rawQuery> with cookies.
func (e *env) callback(name, rawQuery string, cookies ...*http.Cookie) *http.Response {
	r := httptest.NewRequest(http.MethodGet, "/api/callback/"+name, nil)
	r.URL.RawQuery = rawQuery
	for _, c := range cookies {
		r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	w := httptest.NewRecorder()
	e.mux.ServeHTTP(w, r)
	return w.Result()
}

func cookieNamed(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func query(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v.Encode()
}
