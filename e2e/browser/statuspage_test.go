package browser

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/freshtoken/freshtoken/internal/statuspage"
	"github.com/freshtoken/freshtoken/internal/store"
)

type lister map[string]*store.Record

func (l lister) List(context.Context) (map[string]*store.Record, error) { return l, nil }

const functionKey = "test-function-key_0123456789abcdef=="

// app serves the status page behind a function-key check, as the Functions host does, and a
// stand-in for the consent page that records the key it was opened with.
type app struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []string // "name key" per consent page opened
}

func newApp(t *testing.T, now time.Time) *app {
	a := &app{}
	mux := http.NewServeMux()
	a.srv = httptest.NewServer(mux)
	t.Cleanup(a.srv.Close)
	base := a.srv.URL + "/api/authorize/"
	conns := []statuspage.Connection{
		{Name: "google", Provider: "google", AuthorizeURL: base + "google"},
		{Name: "strava", Provider: "strava", AuthorizeURL: base + "strava"},
		{Name: "fitbit", Provider: "fitbit", AuthorizeURL: base + "fitbit"},
		{Name: "spotify", Provider: "spotify", AuthorizeURL: base + "spotify"},
	}
	tok := store.Tokens{AccessToken: "access-not-shown", RefreshToken: "refresh-not-shown", ExpiresAt: now.Add(42 * time.Minute)}
	recs := lister{
		"google": {Name: "google", HasAccess: true, HasRefresh: true, HasStatus: true, Tokens: tok, Status: store.Status{
			State: store.StateOK, AccountID: "me@example.com", LastSuccess: now.Add(-18 * time.Minute),
			RefreshDeadline: now.Add(6 * 24 * time.Hour), MissingScopes: "https://www.googleapis.com/auth/calendar.readonly",
			Warning: "the refresh token expires in 6 days: consent again before then"}},
		"strava": {Name: "strava", HasAccess: true, HasRefresh: true, HasStatus: true, Tokens: tok, Status: store.Status{
			State: store.StateNeedsConsent, AccountID: "12345", LastSuccess: now.Add(-30 * time.Hour), LastFailure: now.Add(-3 * time.Hour),
			LastFailureClass: "revoked", LastFailureMessage: "the provider refused the refresh token: invalid_grant", ConsecutiveFailures: 1}},
		"fitbit": {Name: "fitbit", HasAccess: true, HasRefresh: true, HasStatus: true, Tokens: tok, Status: store.Status{
			State: store.StateRetrying, LastSuccess: now.Add(-2 * time.Hour), LastFailure: now.Add(-5 * time.Minute),
			LastFailureClass: "transient", LastFailureMessage: "token endpoint: HTTP 503", ConsecutiveFailures: 4, NextAttempt: now.Add(7 * time.Minute)}},
	}
	page := statuspage.NewHandler(statuspage.Options{Store: recs, Connections: conns, Now: func() time.Time { return now }})
	mux.HandleFunc("GET /api/authorize/{connection...}", func(w http.ResponseWriter, r *http.Request) {
		if statuspage.FunctionKey(r) != functionKey {
			http.Error(w, "a function key is required", http.StatusUnauthorized)
			return
		}
		name := r.PathValue("connection")
		if name == "" {
			page.ServeHTTP(w, r)
			return
		}
		a.mu.Lock()
		a.seen = append(a.seen, name+" "+statuspage.FunctionKey(r))
		a.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<!doctype html><title>consent</title><h1 id=consent>Consent for " + url.PathEscape(name) + "</h1>"))
	})
	return a
}

func TestStatusPageInBrowser(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	a := newApp(t, now)
	ctx := New(t, 60*time.Second)
	pageURL := a.srv.URL + "/api/authorize/?code=" + url.QueryEscape(functionKey)

	if err := chromedp.Do(ctx, chromedp.Navigate(pageURL), chromedp.WaitVisible(chromedp.CSS("h1"))); err != nil {
		t.Fatalf("load the status page: %v", err)
	}
	labels := map[string]string{}
	for _, s := range []string{"ok", "retrying", "needs_consent", "not_connected"} {
		labels[s] = Text(ctx, t, `[data-state="`+s+`"]`)
	}
	summary := Text(ctx, t, ".summary")
	// The inline style applies (the CSP allows it by its hash): the button is blue.
	buttonBG, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector('a.button')).backgroundColor`))
	if err != nil {
		t.Fatal(err)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(os.TempDir(), "freshtoken-statuspage.png"), shot, 0o644); err != nil {
		t.Logf("screenshot not written: %v", err)
	}
	want := map[string]string{"ok": "OK", "retrying": "Retrying", "needs_consent": "Needs consent", "not_connected": "Not connected"}
	for s, w := range want {
		if !strings.HasSuffix(labels[s], w) {
			t.Errorf("state %s: got label %q; want %q", s, labels[s], w)
		}
	}
	if !strings.Contains(summary, "4 connections") {
		t.Errorf("got summary %q; want 4 connections", summary)
	}
	if buttonBG != "rgb(9, 105, 218)" {
		t.Errorf("button background %q; want rgb(9, 105, 218): the page's style did not apply", buttonBG)
	}

	// Follow strava's Reconnect button to its consent page, with the same function key.
	err = chromedp.Do(ctx,
		chromedp.Click(`//a[normalize-space(.)="Reconnect strava"]`),
		chromedp.WaitVisible(chromedp.CSS("#consent")),
	)
	if err != nil {
		t.Fatalf("follow Reconnect: %v", err)
	}
	heading := Text(ctx, t, "#consent")
	location, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if heading != "Consent for strava" {
		t.Errorf("got heading %q; want Consent for strava", heading)
	}
	u, err := url.Parse(location)
	if err != nil || u.Path != "/api/authorize/strava" || u.Query().Get("code") != functionKey {
		t.Errorf("got location %q; want /api/authorize/strava with the page's function key", location)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.seen) != 1 || a.seen[0] != "strava "+functionKey {
		t.Errorf("consent pages opened: %q; want strava with the key", a.seen)
	}
}

// TestStatusPageWithoutJavaScript: the page and its buttons work with scripts off.
func TestStatusPageWithoutJavaScript(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	a := newApp(t, now)
	ctx := New(t, 60*time.Second)
	noScript := chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		return err
	})
	err := chromedp.Do(ctx, noScript,
		chromedp.Navigate(a.srv.URL+"/api/authorize/?code="+url.QueryEscape(functionKey)),
		chromedp.WaitVisible(chromedp.CSS(`[data-state="not_connected"]`)),
	)
	if err != nil {
		t.Fatalf("browse with scripts off: %v", err)
	}
	label := Text(ctx, t, `[data-state="not_connected"]`)
	if err := chromedp.Do(ctx, chromedp.Click(`//a[normalize-space(.)="Connect spotify"]`), chromedp.WaitVisible(chromedp.CSS("#consent"))); err != nil {
		t.Fatalf("follow Connect with scripts off: %v", err)
	}
	heading := Text(ctx, t, "#consent")
	if !strings.HasSuffix(label, "Not connected") || heading != "Consent for spotify" {
		t.Errorf("got label %q and heading %q; want Not connected, then Consent for spotify", label, heading)
	}

	// Without the key the page is refused (the host's check, stood in for here).
	resp, err := http.Get(a.srv.URL + "/api/authorize/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without a key: got %d; want 401", resp.StatusCode)
	}
}
