package faults

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
)

var (
	flagSeed = flag.Uint64("seed", 0, "seed of the first run (run i uses seed+i); default FAULT_SEED, else random")
	flagRuns = flag.Int("runs", 0, "number of runs; default FAULT_RUNS, else 12")
)

// defaultRuns keeps `make test` short; `make faults` sets FAULT_RUNS=200.
const defaultRuns = 12

func runCount(t *testing.T) int {
	if *flagRuns > 0 {
		return *flagRuns
	}
	if v := os.Getenv("FAULT_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("FAULT_RUNS=%q: want a positive number", v)
		}
		return n
	}
	return defaultRuns
}

func firstSeed(t *testing.T) uint64 {
	if *flagSeed != 0 {
		return *flagSeed
	}
	if v := os.Getenv("FAULT_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("FAULT_SEED=%q: want a number", v)
		}
		return n
	}
	return rand.Uint64() >> 1
}

// keysFor says whether the run of seed sets TOKEN_ENCRYPTION_KEYS: FAULT_KEYS=1 for every run,
// FAULT_KEYS=0 for none, and by default the runs of odd seeds, so that `make test`'s runs
// include both.
func keysFor(seed uint64) (bool, error) {
	switch v := os.Getenv("FAULT_KEYS"); v {
	case "":
		return seed%2 == 1, nil
	case "1":
		return true, nil
	case "0":
		return false, nil
	default:
		return false, fmt.Errorf("FAULT_KEYS=%q: want 1, 0 or unset", v)
	}
}

// TestFaults runs the seeded fault-injection runs and fails when a must-be-0 figure is not 0,
// naming the seeds to replay. FAULT_VERBOSE=1 prints every run's steps.
func TestFaults(t *testing.T) {
	runs, base := runCount(t), firstSeed(t)
	h := getHarness(t)
	verbose := os.Getenv("FAULT_VERBOSE") != ""
	t.Logf("fault-injection suite: %d runs, first seed=%d", runs, base)
	var sum Summary
	for i := 0; i < runs; i++ {
		seed := base + uint64(i)
		rec, out, err := h.run(seed, nil)
		if err != nil {
			sum.AddBroken(seed)
			t.Logf("seed=%d: the run could not complete: %v\n%s", seed, err, out)
			continue
		}
		v := Evaluate(rec)
		sum.Add(rec, v)
		t.Logf("seed=%d %s", seed, runLine(rec, v))
		if v.Failed() || verbose {
			t.Log("\n" + out)
			for _, p := range v.Problems() {
				t.Logf("  seed=%d: %s", seed, p)
			}
		}
	}
	table := sum.Table()
	t.Log("\n" + table)
	fmt.Println(table)
	for _, o := range sum.Offending() {
		t.Error(o)
	}
}

// runLine is a run in one line: what was injected and how each connection ended.
func runLine(r Run, v Verdict) string {
	faults := 0
	for _, n := range r.Faults {
		faults += n
	}
	passes := 0
	for _, s := range r.Steps {
		passes += len(s.Invocations)
	}
	var ends []string
	for _, c := range r.Conns {
		f := r.Final[c]
		ends = append(ends, fmt.Sprintf("%s=%s/accepted=%v", c, f.State, f.Accepted))
	}
	verdict := "ok"
	if v.Failed() {
		verdict = fmt.Sprintf("FAIL (%d problems)", len(v.Problems()))
	}
	return fmt.Sprintf("mode=%s keys=%v steps=%d passes=%d faults=%d kills=%d azurite-restarts=%d losses=%d %s -> %s",
		r.Mode, r.Keys, len(r.Steps), passes, faults, len(r.Kills), r.AzuriteRestarts, v.LossEvents, strings.Join(ends, " "), verdict)
}
