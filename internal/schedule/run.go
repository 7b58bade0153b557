package schedule

import (
	"context"
	"errors"
	"time"
)

// Clock is the time source Run reads and waits on. SystemClock is the real one; tests pass a
// fake that fires timers when told to.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer that Run uses.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

// SystemClock returns the wall clock with real timers.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTimer(d time.Duration) Timer { return systemTimer{time.NewTimer(d)} }

type systemTimer struct{ t *time.Timer }

func (t systemTimer) C() <-chan time.Time { return t.t.C }
func (t systemTimer) Stop() bool          { return t.t.Stop() }

// tickKey is the context key under which Run passes a job its tick.
type tickKey struct{}

// Tick returns the scheduled time of the run whose job was given ctx by Run. It differs from
// the time the job starts when the tick comes late.
func Tick(ctx context.Context) (time.Time, bool) {
	t, ok := ctx.Value(tickKey{}).(time.Time)
	return t, ok
}

// ErrNeverFires is returned by Run for a schedule with no next occurrence (the zero Schedule).
var ErrNeverFires = errors.New("schedule: the schedule has no next occurrence")

// maxWait caps a single wait so that a wall clock that jumps (a suspended laptop, an NTP step)
// is noticed within a minute rather than after the whole interval.
const maxWait = time.Minute

// Run calls job at each occurrence of s until ctx is done, then waits for a running job to
// return and returns ctx.Err(). It never runs two jobs at once: when a tick comes while the
// previous job is still running, the tick is dropped and skipped (if not nil) is told its time.
// Ticks missed while the process was not running or the clock jumped are not made up: one late
// tick runs, then the schedule continues from the current time. job gets ctx and should return
// soon after ctx is done; Tick(ctx) tells it the time it was scheduled for. A nil clock is
// SystemClock().
func Run(ctx context.Context, s Schedule, clock Clock, job func(ctx context.Context), skipped func(tick time.Time)) error {
	return run(ctx, s, clock, job, skipped, nil)
}

// run is Run with idle, called each time Run has seen a job finish (tests wait on it).
func run(ctx context.Context, s Schedule, clock Clock, job func(ctx context.Context), skipped func(tick time.Time), idle func()) error {
	if clock == nil {
		clock = SystemClock()
	}
	var (
		running bool
		// done has room for the single job that can run, so its goroutine never blocks.
		done = make(chan struct{}, 1)
	)
	finished := func() {
		running = false
		if idle != nil {
			idle()
		}
	}
	wait := func() {
		if running {
			<-done
			finished()
		}
	}

	next := s.Next(clock.Now())
	for {
		if next.IsZero() {
			wait()
			return ErrNeverFires
		}
		d := next.Sub(clock.Now())
		capped := d > maxWait
		if capped {
			d = maxWait
		}
		timer := clock.NewTimer(d)
		for fired := false; !fired; {
			select {
			case <-ctx.Done():
				timer.Stop()
				wait()
				return ctx.Err()
			case <-done:
				finished()
			case <-timer.C():
				fired = true
			}
		}
		if ctx.Err() != nil { // both were ready and select picked the timer
			wait()
			return ctx.Err()
		}
		if capped && clock.Now().Before(next) {
			continue
		}

		tick := next
		if running {
			// A job that ended as the timer fired is not running: select picks either at random.
			select {
			case <-done:
				finished()
			default:
			}
		}
		if running {
			if skipped != nil {
				skipped(tick)
			}
		} else {
			running = true
			jobCtx := context.WithValue(ctx, tickKey{}, tick)
			go func() {
				defer func() { done <- struct{}{} }()
				job(jobCtx)
			}()
		}
		// From the later of now and tick: a timer that fires a little early must not run the
		// same tick twice.
		now := clock.Now()
		if now.Before(tick) {
			now = tick
		}
		next = s.Next(now)
	}
}
