package statuspage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/freshtoken/freshtoken/internal/store"
)

// PageSize is how many accounts of a many-account connection one page lists.
const PageSize = 100

// AccountReader reads the accounts of a many-account connection a page at a time (a
// *store.Store), and single connections one by one. A store that lists many-account connections
// implements it besides Lister.
type AccountReader interface {
	Get(ctx context.Context, name string) (*store.Record, error)
	Accounts(ctx context.Context, name string, o store.PageOptions) (store.AccountsPage, error)
	AccountCounts(ctx context.Context, name string) (map[store.State]int, error)
}

// Query selects what one model shows. Its zero value is every connection, each many-account
// connection with its first page of accounts in any state.
type Query struct {
	// Connection limits the model to the connection of that name ("": all of them).
	Connection string
	// State lists only the accounts in that state (ok, retrying or needs_consent); single
	// connections are shown whatever their state.
	State State
	// Continuation is the Continuation of the page before, of the one Connection.
	Continuation string
	// All lists every account, page after page (the command line); Continuation is then "".
	All bool
}

var (
	// ErrBadQuery is wrapped by BuildQuery and ParseQuery for a query that cannot be answered:
	// a state no account has, a continuation that is not valid for its listing, a continuation
	// without its connection.
	ErrBadQuery = errors.New("bad status query")
	// ErrUnknownConnection is wrapped by BuildQuery when Query.Connection is not configured.
	ErrUnknownConnection = errors.New("no such connection")
)

// AccountState parses the state of an account as a query names it.
func AccountState(s string) (State, error) {
	switch st := State(s); st {
	case OK, Retrying, NeedsConsent:
		return st, nil
	case NotConnected:
		return "", fmt.Errorf("%w: state not_connected: an account that exists is connected; want ok, retrying or needs_consent", ErrBadQuery)
	}
	return "", fmt.Errorf("%w: state %q: want ok, retrying or needs_consent", ErrBadQuery, truncate(s, 40))
}

// ParseQuery reads a Query from a page's URL parameters: connection, state and continuation.
func ParseQuery(v url.Values) (Query, error) {
	q := Query{Connection: v.Get("connection"), Continuation: v.Get("continuation")}
	if s := v.Get("state"); s != "" {
		st, err := AccountState(s)
		if err != nil {
			return Query{}, err
		}
		q.State = st
	}
	if q.Continuation != "" && q.Connection == "" {
		return Query{}, fmt.Errorf("%w: a continuation needs the connection it continues (?connection=NAME)", ErrBadQuery)
	}
	return q, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Accounts is what a many-account connection's entry adds: its accounts counted by state, and
// one page of them.
type Accounts struct {
	Counts Counts `json:"counts"`
	// State is the filter the page applied ("" none).
	State State `json:"-"`
	// List is the page of accounts, each named NAME.LABEL, in label order.
	List []Status `json:"accounts"`
	// Continuation continues the listing (?connection=NAME&continuation=...); "" at the end.
	Continuation string `json:"continuation,omitempty"`
	// From is the continuation this page was read from ("" the first page; not in the JSON).
	From string `json:"-"`
}

// Counts are a many-account connection's accounts by state.
type Counts struct {
	OK           int `json:"ok"`
	Retrying     int `json:"retrying"`
	NeedsConsent int `json:"needs_consent"`
}

// Total is the number of accounts.
func (c Counts) Total() int { return c.OK + c.Retrying + c.NeedsConsent }

// Of is the count of state st.
func (c Counts) Of(st State) int {
	switch st {
	case OK:
		return c.OK
	case Retrying:
		return c.Retrying
	case NeedsConsent:
		return c.NeedsConsent
	}
	return 0
}

// plainStatus is Status without its methods, for the JSON of both kinds of entry.
type plainStatus Status

// manyJSON is the JSON of a many-account connection: a connection's fields, then "many": true
// and the Accounts fields.
type manyJSON struct {
	plainStatus
	Many bool `json:"many"`
	*Accounts
}

// MarshalJSON writes a single connection's fields only, exactly as before many-account
// connections existed; a many-account connection adds "many", "counts", "accounts" and
// "continuation".
func (s Status) MarshalJSON() ([]byte, error) {
	if s.Accounts == nil {
		return json.Marshal(plainStatus(s))
	}
	return json.Marshal(manyJSON{plainStatus: plainStatus(s), Many: true, Accounts: s.Accounts})
}

// UnmarshalJSON reads either kind of entry.
func (s *Status) UnmarshalJSON(b []byte) error {
	var m manyJSON
	m.Accounts = &Accounts{}
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*s = Status(m.plainStatus)
	s.Accounts = nil
	if m.Many {
		s.Accounts = m.Accounts
	}
	return nil
}

// pageState maps a stored state to the page's, as statusOf does.
func pageState(st store.State) State {
	switch st {
	case store.StateNeedsConsent:
		return NeedsConsent
	case store.StateRetrying:
		return Retrying
	}
	return OK
}

// BuildQuery is Build for one query. Its reads (each bounded by ctx):
//   - without a many-account connection configured: one List, as Build;
//   - otherwise one Get per single connection shown, and per many-account connection one count
//     query (one request per 1,000 accounts) and one page (store.Store.Accounts: two requests,
//     up to nine with a state filter); with Query.All, a page per 100 accounts.
//
// Errors wrap ErrBadQuery (answered 400) or ErrUnknownConnection (404), or are the table's.
func BuildQuery(ctx context.Context, l Lister, conns []Connection, q Query, now time.Time) (Model, error) {
	// List reads every row of the table, the accounts' too: only when there are none.
	many := false
	for _, c := range conns {
		many = many || c.Many
	}
	if q.Connection != "" {
		var sel []Connection
		for _, c := range conns {
			if c.Name == q.Connection {
				sel = append(sel, c)
			}
		}
		if len(sel) == 0 {
			return Model{}, fmt.Errorf("status: %w: %q", ErrUnknownConnection, truncate(q.Connection, 60))
		}
		conns = sel
	}
	if q.Continuation != "" && (len(conns) != 1 || !conns[0].Many) {
		return Model{}, fmt.Errorf("status: %w: a continuation pages the accounts of one many-account connection", ErrBadQuery)
	}
	if !many {
		return buildList(ctx, l, conns, now)
	}
	r, ok := l.(AccountReader)
	if !ok {
		return Model{}, errors.New("status: the store cannot list the accounts of a many-account connection")
	}
	m := Model{Connections: make([]Status, 0, len(conns)), GeneratedAt: now}
	for _, c := range conns {
		if !c.Many {
			rec, err := r.Get(ctx, c.Name)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return Model{}, fmt.Errorf("status: read the token table: %w", err)
			}
			m.Connections = append(m.Connections, statusOf(c, rec))
			continue
		}
		s, err := manyStatus(ctx, r, c, q, now)
		if err != nil {
			return Model{}, err
		}
		m.Connections = append(m.Connections, s)
	}
	return m, nil
}

// manyStatus is the entry of many-account connection c: its counts, the state they add up to,
// and the page of accounts q asks for.
func manyStatus(ctx context.Context, r AccountReader, c Connection, q Query, now time.Time) (Status, error) {
	s := Status{Name: c.Name, Provider: c.Provider, MissingScopes: []string{}}
	raw, err := r.AccountCounts(ctx, c.Name)
	if err != nil {
		return Status{}, fmt.Errorf("status: count the accounts of %s: %w", c.Name, err)
	}
	a := &Accounts{State: q.State, List: []Status{}, From: q.Continuation}
	for st, n := range raw {
		switch pageState(st) {
		case OK:
			a.Counts.OK += n
		case Retrying:
			a.Counts.Retrying += n
		case NeedsConsent:
			a.Counts.NeedsConsent += n
		}
	}
	switch {
	case a.Counts.NeedsConsent > 0:
		s.State = NeedsConsent
	case a.Counts.Retrying > 0:
		s.State = Retrying
	case a.Counts.OK > 0:
		s.State = OK
	default:
		s.State = NotConnected
	}
	o := store.PageOptions{Limit: PageSize, State: storeState(q.State), Continuation: q.Continuation}
	for {
		page, err := r.Accounts(ctx, c.Name, o)
		if errors.Is(err, store.ErrBadContinuation) {
			return Status{}, fmt.Errorf("status: %w: the continuation is not valid for this listing; start again from the first page", ErrBadQuery)
		}
		if err != nil {
			return Status{}, fmt.Errorf("status: read the accounts of %s: %w", c.Name, err)
		}
		for _, rec := range page.Records {
			label := strings.TrimPrefix(rec.Name, c.Name+".")
			ac := Connection{Name: rec.Name, Provider: c.Provider, AuthorizeURL: strings.TrimSuffix(c.AuthorizeURL, "/") + "/" + label}
			a.List = append(a.List, statusOf(ac, rec))
		}
		if !q.All || page.Next == "" {
			a.Continuation = page.Next
			break
		}
		o.Continuation = page.Next
	}
	s.Accounts = a
	return s, nil
}

// storeState is the stored state a page's state filter selects.
func storeState(st State) store.State {
	switch st {
	case OK:
		return store.StateOK
	case Retrying:
		return store.StateRetrying
	case NeedsConsent:
		return store.StateNeedsConsent
	}
	return ""
}
