package storetest

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/freshtoken/freshtoken/internal/store"
)

// The paged reads of a many-account connection's accounts.
const (
	OpAccounts      Op = "Accounts"
	OpAccountCounts Op = "AccountCounts"
)

// accountRange is connection.AccountRange, as the store keeps it.
func accountRange(name string) (lo, hi string) { return name + ".", name + "/" }

// accountNames are the partitions of name's accounts that have a Status row (in state st, if
// set), in key order. It runs under d.mu.
func (d *memData) accountNames(name string, st store.State) []string {
	lo, hi := accountRange(name)
	var out []string
	for pk, p := range d.parts {
		if pk >= lo && pk < hi && p.etags.Status != "" && (st == "" || p.status.State == st) {
			out = append(out, pk)
		}
	}
	sort.Strings(out)
	return out
}

// Accounts is store.Store.Accounts: a page of name's accounts in key order, each with its
// Status and AccessToken rows and without its RefreshToken row. Its continuations are
// store.NewContinuation tokens holding the next partition key, refused as the store refuses
// them (store.ErrBadContinuation).
func (m *Memory) Accounts(ctx context.Context, name string, o store.PageOptions) (_ store.AccountsPage, err error) {
	d := m.data()
	defer d.runHook(OpAccounts, name)
	d.mu.Lock()
	defer d.mu.Unlock()
	f, err := d.begin(ctx, OpAccounts, name)
	defer d.settle(len(d.calls)-1, &err)
	if err == nil && f != nil {
		err = f.Err
	}
	if err == nil {
		err = checkName(name)
	}
	limit := o.Limit
	if err == nil {
		switch {
		case limit == 0:
			limit = store.DefaultPageLimit
		case limit < 0 || limit > store.MaxPageLimit:
			err = fmt.Errorf("page limit %d: want 1 to %d", limit, store.MaxPageLimit)
		}
	}
	var from string
	if err == nil && o.Continuation != "" {
		from, _, err = store.ParseContinuation(o.Continuation, name, o.State)
	}
	if err != nil {
		return store.AccountsPage{}, fmt.Errorf("storetest: accounts of %s: %w", name, err)
	}
	names := d.accountNames(name, o.State)
	i := sort.SearchStrings(names, from)
	var page store.AccountsPage
	for ; i < len(names) && len(page.Records) < limit; i++ {
		r := m.read(names[i], d.parts[names[i]])
		r.HasRefresh, r.ETags.Refresh, r.SecretErr = false, "", nil
		r.Tokens.RefreshToken, r.Tokens.RefreshExpiresAt = "", time.Time{}
		page.Records = append(page.Records, r)
	}
	if i < len(names) {
		page.Next = store.NewContinuation(name, o.State, names[i], store.RowStatus)
	}
	return page, nil
}

// AccountCounts is store.Store.AccountCounts: name's accounts counted by their Status rows'
// State.
func (m *Memory) AccountCounts(ctx context.Context, name string) (_ map[store.State]int, err error) {
	d := m.data()
	defer d.runHook(OpAccountCounts, name)
	d.mu.Lock()
	defer d.mu.Unlock()
	f, err := d.begin(ctx, OpAccountCounts, name)
	defer d.settle(len(d.calls)-1, &err)
	if err == nil && f != nil {
		err = f.Err
	}
	if err == nil {
		err = checkName(name)
	}
	if err != nil {
		return nil, fmt.Errorf("storetest: count accounts of %s: %w", name, err)
	}
	counts := map[store.State]int{}
	for _, pk := range d.accountNames(name, "") {
		counts[d.parts[pk].status.State]++
	}
	return counts, nil
}
