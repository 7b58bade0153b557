package refresh

import (
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/provider"
)

func TestTimingDue(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	strava := provider.Preset{Name: "strava", ReissueWithin: time.Hour}
	hourToken := func(left time.Duration) TokenAge {
		return TokenAge{Expiry: now.Add(left), Stored: now.Add(left - time.Hour)}
	}
	dayToken := func(left time.Duration) TokenAge {
		return TokenAge{Expiry: now.Add(left), Stored: now.Add(left - 24*time.Hour)}
	}
	sixHours := func(left time.Duration) TokenAge {
		return TokenAge{Expiry: now.Add(left), Stored: now.Add(left - 6*time.Hour)}
	}
	fiveMinutes, hourly := DefaultTiming(), DefaultTiming()
	fiveMinutes.Gap, hourly.Gap = 5*time.Minute, time.Hour
	tests := []struct {
		name   string
		timing Timing
		age    TokenAge
		p      provider.Preset
		want   bool
	}{
		{"fixed: 31m left is not due", FixedTiming(30 * time.Minute), hourToken(31 * time.Minute), provider.Preset{}, false},
		{"fixed: 30m left is due", FixedTiming(30 * time.Minute), hourToken(30 * time.Minute), provider.Preset{}, true},
		{"zero timing is fixed 30m", Timing{}.withDefaults(), hourToken(30 * time.Minute), provider.Preset{}, true},
		{"no expiry is never due", DefaultTiming(), TokenAge{Stored: now}, provider.Preset{}, false},
		{"fraction: 13h of 24h left is due", FractionTiming(0.55), dayToken(13 * time.Hour), provider.Preset{}, true},
		{"fraction: 14h of 24h left is not due", FractionTiming(0.55), dayToken(14 * time.Hour), provider.Preset{}, false},
		{"fraction without a stored time falls back to the margin", FractionTiming(0.5), TokenAge{Expiry: now.Add(10 * time.Minute)}, provider.Preset{}, false},
		{"adaptive: a 1h token with a repeat window is due at 33m", DefaultTiming(), hourToken(33 * time.Minute), provider.Preset{RepeatWindow: time.Hour}, true},
		{"adaptive: a strict 1h token is not due at 31m", DefaultTiming(), hourToken(31 * time.Minute), provider.Preset{}, false},
		{"adaptive: a strict 1h token is due at 30m", DefaultTiming(), hourToken(30 * time.Minute), provider.Preset{}, true},
		{"adaptive: a strict 24h token is due at 3h30m", DefaultTiming(), dayToken(3*time.Hour + 30*time.Minute), provider.Preset{}, true},
		{"adaptive: a strict 24h token is not due at 4h", DefaultTiming(), dayToken(4 * time.Hour), provider.Preset{}, false},
		{"adaptive+resend: a strict 24h token is due at 13h", ResendTiming(), dayToken(13 * time.Hour), provider.Preset{}, true},
		{"adaptive: Strava with 2h left is not due", DefaultTiming(), sixHours(2 * time.Hour), strava, false},
		{"adaptive, 5-minute gaps: a strict 1h token is due at 21m", fiveMinutes, hourToken(21 * time.Minute), provider.Preset{}, true},
		{"adaptive, 5-minute gaps: a strict 1h token is not due at 22m", fiveMinutes, hourToken(22 * time.Minute), provider.Preset{}, false},
		{"adaptive, hourly gaps: a strict 1h token is due at 59m", hourly, hourToken(59 * time.Minute), provider.Preset{}, true},
		{"adaptive: Strava with 59m left is due", DefaultTiming(), sixHours(59 * time.Minute), strava, true},
		{"fraction ignores Strava's last hour", FractionTiming(0.5), sixHours(2 * time.Hour), strava, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.timing.withDefaults().Due(now, tt.age, tt.p); got != tt.want {
				t.Errorf("Due = %v; want %v", got, tt.want)
			}
		})
	}
}

func TestTimingNextAttempt(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	soon := now.Add(10 * time.Minute)
	tests := []struct {
		name       string
		timing     Timing
		failures   int
		retryAfter time.Duration
		expiry     time.Time
		want       time.Time
	}{
		{"fixed: first failure waits 1m", FixedTiming(30 * time.Minute), 1, 0, soon, now.Add(time.Minute)},
		{"fixed: back-off doubles", FixedTiming(30 * time.Minute), 4, 0, soon, now.Add(8 * time.Minute)},
		{"fixed: back-off stops at 1h, past the expiry", FixedTiming(30 * time.Minute), 12, 0, soon, now.Add(time.Hour)},
		{"fixed: Retry-After wins over a shorter back-off", FixedTiming(30 * time.Minute), 1, 5 * time.Minute, soon, now.Add(5 * time.Minute)},
		{"adaptive: next pass", DefaultTiming(), 7, 0, soon, now},
		{"adaptive: Retry-After within the expiry", DefaultTiming(), 1, 5 * time.Minute, soon, now.Add(5 * time.Minute)},
		{"adaptive: Retry-After past the expiry is dropped", DefaultTiming(), 1, 15 * time.Minute, soon, now},
		{"adaptive: an expired token honours Retry-After", DefaultTiming(), 1, 15 * time.Minute, now.Add(-time.Minute), now.Add(15 * time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.timing.withDefaults().NextAttempt(now, tt.failures, tt.retryAfter, tt.expiry, 1)
			if !got.Equal(tt.want) {
				t.Errorf("NextAttempt = %v; want %v", got, tt.want)
			}
		})
	}
}

func TestTimingRepeatWindow(t *testing.T) {
	resend := ResendTiming()
	noResend := DefaultTiming()
	tests := []struct {
		name   string
		timing Timing
		p      provider.Preset
		want   time.Duration
	}{
		{"the preset's window", noResend, provider.Preset{RepeatWindow: 7 * time.Hour}, 7 * time.Hour},
		{"no window, no resend", noResend, provider.Preset{}, 0},
		{"the zero timing never resends", Timing{}.withDefaults(), provider.Preset{}, 0},
		{"no window, resend", resend, provider.Preset{}, ResendWindow},
		{"the preset's window wins over resend", resend, provider.Preset{RepeatWindow: 2 * time.Minute}, 2 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.timing.RepeatWindow(tt.p); got != tt.want {
				t.Errorf("RepeatWindow = %v; want %v", got, tt.want)
			}
		})
	}
}
