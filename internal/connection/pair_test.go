package connection

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/provider"
	"github.com/freshtoken/freshtoken/internal/store"
	"github.com/freshtoken/freshtoken/internal/tokenclient"
)

func TestNewPair(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	c := &Connection{Name: "strava", Preset: provider.Preset{Name: "strava"}, Scopes: []string{"read", "activity:read_all"}}
	prev := &store.Record{Status: store.Status{Generation: 7, AccountID: "old", State: store.StateNeedsConsent, LastFailureClass: "revoked", ConsecutiveFailures: 3}}
	tests := []struct {
		name          string
		prev          *store.Record
		tok           tokenclient.Token
		redirectScope string
		wantScope     string
		wantMissing   []string
		wantGen       int64
	}{
		{"granted as the answer says", nil, tokenclient.Token{Scope: []string{"read"}}, "read,activity:read_all", "read", []string{"activity:read_all"}, 1},
		{"granted as the redirect says", nil, tokenclient.Token{}, "read,activity:read_all", "read activity:read_all", nil, 1},
		{"granted as asked when nobody says", prev, tokenclient.Token{}, "", "read activity:read_all", nil, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := tt.tok
			tok.AccessToken, tok.RefreshToken, tok.Expiry, tok.AccountID = "at", "rt", now.Add(time.Hour), "42"
			tk, st, missing := c.NewPair(tt.prev, &tok, tt.redirectScope, now)
			if tk.Scope != tt.wantScope || st.GrantedScopes != tt.wantScope {
				t.Errorf("scope %q, GrantedScopes %q; want %q", tk.Scope, st.GrantedScopes, tt.wantScope)
			}
			if !slices.Equal(missing, tt.wantMissing) {
				t.Errorf("missing %q; want %q", missing, tt.wantMissing)
			}
			want := store.Status{
				State: store.StateOK, Provider: "strava", AccountID: "42", GrantedScopes: tt.wantScope,
				MissingScopes: strings.Join(tt.wantMissing, " "), ConnectedAt: now, LastSuccess: now, Generation: tt.wantGen,
			}
			if st != want {
				t.Errorf("status %+v; want %+v (nothing carried from the previous status but its generation)", st, want)
			}
			if tk.AccessToken != "at" || tk.RefreshToken != "rt" || !tk.ExpiresAt.Equal(now.Add(time.Hour)) {
				t.Errorf("tokens %+v; want the answer's pair", tk)
			}
		})
	}
}

func TestMissingScopes(t *testing.T) {
	got := MissingScopes([]string{"email", "profile", "drive"}, []string{"https://www.googleapis.com/auth/userinfo.email", "profile"})
	if want := []string{"drive"}; !slices.Equal(got, want) {
		t.Errorf("MissingScopes = %q; want %q", got, want)
	}
}
