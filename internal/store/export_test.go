package store

import (
	"context"
	"fmt"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
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
		{r.HasStatus, RowStatus, statusProps(r.Status), &r.ETags.Status},
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
