package simulate

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/tokenclient"
)

func model(t *testing.T, name string) Model {
	t.Helper()
	ms, err := Models()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Preset.Name == name {
			return m
		}
	}
	t.Fatalf("no model %q", name)
	return Model{}
}

// world1 is a provider without faults and the product's token client for it.
func world1(t *testing.T, name string, faults Faults) (*Provider, tokenclient.Provider) {
	m := model(t, name)
	p := NewProvider(m, faults, rand.New(rand.NewPCG(1, 2)))
	p.Latency = 0
	c := tokenclient.For(tokenclient.Options{Preset: m.Preset, ClientID: "id", ClientSecret: "secret", HTTPClient: p.HTTPClient(5 * time.Second)})
	return p, c
}

func TestProviderRotation(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		preset string
		// after a refresh with rt1 gave rt2, reusing rt1:
		reuseClass tokenclient.Class // "" when reuse still works
		rt2Dies    bool              // and rt2 (and its access token) die with it
	}{
		{"google", "", false},
		{"strava", tokenclient.Revoked, false},
		{"withings", "", false}, // inside the 8h grace, the new access token unused
		{"whoop", tokenclient.Revoked, true},
		{"custom", tokenclient.Revoked, true},
	}
	for _, tt := range tests {
		t.Run(tt.preset, func(t *testing.T) {
			p, c := world1(t, tt.preset, Faults{})
			first := p.Consent(time.Now().Add(-5 * time.Hour)) // Strava: under an hour left
			tok, err := c.Refresh(ctx, first.RefreshToken)
			if err != nil {
				t.Fatalf("first refresh: %v", err)
			}
			_, err = c.Refresh(ctx, first.RefreshToken)
			if got := classOf(err); got != tt.reuseClass {
				t.Fatalf("reuse: class %q (%v); want %q", got, err, tt.reuseClass)
			}
			until, _ := p.ValidUntil(tok.AccessToken)
			if dead := !until.IsZero() && !until.After(time.Now()); dead != tt.rt2Dies {
				t.Errorf("the refreshed access token dead after the reuse: %v; want %v", dead, tt.rt2Dies)
			}
		})
	}
}

func classOf(err error) tokenclient.Class {
	if err == nil {
		return ""
	}
	return tokenclient.ClassOf(err)
}

func TestProviderFaults(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	around := Windows{{now.Add(-time.Hour), now.Add(time.Hour)}}
	tests := []struct {
		name       string
		preset     string
		faults     Faults
		want       tokenclient.Class
		retryAfter bool
	}{
		{"503 burst", "google", Faults{Provider503: around}, tokenclient.Transient, false},
		{"429 with Retry-After", "whoop", Faults{Provider429: around}, tokenclient.Transient, true},
		{"Strava 429 by its limit headers", "strava", Faults{Provider429: around}, tokenclient.Transient, true},
		{"Withings 601", "withings", Faults{Provider429: around}, tokenclient.Transient, true},
		{"an answer lost after the provider acted", "custom", Faults{LostRate: 1}, tokenclient.Ambiguous, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, c := world1(t, tt.preset, tt.faults)
			first := p.Consent(now.Add(-5 * time.Hour))
			_, err := c.Refresh(ctx, first.RefreshToken)
			if got := classOf(err); got != tt.want {
				t.Fatalf("class %q (%v); want %q", got, err, tt.want)
			}
			var te *tokenclient.Error
			if tt.retryAfter && (!asError(err, &te) || te.RetryAfter <= 0) {
				t.Errorf("no Retry-After in %v", err)
			}
		})
	}
}

func asError(err error, te **tokenclient.Error) bool { return errors.As(err, te) }
