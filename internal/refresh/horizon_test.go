package refresh

import (
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/provider"
)

// TestHorizonBoundsDue: no token expiring after the horizon is due, whatever its lifetime, for
// every timing and preset; and the bound is tight for a fixed margin.
func TestHorizonBoundsDue(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	timings := []Timing{FixedTiming(30 * time.Minute), FractionTiming(0.5), DefaultTiming(), ResendTiming(),
		{Margin: 10 * time.Minute, Gap: 15 * time.Minute}}
	var presets []provider.Preset
	for _, n := range provider.Names() {
		if p, ok := provider.Lookup(n); ok {
			presets = append(presets, p)
		}
	}
	presets = append(presets, provider.Preset{Name: provider.Custom})
	lifetimes := []time.Duration{time.Minute, time.Hour, 6 * time.Hour, 24 * time.Hour, 30 * 24 * time.Hour, 365 * 24 * time.Hour}
	for _, tm := range timings {
		tm = tm.withDefaults()
		for _, p := range presets {
			h := tm.Horizon(p)
			if h == 0 {
				continue
			}
			for _, life := range lifetimes {
				exp := now.Add(h + time.Nanosecond)
				if tm.Due(now, TokenAge{Expiry: exp, Stored: exp.Add(-life)}, p) {
					t.Errorf("%s at %s: a token of lifetime %v expiring after the horizon %v is due", tm.Name, p.Name, life, h)
				}
			}
		}
	}
	fixed := FixedTiming(30 * time.Minute).withDefaults()
	if h := fixed.Horizon(provider.Preset{}); h != 30*time.Minute {
		t.Errorf("fixed 30m: horizon %v; want 30m", h)
	}
	if h := FractionTiming(0.5).withDefaults().Horizon(provider.Preset{Name: "x", RepeatWindow: time.Minute}); h != 0 {
		t.Errorf("fraction: horizon %v; want 0 (no bound)", h)
	}
}
