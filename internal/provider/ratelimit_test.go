package provider

import (
	"testing"
	"time"
)

func TestRateLimits(t *testing.T) {
	for _, tc := range []struct {
		preset string
		app    []RateLimit
	}{
		{"strava", []RateLimit{{Requests: 200, Per: 15 * time.Minute}, {Requests: 2000, Per: 24 * time.Hour}}},
		{"whoop", []RateLimit{{Requests: 100, Per: time.Minute}, {Requests: 10000, Per: 24 * time.Hour}}},
		{"fitbit", nil}, // per user only
		{"google", nil},
	} {
		p, ok := Lookup(tc.preset)
		if !ok {
			t.Fatalf("no preset %s", tc.preset)
		}
		got := p.AppRateLimits()
		if len(got) != len(tc.app) {
			t.Fatalf("%s: AppRateLimits = %+v; want %+v", tc.preset, got, tc.app)
		}
		for i := range got {
			if got[i].Requests != tc.app[i].Requests || got[i].Per != tc.app[i].Per || got[i].Source == "" {
				t.Errorf("%s: limit %d = %+v; want %+v with a source", tc.preset, i, got[i], tc.app[i])
			}
		}
	}
	fb, _ := Lookup("fitbit")
	if l := fb.RateLimits(); len(l) != 1 || !l[0].PerUser || l[0].Requests != 150 {
		t.Errorf("fitbit RateLimits = %+v; want 150 an hour per user", l)
	}
	for name := range rateLimits {
		if _, ok := presets[name]; !ok {
			t.Errorf("rate limits for %q, which is no preset", name)
		}
	}
}
