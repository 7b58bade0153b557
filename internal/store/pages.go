package store

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
)

// Paging defaults for Accounts.
const (
	// DefaultPageLimit is the page size when PageOptions.Limit is 0.
	DefaultPageLimit = 100
	// MaxPageLimit is the largest page: one answer of the table service.
	MaxPageLimit = 1000
)

// ErrBadContinuation is wrapped by Accounts when PageOptions.Continuation is not one it gave for
// the same connection and state: garbage, altered, or made for another listing.
var ErrBadContinuation = errors.New("store: invalid continuation")

// PageOptions select one page of a many-account connection's accounts. The zero value is the
// first page of every account, DefaultPageLimit long.
type PageOptions struct {
	Limit int   // 1 to MaxPageLimit; 0 is DefaultPageLimit
	State State // only accounts whose Status row has this State; "" any
	// Continuation is AccountsPage.Next of the previous page, for the same name and State.
	Continuation string
}

// AccountsPage is one page of accounts, in partition-key (label) order.
type AccountsPage struct {
	// Records hold the Status row and, when it exists, the AccessToken row of each account. The
	// RefreshToken row is not read (HasRefresh is false): these records are for showing, never
	// for a conditional write.
	Records []*Record
	// Next continues the listing; "" when no account is left. A page may hold fewer than Limit
	// records, even none, while Next is set.
	Next string
}

// maxFillRequests bounds the requests Accounts sends to fill one page when the service answers
// short pages (it may, at partition-server boundaries or after 5 s).
const maxFillRequests = 4

// orChunk is how many partitions one AccessToken query of a filtered page names: the service
// allows 15 comparisons in a filter, one of which is the RowKey's.
const orChunk = 14

// Accounts reads one page of the accounts of the many-account connection called name: the
// partitions accountRange(name), listed by their Status rows (an account without a
// Status row is not listed; every write of a pair writes one). It sends one query of Status rows
// (a few more only when the service answers short pages) and then reads the page's AccessToken
// rows: one query for an unfiltered page, ceil(n/14) for a page filtered by state. A
// Continuation that does not decode, or was made for another name or state, is
// ErrBadContinuation; so is one the service refuses.
func (s *Store) Accounts(ctx context.Context, name string, o PageOptions) (AccountsPage, error) {
	op := "store: accounts of " + name
	if err := checkName(name); err != nil {
		return AccountsPage{}, fmt.Errorf("store: accounts: %w", err)
	}
	limit, err := pageLimit(o.Limit)
	if err != nil {
		return AccountsPage{}, fmt.Errorf("%s: %w", op, err)
	}
	var pk, rk string
	if o.Continuation != "" {
		if pk, rk, err = ParseContinuation(o.Continuation, name, o.State); err != nil {
			return AccountsPage{}, fmt.Errorf("%s: %w", op, err)
		}
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	lo, hi := accountRange(name)
	args := map[string]string{"lo": lo, "hi": hi, "s": RowStatus}
	tmpl := "PartitionKey ge {lo} and PartitionKey lt {hi} and RowKey eq {s}"
	if o.State != "" {
		tmpl += " and State eq {st}"
		args["st"] = string(o.State)
	}
	f, err := filter(tmpl, args)
	if err != nil {
		return AccountsPage{}, fmt.Errorf("%s: %w", op, err)
	}
	var page AccountsPage
	byName := map[string]*Record{}
	for req := 0; req < maxFillRequests && len(page.Records) < limit; req++ {
		top := int32(limit - len(page.Records))
		qo := &aztables.ListEntitiesOptions{Filter: &f, Top: &top}
		if pk != "" || rk != "" {
			p, r := pk, rk
			qo.NextPartitionKey, qo.NextRowKey = &p, &r
		}
		resp, err := s.client.NewListEntitiesPager(qo).NextPage(ctx)
		if err != nil {
			err = classify(err)
			var se *StatusError
			if o.Continuation != "" && errors.As(err, &se) && se.StatusCode == 400 {
				err = fmt.Errorf("the table service refused it: %w", ErrBadContinuation)
			}
			return AccountsPage{}, fmt.Errorf("%s: %w", op, err)
		}
		for _, raw := range resp.Entities {
			e, err := decodeEntity(raw)
			if err != nil {
				return AccountsPage{}, fmt.Errorf("%s: %w", op, err)
			}
			if e.PartitionKey < lo || e.PartitionKey >= hi || byName[e.PartitionKey] != nil {
				continue // outside the range: the filter makes this impossible
			}
			r := &Record{Name: e.PartitionKey}
			if err := r.apply(e); err != nil {
				return AccountsPage{}, fmt.Errorf("%s: account %q: %w", op, e.PartitionKey, err)
			}
			byName[r.Name] = r
			page.Records = append(page.Records, r)
		}
		pk, rk = deref(resp.NextPartitionKey), deref(resp.NextRowKey)
		if pk == "" && rk == "" {
			break
		}
	}
	if pk != "" || rk != "" {
		page.Next = NewContinuation(name, o.State, pk, rk)
	}
	if err := s.fillAccess(ctx, page.Records, byName, o.State != ""); err != nil {
		return AccountsPage{}, fmt.Errorf("%s: access tokens: %w", op, err)
	}
	return page, nil
}

// accountRange is connection.AccountRange (which this package cannot import: connection imports
// it): the half-open range [lo, hi) of the partitions NAME.LABEL. A test holds the two equal.
func accountRange(name string) (lo, hi string) { return name + ".", name + "/" }

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func pageLimit(n int) (int, error) {
	switch {
	case n == 0:
		return DefaultPageLimit, nil
	case n < 0 || n > MaxPageLimit:
		return 0, fmt.Errorf("page limit %d: want 1 to %d", n, MaxPageLimit)
	}
	return n, nil
}

// fillAccess reads the AccessToken rows of recs (in key order) into them: one range query over
// the page's keys, or, for a filtered page whose keys may span many other accounts, queries that
// name the partitions, orChunk at a time.
func (s *Store) fillAccess(ctx context.Context, recs []*Record, byName map[string]*Record, named bool) error {
	if len(recs) == 0 {
		return nil
	}
	var filters []string
	if !named {
		f, err := filter("PartitionKey ge {first} and PartitionKey le {last} and RowKey eq {a}",
			map[string]string{"first": recs[0].Name, "last": recs[len(recs)-1].Name, "a": RowAccessToken})
		if err != nil {
			return err
		}
		filters = append(filters, f)
	}
	for i := 0; named && i < len(recs); i += orChunk {
		chunk := recs[i:min(i+orChunk, len(recs))]
		args := map[string]string{"a": RowAccessToken}
		parts := make([]string, len(chunk))
		for j, r := range chunk {
			k := fmt.Sprintf("p%d", j)
			args[k] = r.Name
			parts[j] = "PartitionKey eq {" + k + "}"
		}
		f, err := filter("RowKey eq {a} and ("+strings.Join(parts, " or ")+")", args)
		if err != nil {
			return err
		}
		filters = append(filters, f)
	}
	for _, f := range filters {
		pager := s.client.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &f})
		for pager.More() {
			resp, err := pager.NextPage(ctx)
			if err != nil {
				return classify(err)
			}
			for _, raw := range resp.Entities {
				e, err := decodeEntity(raw)
				if err != nil {
					return err
				}
				r := byName[e.PartitionKey]
				if r == nil || e.RowKey != RowAccessToken {
					continue
				}
				if err := r.apply(e); err != nil {
					return fmt.Errorf("account %q: %w", e.PartitionKey, err)
				}
			}
		}
	}
	return nil
}

// AccountCounts counts the accounts of the many-account connection called name by the State of
// their Status rows, in one query that reads only that property (one request per 1,000
// accounts).
func (s *Store) AccountCounts(ctx context.Context, name string) (map[State]int, error) {
	op := "store: count accounts of " + name
	if err := checkName(name); err != nil {
		return nil, fmt.Errorf("store: count accounts: %w", err)
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	lo, hi := accountRange(name)
	f, err := filter("PartitionKey ge {lo} and PartitionKey lt {hi} and RowKey eq {s}", map[string]string{"lo": lo, "hi": hi, "s": RowStatus})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	sel := "PartitionKey,State"
	format := aztables.MetadataFormatNone
	pager := s.client.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &f, Select: &sel, Format: &format})
	counts := map[State]int{}
	for pager.More() {
		resp, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, classify(err))
		}
		for _, raw := range resp.Entities {
			e, err := decodeEntity(raw)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", op, err)
			}
			r := propReader{row: RowStatus, p: e.Properties}
			st := State(r.str("State"))
			if r.err != nil {
				return nil, fmt.Errorf("%s: account %q: %w", op, e.PartitionKey, r.err)
			}
			counts[st]++
		}
	}
	return counts, nil
}

// Continuation tokens are "v1" and the fields below, NUL-separated, in unpadded URL-safe base64:
// the listing they continue (connection name and state) and the table service's own
// NextPartitionKey and NextRowKey, passed back to it as they were given.
const (
	continuationVersion = "v1"
	maxContinuation     = 2048
)

// NewContinuation is the token that continues the listing of name's accounts in state st at the
// table service's continuation (pk, rk). Memory stores use it with keys of their own choosing.
func NewContinuation(name string, st State, pk, rk string) string {
	raw := strings.Join([]string{continuationVersion, name, string(st), pk, rk}, "\x00")
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// ParseContinuation returns the service continuation a NewContinuation token for the listing of
// name's accounts in state st holds. Any other token is ErrBadContinuation, with a reason that
// never quotes it.
func ParseContinuation(tok, name string, st State) (pk, rk string, err error) {
	bad := func(why string) (string, string, error) {
		return "", "", fmt.Errorf("%w: %s", ErrBadContinuation, why)
	}
	if len(tok) > maxContinuation {
		return bad(fmt.Sprintf("%d characters; want at most %d", len(tok), maxContinuation))
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return bad("not URL-safe base64")
	}
	f := strings.Split(string(b), "\x00")
	switch {
	case len(f) != 5 || f[0] != continuationVersion:
		return bad("not a continuation of this listing")
	case f[1] != name:
		return bad("made for another connection")
	case f[2] != string(st):
		return bad("made for another state filter")
	case f[3] == "" && f[4] == "":
		return bad("empty")
	}
	for _, k := range f[3:] {
		for i := 0; i < len(k); i++ {
			if k[i] < 0x21 || k[i] > 0x7e {
				return bad("holds a character a continuation never has")
			}
		}
	}
	return f[3], f[4], nil
}
