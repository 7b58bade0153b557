// Package simulate is the world of "a year without a lapse": the clock's ticks, each provider's
// token endpoint as an in-process http.RoundTripper, a token table that fails like Table
// Storage, and the person who reconnects. The product's own refresh package and token clients
// run in it unchanged; only the world is simulated. Run a World inside a testing/synctest
// bubble, and a simulated year takes seconds.
//
// Providers fail honestly: a strictly rotating provider with reuse detection revokes the whole
// grant when an old refresh token comes back, a grace window keeps the old one alive only as
// long as the provider says, an answer can be lost after the provider rotated, 429 windows say
// Retry-After, and 503 bursts and outages refuse every request. No product figure is computed
// from a formula: only Unavoidable, the bound a client knowing every fault in advance would
// still suffer, is.
package simulate

import (
	"fmt"
	"time"

	"github.com/freshtoken/freshtoken/internal/provider"
	"golang.org/x/oauth2"
)

// Rotation is what a provider does with the refresh token on a refresh.
type Rotation int

const (
	// NoRotation: the answer carries no refresh token; the one sent stays valid (Google, Spotify).
	NoRotation Rotation = iota
	// RotateGrace: a new refresh token each time; the old one stays valid for Grace, or until
	// the new access token is first used (Withings).
	RotateGrace
	// RotateStrict: a new refresh token each time; the old one is dead at once and is refused
	// with invalid_grant (Strava).
	RotateStrict
	// RotateReuseDetection: like RotateStrict, and an old refresh token coming back revokes the
	// whole grant, access tokens included (RFC 9700; Ory Hydra at WHOOP; Oura, Dexcom, custom).
	RotateReuseDetection
)

func (r Rotation) String() string {
	switch r {
	case NoRotation:
		return "never"
	case RotateGrace:
		return "grace"
	case RotateStrict:
		return "strict"
	case RotateReuseDetection:
		return "strict+reuse-detection"
	}
	return fmt.Sprintf("Rotation(%d)", int(r))
}

// Model is one provider's behaviour in the world, from shared/PROVIDERS.md and the preset.
type Model struct {
	Preset provider.Preset
	// Lifetime is the access token's; zero: it never expires (Polar).
	Lifetime time.Duration
	Rotation Rotation
	// Grace is how long a rotated-out refresh token stays valid under RotateGrace.
	Grace time.Duration
	// ReissueWithin: the same access token comes back while it has more than this left (Strava).
	ReissueWithin time.Duration
	// RefreshLifetime is the refresh token's deadline; FromConsent says it runs from the consent
	// and refreshing does not extend it (Spotify); otherwise each new refresh token gets it anew
	// (Withings' rolling year).
	RefreshLifetime time.Duration
	FromConsent     bool
}

// NoRefresh says the provider issues no refresh token.
func (m Model) NoRefresh() bool { return m.Preset.NoRefreshToken }

// StrictLoss says a lost answer costs the grant: the provider rotated and the old refresh token
// is dead, so only a person can reconnect.
func (m Model) StrictLoss() bool {
	return m.Rotation == RotateStrict || m.Rotation == RotateReuseDetection
}

// MinRefreshesPerDay is the least a day of this token's lifetime forces.
func (m Model) MinRefreshesPerDay() float64 {
	if m.Lifetime <= 0 || m.NoRefresh() {
		return 0
	}
	return float64(24*time.Hour) / float64(m.Lifetime)
}

// Models are the presets simulated, in print order. The Fitbit Web API is shut down (every
// refresh is 410 Gone), so it has no year to simulate.
func Models() ([]Model, error) {
	lookup := func(name string) (provider.Preset, error) {
		p, ok := provider.Lookup(name)
		if !ok {
			return provider.Preset{}, fmt.Errorf("simulate: no preset %q", name)
		}
		return p, nil
	}
	type spec struct {
		name string
		m    Model
	}
	specs := []spec{
		// ~1 h, never rotated (the refresh answer has no refresh_token).
		{"google", Model{Lifetime: time.Hour, Rotation: NoRotation}},
		// 6 h; the old refresh token is dead once a new one is returned; the same access token
		// while more than 1 h is left.
		{"strava", Model{Lifetime: 6 * time.Hour, Rotation: RotateStrict, ReissueWithin: time.Hour}},
		// 3 h; a new refresh token each time, valid a year; the old one dies 8 h later or when
		// the new access token is used.
		{"withings", Model{Lifetime: 3 * time.Hour, Rotation: RotateGrace, Grace: 8 * time.Hour, RefreshLifetime: 365 * 24 * time.Hour}},
		// 24 h, single use, rotating (community reports): strict with reuse detection.
		{"oura", Model{Lifetime: 24 * time.Hour, Rotation: RotateReuseDetection}},
		// 1 h; the refresh may omit the refresh token (kept), which lives 6 months from consent.
		{"spotify", Model{Lifetime: time.Hour, Rotation: NoRotation, RefreshLifetime: 183 * 24 * time.Hour, FromConsent: true}},
		// 1 h, rotates every refresh, Ory Hydra revokes the grant on reuse.
		{"whoop", Model{Lifetime: time.Hour, Rotation: RotateReuseDetection}},
		// 2 h, single use (community reports): strict with reuse detection.
		{"dexcom", Model{Lifetime: 2 * time.Hour, Rotation: RotateReuseDetection}},
		// Long-lived access token, no refresh token.
		{"polar", Model{}},
	}
	var out []Model
	for _, s := range specs {
		p, err := lookup(s.name)
		if err != nil {
			return nil, err
		}
		s.m.Preset = p
		out = append(out, s.m)
	}
	// The worst case: strict rotation with reuse detection and 1-hour tokens.
	out = append(out, Model{
		Preset: provider.Preset{
			Name: provider.Custom, Title: "Custom provider", Dialect: provider.DialectRFC6749,
			ScopeSeparator: " ", AuthStyle: oauth2.AuthStyleInParams,
			AuthURL: "https://custom.example/authorize", TokenURL: "https://custom.example/token",
		},
		Lifetime: time.Hour, Rotation: RotateReuseDetection,
	})
	return out, nil
}
