package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
)

// rekeyAttempts bounds how often one row is re-read and written again after losing a race.
const rekeyAttempts = 5

// RekeyResult is what Rekey did.
type RekeyResult struct {
	Scanned int // rows holding a secret property (RefreshToken and AuthState rows)
	Changed int // rows rewritten under the first key
	// Failed names each row left as it was: its secret could not be opened (a *seal.OpenError
	// naming the key id), or its write kept failing. Never a value.
	Failed []error
}

// Rekey seals every secret in the table (RefreshToken.Value and AuthState Verifier) under the
// first of Options.Keys: plain values and values under another key are rewritten, values under
// the first key are left alone. Each write merges the one property, conditional on the ETag read,
// so it can run beside a live handler: a row changed meanwhile is re-read and sealed again from
// what it now holds (or left alone when it is already under the first key, or gone). Nothing but
// the seal changes, so a handler whose conditional Commit then loses to Rekey re-reads the same
// plain refresh token and commits again.
//
// Each request is bounded by Options.Timeout; ctx bounds the whole run. The error is non-nil
// when keys are missing, the table cannot be read, or any row is in Failed.
func (s *Store) Rekey(ctx context.Context) (RekeyResult, error) {
	var res RekeyResult
	if s.keys == nil {
		return res, errors.New("store: rekey: no encryption keys are configured")
	}
	f, err := filter("RowKey eq {r} or (RowKey ge {a0} and RowKey lt {a1})", map[string]string{
		"r":  RowRefreshToken,
		"a0": rowAuthStatePrefix,
		"a1": "AuthState.", // '.' follows '-': every key with the prefix sorts before it
	})
	if err != nil {
		return res, fmt.Errorf("store: rekey: %w", err)
	}
	pager := s.client.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &f})
	for pager.More() {
		pctx, cancel := s.withTimeout(ctx)
		page, err := pager.NextPage(pctx)
		cancel()
		if err != nil {
			return res, fmt.Errorf("store: rekey: list rows: %w", classify(err))
		}
		for _, raw := range page.Entities {
			e, err := decodeEntity(raw)
			if err != nil {
				return res, fmt.Errorf("store: rekey: %w", err)
			}
			if _, ok := SecretProperty(e.RowKey); !ok {
				continue // the filter is built to make this impossible
			}
			res.Scanned++
			changed, err := s.rekeyRow(ctx, e)
			if err != nil {
				res.Failed = append(res.Failed, fmt.Errorf("connection %q: %w", e.PartitionKey, err))
			}
			if changed {
				res.Changed++
			}
			if ctx.Err() != nil {
				return res, fmt.Errorf("store: rekey: %w", ctx.Err())
			}
		}
	}
	if len(res.Failed) > 0 {
		return res, fmt.Errorf("store: rekey: %d of %d rows left as they were: %w", len(res.Failed), res.Scanned, errors.Join(res.Failed...))
	}
	return res, nil
}

// rekeyRow seals e's secret under the first key if it is not already, re-reading e after a lost
// race. A row that is gone meanwhile (an authorization taken) is not an error.
func (s *Store) rekeyRow(ctx context.Context, e aztables.EDMEntity) (changed bool, err error) {
	prop, _ := SecretProperty(e.RowKey)
	for attempt := 1; ; attempt++ {
		v, ok := e.Properties[prop].(string)
		if !ok || !s.keys.NeedsRekey(v) {
			return false, nil // no secret there (or one of a type only a read reports), or done
		}
		b := Binding(s.table, e.PartitionKey, e.RowKey, prop)
		plain, _, err := s.keys.Open(v, b)
		if err != nil {
			return false, fmt.Errorf("row %s property %s: %w", e.RowKey, prop, err)
		}
		sealed, err := s.keys.Seal(plain, b)
		if err != nil {
			return false, fmt.Errorf("row %s: %w", e.RowKey, err)
		}
		body, err := encodeEntity(e.PartitionKey, e.RowKey, map[string]any{prop: sealed})
		if err != nil {
			return false, err
		}
		etag := azcore.ETag(e.ETag)
		wctx, cancel := s.withTimeout(ctx)
		_, err = s.client.UpdateEntity(wctx, body, &aztables.UpdateEntityOptions{IfMatch: &etag, UpdateMode: aztables.UpdateModeMerge})
		cancel()
		err = classify(err)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, ErrNotFound):
			return false, nil
		case !errors.Is(err, ErrConflict):
			return false, fmt.Errorf("row %s: write: %w", e.RowKey, err)
		case attempt == rekeyAttempts:
			return false, fmt.Errorf("row %s: changed by other writers %d times; run rekey again: %w", e.RowKey, attempt, err)
		}
		rctx, cancel := s.withTimeout(ctx)
		resp, err := s.client.GetEntity(rctx, e.PartitionKey, e.RowKey, nil)
		cancel()
		if err = classify(err); errors.Is(err, ErrNotFound) {
			return false, nil
		} else if err != nil {
			return false, fmt.Errorf("row %s: re-read: %w", e.RowKey, err)
		}
		if e, err = decodeEntity(resp.Value); err != nil {
			return false, err
		}
		e.ETag = string(resp.ETag)
	}
}
