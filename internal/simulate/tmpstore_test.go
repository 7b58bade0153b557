package simulate_test

// A temporary in-memory store until internal/store/storetest lands on main.

import (
	"context"
	"fmt"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/freshtoken/freshtoken/internal/store"
)

type tmpPart struct {
	rec  store.Record
	vers [3]int
}

type tmpStore struct {
	mu    sync.Mutex
	parts map[string]*tmpPart
	seq   int
}

func newTmpStore() *tmpStore { return &tmpStore{parts: map[string]*tmpPart{}} }

func (s *tmpStore) etag(v int) azcore.ETag {
	if v == 0 {
		return ""
	}
	return azcore.ETag(fmt.Sprintf("W/\"%d\"", v))
}

func (s *tmpStore) read(p *tmpPart) *store.Record {
	r := p.rec
	r.ETags = store.ETags{Access: s.etag(p.vers[0]), Refresh: s.etag(p.vers[1]), Status: s.etag(p.vers[2])}
	return &r
}

func (s *tmpStore) List(ctx context.Context) (map[string]*store.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string]*store.Record{}
	for k, p := range s.parts {
		m[k] = s.read(p)
	}
	return m, nil
}

func (s *tmpStore) Get(ctx context.Context, name string) (*store.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.parts[name]
	if !ok {
		return nil, store.ErrNotFound
	}
	return s.read(p), nil
}

func (s *tmpStore) check(c *store.Record, rows ...int) (*tmpPart, error) {
	p, ok := s.parts[c.Name]
	if !ok {
		p = &tmpPart{rec: store.Record{Name: c.Name}}
		s.parts[c.Name] = p
	}
	held := [3]azcore.ETag{c.ETags.Access, c.ETags.Refresh, c.ETags.Status}
	for _, r := range rows {
		if held[r] != s.etag(p.vers[r]) {
			return nil, store.ErrConflict
		}
	}
	return p, nil
}

func (s *tmpStore) bump(p *tmpPart, rows ...int) {
	for _, r := range rows {
		s.seq++
		p.vers[r] = s.seq
	}
}

func (s *tmpStore) Lease(ctx context.Context, c *store.Record, st store.Status) error {
	return s.SetStatus(ctx, c, st)
}

func (s *tmpStore) SetStatus(ctx context.Context, c *store.Record, st store.Status) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.check(c, 2)
	if err != nil {
		return err
	}
	s.bump(p, 2)
	p.rec.Status, p.rec.HasStatus = st, true
	c.Status, c.HasStatus, c.ETags.Status = st, true, s.etag(p.vers[2])
	return nil
}

func (s *tmpStore) Commit(ctx context.Context, c *store.Record, t store.Tokens, st store.Status) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.check(c, 0, 1, 2)
	if err != nil {
		return err
	}
	st.RefreshDeadline = t.RefreshExpiresAt
	s.bump(p, 0, 1, 2)
	p.rec.Tokens, p.rec.Status = t, st
	p.rec.HasAccess, p.rec.HasRefresh, p.rec.HasStatus = true, true, true
	r := s.read(p)
	*c = *r
	return nil
}

func (s *tmpStore) SaveConsent(ctx context.Context, name string, t store.Tokens, st store.Status) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.parts[name]
	if !ok {
		p = &tmpPart{rec: store.Record{Name: name}}
		s.parts[name] = p
	}
	st.RefreshDeadline = t.RefreshExpiresAt
	s.bump(p, 0, 1, 2)
	p.rec.Tokens, p.rec.Status = t, st
	p.rec.HasAccess, p.rec.HasRefresh, p.rec.HasStatus = true, true, true
	return nil
}
