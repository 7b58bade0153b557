package store

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/freshtoken/freshtoken/internal/seal"
)

// OpenTestStore opens a Store on a fresh table of the shared Azurite, for the contract tests in
// package store_test.
func OpenTestStore(t *testing.T) *Store {
	s, _ := newStore(t)
	return s
}

// Put writes the rows r has, unconditionally, as another writer would (see storetest.Store): it
// sets r's ETags for them and normalizes r's times.
func (s *Store) Put(ctx context.Context, r *Record) error {
	if err := checkName(r.Name); err != nil {
		return fmt.Errorf("store: put: %w", err)
	}
	rows := []struct {
		has   bool
		rk    string
		props map[string]any
		etag  *azcore.ETag
	}{
		{r.HasAccess, RowAccessToken, accessProps(r.Tokens, s.now()), &r.ETags.Access},
		{r.HasRefresh, RowRefreshToken, refreshProps(r.Tokens, s.now()), &r.ETags.Refresh},
		{r.HasStatus, RowStatus, statusProps(r.Status, r.Tokens.ExpiresAt), &r.ETags.Status},
	}
	for _, row := range rows {
		if !row.has {
			continue
		}
		body, err := encodeEntity(r.Name, row.rk, row.props)
		if err != nil {
			return fmt.Errorf("store: put %s: %w", r.Name, err)
		}
		resp, err := s.client.UpsertEntity(ctx, body, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace})
		if err != nil {
			return fmt.Errorf("store: put %s: %w", r.Name, classify(err))
		}
		*row.etag = resp.ETag
	}
	r.Tokens, r.Status = normTokens(r.Tokens), normStatus(r.Status)
	return nil
}

// WithKeys returns a Store on the same table that seals and opens with keys: the handler
// restarted with another TOKEN_ENCRYPTION_KEYS (see storetest.KeyedStore).
func (s *Store) WithKeys(keys *seal.Keyring) *Store {
	c := *s
	c.keys = keys
	return &c
}

// RawSecret returns the secret property of row rowKey of partition name as stored.
func (s *Store) RawSecret(ctx context.Context, name, rowKey string) (string, error) {
	prop, ok := SecretProperty(rowKey)
	if !ok {
		return "", fmt.Errorf("store: raw secret %s/%s: %w", name, rowKey, ErrNotFound)
	}
	resp, err := s.client.GetEntity(ctx, name, rowKey, nil)
	if err != nil {
		return "", fmt.Errorf("store: raw secret %s/%s: %w", name, rowKey, classify(err))
	}
	e, err := decodeEntity(resp.Value)
	if err != nil {
		return "", fmt.Errorf("store: raw secret %s/%s: %w", name, rowKey, err)
	}
	v, _ := e.Properties[prop].(string)
	return v, nil
}

// SetRawSecret overwrites the secret property of the existing row rowKey of partition name with
// value as given, merging, as another writer would.
func (s *Store) SetRawSecret(ctx context.Context, name, rowKey, value string) error {
	prop, ok := SecretProperty(rowKey)
	if !ok {
		return errors.New("store: set raw secret: row has no secret property")
	}
	body, err := encodeEntity(name, rowKey, map[string]any{prop: value})
	if err != nil {
		return err
	}
	match := azcore.ETagAny
	if _, err := s.client.UpdateEntity(ctx, body, &aztables.UpdateEntityOptions{IfMatch: &match, UpdateMode: aztables.UpdateModeMerge}); err != nil {
		return fmt.Errorf("store: set raw secret %s/%s: %w", name, rowKey, classify(err))
	}
	return nil
}

// AccountRange exposes accountRange to the tests.
func AccountRange(name string) (lo, hi string) { return accountRange(name) }
