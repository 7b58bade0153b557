package schedule

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// guard bounds every wait on Run so a bug fails the test instead of hanging it. It is not an
// assertion on speed: nothing here takes more than microseconds when Run is right.
const guard = 10 * time.Second

// fakeClock is a Clock whose time moves only when the test says. Each new timer is announced on
// created, so the test knows what Run waits for.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*fakeTimer
	created chan *fakeTimer
}

type fakeTimer struct {
	clock    *fakeClock
	deadline time.Time
	c        chan time.Time
	done     bool // fired or stopped
}

func newFakeClock(now time.Time) *fakeClock {
	return &fakeClock{now: now, created: make(chan *fakeTimer, 1000)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	t := &fakeTimer{clock: c, deadline: c.now.Add(d), c: make(chan time.Time, 1)}
	c.timers = append(c.timers, t)
	c.fireDue()
	c.mu.Unlock()
	c.created <- t
	return t
}

// set moves the time to now and fires the timers that are due.
func (c *fakeClock) set(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = now
	c.fireDue()
}

// fireEarly fires t without moving the time, as a real timer may when the wall clock lags.
func (c *fakeClock) fireEarly(t *fakeTimer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !t.done {
		t.done = true
		t.c <- c.now
	}
}

func (c *fakeClock) fireDue() {
	for _, t := range c.timers {
		if !t.done && !t.deadline.After(c.now) {
			t.done = true
			t.c <- c.now
		}
	}
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	was := !t.done
	t.done = true
	return was
}

// harness runs Run on a fake clock and records what it does.
type harness struct {
	t      *testing.T
	clock  *fakeClock
	cancel context.CancelFunc
	ran    chan time.Time // the tick of each job run
	skips  chan time.Time // each skipped tick
	idle   chan struct{}  // Run saw a job finish
	result chan error
	exited chan struct{} // closed once Run has returned
}

// start runs Run for expr from now; job (nil: return at once) runs after its start is recorded.
func start(t *testing.T, expr string, now time.Time, job func(ctx context.Context)) *harness {
	t.Helper()
	s, err := Parse(expr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{
		t: t, clock: newFakeClock(now), cancel: cancel,
		ran: make(chan time.Time, 100), skips: make(chan time.Time, 100),
		idle: make(chan struct{}, 100), result: make(chan error, 1), exited: make(chan struct{}),
	}
	go func() {
		defer close(h.exited)
		h.result <- run(ctx, s, h.clock,
			func(ctx context.Context) {
				tick, ok := Tick(ctx)
				if !ok {
					t.Error("job context has no Tick")
				}
				h.ran <- tick
				if job != nil {
					job(ctx)
				}
			},
			func(tick time.Time) { h.skips <- tick },
			func() { h.idle <- struct{}{} })
	}()
	t.Cleanup(func() {
		cancel()
		<-h.exited
	})
	return h
}

func receive[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(guard):
		t.Fatalf("no %s", what)
		panic("unreachable")
	}
}

// nextTimer returns the timer Run waits on next.
func (h *harness) nextTimer() *fakeTimer {
	h.t.Helper()
	return receive(h.t, h.clock.created, "timer from Run")
}

// advanceTo moves the clock from timer deadline to timer deadline until one is at tick, and
// fails if Run waits past tick.
func (h *harness) advanceTo(tick time.Time) {
	h.t.Helper()
	for {
		tm := h.nextTimer()
		if tm.deadline.After(tick) {
			h.t.Fatalf("Run waits until %v; want a timer at %v", tm.deadline, tick)
		}
		h.clock.set(tm.deadline)
		if tm.deadline.Equal(tick) {
			return
		}
	}
}

func TestRunRunsAtEachTick(t *testing.T) {
	h := start(t, "0 */15 * * * *", utc("2024-05-01T10:07:30Z"), nil)
	for _, tick := range []string{"2024-05-01T10:15:00Z", "2024-05-01T10:30:00Z", "2024-05-01T10:45:00Z"} {
		h.advanceTo(utc(tick))
		if got := receive(t, h.ran, "job run"); !got.Equal(utc(tick)) {
			t.Errorf("job ran for tick %v; want %v", got, tick)
		}
		receive(t, h.idle, "job end")
	}
	if len(h.skips) != 0 {
		t.Errorf("%d ticks skipped; want none", len(h.skips))
	}
	h.cancel()
	if err := receive(t, h.result, "return from Run"); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v; want context.Canceled", err)
	}
}

func TestRunSkipsTicksWhileTheJobRuns(t *testing.T) {
	release := make(chan struct{})
	var active, most atomic.Int32
	h := start(t, "0 */15 * * * *", utc("2024-05-01T10:00:00Z"), func(ctx context.Context) {
		n := active.Add(1)
		if n > most.Load() {
			most.Store(n)
		}
		defer active.Add(-1)
		select {
		case <-release:
		case <-ctx.Done(): // the test failed early
		}
	})

	h.advanceTo(utc("2024-05-01T10:15:00Z"))
	receive(t, h.ran, "first run")
	for _, tick := range []string{"2024-05-01T10:30:00Z", "2024-05-01T10:45:00Z"} {
		h.advanceTo(utc(tick))
		if got := receive(t, h.skips, "skipped tick"); !got.Equal(utc(tick)) {
			t.Errorf("skipped %v; want %v", got, tick)
		}
	}
	release <- struct{}{}
	receive(t, h.idle, "job end")

	h.advanceTo(utc("2024-05-01T11:00:00Z"))
	if got := receive(t, h.ran, "second run"); !got.Equal(utc("2024-05-01T11:00:00Z")) {
		t.Errorf("second run for tick %v; want 11:00", got)
	}
	release <- struct{}{}
	receive(t, h.idle, "job end")
	if len(h.ran) != 0 {
		t.Errorf("%d extra runs; want none", len(h.ran))
	}
	if m := most.Load(); m != 1 {
		t.Errorf("at most %d jobs at once; want 1", m)
	}
}

func TestRunWaitsForTheJobWhenCancelled(t *testing.T) {
	sawCancel := make(chan struct{})
	release := make(chan struct{})
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	var finished atomic.Bool
	h := start(t, "0 */15 * * * *", utc("2024-05-01T10:00:00Z"), func(ctx context.Context) {
		<-ctx.Done()
		close(sawCancel)
		<-release
		finished.Store(true)
	})
	t.Cleanup(free) // runs before start's cleanup, if the test fails early
	h.advanceTo(utc("2024-05-01T10:15:00Z"))
	receive(t, h.ran, "run")

	h.cancel()
	receive(t, sawCancel, "job seeing the cancellation")
	select {
	case err := <-h.result:
		t.Fatalf("Run returned %v while the job was still running", err)
	default:
	}
	free()
	err := receive(t, h.result, "return from Run")
	if !finished.Load() {
		t.Error("Run returned before the job finished")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v; want context.Canceled", err)
	}
}

func TestRunLateTickRunsOnceThenFollowsTheSchedule(t *testing.T) {
	h := start(t, "0 */15 * * * *", utc("2024-05-01T10:00:00Z"), nil)
	// Run looks at the clock at least every maxWait, so it notices a jump of the wall clock.
	if tm := h.nextTimer(); tm.deadline.After(utc("2024-05-01T10:00:00Z").Add(maxWait)) {
		t.Errorf("Run first waits until %v; want at most %v", tm.deadline, maxWait)
	}
	// The clock jumps past three ticks (a suspended machine).
	h.clock.set(utc("2024-05-01T11:07:00Z"))
	if got := receive(t, h.ran, "late run"); !got.Equal(utc("2024-05-01T10:15:00Z")) {
		t.Errorf("late run for tick %v; want 10:15", got)
	}
	receive(t, h.idle, "job end")
	h.advanceTo(utc("2024-05-01T11:15:00Z"))
	if got := receive(t, h.ran, "next run"); !got.Equal(utc("2024-05-01T11:15:00Z")) {
		t.Errorf("next run for tick %v; want 11:15 (missed ticks are not made up)", got)
	}
	if len(h.skips) != 0 {
		t.Errorf("%d ticks skipped; want none (missed ticks are neither made up nor reported)", len(h.skips))
	}
}

func TestRunEarlyTimerDoesNotRepeatTheTick(t *testing.T) {
	h := start(t, "0 */15 * * * *", utc("2024-05-01T10:14:30Z"), nil)
	tm := h.nextTimer()
	if want := utc("2024-05-01T10:15:00Z"); !tm.deadline.Equal(want) {
		t.Fatalf("first timer at %v; want %v", tm.deadline, want)
	}
	h.clock.fireEarly(tm)
	if got := receive(t, h.ran, "run"); !got.Equal(utc("2024-05-01T10:15:00Z")) {
		t.Errorf("run for tick %v; want 10:15", got)
	}
	receive(t, h.idle, "job end")
	h.advanceTo(utc("2024-05-01T10:30:00Z"))
	if got := receive(t, h.ran, "next run"); !got.Equal(utc("2024-05-01T10:30:00Z")) {
		t.Errorf("next run for tick %v; want 10:30 (10:15 ran already)", got)
	}
}

func TestRunZeroScheduleNeverFires(t *testing.T) {
	err := Run(context.Background(), Schedule{}, newFakeClock(utc("2024-05-01T10:00:00Z")),
		func(context.Context) { t.Error("job ran") }, nil)
	if !errors.Is(err, ErrNeverFires) {
		t.Errorf("Run = %v; want ErrNeverFires", err)
	}
}

func TestRunCancelledBeforeStart(t *testing.T) {
	s, err := Parse("* * * * * *")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	clock := newFakeClock(utc("2024-05-01T10:00:00Z"))
	err = Run(ctx, s, clock, func(context.Context) { t.Error("job ran") }, nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v; want context.Canceled", err)
	}
}
