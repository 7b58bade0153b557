package refresh_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/store"
	"github.com/freshtoken/freshtoken/internal/store/storetest"
	"github.com/freshtoken/freshtoken/internal/tokenclient"
)

// Store operations, as counted by storetest.Memory.
const (
	mList      = storetest.OpList
	mGet       = storetest.OpGet
	mLease     = storetest.OpLease
	mCommit    = storetest.OpCommit
	mSetStatus = storetest.OpSetStatus
)

// Errors with the shapes the real store returns.
func statusErr(code int, svcCode string) error {
	return &store.StatusError{StatusCode: code, Code: svcCode}
}

var (
	errTransient = statusErr(http.StatusServiceUnavailable, "ServerBusy")
	errPermanent = statusErr(http.StatusBadRequest, "InvalidInput")
	errConflict  = statusErr(http.StatusPreconditionFailed, "UpdateConditionNotSatisfied")
)

// seed writes a connection's three rows unconditionally, uncounted.
func seed(t testing.TB, s *storetest.Memory, name string, tk store.Tokens, st store.Status) {
	t.Helper()
	r := &store.Record{Name: name, HasAccess: true, HasRefresh: true, HasStatus: true, Tokens: tk, Status: st}
	if err := s.Put(context.Background(), r); err != nil {
		t.Fatalf("seed %s: %v", name, err)
	}
}

// otherWriterStatus changes only the Status row, as another writer's SetStatus would.
func otherWriterStatus(t testing.TB, s *storetest.Memory, name string, change func(*store.Status)) {
	t.Helper()
	var st store.Status
	if r, ok := s.Peek(name); ok {
		st = r.Status
	}
	change(&st)
	if err := s.Put(context.Background(), &store.Record{Name: name, HasStatus: true, Status: st}); err != nil {
		t.Errorf("other writer's status for %s: %v", name, err)
	}
}

// row returns what the table holds for name (zero values where it holds nothing).
func row(s *storetest.Memory, name string) (store.Tokens, store.Status) {
	r, ok := s.Peek(name)
	if !ok {
		return store.Tokens{}, store.Status{}
	}
	return r.Tokens, r.Status
}

// writes is the number of Lease, SetStatus and Commit calls for name.
func writes(s *storetest.Memory, name string) int {
	return s.Count(mLease, name) + s.Count(mSetStatus, name) + s.Count(mCommit, name)
}

// callLog is the calls so far, as "Method" or "Method name".
func callLog(s *storetest.Memory) []string {
	var log []string
	for _, c := range s.Calls() {
		log = append(log, c.String())
	}
	return log
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
