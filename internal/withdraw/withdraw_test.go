package withdraw

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/connection"
	"github.com/freshtoken/freshtoken/internal/provider"
	"github.com/freshtoken/freshtoken/internal/store"
	"github.com/freshtoken/freshtoken/internal/store/storetest"
	"github.com/freshtoken/freshtoken/internal/tokenclient"
	"golang.org/x/oauth2"
)

// revocations is an RFC 7009 endpoint answering status, recording the tokens it was sent.
type revocations struct {
	mu     sync.Mutex
	tokens []string
	status int
}

func (rv *revocations) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	v, _ := url.ParseQuery(string(b))
	rv.mu.Lock()
	rv.tokens = append(rv.tokens, v.Get("token"))
	status := rv.status
	rv.mu.Unlock()
	w.WriteHeader(status)
}

func (rv *revocations) sent() []string {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return append([]string(nil), rv.tokens...)
}

// account is account label of a many-account connection whose provider revokes at srv (nil:
// a preset without a revocation API).
func account(t *testing.T, srv *httptest.Server, label string) *connection.Connection {
	t.Helper()
	p := provider.Preset{Name: provider.Custom, Title: "Example", AuthStyle: oauth2.AuthStyleInParams}
	if srv != nil {
		p.Revoke, p.RevokeURL = provider.RevokeRFC7009, srv.URL+"/revoke"
	} else {
		p, _ = provider.Lookup("spotify")
	}
	c := &connection.Connection{Name: "study", Preset: p, Many: true,
		Client: tokenclient.For(tokenclient.Options{Preset: p, ClientID: "id", ClientSecret: "secret", Timeout: 5 * time.Second})}
	a, err := c.Account(label)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func seed(t *testing.T, m *storetest.Memory, name, tag string, invite string) {
	t.Helper()
	tok := store.Tokens{AccessToken: "at-" + tag, RefreshToken: "rt-" + tag, ExpiresAt: time.Now().Add(time.Hour)}
	st := store.Status{State: store.StateOK, AccountID: "acct"}
	var err error
	if invite != "" {
		err = m.SaveInvitedConsent(context.Background(), name, tok, st, store.SpentInvite{ID: invite})
	} else {
		err = m.SaveConsent(context.Background(), name, tok, st)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func gone(t *testing.T, m *storetest.Memory, name string) {
	t.Helper()
	if _, ok := m.Peek(name); ok {
		t.Errorf("%s still has rows", name)
	}
	if n := len(m.Invites(name)); n != 0 {
		t.Errorf("%s still has %d invitation records", name, n)
	}
}

func TestRemoveRevoked(t *testing.T) {
	rv := &revocations{status: http.StatusOK}
	srv := httptest.NewServer(rv)
	defer srv.Close()
	m := storetest.New()
	seed(t, m, "study.p1", "p1", "abcd")
	seed(t, m, "study.p2", "p2", "")
	res, err := Remove(context.Background(), Options{Store: m}, account(t, srv, "p1"))
	if err != nil || !res.Revoked || res.Deleted != 4 || res.NeedsAttention() {
		t.Fatalf("Remove = %+v, %v; want revoked, 4 rows deleted", res, err)
	}
	if got := rv.sent(); len(got) != 1 || got[0] != "rt-p1" {
		t.Errorf("revoked %v; want exactly the refresh token rt-p1", got)
	}
	gone(t, m, "study.p1")
	if _, ok := m.Peek("study.p2"); !ok {
		t.Errorf("study.p2 was removed too")
	}
	var out bytes.Buffer
	res.Write(&out)
	if want := "removed study.p1: access revoked at Example; 4 rows deleted.\n"; out.String() != want {
		t.Errorf("output %q; want %q", out.String(), want)
	}
}

func TestRemoveRevokeFails(t *testing.T) {
	rv := &revocations{status: http.StatusServiceUnavailable}
	srv := httptest.NewServer(rv)
	defer srv.Close()

	m := storetest.New()
	seed(t, m, "study.p1", "p1", "")
	res, err := Remove(context.Background(), Options{Store: m, KeepOnFailure: true}, account(t, srv, "p1"))
	if err != nil || !res.Kept || res.Deleted != 0 || res.RevokeErr == nil {
		t.Fatalf("KeepOnFailure: Remove = %+v, %v; want kept, nothing deleted", res, err)
	}
	if _, ok := m.Peek("study.p1"); !ok {
		t.Errorf("KeepOnFailure: rows deleted")
	}
	var out bytes.Buffer
	res.Write(&out)
	if !strings.Contains(out.String(), "kept study.p1") || !strings.Contains(out.String(), "HTTP 503") {
		t.Errorf("KeepOnFailure output %q; want it kept and why", out.String())
	}

	// By default the rows go anyway, and the result says the provider was not told.
	res, err = Remove(context.Background(), Options{Store: m}, account(t, srv, "p1"))
	if err != nil || res.Kept || res.Deleted != 3 || res.RevokeErr == nil || !res.NeedsAttention() {
		t.Fatalf("default: Remove = %+v, %v; want 3 rows deleted and the revocation error", res, err)
	}
	gone(t, m, "study.p1")
	out.Reset()
	res.Write(&out)
	if !strings.Contains(out.String(), "could not be told") {
		t.Errorf("default output %q; want it to say the provider could not be told", out.String())
	}
	for _, tok := range []string{"rt-p1", "at-p1", "secret"} {
		if strings.Contains(out.String(), tok) {
			t.Errorf("output holds a secret: %q", out.String())
		}
	}
}

func TestRemoveNoAPI(t *testing.T) {
	m := storetest.New()
	seed(t, m, "study.p1", "p1", "")
	res, err := Remove(context.Background(), Options{Store: m}, account(t, nil, "p1"))
	if err != nil || !res.NoAPI || res.Revoked || res.Deleted != 3 || res.Help != "https://www.spotify.com/account/apps/" {
		t.Fatalf("Remove = %+v, %v; want no API, 3 rows deleted, Spotify's apps page", res, err)
	}
	var out bytes.Buffer
	res.Write(&out)
	if !strings.Contains(out.String(), "has no revocation call") || !strings.Contains(out.String(), "spotify.com/account/apps") {
		t.Errorf("output %q; want where to revoke", out.String())
	}
}

func TestRemoveNothing(t *testing.T) {
	m := storetest.New()
	_, err := Remove(context.Background(), Options{Store: m}, account(t, nil, "p9"))
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Remove of nothing: got %v; want ErrNotFound", err)
	}
	// Connected between a read that found nothing and the sweep of invitation records: read
	// again, and remove what is there now.
	seed(t, m, "study.p8", "p8", "ef")
	m.Inject(1, storetest.Fault{Op: storetest.OpGet, Err: store.ErrNotFound})
	res, err := Remove(context.Background(), Options{Store: m}, account(t, nil, "p8"))
	if err != nil || res.Deleted != 4 {
		t.Errorf("Remove = %+v, %v; want 4 rows deleted on the second read", res, err)
	}
	gone(t, m, "study.p8")
	// A store that fails is an error, and nothing is revoked.
	rv := &revocations{status: http.StatusOK}
	srv := httptest.NewServer(rv)
	defer srv.Close()
	seed(t, m, "study.p7", "p7", "")
	m.Inject(1, storetest.Fault{Op: storetest.OpGet})
	if _, err := Remove(context.Background(), Options{Store: m}, account(t, srv, "p7")); err == nil {
		t.Errorf("Remove with the store down: got nil error; want one")
	}
	if n := len(rv.sent()); n != 0 {
		t.Errorf("%d revocations with the store down; want 0", n)
	}
}

// A refresh that commits a rotated pair between the read and the delete: the delete conflicts,
// the new refresh token is revoked too, and then the rows go.
func TestRemoveRefreshedMeanwhile(t *testing.T) {
	rv := &revocations{status: http.StatusOK}
	srv := httptest.NewServer(rv)
	defer srv.Close()
	m := storetest.New()
	seed(t, m, "study.p1", "old", "")
	var once sync.Once
	m.SetHook(func(op storetest.Op, name string) {
		if op != storetest.OpRemove {
			return
		}
		once.Do(func() {
			r, _ := m.Peek(name)
			if err := m.Commit(context.Background(), r, store.Tokens{AccessToken: "at-new", RefreshToken: "rt-new"}, r.Status); err != nil {
				t.Errorf("concurrent commit: %v", err)
			}
		})
	})
	res, err := Remove(context.Background(), Options{Store: m}, account(t, srv, "p1"))
	if err != nil || !res.Revoked || res.Deleted != 3 {
		t.Fatalf("Remove = %+v, %v; want revoked and 3 rows deleted", res, err)
	}
	if got := rv.sent(); len(got) != 2 || got[0] != "rt-old" || got[1] != "rt-new" {
		t.Errorf("revoked %v; want rt-old, then rt-new", got)
	}
	gone(t, m, "study.p1")
}

// A refresh token sealed under a key this app lacks: the access token is revoked instead, and
// the rows still go.
func TestRemoveUnreadableRefreshToken(t *testing.T) {
	rv := &revocations{status: http.StatusOK}
	srv := httptest.NewServer(rv)
	defer srv.Close()
	m := storetest.New()
	seed(t, m, "study.p1", "p1", "")
	r, _ := m.Peek("study.p1")
	r.SecretErr = errors.New("sealed under key k9")
	r.Tokens.RefreshToken = ""
	s := &unreadable{Memory: m, r: r}
	res, err := Remove(context.Background(), Options{Store: s}, account(t, srv, "p1"))
	if err != nil || !res.Revoked || !res.Unreadable || res.Deleted != 3 {
		t.Fatalf("Remove = %+v, %v; want revoked with the access token, 3 rows deleted", res, err)
	}
	if got := rv.sent(); len(got) != 1 || got[0] != "at-p1" {
		t.Errorf("revoked %v; want the access token at-p1", got)
	}
	var out bytes.Buffer
	res.Write(&out)
	if !strings.Contains(out.String(), "could not be opened") {
		t.Errorf("output %q; want it to say the refresh token could not be opened", out.String())
	}
}

// unreadable is a store whose Get returns r, as the store reads a partition whose refresh token
// cannot be opened.
type unreadable struct {
	*storetest.Memory
	r *store.Record
}

func (u *unreadable) Get(context.Context, string) (*store.Record, error) {
	c := *u.r
	return &c, nil
}
