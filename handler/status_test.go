package main

import (
	"strings"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/statuspage"
	"github.com/freshtoken/freshtoken/internal/store"
)

func TestWriteStatusTable(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	recs := map[string]*store.Record{
		"strava": {HasAccess: true, HasRefresh: true,
			Tokens: store.Tokens{AccessToken: "at-strava-secret", RefreshToken: "rt-strava-secret", ExpiresAt: now.Add(42 * time.Minute)},
			Status: store.Status{State: store.StateOK, LastSuccess: now.Add(-3 * time.Hour)}},
		"oura": {HasAccess: true, HasRefresh: true,
			Tokens: store.Tokens{AccessToken: "at-oura", RefreshToken: "rt-oura-secret", ExpiresAt: now.Add(-time.Hour)},
			Status: store.Status{State: store.StateNeedsConsent, LastSuccess: now.Add(-50 * time.Hour), LastFailure: now.Add(-10 * time.Minute),
				LastFailureClass: "revoked", LastFailureMessage: "invalid_grant: token rt-oura-secret\nrevoked",
				Warning: "the refresh token expires soon"}},
	}
	conns := []statuspage.Connection{
		{Name: "strava", Provider: "strava", AuthorizeURL: "https://app/api/authorize/strava"},
		{Name: "oura", Provider: "oura", AuthorizeURL: "https://app/api/authorize/oura"},
		{Name: "dexcom", Provider: "dexcom", AuthorizeURL: "https://app/api/authorize/dexcom"},
	}
	var b strings.Builder
	if err := writeStatusTable(&b, statuspage.Assemble(conns, recs, now)); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != 6 {
		t.Fatalf("got %d lines; want a header, 3 connections and 2 hints:\n%s", len(lines), got)
	}
	wants := []struct {
		line  int
		parts []string
	}{
		{0, []string{"CONNECTION", "PROVIDER", "STATE", "ACCESS TOKEN EXPIRES", "LAST SUCCESS", "LAST FAILURE", "WARNING"}},
		{1, []string{"strava", "ok", "in 42 min", "3 hours ago"}},
		{2, []string{"oura", "needs_consent", "1 hour ago", "2 days ago", "10 min ago (revoked): invalid_grant: token", "revoked", "the refresh token expires soon"}},
		{3, []string{"dexcom", "not_connected", "-", "never"}},
		{4, []string{"oura needs consent: open https://app/api/authorize/oura"}},
		{5, []string{"dexcom is not connected: open https://app/api/authorize/dexcom, or use freshtoken import dexcom"}},
	}
	for _, w := range wants {
		for _, p := range w.parts {
			if !strings.Contains(lines[w.line], p) {
				t.Errorf("line %d = %q; want it to contain %q", w.line, lines[w.line], p)
			}
		}
	}
	for _, secret := range []string{"rt-oura-secret", "at-strava-secret", "rt-strava-secret"} {
		if strings.Contains(got, secret) {
			t.Errorf("the table shows a token:\n%s", got)
		}
	}
}
