package store

import "context"

func (l *Lazy) SaveInvitedConsent(ctx context.Context, name string, t Tokens, st Status, inv SpentInvite) error {
	s, err := l.Open(ctx)
	if err != nil {
		return err
	}
	return s.SaveInvitedConsent(ctx, name, t, st, inv)
}

func (l *Lazy) GetInvite(ctx context.Context, name, id string) (SpentInvite, error) {
	s, err := l.Open(ctx)
	if err != nil {
		return SpentInvite{}, err
	}
	return s.GetInvite(ctx, name, id)
}

func (l *Lazy) Remove(ctx context.Context, r *Record) (int, error) {
	s, err := l.Open(ctx)
	if err != nil {
		return 0, err
	}
	return s.Remove(ctx, r)
}

func (l *Lazy) Accounts(ctx context.Context, name string, o PageOptions) (AccountsPage, error) {
	s, err := l.Open(ctx)
	if err != nil {
		return AccountsPage{}, err
	}
	return s.Accounts(ctx, name, o)
}

func (l *Lazy) AccountCounts(ctx context.Context, name string) (map[State]int, error) {
	s, err := l.Open(ctx)
	if err != nil {
		return nil, err
	}
	return s.AccountCounts(ctx, name)
}
