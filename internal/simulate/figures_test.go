package simulate

import (
	"testing"
	"time"
)

func TestUnavoidable(t *testing.T) {
	start := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return start.Add(time.Duration(m) * time.Minute) }
	ticks := func(from, to int) []time.Time {
		var ts []time.Time
		for m := from; m < to; m += 15 {
			ts = append(ts, at(m))
		}
		return ts
	}
	end := at(24 * 60)
	tests := []struct {
		name     string
		lifetime time.Duration
		good     []time.Time
		lost     []time.Time
		want     time.Duration
	}{
		{"every tick good", time.Hour, ticks(15, 24*60), nil, 0},
		{"good ticks 3h30m apart cost 3h30m minus the hour", time.Hour,
			append(ticks(15, 600), ticks(795, 24*60)...), nil, 2*time.Hour + 30*time.Minute},
		{"a gap shorter than the lifetime costs nothing", 4 * time.Hour,
			append(ticks(15, 600), ticks(795, 24*60)...), nil, 0},
		{"no good tick after the start: all but the first lifetime", time.Hour, nil, nil, 23 * time.Hour},
		{"never-expiring tokens", 0, nil, nil, 0},
		{"a lost answer: the wait for the person beyond the last token's life", time.Hour,
			ticks(15, 24*60), []time.Time{at(600)}, 5*time.Hour + 15*time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Unavoidable(tt.lifetime, start, end, tt.good, tt.lost, 6*time.Hour); got != tt.want {
				t.Errorf("Unavoidable = %v; want %v", got, tt.want)
			}
		})
	}
}
