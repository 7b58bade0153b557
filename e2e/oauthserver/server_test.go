package oauthserver_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/freshtoken/freshtoken/e2e/oauthserver"
)

const (
	redirectURI = "http://127.0.0.1:7071/api/callback/demo"
	secret      = "s3cret-for-tests"
	accountID   = "acct-42"
)

// fakeClock is the grace-window clock, advanced by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fp fingerprints a secret for test output without revealing it.
func fp(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:4])
}

func newServer(t *testing.T, opts oauthserver.Options) *oauthserver.Server {
	t.Helper()
	if opts.Clients == nil {
		opts.Clients = []oauthserver.Client{
			{ID: "basic-client", Secret: secret, RedirectURIs: []string{redirectURI}, Scopes: []string{"activity", "sleep", "profile"}, AuthMethod: oauthserver.AuthMethodBasic},
			{ID: "post-client", Secret: secret, RedirectURIs: []string{redirectURI}, Scopes: []string{"activity", "sleep", "profile"}, AuthMethod: oauthserver.AuthMethodPost},
			{ID: "pkce-client", Secret: secret, RedirectURIs: []string{redirectURI}, Scopes: []string{"activity"}, RequirePKCE: true},
		}
	}
	if opts.AccessTokenLifespan == 0 {
		opts.AccessTokenLifespan = time.Minute
	}
	if opts.AccountID == "" {
		opts.AccountID = accountID
	}
	srv, err := oauthserver.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

func oauthConfig(srv *oauthserver.Server, clientID string, style oauth2.AuthStyle, scopes ...string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     clientID,
		ClientSecret: secret,
		Endpoint:     oauth2.Endpoint{AuthURL: srv.AuthURL(), TokenURL: srv.TokenURL(), AuthStyle: style},
		RedirectURL:  redirectURI,
		Scopes:       scopes,
	}
}

// httpClient does not follow redirects, so the callback URL (which has no
// server behind it) can be read from the Location header.
func httpClient() *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

func clientCtx(t *testing.T) context.Context {
	return context.WithValue(t.Context(), oauth2.HTTPClient, httpClient())
}

// authorize runs the authorization request and returns the callback's query.
func authorize(t *testing.T, cfg *oauth2.Config, opts ...oauth2.AuthCodeOption) url.Values {
	t.Helper()
	const state = "state-0123456789"
	resp, err := httpClient().Get(cfg.AuthCodeURL(state, opts...))
	if err != nil {
		t.Fatalf("GET authorize: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("authorize status = %d (%s); want 303", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatalf("parse Location: %v", err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirectURI {
		t.Fatalf("redirected to %q; want %q", got, redirectURI)
	}
	q := loc.Query()
	if got := q.Get("state"); got != state {
		t.Fatalf("state = %q; want %q", got, state)
	}
	return q
}

// connect runs the full code flow with PKCE and returns the first token.
func connect(t *testing.T, cfg *oauth2.Config) *oauth2.Token {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	q := authorize(t, cfg, oauth2.S256ChallengeOption(verifier))
	code := q.Get("code")
	if code == "" {
		t.Fatalf("callback has no code (error %q)", q.Get("error"))
	}
	tok, err := cfg.Exchange(clientCtx(t), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	return tok
}

// refresh forces a refresh with refreshToken.
func refresh(t *testing.T, cfg *oauth2.Config, refreshToken string) (*oauth2.Token, error) {
	t.Helper()
	return cfg.TokenSource(clientCtx(t), &oauth2.Token{RefreshToken: refreshToken}).Token()
}

func mustRefresh(t *testing.T, cfg *oauth2.Config, refreshToken string) *oauth2.Token {
	t.Helper()
	tok, err := refresh(t, cfg, refreshToken)
	if err != nil {
		t.Fatalf("refresh %s: %v", fp(refreshToken), err)
	}
	return tok
}

func wantErrorCode(t *testing.T, err error, code string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("error = %v; want *oauth2.RetrieveError with %q", err, code)
	}
	if re.ErrorCode != code {
		t.Fatalf("error code = %q (HTTP %d); want %q", re.ErrorCode, re.Response.StatusCode, code)
	}
}

func TestCodeFlow(t *testing.T) {
	tests := []struct {
		clientID string
		style    oauth2.AuthStyle
	}{
		{"basic-client", oauth2.AuthStyleInHeader},
		{"post-client", oauth2.AuthStyleInParams},
	}
	for _, tt := range tests {
		t.Run(tt.clientID, func(t *testing.T) {
			srv := newServer(t, oauthserver.Options{})
			cfg := oauthConfig(srv, tt.clientID, tt.style, "activity", "sleep")
			tok := connect(t, cfg)

			if tok.AccessToken == "" || tok.RefreshToken == "" {
				t.Fatalf("got access %d bytes, refresh %d bytes; want both", len(tok.AccessToken), len(tok.RefreshToken))
			}
			if got := tok.Type(); got != "Bearer" {
				t.Errorf("token type = %q; want Bearer", got)
			}
			if got := tok.Extra("scope"); got != "activity sleep" {
				t.Errorf("scope = %v; want %q", got, "activity sleep")
			}
			if got := tok.Extra("user_id"); got != accountID {
				t.Errorf("user_id = %v; want %q", got, accountID)
			}
			if d := time.Until(tok.Expiry); d <= 0 || d > time.Minute+5*time.Second {
				t.Errorf("expiry in %v; want within the 1m lifespan", d)
			}
			if !srv.Accepts(tok.RefreshToken) {
				t.Error("Accepts(new refresh token) = false; want true")
			}
			if !srv.ActiveAccessToken(tok.AccessToken) {
				t.Error("ActiveAccessToken(new access token) = false; want true")
			}
			if srv.ActiveAccessToken(tok.RefreshToken) {
				t.Error("ActiveAccessToken(refresh token) = true; want false")
			}
			if got, want := srv.Stats(), (oauthserver.Stats{CodeExchanges: 1}); got != want {
				t.Errorf("Stats = %+v; want %+v", got, want)
			}

			next := mustRefresh(t, cfg, tok.RefreshToken)
			if next.Extra("user_id") != accountID {
				t.Errorf("refresh user_id = %v; want %q", next.Extra("user_id"), accountID)
			}
			if next.Extra("scope") != "activity sleep" {
				t.Errorf("refresh scope = %v; want %q", next.Extra("scope"), "activity sleep")
			}
		})
	}
}

func TestCodeCannotBeReused(t *testing.T) {
	srv := newServer(t, oauthserver.Options{})
	cfg := oauthConfig(srv, "basic-client", oauth2.AuthStyleInHeader, "activity")
	q := authorize(t, cfg)
	if _, err := cfg.Exchange(clientCtx(t), q.Get("code")); err != nil {
		t.Fatalf("first Exchange: %v", err)
	}
	_, err := cfg.Exchange(clientCtx(t), q.Get("code"))
	wantErrorCode(t, err, "invalid_grant")
	if got, want := srv.Stats(), (oauthserver.Stats{CodeExchanges: 1, CodeExchangeFailures: 1}); got != want {
		t.Errorf("Stats = %+v; want %+v", got, want)
	}
}

// TestAuthMethodEnforced sends each client's credentials the other way.
func TestAuthMethodEnforced(t *testing.T) {
	tests := []struct {
		clientID string
		right    oauth2.AuthStyle
		wrong    oauth2.AuthStyle
	}{
		{"basic-client", oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams},
		{"post-client", oauth2.AuthStyleInParams, oauth2.AuthStyleInHeader},
	}
	for _, tt := range tests {
		t.Run(tt.clientID, func(t *testing.T) {
			srv := newServer(t, oauthserver.Options{})
			right := oauthConfig(srv, tt.clientID, tt.right, "activity")
			wrong := oauthConfig(srv, tt.clientID, tt.wrong, "activity")

			q := authorize(t, wrong)
			_, err := wrong.Exchange(clientCtx(t), q.Get("code"))
			wantErrorCode(t, err, "invalid_client")

			// The code survives a failed client authentication.
			tok, err := right.Exchange(clientCtx(t), q.Get("code"))
			if err != nil {
				t.Fatalf("Exchange with the registered method: %v", err)
			}
			_, err = refresh(t, wrong, tok.RefreshToken)
			wantErrorCode(t, err, "invalid_client")
			if !srv.Accepts(tok.RefreshToken) {
				t.Error("Accepts = false after a refresh rejected for client auth; want true")
			}
			mustRefresh(t, right, tok.RefreshToken)
		})
	}
}

func TestWrongSecretRejected(t *testing.T) {
	srv := newServer(t, oauthserver.Options{})
	cfg := oauthConfig(srv, "basic-client", oauth2.AuthStyleInHeader, "activity")
	tok := connect(t, cfg)
	bad := *cfg
	bad.ClientSecret = "not-the-secret"
	_, err := refresh(t, &bad, tok.RefreshToken)
	wantErrorCode(t, err, "invalid_client")
}

func TestRotation(t *testing.T) {
	srv := newServer(t, oauthserver.Options{})
	cfg := oauthConfig(srv, "basic-client", oauth2.AuthStyleInHeader, "activity")
	first := connect(t, cfg)

	second := mustRefresh(t, cfg, first.RefreshToken)
	if second.RefreshToken == first.RefreshToken {
		t.Fatal("refresh returned the same refresh token; want a rotated one")
	}
	if second.AccessToken == first.AccessToken {
		t.Fatal("refresh returned the same access token; want a new one")
	}
	if srv.Accepts(first.RefreshToken) {
		t.Error("Accepts(rotated refresh token) = true; want false")
	}
	if !srv.Accepts(second.RefreshToken) {
		t.Error("Accepts(new refresh token) = false; want true")
	}
	if srv.ActiveAccessToken(first.AccessToken) {
		t.Error("ActiveAccessToken(superseded access token) = true; want false")
	}
	if !srv.ActiveAccessToken(second.AccessToken) {
		t.Error("ActiveAccessToken(new access token) = false; want true")
	}
	third := mustRefresh(t, cfg, second.RefreshToken)
	if got, want := srv.Stats(), (oauthserver.Stats{CodeExchanges: 1, Refreshes: 2}); got != want {
		t.Errorf("Stats = %+v; want %+v", got, want)
	}
	if !srv.Accepts(third.RefreshToken) {
		t.Error("Accepts(third refresh token) = false; want true")
	}
}

// TestReuseRevokesGrant checks fosite's RFC 9700 behaviour rather than
// assuming it: presenting a rotated refresh token kills the whole chain.
func TestReuseRevokesGrant(t *testing.T) {
	srv := newServer(t, oauthserver.Options{})
	cfg := oauthConfig(srv, "post-client", oauth2.AuthStyleInParams, "activity")
	first := connect(t, cfg)
	second := mustRefresh(t, cfg, first.RefreshToken)
	third := mustRefresh(t, cfg, second.RefreshToken)

	// An unrelated grant must survive.
	other := connect(t, cfg)

	_, err := refresh(t, cfg, first.RefreshToken)
	wantErrorCode(t, err, "invalid_grant")

	if srv.Accepts(third.RefreshToken) {
		t.Error("Accepts(newest refresh token) = true after reuse; want false")
	}
	if srv.ActiveAccessToken(third.AccessToken) {
		t.Error("ActiveAccessToken(newest access token) = true after reuse; want false")
	}
	_, err = refresh(t, cfg, third.RefreshToken)
	wantErrorCode(t, err, "invalid_grant")

	if !srv.Accepts(other.RefreshToken) || !srv.ActiveAccessToken(other.AccessToken) {
		t.Error("the unrelated grant was revoked too; want it active")
	}
	want := oauthserver.Stats{CodeExchanges: 2, Refreshes: 2, RefreshFailures: 2, ReuseDetections: 2}
	if got := srv.Stats(); got != want {
		t.Errorf("Stats = %+v; want %+v", got, want)
	}
}

func TestUnknownRefreshToken(t *testing.T) {
	srv := newServer(t, oauthserver.Options{})
	cfg := oauthConfig(srv, "basic-client", oauth2.AuthStyleInHeader, "activity")
	_, err := refresh(t, cfg, "ory_rt_not-a-token.at-all")
	wantErrorCode(t, err, "invalid_grant")
	if got, want := srv.Stats(), (oauthserver.Stats{RefreshFailures: 1}); got != want {
		t.Errorf("Stats = %+v; want %+v", got, want)
	}
	if srv.Accepts("ory_rt_not-a-token.at-all") {
		t.Error("Accepts(unknown token) = true; want false")
	}
}

func TestRefreshByOtherClientRejected(t *testing.T) {
	srv := newServer(t, oauthserver.Options{})
	owner := oauthConfig(srv, "basic-client", oauth2.AuthStyleInHeader, "activity")
	thief := oauthConfig(srv, "post-client", oauth2.AuthStyleInParams, "activity")
	tok := connect(t, owner)
	_, err := refresh(t, thief, tok.RefreshToken)
	wantErrorCode(t, err, "invalid_grant")
}

func TestGrace(t *testing.T) {
	const window = 2 * time.Minute
	setup := func(t *testing.T) (*oauthserver.Server, *fakeClock, *oauth2.Config, *oauth2.Token, *oauth2.Token) {
		clock := &fakeClock{now: time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)}
		srv := newServer(t, oauthserver.Options{GraceWindow: window, Now: clock.Now})
		cfg := oauthConfig(srv, "basic-client", oauth2.AuthStyleInHeader, "activity")
		first := connect(t, cfg)
		second := mustRefresh(t, cfg, first.RefreshToken)
		return srv, clock, cfg, first, second
	}
	sameToken := func(t *testing.T, got, want *oauth2.Token) {
		t.Helper()
		if got.AccessToken != want.AccessToken || got.RefreshToken != want.RefreshToken {
			t.Fatalf("repeat returned access %s refresh %s; want the cached access %s refresh %s",
				fp(got.AccessToken), fp(got.RefreshToken), fp(want.AccessToken), fp(want.RefreshToken))
		}
	}

	t.Run("repeat within window returns the same pair", func(t *testing.T) {
		srv, clock, cfg, first, second := setup(t)
		clock.Add(window - time.Second)
		sameToken(t, mustRefresh(t, cfg, first.RefreshToken), second)
		sameToken(t, mustRefresh(t, cfg, first.RefreshToken), second)
		if !srv.Accepts(second.RefreshToken) || !srv.ActiveAccessToken(second.AccessToken) {
			t.Error("the cached pair is not active after grace repeats; want active")
		}
		if got, want := srv.Stats(), (oauthserver.Stats{CodeExchanges: 1, Refreshes: 1, GraceRepeats: 2}); got != want {
			t.Errorf("Stats = %+v; want %+v", got, want)
		}
	})

	t.Run("repeat after window is reuse", func(t *testing.T) {
		srv, clock, cfg, first, second := setup(t)
		clock.Add(window)
		_, err := refresh(t, cfg, first.RefreshToken)
		wantErrorCode(t, err, "invalid_grant")
		if srv.Accepts(second.RefreshToken) {
			t.Error("Accepts(newest refresh token) = true after reuse; want false")
		}
		if got, want := srv.Stats(), (oauthserver.Stats{CodeExchanges: 1, Refreshes: 1, RefreshFailures: 1, ReuseDetections: 1}); got != want {
			t.Errorf("Stats = %+v; want %+v", got, want)
		}
	})

	t.Run("using the new refresh token ends grace", func(t *testing.T) {
		srv, _, cfg, first, second := setup(t)
		third := mustRefresh(t, cfg, second.RefreshToken)
		_, err := refresh(t, cfg, first.RefreshToken)
		wantErrorCode(t, err, "invalid_grant")
		if srv.Accepts(third.RefreshToken) {
			t.Error("Accepts(newest refresh token) = true after reuse; want false")
		}
	})

	t.Run("using the new access token ends grace", func(t *testing.T) {
		srv, _, cfg, first, second := setup(t)
		req, err := http.NewRequest(http.MethodGet, srv.UserinfoURL(), nil)
		if err != nil {
			t.Fatal(err)
		}
		second.SetAuthHeader(req)
		resp, err := httpClient().Do(req)
		if err != nil {
			t.Fatalf("GET userinfo: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), accountID) {
			t.Fatalf("userinfo = %d %s; want 200 with the account ID", resp.StatusCode, body)
		}
		_, err = refresh(t, cfg, first.RefreshToken)
		wantErrorCode(t, err, "invalid_grant")
		if srv.Accepts(second.RefreshToken) {
			t.Error("Accepts(newest refresh token) = true after reuse; want false")
		}
	})

	t.Run("repeat by another client is not graced", func(t *testing.T) {
		srv, _, _, first, second := setup(t)
		thief := oauthConfig(srv, "post-client", oauth2.AuthStyleInParams, "activity")
		_, err := refresh(t, thief, first.RefreshToken)
		wantErrorCode(t, err, "invalid_grant")
		if srv.Stats().GraceRepeats != 0 {
			t.Errorf("GraceRepeats = %d; want 0", srv.Stats().GraceRepeats)
		}
		if srv.Accepts(second.RefreshToken) {
			t.Error("Accepts(newest refresh token) = true after reuse by another client; want false")
		}
	})

	t.Run("repeat with a wrong secret is not graced", func(t *testing.T) {
		srv, _, cfg, first, _ := setup(t)
		bad := *cfg
		bad.ClientSecret = "wrong"
		_, err := refresh(t, &bad, first.RefreshToken)
		wantErrorCode(t, err, "invalid_client")
		if srv.Stats().GraceRepeats != 0 {
			t.Errorf("GraceRepeats = %d; want 0", srv.Stats().GraceRepeats)
		}
	})
}

func TestStrictModeRepeatIsReuse(t *testing.T) {
	srv := newServer(t, oauthserver.Options{})
	cfg := oauthConfig(srv, "basic-client", oauth2.AuthStyleInHeader, "activity")
	first := connect(t, cfg)
	second := mustRefresh(t, cfg, first.RefreshToken)
	_, err := refresh(t, cfg, first.RefreshToken)
	wantErrorCode(t, err, "invalid_grant")
	if srv.Accepts(second.RefreshToken) {
		t.Error("Accepts(newest refresh token) = true after an immediate repeat; want false")
	}
}

func TestAutoConsent(t *testing.T) {
	tests := []struct {
		name      string
		mode      oauthserver.ConsentMode
		granted   []string
		wantError string
		wantScope string
	}{
		{name: "all requested", mode: oauthserver.AutoApprove, wantScope: "activity sleep profile"},
		{name: "subset", mode: oauthserver.AutoApprove, granted: []string{"sleep", "weight"}, wantScope: "sleep"},
		{name: "none", mode: oauthserver.AutoApprove, granted: []string{}, wantScope: ""},
		{name: "denied", mode: oauthserver.AutoDeny, wantError: "access_denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, oauthserver.Options{Consent: tt.mode, GrantedScopes: tt.granted})
			cfg := oauthConfig(srv, "basic-client", oauth2.AuthStyleInHeader, "activity", "sleep", "profile")
			q := authorize(t, cfg)
			if got := q.Get("error"); got != tt.wantError {
				t.Fatalf("callback error = %q; want %q", got, tt.wantError)
			}
			if tt.wantError != "" {
				if q.Get("code") != "" {
					t.Error("denied callback carries a code; want none")
				}
				return
			}
			if got := q.Get("scope"); got != tt.wantScope {
				t.Errorf("callback scope = %q; want %q", got, tt.wantScope)
			}
			tok, err := cfg.Exchange(clientCtx(t), q.Get("code"))
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if got := tok.Extra("scope"); got != tt.wantScope {
				t.Errorf("token scope = %v; want %q", got, tt.wantScope)
			}
			if tok.RefreshToken == "" {
				t.Error("no refresh token; want one without an offline scope")
			}
		})
	}
}

func TestSetConsentAndAccount(t *testing.T) {
	srv := newServer(t, oauthserver.Options{})
	cfg := oauthConfig(srv, "basic-client", oauth2.AuthStyleInHeader, "activity", "sleep")
	srv.SetConsent(oauthserver.AutoDeny, nil)
	if got := authorize(t, cfg).Get("error"); got != "access_denied" {
		t.Fatalf("error = %q; want access_denied", got)
	}
	srv.SetConsent(oauthserver.AutoApprove, []string{"activity"})
	srv.SetAccountID("acct-7")
	tok := connect(t, cfg)
	if tok.Extra("scope") != "activity" || tok.Extra("user_id") != "acct-7" {
		t.Errorf("scope %v user_id %v; want activity acct-7", tok.Extra("scope"), tok.Extra("user_id"))
	}
}

func TestAuthorizeRejects(t *testing.T) {
	srv := newServer(t, oauthserver.Options{})
	tests := []struct {
		name      string
		clientID  string
		scopes    []string
		wantError string
	}{
		{"scope not allowed", "basic-client", []string{"activity", "weight"}, "invalid_scope"},
		{"PKCE required", "pkce-client", []string{"activity"}, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := authorize(t, oauthConfig(srv, tt.clientID, oauth2.AuthStyleInHeader, tt.scopes...))
			if got := q.Get("error"); got != tt.wantError {
				t.Errorf("error = %q; want %q", got, tt.wantError)
			}
			if q.Get("code") != "" {
				t.Error("callback carries a code; want none")
			}
		})
	}

	t.Run("unregistered redirect URI", func(t *testing.T) {
		cfg := oauthConfig(srv, "basic-client", oauth2.AuthStyleInHeader, "activity")
		cfg.RedirectURL = "http://127.0.0.1:9999/elsewhere"
		resp, err := httpClient().Get(cfg.AuthCodeURL("state-0123456789"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Errorf("status %d Location %q; want 400 without redirect", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
}

func TestPKCE(t *testing.T) {
	verifier := oauth2.GenerateVerifier()
	tests := []struct {
		name     string
		clientID string
		exchange []oauth2.AuthCodeOption
		wantErr  string
	}{
		{"right verifier", "pkce-client", []oauth2.AuthCodeOption{oauth2.VerifierOption(verifier)}, ""},
		{"missing verifier", "pkce-client", nil, "invalid_grant"},
		{"wrong verifier", "pkce-client", []oauth2.AuthCodeOption{oauth2.VerifierOption(oauth2.GenerateVerifier())}, "invalid_grant"},
		{"wrong verifier, PKCE optional", "basic-client", []oauth2.AuthCodeOption{oauth2.VerifierOption(oauth2.GenerateVerifier())}, "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, oauthserver.Options{})
			cfg := oauthConfig(srv, tt.clientID, oauth2.AuthStyleInHeader, "activity")
			q := authorize(t, cfg, oauth2.S256ChallengeOption(verifier))
			_, err := cfg.Exchange(clientCtx(t), q.Get("code"), tt.exchange...)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Exchange: %v", err)
				}
				return
			}
			wantErrorCode(t, err, tt.wantErr)
			if got := srv.Stats(); got.CodeExchanges != 0 || got.CodeExchangeFailures != 1 {
				t.Errorf("Stats = %+v; want 0 exchanges and 1 failure", got)
			}
		})
	}
}

func TestRevoke(t *testing.T) {
	srv := newServer(t, oauthserver.Options{})
	cfg := oauthConfig(srv, "basic-client", oauth2.AuthStyleInHeader, "activity")
	a := connect(t, cfg)
	b := connect(t, cfg)

	if err := srv.Revoke(a.RefreshToken); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if srv.Accepts(a.RefreshToken) || srv.ActiveAccessToken(a.AccessToken) {
		t.Error("revoked grant still active; want inactive")
	}
	if !srv.Accepts(b.RefreshToken) {
		t.Error("other grant inactive after Revoke; want active")
	}
	_, err := refresh(t, cfg, a.RefreshToken)
	wantErrorCode(t, err, "invalid_grant")
	if err := srv.Revoke("ory_rt_unknown.token"); !errors.Is(err, oauthserver.ErrUnknownToken) {
		t.Errorf("Revoke(unknown) = %v; want ErrUnknownToken", err)
	}

	if err := srv.RevokeAll(); err != nil {
		t.Fatalf("RevokeAll: %v", err)
	}
	if srv.Accepts(b.RefreshToken) || srv.ActiveAccessToken(b.AccessToken) {
		t.Error("grant still active after RevokeAll; want inactive")
	}
}

func TestRevocationEndpoint(t *testing.T) {
	srv := newServer(t, oauthserver.Options{})
	cfg := oauthConfig(srv, "post-client", oauth2.AuthStyleInParams, "activity")
	tok := connect(t, cfg)
	form := url.Values{"token": {tok.RefreshToken}, "client_id": {"post-client"}, "client_secret": {secret}}
	resp, err := httpClient().PostForm(srv.RevokeURL(), form)
	if err != nil {
		t.Fatalf("POST revoke: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke status = %d; want 200", resp.StatusCode)
	}
	if srv.Accepts(tok.RefreshToken) || srv.ActiveAccessToken(tok.AccessToken) {
		t.Error("grant still active after revocation; want inactive")
	}
}

func TestUserinfoRejectsBadToken(t *testing.T) {
	srv := newServer(t, oauthserver.Options{})
	req, err := http.NewRequest(http.MethodGet, srv.UserinfoURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer ory_at_bogus.token")
	resp, err := httpClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("status = %d; want 401", resp.StatusCode)
	}
}

func TestFaults(t *testing.T) {
	t.Run("unavailable does not rotate", func(t *testing.T) {
		srv := newServer(t, oauthserver.Options{})
		cfg := oauthConfig(srv, "basic-client", oauth2.AuthStyleInHeader, "activity")
		tok := connect(t, cfg)
		srv.InjectTokenFaults(oauthserver.FaultUnavailable)
		_, err := refresh(t, cfg, tok.RefreshToken)
		wantErrorCode(t, err, "temporarily_unavailable")
		mustRefresh(t, cfg, tok.RefreshToken)
	})

	t.Run("dropped response rotates", func(t *testing.T) {
		srv := newServer(t, oauthserver.Options{})
		cfg := oauthConfig(srv, "basic-client", oauth2.AuthStyleInHeader, "activity")
		tok := connect(t, cfg)
		srv.InjectTokenFaults(oauthserver.FaultDropResponse)
		_, err := refresh(t, cfg, tok.RefreshToken)
		var re *oauth2.RetrieveError
		if err == nil || errors.As(err, &re) {
			t.Fatalf("refresh error = %v; want a transport error", err)
		}
		if srv.Accepts(tok.RefreshToken) {
			t.Error("Accepts(old refresh token) = true after a dropped refresh; want false (it rotated)")
		}
		if got := srv.Stats().Refreshes; got != 1 {
			t.Errorf("Refreshes = %d; want 1", got)
		}
		// The retry is reuse: the grant dies, as with a strict provider.
		_, err = refresh(t, cfg, tok.RefreshToken)
		wantErrorCode(t, err, "invalid_grant")
	})

	t.Run("dropped response is recoverable in grace", func(t *testing.T) {
		srv := newServer(t, oauthserver.Options{GraceWindow: time.Minute})
		cfg := oauthConfig(srv, "basic-client", oauth2.AuthStyleInHeader, "activity")
		tok := connect(t, cfg)
		srv.InjectTokenFaults(oauthserver.FaultDropResponse)
		if _, err := refresh(t, cfg, tok.RefreshToken); err == nil {
			t.Fatal("refresh succeeded; want a transport error")
		}
		next := mustRefresh(t, cfg, tok.RefreshToken)
		if !srv.Accepts(next.RefreshToken) {
			t.Error("Accepts(retried refresh token) = false; want true")
		}
	})
}

func TestOnTokenRequest(t *testing.T) {
	var mu sync.Mutex
	var grants []string
	srv := newServer(t, oauthserver.Options{OnTokenRequest: func(r *http.Request) {
		if err := r.ParseForm(); err != nil {
			return
		}
		mu.Lock()
		grants = append(grants, r.PostForm.Get("grant_type"))
		mu.Unlock()
	}})
	cfg := oauthConfig(srv, "basic-client", oauth2.AuthStyleInHeader, "activity")
	tok := connect(t, cfg)
	mustRefresh(t, cfg, tok.RefreshToken)
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(grants, ","); got != "authorization_code,refresh_token" {
		t.Errorf("hook saw %q; want %q", got, "authorization_code,refresh_token")
	}
}

// TestConcurrentRefreshes races two refreshes of one token: exactly one
// wins, the other is reuse, and the winner's pair dies with the grant.
func TestConcurrentRefreshes(t *testing.T) {
	srv := newServer(t, oauthserver.Options{})
	cfg := oauthConfig(srv, "basic-client", oauth2.AuthStyleInHeader, "activity")
	tok := connect(t, cfg)

	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = cfg.TokenSource(clientCtx(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		})
	}
	wg.Wait()
	var ok int
	for _, err := range errs {
		if err == nil {
			ok++
		}
	}
	if ok != 1 {
		t.Fatalf("%d of 2 racing refreshes succeeded (errors %v); want 1", ok, errs)
	}
	if got, want := srv.Stats(), (oauthserver.Stats{CodeExchanges: 1, Refreshes: 1, RefreshFailures: 1, ReuseDetections: 1}); got != want {
		t.Errorf("Stats = %+v; want %+v", got, want)
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name    string
		clients []oauthserver.Client
		want    []string // substrings of the error
	}{
		{"no clients", nil, []string{"no clients"}},
		{"everything wrong", []oauthserver.Client{{AuthMethod: "private_key_jwt", RedirectURIs: []string{"http://example.com/cb"}}},
			[]string{"empty ID", "empty secret", "redirect URI", "auth method"}},
		{"duplicate", []oauthserver.Client{
			{ID: "a", Secret: "s", RedirectURIs: []string{redirectURI}},
			{ID: "a", Secret: "s", RedirectURIs: []string{redirectURI}},
		}, []string{"duplicate ID"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := oauthserver.New(oauthserver.Options{Clients: tt.clients})
			if err == nil {
				t.Fatal("New succeeded; want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Error("error contains a secret")
			}
		})
	}
}
