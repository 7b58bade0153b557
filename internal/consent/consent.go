// Package consent serves the two halves of the authorization-code flow that connect an account:
// Authorize sends the browser to the provider's consent page, and Callback trades the code it
// brings back for the first token pair and stores it.
//
// A random state, kept in a cookie scoped to the callback path, ties the two halves to one
// browser; the store keeps the PKCE verifier under a hash of the state and hands it out once.
// Every failure of a callback leaves the stored tokens as they were.
package consent

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/freshtoken/freshtoken/internal/config"
	"github.com/freshtoken/freshtoken/internal/redact"
	"github.com/freshtoken/freshtoken/internal/store"
	"github.com/freshtoken/freshtoken/internal/tokenclient"
	"github.com/rs/zerolog"
	"golang.org/x/oauth2"
)

// Defaults for the zero values of Options.
const (
	DefaultStateTTL        = 10 * time.Minute
	DefaultStoreTimeout    = 10 * time.Second
	DefaultExchangeTimeout = 30 * time.Second
)

// cookiePrefix starts the name of a connection's state cookie; the connection name follows.
const cookiePrefix = "freshtoken_state_"

// stateBytes is the entropy of a state.
const stateBytes = 32

// Store is what consent needs of the token store.
type Store interface {
	// PutAuthState records a pending authorization under key.
	PutAuthState(ctx context.Context, name, key string, a store.AuthState) error
	// TakeAuthState returns and deletes the authorization under key, atomically: of several
	// concurrent calls for one key, one gets it and the others store.ErrNotFound.
	TakeAuthState(ctx context.Context, name, key string) (store.AuthState, error)
	// Get reads a connection; store.ErrNotFound when it was never connected.
	Get(ctx context.Context, name string) (*store.Record, error)
	// SaveConsent stores the first token pair of a consent and its status.
	SaveConsent(ctx context.Context, name string, t store.Tokens, st store.Status) error
}

// Exchanger is a connection's token client (*tokenclient.Client).
type Exchanger interface {
	AuthCodeURL(state, verifier string) string
	UsesPKCE() bool
	Exchange(ctx context.Context, code, verifier string) (*tokenclient.Token, error)
}

// Connection is one configured connection and its token client.
type Connection struct {
	Config config.Connection
	Client Exchanger
}

// Options configure a Handler. Zero durations take the defaults above; a nil Now is time.Now
// and a nil Rand is crypto/rand.Reader.
type Options struct {
	Store       Store
	Connections map[string]Connection // keyed by connection name
	Now         func() time.Time
	Log         zerolog.Logger
	Rand        io.Reader // the source of states
	// StateTTL is how long a started sign-in may take.
	StateTTL        time.Duration
	StoreTimeout    time.Duration // each store call
	ExchangeTimeout time.Duration // the code exchange
}

// Handler serves GET /api/authorize/{connection} and GET /api/callback/{connection}. It is safe
// for concurrent use.
type Handler struct {
	store           Store
	conns           map[string]Connection
	now             func() time.Time
	log             zerolog.Logger
	rand            io.Reader
	ttl             time.Duration
	storeTimeout    time.Duration
	exchangeTimeout time.Duration
}

// New returns a Handler for o.
func New(o Options) *Handler {
	h := &Handler{
		store:           o.Store,
		conns:           o.Connections,
		now:             o.Now,
		log:             o.Log,
		rand:            o.Rand,
		ttl:             o.StateTTL,
		storeTimeout:    o.StoreTimeout,
		exchangeTimeout: o.ExchangeTimeout,
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.rand == nil {
		h.rand = rand.Reader
	}
	if h.ttl <= 0 {
		h.ttl = DefaultStateTTL
	}
	if h.storeTimeout <= 0 {
		h.storeTimeout = DefaultStoreTimeout
	}
	if h.exchangeTimeout <= 0 {
		h.exchangeTimeout = DefaultExchangeTimeout
	}
	return h
}

// Register adds the two routes to mux. The {connection} wildcard matches exactly one path
// segment, so nothing else under /api/authorize/ or /api/callback/ reaches the handlers.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/authorize/{connection}", h.Authorize)
	mux.HandleFunc("GET /api/callback/{connection}", h.Callback)
}

// Authorize starts a sign-in: it records a state and redirects the browser to the provider's
// consent page. ?replace=true allows the callback to connect a different account than the one
// stored. The redirect URL sent to the provider is always the configured one.
func (h *Handler) Authorize(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("connection")
	if err := h.authorize(w, r, name); err != nil {
		h.fail(w, r, "authorize", name, err)
	}
}

// Callback finishes a sign-in: it checks the state against the browser's cookie, takes the
// pending authorization once, exchanges the code and stores the token pair.
func (h *Handler) Callback(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("connection")
	c, known := h.conns[name]
	if known {
		// The state is single-use whatever happens next.
		http.SetCookie(w, &http.Cookie{
			Name: cookieName(name), Value: "", Path: cookiePath(c.Config), MaxAge: -1,
			HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: secureCookie(c.Config),
		})
	}
	p, err := h.callback(r, name)
	if err != nil {
		h.fail(w, r, "callback", name, err)
		return
	}
	h.render(w, http.StatusOK, p)
}

func (h *Handler) authorize(w http.ResponseWriter, r *http.Request, name string) error {
	c, ok := h.conns[name]
	if !ok {
		return unknownConnection(name)
	}
	if gone := c.Config.Preset.Gone; gone != "" {
		return &pageError{
			Status:  http.StatusGone,
			Title:   providerTitle(c.Config) + " is shut down",
			Message: "Cannot connect " + name + ": " + gone + ".",
			LogMsg:  "authorize refused: the provider is shut down",
		}
	}
	state, err := h.newState()
	if err != nil {
		return &pageError{
			Status: http.StatusInternalServerError, Title: "Sign-in could not start",
			Message: "No random state could be made. Try again.",
			LogMsg:  "make state", Err: err,
		}
	}
	var verifier string
	if c.Client.UsesPKCE() {
		verifier = oauth2.GenerateVerifier()
	}
	a := store.AuthState{
		Verifier:  verifier,
		ExpiresAt: h.now().Add(h.ttl),
		Replace:   r.URL.Query().Get("replace") == "true",
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.storeTimeout)
	defer cancel()
	if err := h.store.PutAuthState(ctx, name, stateKey(state), a); err != nil {
		return &pageError{
			Status: http.StatusServiceUnavailable, Title: "Sign-in could not start",
			Message: "The token store is unavailable, so the sign-in could not be recorded. Try again in a minute.",
			LogMsg:  "store auth state", Err: err, secrets: []string{state, verifier},
		}
	}
	http.SetCookie(w, &http.Cookie{
		Name: cookieName(name), Value: state, Path: cookiePath(c.Config),
		MaxAge: int(h.ttl / time.Second), HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: secureCookie(c.Config),
	})
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("Location", c.Client.AuthCodeURL(state, verifier))
	w.WriteHeader(http.StatusFound)
	h.log.Info().Str("connection", name).Bool("replace", a.Replace).Bool("pkce", verifier != "").
		Msg("authorize: sent to the provider's consent page")
	return nil
}

func (h *Handler) callback(r *http.Request, name string) (*page, error) {
	c, ok := h.conns[name]
	if !ok {
		return nil, unknownConnection(name)
	}
	q := r.URL.Query()
	restart := "Start again at /api/authorize/" + name + "."
	title := providerTitle(c.Config)

	if q.Has("error") {
		h.discardState(r, name)
		code := redact.String(q.Get("error"), 100, requestSecrets(r, name)...)
		desc := redact.String(q.Get("error_description"), maxShown, requestSecrets(r, name)...)
		pe := &pageError{
			Status: http.StatusBadRequest, Title: "Sign-in failed",
			Message: title + " reported an error instead of granting access. " + restart,
			LogMsg:  "callback: the provider reported an error",
			Err:     fmt.Errorf("provider error %q: %s", code, desc),
			Details: []string{"Error: " + code},
		}
		if code == "access_denied" {
			pe.Status, pe.Title = http.StatusForbidden, "Access declined"
			pe.Message = "You declined access at " + title + ", so " + name + " was not connected. " + restart
			pe.LogMsg = "callback: access declined at the provider"
		}
		if desc != "" {
			pe.Details = append(pe.Details, "Description: "+desc)
		}
		return nil, pe
	}

	state := q.Get("state")
	ck, err := r.Cookie(cookieName(name))
	if state == "" || err != nil || ck.Value == "" {
		return nil, &pageError{
			Status: http.StatusBadRequest, Title: "No sign-in in progress",
			Message: "No sign-in is in progress from this browser (the callback carries no state, or the browser sent no state cookie). " +
				"Start again at /api/authorize/" + name + " in this browser.",
			LogMsg: "callback: missing state or state cookie",
			Err:    fmt.Errorf("state present: %t, cookie present: %t", state != "", err == nil && ck.Value != ""),
		}
	}
	if subtle.ConstantTimeCompare([]byte(ck.Value), []byte(state)) != 1 {
		return nil, &pageError{
			Status: http.StatusBadRequest, Title: "Sign-in does not match",
			Message: "This sign-in was started in another browser or another tab, or the link was forwarded. " +
				"Start again at /api/authorize/" + name + " in this browser.",
			LogMsg: "callback: state does not match the cookie",
		}
	}

	sctx, cancel := context.WithTimeout(r.Context(), h.storeTimeout)
	a, err := h.store.TakeAuthState(sctx, name, stateKey(state))
	cancel()
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, &pageError{
			Status: http.StatusBadRequest, Title: "Sign-in link already used",
			Message: "This sign-in link was already used or is unknown. " + restart,
			LogMsg:  "callback: state already used or unknown",
		}
	case err != nil:
		return nil, &pageError{
			Status: http.StatusServiceUnavailable, Title: "Sign-in could not finish",
			Message: "The token store is unavailable, so the sign-in could not be checked. " + restart,
			LogMsg:  "take auth state", Err: err,
		}
	}
	if h.now().After(a.ExpiresAt) {
		return nil, &pageError{
			Status: http.StatusBadRequest, Title: "Sign-in expired",
			Message: "This sign-in expired after " + minutes(h.ttl) + ". " + restart,
			LogMsg:  "callback: state expired",
			Err:     fmt.Errorf("expired at %s", a.ExpiresAt.UTC().Format(time.RFC3339)),
		}
	}
	code := q.Get("code")
	if code == "" {
		return nil, &pageError{
			Status: http.StatusBadRequest, Title: "No authorization code",
			Message: title + " sent no authorization code. " + restart,
			LogMsg:  "callback: no code",
		}
	}

	// From here the provider is involved and the code is single-use: a browser that gives up
	// must not cancel the exchange or the save, or issued tokens would be lost halfway.
	base := context.WithoutCancel(r.Context())
	ectx, cancel := context.WithTimeout(base, h.exchangeTimeout)
	tok, err := c.Client.Exchange(ectx, code, a.Verifier)
	cancel()
	if err != nil {
		return nil, exchangeError(c.Config, name, err, a.Verifier)
	}
	secrets := []string{tok.AccessToken, tok.RefreshToken, a.Verifier}

	gctx, cancel := context.WithTimeout(base, h.storeTimeout)
	prev, err := h.store.Get(gctx, name)
	cancel()
	if errors.Is(err, store.ErrNotFound) {
		prev, err = nil, nil
	}
	if err != nil {
		return nil, &pageError{
			Status: http.StatusServiceUnavailable, Title: "Sign-in could not finish",
			Message: "The provider issued tokens but the stored connection could not be read, so nothing was stored. " + restart,
			LogMsg:  "read connection", Err: err, secrets: secrets,
		}
	}
	var prevStatus store.Status
	if prev != nil {
		prevStatus = prev.Status
	}
	if held := prevStatus.AccountID; held != "" && tok.AccountID != held && !a.Replace {
		msg := "This connection belongs to account " + held + ", but you signed in as "
		if tok.AccountID == "" {
			msg = "This connection belongs to account " + held + ", and " + title + " did not say which account you signed in with. "
		} else {
			msg += "account " + tok.AccountID + ". "
		}
		return nil, &pageError{
			Status: http.StatusConflict, Title: "Another account",
			Message: msg + "Nothing was changed. To replace the account, open /api/authorize/" + name + "?replace=true.",
			LogMsg:  "callback: consent from another account refused",
			Err:     fmt.Errorf("stored account %q, new account %q", held, tok.AccountID),
			secrets: secrets,
		}
	}

	now := h.now()
	preset := c.Config.Preset
	granted := tok.Scope
	if len(granted) == 0 {
		// Strava reports the accepted scopes on the redirect instead.
		granted = tokenclient.SplitScopes(q.Get("scope"))
	}
	if len(granted) == 0 {
		// RFC 6749 5.1: no scope in the answer means the requested scope was granted.
		granted = c.Config.Scopes
	}
	missing := missingScopes(c.Config.Scopes, granted)
	t := store.Tokens{
		AccessToken:      tok.AccessToken,
		TokenType:        tok.TokenType,
		ExpiresAt:        tok.Expiry,
		Scope:            strings.Join(granted, " "),
		RefreshToken:     tok.RefreshToken,
		RefreshExpiresAt: tok.RefreshExpiry,
	}
	if t.RefreshExpiresAt.IsZero() && t.RefreshToken != "" && preset.RefreshTokenLifetime > 0 {
		t.RefreshExpiresAt = now.Add(preset.RefreshTokenLifetime)
	}
	st := store.Status{
		State:         store.StateOK,
		Provider:      preset.Name,
		AccountID:     tok.AccountID,
		GrantedScopes: strings.Join(granted, " "),
		MissingScopes: strings.Join(missing, " "),
		ConnectedAt:   now,
		LastSuccess:   now,
		Generation:    prevStatus.Generation + 1,
	}
	wctx, cancel := context.WithTimeout(base, h.storeTimeout)
	err = h.store.SaveConsent(wctx, name, t, st)
	cancel()
	if err != nil {
		return nil, &pageError{
			Status: http.StatusServiceUnavailable, Title: "Tokens not stored",
			Message: "The provider issued tokens but they could not be stored. " + restart,
			LogMsg:  "store consent", Err: err, secrets: secrets,
		}
	}
	noRefresh := tok.RefreshToken == "" && !preset.NoRefreshToken
	h.log.Info().Str("connection", name).Str("account", tok.AccountID).Int64("generation", st.Generation).
		Strs("missing_scopes", missing).Bool("refresh_token", tok.RefreshToken != "").
		Msg("callback: connected")
	return successPage(name, title, tok, t, missing, noRefresh, preset.Name), nil
}

// discardState takes the pending authorization of a callback that reports a provider error, so
// that its state cannot be used again. Best effort: it expires anyway.
func (h *Handler) discardState(r *http.Request, name string) {
	state := r.URL.Query().Get("state")
	ck, err := r.Cookie(cookieName(name))
	if state == "" || err != nil || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(state)) != 1 {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.storeTimeout)
	defer cancel()
	if _, err := h.store.TakeAuthState(ctx, name, stateKey(state)); err != nil && !errors.Is(err, store.ErrNotFound) {
		h.log.Warn().Str("connection", name).Str("detail", redact.String(err.Error(), maxLogged, requestSecrets(r, name)...)).
			Msg("discard auth state")
	}
}

// exchangeError explains a failed code exchange.
func exchangeError(c config.Connection, name string, err error, verifier string) *pageError {
	restart := "Start again at /api/authorize/" + name + "."
	pe := &pageError{
		Status: http.StatusBadGateway, Title: "Sign-in could not finish",
		Message: "Could not reach " + providerTitle(c) + " to finish the sign-in. " + restart,
		LogMsg:  "exchange code", Err: err, secrets: []string{verifier},
	}
	var te *tokenclient.Error
	if !errors.As(err, &te) {
		return pe
	}
	switch {
	case te.Gone != "":
		pe.Status, pe.Title = http.StatusGone, providerTitle(c)+" is shut down"
		pe.Message = "Cannot connect " + name + ": " + te.Gone + "."
	case te.Class == tokenclient.Revoked:
		pe.Message = "The provider refused the code. " + restart
		var why []string
		for _, s := range []string{te.Code, te.Detail} {
			if s != "" {
				why = append(why, s)
			}
		}
		if len(why) > 0 {
			pe.Details = []string{"The provider said: " + strings.Join(why, ": ")}
		}
	}
	return pe
}

// missingScopes lists the scopes of want that granted lacks, in want's order.
func missingScopes(want, granted []string) []string {
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

func (h *Handler) newState() (string, error) {
	b := make([]byte, stateBytes)
	if _, err := io.ReadFull(h.rand, b); err != nil {
		return "", fmt.Errorf("read random state: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// stateKey is the store key of a state: the state itself never reaches the store.
func stateKey(state string) string {
	sum := sha256.Sum256([]byte(state))
	return hex.EncodeToString(sum[:])
}

func cookieName(name string) string { return cookiePrefix + name }

// cookiePath scopes the state cookie to the callback: the path of the configured redirect URL,
// which is where the provider sends the browser back (behind a proxy it may differ from the
// route).
func cookiePath(c config.Connection) string {
	if u, err := url.Parse(c.RedirectURL); err == nil && u.Path != "" {
		return u.Path
	}
	return "/api/callback/" + c.Name
}

// secureCookie marks the cookie Secure when the callback is reached over https; a plain-http
// localhost callback would never get a Secure cookie back.
func secureCookie(c config.Connection) bool {
	u, err := url.Parse(c.RedirectURL)
	return err == nil && strings.EqualFold(u.Scheme, "https")
}

func providerTitle(c config.Connection) string {
	switch {
	case c.Preset.Title != "":
		return c.Preset.Title
	case c.Preset.Name != "":
		return c.Preset.Name
	}
	return "the provider"
}

// minutes writes a TTL for people.
func minutes(d time.Duration) string {
	if d%time.Minute == 0 {
		if d == time.Minute {
			return "1 minute"
		}
		return fmt.Sprintf("%d minutes", d/time.Minute)
	}
	return d.String()
}

// requestSecrets are the request's values that must never be logged or shown: the code (the
// authorization code on a callback, the function key on an authorize), the state and its cookie.
func requestSecrets(r *http.Request, name string) []string {
	q := r.URL.Query()
	s := []string{q.Get("code"), q.Get("state")}
	if ck, err := r.Cookie(cookieName(name)); err == nil {
		s = append(s, ck.Value)
	}
	return s
}

func unknownConnection(name string) *pageError {
	shown := redact.Truncate(name, maxName)
	return &pageError{
		Status: http.StatusNotFound, Title: "Unknown connection",
		Message: "No connection named \"" + shown + "\" is configured (settings OAUTH_<NAME>_*).",
		LogMsg:  "unknown connection",
	}
}
