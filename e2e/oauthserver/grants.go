package oauthserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/ory/fosite"
)

// Accepts reports whether refreshToken is currently active: issued by this
// server, not rotated, not revoked and not expired. It does not consume the
// token. A rotated token inside its grace window is not active.
func (s *Server) Accepts(refreshToken string) bool {
	ctx := context.Background()
	// Under tokenMu, like every handler that changes grants: a revocation rewrites the stored
	// request this reads.
	s.tokenMu.Lock()
	defer s.tokenMu.Unlock()
	req, err := s.store.GetRefreshTokenSession(ctx, s.strategy.RefreshTokenSignature(ctx, refreshToken), nil)
	return err == nil && s.strategy.ValidateRefreshToken(ctx, req, refreshToken) == nil
}

// ActiveAccessToken reports whether accessToken is currently valid: issued
// by this server, not superseded by a refresh, not revoked and not expired.
// Unlike the userinfo endpoint it does not count as using the token.
func (s *Server) ActiveAccessToken(accessToken string) bool {
	s.tokenMu.Lock()
	defer s.tokenMu.Unlock()
	_, ok := s.lookupAccess(context.Background(), accessToken)
	return ok
}

func (s *Server) lookupAccess(ctx context.Context, token string) (fosite.Requester, bool) {
	req, err := s.store.GetAccessTokenSession(ctx, s.strategy.AccessTokenSignature(ctx, token), nil)
	if err != nil || s.strategy.ValidateAccessToken(ctx, req, token) != nil {
		return nil, false
	}
	return req, true
}

// Revoke revokes the whole grant refreshToken belongs to (it may be active
// or already rotated): its access and refresh tokens stop working, and a
// later refresh with any of its refresh tokens is answered invalid_grant.
// It returns ErrUnknownToken when the server holds no such token.
func (s *Server) Revoke(refreshToken string) error {
	ctx := context.Background()
	s.tokenMu.Lock()
	defer s.tokenMu.Unlock()

	req, err := s.store.GetRefreshTokenSession(ctx, s.strategy.RefreshTokenSignature(ctx, refreshToken), nil)
	if req == nil || (err != nil && !errors.Is(err, fosite.ErrInactiveToken)) {
		return ErrUnknownToken
	}
	if err := s.revokeGrant(ctx, req.GetID()); err != nil {
		return fmt.Errorf("oauthserver: revoke: %w", err)
	}
	return nil
}

// RevokeAll revokes every grant the server has issued.
func (s *Server) RevokeAll() error {
	ctx := context.Background()
	s.tokenMu.Lock()
	defer s.tokenMu.Unlock()

	s.mu.Lock()
	ids := make([]string, 0, len(s.grants))
	for id := range s.grants {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	var errs []error
	for _, id := range ids {
		errs = append(errs, s.revokeGrant(ctx, id))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("oauthserver: revoke all: %w", err)
	}
	return nil
}

// revokeGrant deactivates the grant's current refresh token and deletes its
// current access token; earlier ones were retired when they were rotated.
// Grace entries of the grant end because their new refresh token is no
// longer active.
func (s *Server) revokeGrant(ctx context.Context, requestID string) error {
	if err := s.store.RevokeRefreshToken(ctx, requestID); err != nil && !errors.Is(err, fosite.ErrNotFound) {
		return err
	}
	if err := s.store.RevokeAccessToken(ctx, requestID); err != nil && !errors.Is(err, fosite.ErrNotFound) {
		return err
	}
	return nil
}

// handleRevoke is the RFC 7009 revocation endpoint; revoking either token
// of a grant revokes the grant.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	s.tokenMu.Lock()
	err := s.provider.NewRevocationRequest(r.Context(), r)
	s.tokenMu.Unlock()
	s.provider.WriteRevocationResponse(r.Context(), w, err)
}

// handleUserinfo is a minimal protected resource. Presenting an access
// token here uses it, which ends the grace window of the refresh that
// issued it.
func (s *Server) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	var req fosite.Requester
	if ok {
		req, ok = s.lookupAccess(r.Context(), token)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":"invalid_token"}` + "\n"))
		return
	}
	s.markAccessUsed(s.strategy.AccessTokenSignature(r.Context(), token))

	var subject string
	if sess := req.GetSession(); sess != nil {
		subject = sess.GetSubject()
	}
	_ = json.NewEncoder(w).Encode(map[string]string{
		"user_id":   subject,
		"client_id": req.GetClient().GetID(),
		"scope":     strings.Join(req.GetGrantedScopes(), " "),
	})
}
