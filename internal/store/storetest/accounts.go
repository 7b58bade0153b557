package storetest

import (
	"context"
	"errors"
	"fmt"

	"github.com/freshtoken/freshtoken/internal/store"
)

// SaveInvitedConsent is SaveConsent that also records inv as spent in the same transaction: if
// inv was already spent in name's partition nothing is written and the error matches
// store.ErrConflict (HTTP 409), as the table answers an insert of an existing row.
func (m *Memory) SaveInvitedConsent(ctx context.Context, name string, t store.Tokens, st store.Status, inv store.SpentInvite) (err error) {
	d := m.data()
	d.runHook(OpSaveInvitedConsent, name)
	d.mu.Lock()
	defer d.mu.Unlock()
	f, err := d.begin(ctx, OpSaveInvitedConsent, name)
	defer d.settle(len(d.calls)-1, &err)
	if err == nil {
		err = checkName(name)
	}
	if err == nil {
		err = store.CheckInviteID(inv.ID)
	}
	if err == nil && f != nil && !f.Applied {
		err = f.Err
	}
	if err == nil {
		if p := d.parts[name]; p != nil {
			if _, spent := p.invites[inv.ID]; spent {
				err = errExists()
			}
		}
	}
	if err != nil {
		return fmt.Errorf("storetest: save invited consent %s: %w", name, err)
	}
	st.RefreshDeadline = t.RefreshExpiresAt
	if err := m.writePair(name, t, st); err != nil {
		return fmt.Errorf("storetest: save invited consent %s: %w", name, err)
	}
	inv.SpentAt, inv.ExpiresAt = storedTime(inv.SpentAt), storedTime(inv.ExpiresAt)
	d.part(name).invites[inv.ID] = inv
	if f != nil {
		return fmt.Errorf("storetest: save invited consent %s: %w", name, f.Err)
	}
	return nil
}

// GetInvite returns the record of invitation id in name's partition; store.ErrNotFound when it
// was never spent there.
func (m *Memory) GetInvite(ctx context.Context, name, id string) (_ store.SpentInvite, err error) {
	d := m.data()
	defer d.runHook(OpGetInvite, name)
	d.mu.Lock()
	defer d.mu.Unlock()
	f, err := d.begin(ctx, OpGetInvite, name)
	defer d.settle(len(d.calls)-1, &err)
	if err == nil && f != nil {
		err = f.Err
	}
	if err == nil {
		err = checkName(name)
	}
	if err == nil {
		err = store.CheckInviteID(id)
	}
	var inv store.SpentInvite
	if err == nil {
		var ok bool
		if p := d.parts[name]; p != nil {
			inv, ok = p.invites[id]
		}
		if !ok {
			err = errMissing()
		}
	}
	if err != nil {
		return store.SpentInvite{}, fmt.Errorf("storetest: get invite %s: %w", name, err)
	}
	return inv, nil
}

// Remove deletes r's partition as store.Store.Remove does: the three token rows, conditional on
// r's ETags (a row r lacks that exists, or a stale ETag, is store.ErrConflict and deletes
// nothing), then the spent invitations. Pending authorizations stay. A partition with nothing
// to delete is store.ErrNotFound.
func (m *Memory) Remove(ctx context.Context, r *store.Record) (_ int, err error) {
	if r == nil {
		return 0, errors.New("storetest: remove: nil record")
	}
	d := m.data()
	d.runHook(OpRemove, r.Name)
	d.mu.Lock()
	defer d.mu.Unlock()
	f, err := d.begin(ctx, OpRemove, r.Name)
	defer d.settle(len(d.calls)-1, &err)
	if err == nil {
		err = checkName(r.Name)
	}
	if err == nil && f != nil && !f.Applied {
		err = f.Err
	}
	p := d.parts[r.Name]
	var cur store.ETags
	if p != nil {
		cur = p.etags
	}
	if err == nil {
		for _, row := range []struct {
			name     string
			has      bool
			held, at string
		}{
			{store.RowAccessToken, r.HasAccess, string(r.ETags.Access), string(cur.Access)},
			{store.RowRefreshToken, r.HasRefresh, string(r.ETags.Refresh), string(cur.Refresh)},
			{store.RowStatus, r.HasStatus, string(r.ETags.Status), string(cur.Status)},
		} {
			switch {
			case row.at != "" && !row.has:
				err = fmt.Errorf("a %s row was written since the read: %w", row.name, store.ErrConflict)
			case row.at == "" && row.has:
				err = fmt.Errorf("the %s row is gone since the read: %w", row.name, store.ErrConflict)
			case row.at != "" && row.held == "":
				err = fmt.Errorf("%s row has no known ETag: %w", row.name, store.ErrConflict)
			case row.at != row.held:
				err = errPrecondition()
			}
			if err != nil {
				break
			}
		}
	}
	if err == nil && (p == nil || p.empty() && len(p.invites) == 0) {
		err = errMissing()
	}
	if err != nil {
		return 0, fmt.Errorf("storetest: remove %s: %w", r.Name, err)
	}
	n := len(p.invites)
	for _, t := range []string{string(cur.Access), string(cur.Refresh), string(cur.Status)} {
		if t != "" {
			n++
		}
	}
	p.tokens, p.status, p.etags = store.Tokens{}, store.Status{}, store.ETags{}
	p.invites = map[string]store.SpentInvite{}
	if f != nil {
		return 0, fmt.Errorf("storetest: remove %s: %w", r.Name, f.Err)
	}
	return n, nil
}

// Invites returns the spent invitations recorded in name's partition, by id, without counting
// the call.
func (m *Memory) Invites(name string) map[string]store.SpentInvite {
	d := m.data()
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]store.SpentInvite{}
	if p := d.parts[name]; p != nil {
		for k, v := range p.invites {
			out[k] = v
		}
	}
	return out
}
