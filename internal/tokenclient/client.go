// Package tokenclient talks to a provider's authorize and token endpoints through
// golang.org/x/oauth2, with the provider's quirks applied: the client-auth style set explicitly,
// scopes joined its way, extra parameters, account ids read from its token response, and every
// failure classified as revoked, transient or ambiguous (see Class). Withings, whose token
// endpoint wraps everything in an envelope, has a client of its own (Withings); For picks the
// right client for a connection.
package tokenclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/freshtoken/freshtoken/internal/provider"
	"golang.org/x/oauth2"
)

// Token is a token response, normalised.
type Token struct {
	AccessToken string
	TokenType   string
	// RefreshToken is the new refresh token; on a refresh that returned none it is the one sent.
	RefreshToken string
	// Rotated says the provider returned a new refresh token.
	Rotated bool
	Expiry  time.Time // zero: the provider gave no lifetime
	// RefreshExpiry is the refresh token's deadline when the response or the preset tells it.
	RefreshExpiry time.Time
	// Scope is what the provider says it granted; nil when it did not say.
	Scope     []string
	AccountID string
}

// Provider is a connection's token client, whatever the provider's dialect: *Client for the
// standard shape, *Withings for Withings' envelope. For returns the right one.
type Provider interface {
	// AuthCodeURL is the consent page URL for state, with an S256 challenge for verifier
	// when it is not empty.
	AuthCodeURL(state, verifier string) string
	// UsesPKCE says whether Authorize must create a verifier for this connection.
	UsesPKCE() bool
	// Exchange trades an authorization code for the first token pair.
	Exchange(ctx context.Context, code, verifier string) (*Token, error)
	// Refresh sends refreshToken once and returns the new pair; it never retries.
	Refresh(ctx context.Context, refreshToken string) (*Token, error)
}

// Options say which app a token client speaks for, and how it reaches the provider.
type Options struct {
	// Preset is the provider with the connection's overrides applied.
	Preset       provider.Preset
	ClientID     string
	ClientSecret string
	Scopes       []string // asked for at consent, the preset's required ones added
	RedirectURL  string
	// Timeout bounds every request to the token endpoint, whatever the caller's context says.
	// Zero means DefaultTimeout.
	Timeout time.Duration
	// HTTPClient sends the requests. Default: NewHTTPClient(Timeout).
	HTTPClient *http.Client
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// DefaultTimeout bounds a token request when Options.Timeout is zero.
const DefaultTimeout = 30 * time.Second

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.HTTPClient == nil {
		o.HTTPClient = NewHTTPClient(o.Timeout)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// For returns the token client o describes: a *Withings for the Withings dialect, else a *Client.
func For(o Options) Provider {
	if o.Preset.Dialect == provider.DialectWithings {
		return NewWithings(o)
	}
	return New(o)
}

// Client is one connection's token client. It is safe for concurrent use.
type Client struct {
	conn Options
	http *http.Client
	now  func() time.Time
}

// New returns a client for o.
func New(o Options) *Client {
	o = o.withDefaults()
	return &Client{conn: o, http: o.HTTPClient, now: o.Now}
}

// bounded applies the request timeout to ctx.
func (o Options) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, o.Timeout)
}

// NewHTTPClient returns the HTTP client for token requests: an overall timeout, no keep-alive
// (a token request is rare, and a stale pooled connection turns a clean failure into an
// ambiguous one), and no redirects (a redirected POST would be re-sent elsewhere).
func NewHTTPClient(timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: timeout,
		DisableKeepAlives:     true,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
	}
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// oauth2Config builds the x/oauth2 configuration.
func (c *Client) oauth2Config() *oauth2.Config {
	p := c.conn.Preset
	return &oauth2.Config{
		ClientID:     c.conn.ClientID,
		ClientSecret: c.conn.ClientSecret,
		Endpoint:     oauth2.Endpoint{AuthURL: p.AuthURL, TokenURL: p.TokenURL, AuthStyle: p.AuthStyle},
		RedirectURL:  c.conn.RedirectURL,
		Scopes:       authScopes(p, c.conn.Scopes),
	}
}

// authScopes are the scopes of an authorize request: the configured ones plus the preset's
// required ones, pre-joined into one element for comma-joining providers because x/oauth2's
// AuthCodeURL joins with spaces.
func authScopes(p provider.Preset, configured []string) []string {
	scopes := slices.Clone(configured)
	for _, s := range p.RequiredScopes {
		if !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	if p.ScopeSeparator != "" && p.ScopeSeparator != " " && len(scopes) > 0 {
		scopes = []string{strings.Join(scopes, p.ScopeSeparator)}
	}
	return scopes
}

// AuthCodeURL is the consent page URL for state, with PKCE S256 when verifier is not empty
// and the preset's extra parameters.
func (c *Client) AuthCodeURL(state, verifier string) string {
	var opts []oauth2.AuthCodeOption
	for k, v := range c.conn.Preset.AuthParams {
		opts = append(opts, oauth2.SetAuthURLParam(k, v))
	}
	if verifier != "" {
		opts = append(opts, oauth2.S256ChallengeOption(verifier))
	}
	return c.oauth2Config().AuthCodeURL(state, opts...)
}

// UsesPKCE says whether Authorize must create a verifier for this connection.
func (c *Client) UsesPKCE() bool { return c.conn.Preset.PKCE }

// Exchange trades an authorization code for the first token pair.
func (c *Client) Exchange(ctx context.Context, code, verifier string) (*Token, error) {
	ctx, cancel := c.conn.bounded(ctx)
	defer cancel()
	ctx, obs := c.observe(ctx, "authorization_code", c.conn.Preset.ExchangeParams)
	var opts []oauth2.AuthCodeOption
	if verifier != "" {
		opts = append(opts, oauth2.VerifierOption(verifier))
	}
	tok, err := c.oauth2Config().Exchange(ctx, code, opts...)
	if err != nil {
		return nil, classify("exchange", c.conn.Preset, err, obs.get(), c.now(), c.secrets(code, verifier))
	}
	return c.normalise(tok, "", obs.get())
}

// Refresh sends refreshToken once and returns the new pair. It never retries: a refresh is not
// idempotent, and the caller decides from the error's Class what may happen next.
func (c *Client) Refresh(ctx context.Context, refreshToken string) (*Token, error) {
	ctx, cancel := c.conn.bounded(ctx)
	defer cancel()
	ctx, obs := c.observe(ctx, "refresh_token", c.conn.Preset.RefreshParams)
	src := c.oauth2Config().TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken})
	tok, err := src.Token()
	if err != nil {
		return nil, classify("refresh", c.conn.Preset, err, obs.get(), c.now(), c.secrets(refreshToken))
	}
	return c.normalise(tok, refreshToken, obs.get())
}

func (c *Client) secrets(more ...string) []string {
	return append([]string{c.conn.ClientSecret}, more...)
}

// normalise reads the provider-specific fields that x/oauth2 leaves in Extra.
func (c *Client) normalise(tok *oauth2.Token, sent string, obs observation) (*Token, error) {
	now := c.now()
	t := &Token{
		AccessToken:  tok.AccessToken,
		TokenType:    tok.TokenType,
		RefreshToken: tok.RefreshToken,
		Rotated:      tok.RefreshToken != "" && tok.RefreshToken != sent,
		Expiry:       tok.Expiry,
	}
	if t.Expiry.IsZero() {
		// Strava also sends expires_at (epoch seconds).
		if at, ok := number(tok.Extra("expires_at")); ok && at > 0 && at <= float64(maxSeconds) {
			t.Expiry = time.Unix(int64(at), 0).UTC()
		}
	}
	secs, ok := number(tok.Extra("refresh_token_expires_in"))
	t.RefreshExpiry = refreshExpiry(c.conn.Preset, secs, ok, sent == "" && t.RefreshToken != "", t.Rotated, now)
	if s, ok := tok.Extra("scope").(string); ok {
		t.Scope = provider.SplitScopes(s)
	}
	t.AccountID = accountID(tok, c.conn.Preset.AccountIDPath)
	if t.AccessToken == "" {
		// x/oauth2 already refuses this; keep the contract explicit.
		return nil, &Error{Op: "token", Class: Ambiguous, StatusCode: obs.gotStatus, Detail: "the token response has no access_token"}
	}
	return t, nil
}

// refreshExpiry is the new refresh token's deadline: the answer's refresh_token_expires_in when
// it has a usable one (secs, ok), else the preset's known lifetime counted from now for the
// first pair of a consent (exchange) or for a rotated one when refreshing extends the
// lifetime. first says the answer is a consent's first pair and holds a refresh token. Zero
// when none is known. This is the one place the preset's lifetime is applied.
func refreshExpiry(p provider.Preset, secs float64, ok, first, rotated bool, now time.Time) time.Time {
	switch {
	case ok && secs > 0 && secs <= float64(maxSeconds):
		return now.Add(time.Duration(secs) * time.Second)
	case p.RefreshTokenLifetime <= 0:
		return time.Time{}
	case first, rotated && !p.RefreshLifetimeFromConsent:
		return now.Add(p.RefreshTokenLifetime)
	}
	return time.Time{}
}

// accountID follows a dotted path ("athlete.id") through the token response.
func accountID(tok *oauth2.Token, path string) string {
	if path == "" {
		return ""
	}
	parts := strings.Split(path, ".")
	v := tok.Extra(parts[0])
	for _, p := range parts[1:] {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = m[p]
	}
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case int64:
		return strconv.FormatInt(x, 10)
	}
	return ""
}

// number reads a JSON number or numeric string. Token.Extra gives int64 or float64 for numbers
// in a form-encoded token response (GitHub's default).
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	}
	return 0, false
}

// observe returns a context whose HTTP client records what happened on the wire (for
// classification) and adds extra form parameters to requests of the grant type grant.
func (c *Client) observe(ctx context.Context, grant string, extra map[string]string) (context.Context, *recorder) {
	ctx, rec := traced(ctx)
	hc := *c.http
	hc.Transport = &recordingTransport{base: transportOf(c.http), rec: rec, grant: grant, extra: extra}
	return context.WithValue(ctx, oauth2.HTTPClient, &hc), rec
}

// traced returns ctx with a trace that records in the recorder when a whole request was written.
func traced(ctx context.Context) (context.Context, *recorder) {
	rec := &recorder{}
	trace := &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				rec.set(func(o *observation) { o.wrote = true })
			}
		},
	}
	return httptrace.WithClientTrace(ctx, trace), rec
}

func transportOf(hc *http.Client) http.RoundTripper {
	if hc.Transport != nil {
		return hc.Transport
	}
	return http.DefaultTransport
}

type recorder struct {
	mu  sync.Mutex
	obs observation
}

func (r *recorder) set(f func(*observation)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.obs)
}

func (r *recorder) get() observation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.obs
}

// recordingTransport notes the response status and sets extra form parameters on token
// requests of the grant type grant, which x/oauth2 has no option for.
type recordingTransport struct {
	base  http.RoundTripper
	rec   *recorder
	grant string
	extra map[string]string
}

func (t *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if len(t.extra) > 0 && req.Body != nil {
		body, err := io.ReadAll(io.LimitReader(req.Body, 1<<16))
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("read token request body: %w", err)
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, errors.New("token request body is not a form")
		}
		if form.Get("grant_type") == t.grant {
			for k, v := range t.extra {
				form.Set(k, v)
			}
		}
		enc := form.Encode()
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(strings.NewReader(enc))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(enc)), nil }
		req.ContentLength = int64(len(enc))
	}
	resp, err := t.base.RoundTrip(req)
	if resp != nil {
		t.rec.set(func(o *observation) { o.gotStatus = resp.StatusCode })
	}
	return resp, err
}
