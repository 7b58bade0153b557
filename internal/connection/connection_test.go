package connection

import (
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/store"
	"github.com/freshtoken/freshtoken/internal/tokenclient"
)

func TestTokens(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	deadline := at.Add(365 * 24 * time.Hour)
	prev := &store.Tokens{
		AccessToken: "old-at", TokenType: "Bearer", ExpiresAt: at, Scope: "read write",
		RefreshToken: "old-rt", RefreshExpiresAt: deadline,
	}
	tests := []struct {
		name string
		prev *store.Tokens
		tok  tokenclient.Token
		want store.Tokens
	}{
		{
			name: "consent: the answer as it is",
			tok:  tokenclient.Token{AccessToken: "at", TokenType: "Bearer", Expiry: at, RefreshToken: "rt", Scope: []string{"a", "b"}, RefreshExpiry: deadline},
			want: store.Tokens{AccessToken: "at", TokenType: "Bearer", ExpiresAt: at, Scope: "a b", RefreshToken: "rt", RefreshExpiresAt: deadline},
		},
		{
			name: "refresh: rotated, scope and deadline kept",
			prev: prev,
			tok:  tokenclient.Token{AccessToken: "at", TokenType: "Bearer", Expiry: at.Add(time.Hour), RefreshToken: "rt", Rotated: true},
			want: store.Tokens{AccessToken: "at", TokenType: "Bearer", ExpiresAt: at.Add(time.Hour), Scope: "read write", RefreshToken: "rt", RefreshExpiresAt: deadline},
		},
		{
			name: "refresh: no refresh token in the answer keeps the stored one",
			prev: prev,
			tok:  tokenclient.Token{AccessToken: "at", Expiry: at.Add(time.Hour)},
			want: store.Tokens{AccessToken: "at", ExpiresAt: at.Add(time.Hour), Scope: "read write", RefreshToken: "old-rt", RefreshExpiresAt: deadline},
		},
		{
			name: "refresh: a new scope and deadline replace the stored ones",
			prev: prev,
			tok:  tokenclient.Token{AccessToken: "at", RefreshToken: "rt", Scope: []string{"read"}, RefreshExpiry: deadline.Add(time.Hour)},
			want: store.Tokens{AccessToken: "at", Scope: "read", RefreshToken: "rt", RefreshExpiresAt: deadline.Add(time.Hour)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Tokens(tt.prev, &tt.tok); got != tt.want {
				t.Errorf("got %+v; want %+v", got, tt.want)
			}
		})
	}
}

func TestCallbackPath(t *testing.T) {
	tests := []struct {
		redirect, want string
		secure         bool
	}{
		{"https://app.example/api/callback/strava", "/api/callback/strava", true},
		{"http://localhost:7071/proxy/cb/strava", "/proxy/cb/strava", false},
		{"", "/api/callback/strava", false},
	}
	for _, tt := range tests {
		c := &Connection{Name: "strava", RedirectURL: tt.redirect}
		if got := c.CallbackPath(); got != tt.want {
			t.Errorf("CallbackPath(%q) = %q; want %q", tt.redirect, got, tt.want)
		}
		if got := c.SecureCallback(); got != tt.secure {
			t.Errorf("SecureCallback(%q) = %v; want %v", tt.redirect, got, tt.secure)
		}
	}
}
