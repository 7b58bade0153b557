// Package human writes times and durations for people: in pages, messages and notifications.
package human

import (
	"fmt"
	"time"
)

// Duration writes d in the largest unit that keeps it short: "45 seconds", "10 minutes",
// "3 hours", "13 days". Amounts are rounded down to a whole unit, except under a minute.
func Duration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	switch {
	case d < time.Minute:
		return plural(int64(d.Round(time.Second)/time.Second), "second")
	case d < time.Hour:
		return plural(int64(d/time.Minute), "minute")
	case d < 48*time.Hour:
		return plural(int64(d/time.Hour), "hour")
	}
	return plural(int64(d/(24*time.Hour)), "day")
}

// Relative writes t as seen from now: "in 42 min", "3 hours ago", "now". Zero t is "never".
func Relative(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := t.Sub(now)
	switch {
	case d > -time.Second && d < time.Second:
		return "now"
	case d > 0 && d < time.Hour:
		return fmt.Sprintf("in %d min", max(1, int64(d/time.Minute)))
	case d > 0:
		return "in " + Duration(d)
	case d > -time.Hour:
		return fmt.Sprintf("%d min ago", max(1, int64(-d/time.Minute)))
	}
	return Duration(d) + " ago"
}

func plural(n int64, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
