package schedule

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestParseNext(t *testing.T) {
	tests := []struct {
		expr string
		from string
		want []string // the next occurrences after from, in order
	}{
		{"0 */15 * * * *", "2024-05-01T10:07:30Z", []string{"2024-05-01T10:15:00Z", "2024-05-01T10:30:00Z", "2024-05-01T10:45:00Z", "2024-05-01T11:00:00Z"}},
		// An occurrence equal to from is not "next".
		{"0 */15 * * * *", "2024-05-01T10:15:00Z", []string{"2024-05-01T10:30:00Z"}},
		// Five fields: the second is 0.
		{"*/15 * * * *", "2024-05-01T10:07:30Z", []string{"2024-05-01T10:15:00Z", "2024-05-01T10:30:00Z"}},
		{"30 5 * * * *", "2024-05-01T10:05:30Z", []string{"2024-05-01T11:05:30Z"}},
		{"*/20 * * * * *", "2024-05-01T10:00:50Z", []string{"2024-05-01T10:01:00Z", "2024-05-01T10:01:20Z"}},
		// Ranges, lists and stepped ranges.
		{"0 0 9-11 * * *", "2024-05-01T10:30:00Z", []string{"2024-05-01T11:00:00Z", "2024-05-02T09:00:00Z"}},
		{"0 0,30 8 * * *", "2024-05-01T08:10:00Z", []string{"2024-05-01T08:30:00Z", "2024-05-02T08:00:00Z"}},
		{"0 0-30/10 8 * * *", "2024-05-01T08:25:00Z", []string{"2024-05-01T08:30:00Z", "2024-05-02T08:00:00Z"}},
		// a/n: from a to the end of the field in steps of n.
		{"0 50/5 8 * * *", "2024-05-01T08:00:00Z", []string{"2024-05-01T08:50:00Z", "2024-05-01T08:55:00Z", "2024-05-02T08:50:00Z"}},
		// Names and prefixes, any case. 2024-05-03 is a Friday.
		{"0 30 9 * * MON", "2024-05-03T00:00:00Z", []string{"2024-05-06T09:30:00Z", "2024-05-13T09:30:00Z"}},
		{"0 30 9 * * mon-fri", "2024-05-03T10:00:00Z", []string{"2024-05-06T09:30:00Z"}},
		{"0 30 9 * * Tues", "2024-05-03T10:00:00Z", []string{"2024-05-07T09:30:00Z"}},
		{"0 0 0 1 Jan *", "2024-05-03T10:00:00Z", []string{"2025-01-01T00:00:00Z"}},
		{"0 0 0 1 ju *", "2024-05-03T10:00:00Z", []string{"2024-06-01T00:00:00Z"}}, // "ju" is June, the first match
		{"0 0 0 * * 0", "2024-05-03T10:00:00Z", []string{"2024-05-05T00:00:00Z"}},  // 0 is Sunday
		// Day and day-of-week must both match: Friday the 13th.
		{"0 0 0 13 * FRI", "2024-01-01T00:00:00Z", []string{"2024-09-13T00:00:00Z", "2024-12-13T00:00:00Z"}},
		// Day 31 skips shorter months; 29 February waits for a leap year.
		{"0 0 0 31 * *", "2024-04-01T00:00:00Z", []string{"2024-05-31T00:00:00Z", "2024-07-31T00:00:00Z"}},
		{"0 0 0 29 2 *", "2024-03-01T00:00:00Z", []string{"2028-02-29T00:00:00Z"}},
		// Extra white space is fine.
		{"  0  */15 * * * *\t", "2024-05-01T10:07:30Z", []string{"2024-05-01T10:15:00Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			s, err := Parse(tt.expr)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.expr, err)
			}
			at := utc(tt.from)
			for _, w := range tt.want {
				at = s.Next(at)
				if want := utc(w); !at.Equal(want) {
					t.Fatalf("Next = %v; want %v", at, want)
				}
				if at.Location() != time.UTC {
					t.Errorf("Next location = %v; want UTC", at.Location())
				}
			}
		})
	}
}

func TestNextConvertsToUTC(t *testing.T) {
	s, err := Parse("0 0 9 * * *")
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2024, 5, 1, 10, 30, 0, 0, time.FixedZone("UTC+2", 2*3600)) // 08:30 UTC
	if got, want := s.Next(from), utc("2024-05-01T09:00:00Z"); !got.Equal(want) {
		t.Errorf("Next = %v; want %v", got, want)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		expr  string
		field string // want Error.Field
		says  string // part of the message
	}{
		{"", "", "empty"},
		{"* * * *", "", "4 fields"},
		{"0 * * * * * *", "", "7 fields"},
		{"00:15:00", "", "TimeSpan"},
		{"@hourly", "", "descriptors"},
		{"60 * * * * *", "second", "60 is outside 0-59"},
		{"0 60 * * * *", "minute", "60 is outside 0-59"},
		{"0 0 24 * * *", "hour", "24 is outside 0-23"},
		{"0 0 0 0 * *", "day", "0 is outside 1-31"},
		{"0 0 0 32 * *", "day", "32 is outside 1-31"},
		{"0 0 0 * 13 *", "month", "13 is outside 1-12"},
		{"0 0 0 * * 7", "day-of-week", "7 is outside 0-6"},
		{"0 0 0 * Foo *", "month", `"Foo" is neither`},
		{"0 0 0 * * Mondays", "day-of-week", `"Mondays" is neither`},
		{"0 0 MON * * *", "hour", `"MON" is not a number`},
		{"0 */0 * * * *", "minute", "step"},
		{"0 */x * * * *", "minute", "step"},
		{"0 */ * * * *", "minute", "step"},
		{"0 1/2/3 * * * *", "minute", "step"},
		{"0 0 22-2 * * *", "hour", "runs backwards"},
		{"0 0 1,,2 * * *", "hour", "empty list item"},
		{"0 0 1, * * *", "hour", "empty list item"},
		{"0 0 -1 * * *", "hour", "missing"},
		{"0 0 1-2-3 * * *", "hour", "not a number"},
		{"0 0 *-3 * * *", "hour", `"*" is not a number`},
		{"0 0 ? * * *", "hour", `"?" is not a number`},
		{"0 0 5a * * *", "hour", "not a number"},
		{"0 0 0 L * *", "day", "not a number"},
		{"0 0 0 * * FRI#3", "day-of-week", "neither"},
		{"CRON_TZ=UTC 0 * * * * *", "", "7 fields"},
		{"0 0 0 30 2 *", "", "never fires"},
		{"0 0 0 31 4,6,9,11 *", "", "never fires"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			s, err := Parse(tt.expr)
			if err == nil {
				t.Fatalf("Parse(%q) = %v, nil; want an error", tt.expr, s)
			}
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q) error %T; want *Error", tt.expr, err)
			}
			if pe.Field != tt.field {
				t.Errorf("Field = %q; want %q (%v)", pe.Field, tt.field, err)
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("error %q; want it to say %q", err, tt.says)
			}
			if tt.field != "" && !strings.HasPrefix(err.Error(), tt.field+" field: ") {
				t.Errorf("error %q; want it to start by naming the %s field", err, tt.field)
			}
		})
	}
}

func TestZeroScheduleNeverFires(t *testing.T) {
	var s Schedule
	if got := s.Next(utc("2024-05-01T10:00:00Z")); !got.IsZero() {
		t.Errorf("Next = %v; want the zero time", got)
	}
}

func TestString(t *testing.T) {
	s, err := Parse(" 0  */15 * * * * ")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.String(), "0 */15 * * * *"; got != want {
		t.Errorf("String() = %q; want %q", got, want)
	}
}

func TestLongestGap(t *testing.T) {
	tests := []struct {
		expr string
		want time.Duration
	}{
		{"0 */15 * * * *", 15 * time.Minute},
		{"0 0,10 * * * *", 50 * time.Minute},
		{"0 0 9 * * MON-FRI", 72 * time.Hour},
		{"0 0 0 1 1,7 *", 184 * 24 * time.Hour}, // 1 July to 1 January
	}
	from := utc("2024-05-01T00:00:00Z")
	for _, tt := range tests {
		s, err := Parse(tt.expr)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.LongestGap(from, 10000); got != tt.want {
			t.Errorf("%q: LongestGap = %v; want %v", tt.expr, got, tt.want)
		}
	}
}
