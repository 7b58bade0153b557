package connection

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckLabel(t *testing.T) {
	for _, tc := range []struct {
		label string
		ok    bool
	}{
		{"alice", true},
		{"p-0042", true},
		{"0", true},
		{strings.Repeat("a", 63), true},
		{"", false},
		{strings.Repeat("a", 64), false},
		{"Alice", false},
		{"a.b", false},
		{"a_b", false},
		{"a b", false},
		{"é", false},
		{"a/b", false},
	} {
		err := CheckLabel(tc.label)
		if (err == nil) != tc.ok {
			t.Errorf("CheckLabel(%q) = %v; want ok %v", tc.label, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrLabel) {
			t.Errorf("CheckLabel(%q) = %v; want it to wrap ErrLabel", tc.label, err)
		}
	}
}

func TestPartitionRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		pk          string
		name, label string
		ok          bool
	}{
		{"strava.alice", "strava", "alice", true},
		{"my-app.p-1", "my-app", "p-1", true},
		{"strava", "", "", false},
		{"strava.", "", "", false},
		{".alice", "", "", false},
		{"strava.Alice", "", "", false},
		{"strava.a.b", "", "", false},
	} {
		name, label, ok := SplitPartition(tc.pk)
		if name != tc.name || label != tc.label || ok != tc.ok {
			t.Errorf("SplitPartition(%q) = %q, %q, %v; want %q, %q, %v", tc.pk, name, label, ok, tc.name, tc.label, tc.ok)
		}
		if ok {
			if got := Partition(name, label); got != tc.pk {
				t.Errorf("Partition(%q, %q) = %q; want %q", name, label, got, tc.pk)
			}
		}
	}
}

func TestAccountRange(t *testing.T) {
	lo, hi := AccountRange("strava")
	in := []string{"strava.0", "strava.alice", "strava." + strings.Repeat("z", 63), "strava.-"}
	out := []string{"strava", "strava-x", "strava-x.alice", "stravb.a", "strav.a", "stravaa.b"}
	for _, pk := range in {
		if !(pk >= lo && pk < hi) {
			t.Errorf("%q is outside [%q, %q); want inside", pk, lo, hi)
		}
	}
	for _, pk := range out {
		if pk >= lo && pk < hi {
			t.Errorf("%q is inside [%q, %q); want outside", pk, lo, hi)
		}
	}
}

func TestAccount(t *testing.T) {
	c := &Connection{Name: "strava", Many: true, AuthorizeURL: "https://x/api/authorize/strava"}
	a, err := c.Account("alice")
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != "strava.alice" || a.Label != "alice" || a.App() != "strava" || a.AuthorizeURL != "https://x/api/authorize/strava/alice" {
		t.Errorf("Account = %+v; want name strava.alice, label alice, app strava, authorize URL .../strava/alice", a)
	}
	if c.Name != "strava" || c.App() != "strava" {
		t.Errorf("the connection changed: %+v", c)
	}
	if _, err := c.Account("Bad"); !errors.Is(err, ErrLabel) {
		t.Errorf("Account(Bad) = %v; want ErrLabel", err)
	}
	single := &Connection{Name: "demo"}
	if _, err := single.Account("alice"); err == nil {
		t.Error("Account on a single connection: no error; want one")
	}
}
