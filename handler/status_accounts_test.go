package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/statuspage"
	"github.com/freshtoken/freshtoken/internal/store"
	"github.com/freshtoken/freshtoken/internal/store/storetest"
)

func TestWriteStatusTableAccounts(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	mem := storetest.New()
	ctx := context.Background()
	for i := range 130 {
		st := store.StateOK
		if i%10 == 3 {
			st = store.StateNeedsConsent
		}
		name := fmt.Sprintf("study.p-%03d", i)
		if err := mem.SaveConsent(ctx, name, store.Tokens{AccessToken: "at-" + name, RefreshToken: "rt-" + name, ExpiresAt: now.Add(time.Hour)}, store.Status{State: st}); err != nil {
			t.Fatal(err)
		}
	}
	conns := []statuspage.Connection{
		{Name: "study", Provider: "withings", AuthorizeURL: "https://app/api/authorize/study", Many: true},
		{Name: "empty", Provider: "oura", AuthorizeURL: "https://app/api/authorize/empty", Many: true},
		{Name: "dexcom", Provider: "dexcom", AuthorizeURL: "https://app/api/authorize/dexcom"},
	}
	for _, tc := range []struct {
		state       statuspage.State
		accounts    int
		hintsNeeded int
	}{{"", 130, 13}, {statuspage.NeedsConsent, 13, 13}} {
		m, err := statuspage.BuildQuery(ctx, mem, conns, statuspage.Query{All: true, State: tc.state}, now)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		if err := writeStatusTable(&b, m); err != nil {
			t.Fatal(err)
		}
		got := b.String()
		lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
		if !strings.Contains(lines[1], "study") || !strings.Contains(lines[1], "needs_consent") || !strings.Contains(lines[1], "130 accounts: 117 ok, 0 retrying, 13 needs consent") {
			t.Errorf("state %q: connection line = %q; want study, its state and counts", tc.state, lines[1])
		}
		if n := strings.Count(got, "\n  study.p-"); n != tc.accounts {
			t.Errorf("state %q: %d account lines; want %d (every page)", tc.state, n, tc.accounts)
		}
		if n := strings.Count(got, "needs consent: open https://app/api/authorize/study/p-"); n != tc.hintsNeeded {
			t.Errorf("state %q: %d hints to reconnect an account; want %d", tc.state, n, tc.hintsNeeded)
		}
		for _, want := range []string{"empty has no account yet: freshtoken invite empty LABEL", "dexcom is not connected"} {
			if !strings.Contains(got, want) {
				t.Errorf("state %q: no %q in\n%s", tc.state, want, got)
			}
		}
		if strings.Contains(got, "at-study") || strings.Contains(got, "rt-study") {
			t.Errorf("the table shows a token")
		}
	}
}
