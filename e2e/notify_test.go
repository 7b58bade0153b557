package e2e

import (
	"context"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/freshtoken/freshtoken/e2e/faultproxy"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/e2e/funchost"
	"github.com/freshtoken/freshtoken/e2e/oauthserver"
	"github.com/freshtoken/freshtoken/e2e/receiver"
)

// The proof of issue 8 against the built handler: notifications at real receivers, deduplicated
// across passes and processes, the heartbeat, and (statuspage_test.go) the status page.

// monitor is a heartbeat monitor on loopback: it counts the paths it is pinged at.
type monitor struct {
	srv   *httptest.Server
	mu    sync.Mutex
	pings map[string]int
}

func newMonitor(t *testing.T) *monitor {
	m := &monitor{pings: map[string]int{}}
	m.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "want GET", http.StatusMethodNotAllowed)
			return
		}
		m.mu.Lock()
		m.pings[r.URL.Path]++
		m.mu.Unlock()
		_, _ = w.Write([]byte("OK"))
	}))
	t.Cleanup(m.srv.Close)
	return m
}

// URL is the monitor's root: pings for good passes arrive at "/".
func (m *monitor) URL() string { return m.srv.URL }

// check compares the pings so far with want.
func (m *monitor) check(t *testing.T, when string, want map[string]int) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for p, n := range want {
		if m.pings[p] != n {
			t.Errorf("%s: heartbeat pings %v; want %v", when, m.pings, want)
			return
		}
	}
	for p, n := range m.pings {
		if want[p] != n {
			t.Errorf("%s: heartbeat pings %v; want %v", when, m.pings, want)
			return
		}
	}
}

// withPublicHost says where browsers reach the app, as the platform's WEBSITE_HOSTNAME does, so
// that the Authorize URLs in messages and on the status page are the front door's.
func (w *world) withPublicHost() {
	w.env["WEBSITE_HOSTNAME"] = strings.TrimPrefix(w.base, "http://")
}

// withNotifications points the world's app at notification URLs and a heartbeat URL (with
// withPublicHost). Every URL becomes a secret the logs are checked for.
func (w *world) withNotifications(heartbeatURL string, notifyURLs ...string) {
	w.env["NOTIFY_URLS"] = strings.Join(notifyURLs, ", ")
	if heartbeatURL != "" {
		w.env["HEARTBEAT_URL"] = heartbeatURL
		w.extra = append(w.extra, heartbeatURL+"/", heartbeatURL+`"`)
	}
	w.withPublicHost()
	w.extra = append(w.extra, notifyURLs...)
}

// codeRecorder remembers the authorization codes a browser carries to Callback, so that tests
// can look for them where they must not be.
type codeRecorder struct {
	w    *world
	next http.RoundTripper
}

func (c codeRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasPrefix(r.URL.Path, "/api/callback/") {
		if code := r.URL.Query().Get("code"); code != "" {
			c.w.extra = append(c.w.extra, code)
		}
	}
	return c.next.RoundTrip(r)
}

// recordingBrowser is browser() with its authorization codes recorded as secrets.
func (w *world) recordingBrowser() *http.Client {
	b := browser()
	b.Transport = codeRecorder{w: w, next: http.DefaultTransport}
	return b
}

// secrets is every secret the world knows of, plus more.
func (w *world) secrets(more ...string) []string {
	s := append([]string{w.secret}, w.extra...)
	issued := w.oauth.Issued()
	s = append(s, issued.AccessTokens...)
	s = append(s, issued.RefreshTokens...)
	return append(s, more...)
}

// checkClean fails the test when text holds one of secrets.
func checkClean(t *testing.T, what, text string, secrets []string) {
	t.Helper()
	for i, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s holds secret #%d (length %d)", what, i, len(s))
		}
	}
}

// passes sends n timer invocations at once, spread over hosts, and returns how many failed.
func passes(t *testing.T, hosts []*funchost.Host, n int) (failed int) {
	t.Helper()
	results := make([]*funchost.InvokeResult, n)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			res, err := hosts[i%len(hosts)].InvokeTimer(ctx, "RefreshTimer", funchost.TimerOptions{})
			if err != nil {
				t.Error(err)
				return
			}
			results[i] = res
		}()
	}
	close(gate)
	wg.Wait()
	for _, res := range results {
		if res == nil {
			t.FailNow()
		}
		if res.Failed {
			failed++
		}
	}
	return failed
}

// TestNotifyRevokedGrantOnce: a grant revoked at the provider brings one "needs consent"
// message to a generic JSON webhook, whatever the number of passes and processes; a new consent
// brings one "recovered". The heartbeat hears of every pass, good or failed.
func TestNotifyRevokedGrantOnce(t *testing.T) {
	hook := receiver.NewWebhook()
	t.Cleanup(hook.Close)
	mon := newMonitor(t)
	w := newWorld(t, oauthserver.Options{}, "demo")
	const hookPath = "/hooks/ft-5b2e91d04c7a"
	w.withNotifications(mon.URL(), hook.URL(hookPath))
	w.extra = append(w.extra, strings.TrimPrefix(hookPath, "/hooks/"))
	h1, h2 := w.start(true), w.start(false)
	hosts := []*funchost.Host{h1, h2}
	authorizeURL := w.base + "/api/authorize/demo"

	if status, page := w.consent(h1, w.recordingBrowser(), "demo"); status != http.StatusOK {
		t.Fatalf("consent = %d %q", status, page)
	}
	if res := invoke(t, h1); res.Failed {
		t.Fatalf("pass on a fresh connection failed: %s %s", res.Reason, res.Body)
	}
	mon.check(t, "after a good pass", map[string]int{"/": 1})
	if p := hook.Pending(); len(p) != 0 {
		t.Errorf("notifications for a healthy connection: %v; want none", p)
	}

	if err := w.oauth.RevokeAll(); err != nil {
		t.Fatal(err)
	}
	w.expireAccessToken("demo")
	const n = 10
	failed := passes(t, hosts, n)
	if failed == 0 {
		t.Errorf("no pass failed with a revoked grant; want failed invocations")
	}
	mon.check(t, "after passes on a revoked grant", map[string]int{"/": 1 + n - failed, "/fail": failed})
	if st := w.row("demo", "Status"); str(st, "State") != "needs_consent" || str(st, "NotifiedEvent") == "" || str(st, "NotifyClaim") != "" {
		t.Fatalf("Status = %v; want needs_consent, the event recorded as notified, no claim left", st)
	}
	// Two more rounds, one per process, after the event was recorded.
	failed += passes(t, hosts, 2)
	posts := hook.Pending()
	if len(posts) != 1 {
		t.Fatalf("got %d notifications after %d passes on 2 processes: %v; want exactly 1", len(posts), n+2, posts)
	}
	p := posts[0]
	if p.Path != hookPath || p.Body["title"] != "freshtoken: demo needs consent" || !strings.Contains(p.Body["message"], authorizeURL) {
		t.Errorf("webhook got %s %v; want the title %q and a message with %s", p.Path, p.Body, "freshtoken: demo needs consent", authorizeURL)
	}
	// The link as written is refused (the function key must not travel in a message), so the
	// message says how to add the key; with it, the link leads to the provider.
	if resp, _ := get(t, authorizeURL, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the notification's URL without a key: got %d; want 401", resp.StatusCode)
	}
	if !strings.Contains(p.Body["message"], "?code=") {
		t.Errorf("the message %q does not say how to add the function key", p.Body["message"])
	}
	if resp, _ := get(t, authorizeURL+"?code="+url.QueryEscape(h1.FunctionKey()), nil); resp.StatusCode != http.StatusFound ||
		!strings.HasPrefix(resp.Header.Get("Location"), w.oauth.AuthURL()) {
		t.Errorf("the notification's URL with the key: got %d to %q; want 302 to the provider", resp.StatusCode, resp.Header.Get("Location"))
	}
	keys := []string{h1.FunctionKey(), h2.FunctionKey(), h1.MasterKey(), h2.MasterKey()}
	checkClean(t, "the needs-consent notification", p.Body["title"]+"\n"+p.Body["message"], w.secrets(keys...))
	if strings.Contains(p.Body["message"], "invalid_grant") {
		t.Errorf("the notification quotes the provider's error: %q", p.Body["message"])
	}

	// A day later it still needs consent: one reminder (NOTIFY_REMINDER defaults to 24h).
	w.setStatusTimes("demo", map[string]time.Time{"NotifiedAt": time.Now().Add(-25 * time.Hour)})
	failed += passes(t, hosts, 4)
	failed += passes(t, hosts, 2)
	posts = hook.Pending()
	if len(posts) != 1 || posts[0].Body["title"] != "freshtoken: demo still needs consent" || !strings.Contains(posts[0].Body["message"], authorizeURL) {
		t.Errorf("a day after the needs-consent notification: %v; want exactly one reminder with the Authorize URL", posts)
	}
	const rounds = n + 2 + 4 + 2

	// Consent again (through the second process's front door): one "recovered".
	if status, page := w.consent(h2, w.recordingBrowser(), "demo"); status != http.StatusOK {
		t.Fatalf("second consent = %d %q", status, page)
	}
	if p := hook.Pending(); len(p) != 0 {
		t.Errorf("notifications before a pass after consent: %v; want none yet", p)
	}
	if f := passes(t, hosts, 6); f != 0 {
		t.Errorf("%d passes failed after a new consent; want none", f)
	}
	mon.check(t, "after a reconnect", map[string]int{"/": 1 + rounds - failed + 6, "/fail": failed})
	posts = hook.Pending()
	if len(posts) != 1 || posts[0].Body["title"] != "freshtoken: demo recovered" {
		t.Fatalf("notifications after reconnecting: %v; want exactly one \"freshtoken: demo recovered\"", posts)
	}
	checkClean(t, "the recovered notification", posts[0].Body["title"]+"\n"+posts[0].Body["message"], w.secrets(keys...))
	// Logs of both processes are checked for these secrets when they stop (checkNoSecrets).
}

// TestNotifyEmail: with an smtp:// URL and a webhook in NOTIFY_URLS, the needs-consent message
// arrives once by mail and once at the webhook; the SMTP password appears nowhere.
func TestNotifyEmail(t *testing.T) {
	const smtpPassword = "smtp-pass-9d8c7b6a5e"
	mail, err := receiver.NewSMTP("freshtoken", smtpPassword)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mail.Close() })
	hook := receiver.NewWebhook()
	t.Cleanup(hook.Close)
	mon := newMonitor(t)
	w := newWorld(t, oauthserver.Options{}, "demo")
	const pingToken = "hb-3f9a1c77e0"
	w.withNotifications(mon.URL()+"/ping/"+pingToken, hook.URL("/mail-test"), mail.URL("freshtoken@example.com", "owner@example.com"))
	w.extra = append(w.extra, smtpPassword, pingToken)
	h1, h2 := w.start(true), w.start(false)
	authorizeURL := w.base + "/api/authorize/demo"

	if status, page := w.consent(h1, w.recordingBrowser(), "demo"); status != http.StatusOK {
		t.Fatalf("consent = %d %q", status, page)
	}
	if err := w.oauth.RevokeAll(); err != nil {
		t.Fatal(err)
	}
	w.expireAccessToken("demo")
	failed := passes(t, []*funchost.Host{h1, h2}, 4)
	mon.check(t, "after passes on a revoked grant", map[string]int{"/ping/" + pingToken: 4 - failed, "/ping/" + pingToken + "/fail": failed})

	mails := mail.Pending()
	if len(mails) != 1 {
		t.Fatalf("got %d mails; want exactly 1", len(mails))
	}
	m := mails[0]
	// The body may be wrapped or encoded: look for the URL with soft line breaks undone.
	data := strings.ReplaceAll(strings.ReplaceAll(m.Data, "=\r\n", ""), "\r\n", "\n")
	if m.From != "freshtoken@example.com" || len(m.To) != 1 || m.To[0] != "owner@example.com" {
		t.Errorf("mail from %q to %q; want freshtoken@example.com to owner@example.com", m.From, m.To)
	}
	if !strings.Contains(data, "Subject: freshtoken: demo needs consent") || !strings.Contains(data, authorizeURL) {
		t.Errorf("mail = %q; want the subject and the Authorize URL %s", data, authorizeURL)
	}
	checkClean(t, "the mail", data, w.secrets(h1.FunctionKey(), h2.FunctionKey()))
	if posts := hook.Pending(); len(posts) != 1 || posts[0].Body["title"] != "freshtoken: demo needs consent" {
		t.Errorf("webhook posts %v; want exactly one needs-consent", posts)
	}
}

// TestNotifyUndeliveredRetried: a webhook that answers 500 and a heartbeat monitor that is down
// fail no pass and change no token; the notification is sent at the first pass after the
// webhook is back, once.
func TestNotifyUndeliveredRetried(t *testing.T) {
	hook := receiver.NewWebhook()
	t.Cleanup(hook.Close)
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL + "/ping/hb-down-71c2"
	dead.Close() // nothing listens there now
	w := newWorld(t, oauthserver.Options{}, "demo")
	w.withNotifications(deadURL, hook.URL("/retry"))
	w.extra = append(w.extra, "hb-down-71c2")
	h := w.start(true)

	if status, page := w.consent(h, w.recordingBrowser(), "demo"); status != http.StatusOK {
		t.Fatalf("consent = %d %q", status, page)
	}
	if res := invoke(t, h); res.Failed {
		t.Errorf("a good pass failed with the heartbeat monitor down: %s %s", res.Reason, res.Body)
	}
	if !logged(h, "heartbeat: the monitor could not be told") {
		t.Errorf("no log line says the heartbeat was not delivered")
	}

	hook.SetStatus(http.StatusInternalServerError)
	if err := w.oauth.RevokeAll(); err != nil {
		t.Fatal(err)
	}
	w.expireAccessToken("demo")
	rt := str(w.row("demo", "RefreshToken"), "Value")
	for range 3 {
		invoke(t, h)
	}
	if tried := hook.Pending(); len(tried) == 0 {
		t.Fatalf("no delivery was tried")
	}
	if !logged(h, "notification not delivered") {
		t.Errorf("no log line says the notification was not delivered")
	}
	st := w.row("demo", "Status")
	if str(st, "State") != "needs_consent" || str(st, "NotifiedEvent") != "" || str(w.row("demo", "RefreshToken"), "Value") != rt {
		t.Errorf("after undelivered notifications: Status %v; want needs_consent, nothing recorded as notified, the refresh token kept", st)
	}

	hook.SetStatus(0)
	invoke(t, h)
	invoke(t, h)
	if posts := hook.Pending(); len(posts) != 1 || posts[0].Body["title"] != "freshtoken: demo needs consent" {
		t.Errorf("after the webhook is back: %v; want exactly one needs-consent", posts)
	}
}

// logged says whether a log line of h holds s, waiting a while for the line: the host reads
// the handler's output on its own.
func logged(h *funchost.Host, s string) bool {
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, e := range h.Logs() {
			if strings.Contains(e.Message, s) {
				return true
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// setStatusTimes moves times in a connection's Status row, as time passing would.
func (w *world) setStatusTimes(conn string, times map[string]time.Time) {
	w.t.Helper()
	props := map[string]any{}
	for k, v := range times {
		props[k] = aztables.EDMDateTime(v.UTC())
	}
	raw, err := aztables.EDMEntity{Entity: aztables.Entity{PartitionKey: conn, RowKey: "Status"}, Properties: props}.MarshalJSON()
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := w.tableClient().UpdateEntity(ctx, raw, &aztables.UpdateEntityOptions{UpdateMode: aztables.UpdateModeMerge}); err != nil {
		w.t.Fatalf("set %s Status times: %v", conn, err)
	}
}

// TestNotifyFailingThenRecovered: a token endpoint answering 503 for longer than NOTIFY_AFTER
// brings one "is failing" message across passes and two processes; when it answers again, one
// "recovered".
func TestNotifyFailingThenRecovered(t *testing.T) {
	hook := receiver.NewWebhook()
	t.Cleanup(hook.Close)
	w := newWorld(t, oauthserver.Options{}, "demo")
	w.withNotifications("", hook.URL("/failing"))
	w.env["NOTIFY_AFTER"] = "1h"
	var down atomic.Bool
	proxy, err := faultproxy.Start(faultproxy.Options{
		Target: strings.TrimPrefix(w.oauth.URL(), "http://"),
		Decide: func(*faultproxy.Request) faultproxy.Action {
			if down.Load() {
				return faultproxy.Action{Fault: faultproxy.Unavailable}
			}
			return faultproxy.Action{}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proxy.Close() })
	w.env["OAUTH_DEMO_TOKEN_URL"] = proxy.URL() + oauthserver.TokenPath
	h1, h2 := w.start(true), w.start(false)
	hosts := []*funchost.Host{h1, h2}
	if status, page := w.consent(h1, w.recordingBrowser(), "demo"); status != http.StatusOK {
		t.Fatalf("consent = %d %q", status, page)
	}

	down.Store(true)
	w.expireAccessToken("demo")
	passes(t, hosts, 4)
	st := w.row("demo", "Status")
	if str(st, "State") != "retrying" || str(st, "FailingSince") == "" {
		t.Fatalf("Status = %v; want retrying with FailingSince", st)
	}
	if posts := hook.Pending(); len(posts) != 0 {
		t.Errorf("notifications within NOTIFY_AFTER of the first failure: %v; want none", posts)
	}

	// Two hours later (the streak's start moved back), still failing.
	w.setStatusTimes("demo", map[string]time.Time{"FailingSince": time.Now().Add(-2 * time.Hour)})
	passes(t, hosts, 6)
	posts := hook.Pending()
	if len(posts) != 1 || posts[0].Body["title"] != "freshtoken: demo is failing" || !strings.Contains(posts[0].Body["message"], w.base+"/api/authorize/demo") {
		t.Fatalf("after failing for 2h: %v; want exactly one \"freshtoken: demo is failing\" with the Authorize URL", posts)
	}
	checkClean(t, "the failing notification", posts[0].Body["message"], w.secrets(h1.FunctionKey(), h2.FunctionKey()))

	// The endpoint is back and the next attempt is due: one "recovered".
	down.Store(false)
	w.setStatusTimes("demo", map[string]time.Time{"NextAttempt": time.Now().Add(-time.Second)})
	if f := passes(t, hosts, 6); f != 0 {
		t.Errorf("%d passes failed after the endpoint came back; want none", f)
	}
	if got := str(w.row("demo", "Status"), "State"); got != "ok" {
		t.Fatalf("State = %q after the endpoint came back; want ok", got)
	}
	if posts := hook.Pending(); len(posts) != 1 || posts[0].Body["title"] != "freshtoken: demo recovered" {
		t.Errorf("after recovering: %v; want exactly one recovered", posts)
	}
}

// TestNotifyLostInFlight: a refresh whose answer is lost in flight (the provider rotated the
// pair; the handler never heard) needs consent, and the one notification says why.
func TestNotifyLostInFlight(t *testing.T) {
	hook := receiver.NewWebhook()
	t.Cleanup(hook.Close)
	w := newWorld(t, oauthserver.Options{}, "demo")
	w.withNotifications("", hook.URL("/lost"))
	h := w.start(true)
	if status, page := w.consent(h, w.recordingBrowser(), "demo"); status != http.StatusOK {
		t.Fatalf("consent = %d %q", status, page)
	}
	w.oauth.InjectTokenFaults(oauthserver.FaultDropResponse)
	w.expireAccessToken("demo")
	for range 3 {
		invoke(t, h)
	}
	st := w.row("demo", "Status")
	if str(st, "State") != "needs_consent" {
		t.Fatalf("Status after a lost refresh = %v; want needs_consent", st)
	}
	posts := hook.Pending()
	if len(posts) != 1 || posts[0].Body["title"] != "freshtoken: demo needs consent" || !strings.Contains(posts[0].Body["message"], "lost in flight") {
		t.Errorf("notifications: %v; want exactly one needs-consent saying the refresh was lost in flight", posts)
	}
}
