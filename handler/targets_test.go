package main

import (
	"slices"
	"testing"

	"github.com/freshtoken/freshtoken/internal/connection"
	"github.com/freshtoken/freshtoken/internal/refresh"
)

// TestTargets: notifications are about every single-account connection and about the accounts
// a pass reported on, never about a many-account connection's own partition.
func TestTargets(t *testing.T) {
	a := &app{conns: []*connection.Connection{
		{Name: "solo", AuthorizeURL: "https://x/api/authorize/solo"},
		{Name: "study", Many: true, AuthorizeURL: "https://x/api/authorize/study"},
	}}
	rep := refresh.Report{Results: []refresh.Result{
		{Connection: "solo", Outcome: refresh.NotDue},
		{Connection: "study.p-1", Outcome: refresh.Failed},
		{Connection: "other.p-2", Outcome: refresh.Failed},
	}}
	var names, urls []string
	for _, tg := range a.targets(rep) {
		names = append(names, tg.Name)
		urls = append(urls, tg.AuthorizeURL)
	}
	if want := []string{"solo", "study.p-1"}; !slices.Equal(names, want) {
		t.Errorf("targets %q; want %q", names, want)
	}
	if want := []string{"https://x/api/authorize/solo", "https://x/api/authorize/study/p-1"}; !slices.Equal(urls, want) {
		t.Errorf("authorize URLs %q; want %q", urls, want)
	}
}
