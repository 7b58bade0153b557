// Package storetest is an in-memory token store with the semantics of store.Store on Azure Table
// Storage, for the tests of the packages that use a store, and the contract tests (RunContract)
// that prove both behave alike.
//
// Memory keeps each connection's AccessToken, RefreshToken and Status rows and its pending
// authorizations as the table does: every write gives the rows it writes a new ETag; a write
// against a Record whose ETag is stale fails with an error matching store.ErrConflict (HTTP 412),
// an insert of an existing row too (HTTP 409), and a replace of a missing row with
// store.ErrNotFound (HTTP 404); Commit and SaveConsent write their three rows or none; times are
// kept in UTC at 100 ns precision, and a Record updated by a write equals one read back.
//
// For tests it adds what the table cannot do: Inject queues failures (transient errors, or
// writes that land but whose answer is lost), SetHook runs code at a chosen point of every call,
// Calls and Count say what was called, and Put, Peek and AuthStates write and read rows directly,
// as another writer would, without being counted.
//
// With keys (NewSealed, WithKeys) it seals secrets at rest as store.Store does with
// Options.Keys, and RawSecret and SetRawSecret read and write them as stored. The contract's
// sealing cases (KeyedStore) hold both to the same behaviour.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/freshtoken/freshtoken/internal/seal"
	"github.com/freshtoken/freshtoken/internal/store"
)

// Op names a store operation, as counted and as targeted by a Fault.
type Op string

// The operations of Memory that are counted, hooked and can be made to fail.
const (
	OpList          Op = "List"
	OpGet           Op = "Get"
	OpLease         Op = "Lease"
	OpSetStatus     Op = "SetStatus"
	OpCommit        Op = "Commit"
	OpSaveConsent   Op = "SaveConsent"
	OpPutAuthState  Op = "PutAuthState"
	OpTakeAuthState Op = "TakeAuthState"

	OpSaveInvitedConsent Op = "SaveInvitedConsent"
	OpGetInvite          Op = "GetInvite"
	OpRemove             Op = "Remove"
)

// Call is one call of an operation, for connection Name ("" for List).
type Call struct {
	Op   Op
	Name string
	Err  error // what the call returned
}

// String is "Op" or "Op name".
func (c Call) String() string {
	if c.Name == "" {
		return string(c.Op)
	}
	return string(c.Op) + " " + c.Name
}

// Fault is a failure injected into calls of Op.
type Fault struct {
	Op Op
	// Name limits the fault to one connection; "" matches any. A call takes a fault queued for
	// its own connection before one for any.
	Name string
	// Err is what the call returns, wrapped with the operation. Nil: a transient
	// *store.StatusError (HTTP 503 ServerBusy).
	Err error
	// Applied makes a write take effect (if its conditions hold) before Err is returned: the
	// service committed but the answer was lost. The caller's Record keeps its old ETags, so its
	// next conditional write conflicts, as the real store's retry does. Ignored by reads.
	Applied bool
}

// partition is one connection's rows; an ETag "" means that row does not exist.
type partition struct {
	tokens store.Tokens // access fields valid while etags.Access != "", refresh fields likewise
	status store.Status
	etags  store.ETags
	auth   map[string]store.AuthState // by key
	// invites are the spent invitations recorded in the partition, by id.
	invites map[string]store.SpentInvite
}

func (p *partition) empty() bool { return p.etags == store.ETags{} }

type queued struct {
	f    Fault
	left int // < 0: unlimited
}

// Memory is an in-memory store. The zero value is an empty store without keys, as is New's. It is
// safe for concurrent use.
//
// With keys (NewSealed, WithKeys) it seals as store.Store does with Options.Keys: the secret
// property of a row (store.SecretProperty: RefreshToken.Value, the Verifier of a pending
// authorization) is kept sealed for its store.Binding in table store.DefaultTable, and opened on
// read. A sealed value that cannot be opened (unknown key id, no keys, failed authentication) is
// never read as plain text: Get, List and Peek give it as "" with Record.SecretErr set, and
// TakeAuthState fails and leaves the row. Plain values (written before keys, or by Put) read as
// they are.
type Memory struct {
	once sync.Once
	d    *memData
	keys *seal.Keyring
}

// memData is the table: shared by the Memories WithKeys derives from one another.
type memData struct {
	mu     sync.Mutex
	parts  map[string]*partition
	serial int64 // last ETag number
	calls  []Call
	faults []*queued
	hook   func(op Op, name string)
}

func (m *Memory) data() *memData {
	m.once.Do(func() {
		if m.d == nil {
			m.d = &memData{}
		}
	})
	return m.d
}

// New returns an empty store without keys.
func New() *Memory { return &Memory{} }

// NewSealed returns an empty store that seals with keys (nil: none, as New).
func NewSealed(keys *seal.Keyring) *Memory { return &Memory{keys: keys} }

// WithKeys returns a store over the same rows, calls, faults and hook as m that seals and opens
// with keys (nil: none): the handler restarted with another TOKEN_ENCRYPTION_KEYS. m is unchanged.
func (m *Memory) WithKeys(keys *seal.Keyring) *Memory { return &Memory{d: m.data(), keys: keys} }

// Keys returns the keyring m seals with; nil when it has none.
func (m *Memory) Keys() *seal.Keyring { return m.keys }

// Inject makes the next n calls matching f fail as f says; n < 0 makes every matching call fail
// until ClearFaults. Faults queued earlier are used first.
func (m *Memory) Inject(n int, f Fault) {
	d := m.data()
	if n == 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.faults = append(d.faults, &queued{f: f, left: n})
}

// ClearFaults drops every queued fault.
func (m *Memory) ClearFaults() {
	d := m.data()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.faults = nil
}

// SetHook sets h (nil: none) to run on every call, outside the store's lock: after the read for
// List and Get, before the write for the other operations. It may block (a barrier) or write to
// the store itself (a concurrent writer).
func (m *Memory) SetHook(h func(op Op, name string)) {
	d := m.data()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.hook = h
}

// Calls returns every call since New or ResetCalls, in order, failed ones included (with Err).
func (m *Memory) Calls() []Call {
	d := m.data()
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Call(nil), d.calls...)
}

// Count is the number of calls of op for connection name; name "" counts every connection.
func (m *Memory) Count(op Op, name string) int {
	d := m.data()
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, c := range d.calls {
		if c.Op == op && (name == "" || c.Name == name) {
			n++
		}
	}
	return n
}

// ResetCalls forgets the calls so far.
func (m *Memory) ResetCalls() {
	d := m.data()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = nil
}

func (d *memData) runHook(op Op, name string) {
	d.mu.Lock()
	h := d.hook
	d.mu.Unlock()
	if h != nil {
		h(op, name)
	}
}

// begin records a call, then returns ctx's error or the fault the call takes, if any. It runs
// under d.mu.
func (d *memData) begin(ctx context.Context, op Op, name string) (*Fault, error) {
	d.calls = append(d.calls, Call{Op: op, Name: name})
	if err := ctx.Err(); err != nil {
		return nil, err // the real store sends nothing on a finished context
	}
	pick := -1
	for i, q := range d.faults {
		if q.f.Op != op || q.f.Name != "" && q.f.Name != name {
			continue
		}
		if q.f.Name == name {
			pick = i
			break
		}
		if pick < 0 {
			pick = i
		}
	}
	if pick < 0 {
		return nil, nil
	}
	q := d.faults[pick]
	if q.left > 0 {
		q.left--
		if q.left == 0 {
			d.faults = append(d.faults[:pick], d.faults[pick+1:]...)
		}
	}
	f := q.f
	if f.Err == nil {
		f.Err = &store.StatusError{StatusCode: http.StatusServiceUnavailable, Code: "ServerBusy"}
	}
	return &f, nil
}

// settle records the outcome of call i. It runs under d.mu.
func (d *memData) settle(i int, err *error) {
	if i >= 0 && i < len(d.calls) {
		d.calls[i].Err = *err
	}
}

func (d *memData) nextETag() azcore.ETag {
	d.serial++
	return azcore.ETag(`W/"mem-` + strconv.FormatInt(d.serial, 10) + `"`)
}

func (d *memData) part(name string) *partition {
	p := d.parts[name]
	if p == nil {
		if d.parts == nil {
			d.parts = map[string]*partition{}
		}
		p = &partition{auth: map[string]store.AuthState{}, invites: map[string]store.SpentInvite{}}
		d.parts[name] = p
	}
	return p
}

// read is the Record Get would return for p, its refresh token opened. It runs under d.mu.
func (m *Memory) read(name string, p *partition) *store.Record {
	r := &store.Record{
		Name:       name,
		HasAccess:  p.etags.Access != "",
		HasRefresh: p.etags.Refresh != "",
		HasStatus:  p.etags.Status != "",
		ETags:      p.etags,
	}
	if r.HasAccess {
		r.Tokens.AccessToken, r.Tokens.TokenType = p.tokens.AccessToken, p.tokens.TokenType
		r.Tokens.ExpiresAt, r.Tokens.Scope = p.tokens.ExpiresAt, p.tokens.Scope
	}
	if r.HasRefresh {
		r.Tokens.RefreshExpiresAt = p.tokens.RefreshExpiresAt
		plain, err := m.open(name, store.RowRefreshToken, p.tokens.RefreshToken)
		if err != nil {
			r.SecretErr = fmt.Errorf("connection %q: %w", name, err)
		}
		r.Tokens.RefreshToken = plain
	}
	if r.HasStatus {
		r.Status = p.status
		// The table keeps ConsecutiveFailures as an Int32.
		r.Status.ConsecutiveFailures = min(max(r.Status.ConsecutiveFailures, math.MinInt32), math.MaxInt32)
	}
	return r
}

// List returns every partition holding at least one of a connection's three rows.
func (m *Memory) List(ctx context.Context) (_ map[string]*store.Record, err error) {
	d := m.data()
	defer d.runHook(OpList, "")
	d.mu.Lock()
	defer d.mu.Unlock()
	f, err := d.begin(ctx, OpList, "")
	defer d.settle(len(d.calls)-1, &err)
	if err == nil && f != nil {
		err = f.Err
	}
	if err != nil {
		return nil, fmt.Errorf("storetest: list: %w", err)
	}
	out := map[string]*store.Record{}
	for name, p := range d.parts {
		if !p.empty() {
			out[name] = m.read(name, p)
		}
	}
	return out, nil
}

// Get returns connection name; store.ErrNotFound when it has none of its three rows. Like the
// real store it does not validate name, except that it must be valid UTF-8.
func (m *Memory) Get(ctx context.Context, name string) (_ *store.Record, err error) {
	d := m.data()
	defer d.runHook(OpGet, name)
	d.mu.Lock()
	defer d.mu.Unlock()
	f, err := d.begin(ctx, OpGet, name)
	defer d.settle(len(d.calls)-1, &err)
	if err == nil && f != nil {
		err = f.Err
	}
	if err == nil && !utf8.ValidString(name) {
		err = errors.New("odata filter: value for {pk} is not valid UTF-8")
	}
	if err != nil {
		return nil, fmt.Errorf("storetest: get %q: %w", name, err)
	}
	p := d.parts[name]
	if p == nil || p.empty() {
		return nil, fmt.Errorf("storetest: get %q: %w", name, store.ErrNotFound)
	}
	return m.read(name, p), nil
}

// Errors with the codes the table service gives.
func errPrecondition() error {
	return &store.StatusError{StatusCode: http.StatusPreconditionFailed, Code: "UpdateConditionNotSatisfied"}
}

func errExists() error {
	return &store.StatusError{StatusCode: http.StatusConflict, Code: "EntityAlreadyExists"}
}

func errMissing() error {
	return &store.StatusError{StatusCode: http.StatusNotFound, Code: "ResourceNotFound"}
}

// condition is the check the service makes of one conditional write: a replace If-Match held
// where the Record has the row, an insert where it has none.
func condition(has bool, held, cur azcore.ETag) error {
	switch {
	case !has && cur != "":
		return errExists()
	case has && cur == "":
		return errMissing()
	case has && held != cur:
		return errPrecondition()
	}
	return nil
}

// Lease writes st as c's Status row: a replace conditional on c's Status ETag, or an insert
// where c has no Status row. On success c holds st (times normalized) and the new ETag.
func (m *Memory) Lease(ctx context.Context, c *store.Record, st store.Status) error {
	return m.writeStatus(ctx, OpLease, "lease", c, st)
}

// SetStatus writes st as c's Status row with the conditions of Lease.
func (m *Memory) SetStatus(ctx context.Context, c *store.Record, st store.Status) error {
	return m.writeStatus(ctx, OpSetStatus, "set status", c, st)
}

func (m *Memory) writeStatus(ctx context.Context, op Op, verb string, c *store.Record, st store.Status) (err error) {
	d := m.data()
	if c == nil {
		return fmt.Errorf("storetest: %s: nil connection", verb)
	}
	d.runHook(op, c.Name)
	d.mu.Lock()
	defer d.mu.Unlock()
	f, err := d.begin(ctx, op, c.Name)
	defer d.settle(len(d.calls)-1, &err)
	if err == nil {
		err = checkName(c.Name)
	}
	if err == nil && c.HasStatus && c.ETags.Status == "" {
		err = fmt.Errorf("Status row has no known ETag: %w", store.ErrConflict)
	}
	if err == nil {
		if f != nil && !f.Applied {
			err = f.Err
		}
	}
	var cur azcore.ETag
	if p := d.parts[c.Name]; p != nil {
		cur = p.etags.Status
	}
	if err == nil {
		err = condition(c.HasStatus, c.ETags.Status, cur)
	}
	if err != nil {
		return fmt.Errorf("storetest: %s %s: %w", verb, c.Name, err)
	}
	p := d.part(c.Name)
	p.status = normStatus(st)
	p.etags.Status = d.nextETag()
	if f != nil {
		return fmt.Errorf("storetest: %s %s: %w", verb, c.Name, f.Err)
	}
	c.Status, c.HasStatus, c.ETags.Status = normStatus(st), true, p.etags.Status
	return nil
}

// Commit writes t and st as c's three rows in one transaction, each conditional on c's ETag for
// it (or an insert where c has no row): all three are written or none. st.RefreshDeadline is set
// from t.RefreshExpiresAt. On success c holds t, st and the new ETags.
func (m *Memory) Commit(ctx context.Context, c *store.Record, t store.Tokens, st store.Status) (err error) {
	d := m.data()
	if c == nil {
		return errors.New("storetest: commit: nil connection")
	}
	d.runHook(OpCommit, c.Name)
	d.mu.Lock()
	defer d.mu.Unlock()
	f, err := d.begin(ctx, OpCommit, c.Name)
	defer d.settle(len(d.calls)-1, &err)
	if err == nil {
		err = checkName(c.Name)
	}
	if err == nil {
		for _, r := range []struct {
			row string
			has bool
			tag azcore.ETag
		}{{"AccessToken", c.HasAccess, c.ETags.Access}, {"RefreshToken", c.HasRefresh, c.ETags.Refresh}, {"Status", c.HasStatus, c.ETags.Status}} {
			if r.has && r.tag == "" {
				err = fmt.Errorf("%s row has no known ETag: %w", r.row, store.ErrConflict)
				break
			}
		}
	}
	if err == nil && f != nil && !f.Applied {
		err = f.Err
	}
	var cur store.ETags
	if p := d.parts[c.Name]; p != nil {
		cur = p.etags
	}
	if err == nil {
		err = firstErr(condition(c.HasAccess, c.ETags.Access, cur.Access),
			condition(c.HasRefresh, c.ETags.Refresh, cur.Refresh),
			condition(c.HasStatus, c.ETags.Status, cur.Status))
	}
	if err != nil {
		return fmt.Errorf("storetest: commit %s: %w", c.Name, err)
	}
	st.RefreshDeadline = t.RefreshExpiresAt
	if err := m.writePair(c.Name, t, st); err != nil {
		return fmt.Errorf("storetest: commit %s: %w", c.Name, err)
	}
	if f != nil {
		return fmt.Errorf("storetest: commit %s: %w", c.Name, f.Err)
	}
	c.Tokens, c.Status = normTokens(t), normStatus(st)
	c.HasAccess, c.HasRefresh, c.HasStatus = true, true, true
	c.SecretErr = nil
	c.ETags = d.parts[c.Name].etags
	return nil
}

// firstErr is the first non-nil error: a failed transaction reports its first failing operation.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// writePair writes the three rows with new ETags, the refresh token sealed. It runs under d.mu.
func (m *Memory) writePair(name string, t store.Tokens, st store.Status) error {
	sealed, err := m.seal(name, store.RowRefreshToken, t.RefreshToken)
	if err != nil {
		return err
	}
	d := m.data()
	p := d.part(name)
	p.tokens, p.status = normTokens(t), normStatus(st)
	p.tokens.RefreshToken = sealed
	p.etags = store.ETags{Access: d.nextETag(), Refresh: d.nextETag(), Status: d.nextETag()}
	return nil
}

// seal is value as stored in the secret property of row rk of partition name: sealed under the
// first key, or unchanged without keys or for a row without a secret.
func (m *Memory) seal(name, rk, value string) (string, error) {
	prop, ok := store.SecretProperty(rk)
	if !ok || m.keys == nil {
		return value, nil
	}
	sealed, err := m.keys.Seal(value, store.Binding(store.DefaultTable, name, rk, prop))
	if err != nil {
		return "", fmt.Errorf("encode row %s: %w", rk, err)
	}
	return sealed, nil
}

// open is the plain text of value stored in the secret property of row rk of partition name. A
// sealed value that cannot be opened is "" and an error naming the row, the property and (through
// the *seal.OpenError it wraps) the key id, as store.Store gives it.
func (m *Memory) open(name, rk, value string) (string, error) {
	prop, ok := store.SecretProperty(rk)
	if !ok {
		return value, nil
	}
	plain, _, err := m.keys.Open(value, store.Binding(store.DefaultTable, name, rk, prop))
	if err != nil {
		return "", fmt.Errorf("row %s property %s: %w", rk, prop, err)
	}
	return plain, nil
}

// SaveConsent replaces (or inserts) the three rows of name unconditionally, in one transaction.
// st.RefreshDeadline is set from t.RefreshExpiresAt.
func (m *Memory) SaveConsent(ctx context.Context, name string, t store.Tokens, st store.Status) (err error) {
	d := m.data()
	d.runHook(OpSaveConsent, name)
	d.mu.Lock()
	defer d.mu.Unlock()
	f, err := d.begin(ctx, OpSaveConsent, name)
	defer d.settle(len(d.calls)-1, &err)
	if err == nil {
		err = checkName(name)
	}
	if err == nil && f != nil && !f.Applied {
		err = f.Err
	}
	if err != nil {
		return fmt.Errorf("storetest: save consent %s: %w", name, err)
	}
	st.RefreshDeadline = t.RefreshExpiresAt
	if err := m.writePair(name, t, st); err != nil {
		return fmt.Errorf("storetest: save consent %s: %w", name, err)
	}
	if f != nil {
		return fmt.Errorf("storetest: save consent %s: %w", name, f.Err)
	}
	return nil
}

// PutAuthState stores a under key in name's partition, replacing any row under that key.
func (m *Memory) PutAuthState(ctx context.Context, name, key string, a store.AuthState) (err error) {
	d := m.data()
	d.runHook(OpPutAuthState, name)
	d.mu.Lock()
	defer d.mu.Unlock()
	f, err := d.begin(ctx, OpPutAuthState, name)
	defer d.settle(len(d.calls)-1, &err)
	if err == nil {
		err = checkAuthKey(name, key)
	}
	if err == nil && f != nil && !f.Applied {
		err = f.Err
	}
	if err != nil {
		return fmt.Errorf("storetest: put auth state %s: %w", name, err)
	}
	a.ExpiresAt = storedTime(a.ExpiresAt)
	if a.Verifier, err = m.seal(name, authRow(key), a.Verifier); err != nil {
		return fmt.Errorf("storetest: put auth state %s: %w", name, err)
	}
	d.part(name).auth[key] = a
	if f != nil {
		return fmt.Errorf("storetest: put auth state %s: %w", name, f.Err)
	}
	return nil
}

// TakeAuthState returns and deletes the authorization under key, atomically: of concurrent
// takers one gets it, the others store.ErrNotFound, as does a taker of a missing key.
func (m *Memory) TakeAuthState(ctx context.Context, name, key string) (_ store.AuthState, err error) {
	d := m.data()
	d.runHook(OpTakeAuthState, name)
	d.mu.Lock()
	defer d.mu.Unlock()
	f, err := d.begin(ctx, OpTakeAuthState, name)
	defer d.settle(len(d.calls)-1, &err)
	if err == nil {
		err = checkAuthKey(name, key)
	}
	if err == nil && f != nil && !f.Applied {
		err = f.Err
	}
	var a store.AuthState
	if err == nil {
		p := d.parts[name]
		var ok bool
		if p != nil {
			a, ok = p.auth[key]
		}
		if !ok {
			err = errMissing()
		} else if a.Verifier, err = m.open(name, authRow(key), a.Verifier); err == nil {
			// A verifier that cannot be opened leaves the row (it expires), as the table store does.
			delete(p.auth, key)
			if f != nil {
				err = f.Err
			}
		}
	}
	if err != nil {
		return store.AuthState{}, fmt.Errorf("storetest: take auth state %s: %w", name, err)
	}
	return a, nil
}

// Put writes the rows r has (HasAccess, HasRefresh, HasStatus) unconditionally, as another
// writer would, leaving the partition's other rows as they are. It sets r's ETags for those rows
// and normalizes r's times as a write does. Unlike Commit it stores r.Status.RefreshDeadline as
// given. It is not counted, hooked or faulted.
func (m *Memory) Put(_ context.Context, r *store.Record) error {
	d := m.data()
	if r == nil {
		return errors.New("storetest: put: nil record")
	}
	if err := checkName(r.Name); err != nil {
		return fmt.Errorf("storetest: put: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.part(r.Name)
	r.Tokens, r.Status = normTokens(r.Tokens), normStatus(r.Status)
	if r.HasAccess {
		p.tokens.AccessToken, p.tokens.TokenType = r.Tokens.AccessToken, r.Tokens.TokenType
		p.tokens.ExpiresAt, p.tokens.Scope = r.Tokens.ExpiresAt, r.Tokens.Scope
		p.etags.Access = d.nextETag()
		r.ETags.Access = p.etags.Access
	}
	if r.HasRefresh {
		p.tokens.RefreshToken, p.tokens.RefreshExpiresAt = r.Tokens.RefreshToken, r.Tokens.RefreshExpiresAt
		p.etags.Refresh = d.nextETag()
		r.ETags.Refresh = p.etags.Refresh
	}
	if r.HasStatus {
		p.status = r.Status
		p.etags.Status = d.nextETag()
		r.ETags.Status = p.etags.Status
	}
	return nil
}

// Peek returns connection name as Get would, without counting the call; false when it has none
// of its three rows.
func (m *Memory) Peek(name string) (*store.Record, bool) {
	d := m.data()
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.parts[name]
	if p == nil || p.empty() {
		return nil, false
	}
	return m.read(name, p), true
}

// AuthStates returns the pending authorizations of name's partition, by key, as stored: with keys,
// each Verifier is sealed (see RawSecret).
func (m *Memory) AuthStates(name string) map[string]store.AuthState {
	d := m.data()
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]store.AuthState{}
	if p := d.parts[name]; p != nil {
		for k, a := range p.auth {
			out[k] = a
		}
	}
	return out
}

func storedTime(t time.Time) time.Time { return store.StoredTime(t) }

func normTokens(t store.Tokens) store.Tokens {
	t, _ = store.Stored(t, store.Status{})
	return t
}

func normStatus(s store.Status) store.Status {
	_, s = store.Stored(store.Tokens{}, s)
	return s
}

func checkName(name string) error { return store.CheckName(name) }

func checkAuthKey(name, key string) error { return store.CheckAuthKey(name, key) }

// authRow is the row key of the pending authorization under key.
func authRow(key string) string { return "AuthState-" + key }

// RawSecret returns the secret property (store.SecretProperty) of row rowKey of partition name
// as stored: sealed when written with keys. store.ErrNotFound when there is no such row.
func (m *Memory) RawSecret(_ context.Context, name, rowKey string) (string, error) {
	d := m.data()
	d.mu.Lock()
	defer d.mu.Unlock()
	v, ok := "", false
	if p := d.parts[name]; p != nil {
		v, ok = storedSecret(p, rowKey)
	}
	if !ok {
		return "", fmt.Errorf("storetest: raw secret %s/%s: %w", name, rowKey, store.ErrNotFound)
	}
	return v, nil
}

// SetRawSecret overwrites the secret property of the existing row rowKey of partition name with
// value as given (never sealed), as another writer would, leaving the row's other properties; the
// row gets a new ETag. store.ErrNotFound when there is no such row. It is not counted, hooked or
// faulted.
func (m *Memory) SetRawSecret(_ context.Context, name, rowKey, value string) error {
	d := m.data()
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.parts[name]
	if p == nil {
		return fmt.Errorf("storetest: set raw secret %s/%s: %w", name, rowKey, store.ErrNotFound)
	}
	if _, ok := storedSecret(p, rowKey); !ok {
		return fmt.Errorf("storetest: set raw secret %s/%s: %w", name, rowKey, store.ErrNotFound)
	}
	if rowKey == store.RowRefreshToken {
		p.tokens.RefreshToken = value
		p.etags.Refresh = d.nextETag()
		return nil
	}
	key := rowKey[len(authRow("")):]
	a := p.auth[key]
	a.Verifier = value
	p.auth[key] = a
	return nil
}

// storedSecret is the stored secret of row rowKey of p, and whether that row exists and has one.
func storedSecret(p *partition, rowKey string) (string, bool) {
	if _, ok := store.SecretProperty(rowKey); !ok {
		return "", false
	}
	if rowKey == store.RowRefreshToken {
		return p.tokens.RefreshToken, p.etags.Refresh != ""
	}
	a, ok := p.auth[rowKey[len(authRow("")):]]
	return a.Verifier, ok
}
