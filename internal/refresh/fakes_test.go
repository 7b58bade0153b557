package refresh_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/freshtoken/freshtoken/internal/store"
	"github.com/freshtoken/freshtoken/internal/tokenclient"
)

// Store methods, as counted by fakeStore.
const (
	mList      = "List"
	mGet       = "Get"
	mLease     = "Lease"
	mCommit    = "Commit"
	mSetStatus = "SetStatus"
)

// Row indexes in rowVersions.
const (
	rowAccess = iota
	rowRefresh
	rowStatus
)

// rowVersions are a partition's three row versions (ETags); 0: the row does not exist.
type rowVersions [3]int64

type partition struct {
	tokens store.Tokens
	status store.Status
	ver    rowVersions
}

// fault is an error injected into one store call.
type fault struct {
	err error
	// apply (Commit only) makes the write happen before err is returned: an answer lost on the
	// way back, after which the store's own retry meets its own write and conflicts.
	apply bool
}

// fakeStore is an in-memory refresh.Store with the real store's conditional semantics: every row
// has a version; the versions a *store.Connection holds are those it was read with or last wrote;
// a write against a stale version fails with an error matching store.ErrConflict and changes
// nothing; Commit writes its three rows or none. It is safe for concurrent use.
type fakeStore struct {
	now func() time.Time

	mu      sync.Mutex
	parts   map[string]*partition
	held    map[*store.Record]rowVersions
	lastVer int64
	calls   map[string]int            // per method
	perConn map[string]map[string]int // per method, per connection
	log     []string                  // "Method" or "Method name", in call order
	faults  map[string][]fault        // per "Method" or "Method name", consumed one per call
	// hook runs outside the lock: after the read for List and Get, before the write for the
	// others (barriers, other writers).
	hook func(method, name string)
}

func newFakeStore(now func() time.Time) *fakeStore {
	return &fakeStore{
		now:     now,
		parts:   map[string]*partition{},
		held:    map[*store.Record]rowVersions{},
		calls:   map[string]int{},
		perConn: map[string]map[string]int{},
		faults:  map[string][]fault{},
	}
}

// Errors with the shapes the real store returns.
func statusErr(code int, svcCode string) error {
	return &store.StatusError{StatusCode: code, Code: svcCode}
}

var (
	errTransient = statusErr(http.StatusServiceUnavailable, "ServerBusy")
	errPermanent = statusErr(http.StatusBadRequest, "InvalidInput")
	errConflict  = statusErr(http.StatusPreconditionFailed, "UpdateConditionNotSatisfied")
)

// inject makes the next n calls of method fail with err.
func (f *fakeStore) inject(method string, n int, err error) {
	f.injectFor(method, "", n, err)
}

// injectFor makes the next n calls of method for connection name fail with err.
func (f *fakeStore) injectFor(method, name string, n int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := strings.TrimSpace(method + " " + name)
	for range n {
		f.faults[key] = append(f.faults[key], fault{err: err})
	}
}

// injectLostCommit makes the next Commit write its rows and then answer with a conflict.
func (f *fakeStore) injectLostCommit() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults[mCommit] = append(f.faults[mCommit], fault{err: errConflict, apply: true})
}

func (f *fakeStore) clearFaults() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = map[string][]fault{}
}

func (f *fakeStore) setHook(h func(method, name string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hook = h
}

// begin records a call and returns the fault injected for it, if any. It runs under f.mu.
func (f *fakeStore) begin(method, name string) *fault {
	f.calls[method]++
	if f.perConn[method] == nil {
		f.perConn[method] = map[string]int{}
	}
	f.perConn[method][name]++
	key := strings.TrimSpace(method + " " + name)
	f.log = append(f.log, key)
	for _, k := range []string{key, method} {
		if q := f.faults[k]; len(q) > 0 {
			f.faults[k] = q[1:]
			return &q[0]
		}
	}
	return nil
}

func (f *fakeStore) runHook(method, name string) {
	f.mu.Lock()
	h := f.hook
	f.mu.Unlock()
	if h != nil {
		h(method, name)
	}
}

// stored is how the table keeps a time: UTC, 100 ns precision.
func stored(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(100 * time.Nanosecond)
}

func normTokens(t store.Tokens) store.Tokens {
	t.ExpiresAt, t.RefreshExpiresAt = stored(t.ExpiresAt), stored(t.RefreshExpiresAt)
	return t
}

func normStatus(s store.Status) store.Status {
	for _, p := range []*time.Time{&s.ConnectedAt, &s.LastSuccess, &s.LastFailure, &s.NextAttempt, &s.LeaseUntil, &s.InFlightSince} {
		*p = stored(*p)
	}
	return s
}

// snapshot returns a new Connection read from p and remembers the versions it holds.
func (f *fakeStore) snapshot(name string, p *partition) *store.Record {
	c := &store.Record{
		Name:       name,
		HasAccess:  p.ver[rowAccess] != 0,
		HasRefresh: p.ver[rowRefresh] != 0,
		HasStatus:  p.ver[rowStatus] != 0,
	}
	if c.HasAccess {
		c.Tokens.AccessToken, c.Tokens.TokenType = p.tokens.AccessToken, p.tokens.TokenType
		c.Tokens.ExpiresAt, c.Tokens.Scope = p.tokens.ExpiresAt, p.tokens.Scope
	}
	if c.HasRefresh {
		c.Tokens.RefreshToken, c.Tokens.RefreshExpiresAt = p.tokens.RefreshToken, p.tokens.RefreshExpiresAt
	}
	if c.HasStatus {
		c.Status = p.status
	}
	f.held[c] = p.ver
	return c
}

func (f *fakeStore) List(ctx context.Context) (map[string]*store.Record, error) {
	defer f.runHook(mList, "")
	f.mu.Lock()
	defer f.mu.Unlock()
	if ft := f.begin(mList, ""); ft != nil {
		return nil, fmt.Errorf("fake store: list: %w", ft.err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("fake store: list: %w", err)
	}
	m := map[string]*store.Record{}
	for name, p := range f.parts {
		if p.ver != (rowVersions{}) {
			m[name] = f.snapshot(name, p)
		}
	}
	return m, nil
}

func (f *fakeStore) Get(ctx context.Context, name string) (*store.Record, error) {
	defer f.runHook(mGet, name)
	f.mu.Lock()
	defer f.mu.Unlock()
	if ft := f.begin(mGet, name); ft != nil {
		return nil, fmt.Errorf("fake store: get %q: %w", name, ft.err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("fake store: get %q: %w", name, err)
	}
	p := f.parts[name]
	if p == nil || p.ver == (rowVersions{}) {
		return nil, fmt.Errorf("fake store: get %q: %w", name, store.ErrNotFound)
	}
	return f.snapshot(name, p), nil
}

// precondition checks the rows' conditions as the real store would: replace where c has the
// row (If-Match its ETag), insert where it has none. It runs under f.mu.
func (f *fakeStore) precondition(c *store.Record, rows ...int) error {
	held, known := f.held[c]
	var cur rowVersions
	if p := f.parts[c.Name]; p != nil {
		cur = p.ver
	}
	has := [3]bool{c.HasAccess, c.HasRefresh, c.HasStatus}
	for _, i := range rows {
		switch {
		case has[i] && (!known || held[i] == 0):
			return errConflict // no known ETag
		case !has[i] && cur[i] != 0:
			return statusErr(http.StatusConflict, "EntityAlreadyExists")
		case has[i] && cur[i] == 0:
			return statusErr(http.StatusNotFound, "ResourceNotFound")
		case has[i] && held[i] != cur[i]:
			return errConflict
		}
	}
	return nil
}

func (f *fakeStore) part(name string) *partition {
	p := f.parts[name]
	if p == nil {
		p = &partition{}
		f.parts[name] = p
	}
	return p
}

func (f *fakeStore) bump(p *partition, rows ...int) {
	for _, i := range rows {
		f.lastVer++
		p.ver[i] = f.lastVer
	}
}

func (f *fakeStore) Lease(ctx context.Context, c *store.Record, st store.Status) error {
	return f.writeStatus(ctx, mLease, c, st)
}

func (f *fakeStore) SetStatus(ctx context.Context, c *store.Record, st store.Status) error {
	return f.writeStatus(ctx, mSetStatus, c, st)
}

func (f *fakeStore) writeStatus(ctx context.Context, method string, c *store.Record, st store.Status) error {
	f.runHook(method, c.Name)
	f.mu.Lock()
	defer f.mu.Unlock()
	if ft := f.begin(method, c.Name); ft != nil {
		return fmt.Errorf("fake store: %s %s: %w", method, c.Name, ft.err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fake store: %s %s: %w", method, c.Name, err)
	}
	if err := f.precondition(c, rowStatus); err != nil {
		return fmt.Errorf("fake store: %s %s: %w", method, c.Name, err)
	}
	p := f.part(c.Name)
	p.status = normStatus(st)
	f.bump(p, rowStatus)
	held := f.held[c]
	held[rowStatus] = p.ver[rowStatus]
	f.held[c] = held
	c.Status, c.HasStatus = p.status, true
	return nil
}

func (f *fakeStore) Commit(ctx context.Context, c *store.Record, t store.Tokens, st store.Status) error {
	f.runHook(mCommit, c.Name)
	f.mu.Lock()
	defer f.mu.Unlock()
	ft := f.begin(mCommit, c.Name)
	if ft != nil && !ft.apply {
		return fmt.Errorf("fake store: commit %s: %w", c.Name, ft.err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fake store: commit %s: %w", c.Name, err)
	}
	if err := f.precondition(c, rowAccess, rowRefresh, rowStatus); err != nil {
		return fmt.Errorf("fake store: commit %s: %w", c.Name, err)
	}
	p := f.part(c.Name)
	p.tokens, p.status = normTokens(t), normStatus(st)
	f.bump(p, rowAccess, rowRefresh, rowStatus)
	if ft != nil {
		// The write happened; the caller never learns it (its Connection keeps the old versions).
		return fmt.Errorf("fake store: commit %s: %w", c.Name, ft.err)
	}
	f.held[c] = p.ver
	c.Tokens, c.Status = p.tokens, p.status
	c.HasAccess, c.HasRefresh, c.HasStatus = true, true, true
	return nil
}

// seed writes a connection's three rows unconditionally, uncounted.
func (f *fakeStore) seed(name string, t store.Tokens, st store.Status) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.part(name)
	p.tokens, p.status = normTokens(t), normStatus(st)
	f.bump(p, rowAccess, rowRefresh, rowStatus)
}

// saveConsent replaces the three rows as store.SaveConsent does: unconditionally, in one go.
func (f *fakeStore) saveConsent(name string, t store.Tokens, st store.Status) {
	f.seed(name, t, st)
}

// otherWriterStatus changes only the Status row, as another writer's SetStatus would.
func (f *fakeStore) otherWriterStatus(name string, change func(*store.Status)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.part(name)
	change(&p.status)
	p.status = normStatus(p.status)
	f.bump(p, rowStatus)
}

// row returns what the table holds for name.
func (f *fakeStore) row(name string) (store.Tokens, store.Status) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.part(name)
	return p.tokens, p.status
}

func (f *fakeStore) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

func (f *fakeStore) countFor(method, name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.perConn[method][name]
}

// writes is the number of Lease, SetStatus and Commit calls for name.
func (f *fakeStore) writes(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.perConn[mLease][name] + f.perConn[mSetStatus][name] + f.perConn[mCommit][name]
}

func (f *fakeStore) callLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.log...)
}

// resetCounts forgets the calls so far.
func (f *fakeStore) resetCounts() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls, f.perConn, f.log = map[string]int{}, map[string]map[string]int{}, nil
}

// randomToken is a fresh 40-character alphanumeric secret.
func randomToken() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 40)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// step scripts one provider call.
type step struct {
	err *tokenclient.Error
	// issued: the provider issued (and, if it rotates, rotated) before the answer was lost.
	issued bool
}

type answer struct {
	tok tokenclient.Token
	at  time.Time
}

// fakeProvider is a TokenSource playing a provider: it hands out fresh random pairs, rotates
// the refresh token or not, answers an identical refresh within repeatWindow with the same
// pair, and counts a rotated-away refresh token presented outside that window as reuse (which
// makes RFC 9700 servers revoke the grant). It is safe for concurrent use.
type fakeProvider struct {
	now          func() time.Time
	rotate       bool
	omit         bool // a non-rotating answer has no refresh token at all (not the tokenclient form)
	ttl          time.Duration
	repeatWindow time.Duration

	mu      sync.Mutex
	script  []step
	calls   map[string]int // per refresh token presented
	order   []string       // refresh tokens presented, in order
	answers map[string]answer
	issued  []string // every token handed out
	reuse   int
	gate    chan struct{}                        // non-nil: each call waits until it is closed
	during  func(ctx context.Context, rt string) // runs inside each call, before the gate
}

func newFakeProvider(now func() time.Time, rotate bool) *fakeProvider {
	return &fakeProvider{now: now, rotate: rotate, ttl: time.Hour, calls: map[string]int{}, answers: map[string]answer{}}
}

func (p *fakeProvider) then(steps ...step) *fakeProvider {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.script = append(p.script, steps...)
	return p
}

func (p *fakeProvider) setGate(g chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gate = g
}

func (p *fakeProvider) setDuring(f func(ctx context.Context, rt string)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.during = f
}

func (p *fakeProvider) Refresh(ctx context.Context, rt string) (*tokenclient.Token, error) {
	p.mu.Lock()
	p.calls[rt]++
	p.order = append(p.order, rt)
	var s *step
	if len(p.script) > 0 {
		s = &p.script[0]
		p.script = p.script[1:]
	}
	during, gate := p.during, p.gate
	p.mu.Unlock()

	if during != nil {
		during(ctx, rt)
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, &tokenclient.Error{Op: "refresh", Class: tokenclient.Ambiguous, Detail: "context ended while waiting for the answer"}
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if s != nil && !s.issued {
		return nil, s.err
	}
	tok, err := p.answer(rt)
	if s != nil {
		return nil, s.err
	}
	return tok, err
}

// answer exchanges rt as the provider would. It runs under p.mu.
func (p *fakeProvider) answer(rt string) (*tokenclient.Token, error) {
	now := p.now()
	if a, ok := p.answers[rt]; ok && p.rotate {
		if p.repeatWindow > 0 && now.Sub(a.at) < p.repeatWindow {
			tok := a.tok
			return &tok, nil
		}
		p.reuse++
		return nil, &tokenclient.Error{Op: "refresh", Class: tokenclient.Revoked, StatusCode: http.StatusBadRequest,
			Code: "invalid_grant", Detail: "refresh token reuse detected; the grant is revoked"}
	}
	tok := tokenclient.Token{AccessToken: randomToken(), TokenType: "Bearer", Expiry: now.Add(p.ttl)}
	p.issued = append(p.issued, tok.AccessToken)
	switch {
	case p.rotate:
		tok.RefreshToken, tok.Rotated = randomToken(), true
		p.issued = append(p.issued, tok.RefreshToken)
	case !p.omit:
		tok.RefreshToken = rt
	}
	p.answers[rt] = answer{tok: tok, at: now}
	return &tok, nil
}

func (p *fakeProvider) callsWith(rt string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[rt]
}

func (p *fakeProvider) total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.order)
}

func (p *fakeProvider) reuses() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reuse
}

// answerFor is the pair the provider issued for rt.
func (p *fakeProvider) answerFor(rt string) (tokenclient.Token, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.answers[rt]
	return a.tok, ok
}

func (p *fakeProvider) secrets() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.issued...)
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
