package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
)

// PageSize is the most entities one query request returns (the table service's own limit).
const PageSize = 1000

// GetManyBatch is how many partitions one GetMany request reads. The table service allows at
// most 15 comparisons in a $filter: 12 partition keys and the 3 row keys of a connection.
const GetManyBatch = 12

// ScanOptions select the partitions a refresh pass must look at closely.
type ScanOptions struct {
	// ExpiresBefore selects the partitions whose AccessToken row expires at or before it, or has
	// no value. Zero selects every AccessToken row (the policy knows no bound).
	ExpiresBefore time.Time
	// DeadlineBefore also selects the partitions whose refresh token's known deadline
	// (Status.RefreshDeadline) is at or before it. Zero selects none for that reason.
	DeadlineBefore time.Time
}

// Candidate is a partition Scan selected, with what the scan read of it.
type Candidate struct {
	// Access: its AccessToken row was selected (expiring by ExpiresBefore, or without a value).
	Access bool
	// Expiry is that row's ExpiresAt (zero when none, or when the row was not selected).
	Expiry time.Time
	// Stored is that row's UpdatedAt: when the pair was stored (zero when unknown).
	Stored time.Time
	// Empty: the AccessToken row holds no value (always selected).
	Empty bool
	// Attention: its Status row was selected: State is not ok, a lease or an in-flight marker is
	// set, or the refresh-token deadline is before DeadlineBefore.
	Attention bool
	// Record, when set, is the partition as Get would read it, ETags included: the scan read its
	// three rows whole. It is set only with ExpiresBefore, for a partition whose AccessToken row
	// expires by it and whose three rows were written together (the RefreshToken and Status rows
	// carry that same expiry). A pass may act on it as on a Get; without it, read the partition.
	Record *Record
}

// Scan finds the partitions a pass must look at, without reading every row, in paged queries
// that cost one request per page of 1,000 matching rows:
//   - with o.ExpiresBefore, the three rows of the partitions whose access token expires by it
//     (the RefreshToken and Status rows carry a copy of that expiry), whole, so that a pass
//     needs no other read of them (Candidate.Record); without it, every AccessToken row, keys
//     and times only;
//   - the AccessToken rows without a value;
//   - the Status rows that are not plainly ok, keys only.
//
// A partition no query selects has an access token that expires after o.ExpiresBefore (or
// never), is ok, holds no lease, has no refresh in flight and no refresh-token deadline before
// o.DeadlineBefore. Partitions of AuthState rows only are never selected.
func (s *Store) Scan(ctx context.Context, o ScanOptions) (map[string]Candidate, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	m := map[string]Candidate{}

	var err error
	if o.ExpiresBefore.IsZero() {
		err = s.scanAccessKeys(ctx, m)
	} else {
		err = s.scanDue(ctx, o.ExpiresBefore, m)
	}
	if err != nil {
		return nil, fmt.Errorf("store: scan access tokens: %w", err)
	}
	f, err := filterValues("RowKey eq {a} and Value eq {empty}", map[string]any{"a": RowAccessToken, "empty": ""})
	if err != nil {
		return nil, fmt.Errorf("store: scan: %w", err)
	}
	err = s.queryKeys(ctx, f, "PartitionKey,RowKey,"+propExpiresAt+","+propUpdatedAt, func(e aztables.EDMEntity) error {
		c := m[e.PartitionKey]
		c.Access, c.Empty = true, true
		r := propReader{row: e.RowKey, p: e.Properties}
		c.Expiry, c.Stored = r.time(propExpiresAt), r.time(propUpdatedAt)
		m[e.PartitionKey] = c
		return r.err
	})
	if err != nil {
		return nil, fmt.Errorf("store: scan empty access tokens: %w", err)
	}

	status := "RowKey eq {s} and (State ne {ok} or LeaseOwner ne {empty} or InFlight ne {empty}"
	args := map[string]any{"s": RowStatus, "ok": string(StateOK), "empty": ""}
	if !o.DeadlineBefore.IsZero() {
		status += " or RefreshDeadline le {d}"
		args["d"] = o.DeadlineBefore
	}
	f, err = filterValues(status+")", args)
	if err != nil {
		return nil, fmt.Errorf("store: scan: %w", err)
	}
	err = s.queryKeys(ctx, f, "PartitionKey,RowKey", func(e aztables.EDMEntity) error {
		c := m[e.PartitionKey]
		c.Attention = true
		m[e.PartitionKey] = c
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: scan status rows: %w", err)
	}
	return m, nil
}

// scanAccessKeys adds every AccessToken row to m, keys and times only.
func (s *Store) scanAccessKeys(ctx context.Context, m map[string]Candidate) error {
	f, err := filterValues("RowKey eq {a}", map[string]any{"a": RowAccessToken})
	if err != nil {
		return err
	}
	return s.queryKeys(ctx, f, "PartitionKey,RowKey,"+propExpiresAt+","+propUpdatedAt, func(e aztables.EDMEntity) error {
		c := m[e.PartitionKey]
		c.Access = true
		r := propReader{row: e.RowKey, p: e.Properties}
		c.Expiry, c.Stored = r.time(propExpiresAt), r.time(propUpdatedAt)
		m[e.PartitionKey] = c
		return r.err
	})
}

// scanDue adds to m the partitions whose AccessToken row expires by t, each with its Record when
// its other two rows, read in the same query, carry the same expiry: written together, by a
// Commit, a consent or a status write conditional on them.
func (s *Store) scanDue(ctx context.Context, t time.Time, m map[string]Candidate) error {
	f, err := filterValues("(RowKey eq {a} and ExpiresAt le {t}) or ((RowKey eq {r} or RowKey eq {s}) and "+propAccessExpiresAt+" le {t})",
		map[string]any{"a": RowAccessToken, "r": RowRefreshToken, "s": RowStatus, "t": t})
	if err != nil {
		return err
	}
	type read struct {
		rec    *Record
		copies []time.Time // AccessExpiresAt of the other rows read
	}
	reads := map[string]*read{}
	err = s.queryKeys(ctx, f, "", func(e aztables.EDMEntity) error {
		rd := reads[e.PartitionKey]
		if rd == nil {
			rd = &read{rec: &Record{Name: e.PartitionKey}}
			reads[e.PartitionKey] = rd
		}
		if err := s.openRow(&e); err != nil && rd.rec.SecretErr == nil {
			rd.rec.SecretErr = fmt.Errorf("connection %q: %w", e.PartitionKey, err)
		}
		if err := rd.rec.apply(e); err != nil {
			return err
		}
		r := propReader{row: e.RowKey, p: e.Properties}
		if e.RowKey == RowAccessToken {
			c := m[e.PartitionKey]
			c.Access = true
			c.Expiry, c.Stored = r.time(propExpiresAt), r.time(propUpdatedAt)
			m[e.PartitionKey] = c
		} else {
			rd.copies = append(rd.copies, r.time(propAccessExpiresAt))
		}
		return r.err
	})
	if err != nil {
		return err
	}
	for pk, rd := range reads {
		c, ok := m[pk]
		if !ok {
			continue // the other rows only: their access token was rewritten since
		}
		rec := rd.rec
		whole := rec.HasAccess && rec.HasRefresh && rec.HasStatus && len(rd.copies) == 2
		for _, x := range rd.copies {
			whole = whole && x.Equal(rec.Tokens.ExpiresAt)
		}
		if whole {
			c.Record = rec
			m[pk] = c
		}
	}
	return nil
}

// queryKeys runs one filtered query selecting only the properties in sel (all when ""), page by
// page.
func (s *Store) queryKeys(ctx context.Context, f, sel string, each func(aztables.EDMEntity) error) error {
	top := int32(PageSize)
	o := &aztables.ListEntitiesOptions{Filter: &f, Top: &top}
	if sel != "" {
		o.Select = &sel
	}
	// The next page is asked for while this one is decoded.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type answer struct {
		page aztables.ListEntitiesResponse
		err  error
	}
	pages := make(chan answer, 1)
	go func() {
		defer close(pages)
		pager := s.client.NewListEntitiesPager(o)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			select {
			case pages <- answer{page, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	for a := range pages {
		if a.err != nil {
			return classify(a.err)
		}
		for _, raw := range a.page.Entities {
			e, err := decodeEntity(raw)
			if err != nil {
				return err
			}
			if err := each(e); err != nil {
				return fmt.Errorf("connection %q: %w", e.PartitionKey, err)
			}
		}
	}
	return nil
}

// GetMany reads whole partitions, GetManyBatch to a request, in the order given. A partition
// with none of its three rows is absent from the answer (Get's ErrNotFound).
func (s *Store) GetMany(ctx context.Context, names []string) (map[string]*Record, error) {
	m := make(map[string]*Record, len(names))
	for len(names) > 0 {
		n := min(len(names), GetManyBatch)
		batch := names[:n]
		names = names[n:]
		var b strings.Builder
		args := map[string]any{}
		for k, v := range connectionRows {
			args[k] = v
		}
		b.WriteString("(")
		for i, name := range batch {
			if i > 0 {
				b.WriteString(" or ")
			}
			p := "p" + strconv.Itoa(i)
			b.WriteString("PartitionKey eq {" + p + "}")
			args[p] = name
		}
		b.WriteString(") and (RowKey eq {a} or RowKey eq {r} or RowKey eq {s})")
		f, err := filterValues(b.String(), args)
		if err != nil {
			return nil, fmt.Errorf("store: get many: %w", err)
		}
		qctx, cancel := s.withTimeout(ctx)
		got, err := s.query(qctx, f)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("store: get many: %w", err)
		}
		want := make(map[string]bool, len(batch))
		for _, name := range batch {
			want[name] = true
		}
		for name, c := range got {
			if !want[name] {
				return nil, errors.New("store: get many: the query returned another partition")
			}
			m[name] = c
		}
	}
	return m, nil
}
