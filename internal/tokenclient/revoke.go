package tokenclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/freshtoken/freshtoken/internal/provider"
	"github.com/freshtoken/freshtoken/internal/redact"
	"golang.org/x/oauth2"
)

// Grant is what is stored of one account's access, for revoking it.
type Grant struct {
	AccessToken  string
	RefreshToken string
	AccountID    string // the provider's account id (Polar's user id, Withings' userid)
}

// Revocation is the outcome of Revoke.
type Revocation struct {
	// Revoked says the provider confirmed it took the access back.
	Revoked bool
	// Help, when not Revoked, is where the person can revoke the app's access themselves (a
	// URL or a sentence); "" when the preset knows none.
	Help string
}

// Revoker takes back an account's access at the provider: *Client and *Withings are Revokers.
type Revoker interface {
	Revoke(ctx context.Context, g Grant) (Revocation, error)
}

// ErrNoRevokeAPI is returned by Revoke for a provider with no revocation call (Spotify, Dexcom,
// Withings, Oura, a custom provider without OAUTH_<NAME>_REVOKE_URL): nothing was sent.
var ErrNoRevokeAPI = errors.New("the provider has no revocation API")

// maxRevokeBody bounds what is read of a revocation answer.
const maxRevokeBody = 16 << 10

// Revoke takes back g at the provider the way its preset says (Preset.Revoke), sending the
// request once. An error means the provider may still hold the grant; the Revocation then
// still carries Help. Errors never hold a token or the client secret.
func (c *Client) Revoke(ctx context.Context, g Grant) (Revocation, error) {
	return revoke(ctx, c.conn, g)
}

// Revoke for Withings: its FAQ says a partner cannot unlink a user, so nothing is sent and Help
// is the page where the person disconnects the app.
func (w *Withings) Revoke(ctx context.Context, g Grant) (Revocation, error) {
	return revoke(ctx, w.conn, g)
}

func revoke(ctx context.Context, o Options, g Grant) (Revocation, error) {
	p := o.Preset
	rv := Revocation{Help: revokeHelp(p, o.ClientID, g.AccountID)}
	if p.Revoke == provider.RevokeNone || p.RevokeURL == "" {
		return rv, ErrNoRevokeAPI
	}
	req, err := revokeRequest(o, g)
	if err != nil {
		return rv, err
	}
	ctx, cancel := o.bounded(ctx)
	defer cancel()
	resp, err := o.HTTPClient.Do(req.WithContext(ctx))
	secrets := []string{g.AccessToken, g.RefreshToken, o.ClientSecret}
	if err != nil {
		return rv, fmt.Errorf("revoke at %s: %s", hostOf(p.RevokeURL), redact.String(err.Error(), maxDetail, secrets...))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxRevokeBody))
	if resp.StatusCode/100 != 2 {
		msg := fmt.Sprintf("revoke at %s: HTTP %d", hostOf(p.RevokeURL), resp.StatusCode)
		if d := strings.TrimSpace(redact.String(string(body), maxDetail, secrets...)); d != "" {
			msg += ": " + d
		}
		return rv, errors.New(msg)
	}
	return Revocation{Revoked: true}, nil
}

// revokeRequest builds the one request of p.Revoke.
func revokeRequest(o Options, g Grant) (*http.Request, error) {
	p := o.Preset
	form := func(v url.Values) (*http.Request, error) {
		req, err := http.NewRequest(http.MethodPost, p.RevokeURL, strings.NewReader(v.Encode()))
		if err != nil {
			return nil, fmt.Errorf("revoke: URL of %s: %w", p.Name, err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req, nil
	}
	bearer := func(method, u string) (*http.Request, error) {
		if g.AccessToken == "" {
			return nil, errors.New("revoke: no access token stored to authenticate the call")
		}
		req, err := http.NewRequest(method, u, nil)
		if err != nil {
			return nil, fmt.Errorf("revoke: URL of %s: %w", p.Name, err)
		}
		req.Header.Set("Authorization", "Bearer "+g.AccessToken)
		return req, nil
	}
	switch p.Revoke {
	case provider.RevokeRFC7009, provider.RevokeTokenOnly:
		v := url.Values{}
		// The refresh token: revoking it takes back the grant (RFC 7009 section 2.1).
		switch {
		case g.RefreshToken != "":
			v.Set("token", g.RefreshToken)
			v.Set("token_type_hint", "refresh_token")
		case g.AccessToken != "":
			v.Set("token", g.AccessToken)
			v.Set("token_type_hint", "access_token")
		default:
			return nil, errors.New("revoke: no token stored to revoke")
		}
		if p.Revoke == provider.RevokeTokenOnly {
			return form(v)
		}
		if p.AuthStyle != oauth2.AuthStyleInHeader {
			v.Set("client_id", o.ClientID)
			v.Set("client_secret", o.ClientSecret)
		}
		req, err := form(v)
		if err != nil {
			return nil, err
		}
		if p.AuthStyle == oauth2.AuthStyleInHeader {
			// RFC 6749 section 2.3.1: each part form-encoded, then Basic.
			req.SetBasicAuth(url.QueryEscape(o.ClientID), url.QueryEscape(o.ClientSecret))
		}
		return req, nil
	case provider.RevokeStravaDeauthorize:
		if g.AccessToken == "" {
			return nil, errors.New("revoke: no access token stored to deauthorize")
		}
		return form(url.Values{"access_token": {g.AccessToken}})
	case provider.RevokeBearerDelete:
		return bearer(http.MethodDelete, p.RevokeURL)
	case provider.RevokePolarUser:
		if g.AccountID == "" {
			return nil, errors.New("revoke: no Polar user id stored")
		}
		return bearer(http.MethodDelete, strings.TrimSuffix(p.RevokeURL, "/")+"/"+url.PathEscape(g.AccountID))
	}
	return nil, fmt.Errorf("revoke: unknown style %q", p.Revoke)
}

// revokeHelp is p.RevokeHelp with the client and account ids filled in; a URL parameter left
// without an account id is dropped.
func revokeHelp(p provider.Preset, clientID, accountID string) string {
	h := strings.ReplaceAll(p.RevokeHelp, "{client_id}", url.PathEscape(clientID))
	if accountID == "" {
		if i := strings.Index(h, "?selecteduser={account_id}"); i >= 0 {
			h = h[:i] + h[i+len("?selecteduser={account_id}"):]
		}
	}
	return strings.ReplaceAll(h, "{account_id}", url.QueryEscape(accountID))
}

func hostOf(u string) string {
	if p, err := url.Parse(u); err == nil && p.Host != "" {
		return p.Host
	}
	return "the provider"
}
