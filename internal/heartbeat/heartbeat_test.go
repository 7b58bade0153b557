package heartbeat

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

const secret = "0f2c9a4e-7d1b-4c3a-9e8f-5b6a7c8d9e0f"

func TestPing(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.Method+" "+r.URL.RequestURI())
		mu.Unlock()
	}))
	defer srv.Close()
	tests := []struct {
		name   string
		url    string
		passed bool
		want   string
	}{
		{"success", srv.URL + "/ping/" + secret, true, "GET /ping/" + secret},
		{"failure", srv.URL + "/ping/" + secret, false, "GET /ping/" + secret + "/fail"},
		{"failure, trailing slash", srv.URL + "/ping/" + secret + "/", false, "GET /ping/" + secret + "/fail"},
		{"failure keeps the query", srv.URL + "/ping/" + secret + "?rid=1", false, "GET /ping/" + secret + "/fail?rid=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			paths = nil
			mu.Unlock()
			p, err := New(Options{URL: tt.url})
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Ping(context.Background(), tt.passed); err != nil {
				t.Fatalf("Ping: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(paths) != 1 || paths[0] != tt.want {
				t.Errorf("got requests %q; want [%q]", paths, tt.want)
			}
		})
	}
}

func TestPingFailuresAreLoggedWithoutTheURL(t *testing.T) {
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	defer slow.Close()
	defer close(hang)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	downURL := down.URL
	down.Close()
	status := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) }))
	defer status.Close()

	tests := []struct {
		name string
		url  string
		want string
	}{
		{"timeout", slow.URL + "/" + secret, "timed out"},
		{"connection refused", downURL + "/" + secret, "connection refused"},
		{"HTTP 404", status.URL + "/" + secret, "HTTP 404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			p, err := New(Options{URL: tt.url, Timeout: 100 * time.Millisecond, Log: zerolog.New(&logs)})
			if err != nil {
				t.Fatal(err)
			}
			err = p.Ping(context.Background(), true)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v; want an error with %q", err, tt.want)
			}
			if !strings.Contains(logs.String(), "heartbeat") {
				t.Errorf("got log %q; want the failure logged", logs.String())
			}
			for _, out := range []string{logs.String(), errString(err)} {
				if strings.Contains(out, secret) {
					t.Errorf("%q holds the heartbeat URL", out)
				}
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestOff(t *testing.T) {
	var p *Pinger
	if err := p.Ping(context.Background(), false); err != nil {
		t.Errorf("nil Pinger: got %v; want nil", err)
	}
	p, err := New(Options{})
	if err != nil || p.Ping(context.Background(), true) != nil {
		t.Errorf("no URL: got %v; want a Pinger that does nothing", err)
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		raw, want string
	}{
		{"", ""},
		{"https://hc-ping.com/" + secret, ""},
		{"ftp://example.com/" + secret, "want an https:// URL"},
		{"https:///" + secret, "no host"},
		{"https://example.com/" + secret + "#x", "fragment"},
		{"https://exa mple.com/" + secret, "not a valid URL"},
	}
	for _, tt := range tests {
		err := Check("HEARTBEAT_URL", tt.raw)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("Check(%q) = %v; want nil", tt.raw, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "HEARTBEAT_URL")):
			t.Errorf("Check(%q) = %v; want HEARTBEAT_URL: ...%s", tt.raw, err, tt.want)
		case err != nil && strings.Contains(err.Error(), secret):
			t.Errorf("Check error %q quotes the URL", err)
		}
	}
}
