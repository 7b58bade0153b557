// Package oauthserver is a real OAuth 2.0 authorization server, built on
// github.com/ory/fosite with in-memory storage, for freshtoken's end-to-end
// tests and for the local development provider behind `make run`.
//
// It serves the authorization code grant (with PKCE) and the refresh token
// grant with rotation and reuse detection: every refresh issues a new refresh
// token and deactivates the old one, and presenting a deactivated refresh token
// revokes every token of its grant. An optional grace window, modelled on
// Fitbit and Withings, answers an identical repeated refresh with the same
// response instead of treating it as reuse.
//
// Tests observe the server through Stats, Accepts and ActiveAccessToken, and
// can revoke grants or inject faults into the token endpoint. The server never
// logs; tokens, codes and secrets appear only in the responses it serves.
package oauthserver

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	foauth2 "github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/storage"
)

// Client authentication methods at the token endpoint (RFC 7591 names).
const (
	AuthMethodBasic = "client_secret_basic" // HTTP Basic authentication
	AuthMethodPost  = "client_secret_post"  // client_id and client_secret in the form body
)

// Endpoint paths, relative to URL.
const (
	AuthPath     = "/oauth2/auth"
	TokenPath    = "/oauth2/token"
	RevokePath   = "/oauth2/revoke"
	ConsentPath  = "/oauth2/consent"
	UserinfoPath = "/userinfo"
)

// ConsentMode decides how the authorization endpoint answers.
type ConsentMode int

const (
	// AutoApprove redirects back with a code at once, granting the requested
	// scopes (or those of them listed in Options.GrantedScopes).
	AutoApprove ConsentMode = iota
	// AutoDeny redirects back with error=access_denied at once.
	AutoDeny
	// Interactive serves an HTML consent page with Allow and Deny buttons.
	Interactive
)

// Client is a confidential client registered with the server.
type Client struct {
	ID     string
	Secret string // stored only as a bcrypt hash
	// RedirectURIs must match the redirect_uri of an authorization request
	// exactly; they must be https, or http on a loopback host.
	RedirectURIs []string
	Scopes       []string // scopes the client may request
	// AuthMethod is AuthMethodBasic (the default when empty) or AuthMethodPost.
	// It is enforced: credentials sent the other way get invalid_client.
	AuthMethod string
	// RequirePKCE rejects authorization requests without an S256
	// code_challenge. PKCE sent by any client is always verified.
	RequirePKCE bool
}

// Options configures a Server. The zero value of every field except Clients
// works.
type Options struct {
	Clients []Client

	// AccessTokenLifespan defaults to one hour.
	AccessTokenLifespan time.Duration
	// RefreshTokenLifespan defaults to 30 days; a negative value means refresh
	// tokens never expire.
	RefreshTokenLifespan time.Duration

	Consent ConsentMode
	// GrantedScopes, when non-nil, restricts what AutoApprove grants to the
	// requested scopes that are also listed here, as if the user had unticked
	// the others.
	GrantedScopes []string

	// AccountID is the resource owner every authorization is for. When
	// non-empty it is returned as "user_id" in every token response (as
	// Fitbit does) and by the userinfo endpoint.
	AccountID string

	// GraceWindow, when positive, makes an identical refresh request (same
	// client, same refresh token) repeated within the window after a
	// successful refresh return the same response instead of counting as
	// reuse, until the new access token or the new refresh token is used.
	// Zero is strict: any repeat is reuse.
	GraceWindow time.Duration

	// OnTokenRequest, when set, is called at the start of every token request.
	// It may call r.ParseForm to inspect the form but must not read r.Body.
	OnTokenRequest func(r *http.Request)

	// Addr is where Start listens; it defaults to "127.0.0.1:0".
	Addr string
	// BaseURL is the server's external URL, used by URL and the endpoint
	// helpers when the caller serves the handler itself. Start sets it from
	// its listener when empty.
	BaseURL string

	// Now is the clock for the grace window; it defaults to time.Now. Token
	// lifespans are measured by fosite on the real clock.
	Now func() time.Time
}

// Stats counts token endpoint outcomes since the server was created.
type Stats struct {
	CodeExchanges        int // successful authorization_code grants
	CodeExchangeFailures int // authorization_code grants answered with an error
	Refreshes            int // successful refresh_token grants, each of which rotated the pair
	RefreshFailures      int // refresh_token grants answered with an error, reuse included
	// ReuseDetections counts refresh requests that presented an inactive
	// (rotated or revoked) refresh token outside grace; each revoked its grant.
	ReuseDetections int
	// GraceRepeats counts refresh requests answered from the grace cache.
	// They are not counted in Refreshes.
	GraceRepeats int
}

// ErrUnknownToken is returned by Revoke for a token the server does not hold.
var ErrUnknownToken = errors.New("oauthserver: unknown token")

// Server is an OAuth 2.0 authorization server and an http.Handler.
type Server struct {
	provider *fosite.Fosite
	store    *storage.MemoryStore
	strategy *foauth2.HMACSHAStrategy
	clients  map[string]Client
	mux      *http.ServeMux
	now      func() time.Time
	grace    time.Duration
	hook     func(*http.Request)
	addr     string

	// tokenMu serialises token endpoint processing, so that classifying a
	// request (grace, reuse) and acting on it see the same store state.
	tokenMu sync.Mutex

	mu            sync.Mutex // guards the fields below
	stats         Stats
	graceCache    map[string]*graceEntry // by hash of the presented refresh token
	grants        map[string]bool        // fosite request IDs of issued grants
	issued        Issued
	pending       map[string]*pendingConsent
	consent       ConsentMode
	grantedScopes []string
	accountID     string
	faults        []Fault
	baseURL       string
	httpServer    *http.Server
}

// New validates opts and returns a server that is not yet listening: call
// Start, or serve it with your own http.Server.
func New(opts Options) (*Server, error) {
	clients, err := validateClients(opts.Clients)
	if err != nil {
		return nil, fmt.Errorf("oauthserver: new: %w", err)
	}
	if opts.Consent < AutoApprove || opts.Consent > Interactive {
		return nil, fmt.Errorf("oauthserver: new: unknown consent mode %d", opts.Consent)
	}

	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("oauthserver: new: global secret: %w", err)
	}
	cfg := &fosite.Config{
		AccessTokenLifespan:  opts.AccessTokenLifespan,
		RefreshTokenLifespan: opts.RefreshTokenLifespan,
		// A non-nil empty list issues refresh tokens without an "offline" scope.
		RefreshTokenScopes: []string{},
		HashCost:           4,
		GlobalSecret:       secret,
		TokenURL:           strings.TrimSuffix(opts.BaseURL, "/") + TokenPath,
		// Set explicitly: fosite fills these lazily on first use, which races
		// under concurrent requests.
		ScopeStrategy:            fosite.ExactScopeStrategy,
		AudienceMatchingStrategy: fosite.DefaultAudienceMatchingStrategy,
		JWKSFetcherStrategy:      fosite.NewDefaultJWKSFetcherStrategy(),
	}
	cfg.ClientSecretsHasher = &fosite.BCrypt{Config: cfg}

	store := storage.NewMemoryStore()
	for _, c := range clients {
		hash, err := cfg.ClientSecretsHasher.Hash(context.Background(), []byte(c.Secret))
		if err != nil {
			return nil, fmt.Errorf("oauthserver: new: hash secret of client %q: %w", c.ID, err)
		}
		store.Clients[c.ID] = &fosite.DefaultOpenIDConnectClient{
			DefaultClient: &fosite.DefaultClient{
				ID:            c.ID,
				Secret:        hash,
				RedirectURIs:  c.RedirectURIs,
				GrantTypes:    []string{"authorization_code", "refresh_token"},
				ResponseTypes: []string{"code"},
				Scopes:        c.Scopes,
			},
			TokenEndpointAuthMethod: c.AuthMethod,
		}
	}

	strategy := compose.NewOAuth2HMACStrategy(cfg)
	provider, ok := compose.Compose(cfg, store, strategy,
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2RefreshTokenGrantFactory,
		compose.OAuth2PKCEFactory,
		compose.OAuth2TokenRevocationFactory,
	).(*fosite.Fosite)
	if !ok {
		return nil, errors.New("oauthserver: new: fosite provider is not *fosite.Fosite")
	}

	now := opts.Now
	if now == nil {
		now = time.Now
	}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	s := &Server{
		provider:      provider,
		store:         store,
		strategy:      strategy,
		clients:       clients,
		now:           now,
		grace:         opts.GraceWindow,
		hook:          opts.OnTokenRequest,
		addr:          addr,
		graceCache:    make(map[string]*graceEntry),
		grants:        make(map[string]bool),
		pending:       make(map[string]*pendingConsent),
		consent:       opts.Consent,
		grantedScopes: cloneScopes(opts.GrantedScopes),
		accountID:     opts.AccountID,
		baseURL:       strings.TrimSuffix(opts.BaseURL, "/"),
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET "+AuthPath, s.handleAuthorize)
	mux.Handle("POST "+ConsentPath, http.NewCrossOriginProtection().Handler(http.HandlerFunc(s.handleConsent)))
	mux.HandleFunc("POST "+TokenPath, s.handleToken)
	mux.HandleFunc("POST "+RevokePath, s.handleRevoke)
	mux.HandleFunc("GET "+UserinfoPath, s.handleUserinfo)
	s.mux = mux
	return s, nil
}

func validateClients(in []Client) (map[string]Client, error) {
	if len(in) == 0 {
		return nil, errors.New("no clients")
	}
	var errs []error
	clients := make(map[string]Client, len(in))
	for i, c := range in {
		name := fmt.Sprintf("client %d (%q)", i, c.ID)
		if c.ID == "" {
			errs = append(errs, fmt.Errorf("%s: empty ID", name))
		}
		if _, dup := clients[c.ID]; dup {
			errs = append(errs, fmt.Errorf("%s: duplicate ID", name))
		}
		if c.Secret == "" {
			errs = append(errs, fmt.Errorf("%s: empty secret", name))
		}
		if len(c.RedirectURIs) == 0 {
			errs = append(errs, fmt.Errorf("%s: no redirect URIs", name))
		}
		for _, ru := range c.RedirectURIs {
			u, err := url.Parse(ru)
			if err != nil || !u.IsAbs() || u.Fragment != "" || !fosite.IsRedirectURISecure(context.Background(), u) {
				errs = append(errs, fmt.Errorf("%s: redirect URI %q must be absolute, without fragment, and not plain http except on a loopback host", name, ru))
			}
		}
		switch c.AuthMethod {
		case "":
			c.AuthMethod = AuthMethodBasic
		case AuthMethodBasic, AuthMethodPost:
		default:
			errs = append(errs, fmt.Errorf("%s: auth method %q is neither %s nor %s", name, c.AuthMethod, AuthMethodBasic, AuthMethodPost))
		}
		c.RedirectURIs = append([]string(nil), c.RedirectURIs...)
		c.Scopes = append([]string(nil), c.Scopes...)
		clients[c.ID] = c
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return clients, nil
}

// ServeHTTP serves the OAuth 2.0 endpoints under their *Path names.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// Start listens on Options.Addr (127.0.0.1:0 by default) and serves in the
// background until Close or Shutdown.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.httpServer != nil {
		return errors.New("oauthserver: start: already started")
	}
	l, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("oauthserver: start: %w", err)
	}
	if s.baseURL == "" {
		s.baseURL = "http://" + l.Addr().String()
	}
	s.httpServer = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       time.Minute,
	}
	go func(srv *http.Server) {
		// Serve returns http.ErrServerClosed after Close or Shutdown; any other
		// error means the listener failed, which clients see as refused
		// connections.
		_ = srv.Serve(l)
	}(s.httpServer)
	return nil
}

// Close stops a started server at once, closing open connections.
func (s *Server) Close() error {
	s.mu.Lock()
	srv := s.httpServer
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	if err := srv.Close(); err != nil {
		return fmt.Errorf("oauthserver: close: %w", err)
	}
	return nil
}

// Shutdown stops a started server gracefully, waiting for requests in
// flight until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv := s.httpServer
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	if err := srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("oauthserver: shutdown: %w", err)
	}
	return nil
}

// URL is the server's base URL, without a trailing slash: Options.BaseURL,
// or the listener's address once started.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.baseURL
}

// AuthURL is the authorization endpoint.
func (s *Server) AuthURL() string { return s.URL() + AuthPath }

// TokenURL is the token endpoint.
func (s *Server) TokenURL() string { return s.URL() + TokenPath }

// RevokeURL is the RFC 7009 revocation endpoint.
func (s *Server) RevokeURL() string { return s.URL() + RevokePath }

// UserinfoURL is a protected resource that answers a valid bearer access
// token with {"user_id","client_id","scope"}. Using an access token there
// counts as using it for the grace window.
func (s *Server) UserinfoURL() string { return s.URL() + UserinfoPath }

// SetConsent changes how later authorization requests are answered;
// grantedScopes has the meaning of Options.GrantedScopes.
func (s *Server) SetConsent(mode ConsentMode, grantedScopes []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.consent = mode
	s.grantedScopes = cloneScopes(grantedScopes)
}

// SetAccountID changes the account that later authorizations are for.
func (s *Server) SetAccountID(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accountID = id
}

// Issued is every token the server handed out, in order, for tests that look for them where
// they must not be.
type Issued struct {
	AccessTokens, RefreshTokens []string
}

// Issued returns a copy of every token handed out so far (grace replays repeat earlier ones).
func (s *Server) Issued() Issued {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Issued{AccessTokens: cloneScopes(s.issued.AccessTokens), RefreshTokens: cloneScopes(s.issued.RefreshTokens)}
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

func cloneScopes(in []string) []string {
	if in == nil {
		return nil
	}
	return append([]string{}, in...)
}
