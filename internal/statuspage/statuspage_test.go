package statuspage

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/store"
)

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

const (
	accessTok  = "ya29.ACCESS-abcdefghijklmnopqrstuvwxyz0123456789"
	refreshTok = "1//REFRESH-abcdefghijklmnopqrstuvwxyz0123456789"
)

type lister struct {
	recs  map[string]*store.Record
	err   error
	calls int
}

func (l *lister) List(ctx context.Context) (map[string]*store.Record, error) {
	l.calls++
	return l.recs, l.err
}

func testConns() []Connection {
	var cs []Connection
	for _, n := range []string{"google", "strava", "fitbit", "spotify"} {
		cs = append(cs, Connection{Name: n, Provider: n, AuthorizeURL: "https://ft.example.com/api/authorize/" + n})
	}
	return cs
}

func testRecords() map[string]*store.Record {
	tokens := store.Tokens{AccessToken: accessTok, RefreshToken: refreshTok, ExpiresAt: now.Add(42 * time.Minute), RefreshExpiresAt: now.Add(5 * 24 * time.Hour)}
	return map[string]*store.Record{
		"google": {Name: "google", HasAccess: true, HasRefresh: true, HasStatus: true, Tokens: tokens, Status: store.Status{
			State: store.StateOK, Provider: "google", AccountID: "me@example.com", LastSuccess: now.Add(-18 * time.Minute),
			MissingScopes: "https://www.googleapis.com/auth/calendar.readonly openid", RefreshDeadline: tokens.RefreshExpiresAt,
			Warning: "the refresh token expires 2026-12-06T12:00:00Z (in 120h0m0s): consent again before then",
		}},
		"strava": {Name: "strava", HasAccess: true, HasRefresh: true, HasStatus: true, Tokens: tokens, Status: store.Status{
			State: store.StateRetrying, Provider: "strava", AccountID: "12345", LastSuccess: now.Add(-3 * time.Hour),
			LastFailure: now.Add(-2 * time.Minute), LastFailureClass: "transient",
			LastFailureMessage: "token endpoint: HTTP 503 <b>down</b> " + refreshTok, ConsecutiveFailures: 3, NextAttempt: now.Add(4 * time.Minute),
		}},
		"fitbit": {Name: "fitbit", HasAccess: true, HasRefresh: true, HasStatus: true, Tokens: tokens, Status: store.Status{
			State: store.StateNeedsConsent, Provider: "fitbit", LastFailure: now.Add(-26 * time.Hour), LastFailureClass: "revoked",
			LastFailureMessage: "the provider refused the refresh token", ConsecutiveFailures: 1, NextAttempt: now.Add(time.Hour),
		}},
		"gone": {Name: "gone", HasAccess: true, Tokens: tokens},
	}
}

func TestAssemble(t *testing.T) {
	m := Assemble(testConns(), testRecords(), now)
	var got []string
	for _, c := range m.Connections {
		got = append(got, c.Name+"="+string(c.State))
	}
	want := "google=ok strava=retrying fitbit=needs_consent spotify=not_connected"
	if strings.Join(got, " ") != want {
		t.Errorf("got %q; want %q (configuration order, unconfigured records left out)", strings.Join(got, " "), want)
	}
	g := m.Connections[0]
	if len(g.MissingScopes) != 2 || g.AccountID != "me@example.com" || !g.AccessTokenExpiresAt.Equal(now.Add(42*time.Minute)) {
		t.Errorf("google: got %+v", g)
	}
	if s := m.Connections[1]; strings.Contains(s.LastFailureMessage, refreshTok) || s.NextAttempt.IsZero() {
		t.Errorf("strava: got message %q next %v; want the token redacted and the next attempt", s.LastFailureMessage, s.NextAttempt)
	}
	if f := m.Connections[2]; !f.NextAttempt.IsZero() {
		t.Errorf("fitbit: got next attempt %v; want none while it needs consent", f.NextAttempt)
	}
}

func TestJSON(t *testing.T) {
	tests := []struct {
		name   string
		target string
		accept string
	}{
		{"Accept", "/api/authorize/", "application/json"},
		{"Accept with others", "/api/authorize/", "text/plain;q=0.5, application/json;q=0.9"},
		{"format=json", "/api/authorize/?format=json", "text/html"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &lister{recs: testRecords()}
			h := NewHandler(Options{Store: l, Connections: testConns(), Now: func() time.Time { return now }})
			req := httptest.NewRequest(http.MethodGet, tt.target, nil)
			req.Header.Set("Accept", tt.accept)
			rr := httptest.NewRecorder()
			h.ServeHTTP(rr, req)
			if rr.Code != http.StatusOK || !strings.HasPrefix(rr.Header().Get("Content-Type"), "application/json") {
				t.Fatalf("got %d %s; want 200 JSON", rr.Code, rr.Header().Get("Content-Type"))
			}
			if l.calls != 1 {
				t.Errorf("got %d table reads; want 1", l.calls)
			}
			body := rr.Body.String()
			checkNoSecrets(t, body)
			var raw struct {
				Connections []map[string]any `json:"connections"`
			}
			if err := json.Unmarshal(rr.Body.Bytes(), &raw); err != nil {
				t.Fatal(err)
			}
			wantKeys := "accessTokenExpiresAt accountId consecutiveFailures lastFailure lastFailureClass lastFailureMessage lastSuccess missingScopes name nextAttempt provider refreshDeadline state warning"
			rfc := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)
			for _, c := range raw.Connections {
				var keys []string
				for k := range c {
					keys = append(keys, k)
				}
				for _, k := range []string{"accessTokenExpiresAt", "lastSuccess", "lastFailure", "nextAttempt", "refreshDeadline"} {
					if s, ok := c[k].(string); c[k] != nil && (!ok || !rfc.MatchString(s)) {
						t.Errorf("%s.%s = %v; want RFC 3339 UTC or null", c["name"], k, c[k])
					}
				}
				sort.Strings(keys)
				if strings.Join(keys, " ") != wantKeys {
					t.Errorf("%s: got keys %q; want %q", c["name"], strings.Join(keys, " "), wantKeys)
				}
				if _, ok := c["missingScopes"].([]any); !ok {
					t.Errorf("%s: missingScopes = %v; want an array", c["name"], c["missingScopes"])
				}
			}
			var m Model
			if err := json.Unmarshal(rr.Body.Bytes(), &m); err != nil {
				t.Fatal(err)
			}
			s := m.Connections[1]
			if s.State != Retrying || !s.LastFailure.Equal(now.Add(-2*time.Minute)) || s.ConsecutiveFailures != 3 || s.LastFailureClass != "transient" {
				t.Errorf("strava: got %+v", s)
			}
			if m.Connections[3].State != NotConnected || !m.Connections[3].LastSuccess.IsZero() {
				t.Errorf("spotify: got %+v; want not_connected with null times", m.Connections[3])
			}
		})
	}
}

func checkNoSecrets(t *testing.T, body string) {
	t.Helper()
	for _, s := range []string{accessTok, refreshTok, "ACCESS-abc", "REFRESH-abc"} {
		if strings.Contains(body, s) {
			t.Errorf("the answer holds a token (%s...)", s[:8])
		}
	}
}

func TestHTML(t *testing.T) {
	const key = "k3y_Abc/def+ghi=="
	tests := []struct {
		name    string
		target  string
		header  string
		wantKey string // in links, query-escaped
	}{
		{"key in code", "/api/authorize/?code=" + strings.NewReplacer("/", "%2F", "+", "%2B", "=", "%3D").Replace(key), "", "code=k3y_Abc%2Fdef%2Bghi%3D%3D"},
		{"key in header", "/api/authorize/", key, "code=k3y_Abc%2Fdef%2Bghi%3D%3D"},
		{"no key", "/api/authorize/", "", ""},
		{"a hostile key is not carried", `/api/authorize/?code=%22%3E%3Cscript%3Ealert(1)%3C/script%3E`, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHandler(Options{Store: &lister{recs: testRecords()}, Connections: testConns(), Now: func() time.Time { return now }})
			req := httptest.NewRequest(http.MethodGet, tt.target, nil)
			req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
			if tt.header != "" {
				req.Header.Set("x-functions-key", tt.header)
			}
			rr := httptest.NewRecorder()
			h.ServeHTTP(rr, req)
			if rr.Code != http.StatusOK || rr.Header().Get("Content-Type") != "text/html; charset=utf-8" {
				t.Fatalf("got %d %s; want 200 HTML", rr.Code, rr.Header().Get("Content-Type"))
			}
			body := rr.Body.String()
			checkNoSecrets(t, body)
			checkHeaders(t, rr, body)
			for _, w := range []string{">OK<", ">Retrying<", ">Needs consent<", ">Not connected<", "(in 42 min)", "(18 min ago)", "(26 hours ago)", "(in 5 days)",
				"Reconnect google", "Connect spotify", "me@example.com", "calendar.readonly", "Warning:", "HTTP 503 &lt;b&gt;down&lt;/b&gt;",
				"4 connections: 1 ok, 1 retrying, 1 needs consent, 1 not connected"} {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			if strings.Contains(body, "<script") || strings.Contains(body, "alert(1)") || strings.Contains(body, "<b>down") {
				t.Error("page reflects markup unescaped")
			}
			links := regexp.MustCompile(`href="([^"]*)"`).FindAllStringSubmatch(body, -1)
			if len(links) != 4 {
				t.Fatalf("got %d links; want 4", len(links))
			}
			for _, l := range links {
				href := strings.ReplaceAll(l[1], "&amp;", "&")
				if !strings.HasPrefix(href, "https://ft.example.com/api/authorize/") {
					t.Errorf("link %q: want the connection's Authorize URL", href)
				}
				if tt.wantKey != "" && !strings.HasSuffix(href, "?"+tt.wantKey) {
					t.Errorf("link %q: want the key as %s", href, tt.wantKey)
				}
				if tt.wantKey == "" && strings.Contains(href, "code=") {
					t.Errorf("link %q carries a key; want none", href)
				}
			}
		})
	}
}

func checkHeaders(t *testing.T, rr *httptest.ResponseRecorder, body string) {
	t.Helper()
	csp := rr.Header().Get("Content-Security-Policy")
	for _, w := range []string{"default-src 'none'", "frame-ancestors 'none'", "form-action 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, w) {
			t.Errorf("CSP %q lacks %q", csp, w)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "http") {
		t.Errorf("CSP %q allows inline or outside sources", csp)
	}
	if got := rr.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q; want no-store", got)
	}
	if got := rr.Header().Get("Referrer-Policy"); got != "no-referrer" {
		t.Errorf("Referrer-Policy = %q; want no-referrer", got)
	}
	if body == "" || !strings.Contains(body, "<style>") {
		return
	}
	// The one style block is what the CSP allows by hash.
	css := body[strings.Index(body, "<style>")+len("<style>") : strings.Index(body, "</style>")]
	sum := sha256.Sum256([]byte(css))
	if !strings.Contains(csp, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") {
		t.Errorf("CSP %q does not allow the page's style block", csp)
	}
	for _, w := range []string{"<script", "src=", "<link", "<img", "@import", "url("} {
		if strings.Contains(body, w) {
			t.Errorf("page holds %q; want a self-contained page", w)
		}
	}
}

func TestErrors(t *testing.T) {
	l := &lister{err: errors.New("store: list: HTTP 403 sig=abcdefghijklmnopqrstuvwxyz0123456789ABCDEF")}
	h := NewHandler(Options{Store: l, Connections: testConns()})
	for _, accept := range []string{"application/json", "text/html"} {
		rr := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/api/authorize/", nil)
		req.Header.Set("Accept", accept)
		h.ServeHTTP(rr, req)
		if rr.Code != http.StatusServiceUnavailable || strings.Contains(rr.Body.String(), "sig=") || !strings.Contains(rr.Body.String(), "could not be read") {
			t.Errorf("%s: got %d %q; want 503 saying the table could not be read, without detail", accept, rr.Code, rr.Body.String())
		}
		checkHeaders(t, rr, rr.Body.String())
	}
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequest(http.MethodPost, "/api/authorize/", nil))
	if rr.Code != http.StatusMethodNotAllowed || rr.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: got %d Allow %q; want 405 GET, HEAD", rr.Code, rr.Header().Get("Allow"))
	}
}

func TestTimeJSON(t *testing.T) {
	b, _ := json.Marshal(struct{ A, B Time }{Time{time.Date(2026, 1, 2, 3, 4, 5, 600, time.FixedZone("X", 3600))}, Time{}})
	if string(b) != `{"A":"2026-01-02T02:04:05Z","B":null}` {
		t.Errorf("got %s; want UTC RFC 3339 and null", b)
	}
}
