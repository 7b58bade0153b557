package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
)

// SpentInvite records that an invitation connected an account. It is the row Invite-<ID> of the
// account's partition, written in the same transaction as the pair it brought (SaveInvitedConsent),
// so an invitation connects at most once. List and Get never return it.
type SpentInvite struct {
	ID        string    // the invitation's id: 1-64 hex digits
	SpentAt   time.Time // when the account was connected through it
	ExpiresAt time.Time // the invitation's own expiry
	// Fingerprint is Fingerprint of the access token stored with it: a retried save that finds
	// the invitation spent can tell its own write from another's.
	Fingerprint string
}

// Property names of a SpentInvite row.
const (
	propSpentAt     = "SpentAt"
	propFingerprint = "Fingerprint"
)

// maxBatch is the most operations one entity group transaction may hold.
const maxBatch = 100

// checkInviteID validates an invitation id: 1 to 64 hex digits (it becomes part of a row key).
func checkInviteID(id string) error {
	if id == "" || len(id) > 64 {
		return fmt.Errorf("invitation id: want 1-64 hex digits, got %d characters", len(id))
	}
	for _, r := range id {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return errors.New("invitation id: not lower-case hex")
		}
	}
	return nil
}

// CheckInviteID is the store's rule for invitation ids, for the in-memory store.
func CheckInviteID(id string) error { return checkInviteID(id) }

func invitePropsOf(inv SpentInvite) map[string]any {
	p := map[string]any{propFingerprint: inv.Fingerprint}
	putTime(p, propSpentAt, inv.SpentAt)
	putTime(p, propExpiresAt, inv.ExpiresAt)
	return p
}

func inviteFrom(e aztables.EDMEntity) (SpentInvite, error) {
	r := propReader{row: e.RowKey, p: e.Properties}
	inv := SpentInvite{
		ID:          strings.TrimPrefix(e.RowKey, rowInvitePrefix),
		SpentAt:     r.time(propSpentAt),
		ExpiresAt:   r.time(propExpiresAt),
		Fingerprint: r.str(propFingerprint),
	}
	return inv, r.err
}

// SaveInvitedConsent is SaveConsent for a sign-in started from an invitation: in the same
// transaction it inserts inv's row, so that if the invitation was already spent nothing is
// written and the error matches ErrConflict. Of concurrent saves spending one invitation at most
// one succeeds. A save that committed but whose answer was lost also comes back ErrConflict from
// its retry: GetInvite then shows inv.Fingerprint if it was this one.
func (s *Store) SaveInvitedConsent(ctx context.Context, name string, t Tokens, st Status, inv SpentInvite) error {
	if err := checkName(name); err != nil {
		return fmt.Errorf("store: save invited consent: %w", err)
	}
	if err := checkInviteID(inv.ID); err != nil {
		return fmt.Errorf("store: save invited consent %s: %w", name, err)
	}
	st.RefreshDeadline = t.RefreshExpiresAt
	now := s.now()
	var actions []aztables.TransactionAction
	for _, r := range []struct {
		rk    string
		props map[string]any
		typ   aztables.TransactionType
	}{
		{rowInvitePrefix + inv.ID, invitePropsOf(inv), aztables.TransactionTypeAdd},
		{RowAccessToken, accessProps(t, now), aztables.TransactionTypeInsertReplace},
		{RowRefreshToken, refreshProps(t, now), aztables.TransactionTypeInsertReplace},
		{RowStatus, statusProps(st, t.ExpiresAt), aztables.TransactionTypeInsertReplace},
	} {
		body, err := s.encodeRow(name, r.rk, r.props)
		if err != nil {
			return fmt.Errorf("store: save invited consent %s: %w", name, err)
		}
		actions = append(actions, aztables.TransactionAction{ActionType: r.typ, Entity: body})
	}
	if _, err := s.transact(ctx, actions); err != nil {
		return fmt.Errorf("store: save invited consent %s: %w", name, err)
	}
	return nil
}

// GetInvite reads the record of invitation id in partition name; ErrNotFound when the invitation
// was never spent there.
func (s *Store) GetInvite(ctx context.Context, name, id string) (SpentInvite, error) {
	if err := checkName(name); err != nil {
		return SpentInvite{}, fmt.Errorf("store: get invite: %w", err)
	}
	if err := checkInviteID(id); err != nil {
		return SpentInvite{}, fmt.Errorf("store: get invite %s: %w", name, err)
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	resp, err := s.client.GetEntity(ctx, name, rowInvitePrefix+id, nil)
	if err != nil {
		return SpentInvite{}, fmt.Errorf("store: get invite %s: %w", name, classify(err))
	}
	e, err := decodeEntity(resp.Value)
	if err != nil {
		return SpentInvite{}, fmt.Errorf("store: get invite %s: %w", name, err)
	}
	inv, err := inviteFrom(e)
	if err != nil {
		return SpentInvite{}, fmt.Errorf("store: get invite %s: %w", name, err)
	}
	return inv, nil
}

// Remove deletes partition r.Name: its AccessToken, RefreshToken and Status rows and every spent
// invitation recorded there. The token rows are deleted in one transaction conditional on the
// ETags r holds, so if any of them changed since r was read (a refresh committed, a consent
// saved), or a row exists that r did not have, nothing of them is deleted and the error matches
// ErrConflict: re-read, and remove what is there now. A partition with no rows at all is
// ErrNotFound. It returns how many rows it deleted. Pending authorizations live in the
// connection's own partition and are left to expire.
func (s *Store) Remove(ctx context.Context, r *Record) (int, error) {
	if r == nil {
		return 0, errors.New("store: remove: nil record")
	}
	name := r.Name
	if err := checkName(name); err != nil {
		return 0, fmt.Errorf("store: remove: %w", err)
	}
	rows, err := s.partitionRows(ctx, name)
	if err != nil {
		return 0, fmt.Errorf("store: remove %s: %w", name, err)
	}
	held := map[string]struct {
		has  bool
		etag azcore.ETag
	}{
		RowAccessToken:  {r.HasAccess, r.ETags.Access},
		RowRefreshToken: {r.HasRefresh, r.ETags.Refresh},
		RowStatus:       {r.HasStatus, r.ETags.Status},
	}
	var token, invites []aztables.TransactionAction
	for rk, etag := range rows {
		switch {
		case strings.HasPrefix(rk, rowInvitePrefix):
			invites = append(invites, deleteAction(name, rk, etag))
		case rk == RowAccessToken || rk == RowRefreshToken || rk == RowStatus:
			h := held[rk]
			if !h.has {
				return 0, fmt.Errorf("store: remove %s: a %s row was written since the read: %w", name, rk, ErrConflict)
			}
			if h.etag == "" {
				return 0, fmt.Errorf("store: remove %s: %s row has no known ETag: %w", name, rk, ErrConflict)
			}
			token = append(token, deleteAction(name, rk, h.etag))
		}
	}
	for rk, h := range held {
		if _, ok := rows[rk]; h.has && !ok {
			return 0, fmt.Errorf("store: remove %s: the %s row is gone since the read: %w", name, rk, ErrConflict)
		}
	}
	if len(token) == 0 && len(invites) == 0 {
		return 0, fmt.Errorf("store: remove %s: %w", name, ErrNotFound)
	}
	n := 0
	if len(token) > 0 {
		if _, err := s.transact(ctx, token); err != nil {
			if errors.Is(err, ErrNotFound) {
				err = fmt.Errorf("a row was deleted meanwhile: %w", ErrConflict)
			}
			return 0, fmt.Errorf("store: remove %s: %w", name, err)
		}
		n += len(token)
	}
	// The invitation records go once the tokens are gone; a failure here leaves only them.
	for len(invites) > 0 {
		k := min(len(invites), maxBatch)
		if _, err := s.transact(ctx, invites[:k]); err != nil && !errors.Is(err, ErrNotFound) {
			return n, fmt.Errorf("store: remove %s: invitation records: %w", name, err)
		}
		n += k
		invites = invites[k:]
	}
	return n, nil
}

func deleteAction(pk, rk string, etag azcore.ETag) aztables.TransactionAction {
	e := etag
	// The body of a delete names only the keys; encodeEntity never fails on them.
	body, _ := encodeEntity(pk, rk, map[string]any{})
	return aztables.TransactionAction{ActionType: aztables.TransactionTypeDelete, Entity: body, IfMatch: &e}
}

// partitionRows returns the row keys and ETags of every row of partition name except pending
// authorizations, following continuation pages. It reads keys only.
func (s *Store) partitionRows(ctx context.Context, name string) (map[string]azcore.ETag, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	f, err := filter("PartitionKey eq {pk}", map[string]string{"pk": name})
	if err != nil {
		return nil, err
	}
	sel := "PartitionKey,RowKey"
	format := aztables.MetadataFormatMinimal
	pager := s.client.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &f, Select: &sel, Format: &format})
	rows := map[string]azcore.ETag{}
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, classify(err)
		}
		for _, raw := range page.Entities {
			e, err := decodeEntity(raw)
			if err != nil {
				return nil, err
			}
			if e.PartitionKey != name || strings.HasPrefix(e.RowKey, rowAuthStatePrefix) {
				continue
			}
			rows[e.RowKey] = azcore.ETag(e.ETag)
		}
	}
	return rows, nil
}
