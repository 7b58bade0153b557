package simulate

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// Figures are what one run measured. Every one is counted in the simulated run except
// Unavoidable, the bound from the world's fault windows (see Unavoidable).
type Figures struct {
	Length      time.Duration
	Stale       time.Duration // time the stored access token was not accepted by the provider
	LongestGap  time.Duration // the longest such stretch
	Unavoidable time.Duration
	Requests    int // refresh requests that reached the provider
	Consents    int // reconnections the person had to make
	// LostInFlight counts refresh answers lost after the provider acted.
	LostInFlight int
}

// Valid is the share of the run, in percent, in which the stored access token was valid.
func (f Figures) Valid() float64 {
	if f.Length <= 0 {
		return 0
	}
	return 100 * (1 - float64(f.Stale)/float64(f.Length))
}

// Avoidable is the stale time freshtoken's own decisions cost.
func (f Figures) Avoidable() time.Duration { return f.Stale - f.Unavoidable }

// RefreshesPerDay is the cost.
func (f Figures) RefreshesPerDay() float64 {
	return float64(f.Requests) / (float64(f.Length) / float64(24*time.Hour))
}

// measure reads the stale time from the timeline of stored access tokens, each counted valid
// only while the provider would accept it (unexpired and not revoked).
func measure(tl []Stored, p *Provider, start, end time.Time) Figures {
	var f Figures
	var gapStart, gapEnd time.Time
	inGap := false
	stale := func(from, to time.Time) {
		if !to.After(from) {
			return
		}
		f.Stale += to.Sub(from)
		if inGap && !from.After(gapEnd) {
			gapEnd = maxTime(gapEnd, to)
			return
		}
		if inGap {
			f.LongestGap = max(f.LongestGap, gapEnd.Sub(gapStart))
		}
		gapStart, gapEnd, inGap = from, to, true
	}
	if len(tl) == 0 {
		stale(start, end)
	} else if tl[0].At.After(start) {
		stale(start, minTime(tl[0].At, end))
	}
	for i, s := range tl {
		from := maxTime(s.At, start)
		to := end
		if i+1 < len(tl) {
			to = minTime(tl[i+1].At, end)
		}
		if !to.After(from) {
			continue
		}
		until, ok := p.ValidUntil(s.AccessToken)
		switch {
		case ok && (until.IsZero() || !until.Before(to)):
		case ok && until.After(from):
			stale(until, to)
		default:
			stale(from, to)
		}
	}
	if inGap {
		f.LongestGap = max(f.LongestGap, gapEnd.Sub(gapStart))
	}
	return f
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Unavoidable is the stale time that the best possible client would still suffer in the same
// world, knowing every fault in advance. That client can obtain a token only at a usable
// instant: the start (the first consent), a timer tick that fired while the provider and the
// storage both answered (good), or a reconnection. A token obtained at u lives lifetime, so
// with usable instants u1 < u2 < ... in the run [start, end):
//
//	unavoidable = Σ max(0, u(i+1) − u(i) − lifetime) + max(0, end − u(last) − lifetime)
//
// lost are the answers lost in flight at a provider where that costs the grant (strict
// rotation): from each such x until the person reconnects at x + delay, no tick is usable,
// and x + delay is. A lifetime of zero never expires: nothing is unavoidable.
func Unavoidable(lifetime time.Duration, start, end time.Time, good, lost []time.Time, delay time.Duration) time.Duration {
	if lifetime <= 0 {
		return 0
	}
	usable := []time.Time{start}
	for _, t := range good {
		dead := false
		for _, x := range lost {
			if !t.Before(x) && t.Before(x.Add(delay)) {
				dead = true
				break
			}
		}
		if !dead {
			usable = append(usable, t)
		}
	}
	for _, x := range lost {
		if r := x.Add(delay); r.Before(end) {
			usable = append(usable, r)
		}
	}
	sort.Slice(usable, func(i, j int) bool { return usable[i].Before(usable[j]) })
	var sum time.Duration
	for i, u := range usable {
		next := end
		if i+1 < len(usable) {
			next = usable[i+1]
		}
		if gap := next.Sub(u) - lifetime; gap > 0 {
			sum += gap
		}
	}
	return sum
}

// Goal says whether a preset's figures meet the goals: avoidable at most 5 minutes in the
// standard year, 100.0000% valid with short faults only, and at most 2.5 times the refreshes
// per day that the token lifetime forces.
func Goal(m Model, std Figures, shortValid float64) bool {
	return std.Avoidable() <= 5*time.Minute &&
		floor4(shortValid) == 100 &&
		std.RefreshesPerDay() <= 2.5*m.MinRefreshesPerDay()+1e-9
}

// Line is the figures line of one preset.
func Line(preset string, std Figures, shortValid float64) string {
	mins := func(d time.Duration) string { return fmt.Sprintf("%.1fm", d.Minutes()) }
	return fmt.Sprintf("freshness %s valid=%.4f%% stale=%s unavoidable=%s avoidable=%s longest_gap=%s refreshes_per_day=%.1f consents=%d lost_in_flight=%d short_faults_valid=%.4f%%",
		preset, floor4(std.Valid()), mins(std.Stale), mins(std.Unavoidable), mins(std.Avoidable()), mins(std.LongestGap),
		std.RefreshesPerDay(), std.Consents, std.LostInFlight, floor4(shortValid))
}

// floor4 rounds a percentage down at the fourth decimal, so that 100.0000% means no stale
// time worth a 10^-6 share of the run.
func floor4(v float64) float64 { return math.Floor(v*1e4) / 1e4 }
