package faultproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// upstream is a test server that counts the requests it processed.
type upstream struct {
	srv  *httptest.Server
	hits atomic.Int32
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Upstream", "yes")
		w.Write([]byte(`{"access_token":"at-` + string(b) + `","refresh_token":"rt-next"}`))
	}))
	t.Cleanup(u.srv.Close)
	return u
}

// recorder collects exchanges.
type recorder struct {
	mu sync.Mutex
	ex []Exchange
}

func (r *recorder) record(e Exchange) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ex = append(r.ex, e)
}

// wait returns the exchanges once n were recorded (the proxy records an exchange after the
// client got its answer or error), or what it has after a few seconds.
func (r *recorder) wait(n int) []Exchange {
	deadline := time.Now().Add(5 * time.Second)
	for len(r.all()) < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	return r.all()
}

func (r *recorder) all() []Exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Exchange(nil), r.ex...)
}

func startProxy(t *testing.T, u *upstream, decide func(*Request) Action, rec *recorder) *Proxy {
	t.Helper()
	p, err := Start(Options{
		Name:     "test",
		Target:   strings.TrimPrefix(u.srv.URL, "http://"),
		Classify: OAuthKind,
		Decide:   decide,
		Record:   rec.record,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func post(c *http.Client, u, body string) (*http.Response, string, error) {
	resp, err := c.Post(u, "application/x-www-form-urlencoded", strings.NewReader(body))
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

func TestFaults(t *testing.T) {
	tests := []struct {
		fault         Fault
		status        int
		wantHits      int32
		wantStatus    int    // 0: the client gets an error
		wantBody      string // a substring
		wantForwarded bool
		wantDelivered bool
	}{
		{Pass, 0, 1, 200, `"at-grant_type=refresh_token"`, true, true},
		{Unavailable, 0, 0, 503, "Service Unavailable", false, false},
		{Unavailable, 502, 0, 502, "Bad Gateway", false, false},
		{RateLimited, 0, 0, 429, "rate_limited", false, false},
		{ResetBefore, 0, 0, 0, "", false, false},
		{SlowDrop, 0, 0, 0, "", false, false},
		{HTMLUnforwarded, 0, 0, 200, "<html>", false, false},
		{ResetAfter, 0, 1, 0, "", true, false},
		{SlowAnswer, 0, 1, 0, "", true, false},
		{Malformed200, 0, 1, 200, `{"access_token":"`, true, false},
		{HTML200, 0, 1, 200, "<html>", true, false},
		{HTML502, 0, 1, 502, "<html>", true, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.fault)+"/"+http.StatusText(tt.status), func(t *testing.T) {
			u := newUpstream(t)
			rec := &recorder{}
			p := startProxy(t, u, func(*Request) Action {
				return Action{Fault: tt.fault, Status: tt.status, Delay: 600 * time.Millisecond}
			}, rec)
			client := &http.Client{Timeout: 300 * time.Millisecond, Transport: &http.Transport{}}
			resp, body, err := post(client, p.URL()+"/token", "grant_type=refresh_token")
			switch {
			case tt.wantStatus == 0 && err == nil:
				t.Errorf("got %d %q; want a client error", resp.StatusCode, body)
			case tt.wantStatus != 0 && err != nil:
				t.Errorf("got error %v; want %d", err, tt.wantStatus)
			case tt.wantStatus != 0 && (resp.StatusCode != tt.wantStatus || !strings.Contains(body, tt.wantBody)):
				t.Errorf("got %d %q; want %d with %q", resp.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
			if tt.fault == RateLimited && resp != nil && resp.Header.Get("Retry-After") != "1" {
				t.Errorf("Retry-After = %q; want 1", resp.Header.Get("Retry-After"))
			}
			ex := rec.wait(1)
			if got := u.hits.Load(); got != tt.wantHits {
				t.Errorf("upstream processed %d requests; want %d", got, tt.wantHits)
			}
			if len(ex) != 1 {
				t.Fatalf("recorded %d exchanges; want 1", len(ex))
			}
			e := ex[0]
			if e.Fault != tt.fault || e.Kind != KindRefresh || e.Forwarded != tt.wantForwarded || e.Delivered != tt.wantDelivered {
				t.Errorf("exchange fault=%s kind=%s forwarded=%v delivered=%v; want %s %s %v %v",
					e.Fault, e.Kind, e.Forwarded, e.Delivered, tt.fault, KindRefresh, tt.wantForwarded, tt.wantDelivered)
			}
			if tt.wantForwarded && (e.Upstream == nil || !strings.Contains(string(e.Upstream.Body), "rt-next")) {
				t.Errorf("exchange does not hold the upstream's answer")
			}
			if e.Fault.Forwards() != tt.wantForwarded {
				t.Errorf("%s.Forwards() = %v; want %v", tt.fault, e.Fault.Forwards(), tt.wantForwarded)
			}
		})
	}
}

// TestHooks: Before runs before forwarding, After once the upstream answered and before the
// client gets the answer; After does not run for a fault that never forwards.
func TestHooks(t *testing.T) {
	for _, tt := range []struct {
		fault     Fault
		wantOrder string
	}{
		{Pass, "before,upstream,after,client"},
		{ResetAfter, "before,upstream,after"},
		{ResetBefore, "before"},
	} {
		t.Run(string(tt.fault), func(t *testing.T) {
			var mu sync.Mutex
			var order []string
			note := func(s string) {
				mu.Lock()
				order = append(order, s)
				mu.Unlock()
			}
			u := &upstream{}
			u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				note("upstream")
				w.Write([]byte("{}"))
			}))
			defer u.srv.Close()
			p := startProxy(t, u, func(*Request) Action {
				return Action{Fault: tt.fault, Before: func() { note("before") }, After: func() { note("after") }}
			}, &recorder{})
			if _, _, err := post(http.DefaultClient, p.URL()+"/", "x=1"); err == nil {
				note("client")
			}
			mu.Lock()
			defer mu.Unlock()
			if got := strings.Join(order, ","); got != tt.wantOrder {
				t.Errorf("order %s; want %s", got, tt.wantOrder)
			}
		})
	}
}

// TestKeepAliveAndSequence: passed requests share a connection and get increasing Seq.
func TestKeepAliveAndSequence(t *testing.T) {
	u := newUpstream(t)
	rec := &recorder{}
	p := startProxy(t, u, nil, rec)
	var conns atomic.Int32
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conns.Add(1)
			return net.Dial(network, addr)
		},
	}}
	for i := 0; i < 3; i++ {
		if resp, _, err := post(client, p.URL()+"/", "grant_type=authorization_code"); err != nil || resp.StatusCode != 200 {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if got := conns.Load(); got != 1 {
		t.Errorf("client opened %d connections; want 1", got)
	}
	for i, e := range rec.wait(3) {
		if e.Seq != i+1 || e.Kind != KindExchange || !e.Delivered {
			t.Errorf("exchange %d: seq=%d kind=%s delivered=%v; want seq %d, exchange, delivered", i, e.Seq, e.Kind, e.Delivered, i+1)
		}
	}
}

// TestPauseResume: while paused, connections are refused (the client never sends); Resume
// serves again on the same address.
func TestPauseResume(t *testing.T) {
	u := newUpstream(t)
	p := startProxy(t, u, nil, &recorder{})
	addr := p.Addr()
	if err := p.Pause(); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	_, _, err := post(client, p.URL()+"/", "x=1")
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("paused: got %v; want connection refused", err)
	}
	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
	if p.Addr() != addr {
		t.Errorf("address after Resume %s; want %s", p.Addr(), addr)
	}
	if resp, _, err := post(client, p.URL()+"/", "x=1"); err != nil || resp.StatusCode != 200 {
		t.Errorf("after Resume: %v", err)
	}
	if got := u.hits.Load(); got != 1 {
		t.Errorf("upstream processed %d requests; want 1", got)
	}
}

// TestUpstreamDown: a request the upstream cannot take resets the client and is recorded as
// forwarded with an upstream error and no answer.
func TestUpstreamDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := l.Addr().String()
	l.Close()
	rec := &recorder{}
	p, err := Start(Options{Target: target, Record: rec.record})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, _, err := post(http.DefaultClient, p.URL()+"/", "x=1"); err == nil {
		t.Errorf("got an answer from a proxy whose upstream is down; want an error")
	}
	if ex := rec.wait(1); len(ex) != 1 || ex[0].UpstreamErr == "" || ex[0].Upstream != nil || ex[0].Delivered {
		t.Errorf("exchanges %+v; want one with an upstream error", ex)
	}
}

func TestLoopbackOnly(t *testing.T) {
	if _, err := Start(Options{Target: "127.0.0.1:1", Addr: "0.0.0.0:0"}); err == nil {
		t.Errorf("Start on 0.0.0.0: got nil error; want one")
	}
}

func TestAzureKind(t *testing.T) {
	tests := []struct {
		method, path, body string
		want               string
	}{
		{"GET", "/devstoreaccount1/T1()?%24filter=RowKey+eq+%27Status%27", "", KindQuery},
		{"PUT", "/devstoreaccount1/T1(PartitionKey='demo',RowKey='Status')", "{}", KindStatusWrite},
		{"PUT", "/devstoreaccount1/T1(PartitionKey=%27demo%27,RowKey=%27Status%27)", "{}", KindStatusWrite},
		{"MERGE", "/devstoreaccount1/T1(PartitionKey='demo',RowKey='Status')", "{}", KindStatusWrite},
		{"PATCH", "/devstoreaccount1/T1(PartitionKey='demo',RowKey='Status')", "{}", KindStatusWrite},
		{"PUT", "/devstoreaccount1/T1(PartitionKey='demo',RowKey='AccessToken')", "{}", KindOther},
		{"POST", "/devstoreaccount1/T1", `{"PartitionKey":"demo","RowKey":"Status"}`, KindStatusWrite},
		{"POST", "/devstoreaccount1/T1", `{"PartitionKey":"demo","RowKey":"AuthState-1"}`, KindOther},
		{"POST", "/devstoreaccount1/$batch", "--batch", KindCommit},
		{"POST", "/devstoreaccount1/Tables", `{"TableName":"T1"}`, KindOther},
		{"DELETE", "/devstoreaccount1/T1(PartitionKey='demo',RowKey='AuthState-1')", "", KindOther},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.path)
		if err != nil {
			t.Fatal(err)
		}
		r := &Request{Method: tt.method, URL: u, Body: []byte(tt.body)}
		if got := AzureKind(r); got != tt.want {
			t.Errorf("AzureKind(%s %s) = %s; want %s", tt.method, tt.path, got, tt.want)
		}
	}
}

func TestOAuthSecrets(t *testing.T) {
	e := Exchange{
		Request: Request{
			Method: "POST", URL: &url.URL{Path: "/oauth2/token"},
			Header: http.Header{"Authorization": {"Basic " + "Y2xpZW50JTNBaWQ6cyUyNmNyZXQ="}}, // client%3Aid:s%26cret
			Body:   []byte("grant_type=authorization_code&code=the-code&code_verifier=the-verifier"),
		},
		Upstream: &Response{Status: 200, Body: []byte(`{"access_token":"the-at","refresh_token":"the-rt"}`)},
	}
	got := strings.Join(OAuthSecrets(e), ",")
	if want := "s&cret,the-code,the-verifier,the-at,the-rt"; got != want {
		t.Errorf("secrets %s; want %s", got, want)
	}
	e.Request.Header = http.Header{}
	e.Request.Body = []byte("grant_type=refresh_token&refresh_token=old-rt&client_secret=form-secret")
	e.Upstream = nil
	if got, want := strings.Join(OAuthSecrets(e), ","), "form-secret,old-rt"; got != want {
		t.Errorf("secrets %s; want %s", got, want)
	}
}
