package store

import (
	"context"
	"sync"
)

// Lazy is a Store opened on first use, and again on the next use after a failed open. The
// handler must answer the Functions host's readiness ping at once, before the table service
// (or Microsoft Entra) has answered; a store that cannot be reached then fails the calls that
// need it, with the reason, instead of the process.
type Lazy struct {
	o Options

	mu sync.Mutex
	s  *Store
}

// NewLazy returns a Lazy for o. Nothing is contacted until the first call.
func NewLazy(o Options) *Lazy { return &Lazy{o: o} }

// Open opens the store now if it is not open yet: the table is created if missing.
func (l *Lazy) Open(ctx context.Context) (*Store, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.s != nil {
		return l.s, nil
	}
	s, err := Open(ctx, l.o)
	if err != nil {
		return nil, err
	}
	l.s = s
	return s, nil
}

func (l *Lazy) List(ctx context.Context) (map[string]*Record, error) {
	s, err := l.Open(ctx)
	if err != nil {
		return nil, err
	}
	return s.List(ctx)
}

func (l *Lazy) Get(ctx context.Context, name string) (*Record, error) {
	s, err := l.Open(ctx)
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, name)
}

func (l *Lazy) Lease(ctx context.Context, c *Record, st Status) error {
	s, err := l.Open(ctx)
	if err != nil {
		return err
	}
	return s.Lease(ctx, c, st)
}

func (l *Lazy) SetStatus(ctx context.Context, c *Record, st Status) error {
	s, err := l.Open(ctx)
	if err != nil {
		return err
	}
	return s.SetStatus(ctx, c, st)
}

func (l *Lazy) Commit(ctx context.Context, c *Record, t Tokens, st Status) error {
	s, err := l.Open(ctx)
	if err != nil {
		return err
	}
	return s.Commit(ctx, c, t, st)
}

func (l *Lazy) SaveConsent(ctx context.Context, name string, t Tokens, st Status) error {
	s, err := l.Open(ctx)
	if err != nil {
		return err
	}
	return s.SaveConsent(ctx, name, t, st)
}

func (l *Lazy) PutAuthState(ctx context.Context, name, key string, a AuthState) error {
	s, err := l.Open(ctx)
	if err != nil {
		return err
	}
	return s.PutAuthState(ctx, name, key, a)
}

func (l *Lazy) TakeAuthState(ctx context.Context, name, key string) (AuthState, error) {
	s, err := l.Open(ctx)
	if err != nil {
		return AuthState{}, err
	}
	return s.TakeAuthState(ctx, name, key)
}

func (l *Lazy) Scan(ctx context.Context, o ScanOptions) (map[string]Candidate, error) {
	s, err := l.Open(ctx)
	if err != nil {
		return nil, err
	}
	return s.Scan(ctx, o)
}

func (l *Lazy) GetMany(ctx context.Context, names []string) (map[string]*Record, error) {
	s, err := l.Open(ctx)
	if err != nil {
		return nil, err
	}
	return s.GetMany(ctx, names)
}
