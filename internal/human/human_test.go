package human

import (
	"testing"
	"time"
)

func TestDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{30 * time.Second, "30 seconds"},
		{time.Second, "1 second"},
		{time.Minute, "1 minute"},
		{10 * time.Minute, "10 minutes"},
		{90 * time.Minute, "1 hour"},
		{47 * time.Hour, "47 hours"},
		{13*24*time.Hour + 5*time.Hour, "13 days"},
		{-2 * time.Hour, "2 hours"},
	}
	for _, tt := range tests {
		if got := Duration(tt.in); got != tt.want {
			t.Errorf("Duration(%v) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestRelative(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		at   time.Time
		want string
	}{
		{time.Time{}, "never"},
		{now, "now"},
		{now.Add(42 * time.Minute), "in 42 min"},
		{now.Add(20 * time.Second), "in 1 min"},
		{now.Add(5 * time.Hour), "in 5 hours"},
		{now.Add(-3 * time.Minute), "3 min ago"},
		{now.Add(-3 * 24 * time.Hour), "3 days ago"},
	}
	for _, tt := range tests {
		if got := Relative(tt.at, now); got != tt.want {
			t.Errorf("Relative(%v) = %q; want %q", tt.at, got, tt.want)
		}
	}
}
