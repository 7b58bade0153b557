// Package connection is a configured connection resolved once at start-up: its name, its
// provider preset with the connection's overrides applied, its token client and the URLs a
// person and a provider use. The refresh pass, the consent handlers and the commands share one
// value per connection.
//
// It also owns the one conversion of a token answer into the rows the store keeps (Tokens), so
// that a refresh and a consent store the same facts the same way.
package connection

import (
	"net/url"
	"strings"

	"github.com/freshtoken/freshtoken/internal/provider"
	"github.com/freshtoken/freshtoken/internal/store"
	"github.com/freshtoken/freshtoken/internal/tokenclient"
)

// Connection is one configured connection. It is read-only after start-up and safe to share.
type Connection struct {
	Name string // lower-case letters, digits and '-'; the table partition (NAME.LABEL for an account)
	// Preset is the provider with the connection's overrides (region, URLs, auth style, PKCE,
	// scope separator) applied.
	Preset provider.Preset
	// Scopes are the scopes asked for at consent.
	Scopes []string
	// RedirectURL is where the provider sends the browser back (the Callback function).
	RedirectURL string
	// AuthorizeURL is where a person opens the consent flow (in Azure a function key must be
	// added as ?code=...).
	AuthorizeURL string
	// Client speaks to the provider's token endpoint.
	Client tokenclient.Provider

	// Many is set for a connection declared with OAUTH_<NAME>_ACCOUNTS=many: it holds any
	// number of accounts, each in partition NAME.LABEL (see Account), and partition NAME is
	// not used.
	Many bool
	// Label and Base are set on the value of one account (see Account): its label, and the
	// name of the connection it belongs to. Name is then the account's partition NAME.LABEL.
	Label, Base string
}

// Title is the provider's name for people.
func (c *Connection) Title() string {
	switch {
	case c.Preset.Title != "":
		return c.Preset.Title
	case c.Preset.Name != "":
		return c.Preset.Name
	}
	return "the provider"
}

// CallbackPath is the path of the redirect URL: where the provider sends the browser back
// (behind a proxy it may differ from the route).
func (c *Connection) CallbackPath() string {
	if u, err := url.Parse(c.RedirectURL); err == nil && u.Path != "" {
		return u.Path
	}
	return "/api/callback/" + c.Name
}

// SecureCallback says whether the callback is reached over https.
func (c *Connection) SecureCallback() bool {
	u, err := url.Parse(c.RedirectURL)
	return err == nil && strings.EqualFold(u.Scheme, "https")
}

// Tokens is the pair to store after the token answer tok. prev is the stored pair it replaces:
// nil for the first pair of a consent. What the answer leaves out is kept from prev: the
// refresh token (a provider that does not rotate sends none), the granted scope, and the
// refresh token's deadline (tokenclient sets RefreshExpiry whenever the answer or the preset
// tells a new one).
func Tokens(prev *store.Tokens, tok *tokenclient.Token) store.Tokens {
	t := store.Tokens{
		AccessToken:      tok.AccessToken,
		TokenType:        tok.TokenType,
		ExpiresAt:        tok.Expiry,
		RefreshToken:     tok.RefreshToken,
		RefreshExpiresAt: tok.RefreshExpiry,
	}
	if tok.Scope != nil {
		t.Scope = strings.Join(tok.Scope, " ")
	}
	if prev == nil {
		return t
	}
	if t.RefreshToken == "" {
		t.RefreshToken = prev.RefreshToken
	}
	if tok.Scope == nil {
		t.Scope = prev.Scope
	}
	if t.RefreshExpiresAt.IsZero() {
		t.RefreshExpiresAt = prev.RefreshExpiresAt
	}
	return t
}
