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
}

// Scan finds the partitions a pass must read whole, without reading every row: paged queries
// over the AccessToken rows that expire by o.ExpiresBefore, over those without a value, and
// over the Status rows that are not plainly ok, each selecting only keys and times, so that it
// costs one request per page of 1,000 matching rows. A partition neither query selects has an access token that
// expires after o.ExpiresBefore (or never), is ok, holds no lease, has no refresh in flight and
// no refresh-token deadline before o.DeadlineBefore. Partitions of AuthState rows only are never
// selected.
func (s *Store) Scan(ctx context.Context, o ScanOptions) (map[string]Candidate, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	m := map[string]Candidate{}

	access := "RowKey eq {a}"
	args := map[string]any{"a": RowAccessToken}
	if !o.ExpiresBefore.IsZero() {
		access += " and ExpiresAt le {t}"
		args["t"] = o.ExpiresBefore
	}
	f, err := filterValues(access, args)
	if err != nil {
		return nil, fmt.Errorf("store: scan: %w", err)
	}
	err = s.queryKeys(ctx, f, "PartitionKey,RowKey,"+propExpiresAt+","+propUpdatedAt, func(e aztables.EDMEntity) error {
		c := m[e.PartitionKey]
		c.Access = true
		r := propReader{row: e.RowKey, p: e.Properties}
		c.Expiry, c.Stored = r.time(propExpiresAt), r.time(propUpdatedAt)
		m[e.PartitionKey] = c
		return r.err
	})
	if err != nil {
		return nil, fmt.Errorf("store: scan access tokens: %w", err)
	}
	f, err = filterValues("RowKey eq {a} and Value eq {empty}", map[string]any{"a": RowAccessToken, "empty": ""})
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
	args = map[string]any{"s": RowStatus, "ok": string(StateOK), "empty": ""}
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

// queryKeys runs one filtered query selecting only the properties in sel, page by page.
func (s *Store) queryKeys(ctx context.Context, f, sel string, each func(aztables.EDMEntity) error) error {
	top := int32(PageSize)
	pager := s.client.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &f, Select: &sel, Top: &top})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return classify(err)
		}
		for _, raw := range page.Entities {
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
