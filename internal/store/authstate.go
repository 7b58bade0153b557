package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
)

// PutAuthState stores a pending authorization in connection name's partition under key, a hex
// hash the caller computes from the state it sends to the provider (never the state itself).
// Writing the same key again replaces the row, so a retried put is harmless.
func (s *Store) PutAuthState(ctx context.Context, name, key string, a AuthState) error {
	if err := checkAuthKey(name, key); err != nil {
		return fmt.Errorf("store: put auth state: %w", err)
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	body, err := s.encodeRow(name, rowAuthStatePrefix+key, authStateProps(a))
	if err != nil {
		return fmt.Errorf("store: put auth state %s: %w", name, err)
	}
	if _, err := s.client.UpsertEntity(ctx, body, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace}); err != nil {
		return fmt.Errorf("store: put auth state %s: %w", name, classify(err))
	}
	return nil
}

// TakeAuthState reads and deletes the pending authorization under key. The delete is conditional
// on the ETag read, so of any number of concurrent takers exactly one gets the AuthState; the
// others, and any taker of a missing key, get ErrNotFound. Expiry is the caller's to check.
// A delete whose answer is lost and whose retry then finds the row gone is also ErrNotFound: the
// person starts the authorization again.
func (s *Store) TakeAuthState(ctx context.Context, name, key string) (AuthState, error) {
	if err := checkAuthKey(name, key); err != nil {
		return AuthState{}, fmt.Errorf("store: take auth state: %w", err)
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	rk := rowAuthStatePrefix + key
	resp, err := s.client.GetEntity(ctx, name, rk, nil)
	if err != nil {
		return AuthState{}, fmt.Errorf("store: take auth state %s: %w", name, classify(err))
	}
	e, err := decodeEntity(resp.Value)
	if err != nil {
		return AuthState{}, fmt.Errorf("store: take auth state %s: %w", name, err)
	}
	// A verifier that cannot be opened leaves the row in place (it expires) and fails this take.
	if err := s.openRow(&e); err != nil {
		return AuthState{}, fmt.Errorf("store: take auth state %s: %w", name, err)
	}
	a, err := authStateFrom(e)
	if err != nil {
		return AuthState{}, fmt.Errorf("store: take auth state %s: %w", name, err)
	}
	etag := resp.ETag
	if _, err := s.client.DeleteEntity(ctx, name, rk, &aztables.DeleteEntityOptions{IfMatch: &etag}); err != nil {
		err = classify(err)
		if errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) {
			return AuthState{}, fmt.Errorf("store: take auth state %s: taken by another request: %w", name, ErrNotFound)
		}
		return AuthState{}, fmt.Errorf("store: take auth state %s: %w", name, err)
	}
	return a, nil
}

// checkAuthKey validates the connection name and that key is a hex string of at most 128 digits.
func checkAuthKey(name, key string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if key == "" || len(key) > 128 {
		return fmt.Errorf("auth state key: want 1-128 hex digits, got %d characters", len(key))
	}
	for _, r := range key {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F') {
			return errors.New("auth state key: not hex")
		}
	}
	return nil
}
