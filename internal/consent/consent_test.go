package consent

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/connection"
	"github.com/freshtoken/freshtoken/internal/provider"
	"github.com/freshtoken/freshtoken/internal/store"
	"github.com/freshtoken/freshtoken/internal/store/storetest"
	"github.com/freshtoken/freshtoken/internal/tokenclient"
	"github.com/rs/zerolog"
	"golang.org/x/oauth2"
)

// readPage checks the headers every page carries and returns the body.
func readPage(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	want := map[string]string{
		"Content-Type":           "text/html; charset=utf-8",
		"Cache-Control":          "no-store",
		"X-Content-Type-Options": "nosniff",
		"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; " +
			"form-action 'none'; frame-ancestors 'none'",
		"Referrer-Policy": "no-referrer",
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("header %s = %q; want %q", k, got, v)
		}
	}
	return string(b)
}

// checkCleared checks that a callback response deletes the state cookie.
func checkCleared(t *testing.T, resp *http.Response, name string) {
	t.Helper()
	ck := cookieNamed(resp, cookieName(name))
	if ck == nil {
		t.Errorf("no Set-Cookie for %s; want the state cookie cleared", cookieName(name))
		return
	}
	if ck.MaxAge >= 0 || ck.Value != "" || ck.Path != "/api/callback/"+name {
		t.Errorf("cleared cookie: Max-Age %d, value length %d, Path %q; want Max-Age < 0, empty, /api/callback/%s",
			ck.MaxAge, len(ck.Value), ck.Path, name)
	}
}

// TestAuthorizeRedirect runs Authorize with the real token client, so the redirect is what a
// provider would see.
func TestAuthorizeRedirect(t *testing.T) {
	tests := []struct {
		name     string
		query    string
		authHost string
		secure   bool
		pkce     bool
		replace  bool
	}{
		{name: "google", authHost: "accounts.google.com", secure: true, pkce: true},
		{name: "strava", query: "replace=true", authHost: "www.strava.com", replace: true},
		{name: "google", query: "replace=yes", authHost: "accounts.google.com", secure: true, pkce: true},
	}
	for _, tt := range tests {
		t.Run(tt.name+"?"+tt.query, func(t *testing.T) {
			st := storetest.New()
			var conns []*connection.Connection
			for _, c := range testConnections() {
				conns = append(conns, resolve(c, tokenclient.New(tokenclient.Options{
					Preset: c.Preset, ClientID: c.ClientID, ClientSecret: c.ClientSecret,
					Scopes: c.Scopes, RedirectURL: c.RedirectURL, Timeout: time.Second,
				})))
			}
			h := New(Options{Store: st, Connections: conns, Now: func() time.Time { return t0 }, Log: zerolog.Nop()})
			mux := http.NewServeMux()
			h.Register(mux)

			r := httptest.NewRequest(http.MethodGet, "/api/authorize/"+tt.name+"?"+tt.query, nil)
			r.Host = "evil.example"
			r.Header.Set("X-Forwarded-Host", "evil.example")
			r.Header.Set("X-Forwarded-Proto", "http")
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, r)
			resp := w.Result()

			if resp.StatusCode != http.StatusFound {
				t.Fatalf("status %d; want 302", resp.StatusCode)
			}
			if got := resp.Header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q; want no-store", got)
			}
			loc, err := url.Parse(resp.Header.Get("Location"))
			if err != nil {
				t.Fatalf("Location does not parse: %v", err)
			}
			if loc.Host != tt.authHost {
				t.Errorf("redirect host %q; want %q", loc.Host, tt.authHost)
			}
			if strings.Contains(loc.String(), "evil.example") {
				t.Errorf("redirect mentions the request's Host")
			}
			q := loc.Query()
			if got, want := q.Get("redirect_uri"), testConnections()[tt.name].RedirectURL; got != want {
				t.Errorf("redirect_uri = %q; want %q", got, want)
			}
			state := q.Get("state")
			raw, err := base64.RawURLEncoding.DecodeString(state)
			if err != nil || len(raw) != 32 {
				t.Errorf("state: %d bytes, decode error %v; want 32 random bytes base64url", len(raw), err)
			}

			ck := cookieNamed(resp, "freshtoken_state_"+tt.name)
			if ck == nil {
				t.Fatalf("no state cookie")
			}
			if ck.Value != state {
				t.Errorf("cookie value differs from the state sent to the provider")
			}
			if ck.Path != "/api/callback/"+tt.name {
				t.Errorf("cookie Path = %q; want /api/callback/%s", ck.Path, tt.name)
			}
			if !ck.HttpOnly {
				t.Errorf("cookie HttpOnly = false; want true")
			}
			if ck.SameSite != http.SameSiteLaxMode {
				t.Errorf("cookie SameSite = %v; want Lax", ck.SameSite)
			}
			if ck.MaxAge <= 0 || ck.MaxAge > 600 {
				t.Errorf("cookie Max-Age = %d; want 1..600", ck.MaxAge)
			}
			if ck.Secure != tt.secure {
				t.Errorf("cookie Secure = %t; want %t", ck.Secure, tt.secure)
			}

			if n := succeeded(st, storetest.OpPutAuthState); n != 1 {
				t.Fatalf("PutAuthState calls = %d; want 1", n)
			}
			key, a := onlyState(t, st, tt.name)
			if key != stateKey(state) {
				t.Errorf("PutAuthState(%q, key %q); want (%q, sha256 of the state)", tt.name, key, tt.name)
			}
			if want := t0.Add(10 * time.Minute); !a.ExpiresAt.Equal(want) {
				t.Errorf("ExpiresAt = %v; want %v", a.ExpiresAt, want)
			}
			if a.Replace != tt.replace {
				t.Errorf("Replace = %t; want %t", a.Replace, tt.replace)
			}
			challenge := q.Get("code_challenge")
			if tt.pkce {
				if a.Verifier == "" || challenge != oauth2.S256ChallengeFromVerifier(a.Verifier) ||
					q.Get("code_challenge_method") != "S256" {
					t.Errorf("PKCE: verifier stored %t, challenge matches %t, method %q; want S256 of the stored verifier",
						a.Verifier != "", challenge == oauth2.S256ChallengeFromVerifier(a.Verifier), q.Get("code_challenge_method"))
				}
			} else if a.Verifier != "" || challenge != "" {
				t.Errorf("PKCE for a provider without it: verifier stored %t, challenge sent %t", a.Verifier != "", challenge != "")
			}
			if strings.Contains(resp.Header.Get("Location"), clientSecret) {
				t.Errorf("redirect carries the client secret")
			}
		})
	}
}

func TestAuthorizeStatesDiffer(t *testing.T) {
	e := newEnv(t)
	s1, _ := e.start("google", "")
	s2, _ := e.start("google", "")
	if s1 == s2 {
		t.Errorf("two authorizes gave the same state")
	}
}

func TestAuthorizeFailures(t *testing.T) {
	tests := []struct {
		name     string
		path     string
		putErr   error
		want     int
		wantText []string
		notText  []string
	}{
		{name: "unknown connection", path: "/api/authorize/nope", want: 404, wantText: []string{`named &#34;nope&#34;`}},
		{name: "unknown name is escaped", path: "/api/authorize/%3Cscript%3Ealert(1)%3C%2Fscript%3E", want: 404,
			wantText: []string{"&lt;script&gt;alert(1)&lt;/script&gt;"}, notText: []string{"<script>"}},
		{name: "fitbit is gone", path: "/api/authorize/fitbit", want: 410,
			wantText: []string{"shut down", "google preset", "Google Health API", "googlehealth.sleep.readonly"}},
		{name: "store down", path: "/api/authorize/google", putErr: errors.New("table service: HTTP 503"), want: 503,
			wantText: []string{"Try again"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if tt.putErr != nil {
				e.store.Inject(-1, storetest.Fault{Op: storetest.OpPutAuthState, Err: tt.putErr})
			}
			r := httptest.NewRequest(http.MethodGet, tt.path, nil)
			w := httptest.NewRecorder()
			e.mux.ServeHTTP(w, r)
			resp := w.Result()
			body := readPage(t, resp)
			if resp.StatusCode != tt.want {
				t.Errorf("status %d; want %d", resp.StatusCode, tt.want)
			}
			for _, s := range tt.wantText {
				if !strings.Contains(body, s) {
					t.Errorf("page lacks %q; page:\n%s", s, e.masked(body))
				}
			}
			for _, s := range tt.notText {
				if strings.Contains(body, s) {
					t.Errorf("page holds %q unescaped", s)
				}
			}
			if loc := resp.Header.Get("Location"); loc != "" {
				t.Errorf("Location = %q; want none", loc)
			}
			if len(resp.Cookies()) != 0 {
				t.Errorf("cookies set: %d; want none", len(resp.Cookies()))
			}
			if n := succeeded(e.store, storetest.OpPutAuthState); n != 0 {
				t.Errorf("PutAuthState calls = %d; want 0", n)
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	tests := []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/api/authorize/google/extra", 404},
		{http.MethodGet, "/api/authorize/", 404},
		{http.MethodGet, "/api/callback/google/extra", 404},
		{http.MethodPost, "/api/authorize/google", 405},
		{http.MethodPost, "/api/callback/google", 405},
		{http.MethodGet, "/api/authorize/google", 302},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			e := newEnv(t)
			w := httptest.NewRecorder()
			e.mux.ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, nil))
			if w.Code != tt.want {
				t.Errorf("status %d; want %d", w.Code, tt.want)
			}
		})
	}
}

func TestCallbackSuccess(t *testing.T) {
	e := newEnv(t)
	put(t, e.store, store.Record{Name: "google", HasStatus: true,
		Status: store.Status{State: store.StateNeedsConsent, AccountID: "acct-1", Generation: 4, ConsecutiveFailures: 3}})
	e.ex["google"].tok.Scope = []string{emailScopeLong, sleepScope, "openid"}
	state, ck := e.start("google", "")
	_, pending := onlyState(t, e.store, "google")
	e.clock.advance(time.Minute)

	resp := e.callback("google", query("state", state, "code", authCode), ck)
	body := readPage(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d; want 200; page:\n%s", resp.StatusCode, e.masked(body))
	}
	checkCleared(t, resp, "google")
	e.noSecrets("the page", body)
	e.noSecrets("the headers", strings.Join(resp.Header.Values("Set-Cookie"), "\n"))
	for _, s := range []string{"google is connected", "2026-10-01T13:00:00Z", "acct-1"} {
		if !strings.Contains(body, s) {
			t.Errorf("page lacks %q; page:\n%s", s, e.masked(body))
		}
	}

	ex := e.ex["google"]
	if len(ex.calls) != 1 {
		t.Fatalf("Exchange calls = %d; want 1", len(ex.calls))
	}
	if ex.calls[0].code != authCode {
		t.Errorf("Exchange got another code (length %d)", len(ex.calls[0].code))
	}
	if v := pending.Verifier; v == "" || ex.calls[0].verifier != v {
		t.Errorf("Exchange verifier is the stored one: %t; want true", v != "" && ex.calls[0].verifier == v)
	}
	if n := saveCount(e.store); n != 1 {
		t.Fatalf("SaveConsent calls = %d; want 1", n)
	}
	s := saved(t, e.store, "google")
	wantTokens := store.Tokens{
		AccessToken: accessToken, TokenType: "Bearer", ExpiresAt: t0.Add(time.Hour),
		Scope: emailScopeLong + " " + sleepScope + " openid", RefreshToken: refreshToken,
	}
	if s.Name != "google" || s.Tokens != wantTokens {
		t.Errorf("SaveConsent tokens differ: name %q, scope %q, expiry %v, access ok %t, refresh ok %t",
			s.Name, s.Tokens.Scope, s.Tokens.ExpiresAt, s.Tokens.AccessToken == accessToken, s.Tokens.RefreshToken == refreshToken)
	}
	now := t0.Add(time.Minute)
	wantStatus := store.Status{
		State: store.StateOK, Provider: "google", AccountID: "acct-1",
		GrantedScopes: wantTokens.Scope, ConnectedAt: now, LastSuccess: now, Generation: 5,
	}
	if s.Status != wantStatus {
		t.Errorf("SaveConsent status = %+v; want %+v", s.Status, wantStatus)
	}
}

func TestCallbackFailures(t *testing.T) {
	revoked := &tokenclient.Error{Op: "exchange", Class: tokenclient.Revoked, StatusCode: 400, Code: "invalid_grant", Detail: "Bad Request"}
	tests := []struct {
		name string
		conn string
		// setup prepares e and returns the callback's query and cookies; it may use start.
		setup     func(e *env) (string, []*http.Cookie)
		want      int
		wantText  []string
		notText   []string
		exchanged bool // Exchange was called
		errorLog  bool // an error-level line was logged
	}{
		{
			name: "unknown connection", conn: "nope",
			setup: func(e *env) (string, []*http.Cookie) { return query("state", "x", "code", authCode), nil },
			want:  404, wantText: []string{"No connection named"},
		},
		{
			name: "access denied", conn: "google",
			setup: func(e *env) (string, []*http.Cookie) {
				state, ck := e.start("google", "")
				return query("error", "access_denied", "state", state), []*http.Cookie{ck}
			},
			want: 403, wantText: []string{"You declined access at Google"},
		},
		{
			name: "provider error with script", conn: "strava",
			setup: func(e *env) (string, []*http.Cookie) {
				state, ck := e.start("strava", "")
				return query("error", "invalid_scope", "error_description", `<script>alert("x")</script> bad`, "state", state), []*http.Cookie{ck}
			},
			want: 400, wantText: []string{"invalid_scope", "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; bad"}, notText: []string{"<script>"},
		},
		{
			name: "provider error description echoing the code", conn: "google",
			setup: func(e *env) (string, []*http.Cookie) {
				return query("error", "server_error", "error_description", "bad code "+authCode, "code", authCode), nil
			},
			want: 400, wantText: []string{"server_error", "bad code [REDACTED]"},
		},
		{
			name: "missing state", conn: "google",
			setup: func(e *env) (string, []*http.Cookie) {
				_, ck := e.start("google", "")
				return query("code", authCode), []*http.Cookie{ck}
			},
			want: 400, wantText: []string{"No sign-in is in progress from this browser", "/api/authorize/google"},
		},
		{
			name: "missing cookie", conn: "google",
			setup: func(e *env) (string, []*http.Cookie) {
				state, _ := e.start("google", "")
				return query("state", state, "code", authCode), nil
			},
			want: 400, wantText: []string{"No sign-in is in progress from this browser", "/api/authorize/google"},
		},
		{
			name: "cookie of another connection", conn: "google",
			setup: func(e *env) (string, []*http.Cookie) {
				state, _ := e.start("google", "")
				_, ck := e.start("strava", "")
				ck.Value = state
				return query("state", state, "code", authCode), []*http.Cookie{ck}
			},
			want: 400, wantText: []string{"No sign-in is in progress"},
		},
		{
			name: "cross-browser: cookie from another authorize", conn: "google",
			setup: func(e *env) (string, []*http.Cookie) {
				state, _ := e.start("google", "")
				_, other := e.start("google", "")
				return query("state", state, "code", authCode), []*http.Cookie{other}
			},
			want: 400, wantText: []string{"another browser"},
		},
		{
			name: "unknown state", conn: "google",
			setup: func(e *env) (string, []*http.Cookie) {
				forged := base64.RawURLEncoding.EncodeToString(make([]byte, 32))
				return query("state", forged, "code", authCode), []*http.Cookie{{Name: cookieName("google"), Value: forged}}
			},
			want: 400, wantText: []string{"already used or is unknown"},
		},
		{
			name: "expired", conn: "google",
			setup: func(e *env) (string, []*http.Cookie) {
				state, ck := e.start("google", "")
				e.clock.advance(10*time.Minute + time.Second)
				return query("state", state, "code", authCode), []*http.Cookie{ck}
			},
			want: 400, wantText: []string{"expired after 10 minutes"},
		},
		{
			name: "missing code", conn: "google",
			setup: func(e *env) (string, []*http.Cookie) {
				state, ck := e.start("google", "")
				return query("state", state), []*http.Cookie{ck}
			},
			want: 400, wantText: []string{"no authorization code"},
		},
		{
			name: "store down at take", conn: "google",
			setup: func(e *env) (string, []*http.Cookie) {
				state, ck := e.start("google", "")
				e.store.Inject(-1, storetest.Fault{Op: storetest.OpTakeAuthState, Err: errors.New("table service: HTTP 503")})
				return query("state", state, "code", authCode), []*http.Cookie{ck}
			},
			want: 503, errorLog: true,
		},
		{
			name: "exchange revoked", conn: "google",
			setup: func(e *env) (string, []*http.Cookie) {
				state, ck := e.start("google", "")
				e.ex["google"].err = revoked
				return query("state", state, "code", authCode), []*http.Cookie{ck}
			},
			want: 502, wantText: []string{"The provider refused the code", "invalid_grant: Bad Request"}, exchanged: true, errorLog: true,
		},
		{
			name: "exchange transient", conn: "strava",
			setup: func(e *env) (string, []*http.Cookie) {
				state, ck := e.start("strava", "")
				e.ex["strava"].err = &tokenclient.Error{Op: "exchange", Class: tokenclient.Transient, StatusCode: 503}
				return query("state", state, "code", authCode), []*http.Cookie{ck}
			},
			want: 502, wantText: []string{"Could not reach Strava", "Start again"}, exchanged: true, errorLog: true,
		},
		{
			name: "exchange ambiguous", conn: "strava",
			setup: func(e *env) (string, []*http.Cookie) {
				state, ck := e.start("strava", "")
				e.ex["strava"].err = &tokenclient.Error{Op: "exchange", Class: tokenclient.Ambiguous, Detail: "unexpected EOF"}
				return query("state", state, "code", authCode), []*http.Cookie{ck}
			},
			want: 502, wantText: []string{"Could not reach Strava"}, exchanged: true, errorLog: true,
		},
		{
			name: "exchange timeout", conn: "strava",
			setup: func(e *env) (string, []*http.Cookie) {
				state, ck := e.start("strava", "")
				e.ex["strava"].err = context.DeadlineExceeded
				return query("state", state, "code", authCode), []*http.Cookie{ck}
			},
			want: 502, wantText: []string{"Could not reach Strava"}, exchanged: true, errorLog: true,
		},
		{
			name: "exchange gone", conn: "fitbit",
			setup: func(e *env) (string, []*http.Cookie) {
				// A sign-in started before the shutdown.
				state := "started-before-the-fitbit-shutdown-0123456789"
				seedState(e.t, e.store, "fitbit", state, store.AuthState{Verifier: "v", ExpiresAt: t0.Add(5 * time.Minute)})
				e.ex["fitbit"].err = &tokenclient.Error{Op: "exchange", Class: tokenclient.Revoked, StatusCode: 410, Gone: provider.FitbitGone}
				return query("state", state, "code", authCode), []*http.Cookie{{Name: cookieName("fitbit"), Value: state}}
			},
			want: 410, wantText: []string{"shut down", "google preset", "Google Health API"}, exchanged: true,
		},
		{
			name: "another account", conn: "google",
			setup: func(e *env) (string, []*http.Cookie) {
				put(e.t, e.store, store.Record{Name: "google", HasStatus: true, Status: store.Status{AccountID: "acct-1", Generation: 2}})
				e.ex["google"].tok.AccountID = "acct-2"
				state, ck := e.start("google", "")
				return query("state", state, "code", authCode), []*http.Cookie{ck}
			},
			want: 409, wantText: []string{"belongs to account acct-1", "acct-2", "/api/authorize/google?replace=true"}, exchanged: true,
		},
		{
			name: "account unknown against a pinned one", conn: "google",
			setup: func(e *env) (string, []*http.Cookie) {
				put(e.t, e.store, store.Record{Name: "google", HasStatus: true, Status: store.Status{AccountID: "acct-1"}})
				e.ex["google"].tok.AccountID = ""
				state, ck := e.start("google", "")
				return query("state", state, "code", authCode), []*http.Cookie{ck}
			},
			want: 409, wantText: []string{"belongs to account acct-1", "replace=true"}, exchanged: true,
		},
		{
			name: "store down at read", conn: "google",
			setup: func(e *env) (string, []*http.Cookie) {
				state, ck := e.start("google", "")
				e.store.Inject(-1, storetest.Fault{Op: storetest.OpGet, Err: errors.New("table service: HTTP 500")})
				return query("state", state, "code", authCode), []*http.Cookie{ck}
			},
			want: 503, wantText: []string{"issued tokens", "nothing was stored"}, exchanged: true, errorLog: true,
		},
		{
			name: "store down at save", conn: "google",
			setup: func(e *env) (string, []*http.Cookie) {
				state, ck := e.start("google", "")
				e.store.Inject(-1, storetest.Fault{Op: storetest.OpSaveConsent, Err: errors.New("table service: HTTP 503 (ServerBusy)")})
				return query("state", state, "code", authCode), []*http.Cookie{ck}
			},
			want: 503, wantText: []string{"The provider issued tokens but they could not be stored", "Start again"}, exchanged: true, errorLog: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			q, cookies := tt.setup(e)
			resp := e.callback(tt.conn, q, cookies...)
			body := readPage(t, resp)
			if resp.StatusCode != tt.want {
				t.Errorf("status %d; want %d; page:\n%s", resp.StatusCode, tt.want, e.masked(body))
			}
			for _, s := range tt.wantText {
				if !strings.Contains(body, s) {
					t.Errorf("page lacks %q; page:\n%s", s, e.masked(body))
				}
			}
			for _, s := range tt.notText {
				if strings.Contains(body, s) {
					t.Errorf("page holds %q", s)
				}
			}
			e.noSecrets("the page", body)
			if n := saveCount(e.store); n != 0 {
				t.Errorf("SaveConsent calls = %d; want 0", n)
			}
			if ex, ok := e.ex[tt.conn]; ok {
				if got := ex.callCount() > 0; got != tt.exchanged {
					t.Errorf("Exchange called: %t; want %t", got, tt.exchanged)
				}
				checkCleared(t, resp, tt.conn)
			} else if len(resp.Cookies()) != 0 {
				t.Errorf("unknown connection: %d cookies set; want none", len(resp.Cookies()))
			}
			logs := e.logs.String()
			if got := strings.Contains(logs, `"level":"error"`); got != tt.errorLog {
				t.Errorf("error-level log line: %t; want %t; log:\n%s", got, tt.errorLog, e.masked(logs))
			}
			if !strings.Contains(logs, `"status":`+strconv.Itoa(tt.want)) {
				t.Errorf("log lacks the status %d; log:\n%s", tt.want, e.masked(logs))
			}
		})
	}
}

func TestCallbackProviderErrorDiscardsState(t *testing.T) {
	e := newEnv(t)
	state, ck := e.start("google", "")
	if resp := e.callback("google", query("error", "access_denied", "state", state), ck); resp.StatusCode != 403 {
		t.Fatalf("status %d; want 403", resp.StatusCode)
	}
	resp := e.callback("google", query("state", state, "code", authCode), ck)
	if resp.StatusCode != 400 {
		t.Errorf("callback after a declined one: status %d; want 400", resp.StatusCode)
	}
	if n := saveCount(e.store); n != 0 {
		t.Errorf("SaveConsent calls = %d; want 0", n)
	}
}

func TestCallbackReplay(t *testing.T) {
	e := newEnv(t)
	state, ck := e.start("google", "")
	q := query("state", state, "code", authCode)
	if resp := e.callback("google", q, ck); resp.StatusCode != 200 {
		t.Fatalf("first callback: status %d; want 200", resp.StatusCode)
	}
	resp := e.callback("google", q, ck)
	body := readPage(t, resp)
	if resp.StatusCode != 400 || !strings.Contains(body, "already used") {
		t.Errorf("replayed callback: status %d; want 400 saying already used; page:\n%s", resp.StatusCode, e.masked(body))
	}
	if n := saveCount(e.store); n != 1 {
		t.Errorf("SaveConsent calls = %d; want 1", n)
	}
	if n := e.ex["google"].callCount(); n != 1 {
		t.Errorf("Exchange calls = %d; want 1", n)
	}
}

func TestCallbackConcurrent(t *testing.T) {
	e := newEnv(t)
	state, ck := e.start("strava", "")
	q := query("state", state, "code", authCode)
	const n = 20
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { statuses[i] = e.callback("strava", q, ck).StatusCode })
	}
	wg.Wait()
	count := map[int]int{}
	for _, s := range statuses {
		count[s]++
	}
	if count[200] != 1 || count[400] != n-1 {
		t.Errorf("statuses %v; want one 200 and %d 400", count, n-1)
	}
	if got := saveCount(e.store); got != 1 {
		t.Errorf("SaveConsent calls = %d; want 1", got)
	}
	if got := e.ex["strava"].callCount(); got != 1 {
		t.Errorf("Exchange calls = %d; want 1", got)
	}
}

func TestCallbackReplace(t *testing.T) {
	e := newEnv(t)
	put(t, e.store, store.Record{Name: "google", HasStatus: true, Status: store.Status{AccountID: "acct-1", Generation: 7}})
	e.ex["google"].tok.AccountID = "acct-2"
	state, ck := e.start("google", "replace=true")
	resp := e.callback("google", query("state", state, "code", authCode), ck)
	body := readPage(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d; want 200; page:\n%s", resp.StatusCode, e.masked(body))
	}
	if !strings.Contains(body, "acct-2") {
		t.Errorf("page lacks the new account id; page:\n%s", e.masked(body))
	}
	if n := saveCount(e.store); n != 1 {
		t.Fatalf("SaveConsent calls = %d; want 1", n)
	}
	if got := saved(t, e.store, "google").Status; got.AccountID != "acct-2" || got.Generation != 8 {
		t.Errorf("saved account %q generation %d; want acct-2, 8", got.AccountID, got.Generation)
	}
}

func TestCallbackScopes(t *testing.T) {
	tests := []struct {
		name        string
		conn        string
		tokenScope  []string
		queryScope  string
		wantGranted string
		wantMissing string
	}{
		{name: "strava unticked", conn: "strava", queryScope: "read", wantGranted: "read", wantMissing: "activity:read_all"},
		{name: "strava all", conn: "strava", queryScope: "read,activity:read_all", wantGranted: "read activity:read_all"},
		{name: "token scope wins over the query", conn: "strava", tokenScope: []string{"read", "activity:read_all"}, queryScope: "read",
			wantGranted: "read activity:read_all"},
		{name: "google long form of email", conn: "google", tokenScope: []string{emailScopeLong, sleepScope},
			wantGranted: emailScopeLong + " " + sleepScope},
		{name: "google unticked", conn: "google", tokenScope: []string{"openid", emailScopeLong},
			wantGranted: "openid " + emailScopeLong, wantMissing: sleepScope},
		{name: "nothing said: as requested", conn: "google", wantGranted: "email " + sleepScope},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.ex[tt.conn].tok.Scope = tt.tokenScope
			state, ck := e.start(tt.conn, "")
			q := query("state", state, "code", authCode)
			if tt.queryScope != "" {
				q += "&" + query("scope", tt.queryScope)
			}
			resp := e.callback(tt.conn, q, ck)
			body := readPage(t, resp)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d; want 200; page:\n%s", resp.StatusCode, e.masked(body))
			}
			if n := saveCount(e.store); n != 1 {
				t.Fatalf("SaveConsent calls = %d; want 1", n)
			}
			s := saved(t, e.store, tt.conn)
			if s.Status.GrantedScopes != tt.wantGranted || s.Tokens.Scope != tt.wantGranted {
				t.Errorf("granted: status %q, tokens %q; want %q", s.Status.GrantedScopes, s.Tokens.Scope, tt.wantGranted)
			}
			if s.Status.MissingScopes != tt.wantMissing {
				t.Errorf("MissingScopes = %q; want %q", s.Status.MissingScopes, tt.wantMissing)
			}
			if got := strings.Contains(body, "not granted"); got != (tt.wantMissing != "") {
				t.Errorf("page mentions missing scopes: %t; want %t", got, tt.wantMissing != "")
			}
			for _, m := range strings.Fields(tt.wantMissing) {
				if !strings.Contains(body, "<code>"+m+"</code>") {
					t.Errorf("page does not list %q; page:\n%s", m, e.masked(body))
				}
			}
		})
	}
}

func TestCallbackRefreshToken(t *testing.T) {
	tests := []struct {
		name          string
		conn          string
		refresh       string
		refreshExpiry time.Time
		wantExpiry    time.Time
		wantWarning   bool
	}{
		{name: "google without refresh token", conn: "google", wantWarning: true},
		{name: "google with one", conn: "google", refresh: refreshToken},
		// The preset's lifetime is applied by the token client (tokenclient's
		// TestExchangeRefreshLifetime); the Callback stores what the client reports.
		{name: "lifetime from the response", conn: "spotifyish", refresh: refreshToken,
			refreshExpiry: t0.Add(24 * time.Hour), wantExpiry: t0.Add(24 * time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.ex[tt.conn].tok.RefreshToken = tt.refresh
			e.ex[tt.conn].tok.RefreshExpiry = tt.refreshExpiry
			state, ck := e.start(tt.conn, "")
			resp := e.callback(tt.conn, query("state", state, "code", authCode), ck)
			body := readPage(t, resp)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d; want 200; page:\n%s", resp.StatusCode, e.masked(body))
			}
			if n := saveCount(e.store); n != 1 {
				t.Fatalf("SaveConsent calls = %d; want 1", n)
			}
			rec := saved(t, e.store, tt.conn)
			s := rec.Tokens
			if s.RefreshToken != tt.refresh || !s.RefreshExpiresAt.Equal(tt.wantExpiry) {
				t.Errorf("stored refresh token present %t, expiry %v; want present %t, expiry %v",
					s.RefreshToken != "", s.RefreshExpiresAt, tt.refresh != "", tt.wantExpiry)
			}
			// The Status row mirrors the refresh token's deadline.
			if !rec.Status.RefreshDeadline.Equal(tt.wantExpiry) {
				t.Errorf("Status.RefreshDeadline = %v; want %v", rec.Status.RefreshDeadline, tt.wantExpiry)
			}
			warned := strings.Contains(body, "issued no refresh token")
			if warned != tt.wantWarning {
				t.Errorf("page warns of no refresh token: %t; want %t", warned, tt.wantWarning)
			}
			if tt.wantWarning && !strings.Contains(body, "access_type=offline") {
				t.Errorf("warning lacks the access_type=offline hint; page:\n%s", e.masked(body))
			}
		})
	}
}
