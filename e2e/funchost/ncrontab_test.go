package funchost

import (
	"testing"
	"time"
)

func TestNCrontab(t *testing.T) {
	at := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		expr, from, wantNext, wantPrev string // "" want: no occurrence
	}{
		{"0 */5 * * * *", "2024-05-01T10:12:34Z", "2024-05-01T10:15:00Z", "2024-05-01T10:10:00Z"},
		{"0 */5 * * * *", "2024-05-01T10:15:00Z", "2024-05-01T10:20:00Z", "2024-05-01T10:10:00Z"},
		{"0 */5 * * * *", "2024-05-01T10:15:00.5Z", "2024-05-01T10:20:00Z", "2024-05-01T10:15:00Z"},
		{"*/15 * * * *", "2024-05-01T10:59:59Z", "2024-05-01T11:00:00Z", "2024-05-01T10:45:00Z"},
		{"5/15 * * * * *", "2024-05-01T10:00:36Z", "2024-05-01T10:00:50Z", "2024-05-01T10:00:35Z"},
		{"0 30 9 * * Mon-Fri", "2024-05-03T10:00:00Z", "2024-05-06T09:30:00Z", "2024-05-03T09:30:00Z"},
		{"0 0 0 1 Jan *", "2024-05-01T00:00:00Z", "2025-01-01T00:00:00Z", "2024-01-01T00:00:00Z"},
		{"0 0 12 29 2 *", "2024-05-01T00:00:00Z", "2028-02-29T12:00:00Z", "2024-02-29T12:00:00Z"},
		// Day-of-month and day-of-week must both match: Friday the 13th.
		{"0 0 0 13 * 5", "2024-01-01T00:00:00Z", "2024-09-13T00:00:00Z", "2023-10-13T00:00:00Z"},
		{"0 0 0 31 2 *", "2024-05-01T00:00:00Z", "", ""},
		{"0 0 0,12 * * sun", "2024-05-01T00:00:00Z", "2024-05-05T00:00:00Z", "2024-04-28T12:00:00Z"},
	}
	for _, tt := range tests {
		c, err := parseNCrontab(tt.expr)
		if err != nil {
			t.Fatalf("parseNCrontab(%q): %v", tt.expr, err)
		}
		from := at(tt.from)
		for _, x := range []struct {
			name string
			got  time.Time
			want string
		}{{"next", c.next(from), tt.wantNext}, {"prev", c.prev(from), tt.wantPrev}} {
			if x.want == "" {
				if !x.got.IsZero() {
					t.Errorf("%q %s(%s) = %v; want none", tt.expr, x.name, tt.from, x.got)
				}
				continue
			}
			if !x.got.Equal(at(x.want)) {
				t.Errorf("%q %s(%s) = %v; want %s", tt.expr, x.name, tt.from, x.got, x.want)
			}
		}
	}
}

func TestNCrontabInvalid(t *testing.T) {
	for _, expr := range []string{
		"", "* * * *", "* * * * * * *", "60 * * * * *", "0 0 24 * * *", "0 0 0 0 * *",
		"* * * * * 7", "*/0 * * * * *", "0 0 0 * Foo *", "5-1 * * * * *", "00:05:00", "a b c d e f",
	} {
		if _, err := parseNCrontab(expr); err == nil {
			t.Errorf("parseNCrontab(%q): got nil error; want one", expr)
		}
	}
}

func TestFiresMoreThanOncePerMinute(t *testing.T) {
	for expr, want := range map[string]bool{
		"*/10 * * * * *": true,
		"0,30 * * * * *": true,
		"0 * * * * *":    false,
		"0 */15 * * * *": false,
		"*/5 * * * *":    false,
	} {
		c, err := parseNCrontab(expr)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.firesMoreThanOncePerMinute(); got != want {
			t.Errorf("%q: firesMoreThanOncePerMinute() = %v; want %v", expr, got, want)
		}
	}
}
