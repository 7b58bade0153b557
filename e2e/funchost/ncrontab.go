package funchost

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// ncrontab is a parsed NCRONTAB expression as the timer trigger reads it: six fields
// ({second} {minute} {hour} {day} {month} {day-of-week}) or five (no seconds, second 0).
// Fields take *, numbers, names (Jan, Mon), ranges, lists and /steps; day-of-week is 0-6 with
// Sunday 0. Day-of-month and day-of-week must both match (NCrontab, unlike Vixie cron, does
// not OR them). Times are UTC: WEBSITE_TIME_ZONE is not emulated.
type ncrontab struct {
	expr                          string
	sec, min, hour, dom, mon, dow uint64 // bit i set: value i allowed
}

var (
	monthNames = []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}
	dayNames   = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}
)

func parseNCrontab(expr string) (*ncrontab, error) {
	fields := strings.Fields(expr)
	if len(fields) == 5 {
		fields = append([]string{"0"}, fields...)
	}
	if len(fields) != 6 {
		return nil, fmt.Errorf("schedule %q: want 6 NCRONTAB fields ({second} {minute} {hour} {day} {month} {day-of-week}) or 5, got %d", expr, len(fields))
	}
	c := &ncrontab{expr: expr}
	specs := []struct {
		dst      *uint64
		name     string
		lo, hi   int
		names    []string
		nameBase int
	}{
		{&c.sec, "second", 0, 59, nil, 0},
		{&c.min, "minute", 0, 59, nil, 0},
		{&c.hour, "hour", 0, 23, nil, 0},
		{&c.dom, "day", 1, 31, nil, 0},
		{&c.mon, "month", 1, 12, monthNames, 1},
		{&c.dow, "day-of-week", 0, 6, dayNames, 0},
	}
	for i, s := range specs {
		set, err := parseCronField(fields[i], s.lo, s.hi, s.names, s.nameBase)
		if err != nil {
			return nil, fmt.Errorf("schedule %q: %s field %q: %w", expr, s.name, fields[i], err)
		}
		*s.dst = set
	}
	return c, nil
}

func parseCronField(field string, lo, hi int, names []string, nameBase int) (uint64, error) {
	var set uint64
	for _, item := range strings.Split(field, ",") {
		rng, stepText, hasStep := strings.Cut(item, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n <= 0 {
				return 0, fmt.Errorf("bad step %q", stepText)
			}
			step = n
		}
		var from, to int
		switch {
		case rng == "*":
			from, to = lo, hi
		case strings.Contains(rng, "-"):
			a, b, _ := strings.Cut(rng, "-")
			var err1, err2 error
			from, err1 = cronValue(a, lo, hi, names, nameBase)
			to, err2 = cronValue(b, lo, hi, names, nameBase)
			if err1 != nil {
				return 0, err1
			}
			if err2 != nil {
				return 0, err2
			}
			if from > to {
				return 0, fmt.Errorf("range %q runs backwards", rng)
			}
		default:
			v, err := cronValue(rng, lo, hi, names, nameBase)
			if err != nil {
				return 0, err
			}
			from, to = v, v
			if hasStep {
				to = hi // "5/15" means from 5 to the end, every 15
			}
		}
		for v := from; v <= to; v += step {
			set |= 1 << uint(v)
		}
	}
	return set, nil
}

func cronValue(s string, lo, hi int, names []string, nameBase int) (int, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < lo || n > hi {
			return 0, fmt.Errorf("%d is outside %d-%d", n, lo, hi)
		}
		return n, nil
	}
	for i, name := range names {
		if len(s) >= 3 && strings.HasPrefix(strings.ToLower(name), strings.ToLower(s[:3])) {
			return i + nameBase, nil
		}
	}
	return 0, fmt.Errorf("%q is not a value", s)
}

func has(set uint64, v int) bool { return set&(1<<uint(v)) != 0 }

func (c *ncrontab) dayOK(t time.Time) bool {
	return has(c.dom, t.Day()) && has(c.mon, int(t.Month())) && has(c.dow, int(t.Weekday()))
}

// searchYears bounds the search: an expression such as "0 0 0 31 2 *" never fires.
const searchYears = 8

// next returns the first occurrence strictly after t, or the zero time if there is none.
func (c *ncrontab) next(t time.Time) time.Time {
	t = t.UTC().Truncate(time.Second).Add(time.Second)
	limit := t.AddDate(searchYears, 0, 0)
	for t.Before(limit) {
		switch {
		case !c.dayOK(t):
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, time.UTC)
		case !has(c.hour, t.Hour()):
			t = t.Truncate(time.Hour).Add(time.Hour)
		case !has(c.min, t.Minute()):
			t = t.Truncate(time.Minute).Add(time.Minute)
		case !has(c.sec, t.Second()):
			t = t.Add(time.Second)
		default:
			return t
		}
	}
	return time.Time{}
}

// prev returns the last occurrence strictly before t, or the zero time if there is none.
func (c *ncrontab) prev(t time.Time) time.Time {
	t = t.UTC()
	if tr := t.Truncate(time.Second); tr.Equal(t) {
		t = tr.Add(-time.Second)
	} else {
		t = tr
	}
	limit := t.AddDate(-searchYears, 0, 0)
	for t.After(limit) {
		switch {
		case !c.dayOK(t):
			t = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC).Add(-time.Second)
		case !has(c.hour, t.Hour()):
			t = t.Truncate(time.Hour).Add(-time.Second)
		case !has(c.min, t.Minute()):
			t = t.Truncate(time.Minute).Add(-time.Second)
		case !has(c.sec, t.Second()):
			t = t.Add(-time.Second)
		default:
			return t
		}
	}
	return time.Time{}
}

// firesMoreThanOncePerMinute approximates the host's check that turns the schedule monitor off
// (ScheduleStatus null) for schedules firing more than once a minute: more than one second
// value means two occurrences can fall within the same minute.
func (c *ncrontab) firesMoreThanOncePerMinute() bool {
	return bits.OnesCount64(c.sec) > 1
}
