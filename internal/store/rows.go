package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
)

// Property names of the rows. Other apps and Functions table bindings read them: keep them stable.
const (
	propValue     = "Value"
	propExpiresAt = "ExpiresAt"
	propTokenType = "TokenType"
	propScope     = "Scope"
	propUpdatedAt = "UpdatedAt"
	// propAccessExpiresAt is a copy of the AccessToken row's ExpiresAt on the RefreshToken and
	// Status rows, written with them, so that Scan finds a due account's three rows in one query.
	propAccessExpiresAt = "AccessExpiresAt"

	propVerifier = "Verifier"
	propReplace  = "Replace"
	propLabel    = "Label"
	propInvite   = "Invite"
)

// Fingerprint is a short, non-reversible fingerprint of a secret (the first 12 hex digits of its
// SHA-256), for the InFlight field and for logs. Fingerprint("") is "".
func Fingerprint(secret string) string {
	if secret == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:6])
}

// storedTime is t as the table keeps it: UTC, 100 ns precision. Zero stays zero.
func storedTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(100 * time.Nanosecond)
}

// normTokens and normStatus return what reading the rows back gives, so that a Connection
// updated in memory after a write equals one read from the table.
func normTokens(t Tokens) Tokens {
	t.ExpiresAt = storedTime(t.ExpiresAt)
	t.RefreshExpiresAt = storedTime(t.RefreshExpiresAt)
	return t
}

func normStatus(s Status) Status {
	for _, p := range []*time.Time{&s.ConnectedAt, &s.LastSuccess, &s.LastFailure, &s.NextAttempt, &s.LeaseUntil, &s.InFlightSince, &s.RefreshDeadline, &s.FailingSince, &s.NotifiedAt, &s.NotifyClaimUntil} {
		*p = storedTime(*p)
	}
	return s
}

// putTime sets a DateTime property, omitting zero times.
func putTime(p map[string]any, name string, t time.Time) {
	if !t.IsZero() {
		p[name] = aztables.EDMDateTime(storedTime(t))
	}
}

func accessProps(t Tokens, now time.Time) map[string]any {
	p := map[string]any{
		propValue:     t.AccessToken,
		propTokenType: t.TokenType,
		propScope:     t.Scope,
	}
	putTime(p, propExpiresAt, t.ExpiresAt)
	putTime(p, propUpdatedAt, now)
	return p
}

func refreshProps(t Tokens, now time.Time) map[string]any {
	p := map[string]any{propValue: t.RefreshToken}
	putTime(p, propExpiresAt, t.RefreshExpiresAt)
	putTime(p, propUpdatedAt, now)
	putTime(p, propAccessExpiresAt, t.ExpiresAt)
	return p
}

// statusProps are the properties of a Status row beside an access token expiring at access.
func statusProps(s Status, access time.Time) map[string]any {
	p := map[string]any{
		"State":               string(s.State),
		"Provider":            s.Provider,
		"AccountID":           s.AccountID,
		"GrantedScopes":       s.GrantedScopes,
		"MissingScopes":       s.MissingScopes,
		"LastFailureClass":    s.LastFailureClass,
		"LastFailureMessage":  s.LastFailureMessage,
		"ConsecutiveFailures": int32(min(max(s.ConsecutiveFailures, math.MinInt32), math.MaxInt32)),
		"LeaseOwner":          s.LeaseOwner,
		"InFlight":            s.InFlight,
		"Generation":          aztables.EDMInt64(s.Generation),
		"Warning":             s.Warning,
		"NotifiedEvent":       s.NotifiedEvent,
		"NotifyClaim":         s.NotifyClaim,
	}
	putTime(p, "ConnectedAt", s.ConnectedAt)
	putTime(p, "LastSuccess", s.LastSuccess)
	putTime(p, "LastFailure", s.LastFailure)
	putTime(p, "NextAttempt", s.NextAttempt)
	putTime(p, "LeaseUntil", s.LeaseUntil)
	putTime(p, "InFlightSince", s.InFlightSince)
	putTime(p, "RefreshDeadline", s.RefreshDeadline)
	putTime(p, "FailingSince", s.FailingSince)
	putTime(p, "NotifiedAt", s.NotifiedAt)
	putTime(p, "NotifyClaimUntil", s.NotifyClaimUntil)
	putTime(p, propAccessExpiresAt, access)
	return p
}

func authStateProps(a AuthState) map[string]any {
	p := map[string]any{propVerifier: a.Verifier, propReplace: a.Replace}
	// Written only when set, so rows of a single-account sign-in keep their old shape.
	if a.Label != "" {
		p[propLabel] = a.Label
	}
	if a.Invite != "" {
		p[propInvite] = a.Invite
	}
	putTime(p, propExpiresAt, a.ExpiresAt)
	return p
}

// encodeEntity is the JSON body of one row, with Edm type annotations for DateTime and Int64.
func encodeEntity(pk, rk string, props map[string]any) ([]byte, error) {
	b, err := json.Marshal(aztables.EDMEntity{
		Entity:     aztables.Entity{PartitionKey: pk, RowKey: rk},
		Properties: props,
	})
	if err != nil {
		// The error names a Go type, never a value.
		return nil, fmt.Errorf("encode row %s: %w", rk, err)
	}
	return b, nil
}

func decodeEntity(b []byte) (aztables.EDMEntity, error) {
	var e aztables.EDMEntity
	if err := json.Unmarshal(b, &e); err != nil {
		// Never wrap the decoder's error: it may quote the row, which holds tokens.
		return aztables.EDMEntity{}, fmt.Errorf("decode row: malformed entity (%d bytes)", len(b))
	}
	return e, nil
}

// apply records row e in c. Rows other than the three of a connection are ignored.
func (c *Record) apply(e aztables.EDMEntity) error {
	r := propReader{row: e.RowKey, p: e.Properties}
	etag := azcore.ETag(e.ETag)
	switch e.RowKey {
	case RowAccessToken:
		c.HasAccess, c.ETags.Access = true, etag
		c.Tokens.AccessToken = r.str(propValue)
		c.Tokens.TokenType = r.str(propTokenType)
		c.Tokens.Scope = r.str(propScope)
		c.Tokens.ExpiresAt = r.time(propExpiresAt)
	case RowRefreshToken:
		c.HasRefresh, c.ETags.Refresh = true, etag
		c.Tokens.RefreshToken = r.str(propValue)
		c.Tokens.RefreshExpiresAt = r.time(propExpiresAt)
	case RowStatus:
		c.HasStatus, c.ETags.Status = true, etag
		c.Status = r.status()
	}
	return r.err
}

func (r *propReader) status() Status {
	return Status{
		State:               State(r.str("State")),
		Provider:            r.str("Provider"),
		AccountID:           r.str("AccountID"),
		GrantedScopes:       r.str("GrantedScopes"),
		MissingScopes:       r.str("MissingScopes"),
		ConnectedAt:         r.time("ConnectedAt"),
		LastSuccess:         r.time("LastSuccess"),
		LastFailure:         r.time("LastFailure"),
		LastFailureClass:    r.str("LastFailureClass"),
		LastFailureMessage:  r.str("LastFailureMessage"),
		ConsecutiveFailures: int(r.int("ConsecutiveFailures")),
		NextAttempt:         r.time("NextAttempt"),
		LeaseOwner:          r.str("LeaseOwner"),
		LeaseUntil:          r.time("LeaseUntil"),
		InFlight:            r.str("InFlight"),
		InFlightSince:       r.time("InFlightSince"),
		Generation:          r.int("Generation"),
		RefreshDeadline:     r.time("RefreshDeadline"),
		Warning:             r.str("Warning"),
		FailingSince:        r.time("FailingSince"),
		NotifiedEvent:       r.str("NotifiedEvent"),
		NotifiedAt:          r.time("NotifiedAt"),
		NotifyClaim:         r.str("NotifyClaim"),
		NotifyClaimUntil:    r.time("NotifyClaimUntil"),
	}
}

func authStateFrom(e aztables.EDMEntity) (AuthState, error) {
	r := propReader{row: e.RowKey, p: e.Properties}
	a := AuthState{
		Verifier:  r.str(propVerifier),
		ExpiresAt: r.time(propExpiresAt),
		Replace:   r.bool(propReplace),
		Label:     r.str(propLabel),
		Invite:    r.str(propInvite),
	}
	return a, r.err
}

// propReader reads typed properties, keeping the first type mismatch in err. It accepts the
// types other writers plausibly use (a DateTime written as an ISO string, an Int64 as Int32), and
// its errors name the row and property, never the value.
type propReader struct {
	row string
	p   map[string]any
	err error
}

func (r *propReader) fail(name, want string, got any) {
	if r.err == nil {
		r.err = fmt.Errorf("row %s: property %s is %T; want %s", r.row, name, got, want)
	}
}

func (r *propReader) str(name string) string {
	v, ok := r.p[name]
	if !ok || v == nil {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		r.fail(name, "string", v)
	}
	return s
}

func (r *propReader) time(name string) time.Time {
	v, ok := r.p[name]
	if !ok || v == nil {
		return time.Time{}
	}
	switch v := v.(type) {
	case aztables.EDMDateTime:
		return storedTime(time.Time(v))
	case string:
		t, err := time.Parse(time.RFC3339Nano, v)
		if err == nil {
			return storedTime(t)
		}
	}
	r.fail(name, "DateTime", v)
	return time.Time{}
}

func (r *propReader) int(name string) int64 {
	v, ok := r.p[name]
	if !ok || v == nil {
		return 0
	}
	switch v := v.(type) {
	case int32:
		return int64(v)
	case aztables.EDMInt64:
		return int64(v)
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return int64(v)
		}
	}
	r.fail(name, "integer", v)
	return 0
}

func (r *propReader) bool(name string) bool {
	v, ok := r.p[name]
	if !ok || v == nil {
		return false
	}
	b, ok := v.(bool)
	if !ok {
		r.fail(name, "bool", v)
	}
	return b
}
