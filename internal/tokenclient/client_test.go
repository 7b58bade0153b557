package tokenclient

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/provider"
	"golang.org/x/oauth2"
)

// Test credentials. They look like real ones (long, base64-ish, with the form-encoding
// characters '+', '/' and '=') and are never printed: failures show fp(value).
const (
	testClientID     = "freshtoken-test-client"
	testClientSecret = "cs_Q2xpZW50U2VjcmV0Rm9yVGVzdHM"
	oldRT            = "rt_b2xkLXJlZnJlc2gtdG9rZW4+/old=="
	newRT            = "rt_bmV3LXJlZnJlc2gtdG9rZW4tdjI"
	newAT            = "at_YWNjZXNzLXRva2VuLWZvci10ZXN0cw"
	authCode         = "4/0AeanS0ZrQ2FsbGJhY2tDb2RlRm9yVGVzdHM"
	pkceVerifier     = "pkce-dmVyaWZpZXItZm9yLXRlc3RzLTAxMjM0NTY3ODlhYmNkZWY"
	testRedirectURL  = "https://freshtoken.example/api/callback/test"
)

// knownSecrets is every credential a test hands to the client or a fake server.
var knownSecrets = []struct{ name, value string }{
	{"client secret", testClientSecret},
	{"old refresh token", oldRT},
	{"new refresh token", newRT},
	{"new access token", newAT},
	{"authorization code", authCode},
	{"PKCE verifier", pkceVerifier},
}

// testNow is the client's clock in every test.
var testNow = time.Date(2026, 10, 5, 12, 0, 0, 0, time.UTC)

func clock() time.Time { return testNow }

// fp names a secret in test output without printing it.
func fp(s string) string {
	sum := sha256.Sum256([]byte(s))
	return fmt.Sprintf("<len %d sha256 %x>", len(s), sum[:4])
}

// checkRedacted fails when err's text holds any known secret.
func checkRedacted(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	for _, s := range knownSecrets {
		if strings.Contains(msg, s.value) {
			t.Errorf("Error() holds the %s %s; want it redacted", s.name, fp(s.value))
		}
	}
}

// seenRequest is what the fake token server received.
type seenRequest struct {
	method        string
	contentType   string
	contentLength int64
	raw           string
	form          url.Values
	formErr       error
	basicUser     string
	basicPass     string
	hasBasic      bool
	authorization string
}

// tokenServer is a fake token endpoint that records every request it reads.
type tokenServer struct {
	*httptest.Server
	mu   sync.Mutex
	seen []seenRequest
}

// newTokenServer starts a token endpoint answering with h after it has read and recorded
// the whole request. It is closed when the test ends.
func newTokenServer(t *testing.T, h http.HandlerFunc) *tokenServer {
	t.Helper()
	ts := &tokenServer{}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		form, ferr := url.ParseQuery(string(raw))
		user, pass, ok := r.BasicAuth()
		ts.mu.Lock()
		ts.seen = append(ts.seen, seenRequest{
			method:        r.Method,
			contentType:   r.Header.Get("Content-Type"),
			contentLength: r.ContentLength,
			raw:           string(raw),
			form:          form,
			formErr:       ferr,
			basicUser:     user,
			basicPass:     pass,
			hasBasic:      ok,
			authorization: r.Header.Get("Authorization"),
		})
		ts.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts
}

func (ts *tokenServer) requests() []seenRequest {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return slices.Clone(ts.seen)
}

func (ts *tokenServer) tokenURL() string { return ts.URL + "/oauth2/token" }

// reply answers with status, a Content-Type and body, and header pairs (name, value, ...).
func reply(status int, contentType, body string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func jsonReply(status int, body string, header ...string) http.HandlerFunc {
	return reply(status, "application/json;charset=UTF-8", body, header...)
}

// lookup returns a preset from the catalog.
func lookup(t *testing.T, name string) provider.Preset {
	t.Helper()
	p, ok := provider.Lookup(name)
	if !ok {
		t.Fatalf("provider.Lookup(%q): no such preset", name)
	}
	return p
}

// whoopPreset is a form-params provider that needs scope=offline on refresh requests.
func whoopPreset() provider.Preset {
	return provider.Preset{
		Name:           "whoop",
		AuthURL:        "https://api.prod.whoop.com/oauth/oauth2/auth",
		TokenURL:       "https://api.prod.whoop.com/oauth/oauth2/token",
		AuthStyle:      oauth2.AuthStyleInParams,
		ScopeSeparator: " ",
		RefreshParams:  map[string]string{"scope": "offline"},
		Dialect:        provider.DialectRFC6749,
	}
}

// customPreset is a standard provider described by settings only.
func customPreset() provider.Preset {
	return provider.Preset{
		Name:           provider.Custom,
		AuthURL:        "https://auth.example/authorize",
		TokenURL:       "https://auth.example/token",
		AuthStyle:      oauth2.AuthStyleInParams,
		ScopeSeparator: " ",
		Dialect:        provider.DialectRFC6749,
	}
}

// connection points p's token endpoint at tokenURL ("" keeps the preset's).
func connection(p provider.Preset, tokenURL string, scopes ...string) Options {
	if tokenURL != "" {
		p.TokenURL = tokenURL
	}
	return Options{
		Preset:       p,
		ClientID:     testClientID,
		ClientSecret: testClientSecret,
		Scopes:       scopes,
		RedirectURL:  testRedirectURL,
	}
}

func newTestClient(conn Options) *Client {
	return New(withClient(conn, NewHTTPClient(2*time.Second)))
}

// withClient sends o's requests through hc, on the test clock.
func withClient(o Options, hc *http.Client) Options {
	o.HTTPClient, o.Now = hc, clock
	if hc.Timeout > 0 {
		o.Timeout = hc.Timeout
	}
	return o
}

func TestRefreshSuccess(t *testing.T) {
	const (
		formType  = "application/x-www-form-urlencoded"
		stravaAt  = 1791300000
		googleRTL = 604799
	)
	withLifetime := func(fromConsent bool) provider.Preset {
		p := customPreset()
		p.RefreshTokenLifetime = 365 * 24 * time.Hour
		p.RefreshLifetimeFromConsent = fromConsent
		return p
	}
	withAccountPath := func(p provider.Preset, path string) provider.Preset {
		p.AccountIDPath = path
		return p
	}
	tests := []struct {
		name        string
		preset      provider.Preset
		contentType string // default JSON
		body        string
		// wantExpiresIn > 0: Expiry is the time of the call plus this (x/oauth2 uses the real
		// clock); else wantExpiry exactly.
		wantExpiresIn     time.Duration
		wantExpiry        time.Time
		wantRT            string
		wantRotated       bool
		wantRefreshExpiry time.Time
		wantScope         []string
		wantAccount       string
	}{
		{
			name:          "rotated refresh token",
			preset:        customPreset(),
			body:          `{"access_token":"` + newAT + `","token_type":"Bearer","expires_in":3600,"refresh_token":"` + newRT + `","scope":"openid email"}`,
			wantExpiresIn: time.Hour,
			wantRT:        newRT,
			wantRotated:   true,
			wantScope:     []string{"openid", "email"},
		},
		{
			name:          "google: no refresh_token keeps the old one",
			preset:        lookup(t, "google"),
			body:          `{"access_token":"` + newAT + `","expires_in":3599,"scope":"https://www.googleapis.com/auth/googlehealth.sleep.readonly openid","token_type":"Bearer","id_token":"eyJhbGciOiJSUzI1NiJ9.e30.c2ln"}`,
			wantExpiresIn: 3599 * time.Second,
			wantRT:        oldRT,
			wantRotated:   false,
			wantScope:     []string{"https://www.googleapis.com/auth/googlehealth.sleep.readonly", "openid"},
		},
		{
			name:          "same refresh token returned is no rotation",
			preset:        customPreset(),
			body:          `{"access_token":"` + newAT + `","token_type":"Bearer","expires_in":3600,"refresh_token":"` + oldRT + `"}`,
			wantExpiresIn: time.Hour,
			wantRT:        oldRT,
			wantRotated:   false,
		},
		{
			name:          "expires_in as a numeric string",
			preset:        customPreset(),
			body:          `{"access_token":"` + newAT + `","token_type":"Bearer","expires_in":"28800","refresh_token":"` + newRT + `"}`,
			wantExpiresIn: 8 * time.Hour,
			wantRT:        newRT,
			wantRotated:   true,
		},
		{
			name:        "no expires_in: no expiry",
			preset:      customPreset(),
			body:        `{"access_token":"` + newAT + `","token_type":"Bearer","refresh_token":"` + newRT + `"}`,
			wantRT:      newRT,
			wantRotated: true,
		},
		{
			name:              "google: refresh_token_expires_in sets RefreshExpiry",
			preset:            lookup(t, "google"),
			body:              `{"access_token":"` + newAT + `","expires_in":3599,"refresh_token_expires_in":604799,"scope":"openid","token_type":"Bearer"}`,
			wantExpiresIn:     3599 * time.Second,
			wantRT:            oldRT,
			wantRefreshExpiry: testNow.Add(googleRTL * time.Second),
			wantScope:         []string{"openid"},
		},
		{
			name:              "refresh_token_expires_in as a numeric string",
			preset:            customPreset(),
			body:              `{"access_token":"` + newAT + `","expires_in":3600,"refresh_token_expires_in":"604799","token_type":"Bearer"}`,
			wantExpiresIn:     time.Hour,
			wantRT:            oldRT,
			wantRefreshExpiry: testNow.Add(googleRTL * time.Second),
		},
		{
			name:        "strava: expires_at alone",
			preset:      lookup(t, "strava"),
			body:        fmt.Sprintf(`{"token_type":"Bearer","access_token":"%s","expires_at":%d,"refresh_token":"%s"}`, newAT, stravaAt, newRT),
			wantExpiry:  time.Unix(stravaAt, 0).UTC(),
			wantRT:      newRT,
			wantRotated: true,
		},
		{
			name:          "strava: expires_in beside expires_at",
			preset:        lookup(t, "strava"),
			body:          fmt.Sprintf(`{"token_type":"Bearer","access_token":"%s","expires_at":%d,"expires_in":21600,"refresh_token":"%s"}`, newAT, stravaAt, oldRT),
			wantExpiresIn: 6 * time.Hour,
			wantRT:        oldRT,
		},
		{
			name:          "fitbit: user_id and space-separated scope",
			preset:        lookup(t, "fitbit"),
			body:          `{"access_token":"` + newAT + `","expires_in":28800,"refresh_token":"` + newRT + `","scope":"activity heartrate sleep","token_type":"Bearer","user_id":"26FWFL"}`,
			wantExpiresIn: 8 * time.Hour,
			wantRT:        newRT,
			wantRotated:   true,
			wantScope:     []string{"activity", "heartrate", "sleep"},
			wantAccount:   "26FWFL",
		},
		{
			name:          "strava: numeric athlete.id and comma-separated scope",
			preset:        lookup(t, "strava"),
			body:          fmt.Sprintf(`{"token_type":"Bearer","expires_at":%d,"expires_in":21600,"refresh_token":"%s","access_token":"%s","scope":"read,activity:read_all","athlete":{"id":12345678,"username":"runner","firstname":"A"}}`, stravaAt, newRT, newAT),
			wantExpiresIn: 6 * time.Hour,
			wantRT:        newRT,
			wantRotated:   true,
			wantScope:     []string{"read", "activity:read_all"},
			wantAccount:   "12345678",
		},
		{
			name:          "strava: a large athlete.id keeps every digit",
			preset:        lookup(t, "strava"),
			body:          `{"token_type":"Bearer","expires_in":21600,"access_token":"` + newAT + `","athlete":{"id":1234567890123}}`,
			wantExpiresIn: 6 * time.Hour,
			wantRT:        oldRT,
			wantAccount:   "1234567890123",
		},
		{
			name:          "string account id on a dotted path",
			preset:        lookup(t, "strava"),
			body:          `{"token_type":"Bearer","expires_in":21600,"access_token":"` + newAT + `","athlete":{"id":"a-12345678"}}`,
			wantExpiresIn: 6 * time.Hour,
			wantRT:        oldRT,
			wantAccount:   "a-12345678",
		},
		{
			name:          "account id path absent from the response",
			preset:        lookup(t, "strava"),
			body:          `{"token_type":"Bearer","expires_in":21600,"access_token":"` + newAT + `"}`,
			wantExpiresIn: 6 * time.Hour,
			wantRT:        oldRT,
		},
		{
			name:          "scope split on commas and spaces together",
			preset:        customPreset(),
			body:          `{"access_token":"` + newAT + `","token_type":"Bearer","expires_in":3600,"scope":"read, activity:read_all  profile:read_all,"}`,
			wantExpiresIn: time.Hour,
			wantRT:        oldRT,
			wantScope:     []string{"read", "activity:read_all", "profile:read_all"},
		},
		{
			name:              "form-encoded response with numbers",
			preset:            withAccountPath(customPreset(), "user_id"),
			contentType:       formType,
			body:              "access_token=" + url.QueryEscape(newAT) + "&expires_in=28800&refresh_token=" + url.QueryEscape(newRT) + "&refresh_token_expires_in=15811200&scope=repo&token_type=bearer&user_id=4242",
			wantExpiresIn:     8 * time.Hour,
			wantRT:            newRT,
			wantRotated:       true,
			wantRefreshExpiry: testNow.Add(15811200 * time.Second),
			wantScope:         []string{"repo"},
			wantAccount:       "4242",
		},
		{
			name:              "preset lifetime starts again on rotation",
			preset:            withLifetime(false),
			body:              `{"access_token":"` + newAT + `","token_type":"Bearer","expires_in":10800,"refresh_token":"` + newRT + `"}`,
			wantExpiresIn:     3 * time.Hour,
			wantRT:            newRT,
			wantRotated:       true,
			wantRefreshExpiry: testNow.Add(365 * 24 * time.Hour),
		},
		{
			name:          "preset lifetime without rotation is not restarted",
			preset:        withLifetime(false),
			body:          `{"access_token":"` + newAT + `","token_type":"Bearer","expires_in":10800}`,
			wantExpiresIn: 3 * time.Hour,
			wantRT:        oldRT,
		},
		{
			name:          "preset lifetime from consent is not restarted by a refresh",
			preset:        withLifetime(true),
			body:          `{"access_token":"` + newAT + `","token_type":"Bearer","expires_in":3600,"refresh_token":"` + newRT + `"}`,
			wantExpiresIn: time.Hour,
			wantRT:        newRT,
			wantRotated:   true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ct := tt.contentType
			if ct == "" {
				ct = "application/json"
			}
			ts := newTokenServer(t, reply(http.StatusOK, ct, tt.body))
			c := newTestClient(connection(tt.preset, ts.tokenURL()))

			before := time.Now()
			tok, err := c.Refresh(context.Background(), oldRT)
			after := time.Now()
			if err != nil {
				t.Fatalf("Refresh: got error %v; want none", err)
			}

			reqs := ts.requests()
			if len(reqs) != 1 {
				t.Fatalf("server got %d requests; want 1", len(reqs))
			}
			if got := reqs[0].form.Get("grant_type"); got != "refresh_token" {
				t.Errorf("got grant_type %q; want refresh_token", got)
			}
			if got := reqs[0].form.Get("refresh_token"); got != oldRT {
				t.Errorf("got refresh_token %s; want %s", fp(got), fp(oldRT))
			}

			if tok.AccessToken != newAT {
				t.Errorf("got AccessToken %s; want %s", fp(tok.AccessToken), fp(newAT))
			}
			if tok.RefreshToken != tt.wantRT {
				t.Errorf("got RefreshToken %s; want %s", fp(tok.RefreshToken), fp(tt.wantRT))
			}
			if tok.Rotated != tt.wantRotated {
				t.Errorf("got Rotated %v; want %v", tok.Rotated, tt.wantRotated)
			}
			switch {
			case tt.wantExpiresIn > 0:
				lo, hi := before.Add(tt.wantExpiresIn), after.Add(tt.wantExpiresIn)
				if tok.Expiry.Before(lo) || tok.Expiry.After(hi) {
					t.Errorf("got Expiry %v; want between %v and %v", tok.Expiry, lo, hi)
				}
			case !tok.Expiry.Equal(tt.wantExpiry):
				t.Errorf("got Expiry %v; want %v", tok.Expiry, tt.wantExpiry)
			}
			if !tok.RefreshExpiry.Equal(tt.wantRefreshExpiry) {
				t.Errorf("got RefreshExpiry %v; want %v", tok.RefreshExpiry, tt.wantRefreshExpiry)
			}
			if !slices.Equal(tok.Scope, tt.wantScope) {
				t.Errorf("got Scope %q; want %q", tok.Scope, tt.wantScope)
			}
			if (tok.Scope == nil) != (tt.wantScope == nil) {
				t.Errorf("got Scope nil=%v; want nil=%v", tok.Scope == nil, tt.wantScope == nil)
			}
			if tok.AccountID != tt.wantAccount {
				t.Errorf("got AccountID %q; want %q", tok.AccountID, tt.wantAccount)
			}
		})
	}
}

// run calls op ("refresh" or "exchange") on c with the test's credentials.
func run(ctx context.Context, c *Client, op string) (*Token, error) {
	if op == "exchange" {
		return c.Exchange(ctx, authCode, pkceVerifier)
	}
	return c.Refresh(ctx, oldRT)
}

func TestClientAuthStyle(t *testing.T) {
	okBody := `{"access_token":"` + newAT + `","token_type":"Bearer","expires_in":3600,"refresh_token":"` + newRT + `"}`
	tests := []struct {
		preset string
		header bool // client credentials in HTTP Basic, else in the form
	}{
		{"fitbit", true},
		{"google", false},
		{"strava", false},
	}
	for _, tt := range tests {
		for _, op := range []string{"refresh", "exchange"} {
			t.Run(tt.preset+"/"+op, func(t *testing.T) {
				t.Parallel()
				ts := newTokenServer(t, jsonReply(http.StatusOK, okBody))
				c := newTestClient(connection(lookup(t, tt.preset), ts.tokenURL()))
				if _, err := run(context.Background(), c, op); err != nil {
					t.Fatalf("%s: got error %v; want none", op, err)
				}
				reqs := ts.requests()
				if len(reqs) != 1 {
					t.Fatalf("server got %d requests; want 1", len(reqs))
				}
				r := reqs[0]
				if r.method != http.MethodPost {
					t.Errorf("got method %s; want POST", r.method)
				}
				if tt.header {
					if !r.hasBasic {
						t.Fatalf("got no Basic Authorization header; want one")
					}
					if r.basicUser != testClientID {
						t.Errorf("got Basic user %q; want %q", r.basicUser, testClientID)
					}
					if r.basicPass != testClientSecret {
						t.Errorf("got Basic password %s; want the client secret %s", fp(r.basicPass), fp(testClientSecret))
					}
					if r.form.Has("client_secret") {
						t.Errorf("got client_secret in the form; want it only in the header")
					}
					if r.form.Has("client_id") {
						t.Errorf("got client_id in the form; want it only in the header")
					}
				} else {
					if r.authorization != "" {
						t.Errorf("got an Authorization header (%d bytes); want none", len(r.authorization))
					}
					if got := r.form.Get("client_id"); got != testClientID {
						t.Errorf("got form client_id %q; want %q", got, testClientID)
					}
					if got := r.form.Get("client_secret"); got != testClientSecret {
						t.Errorf("got form client_secret %s; want %s", fp(got), fp(testClientSecret))
					}
				}
			})
		}
	}
}

// TestRefreshSendsOnce proves a failed refresh is not resent with the other client-auth
// style, as x/oauth2's auto-detection would do.
func TestRefreshSendsOnce(t *testing.T) {
	failures := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"400 invalid_grant", jsonReply(http.StatusBadRequest, `{"error":"invalid_grant","error_description":"Token has been expired or revoked."}`)},
		{"401 invalid_client", jsonReply(http.StatusUnauthorized, `{"error":"invalid_client","error_description":"Unauthorized"}`)},
	}
	for _, preset := range []string{"fitbit", "google"} {
		for _, f := range failures {
			t.Run(preset+"/"+f.name, func(t *testing.T) {
				t.Parallel()
				ts := newTokenServer(t, f.handler)
				c := newTestClient(connection(lookup(t, preset), ts.tokenURL()))
				_, err := c.Refresh(context.Background(), oldRT)
				if got := ClassOf(err); got != Revoked {
					t.Errorf("got class %q; want %q (err %v)", got, Revoked, err)
				}
				if n := len(ts.requests()); n != 1 {
					t.Errorf("server got %d requests; want exactly 1", n)
				}
			})
		}
	}

	// The counter sees a second request when there is one: x/oauth2 left to auto-detect
	// resends the same refresh token.
	t.Run("control: x/oauth2 auto-detect sends twice", func(t *testing.T) {
		ts := newTokenServer(t, failures[0].handler)
		conf := &oauth2.Config{ClientID: testClientID, ClientSecret: testClientSecret,
			Endpoint: oauth2.Endpoint{TokenURL: ts.tokenURL(), AuthStyle: oauth2.AuthStyleAutoDetect}}
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, NewHTTPClient(2*time.Second))
		if _, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: oldRT}).Token(); err == nil {
			t.Fatalf("got no error; want one")
		}
		if n := len(ts.requests()); n != 2 {
			t.Errorf("server got %d requests; want 2", n)
		}
	})
}

func TestRefreshParams(t *testing.T) {
	okBody := `{"access_token":"` + newAT + `","token_type":"Bearer","expires_in":3600,"refresh_token":"` + newRT + `","scope":"offline read:recovery"}`
	fitbitWithParams := lookup(t, "fitbit")
	fitbitWithParams.RefreshParams = map[string]string{"scope": "offline"}
	tests := []struct {
		name      string
		preset    provider.Preset
		op        string
		wantForm  url.Values
		wantBasic bool
	}{
		{
			name:   "whoop refresh carries scope=offline",
			preset: whoopPreset(),
			op:     "refresh",
			wantForm: url.Values{
				"grant_type":    {"refresh_token"},
				"refresh_token": {oldRT},
				"scope":         {"offline"},
				"client_id":     {testClientID},
				"client_secret": {testClientSecret},
			},
		},
		{
			name:   "whoop exchange has no refresh parameters",
			preset: whoopPreset(),
			op:     "exchange",
			wantForm: url.Values{
				"grant_type":    {"authorization_code"},
				"code":          {authCode},
				"code_verifier": {pkceVerifier},
				"redirect_uri":  {testRedirectURL},
				"client_id":     {testClientID},
				"client_secret": {testClientSecret},
			},
		},
		{
			name:   "header auth keeps Basic with refresh parameters",
			preset: fitbitWithParams,
			op:     "refresh",
			wantForm: url.Values{
				"grant_type":    {"refresh_token"},
				"refresh_token": {oldRT},
				"scope":         {"offline"},
			},
			wantBasic: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := newTokenServer(t, jsonReply(http.StatusOK, okBody))
			c := newTestClient(connection(tt.preset, ts.tokenURL()))
			if _, err := run(context.Background(), c, tt.op); err != nil {
				t.Fatalf("%s: got error %v; want none", tt.op, err)
			}
			reqs := ts.requests()
			if len(reqs) != 1 {
				t.Fatalf("server got %d requests; want 1", len(reqs))
			}
			r := reqs[0]
			if r.formErr != nil {
				t.Fatalf("request body is not a valid form: %v", r.formErr)
			}
			if r.contentType != "application/x-www-form-urlencoded" {
				t.Errorf("got Content-Type %q; want application/x-www-form-urlencoded", r.contentType)
			}
			if r.contentLength != int64(len(r.raw)) {
				t.Errorf("got Content-Length %d; want the body's %d bytes", r.contentLength, len(r.raw))
			}
			if r.hasBasic != tt.wantBasic {
				t.Errorf("got Basic auth %v; want %v", r.hasBasic, tt.wantBasic)
			}
			for k := range r.form {
				if _, ok := tt.wantForm[k]; !ok {
					t.Errorf("got form parameter %q; want none", k)
				}
			}
			for k, want := range tt.wantForm {
				got := r.form[k]
				if !slices.Equal(got, want) {
					// Values may be secrets: compare by fingerprint.
					t.Errorf("form %q: got %d values %v; want %v", k, len(got), fps(got), fps(want))
				}
			}
		})
	}
}

func fps(vs []string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = fp(v)
	}
	return out
}

func TestAuthCodeURL(t *testing.T) {
	challenge := func(v string) string {
		sum := sha256.Sum256([]byte(v))
		return base64.RawURLEncoding.EncodeToString(sum[:])
	}
	const state = "c3RhdGUtdmFsdWU"
	google := lookup(t, "google")
	strava := lookup(t, "strava")
	fitbit := lookup(t, "fitbit")
	tests := []struct {
		name     string
		preset   provider.Preset
		scopes   []string
		verifier string
		want     url.Values // the exact query
	}{
		{
			name:     "google with PKCE and offline access",
			preset:   google,
			scopes:   []string{"openid", "https://www.googleapis.com/auth/googlehealth.sleep.readonly"},
			verifier: pkceVerifier,
			want: url.Values{
				"client_id":              {testClientID},
				"redirect_uri":           {testRedirectURL},
				"response_type":          {"code"},
				"state":                  {state},
				"scope":                  {"openid https://www.googleapis.com/auth/googlehealth.sleep.readonly"},
				"access_type":            {"offline"},
				"prompt":                 {"consent"},
				"include_granted_scopes": {"true"},
				"code_challenge":         {challenge(pkceVerifier)},
				"code_challenge_method":  {"S256"},
			},
		},
		{
			name:   "google without a verifier has no challenge",
			preset: google,
			scopes: []string{"openid"},
			want: url.Values{
				"client_id":              {testClientID},
				"redirect_uri":           {testRedirectURL},
				"response_type":          {"code"},
				"state":                  {state},
				"scope":                  {"openid"},
				"access_type":            {"offline"},
				"prompt":                 {"consent"},
				"include_granted_scopes": {"true"},
			},
		},
		{
			name:   "strava joins scopes with commas in one value",
			preset: strava,
			scopes: []string{"read", "activity:read_all"},
			want: url.Values{
				"client_id":       {testClientID},
				"redirect_uri":    {testRedirectURL},
				"response_type":   {"code"},
				"state":           {state},
				"scope":           {"read,activity:read_all"},
				"approval_prompt": {"force"},
			},
		},
		{
			name:     "fitbit space-separated with PKCE",
			preset:   fitbit,
			scopes:   []string{"activity", "sleep"},
			verifier: pkceVerifier,
			want: url.Values{
				"client_id":             {testClientID},
				"redirect_uri":          {testRedirectURL},
				"response_type":         {"code"},
				"state":                 {state},
				"scope":                 {"activity sleep"},
				"code_challenge":        {challenge(pkceVerifier)},
				"code_challenge_method": {"S256"},
			},
		},
		{
			name:   "no scopes: no scope parameter",
			preset: customPreset(),
			want: url.Values{
				"client_id":     {testClientID},
				"redirect_uri":  {testRedirectURL},
				"response_type": {"code"},
				"state":         {state},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(connection(tt.preset, "", tt.scopes...))
			raw := c.AuthCodeURL(state, tt.verifier)
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatalf("AuthCodeURL is no URL: %v", err)
			}
			base, _ := url.Parse(tt.preset.AuthURL)
			if u.Scheme != base.Scheme || u.Host != base.Host || u.Path != base.Path {
				t.Errorf("got %s://%s%s; want %s", u.Scheme, u.Host, u.Path, tt.preset.AuthURL)
			}
			got := u.Query()
			for k := range got {
				if _, ok := tt.want[k]; !ok {
					t.Errorf("got parameter %s=%q; want none", k, got[k])
				}
			}
			for k, want := range tt.want {
				if !slices.Equal(got[k], want) {
					t.Errorf("parameter %s: got %q; want %q", k, got[k], want)
				}
			}
			if tt.verifier != "" && strings.Contains(raw, tt.verifier) {
				t.Errorf("AuthCodeURL holds the PKCE verifier; want only its challenge")
			}
			if strings.Contains(raw, testClientSecret) {
				t.Errorf("AuthCodeURL holds the client secret")
			}
		})
	}
}

func TestUsesPKCE(t *testing.T) {
	for _, tt := range []struct {
		preset string
		want   bool
	}{{"google", true}, {"fitbit", true}, {"strava", false}} {
		if got := newTestClient(connection(lookup(t, tt.preset), "")).UsesPKCE(); got != tt.want {
			t.Errorf("%s: got UsesPKCE %v; want %v", tt.preset, got, tt.want)
		}
	}
}

func TestExchange(t *testing.T) {
	tests := []struct {
		name         string
		preset       provider.Preset
		verifier     string
		handler      http.HandlerFunc
		wantAccount  string
		wantScope    []string
		wantClass    Class // "" means success
		wantCode     string
		wantHasRT    bool
		wantVerifier bool
	}{
		{
			name:         "google with PKCE",
			preset:       lookup(t, "google"),
			verifier:     pkceVerifier,
			handler:      jsonReply(http.StatusOK, `{"access_token":"`+newAT+`","expires_in":3599,"refresh_token":"`+newRT+`","scope":"openid https://www.googleapis.com/auth/googlehealth.sleep.readonly","token_type":"Bearer","id_token":"eyJhbGciOiJSUzI1NiJ9.e30.c2ln"}`),
			wantScope:    []string{"openid", "https://www.googleapis.com/auth/googlehealth.sleep.readonly"},
			wantHasRT:    true,
			wantVerifier: true,
		},
		{
			name:        "strava without PKCE reads athlete.id",
			preset:      lookup(t, "strava"),
			handler:     jsonReply(http.StatusOK, `{"token_type":"Bearer","expires_at":1791300000,"expires_in":21600,"refresh_token":"`+newRT+`","access_token":"`+newAT+`","athlete":{"id":12345678,"username":"runner"}}`),
			wantAccount: "12345678",
			wantHasRT:   true,
		},
		{
			name:         "google invalid_grant echoing the code",
			preset:       lookup(t, "google"),
			verifier:     pkceVerifier,
			handler:      jsonReply(http.StatusBadRequest, `{"error":"invalid_grant","error_description":"Malformed auth code: `+authCode+`"}`),
			wantClass:    Revoked,
			wantCode:     "invalid_grant",
			wantVerifier: true,
		},
		{
			name:         "fitbit invalid_grant echoing the verifier and secret",
			preset:       lookup(t, "fitbit"),
			verifier:     pkceVerifier,
			handler:      jsonReply(http.StatusBadRequest, `{"errors":[{"errorType":"invalid_grant","message":"Authorization code invalid: `+authCode+` verifier `+pkceVerifier+` client `+testClientSecret+`"}],"success":false}`),
			wantClass:    Revoked,
			wantCode:     "invalid_grant",
			wantVerifier: true,
		},
		{
			name:      "strava invalid code",
			preset:    lookup(t, "strava"),
			handler:   jsonReply(http.StatusBadRequest, `{"message":"Bad Request","errors":[{"resource":"AuthorizationCode","field":"code","code":"invalid"}]}`),
			wantClass: Revoked,
			wantCode:  "invalid_grant",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := newTokenServer(t, tt.handler)
			c := newTestClient(connection(tt.preset, ts.tokenURL()))
			tok, err := c.Exchange(context.Background(), authCode, tt.verifier)

			reqs := ts.requests()
			if len(reqs) != 1 {
				t.Fatalf("server got %d requests; want 1", len(reqs))
			}
			form := reqs[0].form
			if got := form.Get("grant_type"); got != "authorization_code" {
				t.Errorf("got grant_type %q; want authorization_code", got)
			}
			if got := form.Get("code"); got != authCode {
				t.Errorf("got code %s; want %s", fp(got), fp(authCode))
			}
			if got := form.Get("redirect_uri"); got != testRedirectURL {
				t.Errorf("got redirect_uri %q; want %q", got, testRedirectURL)
			}
			if got, has := form.Get("code_verifier"), form.Has("code_verifier"); has != tt.wantVerifier || (has && got != pkceVerifier) {
				t.Errorf("got code_verifier present=%v %s; want present=%v %s", has, fp(got), tt.wantVerifier, fp(pkceVerifier))
			}

			if tt.wantClass != "" {
				checkRedacted(t, err)
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("got error %v (%T); want *Error", err, err)
				}
				if e.Op != "exchange" {
					t.Errorf("got Op %q; want exchange", e.Op)
				}
				if e.Class != tt.wantClass {
					t.Errorf("got Class %q; want %q", e.Class, tt.wantClass)
				}
				if e.Code != tt.wantCode {
					t.Errorf("got Code %q; want %q", e.Code, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("Exchange: got error %v; want none", err)
			}
			if tok.AccessToken != newAT {
				t.Errorf("got AccessToken %s; want %s", fp(tok.AccessToken), fp(newAT))
			}
			if tt.wantHasRT && (tok.RefreshToken != newRT || !tok.Rotated) {
				t.Errorf("got RefreshToken %s Rotated %v; want %s true", fp(tok.RefreshToken), tok.Rotated, fp(newRT))
			}
			if tok.AccountID != tt.wantAccount {
				t.Errorf("got AccountID %q; want %q", tok.AccountID, tt.wantAccount)
			}
			if !slices.Equal(tok.Scope, tt.wantScope) {
				t.Errorf("got Scope %q; want %q", tok.Scope, tt.wantScope)
			}
		})
	}
}

// TestRefreshParamsOnlyOnRefreshGrant drives the transport directly: even when it is given
// extra parameters, a request of another grant type goes out unchanged.
func TestRefreshParamsOnlyOnRefreshGrant(t *testing.T) {
	tests := []struct {
		body      string
		wantScope string
	}{
		{"grant_type=refresh_token&refresh_token=r1", "offline"},
		{"code=c1&grant_type=authorization_code", ""},
	}
	for _, tt := range tests {
		ts := newTokenServer(t, jsonReply(http.StatusOK, `{}`))
		rt := &recordingTransport{base: http.DefaultTransport, rec: &recorder{}, grant: "refresh_token", extra: map[string]string{"scope": "offline"}}
		req, err := http.NewRequest(http.MethodPost, ts.tokenURL(), strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatalf("RoundTrip: %v", err)
		}
		resp.Body.Close()
		reqs := ts.requests()
		if len(reqs) != 1 {
			t.Fatalf("server got %d requests; want 1", len(reqs))
		}
		if got := reqs[0].form.Get("scope"); got != tt.wantScope {
			t.Errorf("%s: got scope %q; want %q", tt.body, got, tt.wantScope)
		}
		if got := rt.rec.get().gotStatus; got != http.StatusOK {
			t.Errorf("%s: recorded status %d; want 200", tt.body, got)
		}
	}
}

// TestExchangeRefreshLifetime: the first pair of a consent gets the preset's known refresh-token
// lifetime, counted from the exchange, whether or not refreshing extends it; an answer that says
// its own lifetime wins. The same rule serves both clients.
func TestExchangeRefreshLifetime(t *testing.T) {
	const year = 365 * 24 * time.Hour
	withLifetime := func(p provider.Preset, fromConsent bool) provider.Preset {
		p.RefreshTokenLifetime = year
		p.RefreshLifetimeFromConsent = fromConsent
		return p
	}
	std := `{"access_token":"` + newAT + `","token_type":"Bearer","expires_in":3600,"refresh_token":"` + newRT + `"}`
	tests := []struct {
		name   string
		preset provider.Preset
		body   string
		want   time.Time
	}{
		{"no lifetime known", customPreset(), std, time.Time{}},
		{"rolling lifetime", withLifetime(customPreset(), false), std, testNow.Add(year)},
		{"lifetime from consent", withLifetime(customPreset(), true), std, testNow.Add(year)},
		{"the answer's own lifetime", withLifetime(customPreset(), true),
			`{"access_token":"` + newAT + `","expires_in":3600,"refresh_token":"` + newRT + `","refresh_token_expires_in":86400}`,
			testNow.Add(24 * time.Hour)},
		{"no refresh token, no deadline", withLifetime(customPreset(), true),
			`{"access_token":"` + newAT + `","expires_in":3600}`, time.Time{}},
		{"withings", lookup(t, "withings"), withingsOK, testNow.Add(year)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTokenServer(t, jsonReply(http.StatusOK, tt.body))
			c := For(withClient(connection(tt.preset, ts.tokenURL()), NewHTTPClient(2*time.Second)))
			tok, err := c.Exchange(context.Background(), authCode, "")
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if !tok.RefreshExpiry.Equal(tt.want) {
				t.Errorf("got RefreshExpiry %v; want %v", tok.RefreshExpiry, tt.want)
			}
		})
	}
}
