package simulate

import (
	"math"
	"math/rand/v2"
	"sort"
	"time"
)

// Window is a stretch of time [Start, End).
type Window struct{ Start, End time.Time }

// Contains says whether t is inside w.
func (w Window) Contains(t time.Time) bool { return !t.Before(w.Start) && t.Before(w.End) }

// Windows is a set of windows sorted by Start.
type Windows []Window

// maxWindow bounds the length of every window Draw makes (the 3-hour provider outage), so
// that a lookup only scans the windows starting within maxWindow before t.
const maxWindow = 3 * time.Hour

// around returns the windows that may contain t: those starting in (t − maxWindow, t].
func (ws Windows) around(t time.Time) Windows {
	hi := sort.Search(len(ws), func(i int) bool { return ws[i].Start.After(t) })
	lo := sort.Search(hi, func(i int) bool { return ws[i].Start.After(t.Add(-maxWindow)) })
	return ws[lo:hi]
}

// Contains says whether t is inside any window. ws must be sorted by Start, each window at
// most maxWindow long.
func (ws Windows) Contains(t time.Time) bool {
	for _, w := range ws.around(t) {
		if w.Contains(t) {
			return true
		}
	}
	return false
}

// EndOf is the latest end of the windows containing t; t when none does.
func (ws Windows) EndOf(t time.Time) time.Time {
	end := t
	for _, w := range ws.around(t) {
		if w.Contains(t) && w.End.After(end) {
			end = w.End
		}
	}
	return end
}

func (ws Windows) sorted() Windows {
	sort.Slice(ws, func(i, j int) bool { return ws[i].Start.Before(ws[j].Start) })
	return ws
}

// Faults are a world's fault windows and per-request fault rates, drawn before the run from the
// seed, so that every timing policy meets the same world.
type Faults struct {
	// Provider503 refuse every token request with 503: transient bursts and outages.
	Provider503 Windows
	// Provider429 refuse every token request with 429 and Retry-After (the window's end).
	Provider429 Windows
	// Storage refuse every table call with 503 ServerBusy.
	Storage Windows
	// HostDown: no timer ticks at all (host outages).
	HostDown Windows
	// MissTick is the probability that one tick is missed (a host restart).
	MissTick float64
	// TimeoutRate: the share of refresh requests that time out before the provider processed
	// them. LostRate: the share the provider processed (it rotated) whose answer was lost.
	TimeoutRate, LostRate float64
}

// Scenario names a fault model.
type Scenario string

const (
	// Standard is the standard year of the issue, fixed so figures compare across releases.
	Standard Scenario = "standard"
	// Short has only transient provider and storage bursts, each shorter than a quarter of the
	// access token's lifetime and at most 20 minutes: the timing policy alone decides.
	Short Scenario = "short"
)

const (
	week    = 7 * 24 * time.Hour
	quarter = 365 * 24 * time.Hour / 4
	year    = 365 * 24 * time.Hour
)

// Draw draws the faults of scenario s for a run of length d from start, for tokens living
// lifetime (zero: never expiring). Once-per-quarter and once-per-year faults happen at least
// once in a shorter run, so that a 30-day run still meets each kind.
func Draw(s Scenario, rng *rand.Rand, start time.Time, d, lifetime time.Duration) Faults {
	var f Faults
	poisson := func(mean time.Duration, dur func() time.Duration) Windows {
		var ws Windows
		t := start
		for {
			t = t.Add(time.Duration(rng.ExpFloat64() * float64(mean)))
			if !t.Before(start.Add(d)) {
				return ws
			}
			ws = append(ws, Window{t, t.Add(dur())})
		}
	}
	uniform := func(lo, hi time.Duration) func() time.Duration {
		return func() time.Duration { return lo + time.Duration(rng.Float64()*float64(hi-lo)) }
	}
	// once places one window of length l in each period of length per (at least one in d).
	once := func(per, l time.Duration) Windows {
		n := max(1, int(math.Round(float64(d)/float64(per))))
		span := d / time.Duration(n)
		var ws Windows
		for i := range n {
			at := start.Add(time.Duration(i)*span + time.Duration(rng.Float64()*float64(span-l)))
			ws = append(ws, Window{at, at.Add(l)})
		}
		return ws
	}
	switch s {
	case Short:
		limit := 20 * time.Minute
		if lifetime > 0 {
			limit = min(limit, lifetime/4)
		}
		f.Provider503 = poisson(week/3, uniform(time.Minute, limit))
		f.Storage = poisson(week, uniform(time.Minute, min(5*time.Minute, limit)))
	default:
		f.Provider503 = append(poisson(week/3, uniform(time.Minute, 20*time.Minute)), once(quarter, 3*time.Hour)...).sorted()
		f.Provider429 = poisson(week, func() time.Duration { return 15 * time.Minute })
		f.Storage = append(poisson(week, uniform(time.Minute, 5*time.Minute)), once(year, 30*time.Minute)...).sorted()
		f.HostDown = once(quarter, 2*time.Hour)
		f.MissTick = 0.005
		f.TimeoutRate = 1.0 / 2000
		f.LostRate = 1.0 / 20000
	}
	return f
}
