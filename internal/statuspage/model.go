// Package statuspage shows every configured connection's state on one page: the model (Build,
// shared with the `freshtoken status` command), its JSON, and a self-contained HTML page with
// a Connect or Reconnect button per connection. Nothing on it is a token, code or secret; the
// only credential it carries is the function key the page was opened with, put back into the
// buttons' links so that they pass the Authorize function's key check.
package statuspage

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/freshtoken/freshtoken/internal/redact"
	"github.com/freshtoken/freshtoken/internal/store"
)

// State is a connection's state as shown.
type State string

const (
	OK           State = "ok"
	Retrying     State = "retrying"
	NeedsConsent State = "needs_consent"
	NotConnected State = "not_connected"
)

// Words is the state as a person reads it.
func (s State) Words() string {
	switch s {
	case OK:
		return "OK"
	case Retrying:
		return "Retrying"
	case NeedsConsent:
		return "Needs consent"
	}
	return "Not connected"
}

// Connection is a configured connection as the page needs it.
type Connection struct {
	Name     string
	Provider string // the preset's name
	// AuthorizeURL opens the consent flow (PUBLIC_BASE_URL/api/authorize/<name>), without key.
	AuthorizeURL string
	// Many: the connection holds many accounts (OAUTH_<NAME>_ACCOUNTS=many), each shown under it
	// (see BuildQuery).
	Many bool
}

// Lister reads every connection in one query (a *store.Store).
type Lister interface {
	List(ctx context.Context) (map[string]*store.Record, error)
}

// Model is the status of every configured connection, in configuration order. Its JSON is the
// page's JSON form: {"connections":[...]}.
type Model struct {
	Connections []Status `json:"connections"`
	// GeneratedAt is when the model was built (not in the JSON).
	GeneratedAt time.Time `json:"-"`
}

// Status is one connection's line. Times are RFC 3339 UTC, null when unknown.
type Status struct {
	Name                 string   `json:"name"`
	Provider             string   `json:"provider"`
	State                State    `json:"state"`
	AccountID            string   `json:"accountId"`
	AccessTokenExpiresAt Time     `json:"accessTokenExpiresAt"`
	LastSuccess          Time     `json:"lastSuccess"`
	LastFailure          Time     `json:"lastFailure"`
	LastFailureClass     string   `json:"lastFailureClass"`
	LastFailureMessage   string   `json:"lastFailureMessage"`
	ConsecutiveFailures  int      `json:"consecutiveFailures"`
	NextAttempt          Time     `json:"nextAttempt"`
	RefreshDeadline      Time     `json:"refreshDeadline"`
	Warning              string   `json:"warning"`
	MissingScopes        []string `json:"missingScopes"`

	AuthorizeURL string `json:"-"`
	// Accounts is set for a many-account connection: its counts and a page of its accounts.
	Accounts *Accounts `json:"-"`
}

// Time is a time that marshals as RFC 3339 in UTC, and as null when zero.
type Time struct{ time.Time }

// MarshalJSON implements json.Marshaler.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + t.UTC().Format(time.RFC3339) + `"`), nil
}

// UnmarshalJSON implements json.Unmarshaler (for clients of the JSON, such as tests).
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		t.Time = time.Time{}
		return nil
	}
	v, err := time.Parse(`"`+time.RFC3339+`"`, string(b))
	if err != nil {
		return fmt.Errorf("statuspage: time %s: want RFC 3339", redact.Truncate(string(b), 40))
	}
	t.Time = v
	return nil
}

// maxMessage bounds a failure message as shown.
const maxMessage = 300

// Build is BuildQuery of the zero Query: every connection, each many-account connection with its
// counts and first page of accounts. Without many-account connections it reads the table once.
func Build(ctx context.Context, l Lister, conns []Connection, now time.Time) (Model, error) {
	return BuildQuery(ctx, l, conns, Query{}, now)
}

// buildList reads the table once (List) and returns the model of conns, none of which holds many
// accounts.
func buildList(ctx context.Context, l Lister, conns []Connection, now time.Time) (Model, error) {
	recs, err := l.List(ctx)
	if err != nil {
		return Model{}, fmt.Errorf("status: read the token table: %w", err)
	}
	return Assemble(conns, recs, now), nil
}

// Assemble is Build without the read: the model of conns from the records List returned.
// Records of connections no longer configured are left out.
func Assemble(conns []Connection, recs map[string]*store.Record, now time.Time) Model {
	m := Model{Connections: make([]Status, 0, len(conns)), GeneratedAt: now}
	for _, c := range conns {
		m.Connections = append(m.Connections, statusOf(c, recs[c.Name]))
	}
	return m
}

func statusOf(c Connection, rec *store.Record) Status {
	s := Status{Name: c.Name, Provider: c.Provider, State: NotConnected, MissingScopes: []string{}, AuthorizeURL: c.AuthorizeURL}
	if rec == nil || !rec.HasAccess && !rec.HasRefresh {
		return s
	}
	st := rec.Status
	switch st.State {
	case store.StateNeedsConsent:
		s.State = NeedsConsent
	case store.StateRetrying:
		s.State = Retrying
	default:
		s.State = OK
	}
	if st.Provider != "" {
		s.Provider = st.Provider
	}
	s.AccountID = st.AccountID
	if rec.HasAccess {
		s.AccessTokenExpiresAt = Time{rec.Tokens.ExpiresAt}
	}
	s.LastSuccess = Time{st.LastSuccess}
	s.LastFailure = Time{st.LastFailure}
	s.LastFailureClass = st.LastFailureClass
	// Stored redacted already; redacted again in case another writer did not.
	s.LastFailureMessage = redact.String(st.LastFailureMessage, maxMessage, rec.Tokens.AccessToken, rec.Tokens.RefreshToken)
	s.ConsecutiveFailures = st.ConsecutiveFailures
	if s.State == Retrying {
		s.NextAttempt = Time{st.NextAttempt}
	}
	s.RefreshDeadline = Time{st.RefreshDeadline}
	if s.RefreshDeadline.IsZero() {
		s.RefreshDeadline = Time{rec.Tokens.RefreshExpiresAt}
	}
	s.Warning = redact.String(st.Warning, maxMessage, rec.Tokens.AccessToken, rec.Tokens.RefreshToken)
	s.MissingScopes = append(s.MissingScopes, strings.Fields(st.MissingScopes)...)
	return s
}

// Counts tells how many connections are in each state.
func (m Model) Counts() map[State]int {
	n := map[State]int{}
	for _, c := range m.Connections {
		n[c.State]++
	}
	return n
}
