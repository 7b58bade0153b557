package connection

import (
	"strings"
	"time"

	"github.com/freshtoken/freshtoken/internal/provider"
	"github.com/freshtoken/freshtoken/internal/store"
	"github.com/freshtoken/freshtoken/internal/tokenclient"
)

// NewPair is what to store for the first pair of a grant, from the token answer tok at now: the
// rows (see Tokens) and a fresh Status row. The Callback stores it after a consent, and
// `freshtoken import` after refreshing a refresh token it was given. prev is the stored record
// the pair replaces (nil when there is none): only its generation carries on. redirectScope is
// the scope a consent's redirect reported (Strava), "" otherwise; when neither the answer nor the
// redirect says what was granted, the scopes asked for were (RFC 6749 section 5.1). missing
// lists the scopes asked for that were not granted, in the order asked.
func (c *Connection) NewPair(prev *store.Record, tok *tokenclient.Token, redirectScope string, now time.Time) (t store.Tokens, st store.Status, missing []string) {
	granted := tok.Scope
	if len(granted) == 0 {
		granted = provider.SplitScopes(redirectScope)
	}
	if len(granted) == 0 {
		granted = c.Scopes
	}
	missing = MissingScopes(c.Scopes, granted)
	t = Tokens(nil, tok)
	t.Scope = strings.Join(granted, " ")
	st = store.Status{
		State:         store.StateOK,
		Provider:      c.Preset.Name,
		AccountID:     tok.AccountID,
		GrantedScopes: t.Scope,
		MissingScopes: strings.Join(missing, " "),
		ConnectedAt:   now,
		LastSuccess:   now,
	}
	if prev != nil {
		st.Generation = prev.Status.Generation
	}
	st.Generation++
	return t, st, missing
}

// MissingScopes lists the scopes of want that granted lacks, in want's order. A short Google
// scope (email, profile) counts as granted under its long form.
func MissingScopes(want, granted []string) []string {
	have := make(map[string]bool, len(granted))
	for _, s := range granted {
		have[s] = true
	}
	var missing []string
	for _, s := range want {
		if !have[s] && !have[scopeAliases[s]] {
			missing = append(missing, s)
		}
	}
	return missing
}

// scopeAliases are the long forms Google reports for scopes asked for by their short names.
var scopeAliases = map[string]string{
	"email":   "https://www.googleapis.com/auth/userinfo.email",
	"profile": "https://www.googleapis.com/auth/userinfo.profile",
}
