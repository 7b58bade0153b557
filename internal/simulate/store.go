package simulate

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/freshtoken/freshtoken/internal/store"
)

// Backend is an in-memory token table with the real store's semantics (storetest.Memory).
type Backend interface {
	List(ctx context.Context) (map[string]*store.Record, error)
	Get(ctx context.Context, name string) (*store.Record, error)
	Lease(ctx context.Context, c *store.Record, st store.Status) error
	Commit(ctx context.Context, c *store.Record, t store.Tokens, st store.Status) error
	SetStatus(ctx context.Context, c *store.Record, st store.Status) error
	SaveConsent(ctx context.Context, name string, t store.Tokens, st store.Status) error
}

// Stored is one access token as stored from At on.
type Stored struct {
	At          time.Time
	AccessToken string
}

// Store is the token table in the world: b, refusing every call with 503 ServerBusy inside the
// storage fault windows, and recording every access token stored, for the figures. onStored is
// told of each newly stored access token (the consumer app reading and using it).
type Store struct {
	b        Backend
	down     Windows
	onStored func(at string, now time.Time)

	mu       sync.Mutex
	timeline []Stored
}

// NewStore wraps b with the storage faults down.
func NewStore(b Backend, down Windows, onStored func(at string, now time.Time)) *Store {
	return &Store{b: b, down: down, onStored: onStored}
}

func (s *Store) refuse(op string) error {
	if s.down.Contains(time.Now()) {
		return fmt.Errorf("store: %s: %w", op, &store.StatusError{StatusCode: 503, Code: "ServerBusy"})
	}
	return nil
}

// List reads every connection.
func (s *Store) List(ctx context.Context) (map[string]*store.Record, error) {
	if err := s.refuse("list"); err != nil {
		return nil, err
	}
	return s.b.List(ctx)
}

// Get reads one connection.
func (s *Store) Get(ctx context.Context, name string) (*store.Record, error) {
	if err := s.refuse("get " + name); err != nil {
		return nil, err
	}
	return s.b.Get(ctx, name)
}

// Lease writes a lease conditionally.
func (s *Store) Lease(ctx context.Context, c *store.Record, st store.Status) error {
	if err := s.refuse("lease " + c.Name); err != nil {
		return err
	}
	return s.b.Lease(ctx, c, st)
}

// SetStatus writes a status conditionally.
func (s *Store) SetStatus(ctx context.Context, c *store.Record, st store.Status) error {
	if err := s.refuse("set status " + c.Name); err != nil {
		return err
	}
	return s.b.SetStatus(ctx, c, st)
}

// Commit stores a refreshed pair conditionally.
func (s *Store) Commit(ctx context.Context, c *store.Record, t store.Tokens, st store.Status) error {
	if err := s.refuse("commit " + c.Name); err != nil {
		return err
	}
	if err := s.b.Commit(ctx, c, t, st); err != nil {
		return err
	}
	s.stored(t.AccessToken)
	return nil
}

// SaveConsent stores a consent's pair.
func (s *Store) SaveConsent(ctx context.Context, name string, t store.Tokens, st store.Status) error {
	if err := s.refuse("save consent " + name); err != nil {
		return err
	}
	if err := s.b.SaveConsent(ctx, name, t, st); err != nil {
		return err
	}
	s.stored(t.AccessToken)
	return nil
}

func (s *Store) stored(at string) {
	now := time.Now()
	s.mu.Lock()
	changed := len(s.timeline) == 0 || s.timeline[len(s.timeline)-1].AccessToken != at
	if changed {
		s.timeline = append(s.timeline, Stored{At: now, AccessToken: at})
	}
	s.mu.Unlock()
	if changed && s.onStored != nil {
		s.onStored(at, now)
	}
}

// Timeline is every access token stored, in order.
func (s *Store) Timeline() []Stored {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Stored(nil), s.timeline...)
}

// Peek reads a connection without faults, as the person looking at the Status row does.
func (s *Store) Peek(ctx context.Context, name string) (*store.Record, error) {
	return s.b.Get(ctx, name)
}
