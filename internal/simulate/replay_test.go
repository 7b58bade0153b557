package simulate_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/freshtoken/freshtoken/internal/refresh"
	"github.com/freshtoken/freshtoken/internal/simulate"
	"github.com/freshtoken/freshtoken/internal/store/storetest"
)

// TestReplay: a seed replays a run exactly, and another seed makes another world.
func TestReplay(t *testing.T) {
	models, err := simulate.Models()
	if err != nil {
		t.Fatal(err)
	}
	var custom simulate.Model
	for _, m := range models {
		if m.Preset.Name == "custom" {
			custom = m
		}
	}
	run := func(seed uint64) simulate.Figures {
		var f simulate.Figures
		synctest.Test(t, func(t *testing.T) {
			var err error
			f, err = simulate.Run(context.Background(), simulate.Config{
				Model: custom, Scenario: simulate.Standard, Seed: seed, Length: 20 * 24 * time.Hour,
				Timing: refresh.FixedTiming(30 * time.Minute), Backend: storetest.New(),
			})
			if err != nil {
				t.Fatal(err)
			}
		})
		return f
	}
	a, b, c := run(5), run(5), run(6)
	if a != b {
		t.Errorf("seed 5 twice: got %+v and %+v; want equal figures", a, b)
	}
	if a == c {
		t.Errorf("seeds 5 and 6 both gave %+v; want different worlds", a)
	}
	if a.Requests == 0 || a.Stale == 0 {
		t.Errorf("seed 5: %+v; want refreshes and some stale time in a standard world", a)
	}
}
