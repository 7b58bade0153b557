package faults

import (
	"fmt"
	"sort"
	"strings"
)

// Summary adds up the figures of many runs.
type Summary struct {
	Runs, StrictRuns, GraceRuns int
	KeyRuns                     int      // runs with TOKEN_ENCRYPTION_KEYS set
	Broken                      []uint64 // runs the harness could not complete
	Passes                      int
	Faults                      map[string]int
	Kills                       map[string]int
	AzuriteRestarts             int

	// Must be 0, each with the seeds of the runs where it was not.
	ChainsLost, ReuseDetections, Silent, SecretLeaks, Mishandled, Crashes figure

	LossEvents                            int
	UnrecoverableRuns, GraceLossRuns      int // strict runs with an unrecoverable connection; grace runs with a lost answer
	GraceRecovered, WindowClosed          int // connections
	NeedsConsent, Conservative            int // connections
	TransientFailures, TransientRecovered int
}

// figure is a must-be-0 count and the seeds of the runs that made it.
type figure struct {
	N     int
	Seeds []uint64
}

func (f *figure) add(n int, seed uint64) {
	if n > 0 {
		f.N += n
		f.Seeds = append(f.Seeds, seed)
	}
}

// Add counts one run.
func (s *Summary) Add(r Run, v Verdict) {
	if s.Faults == nil {
		s.Faults, s.Kills = map[string]int{}, map[string]int{}
	}
	s.Runs++
	if r.Keys {
		s.KeyRuns++
	}
	if r.Mode == Grace {
		s.GraceRuns++
	} else {
		s.StrictRuns++
	}
	for _, st := range r.Steps {
		s.Passes += len(st.Invocations)
	}
	for k, n := range r.Faults {
		s.Faults[k] += n
	}
	for _, k := range r.Kills {
		s.Kills[k.At]++
	}
	s.AzuriteRestarts += r.AzuriteRestarts

	s.ChainsLost.add(len(v.ChainsLost), r.Seed)
	s.ReuseDetections.add(v.ReuseDetections, r.Seed)
	s.Silent.add(len(v.Silent), r.Seed)
	s.SecretLeaks.add(len(v.SecretLeaks), r.Seed)
	s.Mishandled.add(len(v.Mishandled), r.Seed)
	s.Crashes.add(len(v.Crashes), r.Seed)

	s.LossEvents += v.LossEvents
	switch {
	case r.Mode == Grace:
		if v.LossEvents > 0 {
			s.GraceLossRuns++
		}
		s.WindowClosed += len(v.Unrecoverable)
	case len(v.Unrecoverable) > 0:
		s.UnrecoverableRuns++
	}
	s.GraceRecovered += len(v.GraceRecovered)
	s.NeedsConsent += len(v.NeedsConsent)
	s.Conservative += len(v.Conservative)
	s.TransientFailures += v.TransientFailures
	s.TransientRecovered += v.TransientRecovered
}

// AddBroken counts a run the harness could not complete.
func (s *Summary) AddBroken(seed uint64) { s.Broken = append(s.Broken, seed) }

// Offending lists the must-be-0 figures that are not, with their seeds; broken runs too.
func (s *Summary) Offending() []string {
	var out []string
	for _, f := range s.figures() {
		if f.f.N > 0 {
			out = append(out, fmt.Sprintf("%s = %d (must be 0); seeds: %s", f.name, f.f.N, seeds(f.f.Seeds)))
		}
	}
	if len(s.Broken) > 0 {
		out = append(out, fmt.Sprintf("runs the harness could not complete = %d; seeds: %s", len(s.Broken), seeds(s.Broken)))
	}
	return out
}

type namedFigure struct {
	name string
	f    figure
}

func (s *Summary) figures() []namedFigure {
	return []namedFigure{
		{"refresh chains lost", s.ChainsLost},
		{"reuse detections", s.ReuseDetections},
		{"silent failures", s.Silent},
		{"secrets in logs", s.SecretLeaks},
		{"unrecoverable losses mishandled", s.Mishandled},
		{"handler crashes", s.Crashes},
	}
}

func seeds(ss []uint64) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = fmt.Sprint(s)
	}
	return strings.Join(parts, " ")
}

// Table renders the summary.
func (s *Summary) Table() string {
	var b strings.Builder
	row := func(name string, v any) { fmt.Fprintf(&b, "  %-52s %v\n", name, v) }
	b.WriteString("fault-injection summary\n")
	row("runs (strict / grace)", fmt.Sprintf("%d (%d / %d)", s.Runs, s.StrictRuns, s.GraceRuns))
	row("runs with TOKEN_ENCRYPTION_KEYS", s.KeyRuns)
	row("passes (timer invocations)", s.Passes)
	b.WriteString("must be 0:\n")
	for _, f := range s.figures() {
		row(f.name, f.f.N)
	}
	row("runs the harness could not complete", len(s.Broken))
	b.WriteString("counted apart:\n")
	row("answers lost after the server processed them", s.LossEvents)
	row("unrecoverable strict runs (a rotated pair never arrived)", s.UnrecoverableRuns)
	row("grace runs with a lost answer", s.GraceLossRuns)
	row("  connections recovered by an identical repeat", s.GraceRecovered)
	row("  connections whose grace window closed first", s.WindowClosed)
	row("connections left needing consent", s.NeedsConsent)
	row("  conservative (chain still intact at the server)", s.Conservative)
	row("transient failures (later refreshed)", fmt.Sprintf("%d (%d)", s.TransientFailures, s.TransientRecovered))
	row("Azurite restarts", s.AzuriteRestarts)
	b.WriteString("kills by step:\n")
	for _, k := range sortedKeys(s.Kills) {
		row(k, s.Kills[k])
	}
	b.WriteString("faults injected (side/request kind/fault):\n")
	for _, k := range sortedKeys(s.Faults) {
		row(k, s.Faults[k])
	}
	if off := s.Offending(); len(off) > 0 {
		b.WriteString("offending runs:\n")
		for _, o := range off {
			b.WriteString("  " + o + "\n")
		}
		b.WriteString("replay one: cd e2e && FAULT_SEED=<seed> FAULT_RUNS=1 go test -count=1 -run TestFaults -v ./faults/\n")
	}
	return b.String()
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
