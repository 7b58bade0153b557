package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestRunServesAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, []string{"-addr", "127.0.0.1:0", "-client-id", "demo", "-client-secret", "do-not-print"}, pw, io.Discard)
		pw.Close()
		done <- err
	}()

	sc := bufio.NewScanner(pr)
	var out strings.Builder
	var authURL string
	for sc.Scan() {
		line := sc.Text()
		out.WriteString(line + "\n")
		if u, ok := strings.CutPrefix(strings.TrimSpace(line), "authorize URL: "); ok {
			authURL = u
			break
		}
	}
	if authURL == "" {
		t.Fatalf("no authorize URL in output:\n%s", out.String())
	}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
		}
	}()

	q := url.Values{
		"client_id": {"demo"}, "response_type": {"code"}, "scope": {"activity"},
		"redirect_uri": {"http://localhost:7071/api/callback/demo"}, "state": {"state-0123456789"},
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(authURL + "?" + q.Encode())
	if err != nil {
		t.Fatalf("GET consent page: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Allow") {
		t.Errorf("consent page = %d; want 200 with an Allow button", resp.StatusCode)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run = %v; want nil after cancel", err)
	}
	<-drained
	if !strings.Contains(out.String(), "devoauth stopped") {
		t.Errorf("output lacks the stop line:\n%s", out.String())
	}
	if strings.Contains(out.String(), "do-not-print") {
		t.Error("output contains the client secret")
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	tests := [][]string{
		{"-consent", "maybe"},
		{"-auth-method", "private_key_jwt"},
		{"-redirect", "http://example.com/cb"},
		{"stray"},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			args = append([]string{"-addr", "127.0.0.1:0"}, args...)
			if err := run(t.Context(), args, io.Discard, io.Discard); err == nil {
				t.Error("run succeeded; want an error")
			}
		})
	}
}
