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
	"strings"
	"time"

	"github.com/freshtoken/freshtoken/internal/connection"
	"github.com/freshtoken/freshtoken/internal/human"
	"github.com/freshtoken/freshtoken/internal/invite"
	"github.com/freshtoken/freshtoken/internal/notify"
	"github.com/freshtoken/freshtoken/internal/redact"
	"github.com/freshtoken/freshtoken/internal/seal"
	"github.com/freshtoken/freshtoken/internal/store"
	"github.com/freshtoken/freshtoken/internal/tokenclient"
	"github.com/rs/zerolog"
	"golang.org/x/oauth2"
)

// Defaults for the zero values of Options. The code exchange is bounded by the connection's
// token client (TOKEN_REQUEST_TIMEOUT), like every request to a token endpoint.
const (
	defaultStateTTL     = 10 * time.Minute
	defaultStoreTimeout = 10 * time.Second
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
	// SaveInvitedConsent is SaveConsent spending an invitation in the same transaction: an
	// error matching store.ErrConflict when it was already spent, and then nothing is written.
	SaveInvitedConsent(ctx context.Context, name string, t store.Tokens, st store.Status, inv store.SpentInvite) error
	// GetInvite reads the record of a spent invitation; store.ErrNotFound when unspent.
	GetInvite(ctx context.Context, name, id string) (store.SpentInvite, error)
}

// Options configure a Handler. Zero durations take the defaults above; a nil Now is time.Now
// and a nil Rand is crypto/rand.Reader.
type Options struct {
	Store       Store
	Connections []*connection.Connection
	Now         func() time.Time
	Log         zerolog.Logger
	Rand        io.Reader // the source of states
	// StateTTL is how long a started sign-in may take.
	StateTTL     time.Duration
	StoreTimeout time.Duration // each store call
	// Invites checks invitations opened at the Callback (?invite=...); nil: invitations are
	// refused (INVITE_SIGNING_KEY unset).
	Invites *invite.Signer
}

// Handler serves GET /api/authorize/{connection}[/{label}] and GET /api/callback/{connection}. It is safe
// for concurrent use.
type Handler struct {
	store        Store
	conns        map[string]*connection.Connection
	now          func() time.Time
	log          zerolog.Logger
	rand         io.Reader
	ttl          time.Duration
	storeTimeout time.Duration
	invites      *invite.Signer
}

// New returns a Handler for o.
func New(o Options) *Handler {
	h := &Handler{
		store:        o.Store,
		conns:        make(map[string]*connection.Connection, len(o.Connections)),
		now:          o.Now,
		log:          o.Log,
		rand:         o.Rand,
		ttl:          o.StateTTL,
		storeTimeout: o.StoreTimeout,
		invites:      o.Invites,
	}
	for _, c := range o.Connections {
		h.conns[c.Name] = c
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.rand == nil {
		h.rand = rand.Reader
	}
	if h.ttl <= 0 {
		h.ttl = defaultStateTTL
	}
	if h.storeTimeout <= 0 {
		h.storeTimeout = defaultStoreTimeout
	}
	return h
}

// Register adds the routes to mux. Each wildcard matches exactly one path segment, so nothing
// else under /api/authorize/ or /api/callback/ reaches the handlers.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/authorize/{connection}", h.Authorize)
	mux.HandleFunc("GET /api/authorize/{connection}/{label}", h.Authorize)
	mux.HandleFunc("GET /api/callback/{connection}", h.Callback)
}

// Authorize starts a sign-in: it records a state and redirects the browser to the provider's
// consent page. /api/authorize/NAME/LABEL does so for account LABEL of a many-account
// connection. ?replace=true allows the callback to connect a different account than the one
// stored. The redirect URL sent to the provider is always the configured one.
func (h *Handler) Authorize(w http.ResponseWriter, r *http.Request) {
	name, label := r.PathValue("connection"), r.PathValue("label")
	if err := h.authorize(w, r, name, label); err != nil {
		h.fail(w, r, "authorize", name, err)
	}
}

// Callback finishes a sign-in: it checks the state against the browser's cookie, takes the
// pending authorization once, exchanges the code and stores the token pair.
func (h *Handler) Callback(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("connection")
	if r.URL.Query().Has(invite.Param) {
		// An invitation opened in a browser: the start of a sign-in, not its return.
		if err := h.openInvitation(w, r, name); err != nil {
			h.fail(w, r, "invitation", name, err)
		}
		return
	}
	c, known := h.conns[name]
	if known {
		// The state is single-use whatever happens next.
		http.SetCookie(w, &http.Cookie{
			Name: cookieName(name), Value: "", Path: c.CallbackPath(), MaxAge: -1,
			HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: c.SecureCallback(),
		})
	}
	p, err := h.callback(r, name)
	if err != nil {
		h.fail(w, r, "callback", name, err)
		return
	}
	h.render(w, http.StatusOK, p)
}

func (h *Handler) authorize(w http.ResponseWriter, r *http.Request, name, label string) error {
	c, ok := h.conns[name]
	if !ok {
		return unknownConnection(name)
	}
	if err := checkAccountPath(c, label); err != nil {
		return err
	}
	return h.start(w, r, c, store.AuthState{Label: label, Replace: r.URL.Query().Get("replace") == "true"})
}

// start records a pending authorization a (its verifier and expiry added) in c's partition, sets
// the state cookie and redirects the browser to the provider's consent page.
func (h *Handler) start(w http.ResponseWriter, r *http.Request, c *connection.Connection, a store.AuthState) error {
	name := c.Name
	if gone := c.Preset.Gone; gone != "" {
		return &pageError{
			Status:  http.StatusGone,
			Title:   c.Title() + " is shut down",
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
	a.Verifier, a.ExpiresAt = verifier, h.now().Add(h.ttl)
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
		Name: cookieName(name), Value: state, Path: c.CallbackPath(),
		MaxAge: int(h.ttl / time.Second), HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: c.SecureCallback(),
	})
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("Location", c.Client.AuthCodeURL(state, verifier))
	w.WriteHeader(http.StatusFound)
	ev := h.log.Info().Str("connection", name)
	if a.Label != "" {
		ev = ev.Str("account", a.Label)
	}
	if a.Invite != "" {
		ev = ev.Str("invitation", a.Invite)
	}
	ev.Bool("replace", a.Replace).Bool("pkce", verifier != "").Msg("authorize: sent to the provider's consent page")
	return nil
}

// callback runs the steps of a returning sign-in in order; the first that fails ends it with
// the stored tokens as they were.
func (h *Handler) callback(r *http.Request, name string) (*page, error) {
	c, ok := h.conns[name]
	if !ok {
		return nil, unknownConnection(name)
	}
	a, code, err := h.checkState(r, c)
	if err != nil {
		return nil, err
	}
	target, err := signInTarget(c, a)
	if err != nil {
		return nil, err
	}
	// From here the provider is involved and the code is single-use: a browser that gives up
	// must not cancel the exchange or the save, or issued tokens would be lost halfway.
	ctx := context.WithoutCancel(r.Context())
	tok, err := h.exchange(ctx, c, code, a.Verifier)
	if err != nil {
		return nil, err
	}
	prev, err := h.checkAccount(ctx, target, a, tok)
	if err != nil {
		return nil, err
	}
	t, st, missing, err := h.save(ctx, target, prev, tok, r.URL.Query().Get("scope"), a.Invite)
	if err != nil {
		return nil, err
	}
	return h.connected(target, tok, t, st, missing), nil
}

// restart tells a person how to try again.
func restart(name string) string { return "Start again at /api/authorize/" + name + "." }

// restartAt tells a person how to try again for c, an account or a connection.
func restartAt(c *connection.Connection) string { return "Start again at " + authorizePath(c) + "." }

// authorizePath is the path that starts consent for c: /api/authorize/NAME, or
// /api/authorize/NAME/LABEL for an account.
func authorizePath(c *connection.Connection) string {
	if c.Label != "" {
		return "/api/authorize/" + c.Base + "/" + c.Label
	}
	return "/api/authorize/" + c.Name
}

// checkState checks what the browser brought back: no provider error, a state matching this
// browser's cookie, a pending authorization taken once and not expired, and a code. It returns
// the authorization and the code.
func (h *Handler) checkState(r *http.Request, c *connection.Connection) (store.AuthState, string, error) {
	name := c.Name
	q := r.URL.Query()
	if q.Has("error") {
		h.discardState(r, name)
		return store.AuthState{}, "", providerError(r, c)
	}
	state := q.Get("state")
	ck, err := r.Cookie(cookieName(name))
	if state == "" || err != nil || ck.Value == "" {
		return store.AuthState{}, "", &pageError{
			Status: http.StatusBadRequest, Title: "No sign-in in progress",
			Message: "No sign-in is in progress from this browser (the callback carries no state, or the browser sent no state cookie). " +
				"Start again at /api/authorize/" + name + " in this browser.",
			LogMsg: "callback: missing state or state cookie",
			Err:    fmt.Errorf("state present: %t, cookie present: %t", state != "", err == nil && ck.Value != ""),
		}
	}
	if subtle.ConstantTimeCompare([]byte(ck.Value), []byte(state)) != 1 {
		return store.AuthState{}, "", &pageError{
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
		return store.AuthState{}, "", &pageError{
			Status: http.StatusBadRequest, Title: "Sign-in link already used",
			Message: "This sign-in link was already used or is unknown. " + restart(name),
			LogMsg:  "callback: state already used or unknown",
		}
	case errors.As(err, new(*seal.OpenError)):
		return store.AuthState{}, "", &pageError{
			Status: http.StatusInternalServerError, Title: "Sign-in could not finish",
			Message: "The pending sign-in is sealed with an encryption key this app does not hold (see TOKEN_ENCRYPTION_KEYS). " + restart(name),
			LogMsg:  "take auth state: the verifier cannot be opened", Err: err,
		}
	case err != nil:
		return store.AuthState{}, "", &pageError{
			Status: http.StatusServiceUnavailable, Title: "Sign-in could not finish",
			Message: "The token store is unavailable, so the sign-in could not be checked. " + restart(name),
			LogMsg:  "take auth state", Err: err,
		}
	}
	if h.now().After(a.ExpiresAt) {
		return store.AuthState{}, "", &pageError{
			Status: http.StatusBadRequest, Title: "Sign-in expired",
			Message: "This sign-in expired after " + human.Duration(h.ttl) + ". " + restart(name),
			LogMsg:  "callback: state expired",
			Err:     fmt.Errorf("expired at %s", a.ExpiresAt.UTC().Format(time.RFC3339)),
		}
	}
	code := q.Get("code")
	if code == "" {
		return store.AuthState{}, "", &pageError{
			Status: http.StatusBadRequest, Title: "No authorization code",
			Message: c.Title() + " sent no authorization code. " + restart(name),
			LogMsg:  "callback: no code",
		}
	}
	return a, code, nil
}

// providerError explains a callback that reports a provider error instead of a code.
func providerError(r *http.Request, c *connection.Connection) *pageError {
	q := r.URL.Query()
	code := redact.String(q.Get("error"), 100, requestSecrets(r, c.Name)...)
	desc := redact.String(q.Get("error_description"), maxShown, requestSecrets(r, c.Name)...)
	pe := &pageError{
		Status: http.StatusBadRequest, Title: "Sign-in failed",
		Message: c.Title() + " reported an error instead of granting access. " + restart(c.Name),
		LogMsg:  "callback: the provider reported an error",
		Err:     fmt.Errorf("provider error %q: %s", code, desc),
		Details: []string{"Error: " + code},
	}
	if code == "access_denied" {
		pe.Status, pe.Title = http.StatusForbidden, "Access declined"
		pe.Message = "You declined access at " + c.Title() + ", so " + c.Name + " was not connected. " + restart(c.Name)
		pe.LogMsg = "callback: access declined at the provider"
	}
	if desc != "" {
		pe.Details = append(pe.Details, "Description: "+desc)
	}
	return pe
}

// exchange trades the code for the first pair. The token client bounds the request.
func (h *Handler) exchange(ctx context.Context, c *connection.Connection, code, verifier string) (*tokenclient.Token, error) {
	tok, err := c.Client.Exchange(ctx, code, verifier)
	if err != nil {
		return nil, exchangeError(c, err, verifier)
	}
	return tok, nil
}

// checkAccount reads the stored connection and refuses a consent from another account than
// the one it holds, unless the sign-in asked to replace it. It returns the stored connection
// (nil when there is none).
func (h *Handler) checkAccount(ctx context.Context, c *connection.Connection, a store.AuthState, tok *tokenclient.Token) (*store.Record, error) {
	secrets := []string{tok.AccessToken, tok.RefreshToken, a.Verifier}
	gctx, cancel := context.WithTimeout(ctx, h.storeTimeout)
	prev, err := h.store.Get(gctx, c.Name)
	cancel()
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, &pageError{
			Status: http.StatusServiceUnavailable, Title: "Sign-in could not finish",
			Message: "The provider issued tokens but the stored connection could not be read, so nothing was stored. " + restartAt(c),
			LogMsg:  "read connection", Err: err, secrets: secrets,
		}
	}
	held := prev.Status.AccountID
	if held == "" || tok.AccountID == held || a.Replace {
		return prev, nil
	}
	msg := "This connection belongs to account " + held + ", but you signed in as account " + tok.AccountID + ". "
	if tok.AccountID == "" {
		msg = "This connection belongs to account " + held + ", and " + c.Title() + " did not say which account you signed in with. "
	}
	return nil, &pageError{
		Status: http.StatusConflict, Title: "Another account",
		Message: msg + "Nothing was changed. To replace the account, open " + authorizePath(c) + "?replace=true.",
		LogMsg:  "callback: consent from another account refused",
		Err:     fmt.Errorf("stored account %q, new account %q", held, tok.AccountID),
		secrets: secrets,
	}
}

// save stores the first pair and a fresh status in one transaction, after comparing the granted
// scopes with the ones asked for. redirectScope is the scope the redirect reported (Strava).
func (h *Handler) save(ctx context.Context, c *connection.Connection, prev *store.Record, tok *tokenclient.Token, redirectScope, inviteID string) (store.Tokens, store.Status, []string, error) {
	t, st, missing := c.NewPair(prev, tok, redirectScope, h.now())
	if prev != nil {
		// What was last notified survives a reconnect, so that "recovered" follows a reported failure.
		st = notify.Carry(prev.Status, st)
	}
	if inviteID != "" {
		if err := h.saveInvited(ctx, c, t, st, inviteID); err != nil {
			return store.Tokens{}, store.Status{}, nil, err
		}
		return t, st, missing, nil
	}
	wctx, cancel := context.WithTimeout(ctx, h.storeTimeout)
	err := h.store.SaveConsent(wctx, c.Name, t, st)
	cancel()
	if err != nil {
		return store.Tokens{}, store.Status{}, nil, &pageError{
			Status: http.StatusServiceUnavailable, Title: "Tokens not stored",
			Message: "The provider issued tokens but they could not be stored. " + restartAt(c),
			LogMsg:  "store consent", Err: err, secrets: []string{tok.AccessToken, tok.RefreshToken},
		}
	}
	return t, st, missing, nil
}

// connected logs the new connection and renders its page.
func (h *Handler) connected(c *connection.Connection, tok *tokenclient.Token, t store.Tokens, st store.Status, missing []string) *page {
	noRefresh := tok.RefreshToken == "" && !c.Preset.NoRefreshToken
	h.log.Info().Str("connection", c.Name).Str("account", tok.AccountID).Int64("generation", st.Generation).
		Strs("missing_scopes", missing).Bool("refresh_token", tok.RefreshToken != "").
		Msg("callback: connected")
	return successPage(c.Name, c.Title(), tok, t, missing, noRefresh, c.Preset.Name)
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
func exchangeError(c *connection.Connection, err error, verifier string) *pageError {
	name := c.Name
	pe := &pageError{
		Status: http.StatusBadGateway, Title: "Sign-in could not finish",
		Message: "Could not reach " + c.Title() + " to finish the sign-in. " + restart(name),
		LogMsg:  "exchange code", Err: err, secrets: []string{verifier},
	}
	var te *tokenclient.Error
	if !errors.As(err, &te) {
		return pe
	}
	switch {
	case te.Gone != "":
		pe.Status, pe.Title = http.StatusGone, c.Title()+" is shut down"
		pe.Message = "Cannot connect " + name + ": " + te.Gone + "."
	case te.Class == tokenclient.Revoked:
		pe.Message = "The provider refused the code. " + restart(name)
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
