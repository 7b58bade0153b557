package invite

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/connection"
)

var now = time.Date(2026, 12, 1, 10, 0, 0, 500, time.UTC)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func signer(t *testing.T, key []byte, at time.Time) *Signer {
	t.Helper()
	s, err := New(Options{Key: key, Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRoundTrip(t *testing.T) {
	s := signer(t, testKey(1), now)
	inv, v, err := s.Issue("strava", "p-017", 7*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if want := now.Add(7 * 24 * time.Hour).Truncate(time.Second).Add(time.Second); !inv.Expires.Equal(want) {
		t.Errorf("Expires = %v; want %v (rounded up to the second)", inv.Expires, want)
	}
	if len(inv.ID) != 32 || strings.Trim(inv.ID, "0123456789abcdef") != "" {
		t.Errorf("ID = %q; want 32 hex digits", inv.ID)
	}
	if len(v) > 70 || strings.ContainsAny(v, "+/=") {
		t.Errorf("value %q (%d chars): want at most 70 URL-safe characters", v, len(v))
	}
	got, err := s.Verify("strava", v)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if got != inv {
		t.Errorf("Verify = %+v; want %+v", got, inv)
	}
	_, v2, _ := s.Issue("strava", "p-017", time.Hour)
	if v2 == v {
		t.Errorf("two invitations for one label are the same value; want distinct ids")
	}
}

func TestRefused(t *testing.T) {
	s := signer(t, testKey(1), now)
	inv, v, err := s.Issue("strava", "alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(v)
	flip := func(i int) string {
		b := append([]byte(nil), raw...)
		b[i] ^= 0x01
		return base64.RawURLEncoding.EncodeToString(b)
	}
	tests := []struct {
		name, conn, value string
		signer            *Signer
		want              error
	}{
		{"another connection", "strava2", v, s, ErrForged},
		{"another key", "strava", v, signer(t, testKey(2), now), ErrForged},
		{"empty", "strava", "", s, ErrMalformed},
		{"not base64", "strava", v[:10] + "*" + v[11:], s, ErrMalformed},
		{"padded", "strava", v + "=", s, ErrMalformed},
		{"cut short", "strava", v[:20], s, ErrMalformed},
		{"tag cut", "strava", base64.RawURLEncoding.EncodeToString(raw[:len(raw)-1]), s, ErrForged},
		{"label longer", "strava", base64.RawURLEncoding.EncodeToString(append(append(append([]byte(nil), raw[:len(raw)-tagSize]...), 'x'), raw[len(raw)-tagSize:]...)), s, ErrForged},
		{"too long", "strava", strings.Repeat("A", 201), s, ErrMalformed},
		{"expired", "strava", v, signer(t, testKey(1), inv.Expires), ErrExpired},
	}
	// Every single bit flip of version, id, expiry, label or tag is refused.
	for i := range raw {
		want := ErrForged
		if i == 0 {
			want = ErrMalformed
		}
		tests = append(tests, struct {
			name, conn, value string
			signer            *Signer
			want              error
		}{"byte " + string(rune('0'+i%10)) + " flipped", "strava", flip(i), s, want})
	}
	for _, tt := range tests {
		got, err := tt.signer.Verify(tt.conn, tt.value)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: Verify error %v; want %v", tt.name, err, tt.want)
		}
		if tt.want != ErrExpired && got != (Invitation{}) {
			t.Errorf("%s: Verify returned %+v with the error; want nothing", tt.name, got)
		}
	}
	// Expired ones still say which and when; one second earlier it is valid.
	if got, err := signer(t, testKey(1), inv.Expires).Verify("strava", v); got != inv || !strings.Contains(err.Error(), inv.Expires.Format(time.RFC3339)) {
		t.Errorf("expired: got %+v, %v; want the invitation and its expiry in the error", got, err)
	}
	if _, err := signer(t, testKey(1), inv.Expires.Add(-time.Second)).Verify("strava", v); err != nil {
		t.Errorf("a second before expiry: %v; want valid", err)
	}
}

func TestIssueErrors(t *testing.T) {
	s := signer(t, testKey(1), now)
	for _, tt := range []struct {
		conn, label string
		valid       time.Duration
	}{
		{"strava", "", time.Hour},
		{"strava", "Alice", time.Hour},
		{"strava", "a.b", time.Hour},
		{"strava", strings.Repeat("a", 64), time.Hour},
		{"", "alice", time.Hour},
		{"strava", "alice", 0},
		{"strava", "alice", MaxValidity + time.Second},
	} {
		if _, _, err := s.Issue(tt.conn, tt.label, tt.valid); err == nil {
			t.Errorf("Issue(%q, %q, %s): got nil error; want one", tt.conn, tt.label, tt.valid)
		}
	}
	if _, err := New(Options{Key: testKey(1)[:31]}); err == nil {
		t.Errorf("New with a 31-byte key: got nil error; want one")
	}
}

func TestParseKey(t *testing.T) {
	key := testKey(7)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		got, err := ParseKey(" " + enc.EncodeToString(key) + "\n")
		if err != nil || !bytes.Equal(got, key) {
			t.Errorf("ParseKey: got %x, %v; want the key", got, err)
		}
	}
	short := base64.StdEncoding.EncodeToString(key[:16])
	for _, bad := range []string{"", "not base64 at all!", short} {
		_, err := ParseKey(bad)
		if err == nil {
			t.Errorf("ParseKey(%q): got nil error; want one", bad)
			continue
		}
		if bad != "" && strings.Contains(err.Error(), bad) {
			t.Errorf("ParseKey error %q quotes the value", err)
		}
	}
}

func TestLabels(t *testing.T) {
	tests := []struct {
		prefix string
		n      int
		first  string
		last   string
	}{
		{"p", 1, "p1", "p1"},
		{"p", 9, "p1", "p9"},
		{"p", 10, "p01", "p10"},
		{"study-a-", 300, "study-a-001", "study-a-300"},
		{"", 12, "01", "12"},
	}
	for _, tt := range tests {
		got, err := Labels(tt.prefix, tt.n)
		if err != nil || len(got) != tt.n || got[0] != tt.first || got[len(got)-1] != tt.last {
			t.Errorf("Labels(%q, %d) = %v, %v; want %d labels %s..%s", tt.prefix, tt.n, got, err, tt.n, tt.first, tt.last)
		}
	}
	for _, tt := range []struct {
		prefix string
		n      int
	}{{"p", 0}, {"P", 3}, {"p_", 3}, {strings.Repeat("p", 62), 10}, {"p", MaxRoster + 1}} {
		if _, err := Labels(tt.prefix, tt.n); err == nil {
			t.Errorf("Labels(%q, %d): got nil error; want one", tt.prefix, tt.n)
		}
	}
}

func TestRosterCSV(t *testing.T) {
	s := signer(t, testKey(1), now)
	many := &connection.Connection{Name: "withings", Many: true, RedirectURL: "https://app.example.net/api/callback/withings"}
	labels, _ := Labels("p", 3)
	issued, err := s.Roster(Request{Connection: many, Labels: labels, Valid: 7 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteCSV(&buf, issued); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 4 || lines[0] != "label,url" {
		t.Fatalf("CSV:\n%s\nwant a header and 3 rows", buf.String())
	}
	for i, line := range lines[1:] {
		label, u, _ := strings.Cut(line, ",")
		prefix := "https://app.example.net/api/callback/withings?invite="
		if label != labels[i] || !strings.HasPrefix(u, prefix) {
			t.Errorf("row %d = %q; want %s,%s...", i+1, line, labels[i], prefix)
			continue
		}
		inv, err := s.Verify("withings", strings.TrimPrefix(u, prefix))
		if err != nil || inv.Label != labels[i] {
			t.Errorf("row %d: the URL's invitation verifies as %+v, %v; want label %s", i+1, inv, err, labels[i])
		}
	}

	one := &connection.Connection{Name: "strava", RedirectURL: "https://app.example.net/api/callback/strava"}
	if _, err := s.Roster(Request{Connection: one, Labels: []string{"a"}, Valid: time.Hour}); err == nil {
		t.Errorf("Roster for a single-account connection: got nil error; want one")
	}
	if _, err := s.Roster(Request{Connection: many, Labels: []string{"a", "a"}, Valid: time.Hour}); err == nil {
		t.Errorf("Roster with a repeated label: got nil error; want one")
	}
	if _, err := s.Roster(Request{Connection: many, Labels: []string{"ok", "Bad"}, Valid: time.Hour}); err == nil {
		t.Errorf("Roster with a bad label: got nil error; want one")
	}
}
