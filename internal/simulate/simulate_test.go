package simulate_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/freshtoken/freshtoken/internal/refresh"
	"github.com/freshtoken/freshtoken/internal/simulate"
	"github.com/freshtoken/freshtoken/internal/store/storetest"
)

// defaultSeed keeps the figures comparable from release to release; SIM_SEED replays another.
const defaultSeed = 20261201

// timings are the policies compared; the last is refresh.DefaultTiming, whose figures make the
// summary line and must keep the goals the test checks.
// SIM_POLICY=adaptive runs only the named policies (comma-separated); the short run of make
// test compares today's fixed margin with the default only, to stay quick under -race.
func timings(full bool) []refresh.Timing {
	all := []refresh.Timing{refresh.FixedTiming(30 * time.Minute), refresh.FractionTiming(0.5), refresh.ResendTiming(), refresh.DefaultTiming()}
	only := os.Getenv("SIM_POLICY")
	switch {
	case only == "" && full:
		return all
	case only == "":
		only = "fixed-30m,adaptive"
	}
	var out []refresh.Timing
	for _, tm := range all {
		if slices.Contains(strings.Split(only, ","), tm.Name) {
			out = append(out, tm)
		}
	}
	return out
}

type runKey struct {
	preset, timing string
	scenario       simulate.Scenario
}

// TestSimulate runs every preset under every timing through a standard world and a short-faults
// world, and prints one figures line per preset and timing. By default each run is 30 days (the
// short run of make test); SIM_FULL=1 makes it the standard year (make simulate). SIM_SEED
// replays a seed; SIM_SCHEDULE tries another timer schedule.
func TestSimulate(t *testing.T) {
	full := os.Getenv("SIM_FULL") != ""
	days := 30
	if full {
		days = 365
	}
	seed := uint64(defaultSeed)
	if v := os.Getenv("SIM_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("SIM_SEED=%q: not an unsigned integer", v)
		}
		seed = s
	}
	sched := os.Getenv("SIM_SCHEDULE")
	if sched == "" {
		sched = simulate.DefaultSchedule
	}
	models, err := simulate.Models()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("simulate seed=%d days=%d schedule=%q (replay: SIM_SEED=%d)\n", seed, days, sched, seed)

	var mu sync.Mutex
	results := map[runKey]simulate.Figures{}
	t.Run("worlds", func(t *testing.T) {
		for _, m := range models {
			for _, tm := range timings(full) {
				for _, sc := range []simulate.Scenario{simulate.Standard, simulate.Short} {
					name := m.Preset.Name + "/" + tm.Name + "/" + string(sc)
					t.Run(name, func(t *testing.T) {
						t.Parallel()
						synctest.Test(t, func(t *testing.T) {
							f, err := simulate.Run(context.Background(), simulate.Config{
								Model: m, Scenario: sc, Seed: seed, Length: time.Duration(days) * 24 * time.Hour,
								Schedule: sched, Timing: tm, Backend: storetest.New(),
							})
							if err != nil {
								t.Fatal(err)
							}
							mu.Lock()
							results[runKey{m.Preset.Name, tm.Name, sc}] = f
							mu.Unlock()
						})
					})
				}
			}
		}
	})
	if t.Failed() {
		return
	}

	ts := timings(full)
	var met, n int
	for i, tm := range ts {
		fmt.Printf("policy %s\n", tm.Name)
		k := 0
		for _, m := range models {
			std := results[runKey{m.Preset.Name, tm.Name, simulate.Standard}]
			short := results[runKey{m.Preset.Name, tm.Name, simulate.Short}]
			goal := simulate.Goal(m, std, short.Valid())
			if goal {
				k++
			}
			fmt.Println(simulate.Line(m.Preset.Name, std, short.Valid()))

			// The bound is a lower bound: a run staler than nothing can be, or fresher than the
			// best possible client, means the world or the bound is wrong.
			if std.Avoidable() < -time.Minute {
				t.Errorf("%s/%s: stale %v is less than the unavoidable %v", m.Preset.Name, tm.Name, std.Stale, std.Unavoidable)
			}
			if tm.Name == refresh.DefaultTiming().Name {
				// The default timing: with short faults only, the timing alone decides, and it
				// must keep every preset valid at a cost within the goal.
				if short.Stale > 0 {
					t.Errorf("%s/%s short faults: stale %v; want 0", m.Preset.Name, tm.Name, short.Stale)
				}
				// A token whose due margin outlasts the longest outage (3h, and a tick) can
				// always be kept valid: such presets must meet the goal.
				if (m.Lifetime == 0 || m.Lifetime >= 12*time.Hour) && !goal {
					t.Errorf("%s/%s: misses the goal; a token living %v outlasts every outage of the model", m.Preset.Name, tm.Name, m.Lifetime)
				}
				if max := 2.5 * m.MinRefreshesPerDay(); std.RefreshesPerDay() > max {
					t.Errorf("%s/%s: %.1f refreshes per day; want at most %.1f", m.Preset.Name, tm.Name, std.RefreshesPerDay(), max)
				}
			}
		}
		if i < len(ts)-1 {
			fmt.Printf("policy %s: %d/%d presets meet the goal\n", tm.Name, k, len(models))
		}
		met, n = k, len(models)
	}
	fmt.Printf("simulate: %d/%d presets meet the goal\n", met, n)
}
