package oauthserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/ory/fosite"
)

// maxFormBytes bounds token and consent request bodies.
const maxFormBytes = 64 << 10

// Fault is a failure injected into one upcoming token request.
type Fault int

const (
	// FaultDropResponse processes the request normally (a refresh rotates
	// the pair) and then closes the connection without answering, like a
	// response lost in transit.
	FaultDropResponse Fault = iota + 1
	// FaultUnavailable answers 503 temporarily_unavailable without
	// processing the request.
	FaultUnavailable
)

// InjectTokenFaults queues faults; each later token request takes the next
// one, in order, until the queue is empty.
func (s *Server) InjectTokenFaults(faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, faults...)
}

func (s *Server) nextFault() Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.faults) == 0 {
		return 0
	}
	f := s.faults[0]
	s.faults = s.faults[1:]
	return f
}

// graceEntry is the cached answer to a successful refresh, replayed for an
// identical repeat within the grace window.
type graceEntry struct {
	clientID   string
	until      time.Time
	body       []byte
	newAccess  string // signature of the access token the response issued
	newRefresh string // signature of the refresh token the response issued
	accessUsed bool   // the new access token was presented at the userinfo endpoint
}

// tokenHash keys the grace cache, so that the cache holds no usable token.
func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// response is a buffered HTTP answer, so that it can be cached, replayed or
// dropped.
type response struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newResponse() *response { return &response{header: make(http.Header)} }

func (r *response) Header() http.Header { return r.header }

func (r *response) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(p)
}

func (r *response) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *response) writeTo(w http.ResponseWriter) {
	for k, v := range r.header {
		w.Header()[k] = v
	}
	if r.status == 0 {
		r.status = http.StatusOK
	}
	w.WriteHeader(r.status)
	_, _ = w.Write(r.body.Bytes())
}

func jsonResponse(status int, body []byte) *response {
	resp := newResponse()
	resp.header.Set("Content-Type", "application/json;charset=UTF-8")
	resp.header.Set("Cache-Control", "no-store")
	resp.header.Set("Pragma", "no-cache")
	resp.status = status
	resp.body.Write(body)
	return resp
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if s.hook != nil {
		s.hook(r)
	}
	fault := s.nextFault()
	if fault == FaultUnavailable {
		body, _ := json.Marshal(map[string]string{
			"error":             "temporarily_unavailable",
			"error_description": "Injected fault: the server is temporarily unavailable.",
		})
		jsonResponse(http.StatusServiceUnavailable, body).writeTo(w)
		return
	}

	resp := s.token(r.Context(), r)

	if fault == FaultDropResponse {
		dropConnection(w)
		return
	}
	resp.writeTo(w)
}

// dropConnection closes the client's connection without an HTTP answer.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	// Without hijacking (HTTP/2), aborting the handler resets the stream.
	panic(http.ErrAbortHandler)
}

// token runs one token request through fosite, with the grace cache in
// front of it and the counters around it.
func (s *Server) token(ctx context.Context, r *http.Request) *response {
	s.tokenMu.Lock()
	defer s.tokenMu.Unlock()

	// Parsing before fosite (which parses the same way, idempotently) lets the
	// grace cache see the form. Errors are left for fosite to report.
	_ = r.ParseMultipartForm(maxFormBytes)
	grantType := r.PostForm.Get("grant_type")
	presented := r.PostForm.Get("refresh_token")

	var wasInactive bool
	if grantType == "refresh_token" && presented != "" {
		if resp := s.graceReplay(ctx, r, presented); resp != nil {
			return resp
		}
		sig := s.strategy.RefreshTokenSignature(ctx, presented)
		_, err := s.store.GetRefreshTokenSession(ctx, sig, nil)
		wasInactive = errors.Is(err, fosite.ErrInactiveToken)
	}

	ar, err := s.provider.NewAccessRequest(ctx, r, &fosite.DefaultSession{})
	var ares fosite.AccessResponder
	if err == nil {
		ares, err = s.provider.NewAccessResponse(ctx, ar)
	}
	if err != nil {
		s.countFailure(grantType, wasInactive && errors.Is(err, fosite.ErrInvalidGrant))
		resp := newResponse()
		s.provider.WriteAccessError(ctx, resp, ar, err)
		return resp
	}

	if sess := ar.GetSession(); sess != nil && sess.GetSubject() != "" {
		ares.SetExtra("user_id", sess.GetSubject())
	}
	body, err := json.Marshal(ares.ToMap())
	if err != nil {
		// The tokens were issued but cannot be delivered; the client will
		// retry, as after any lost response.
		body, _ = json.Marshal(map[string]string{"error": "server_error"})
		return jsonResponse(http.StatusInternalServerError, body)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.issued.AccessTokens = append(s.issued.AccessTokens, ares.GetAccessToken())
	if rt, _ := ares.GetExtra("refresh_token").(string); rt != "" {
		s.issued.RefreshTokens = append(s.issued.RefreshTokens, rt)
	}
	switch grantType {
	case "authorization_code":
		s.stats.CodeExchanges++
		s.grants[ar.GetID()] = true
	case "refresh_token":
		s.stats.Refreshes++
		if s.grace > 0 {
			s.cacheForGrace(ctx, presented, ar.GetClient().GetID(), ares, body)
		}
	}
	return jsonResponse(http.StatusOK, body)
}

func (s *Server) countFailure(grantType string, reuse bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch grantType {
	case "authorization_code":
		s.stats.CodeExchangeFailures++
	case "refresh_token":
		s.stats.RefreshFailures++
		if reuse {
			s.stats.ReuseDetections++
		}
	}
}

// cacheForGrace records a successful refresh for replay. s.mu must be held.
func (s *Server) cacheForGrace(ctx context.Context, presented, clientID string, ares fosite.AccessResponder, body []byte) {
	now := s.now()
	for k, e := range s.graceCache {
		if !now.Before(e.until) {
			delete(s.graceCache, k)
		}
	}
	newRefresh, _ := ares.GetExtra("refresh_token").(string)
	s.graceCache[tokenHash(presented)] = &graceEntry{
		clientID:   clientID,
		until:      now.Add(s.grace),
		body:       body,
		newAccess:  s.strategy.AccessTokenSignature(ctx, ares.GetAccessToken()),
		newRefresh: s.strategy.RefreshTokenSignature(ctx, newRefresh),
	}
}

// graceReplay answers a repeated refresh from the grace cache, or returns
// nil to let fosite decide. Grace holds only while the window is open, the
// request authenticates as the same client, and neither new token has been
// used: a refresh with the new refresh token deactivates it in the store,
// and revoking the grant does too.
func (s *Server) graceReplay(ctx context.Context, r *http.Request, presented string) *response {
	key := tokenHash(presented)
	s.mu.Lock()
	e := s.graceCache[key]
	s.mu.Unlock()
	if e == nil {
		return nil
	}

	_, err := s.store.GetRefreshTokenSession(ctx, e.newRefresh, nil)
	s.mu.Lock()
	ended := err != nil || e.accessUsed || !s.now().Before(e.until)
	if ended {
		delete(s.graceCache, key)
	}
	s.mu.Unlock()
	if ended {
		return nil
	}

	client, err := s.provider.AuthenticateClient(ctx, r, r.PostForm)
	if err != nil || client.GetID() != e.clientID {
		return nil
	}
	s.mu.Lock()
	s.stats.GraceRepeats++
	s.mu.Unlock()
	return jsonResponse(http.StatusOK, e.body)
}

// markAccessUsed ends the grace of the refresh that issued the access token
// with signature sig.
func (s *Server) markAccessUsed(sig string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.graceCache {
		if e.newAccess == sig {
			e.accessUsed = true
		}
	}
}
