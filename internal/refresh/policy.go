package refresh

import (
	"strings"
	"time"

	"github.com/freshtoken/freshtoken/internal/provider"
)

// Timing decides when a stored access token is due for a refresh, and when a failed refresh is
// tried again. Its zero value is FixedTiming(30m): today's fixed margin and back-off.
//
// The simulator (package simulate) compares timings over a simulated year; DefaultTiming is the
// one its figures chose.
type Timing struct {
	// Name labels the timing in figures and logs.
	Name string
	// Margin: a token is due when it expires within Margin. With Fraction set it is the least
	// margin. Zero with Fraction zero means 30m.
	Margin time.Duration
	// Gap, when set, is the longest gap between passes (schedule.LongestGap of
	// REFRESH_SCHEDULE): the least margin is then at least two gaps, so that a pass may fail
	// and the next one still finds the token valid.
	Gap time.Duration
	// Fraction, when in (0, 1), makes a token due once less than Fraction of its observed
	// lifetime (expiry minus the time it was stored) is left.
	Fraction float64
	// StrictFraction and StrictCover, when StrictFraction is set, replace Fraction at a provider
	// where an answer lost in flight costs a person (no repeat window, no ResendAmbiguous): there
	// every refresh risks a reconnection, so a token is due only within
	// max(Margin, min(StrictCover, StrictFraction × lifetime)). A long-lived token then still
	// rides out an outage of StrictCover; a short-lived one is refreshed as rarely as Margin
	// allows.
	StrictFraction float64
	StrictCover    time.Duration
	// ReissueWindow caps the margin at the preset's ReissueWithin: a provider that answers with
	// the same access token while more than that is left (Strava: 1h) gains nothing from an
	// earlier refresh and costs a request per pass.
	ReissueWindow bool
	// RetryEveryPass drops the exponential back-off: a failed refresh is tried again at the next
	// pass, unless the provider said Retry-After.
	RetryEveryPass bool
	// CapAtExpiry: a wait (back-off or Retry-After) that would end after the stored token's
	// expiry, while that token is still valid, is dropped: the next pass tries again.
	CapAtExpiry bool
	// ResendAmbiguous: at a provider without a repeat window (Preset.RepeatWindow), a refresh
	// that went unanswered is sent once more, within ResendWindow of the first send, instead of
	// waiting for a person. If the provider had not acted, the pair comes back; if it had
	// rotated, it refuses the old token (reuse detection revokes the grant), and a person was
	// needed anyway: the rotated pair is lost either way.
	ResendAmbiguous bool
	// MinBackoff and MaxBackoff bound the exponential back-off (doubling from MinBackoff).
	// Zero: 1m and 1h.
	MinBackoff, MaxBackoff time.Duration
}

// FixedTiming is today's timing: due within margin, back-off 1m doubling to 1h.
func FixedTiming(margin time.Duration) Timing {
	return Timing{Name: "fixed-" + shortDuration(margin), Margin: margin}
}

// FractionTiming makes a token due once less than fraction of its observed lifetime is left,
// with today's back-off.
func FractionTiming(fraction float64) Timing {
	return Timing{Name: "fraction", Fraction: fraction, Margin: time.Minute}
}

// DefaultTiming is the timing the simulated year chose (README, "A year without a lapse"). A
// token is due with 55% of its observed lifetime left where a lost answer can be recovered by a
// repeat (Preset.RepeatWindow); elsewhere, where each refresh risks a reconnection, with 35%
// left but at most 3h30m, and never less than two gaps between passes (Gap: 15m, the default
// schedule's; set it from the schedule in use). Never
// before the provider would issue a new token (Strava's last hour). A failed refresh is retried
// at every pass within Retry-After, and no wait outlasts the stored token. It never resends an
// unanswered refresh that the preset does not allow (ResendTiming does).
func DefaultTiming() Timing {
	return Timing{Name: "adaptive", Gap: 15 * time.Minute, Fraction: 0.55,
		StrictFraction: 0.35, StrictCover: 3*time.Hour + 30*time.Minute,
		ReissueWindow: true, RetryEveryPass: true, CapAtExpiry: true}
}

// ResendTiming is DefaultTiming with ResendAmbiguous: an unanswered refresh is sent once more
// at every provider. It trades the rule of never sending a refresh token that may have been
// rotated (which trips reuse detection when the provider had acted) for far fewer
// reconnections after time-outs at strictly rotating providers.
func ResendTiming() Timing {
	t := DefaultTiming()
	t.Name, t.ResendAmbiguous = "adaptive+resend", true
	return t
}

// TokenAge is what Due reads of a stored token.
type TokenAge struct {
	Expiry time.Time // zero: never expires
	// Stored is when the token was obtained (the last success, or the consent); zero when
	// unknown. Expiry minus Stored is the observed lifetime.
	Stored time.Time
}

// withDefaults fills the zero fields.
func (t Timing) withDefaults() Timing {
	if t.Margin <= 0 && t.Fraction <= 0 {
		t.Margin = 30 * time.Minute
	}
	if t.MinBackoff <= 0 {
		t.MinBackoff = time.Minute
	}
	if t.MaxBackoff <= 0 {
		t.MaxBackoff = time.Hour
	}
	if t.Name == "" {
		t.Name = "fixed-" + shortDuration(t.Margin)
	}
	return t
}

// margin is how long before expiry a token of age a becomes due at a provider p.
func (t Timing) margin(a TokenAge, p provider.Preset) time.Duration {
	m := max(t.Margin, 2*t.Gap)
	if t.Fraction > 0 && t.Fraction < 1 && !a.Stored.IsZero() && a.Expiry.After(a.Stored) {
		life := float64(a.Expiry.Sub(a.Stored))
		f := time.Duration(t.Fraction * life)
		if t.StrictFraction > 0 && t.RepeatWindow(p) == 0 {
			f = time.Duration(t.StrictFraction * life)
			if t.StrictCover > 0 {
				f = min(f, t.StrictCover)
			}
		}
		m = max(m, f)
	}
	if t.ReissueWindow && p.ReissueWithin > 0 && m > p.ReissueWithin {
		m = p.ReissueWithin
	}
	return m
}

// Due says whether a token of age a is due at now. A token without an expiry never is.
func (t Timing) Due(now time.Time, a TokenAge, p provider.Preset) bool {
	if a.Expiry.IsZero() {
		return false
	}
	return a.Expiry.Sub(now) <= t.margin(a, p)
}

// NextAttempt is when a refresh that failed for the failures-th time in a row at now is tried
// again. retryAfter is what the provider asked for (zero: nothing); expiry is the stored
// token's (zero: none); jitter is a factor around 1 applied to the back-off.
func (t Timing) NextAttempt(now time.Time, failures int, retryAfter time.Duration, expiry time.Time, jitter float64) time.Time {
	var wait time.Duration
	if !t.RetryEveryPass {
		d := t.MinBackoff
		for i := 1; i < failures && d < t.MaxBackoff; i++ {
			d *= 2
		}
		d = min(d, t.MaxBackoff)
		wait = time.Duration(float64(d) * jitter)
	}
	wait = max(wait, retryAfter)
	next := now.Add(wait)
	if t.CapAtExpiry && !expiry.IsZero() && expiry.After(now) && next.After(expiry) {
		// Waiting past the expiry makes the stored token lapse for sure; a request the
		// provider refuses costs less.
		next = now
	}
	return next
}

// ResendWindow is how long after the first send ResendAmbiguous repeats an unanswered refresh.
const ResendWindow = 10 * time.Minute

// RepeatWindow is how long after a refresh was sent an identical repeat may be sent when its
// answer was lost: the preset's RepeatWindow, or ResendWindow with ResendAmbiguous.
func (t Timing) RepeatWindow(p provider.Preset) time.Duration {
	if p.RepeatWindow > 0 || !t.ResendAmbiguous {
		return p.RepeatWindow
	}
	return ResendWindow
}

// shortDuration writes 30m0s as 30m and 1h0m0s as 1h.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
