package storetest

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/store"
)

// AccountPager is the paged read of a many-account connection's accounts (store.Store.Accounts
// and AccountCounts), which the contract's paging cases exercise.
type AccountPager interface {
	Accounts(ctx context.Context, name string, o store.PageOptions) (store.AccountsPage, error)
	AccountCounts(ctx context.Context, name string) (map[store.State]int, error)
}

var pageContractTests = []struct {
	name string
	run  func(t *testing.T, s Store)
}{
	{"AccountsPaging", testAccountsPaging},
	{"AccountsStateFilter", testAccountsStateFilter},
	{"AccountsBadContinuation", testAccountsBadContinuation},
}

func pager(t *testing.T, s Store) AccountPager {
	t.Helper()
	p, ok := s.(AccountPager)
	if !ok {
		t.Fatalf("%T does not implement AccountPager", s)
	}
	return p
}

// seedAccounts writes n accounts c.a000.. of connection c, the state of account i being
// states[i%len(states)], and partitions next to c's range that are not its accounts. It returns
// the account names in key order.
func seedAccounts(t *testing.T, s Store, n int, states ...store.State) []string {
	t.Helper()
	ctx := context.Background()
	var names []string
	for i := range n {
		name := fmt.Sprintf("c.a%03d", i)
		st := fullStatus(int64(i))
		st.State = states[i%len(states)]
		must(t, "SaveConsent "+name, s.SaveConsent(ctx, name, fullTokens(name), st))
		names = append(names, name)
	}
	for _, other := range []string{"c", "c-d.a", "cc.a", "b.a", "d.a", "c0.a", "c,a"} {
		must(t, "SaveConsent "+other, s.SaveConsent(ctx, other, fullTokens(other), fullStatus(1)))
	}
	// An AccessToken row alone is no listed account; a pending sign-in is no row of one.
	must(t, "Put", s.Put(ctx, &store.Record{Name: "c.orphan", HasAccess: true, Tokens: fullTokens("orphan")}))
	must(t, "PutAuthState", s.PutAuthState(ctx, "c.a001", "aa", store.AuthState{Verifier: "v"}))
	return names
}

// collect pages through c's accounts with o, checking each page's length; it returns the names
// in the order given and the records by name.
func collect(t *testing.T, p AccountPager, o store.PageOptions) ([]string, map[string]*store.Record, int) {
	t.Helper()
	var names []string
	recs := map[string]*store.Record{}
	pages := 0
	for {
		page, err := p.Accounts(context.Background(), "c", o)
		if err != nil {
			t.Fatalf("Accounts(page %d): %v", pages+1, err)
		}
		pages++
		if len(page.Records) > o.Limit && o.Limit > 0 {
			t.Errorf("page %d: %d records; want at most %d", pages, len(page.Records), o.Limit)
		}
		for _, r := range page.Records {
			names = append(names, r.Name)
			recs[r.Name] = r
		}
		if page.Next == "" {
			return names, recs, pages
		}
		if pages > 100 {
			t.Fatalf("more than 100 pages")
		}
		o.Continuation = page.Next
	}
}

func testAccountsPaging(t *testing.T, s Store) {
	p := pager(t, s)
	ctx := context.Background()
	want := seedAccounts(t, s, 25, store.StateOK)

	first, err := p.Accounts(ctx, "c", store.PageOptions{Limit: 10})
	must(t, "Accounts", err)
	if len(first.Records) != 10 || first.Next == "" {
		t.Fatalf("first page: %d records, next %q; want 10 and a continuation", len(first.Records), first.Next)
	}
	got, recs, pages := collect(t, p, store.PageOptions{Limit: 10})
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("paged by 10: got %v; want %v", got, want)
	}
	if pages < 3 || pages > 4 {
		t.Errorf("paged by 10: %d pages; want 3 (or 4 with a last, empty one)", pages)
	}
	for _, name := range want {
		r := recs[name]
		full := mustGet(t, s, name)
		w := *full
		w.HasRefresh, w.ETags.Refresh, w.SecretErr = false, "", nil
		w.Tokens.RefreshToken, w.Tokens.RefreshExpiresAt = "", time.Time{}
		if r.Tokens.RefreshToken != "" || r.HasRefresh {
			t.Errorf("%s: the RefreshToken row was read", name)
		}
		sameRecord(t, "paged "+name, r, &w)
	}
	// The default page holds up to DefaultPageLimit.
	all, err := p.Accounts(ctx, "c", store.PageOptions{})
	must(t, "Accounts default limit", err)
	if len(all.Records) != 25 || all.Next != "" {
		t.Errorf("default limit: %d records, next %q; want all 25 and none", len(all.Records), all.Next)
	}
	one, _, _ := collect(t, p, store.PageOptions{Limit: 1})
	if len(one) != 25 {
		t.Errorf("paged by 1: %d accounts; want 25", len(one))
	}
	counts, err := p.AccountCounts(ctx, "c")
	must(t, "AccountCounts", err)
	if len(counts) != 1 || counts[store.StateOK] != 25 {
		t.Errorf("AccountCounts = %v; want 25 ok", counts)
	}
	empty, err := p.Accounts(ctx, "none", store.PageOptions{})
	must(t, "Accounts of a connection without accounts", err)
	if len(empty.Records) != 0 || empty.Next != "" {
		t.Errorf("no accounts: got %d records, next %q; want none", len(empty.Records), empty.Next)
	}
	if n, err := p.AccountCounts(ctx, "none"); err != nil || len(n) != 0 {
		t.Errorf("AccountCounts without accounts = %v, %v; want empty", n, err)
	}
}

func testAccountsStateFilter(t *testing.T, s Store) {
	p := pager(t, s)
	ctx := context.Background()
	names := seedAccounts(t, s, 30, store.StateOK, store.StateNeedsConsent, store.StateRetrying, store.StateOK, store.StateOK)
	want := map[store.State][]string{}
	for i, n := range names {
		st := []store.State{store.StateOK, store.StateNeedsConsent, store.StateRetrying, store.StateOK, store.StateOK}[i%5]
		want[st] = append(want[st], n)
	}
	for st, w := range want {
		got, recs, _ := collect(t, p, store.PageOptions{Limit: 4, State: st})
		if fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("state %s: got %v; want %v", st, got, w)
		}
		for _, r := range recs {
			if r.Status.State != st || !r.HasAccess || r.Tokens.AccessToken != "at-"+r.Name+"-secret" {
				t.Errorf("state %s: %s has state %s, access row %v; want %s with its access token", st, r.Name, r.Status.State, r.HasAccess, st)
			}
		}
	}
	counts, err := p.AccountCounts(ctx, "c")
	must(t, "AccountCounts", err)
	if counts[store.StateOK] != 18 || counts[store.StateNeedsConsent] != 6 || counts[store.StateRetrying] != 6 || len(counts) != 3 {
		t.Errorf("AccountCounts = %v; want ok 18, needs_consent 6, retrying 6", counts)
	}
	// A continuation belongs to its filter.
	page, err := p.Accounts(ctx, "c", store.PageOptions{Limit: 2, State: store.StateRetrying})
	must(t, "Accounts", err)
	if _, err := p.Accounts(ctx, "c", store.PageOptions{Limit: 2, Continuation: page.Next}); !errors.Is(err, store.ErrBadContinuation) {
		t.Errorf("continuation of a filtered listing used without the filter: got %v; want ErrBadContinuation", err)
	}
}

func testAccountsBadContinuation(t *testing.T, s Store) {
	p := pager(t, s)
	ctx := context.Background()
	seedAccounts(t, s, 5, store.StateOK)
	page, err := p.Accounts(ctx, "c", store.PageOptions{Limit: 2})
	must(t, "Accounts", err)
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	altered := []byte(page.Next)
	altered[0] ^= 1
	for _, tc := range []struct{ name, tok string }{
		{"garbage", "%%%not-base64%%%"},
		{"quote", "' or PartitionKey ne '"},
		{"padded base64", page.Next + "=="},
		{"junk bytes", b64("\xff\xfe junk")},
		{"altered", string(altered)},
		{"other version", b64("v9\x00c\x00\x00c.a002\x00Status")},
		{"other connection", store.NewContinuation("d", "", "d.a", store.RowStatus)},
		{"other state", store.NewContinuation("c", store.StateNeedsConsent, "c.a002", store.RowStatus)},
		{"empty keys", b64("v1\x00c\x00\x00\x00")},
		{"filter in key", b64("v1\x00c\x00\x00c.a' or 'x\x00Status")},
		{"too long", b64(string(make([]byte, 4000)))},
	} {
		got, err := p.Accounts(ctx, "c", store.PageOptions{Limit: 2, Continuation: tc.tok})
		if !errors.Is(err, store.ErrBadContinuation) {
			t.Errorf("%s: got %d records, %v; want ErrBadContinuation", tc.name, len(got.Records), err)
		}
	}
	for _, n := range []int{-1, store.MaxPageLimit + 1} {
		if _, err := p.Accounts(ctx, "c", store.PageOptions{Limit: n}); err == nil || errors.Is(err, store.ErrBadContinuation) {
			t.Errorf("limit %d: got %v; want a limit error", n, err)
		}
	}
	if _, err := p.Accounts(ctx, "a'b", store.PageOptions{}); err == nil {
		t.Errorf("Accounts of a bad name: got nil error; want one")
	}
	if _, err := p.AccountCounts(ctx, "a'b"); err == nil {
		t.Errorf("AccountCounts of a bad name: got nil error; want one")
	}
	// The good continuation still works after the bad ones.
	next, err := p.Accounts(ctx, "c", store.PageOptions{Limit: 2, Continuation: page.Next})
	must(t, "Accounts with the continuation", err)
	if len(next.Records) != 2 || next.Records[0].Name != "c.a002" {
		t.Errorf("second page: %d records starting %v; want 2 from c.a002", len(next.Records), next.Records)
	}
}
