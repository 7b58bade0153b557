// Package e2e holds the end-to-end tests: the built handler, started as the Azure Functions
// host starts it (funchost reads this repo's host.json and function.json files), Azurite as the
// table store, and a real OAuth2 server (oauthserver, on ory/fosite) rotating refresh tokens
// with reuse detection.
package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/freshtoken/freshtoken/e2e/funchost"
	"github.com/freshtoken/freshtoken/e2e/oauthserver"
)

// TestConsentThenRefresh is the product's spine: Authorize → consent → Callback stores the
// first pair; RefreshTimer rotates it; the stored refresh token is always the one the server
// accepts.
func TestConsentThenRefresh(t *testing.T) {
	w := newWorld(t, oauthserver.Options{}, "demo")
	h := w.start(true)
	b := browser()

	// Before consent: the pass says how to connect and does not fail.
	res := invoke(t, h)
	if res.Failed {
		t.Fatalf("pass before consent failed: %s %s", res.Reason, res.Body)
	}
	if got := strings.Join(res.Logs, "\n"); !strings.Contains(got, "demo: not connected") || !strings.Contains(got, "/api/authorize/demo") {
		t.Errorf("logs before consent = %q; want a not-connected line naming the Authorize URL", got)
	}

	status, page := w.consent(h, b, "demo")
	if status != http.StatusOK || !strings.Contains(page, "demo is connected") {
		t.Fatalf("callback = %d %q; want 200 and a connected page", status, page)
	}

	acc, ref, st := w.row("demo", "AccessToken"), w.row("demo", "RefreshToken"), w.row("demo", "Status")
	firstRT := str(ref, "Value")
	if !w.oauth.ActiveAccessToken(str(acc, "Value")) {
		t.Errorf("stored access token is not one the server accepts")
	}
	if !w.oauth.Accepts(firstRT) {
		t.Errorf("stored refresh token is not one the server accepts")
	}
	if got := str(acc, "ExpiresAt@odata.type"); got != "Edm.DateTime" {
		t.Errorf("AccessToken.ExpiresAt type = %q; want Edm.DateTime", got)
	}
	if str(st, "State") != "ok" || str(st, "GrantedScopes") != "activity sleep profile" {
		t.Errorf("Status = %v; want State ok and all scopes granted", st)
	}
	expires, err := time.Parse(time.RFC3339Nano, str(acc, "ExpiresAt"))
	if err != nil || !strings.Contains(page, expires.UTC().Format(time.RFC3339)) {
		t.Errorf("callback page does not show the access token's expiry %v (%v)", expires, err)
	}
	if strings.Contains(page, firstRT) || strings.Contains(page, str(acc, "Value")) {
		t.Errorf("callback page shows a token")
	}

	// The token lives an hour and the margin is 30m: not due, no provider call.
	res = invoke(t, h)
	if res.Failed || !containsLine(res.Logs, "demo: not due") {
		t.Fatalf("pass on a fresh token: failed=%v logs=%q; want not due", res.Failed, res.Logs)
	}
	if got := w.oauth.Stats().Refreshes; got != 0 {
		t.Fatalf("refreshes after a not-due pass = %d; want 0", got)
	}

	// Make it due as time would, then refresh.
	w.expireAccessToken("demo")
	res = invoke(t, h)
	if res.Failed || !containsLine(res.Logs, "demo: refreshed") {
		t.Fatalf("due pass: failed=%v reason=%q logs=%q; want refreshed", res.Failed, res.Reason, res.Logs)
	}
	ref2 := w.row("demo", "RefreshToken")
	if str(ref2, "Value") == firstRT {
		t.Errorf("refresh token was not rotated in the table")
	}
	if !w.oauth.Accepts(str(ref2, "Value")) || w.oauth.Accepts(firstRT) {
		t.Errorf("after the refresh the server accepts new=%v old=%v; want true, false",
			w.oauth.Accepts(str(ref2, "Value")), w.oauth.Accepts(firstRT))
	}
	if !w.oauth.ActiveAccessToken(str(w.row("demo", "AccessToken"), "Value")) {
		t.Errorf("stored access token after the refresh is not active")
	}
	if s := w.oauth.Stats(); s.Refreshes != 1 || s.ReuseDetections != 0 {
		t.Errorf("server stats = %+v; want 1 refresh and no reuse", s)
	}
	if st := w.row("demo", "Status"); str(st, "State") != "ok" || str(st, "LeaseOwner") != "" || str(st, "InFlight") != "" {
		t.Errorf("Status after refresh = %v; want ok with the lease released", st)
	}
}

// TestRevokedGrantNeedsConsent: a grant the provider revoked fails the pass with the Authorize
// URL, keeps the stored pair, and is not retried until someone consents again.
func TestRevokedGrantNeedsConsent(t *testing.T) {
	w := newWorld(t, oauthserver.Options{}, "demo")
	h := w.start(true)
	if status, page := w.consent(h, browser(), "demo"); status != http.StatusOK {
		t.Fatalf("consent = %d %q", status, page)
	}
	rt := str(w.row("demo", "RefreshToken"), "Value")
	if err := w.oauth.RevokeAll(); err != nil {
		t.Fatal(err)
	}
	w.expireAccessToken("demo")

	res := invoke(t, h)
	if !res.Failed || res.Status < 400 {
		t.Fatalf("pass with a revoked grant: status %d failed=%v; want a failed invocation", res.Status, res.Failed)
	}
	logs := strings.Join(responseLogs(t, res), "\n")
	if !strings.Contains(logs, "invalid_grant") || !strings.Contains(logs, "/api/authorize/demo") {
		t.Errorf("logs = %q; want invalid_grant and the Authorize URL", logs)
	}
	if got := str(w.row("demo", "RefreshToken"), "Value"); got != rt {
		t.Errorf("the stored refresh token changed after a revoked refresh")
	}
	if got := str(w.row("demo", "Status"), "State"); got != "needs_consent" {
		t.Errorf("State = %q; want needs_consent", got)
	}
	before := w.oauth.Stats()
	res = invoke(t, h)
	if !res.Failed {
		t.Errorf("second pass on a connection needing consent succeeded; want failed")
	}
	if after := w.oauth.Stats(); after.Refreshes+after.RefreshFailures != before.Refreshes+before.RefreshFailures {
		t.Errorf("a connection needing consent was retried at the provider: %+v → %+v", before, after)
	}

	// Consent again: back to ok, and the next pass refreshes.
	if status, page := w.consent(h, browser(), "demo"); status != http.StatusOK {
		t.Fatalf("second consent = %d %q", status, page)
	}
	w.expireAccessToken("demo")
	if res := invoke(t, h); res.Failed || !containsLine(res.Logs, "demo: refreshed") {
		t.Errorf("pass after a new consent: failed=%v logs=%q; want refreshed", res.Failed, res.Logs)
	}
}

// TestRaceTwoProcesses: two handler processes on one table and 20 concurrent invocations end
// with exactly one provider refresh per due connection and no reuse detected.
func TestRaceTwoProcesses(t *testing.T) {
	conns := []string{"race-a", "race-b", "race-c"}
	w := newWorld(t, oauthserver.Options{}, conns...)
	h1 := w.start(true)
	h2 := w.start(false)
	b := browser()
	for _, c := range conns {
		if status, page := w.consent(h1, b, c); status != http.StatusOK {
			t.Fatalf("consent %s = %d %q", c, status, page)
		}
		w.expireAccessToken(c)
	}

	const n = 20
	results := make([]*funchost.InvokeResult, n)
	var wg sync.WaitGroup
	startGate := make(chan struct{})
	for i := range n {
		h := h1
		if i%2 == 1 {
			h = h2
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-startGate
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			res, err := h.InvokeTimer(ctx, "RefreshTimer", funchost.TimerOptions{})
			if err != nil {
				t.Error(err)
				return
			}
			results[i] = res
		}()
	}
	close(startGate)
	wg.Wait()

	refreshed := map[string]int{}
	for i, res := range results {
		if res == nil {
			continue
		}
		if res.Failed {
			t.Errorf("invocation %d failed: %s %s", i, res.Reason, res.Body)
			continue
		}
		for _, c := range conns {
			if containsLine(res.Logs, c+": refreshed") {
				refreshed[c]++
			}
		}
	}
	s := w.oauth.Stats()
	if s.Refreshes != len(conns) || s.ReuseDetections != 0 {
		t.Errorf("server stats = %+v; want exactly %d refreshes and no reuse", s, len(conns))
	}
	for _, c := range conns {
		if refreshed[c] != 1 {
			t.Errorf("%s reported refreshed by %d invocations; want 1", c, refreshed[c])
		}
		if rt := str(w.row(c, "RefreshToken"), "Value"); !w.oauth.Accepts(rt) {
			t.Errorf("%s: the stored refresh token is not one the server accepts", c)
		}
	}
}

// TestHostProtocol covers what the host sends beyond the happy path: a first run with a
// null ScheduleStatus, a malformed body, unknown routes and methods, and the function key.
func TestHostProtocol(t *testing.T) {
	w := newWorld(t, oauthserver.Options{}, "demo")
	h := w.start(true)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := h.InvokeTimer(ctx, "RefreshTimer", funchost.TimerOptions{First: true, NullScheduleStatus: true, PastDue: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed || res.Header.Get("Content-Type") == "" || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		t.Errorf("first run: failed=%v reason=%q content-type=%q", res.Failed, res.Reason, res.Header.Get("Content-Type"))
	}

	post := func(path, body string) (int, string, string) {
		resp, err := http.Post(h.HandlerURL()+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	if status, ct, body := post("/RefreshTimer", `{"Data": {"timer": `); status != http.StatusBadRequest ||
		!strings.HasPrefix(ct, "application/json") || !strings.Contains(body, "not JSON") {
		t.Errorf("malformed invocation = %d %q %q; want 400 JSON naming the problem", status, ct, body)
	}
	if status, _, _ := post("/NoSuchFunction", `{}`); status != http.StatusNotFound {
		t.Errorf("unknown route = %d; want 404", status)
	}
	resp, err := http.Get(h.HandlerURL() + "/RefreshTimer")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /RefreshTimer = %d; want 405", resp.StatusCode)
	}

	// Authorize is function-level: no key, 401 from the host. Unknown connection: 404 naming it.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		path string
		want int
		text string
	}{
		{"/api/authorize/demo", http.StatusUnauthorized, ""},
		{"/api/authorize/nope?code=" + h.FunctionKey(), http.StatusNotFound, "nope"},
		{"/api/authorize/demo?code=" + h.FunctionKey(), http.StatusFound, ""},
		{"/api/callback/demo?code=abc&state=forged", http.StatusBadRequest, "Start again at /api/authorize/demo"},
	} {
		resp, err := noRedirect.Get(h.URL() + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want || !strings.Contains(string(body), tc.text) {
			t.Errorf("GET %s = %d; want %d with %q", strings.Split(tc.path, "?")[0], resp.StatusCode, tc.want, tc.text)
		}
	}
}

// TestStandalone runs the same binary without the host: it serves on PORT and refreshes on
// REFRESH_SCHEDULE by itself, and SIGTERM drains and exits 0.
func TestStandalone(t *testing.T) {
	w := newWorld(t, oauthserver.Options{}, "solo")
	addr := w.front.Addr().String()
	w.front.Close() // the handler listens there itself
	env := os.Environ()
	for k, v := range w.env {
		env = append(env, k+"="+v)
	}
	env = append(env, "FUNCTIONS_CUSTOMHANDLER_PORT=", "PORT="+addr[strings.LastIndex(addr, ":")+1:],
		"REFRESH_SCHEDULE=*/1 * * * * *", "REFRESH_MARGIN=30m", "LOG_FORMAT=json")
	var out bytes.Buffer
	cmd := exec.Command(handlerBin)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, &syncWriter{w: &out}, &syncWriter{w: &out}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
	}()
	base := "http://" + addr
	waitHTTP(t, base+"/")

	b := browser()
	resp, err := b.Get(base + "/api/authorize/solo")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "solo is connected") {
		t.Fatalf("standalone consent = %d %q", resp.StatusCode, page)
	}
	first := str(w.row("solo", "RefreshToken"), "Value")
	w.expireAccessToken("solo")
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && str(w.row("solo", "RefreshToken"), "Value") == first {
		time.Sleep(200 * time.Millisecond)
	}
	if got := str(w.row("solo", "RefreshToken"), "Value"); got == first || !w.oauth.Accepts(got) {
		t.Fatalf("the schedule did not refresh within 30s (rotated=%v)", got != first)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v; want 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit 30s after SIGTERM")
	}
	if strings.Contains(out.String(), testClientSecret) {
		t.Error("standalone output holds the client secret")
	}
}

// TestBadSettings: a handler that cannot start exits non-zero naming every bad setting.
func TestBadSettings(t *testing.T) {
	cmd := exec.Command(handlerBin)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"FUNCTIONS_CUSTOMHANDLER_PORT=7999",
		"OAUTH_CONNECTIONS=strava,Bad_Name",
		"OAUTH_STRAVA_PROVIDER=strava",
		"OAUTH_STRAVA_CLIENT_SECRET=" + testClientSecret,
		"REFRESH_MARGIN=soon",
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err == nil {
		t.Fatal("handler started with bad settings; want a non-zero exit")
	}
	msg := stderr.String()
	for _, want := range []string{"AzureWebJobsStorage", "OAUTH_STRAVA_CLIENT_ID", "Bad_Name", "REFRESH_MARGIN"} {
		if !strings.Contains(msg, want) {
			t.Errorf("stderr does not name %s:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, testClientSecret) {
		t.Error("stderr holds the client secret")
	}
}

// expireAccessToken moves the stored access token's expiry to now, as time would.
func (w *world) expireAccessToken(conn string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ent := aztables.EDMEntity{
		Entity:     aztables.Entity{PartitionKey: conn, RowKey: "AccessToken"},
		Properties: map[string]any{"ExpiresAt": aztables.EDMDateTime(time.Now().UTC())},
	}
	raw, err := ent.MarshalJSON()
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.tableClient().UpdateEntity(ctx, raw, &aztables.UpdateEntityOptions{UpdateMode: aztables.UpdateModeMerge}); err != nil {
		w.t.Fatalf("expire %s: %v", conn, err)
	}
}

func containsLine(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not answer within 30s", url)
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
