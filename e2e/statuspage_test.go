package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	chrome "github.com/freshtoken/freshtoken/e2e/browser"
	"github.com/freshtoken/freshtoken/e2e/faultproxy"
	"github.com/freshtoken/freshtoken/e2e/funchost"
	"github.com/freshtoken/freshtoken/e2e/oauthserver"
)

// stateWorld is an app with one connection in each state: okay (ok), flaky (retrying: its token
// endpoint answers 503), revoked (needs consent) and fresh (not connected). It reaches Azurite
// through a proxy that counts the table requests. The timer's schedule fires once a year, so
// only the test invokes it.
func stateWorld(t *testing.T) (*world, *funchost.Host, *atomic.Int64) {
	t.Helper()
	w := newWorld(t, oauthserver.Options{}, "okay", "flaky", "revoked", "fresh")
	w.withPublicHost()
	w.env["REFRESH_SCHEDULE"] = "0 0 0 1 1 *"
	tableRequests := new(atomic.Int64)
	tables, err := faultproxy.Start(faultproxy.Options{
		Name:   "table",
		Target: azurite.Addr(),
		Decide: func(*faultproxy.Request) faultproxy.Action {
			tableRequests.Add(1)
			return faultproxy.Action{}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tables.Close() })
	w.env["AzureWebJobsStorage"] = azurite.ConnectionStringFor(tables.Addr())
	// flaky reaches the token endpoint through a proxy that can stand in for an outage.
	var down atomic.Bool
	proxy, err := faultproxy.Start(faultproxy.Options{
		Name:   "flaky-token",
		Target: strings.TrimPrefix(w.oauth.URL(), "http://"),
		Decide: func(*faultproxy.Request) faultproxy.Action {
			if down.Load() {
				return faultproxy.Action{Fault: faultproxy.Unavailable, Status: http.StatusServiceUnavailable}
			}
			return faultproxy.Action{}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	w.env["OAUTH_FLAKY_TOKEN_URL"] = proxy.URL() + oauthserver.TokenPath
	h := w.start(true)

	b := w.recordingBrowser()
	for _, c := range []string{"okay", "flaky", "revoked"} {
		if status, page := w.consent(h, b, c); status != http.StatusOK {
			t.Fatalf("consent %s = %d %q", c, status, page)
		}
	}
	if err := w.oauth.Revoke(str(w.row("revoked", "RefreshToken"), "Value")); err != nil {
		t.Fatal(err)
	}
	w.expireAccessToken("revoked")
	if res := invoke(t, h); !res.Failed {
		t.Errorf("the pass on a revoked grant succeeded; want it failed")
	}
	down.Store(true)
	w.expireAccessToken("flaky")
	invoke(t, h)
	return w, h, tableRequests
}

// connState is one connection of the status page's JSON.
type connState struct {
	Name                string `json:"name"`
	Provider            string `json:"provider"`
	State               string `json:"state"`
	AccountID           string `json:"accountId"`
	LastFailureClass    string `json:"lastFailureClass"`
	ConsecutiveFailures int    `json:"consecutiveFailures"`
	NextAttempt         string `json:"nextAttempt"`
}

// get fetches a page of the front door without following redirects.
func get(t *testing.T, rawURL string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	c := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// TestStatusPageStates: the status page and its JSON, served by the built handler through the
// host's front door, show each connection's true state and are refused without the function
// key.
func TestStatusPageStates(t *testing.T) {
	w, h, tableRequests := stateWorld(t)
	page := h.URL() + "/api/authorize/"
	key := url.QueryEscape(h.FunctionKey())

	for _, u := range []string{page, page + "?format=json", page + "?code=not-the-key", h.URL() + "/api/authorize"} {
		if resp, _ := get(t, u, nil); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without the key: got %d; want 401", strings.TrimPrefix(u, h.URL()), resp.StatusCode)
		}
	}

	want := map[string]string{"okay": "ok", "flaky": "retrying", "revoked": "needs_consent", "fresh": "not_connected"}
	for _, tc := range []struct {
		name   string
		url    string
		header http.Header
	}{
		{"Accept", page + "?code=" + key, http.Header{"Accept": {"application/json"}}},
		{"format=json", page + "?format=json&code=" + key, nil},
		{"header key, no slash", h.URL() + "/api/authorize?format=json", http.Header{"X-Functions-Key": {h.FunctionKey()}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, tc.url, tc.header)
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				t.Fatalf("got %d %s %q; want 200 JSON", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q; want no-store", cc)
			}
			var doc struct{ Connections []connState }
			if err := json.Unmarshal([]byte(body), &doc); err != nil {
				t.Fatalf("JSON: %v in %q", err, body)
			}
			got := map[string]connState{}
			for _, c := range doc.Connections {
				got[c.Name] = c
			}
			for name, state := range want {
				if got[name].State != state || got[name].Provider != "custom" {
					t.Errorf("%s: got %+v; want state %s, provider custom", name, got[name], state)
				}
			}
			if len(doc.Connections) != len(want) {
				t.Errorf("got %d connections; want %d", len(doc.Connections), len(want))
			}
			if c := got["okay"]; c.ConsecutiveFailures != 0 || c.LastFailureClass != "" {
				t.Errorf("okay: got %+v; want no failures", c)
			}
			if c := got["flaky"]; c.ConsecutiveFailures < 1 || c.NextAttempt == "" || c.LastFailureClass == "" {
				t.Errorf("flaky: got %+v; want failures counted, a class and a next attempt", c)
			}
			if c := got["revoked"]; c.LastFailureClass == "" || c.ConsecutiveFailures < 1 {
				t.Errorf("revoked: got %+v; want the failure's class", c)
			}
			var raw struct{ Connections []map[string]any }
			if err := json.Unmarshal([]byte(body), &raw); err != nil {
				t.Fatal(err)
			}
			for _, c := range raw.Connections {
				exp, ok := c["accessTokenExpiresAt"]
				switch c["name"] {
				case "fresh":
					if !ok || exp != nil {
						t.Errorf("fresh: accessTokenExpiresAt %v (present %v); want null", exp, ok)
					}
				case "okay":
					s, _ := exp.(string)
					if tm, err := time.Parse(time.RFC3339, s); err != nil || !strings.HasSuffix(s, "Z") || tm.Before(time.Now()) {
						t.Errorf("okay: accessTokenExpiresAt %q; want a future RFC 3339 UTC time", s)
					}
				}
			}
			checkClean(t, "the JSON", body, w.secrets(h.MasterKey()))
		})
	}

	before := tableRequests.Load()
	resp, html := get(t, page+"?code="+key, nil)
	if n := tableRequests.Load() - before; n != 1 {
		t.Errorf("one status page read the table %d times; want once", n)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("HTML page: got %d %s; want 200 text/html", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, s := range want {
		if !strings.Contains(html, `data-state="`+s+`"`) {
			t.Errorf("the HTML page has no %s state", s)
		}
	}
	for _, hd := range []string{"Content-Security-Policy", "Referrer-Policy"} {
		if resp.Header.Get(hd) == "" {
			t.Errorf("the page came through the host without %s", hd)
		}
	}
	checkClean(t, "the HTML page", html, w.secrets(h.MasterKey()))
}

// TestStatusPageInBrowserBuilt: a person's view. Chromium opens the built handler's status page
// through the front door with the function key in the URL, finds each state's label, follows
// revoked's Reconnect button to the provider's consent page, allows, and the status page then
// shows revoked as ok. Screenshots go to the temporary directory.
func TestStatusPageInBrowserBuilt(t *testing.T) {
	w, h, _ := stateWorld(t)
	ctx := chrome.New(t, time.Minute)
	pageURL := h.URL() + "/api/authorize/?code=" + url.QueryEscape(h.FunctionKey())
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(os.TempDir(), name), png, 0o644); err != nil {
			t.Logf("screenshot not written: %v", err)
		}
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(pageURL), chromedp.WaitVisible(chromedp.CSS("h1"))); err != nil {
		t.Fatalf("load the status page: %v", err)
	}
	shot("freshtoken-statuspage-built.png")
	want := map[string]string{"ok": "OK", "retrying": "Retrying", "needs_consent": "Needs consent", "not_connected": "Not connected"}
	for s, label := range want {
		if got := chrome.Text(ctx, t, `[data-state="`+s+`"]`); !strings.HasSuffix(got, label) {
			t.Errorf("state %s: got label %q; want %q", s, got, label)
		}
	}
	if got := chrome.Text(ctx, t, `body`); strings.Contains(got, w.secret) {
		t.Errorf("the page shows the client secret")
	}

	// Reconnect revoked: Authorize (with the page's key) → the provider's consent page.
	w.oauth.SetConsent(oauthserver.Interactive, nil)
	err := chromedp.Do(ctx,
		chromedp.Click(`//a[normalize-space(.)="Reconnect revoked"]`),
		chromedp.WaitVisible(chromedp.CSS(`button[value="allow"]`)),
	)
	if err != nil {
		t.Fatalf("follow Reconnect to the consent page: %v", err)
	}
	shot("freshtoken-consent-built.png")
	if got := chrome.Text(ctx, t, "h1"); got != "Development OAuth server" {
		t.Errorf("consent page heading %q; want Development OAuth server", got)
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(loc, w.oauth.AuthURL()) {
		t.Errorf("Reconnect led to %s; want the provider's authorization endpoint", loc)
	}

	// Allow: back through Callback, and revoked is ok on the page again.
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	err = chromedp.Do(sctx, chromedp.Click(chromedp.CSS(`button[value="allow"]`)))
	if err == nil {
		err = waitText(sctx, "revoked is connected")
	}
	if err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		shot("freshtoken-callback-built.png")
		t.Fatalf("allow on the consent page: %v (at %s: %q)", err, loc, body)
	}
	if loc, err = chromedp.Run(ctx, chromedp.Location()); err == nil {
		if u, perr := url.Parse(loc); perr == nil {
			w.extra = append(w.extra, u.Query().Get("code"))
		}
	}
	shot("freshtoken-callback-built.png")
	if err := chromedp.Do(ctx, chromedp.Navigate(pageURL), chromedp.WaitVisible(chromedp.CSS("h1"))); err != nil {
		t.Fatalf("reload the status page: %v", err)
	}
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('[data-state="ok"]').length`))
	if err != nil || n != 2 {
		t.Errorf("after reconnecting: %d connections ok (%v); want 2 (okay and revoked)", n, err)
	}
	if got := str(w.row("revoked", "Status"), "State"); got != "ok" {
		t.Errorf("revoked State = %q after reconnecting; want ok", got)
	}
}

// waitText waits until the current page's text holds want, across navigations (an evaluation
// that meets a navigation is tried again).
func waitText(ctx context.Context, want string) error {
	expr := `document.body !== null && document.body.innerText.includes(` + strconv.Quote(want) + `)`
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %q: %w (last: %v)", want, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
