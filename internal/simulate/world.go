package simulate

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"time"

	"github.com/freshtoken/freshtoken/internal/connection"
	"github.com/freshtoken/freshtoken/internal/refresh"
	"github.com/freshtoken/freshtoken/internal/schedule"
	"github.com/freshtoken/freshtoken/internal/store"
	"github.com/freshtoken/freshtoken/internal/tokenclient"
	"github.com/rs/zerolog"
)

// Config is one simulated run.
type Config struct {
	Model    Model
	Scenario Scenario
	// Seed draws the world; the same seed, model and scenario give the same world whatever
	// the timing, so timings compare on equal terms.
	Seed   uint64
	Length time.Duration
	// Schedule is the timer's NCRONTAB expression; "" means DefaultSchedule.
	Schedule string
	Timing   refresh.Timing
	// Backend is the in-memory token table (storetest.Memory), empty.
	Backend Backend
	// PersonDelay is how long after a connection starts needing consent the person reconnects;
	// zero means 6h. Warned of a known refresh-token deadline, they reconnect a day before it.
	PersonDelay time.Duration
}

// DefaultSchedule is the product's default REFRESH_SCHEDULE (internal/config).
const DefaultSchedule = "0 */15 * * * *"

// connName is the one connection of a world.
const connName = "sim"

// passTimeout is the handler's bound on one RefreshTimer pass (handler/run.go).
const passTimeout = 4*time.Minute + 30*time.Second

// Run simulates c from time.Now() on. Run it inside a synctest bubble: it sleeps through the
// whole run.
func Run(ctx context.Context, c Config) (Figures, error) {
	if c.Schedule == "" {
		c.Schedule = DefaultSchedule
	}
	if c.PersonDelay <= 0 {
		c.PersonDelay = 6 * time.Hour
	}
	sched, err := schedule.Parse(c.Schedule)
	if err != nil {
		return Figures{}, fmt.Errorf("simulate: schedule %q: %w", c.Schedule, err)
	}
	start := time.Now()
	end := start.Add(c.Length)
	if c.Timing.Gap > 0 {
		// As the handler does: a timing that counts in passes learns the schedule's gaps.
		c.Timing.Gap = sched.LongestGap(start, 2000)
	}
	m := c.Model
	h := fnv.New64a()
	fmt.Fprintf(h, "%s/%s", m.Preset.Name, c.Scenario)
	worldRNG := rand.New(rand.NewPCG(c.Seed, h.Sum64()))
	faults := Draw(c.Scenario, worldRNG, start, c.Length, m.Lifetime)
	prov := NewProvider(m, faults, rand.New(rand.NewPCG(c.Seed, h.Sum64()^1)))
	st := NewStore(c.Backend, faults.Storage, prov.Use)
	jitterRNG := rand.New(rand.NewPCG(c.Seed, h.Sum64()^2))
	tickRNG := rand.New(rand.NewPCG(c.Seed, h.Sum64()^3))

	client := tokenclient.For(tokenclient.Options{
		Preset: m.Preset, ClientID: "sim-client", ClientSecret: "sim-client-secret-not-real",
		Scopes: []string{"read"}, RedirectURL: "https://freshtoken.example/api/callback/" + connName,
		Timeout: tokenclient.DefaultTimeout, HTTPClient: prov.HTTPClient(tokenclient.DefaultTimeout), Now: time.Now,
	})
	conn := &connection.Connection{
		Name: connName, Preset: m.Preset, Scopes: []string{"read"},
		RedirectURL:  "https://freshtoken.example/api/callback/" + connName,
		AuthorizeURL: "https://freshtoken.example/api/authorize/" + connName,
		Client:       client,
	}
	process := 0
	newRefresher := func() *refresh.Refresher {
		// A new process: whatever the last one kept in memory is gone.
		process++
		return refresh.New(refresh.Options{
			Store:         st,
			Connections:   []*connection.Connection{conn},
			Timing:        c.Timing,
			LeaseDuration: refresh.DefaultLease,
			Owner:         fmt.Sprintf("host-%d", process),
			Now:           time.Now,
			Log:           zerolog.Nop(),
			Jitter:        func() float64 { return 0.8 + 0.4*jitterRNG.Float64() },
		})
	}

	w := &world{c: c, prov: prov, st: st}
	if err := w.consent(ctx, false); err != nil {
		return Figures{}, err
	}
	r := newRefresher()
	var fired []time.Time
	restart := false
	for last := start; ; {
		tick := sched.Next(last)
		if !w.reconnectAt.IsZero() && w.reconnectAt.Before(tick) && w.reconnectAt.Before(end) {
			sleepUntil(w.reconnectAt)
			if err := w.consent(ctx, true); err != nil {
				w.reconnectAt = time.Now().Add(5 * time.Minute) // the person tries again
			} else {
				w.reconnectAt = time.Time{}
			}
			continue
		}
		if !tick.Before(end) {
			break
		}
		sleepUntil(tick)
		last = tick
		if faults.HostDown.Contains(tick) || tickRNG.Float64() < faults.MissTick {
			restart = true
			continue
		}
		if restart {
			r, restart = newRefresher(), false
		}
		pctx, cancel := context.WithTimeout(ctx, passTimeout)
		r.Run(pctx)
		cancel()
		fired = append(fired, tick)
		w.watch(ctx)
	}
	sleepUntil(end)

	f := measure(st.Timeline(), prov, start, end)
	f.Length = c.Length
	f.Requests = prov.Requests()
	f.Consents = w.consents
	f.LostInFlight = len(prov.Lost())
	var good []time.Time
	for _, t := range fired {
		if !faults.Provider503.Contains(t) && !faults.Provider429.Contains(t) && !faults.Storage.Contains(t) {
			good = append(good, t)
		}
	}
	var lost []time.Time
	if m.StrictLoss() {
		lost = prov.Lost()
	}
	f.Unavoidable = Unavoidable(m.Lifetime, start, end, good, lost, c.PersonDelay)
	return f, nil
}

func sleepUntil(t time.Time) {
	if d := time.Until(t); d > 0 {
		time.Sleep(d)
	}
}

// world is the state of the person and the consents.
type world struct {
	c           Config
	prov        *Provider
	st          *Store
	reconnectAt time.Time
	consents    int
}

// watch is the person reading the Status row after a pass: a connection that needs consent is
// reconnected PersonDelay after it started needing it, and a known refresh-token deadline
// that the product warns of a day before that deadline.
func (w *world) watch(ctx context.Context) {
	if !w.reconnectAt.IsZero() {
		return
	}
	rec, err := w.st.Peek(ctx, connName)
	if err != nil {
		return
	}
	now := time.Now()
	switch s := rec.Status; {
	case s.State == store.StateNeedsConsent:
		since := s.LastFailure
		if since.IsZero() || since.After(now) {
			since = now
		}
		w.reconnectAt = since.Add(w.c.PersonDelay)
	case s.Warning != "" && !s.RefreshDeadline.IsZero():
		w.reconnectAt = s.RefreshDeadline.Add(-24 * time.Hour)
		if w.reconnectAt.Before(now) {
			w.reconnectAt = now
		}
	}
}

// consent is a person going through Authorize and Callback: the provider issues a new grant
// and the pair is stored as Callback stores it.
func (w *world) consent(ctx context.Context, again bool) error {
	now := time.Now()
	if !w.prov.Available(now) {
		return errors.New("the provider is down")
	}
	is := w.prov.Consent(now)
	t := store.Tokens{AccessToken: is.AccessToken, TokenType: "Bearer", ExpiresAt: is.Expiry, Scope: "read",
		RefreshToken: is.RefreshToken, RefreshExpiresAt: is.RefreshExpiry}
	p := w.c.Model.Preset
	var gen int64
	if rec, err := w.st.Peek(ctx, connName); err == nil {
		gen = rec.Status.Generation
	}
	st := store.Status{State: store.StateOK, Provider: p.Name, GrantedScopes: "read", ConnectedAt: now, LastSuccess: now, Generation: gen + 1}
	if err := w.st.SaveConsent(ctx, connName, t, st); err != nil {
		return fmt.Errorf("simulate: store the consent: %w", err)
	}
	if again {
		w.consents++
	}
	return nil
}
