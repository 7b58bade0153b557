package storetest

import (
	"context"
	"errors"
	"fmt"

	"github.com/freshtoken/freshtoken/internal/store"
)

// The paged reads of a large table (store.Store.Scan and GetMany).
const (
	OpScan    Op = "Scan"
	OpGetMany Op = "GetMany"
)

// Scan selects the partitions store.Store.Scan selects: those whose AccessToken row has no value
// or expires at or before o.ExpiresBefore (every AccessToken row when it is zero), and those
// whose Status row is not plainly ok (State other than ok, a lease owner, an in-flight marker,
// or a RefreshDeadline at or before o.DeadlineBefore when that is set). A missing time selects
// nothing, as a missing property compares false in the table's filters. With ExpiresBefore, a
// partition selected by its expiry that has all three rows carries its Record, as Get reads it.
func (m *Memory) Scan(ctx context.Context, o store.ScanOptions) (_ map[string]store.Candidate, err error) {
	d := m.data()
	defer d.runHook(OpScan, "")
	d.mu.Lock()
	defer d.mu.Unlock()
	f, err := d.begin(ctx, OpScan, "")
	defer d.settle(len(d.calls)-1, &err)
	if err == nil && f != nil {
		err = f.Err
	}
	if err != nil {
		return nil, fmt.Errorf("storetest: scan: %w", err)
	}
	out := map[string]store.Candidate{}
	for name, p := range d.parts {
		var c store.Candidate
		if p.etags.Access != "" {
			exp := p.tokens.ExpiresAt
			due := !o.ExpiresBefore.IsZero() && !exp.IsZero() && !exp.After(storedTime(o.ExpiresBefore))
			if o.ExpiresBefore.IsZero() || p.tokens.AccessToken == "" || due {
				// Memory keeps no UpdatedAt (it has no clock): Stored stays zero, unknown.
				c.Access, c.Expiry, c.Empty = true, exp, p.tokens.AccessToken == ""
			}
			// Memory's three rows are always written together: read whole as the table's are.
			if due && p.etags.Refresh != "" && p.etags.Status != "" {
				c.Record = m.read(name, p)
			}
		}
		if p.etags.Status != "" {
			st := p.status
			dl := st.RefreshDeadline
			if st.State != store.StateOK || st.LeaseOwner != "" || st.InFlight != "" ||
				!o.DeadlineBefore.IsZero() && !dl.IsZero() && !dl.After(storedTime(o.DeadlineBefore)) {
				c.Attention = true
			}
		}
		if c.Access || c.Attention {
			out[name] = c
		}
	}
	return out, nil
}

// GetMany returns the named partitions as Get would, leaving out those with none of the three
// rows. It is counted as one call whatever the number of names.
func (m *Memory) GetMany(ctx context.Context, names []string) (_ map[string]*store.Record, err error) {
	d := m.data()
	defer d.runHook(OpGetMany, "")
	d.mu.Lock()
	defer d.mu.Unlock()
	f, err := d.begin(ctx, OpGetMany, "")
	defer d.settle(len(d.calls)-1, &err)
	if err == nil && f != nil {
		err = f.Err
	}
	if err != nil {
		return nil, fmt.Errorf("storetest: get many: %w", err)
	}
	out := make(map[string]*store.Record, len(names))
	for _, name := range names {
		if name == "" {
			return nil, errors.New("storetest: get many: an empty name")
		}
		if p := d.parts[name]; p != nil && !p.empty() {
			out[name] = m.read(name, p)
		}
	}
	return out, nil
}
