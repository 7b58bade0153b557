package faults

import (
	"fmt"
	"sort"
	"time"

	"github.com/freshtoken/freshtoken/e2e/faultproxy"
)

// Plan hooks.
const (
	hookKillBefore = "kill-before"
	hookKillAfter  = "kill-after"
	hookRestart    = "restart-azurite"
	hookRefuse     = "refuse" // the OAuth2 proxy of the slot refuses connections for the step
	// hookStall freezes a pass before its commit until its lease has expired and the other
	// process has run a pass (a takeover), as a paused VM or a long GC would.
	hookStall = "stall"
)

// anySlot in a plan item matches requests from either process, counted together.
const anySlot = "*"

// planItem is one fault or hook drawn for a step: it acts on the nth request of a kind that
// a slot's proxy (or either, for anySlot) on a side sees during the step. A kill kills the
// process that sent the request.
type planItem struct {
	slot, side, kind string
	nth              int
	fault            faultproxy.Fault
	status           int
	delay            time.Duration
	hook             string
	at               string // the label of a kill or restart
	used             bool
}

func (p *planItem) String() string {
	if p.hook == hookRefuse {
		return p.slot + " oauth refuses connections"
	}
	s := fmt.Sprintf("%s %s %s#%d", p.slot, p.side, p.kind, p.nth)
	if p.fault != "" {
		s += " " + string(p.fault)
		if p.status != 0 {
			s += fmt.Sprintf("(%d)", p.status)
		}
	}
	if p.hook != "" {
		s += " " + p.hook + "(" + p.at + ")"
	}
	return s
}

// drawStep draws a step: whether time passes, which connections become due, the invocations
// and the faults.
func (r *runner) drawStep() stepSpec {
	sp := stepSpec{passTime: r.rng.Float64() < 0.7}
	for _, c := range r.rec.Conns {
		if r.rng.Float64() < 0.85 {
			sp.expire = append(sp.expire, c)
		}
	}
	sp.waves = r.drawWaves()
	sp.plan = r.drawPlan(sp.waves)
	return sp
}

// drawWaves chooses the step's invocations: waves run one after the other, the invocations of
// a wave at once.
func (r *runner) drawWaves() [][]string {
	one := func() string { return []string{"A", "B"}[r.rng.IntN(2)] }
	switch x := r.rng.Float64(); {
	case x < 0.35:
		return [][]string{{one()}}
	case x < 0.65:
		return [][]string{{"A", "B"}}
	case x < 0.80:
		s := one()
		return [][]string{{s, s}}
	case x < 0.92:
		return [][]string{{"A"}, {"B"}}
	default:
		return [][]string{{"A", "B", "A"}}
	}
}

type weighted struct {
	fault faultproxy.Fault
	w     int
}

func (r *runner) choose(ws []weighted) faultproxy.Fault {
	total := 0
	for _, w := range ws {
		total += w.w
	}
	n := r.rng.IntN(total)
	for _, w := range ws {
		if n < w.w {
			return w.fault
		}
		n -= w.w
	}
	return faultproxy.Pass
}

// drawPlan draws the step's faults, kills and restarts, on the slots that are invoked.
func (r *runner) drawPlan(waves [][]string) []*planItem {
	var invoked []string
	seen := map[string]bool{}
	for _, w := range waves {
		for _, s := range w {
			if !seen[s] {
				seen[s] = true
				invoked = append(invoked, s)
			}
		}
	}
	sort.Strings(invoked)
	// Most faults hit whichever process makes the request; some wait for a given one.
	pick := func() string {
		if r.rng.Float64() < 0.7 {
			return anySlot
		}
		return invoked[r.rng.IntN(len(invoked))]
	}
	var plan []*planItem
	if r.rng.Float64() < 0.6 {
		it := &planItem{slot: pick(), side: sideOAuth, kind: faultproxy.KindRefresh, nth: 1}
		if r.rng.Float64() < 0.2 {
			it.nth = 2
		}
		r.oauthFault(it)
		plan = append(plan, it)
		if r.rng.Float64() < 0.2 {
			// A second fault on the next refresh: the repeat, or the other connection.
			it2 := &planItem{slot: it.slot, side: sideOAuth, kind: faultproxy.KindRefresh, nth: it.nth + 1}
			r.oauthFault(it2)
			plan = append(plan, it2)
		}
	}
	if r.rng.Float64() < 0.5 {
		kinds := []string{faultproxy.KindQuery, faultproxy.KindStatusWrite, faultproxy.KindCommit}
		it := &planItem{slot: pick(), side: sideAzure, kind: kinds[r.rng.IntN(len(kinds))], nth: 1}
		r.azureFault(it)
		plan = append(plan, it)
	}
	if r.rng.Float64() < 0.3 {
		plan = append(plan, r.killItem(pick()))
	}
	if r.rng.Float64() < 0.08 {
		it := &planItem{slot: pick(), nth: 1, hook: hookRestart}
		if r.rng.IntN(2) == 0 {
			it.side, it.kind, it.at = sideAzure, faultproxy.KindStatusWrite, "after-lease"
		} else {
			it.side, it.kind, it.at = sideOAuth, faultproxy.KindRefresh, "after-answer"
		}
		plan = append(plan, it)
	}
	if r.rng.Float64() < 0.06 {
		plan = append(plan, &planItem{slot: invoked[r.rng.IntN(len(invoked))], side: sideOAuth, hook: hookRefuse})
	}
	if r.rng.Float64() < 0.07 {
		plan = append(plan, &planItem{slot: pick(), side: sideAzure, kind: faultproxy.KindCommit, nth: 1, hook: hookStall, at: "before-commit"})
	}
	return plan
}

func (r *runner) oauthFault(it *planItem) {
	it.fault = r.choose([]weighted{
		{faultproxy.Unavailable, 2}, {faultproxy.RateLimited, 2}, {faultproxy.SlowDrop, 1},
		{faultproxy.ResetBefore, 1}, {faultproxy.HTMLUnforwarded, 1}, {faultproxy.ResetAfter, 2},
		{faultproxy.SlowAnswer, 1}, {faultproxy.Malformed200, 1}, {faultproxy.HTML200, 1}, {faultproxy.HTML502, 1},
	})
	switch it.fault {
	case faultproxy.Unavailable:
		it.status = []int{500, 502, 503, 504}[r.rng.IntN(4)]
	case faultproxy.SlowDrop, faultproxy.SlowAnswer:
		it.delay = oauthSlow
	}
}

func (r *runner) azureFault(it *planItem) {
	ws := []weighted{
		{faultproxy.Unavailable, 2}, {faultproxy.RateLimited, 2}, {faultproxy.ResetBefore, 2},
		{faultproxy.ResetAfter, 2}, {faultproxy.Malformed200, 1}, {faultproxy.HTML200, 1}, {faultproxy.HTML502, 1},
	}
	if it.kind == faultproxy.KindCommit {
		ws = append(ws, weighted{faultproxy.HTMLUnforwarded, 1})
	}
	// A slow table answer costs the store's 10 s time-out: at most one a run.
	if !r.slowAzureUsed && r.rng.Float64() < 0.12 {
		r.slowAzureUsed = true
		ws = []weighted{{faultproxy.SlowDrop, 1}, {faultproxy.SlowAnswer, 1}}
	}
	it.fault = r.choose(ws)
	switch it.fault {
	case faultproxy.Unavailable:
		it.status = []int{500, 502, 503}[r.rng.IntN(3)]
	case faultproxy.SlowDrop, faultproxy.SlowAnswer:
		it.delay = azureSlow
	}
}

// killItem draws a SIGKILL at a step of a refresh.
func (r *runner) killItem(slotName string) *planItem {
	return killAt(slotName, []string{"after-lease", "after-answer", "commit-before", "commit-after"}[r.rng.IntN(4)])
}

// killAt is a SIGKILL of the process that makes the first request of a step of a refresh:
// after its lease write was answered, after the provider answered its refresh, before its
// commit reaches the table, or after the commit was applied.
func killAt(slotName, at string) *planItem {
	switch at {
	case "after-lease":
		return &planItem{slot: slotName, side: sideAzure, kind: faultproxy.KindStatusWrite, nth: 1, hook: hookKillAfter, at: at}
	case "after-answer":
		return &planItem{slot: slotName, side: sideOAuth, kind: faultproxy.KindRefresh, nth: 1, hook: hookKillAfter, at: at}
	case "commit-before":
		return &planItem{slot: slotName, side: sideAzure, kind: faultproxy.KindCommit, nth: 1, fault: faultproxy.ResetBefore, hook: hookKillBefore, at: at}
	case "commit-after":
		return &planItem{slot: slotName, side: sideAzure, kind: faultproxy.KindCommit, nth: 1, hook: hookKillAfter, at: at}
	}
	panic("no kill step " + at)
}
