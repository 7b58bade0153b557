// Package schedule reads NCRONTAB expressions the way the Azure Functions host reads a timer
// trigger's schedule, and runs a job on such a schedule when freshtoken runs without the host.
//
// The expression has six fields, `{second} {minute} {hour} {day} {month} {day-of-week}`, or five
// without the seconds (then the second is 0). Each field is `*` or a comma-separated list of
// values and ranges `a-b`, each optionally stepped with `/n` (`*/15`, `0-30/10`, and `5/20`
// meaning 5 to the field's maximum in steps of 20). Months and days of the week may be written
// as English names or any prefix of one, in any case (`Jan`, `MON`, `Tues`); days of the week
// are 0-6 with 0 for Sunday. A time matches when every field matches: unlike classic cron, a
// restricted day and day-of-week must both match. Times are UTC, the Functions host's default.
//
// Parsing follows the grammar of NCrontab, the library the host uses, and is stricter where
// NCrontab silently changes the meaning: a backwards range (`22-2`, which NCrontab reads as
// `2-22`) and a zero step are errors. Occurrences are computed by github.com/netresearch/go-cron.
package schedule

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	cron "github.com/netresearch/go-cron"
)

// Schedule is a parsed NCRONTAB expression. The zero Schedule never fires.
type Schedule struct {
	expr string
	spec *cron.SpecSchedule
}

// Error is a malformed NCRONTAB expression. It names the field at fault, when one is.
type Error struct {
	Expr   string
	Field  string // "second", "minute", "hour", "day", "month", "day-of-week"; "" for the whole expression
	Reason string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + " field: " + e.Reason
}

// searchYears bounds the search for the next occurrence. Any satisfiable schedule fires within
// 28 years (the calendar repeats; a 29 February that is a Monday comes at least that often).
const searchYears = 30

// field describes one NCRONTAB field.
type field struct {
	name     string
	min, max int
	names    []string // full English names of min..max, matched by prefix
}

var (
	secondField = field{name: "second", min: 0, max: 59}
	minuteField = field{name: "minute", min: 0, max: 59}
	hourField   = field{name: "hour", min: 0, max: 23}
	dayField    = field{name: "day", min: 1, max: 31}
	monthField  = field{name: "month", min: 1, max: 12, names: []string{
		"January", "February", "March", "April", "May", "June", "July",
		"August", "September", "October", "November", "December"}}
	weekdayField = field{name: "day-of-week", min: 0, max: 6, names: []string{
		"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}}
)

// Parse reads an NCRONTAB expression of six fields, or five without the seconds. Errors are
// *Error.
func Parse(expr string) (Schedule, error) {
	fail := func(f, format string, a ...any) (Schedule, error) {
		return Schedule{}, &Error{Expr: expr, Field: f, Reason: fmt.Sprintf(format, a...)}
	}
	parts := strings.Fields(expr)
	switch {
	case len(parts) == 0:
		return fail("", "empty schedule")
	case len(parts) == 1 && strings.Count(parts[0], ":") == 2:
		return fail("", "%q is a TimeSpan (hh:mm:ss), which freshtoken does not read; "+
			"write it as NCRONTAB, e.g. 0 */15 * * * * for every 15 minutes", parts[0])
	case strings.HasPrefix(parts[0], "@"):
		return fail("", "descriptors such as %q are not NCRONTAB; write six fields, e.g. 0 0 * * * * for hourly", parts[0])
	case len(parts) == 5:
		parts = append([]string{"0"}, parts...)
	case len(parts) != 6:
		return fail("", "%d fields; want 6 ({second} {minute} {hour} {day} {month} {day-of-week}) "+
			"or 5 (the same without {second})", len(parts))
	}

	fields := []field{secondField, minuteField, hourField, dayField, monthField, weekdayField}
	var bits [6]uint64
	for i, f := range fields {
		b, err := f.parse(parts[i])
		if err != nil {
			return fail(f.name, "%q: %v", parts[i], err)
		}
		bits[i] = b
	}
	spec := &cron.SpecSchedule{
		Second: bits[0], Minute: bits[1], Hour: bits[2],
		Dom: bits[3], Month: bits[4], Dow: bits[5],
		Location:       time.UTC,
		MaxSearchYears: searchYears,
	}
	s := Schedule{expr: strings.Join(strings.Fields(expr), " "), spec: spec}
	if s.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return fail("", "no date matches its day, month and day-of-week fields together, so it never fires")
	}
	return s, nil
}

// Next returns the first time after t that the schedule matches, in UTC; the zero time for the
// zero Schedule.
func (s Schedule) Next(t time.Time) time.Time {
	if s.spec == nil {
		return time.Time{}
	}
	return s.spec.Next(t.UTC()).UTC()
}

// String returns the expression as given, with its white space normalised.
func (s Schedule) String() string { return s.expr }

// LongestGap returns the longest time between two consecutive runs over a year's runs starting
// at from (at most limit runs are looked at, so a schedule firing in bursts may report less).
// It is a hint for configuration checks, not a guarantee; zero for the zero Schedule.
func (s Schedule) LongestGap(from time.Time, limit int) time.Duration {
	if s.spec == nil {
		return 0
	}
	var longest time.Duration
	end := from.AddDate(1, 0, 0)
	prev := s.Next(from)
	for i := 0; i < limit && !prev.IsZero(); i++ {
		next := s.Next(prev)
		if next.IsZero() {
			break
		}
		longest = max(longest, next.Sub(prev))
		if next.After(end) {
			break
		}
		prev = next
	}
	return longest
}

// parse returns the field's values as bits (bit v set for value v).
func (f field) parse(s string) (uint64, error) {
	var bits uint64
	for item := range strings.SplitSeq(s, ",") {
		b, err := f.parseItem(item)
		if err != nil {
			return 0, err
		}
		bits |= b
	}
	return bits, nil
}

// parseItem reads `*`, `v`, `a-b`, each optionally followed by `/step`.
func (f field) parseItem(item string) (uint64, error) {
	if item == "" {
		return 0, errors.New("empty list item (two commas in a row, or one at an end)")
	}
	rng, stepText, stepped := strings.Cut(item, "/")
	step := 1
	if stepped {
		n, err := number(stepText)
		if err != nil || n == 0 {
			return 0, fmt.Errorf("step %q is not a positive whole number", stepText)
		}
		step = n
	}
	lo, hi := f.min, f.max
	switch a, b, isRange := strings.Cut(rng, "-"); {
	case rng == "*":
	case isRange:
		var err error
		if lo, err = f.value(a); err != nil {
			return 0, err
		}
		if hi, err = f.value(b); err != nil {
			return 0, err
		}
		if lo > hi {
			return 0, fmt.Errorf("range %s-%s runs backwards (NCrontab would read it as %d-%d); "+
				"write two ranges to wrap around, e.g. %d-%d,%d-%d", a, b, hi, lo, lo, f.max, f.min, hi)
		}
	default:
		v, err := f.value(rng)
		if err != nil {
			return 0, err
		}
		lo = v
		if !stepped {
			hi = v
		}
	}
	var bits uint64
	for v := lo; v <= hi; v += step {
		bits |= 1 << uint(v)
	}
	return bits, nil
}

// value reads a number in the field's range or, for months and days of the week, a name or a
// prefix of one (the first name in calendar order wins, as in NCrontab).
func (f field) value(s string) (int, error) {
	if s == "" {
		return 0, errors.New("a value is missing")
	}
	if c := s[0]; c >= '0' && c <= '9' {
		n, err := number(s)
		if err != nil {
			return 0, fmt.Errorf("%q is not a number", s)
		}
		if n < f.min || n > f.max {
			return 0, fmt.Errorf("%d is outside %d-%d", n, f.min, f.max)
		}
		return n, nil
	}
	if f.names == nil {
		return 0, fmt.Errorf("%q is not a number in %d-%d", s, f.min, f.max)
	}
	for i, name := range f.names {
		if len(s) <= len(name) && strings.EqualFold(name[:len(s)], s) {
			return f.min + i, nil
		}
	}
	return 0, fmt.Errorf("%q is neither a number in %d-%d nor a name such as %s or %s",
		s, f.min, f.max, f.names[0][:3], f.names[1])
}

// number reads an unsigned decimal of at most 4 digits (no field needs more).
func number(s string) (int, error) {
	if s == "" || len(s) > 4 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, errors.New("not a number")
	}
	return strconv.Atoi(s)
}
