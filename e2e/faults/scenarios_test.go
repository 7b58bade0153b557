package faults

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/e2e/faultproxy"
)

// fault is a plan item: the first request of kind on a side from slot gets f.
func fault(slotName, side, kind string, f faultproxy.Fault) *planItem {
	it := &planItem{slot: slotName, side: side, kind: kind, nth: 1, fault: f}
	switch {
	case f == faultproxy.Unavailable:
		it.status = 503
	case (f == faultproxy.SlowDrop || f == faultproxy.SlowAnswer) && side == sideOAuth:
		it.delay = oauthSlow
	case f == faultproxy.SlowDrop || f == faultproxy.SlowAnswer:
		it.delay = azureSlow
	}
	return it
}

// due is a step in which every connection is due and slot runs one pass with plan.
func due(conns []string, passTime bool, slotName string, plan ...*planItem) stepSpec {
	return stepSpec{passTime: passTime, expire: conns, waves: [][]string{{slotName}}, plan: plan}
}

// TestScenarios runs fixed fault sequences, each of which the random runs also draw, so that
// each requirement has a run that replays exactly. Every run ends with the fault-free recovery
// passes of the random runs (time passes; A then B, twice).
func TestScenarios(t *testing.T) {
	one := []string{"alpha"}
	none := func(Run, Verdict) string { return "" }
	tests := []struct {
		name  string
		sc    script
		check func(Run, Verdict) string // beyond no must-be-0 finding
	}{
		{
			"lease write applied, its answer lost",
			script{Strict, one, []stepSpec{due(one, false, "A", fault("A", sideAzure, faultproxy.KindStatusWrite, faultproxy.ResetAfter))}},
			none,
		},
		{
			"gateway 502 after the provider rotated",
			script{Strict, one, []stepSpec{due(one, false, "A", fault("A", sideOAuth, faultproxy.KindRefresh, faultproxy.HTML502))}},
			func(_ Run, v Verdict) string {
				if len(v.Unrecoverable) != 1 {
					return fmt.Sprintf("unrecoverable %v; want [alpha]", v.Unrecoverable)
				}
				return ""
			},
		},
		{
			"pair kept in memory, a newer pair stored meanwhile",
			// B's commit is applied but answered with a page; B keeps the pair in memory. The
			// recovery lets A refresh first, then B's next pass writes what it kept.
			script{Strict, one, []stepSpec{due(one, false, "B", fault("B", sideAzure, faultproxy.KindCommit, faultproxy.HTML200))}},
			none,
		},
		{
			"grace: the repeat after a crash is dropped once",
			script{Grace, one, []stepSpec{
				due(one, false, "A", killAt("A", "after-answer")),
				due(one, true, "B", fault("B", sideOAuth, faultproxy.KindRefresh, faultproxy.SlowDrop)),
			}},
			func(_ Run, v Verdict) string {
				if len(v.GraceRecovered) != 1 {
					return fmt.Sprintf("recovered %v; want [alpha]", v.GraceRecovered)
				}
				return ""
			},
		},
		{
			"grace: kill after the provider answered",
			script{Grace, one, []stepSpec{due(one, false, "A", killAt("A", "after-answer"))}},
			func(_ Run, v Verdict) string {
				if len(v.GraceRecovered) != 1 || v.LossEvents != 1 {
					return fmt.Sprintf("recovered %v losses %d; want [alpha], 1", v.GraceRecovered, v.LossEvents)
				}
				return ""
			},
		},
		{
			"strict: kill after the provider answered",
			script{Strict, one, []stepSpec{due(one, false, "A", killAt("A", "after-answer"))}},
			func(_ Run, v Verdict) string {
				if len(v.Unrecoverable) != 1 || v.LossEvents != 1 {
					return fmt.Sprintf("unrecoverable %v losses %d; want [alpha], 1", v.Unrecoverable, v.LossEvents)
				}
				return ""
			},
		},
		{
			"strict: kill after the lease write",
			script{Strict, one, []stepSpec{due(one, false, "A", killAt("A", "after-lease"))}},
			func(_ Run, v Verdict) string {
				if len(v.Conservative) != 1 || v.LossEvents != 0 {
					return fmt.Sprintf("conservative %v losses %d; want [alpha], 0", v.Conservative, v.LossEvents)
				}
				return ""
			},
		},
		{
			"kill during the commit, after it was applied",
			script{Strict, one, []stepSpec{due(one, false, "A", killAt("A", "commit-after"))}},
			func(r Run, _ Verdict) string {
				if f := r.Final["alpha"]; f.State != stateOK || !f.Accepted {
					return fmt.Sprintf("final %s accepted=%v; want ok, true", f.State, f.Accepted)
				}
				return ""
			},
		},
		{
			"stalled past the lease before the commit, the other process takes over",
			script{Strict, []string{"alpha", "beta"}, []stepSpec{
				due([]string{"alpha", "beta"}, false, "A", &planItem{slot: "A", side: sideAzure, kind: faultproxy.KindCommit, nth: 1, hook: hookStall, at: "before-commit"}),
			}},
			func(r Run, _ Verdict) string {
				for _, c := range r.Conns {
					if f := r.Final[c]; f.State != stateOK || !f.Accepted {
						return fmt.Sprintf("final %s %s accepted=%v; want ok, true", c, f.State, f.Accepted)
					}
				}
				if n := len(r.Steps[0].Invocations); n != 2 {
					return fmt.Sprintf("step 1 ran %d invocations; want 2 (the takeover)", n)
				}
				return ""
			},
		},
		{
			"Azurite restarts after the lease write",
			script{Strict, one, []stepSpec{due(one, false, "A", &planItem{slot: "A", side: sideAzure, kind: faultproxy.KindStatusWrite, nth: 1, hook: hookRestart, at: "after-lease"})}},
			func(r Run, _ Verdict) string {
				if f := r.Final["alpha"]; r.AzuriteRestarts != 1 || f.State != stateOK || !f.Accepted {
					return fmt.Sprintf("restarts %d final %s accepted=%v; want 1, ok, true", r.AzuriteRestarts, f.State, f.Accepted)
				}
				return ""
			},
		},
	}
	h := getHarness(t)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seed := uint64(time.Now().UnixNano())>>1 + uint64(i)
			sc := tt.sc
			rec, out, err := h.run(seed, &sc)
			if err != nil {
				t.Fatalf("the run could not complete: %v\n%s", err, out)
			}
			v := Evaluate(rec)
			msg := tt.check(rec, v)
			if p := v.Problems(); len(p) > 0 || msg != "" {
				t.Errorf("%s\n  %s\n%s", msg, strings.Join(p, "\n  "), out)
			}
		})
	}
}
