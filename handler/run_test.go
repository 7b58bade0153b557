package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/azuritetest"
)

// provider is a minimal OAuth2 token endpoint for the in-process test: it issues 60-second
// access tokens with a rotating refresh token. Its /slow/token endpoint never answers until the
// test ends, to show that TOKEN_REQUEST_TIMEOUT bounds the Callback's code exchange too.
type provider struct {
	url     string
	release chan struct{}

	mu       sync.Mutex
	n        int
	refresh  map[string]bool // live refresh tokens
	slowHits int
}

func startProvider(t *testing.T) *provider {
	t.Helper()
	p := &provider{release: make(chan struct{}), refresh: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", p.token)
	mux.HandleFunc("POST /slow/token", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.slowHits++
		p.mu.Unlock()
		select {
		case <-p.release:
		case <-r.Context().Done():
		}
		http.Error(w, "too late", http.StatusServiceUnavailable)
	})
	ts := newLoopbackServer(t, mux)
	p.url = ts
	t.Cleanup(func() { close(p.release) })
	return p
}

func (p *provider) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		if r.PostForm.Get("code") == "" {
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
			return
		}
	case "refresh_token":
		rt := r.PostForm.Get("refresh_token")
		if !p.refresh[rt] {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"invalid_grant"}`)
			return
		}
		delete(p.refresh, rt)
	default:
		http.Error(w, `{"error":"unsupported_grant_type"}`, http.StatusBadRequest)
		return
	}
	p.n++
	rt := fmt.Sprintf("rt-inprocess-%d-0123456789", p.n)
	p.refresh[rt] = true
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"access_token": fmt.Sprintf("at-inprocess-%d-0123456789", p.n), "token_type": "Bearer",
		"expires_in": 60, "refresh_token": rt, "scope": "read",
	})
}

// running is the handler started by run, in this process.
type running struct {
	base   string
	client *http.Client
	cancel context.CancelFunc
	done   chan error
	logs   *lineBuffer
}

// mustRun starts run on port 0 with env and waits until it listens, in the manner of a main
// started by a test. The handler stops at the end of the test.
func mustRun(t *testing.T, env map[string]string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	logs := &lineBuffer{}
	done := make(chan error, 1)
	go func() {
		err := run(ctx, nil, func(k string) string { return env[k] }, nil, pw, pw)
		pw.CloseWithError(io.EOF)
		done <- err
	}()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			logs.add(line)
			var l struct{ Message, Addr string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Message == "freshtoken listening" {
				addr <- l.Addr
			}
		}
	}()
	r := &running{
		cancel: cancel, done: done, logs: logs,
		client: &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
	select {
	case a := <-addr:
		r.base = "http://" + a
	case err := <-done:
		t.Fatalf("run returned before listening: %v\nlogs:\n%s", err, logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("run did not listen within 30s; logs:\n%s", logs)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run returned %v after shutdown; want nil", err)
		}
	})
	return r
}

func (r *running) get(t *testing.T, path string, cookies ...*http.Cookie) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, r.base+path, nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// signIn runs Authorize, then plays the provider's redirect back to the Callback with code.
func (r *running) signIn(t *testing.T, name, code string) (*http.Response, string) {
	t.Helper()
	resp := r.get(t, "/api/authorize/"+name)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize %s: status %d; want 302", name, resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	var state *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "freshtoken_state_"+name {
			state = c
		}
	}
	if state == nil {
		t.Fatalf("authorize %s set no state cookie", name)
	}
	cb := r.get(t, "/api/callback/"+name+"?"+url.Values{"code": {code}, "state": {loc.Query().Get("state")}}.Encode(), state)
	body, _ := io.ReadAll(cb.Body)
	return cb, string(body)
}

const timerBody = `{"Data":{"timer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":null,"IsPastDue":false}},"Metadata":{}}`

func TestRunInProcess(t *testing.T) {
	az := azuritetest.Start(t)
	p := startProvider(t)
	env := map[string]string{
		"AzureWebJobsStorage": az.ConnectionString(),
		"TOKEN_TABLE":         "InProcess",
		"OAUTH_CONNECTIONS":   "demo,slow",
		"PORT":                "0",
		"REFRESH_SCHEDULE":    "0 0 0 1 1 *", // once a year: the test drives the passes
		// A short token request timeout: the slow provider must be given up on after it.
		"TOKEN_REQUEST_TIMEOUT": "1s",
		"REFRESH_LEASE":         "3s",
		"LOG_FORMAT":            "json",
	}
	for _, n := range []string{"demo", "slow"} {
		up := strings.ToUpper(n)
		tokenURL := p.url + "/token"
		if n == "slow" {
			tokenURL = p.url + "/slow/token"
		}
		env["OAUTH_"+up+"_PROVIDER"] = "custom"
		env["OAUTH_"+up+"_CLIENT_ID"] = "client-" + n
		env["OAUTH_"+up+"_CLIENT_SECRET"] = "cs-inprocess-secret-0123456789"
		env["OAUTH_"+up+"_SCOPES"] = "read"
		env["OAUTH_"+up+"_AUTH_URL"] = p.url + "/authorize"
		env["OAUTH_"+up+"_TOKEN_URL"] = tokenURL
		env["OAUTH_"+up+"_AUTH_STYLE"] = "params"
		env["OAUTH_"+up+"_REDIRECT_URL"] = "http://127.0.0.1:7071/api/callback/" + n
	}
	r := mustRun(t, env)

	if resp := r.get(t, "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /: status %d; want 200", resp.StatusCode)
	}

	t.Run("consent then refresh", func(t *testing.T) {
		resp, body := r.signIn(t, "demo", "code-demo-0123456789")
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "demo is connected") {
			t.Fatalf("callback: status %d; want 200 and \"demo is connected\"; page:\n%s", resp.StatusCode, body)
		}
		req, _ := http.NewRequest(http.MethodPost, r.base+"/RefreshTimer", strings.NewReader(timerBody))
		req.Header.Set("Content-Type", "application/json")
		tr, err := r.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Body.Close()
		var out struct{ Logs []string }
		if err := json.NewDecoder(tr.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		// The 60-second token is due under the 30-minute margin; slow was never connected.
		joined := strings.Join(out.Logs, "\n")
		if !strings.Contains(joined, "demo: refreshed") || !strings.Contains(joined, "slow: not connected") {
			t.Errorf("RefreshTimer logs:\n%s\nwant demo refreshed and slow not connected", joined)
		}
		if tr.StatusCode != http.StatusOK {
			t.Errorf("RefreshTimer status %d; want 200", tr.StatusCode)
		}
	})

	t.Run("exchange bounded by TOKEN_REQUEST_TIMEOUT", func(t *testing.T) {
		// The slow endpoint answers only when the test ends; the callback must give up first.
		resp, body := r.signIn(t, "slow", "code-slow-0123456789")
		if resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("callback: status %d; want 502; page:\n%s", resp.StatusCode, body)
		}
		p.mu.Lock()
		hits := p.slowHits
		p.mu.Unlock()
		if hits != 1 {
			t.Errorf("slow token endpoint got %d requests; want 1", hits)
		}
	})

	for _, secret := range []string{"cs-inprocess-secret", "rt-inprocess-", "at-inprocess-", "code-demo-", "code-slow-"} {
		if strings.Contains(r.logs.String(), secret) {
			t.Errorf("the logs hold a secret (%s...)", secret)
		}
	}
}

// lineBuffer keeps log lines from the running handler.
type lineBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (b *lineBuffer) add(l string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lines = append(b.lines, l)
}

func (b *lineBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.lines, "\n")
}

// newLoopbackServer serves h on a free loopback port until the test ends and returns its URL.
func newLoopbackServer(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}
