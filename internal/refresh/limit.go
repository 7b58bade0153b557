package refresh

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/freshtoken/freshtoken/internal/provider"
)

// errNotNow: a refresh was not started in this pass (the pass is ending, or the provider app's
// rate limit or a 429 holds it past the pass's last start); the next pass takes it first.
var errNotNow = errors.New("left for the next pass")

// limiter paces each provider app's token requests under its published limits (sliding
// windows, first come first served), and holds all of an app's requests while the provider
// asked it to wait (a 429). It lives as long as the Refresher, so limits carry over from pass
// to pass in one process; two processes each keep their own count. It runs on the Refresher's
// clock (Options.Now), as the stored NextAttempt does.
type limiter struct {
	now func() time.Time

	mu   sync.Mutex
	apps map[string]*appLimit
}

type appLimit struct {
	windows []*window
	paused  time.Time // no request before this (Retry-After of a 429)
	last    time.Time // the latest slot handed out: slots are handed out in order
}

// window remembers the times of the last Requests slots of one limit.
type window struct {
	per  time.Duration
	ring []time.Time
	next int // the oldest slot once the ring is full
	full bool
}

func newLimiter(now func() time.Time) *limiter {
	return &limiter{now: now, apps: map[string]*appLimit{}}
}

func (l *limiter) app(name string, limits []provider.RateLimit) *appLimit {
	a := l.apps[name]
	if a == nil {
		a = &appLimit{}
		for _, lim := range limits {
			if lim.Requests > 0 && lim.Per > 0 && !lim.PerUser {
				a.windows = append(a.windows, &window{per: lim.Per, ring: make([]time.Time, lim.Requests)})
			}
		}
		l.apps[name] = a
	}
	return a
}

// reserve hands out the earliest slot for one request of app, or errNotNow when that slot is
// more than budget away (budget < 0: no bound). It returns how long to wait for the slot.
func (l *limiter) reserve(app string, limits []provider.RateLimit, budget time.Duration) (time.Duration, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	a := l.app(app, limits)
	at := now
	if a.paused.After(at) {
		at = a.paused
	}
	for _, w := range a.windows {
		if w.full {
			if free := w.ring[w.next].Add(w.per); free.After(at) {
				at = free
			}
		}
	}
	if len(a.windows) > 0 && a.last.After(at) {
		at = a.last
	}
	if budget >= 0 && at.Sub(now) > budget {
		return 0, errNotNow
	}
	for _, w := range a.windows {
		w.ring[w.next] = at
		w.next++
		if w.next == len(w.ring) {
			w.next, w.full = 0, true
		}
	}
	a.last = at
	return at.Sub(now), nil
}

// pause holds every request of app until until.
func (l *limiter) pause(app string, until time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.app(app, nil)
	if until.After(a.paused) {
		a.paused = until
	}
}

// defaultPause is how long an app is held after a 429 without Retry-After.
const defaultPause = time.Minute

// lastStart is when a pass running under ctx starts its last refresh: the time a refresh needs
// (Options.Reserve) before ctx's deadline. Zero when ctx has no deadline.
func (r *Refresher) lastStart(ctx context.Context) time.Time {
	d, ok := ctx.Deadline()
	if !ok {
		return time.Time{}
	}
	return d.Add(-r.o.Reserve)
}

// admit waits until a refresh of an account of app may start: before the pass's last start, and within c's
// provider app's rate limits. errNotNow says it may not start in this pass.
func (r *Refresher) admit(ctx context.Context, app string, p provider.Preset) error {
	budget := time.Duration(-1)
	if last := r.lastStart(ctx); !last.IsZero() {
		// Contexts run on the wall clock.
		if budget = time.Until(last); budget <= 0 {
			return errNotNow
		}
	}
	wait, err := r.limits.reserve(app, p.AppRateLimits(), budget)
	if err != nil || wait <= 0 {
		return err
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return errNotNow
	case <-t.C:
		return nil
	}
}
