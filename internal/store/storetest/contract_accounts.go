package storetest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/freshtoken/freshtoken/internal/store"
)

// accountContractTests cover the accounts of a many-account connection: sign-ins that carry a
// label and an invitation, invitations spent once, and an account's removal.
var accountContractTests = []struct {
	name string
	run  func(t *testing.T, s Store)
}{
	{"AuthStateAccount", testAuthStateAccount},
	{"InvitedConsent", testInvitedConsent},
	{"InvitedConsentOnce", testInvitedConsentOnce},
	{"InviteBadIDs", testInviteBadIDs},
	{"Remove", testRemove},
	{"RemoveStale", testRemoveStale},
}

func testAuthStateAccount(t *testing.T, s Store) {
	ctx := context.Background()
	want := store.AuthState{Verifier: "v", ExpiresAt: base, Label: "p-017", Invite: "0123456789abcdef0123456789abcdef"}
	must(t, "PutAuthState", s.PutAuthState(ctx, "strava", "aa", want))
	must(t, "PutAuthState without label", s.PutAuthState(ctx, "strava", "bb", store.AuthState{Verifier: "w"}))
	got, err := s.TakeAuthState(ctx, "strava", "aa")
	must(t, "TakeAuthState", err)
	if got.Label != want.Label || got.Invite != want.Invite || got.Verifier != want.Verifier || got.ExpiresAt != storedTime(want.ExpiresAt) {
		t.Errorf("got label %q invite %q expires %v; want %q %q %v", got.Label, got.Invite, got.ExpiresAt, want.Label, want.Invite, storedTime(want.ExpiresAt))
	}
	plain, err := s.TakeAuthState(ctx, "strava", "bb")
	must(t, "TakeAuthState without label", err)
	if plain.Label != "" || plain.Invite != "" {
		t.Errorf("sign-in without label: got label %q invite %q; want both empty", plain.Label, plain.Invite)
	}
}

func spent(id, tag string) store.SpentInvite {
	return store.SpentInvite{ID: id, SpentAt: base.In(east), ExpiresAt: base.Add(7 * 24 * 3600e9), Fingerprint: store.Fingerprint("at-" + tag + "-secret")}
}

func testInvitedConsent(t *testing.T, s Store) {
	ctx := context.Background()
	const id = "00112233445566778899aabbccddeeff"
	must(t, "SaveInvitedConsent", s.SaveInvitedConsent(ctx, "c.a", fullTokens("first"), fullStatus(1), spent(id, "first")))
	first := mustGet(t, s, "c.a")
	want := stored("c.a", fullTokens("first"), fullStatus(1))
	want.ETags = first.ETags
	sameRecord(t, "after the invited consent", first, &want)

	inv, err := s.GetInvite(ctx, "c.a", id)
	must(t, "GetInvite", err)
	if w := spent(id, "first"); inv.ID != id || inv.SpentAt != storedTime(w.SpentAt) || inv.ExpiresAt != storedTime(w.ExpiresAt) || inv.Fingerprint != w.Fingerprint {
		t.Errorf("GetInvite = %+v; want %+v (times stored)", inv, w)
	}

	// The same invitation again: nothing is written.
	err = s.SaveInvitedConsent(ctx, "c.a", fullTokens("second"), fullStatus(2), spent(id, "second"))
	wantConflict(t, "SaveInvitedConsent of a spent invitation", err)
	sameRecord(t, "after the refused second use", mustGet(t, s, "c.a"), first)
	if inv, _ := s.GetInvite(ctx, "c.a", id); inv.Fingerprint != spent(id, "first").Fingerprint {
		t.Errorf("invitation record after the refused use: fingerprint %s; want the first save's", inv.Fingerprint)
	}

	// Another invitation for the same account, and the same id in another account, are their own.
	must(t, "SaveInvitedConsent of another invitation", s.SaveInvitedConsent(ctx, "c.a", fullTokens("third"), fullStatus(3), spent("ab", "third")))
	must(t, "SaveInvitedConsent of the id in another account", s.SaveInvitedConsent(ctx, "c.b", fullTokens("b"), fullStatus(1), spent(id, "b")))

	if _, err := s.GetInvite(ctx, "c.a", "ffff"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetInvite of an unspent invitation: got %v; want ErrNotFound", err)
	}
	if _, err := s.GetInvite(ctx, "c.z", id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetInvite in an empty partition: got %v; want ErrNotFound", err)
	}
	// Invitation records are no connection rows: List and Get show only the three.
	m, err := s.List(ctx)
	must(t, "List", err)
	if len(m) != 2 || m["c.a"] == nil || m["c.b"] == nil {
		t.Errorf("List: got %d partitions; want c.a and c.b", len(m))
	}
}

func testInvitedConsentOnce(t *testing.T, s Store) {
	ctx := context.Background()
	const id = "feedface"
	const savers = 10
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		won      []int
		conflict int
		other    []error
	)
	start := make(chan struct{})
	for i := range savers {
		wg.Go(func() {
			<-start
			tag := string(rune('a' + i))
			err := s.SaveInvitedConsent(ctx, "c.p1", fullTokens(tag), fullStatus(int64(i)), spent(id, tag))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won = append(won, i)
			case errors.Is(err, store.ErrConflict):
				conflict++
			default:
				other = append(other, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if len(won) != 1 || conflict != savers-1 || len(other) != 0 {
		t.Fatalf("got %d successes, %d conflicts, other errors %v; want 1, %d, none", len(won), conflict, other, savers-1)
	}
	tag := string(rune('a' + won[0]))
	got := mustGet(t, s, "c.p1")
	if got.Tokens.AccessToken != fullTokens(tag).AccessToken || got.Status.Generation != int64(won[0]) {
		t.Errorf("stored pair: generation %d; want the winner's (%d)", got.Status.Generation, won[0])
	}
	if inv, err := s.GetInvite(ctx, "c.p1", id); err != nil || inv.Fingerprint != store.Fingerprint(fullTokens(tag).AccessToken) {
		t.Errorf("invitation record: %v; want the winner's fingerprint", err)
	}
}

func testInviteBadIDs(t *testing.T, s Store) {
	ctx := context.Background()
	for _, id := range []string{"", "xyz", "ABCD", "00'", "../Status", strings.Repeat("a", 65)} {
		err := s.SaveInvitedConsent(ctx, "c.a", fullTokens("x"), fullStatus(1), store.SpentInvite{ID: id})
		if err == nil || errors.Is(err, store.ErrConflict) {
			t.Errorf("SaveInvitedConsent(id %q): got %v; want a validation error", id, err)
		}
		if _, err := s.GetInvite(ctx, "c.a", id); err == nil || errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetInvite(id %q): got %v; want a validation error", id, err)
		}
	}
	if _, err := s.Get(ctx, "c.a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after refused saves: got %v; want ErrNotFound", err)
	}
	must(t, "SaveInvitedConsent of the longest id", s.SaveInvitedConsent(ctx, "c.a", fullTokens("x"), fullStatus(1), store.SpentInvite{ID: strings.Repeat("a", 64)}))
}

func testRemove(t *testing.T, s Store) {
	ctx := context.Background()
	must(t, "SaveInvitedConsent", s.SaveInvitedConsent(ctx, "c.a", fullTokens("a"), fullStatus(1), spent("aa", "a")))
	must(t, "SaveInvitedConsent", s.SaveInvitedConsent(ctx, "c.a", fullTokens("a"), fullStatus(2), spent("bb", "a")))
	for _, n := range []string{"c", "c.ab", "c.", "d.a"} {
		must(t, "SaveConsent "+n, s.SaveConsent(ctx, n, fullTokens(n), fullStatus(1)))
	}
	// A pending sign-in of the connection is not the account's.
	must(t, "PutAuthState", s.PutAuthState(ctx, "c", "cc", store.AuthState{Label: "a"}))
	r := mustGet(t, s, "c.a")
	n, err := s.Remove(ctx, r)
	must(t, "Remove", err)
	if n != 5 {
		t.Errorf("Remove: %d rows; want 5 (three token rows, two invitation records)", n)
	}
	if got, err := s.Get(ctx, "c.a"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after Remove = %s, %v; want ErrNotFound", show(got), err)
	}
	for _, id := range []string{"aa", "bb"} {
		if _, err := s.GetInvite(ctx, "c.a", id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetInvite(%s) after Remove: got %v; want ErrNotFound", id, err)
		}
	}
	for _, other := range []string{"c", "c.ab", "c.", "d.a"} {
		mustGet(t, s, other)
	}
	if _, err := s.TakeAuthState(ctx, "c", "cc"); err != nil {
		t.Errorf("TakeAuthState of the connection's pending sign-in after Remove: %v; want it kept", err)
	}
	// Removing again, with the record read before: its rows are gone.
	if _, err := s.Remove(ctx, r); !errors.Is(err, store.ErrConflict) {
		t.Errorf("Remove with a record of removed rows: got %v; want ErrConflict", err)
	}
	if _, err := s.Remove(ctx, &store.Record{Name: "c.a"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Remove of an empty partition: got %v; want ErrNotFound", err)
	}
	if _, err := s.Remove(ctx, nil); err == nil {
		t.Errorf("Remove(nil): got nil error; want one")
	}
	if _, err := s.Remove(ctx, &store.Record{Name: "a'b"}); err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
		t.Errorf("Remove of a bad name: got %v; want a validation error", err)
	}
	// A removed account can be connected again.
	must(t, "SaveConsent after Remove", s.SaveConsent(ctx, "c.a", fullTokens("again"), fullStatus(1)))
	mustGet(t, s, "c.a")
}

func testRemoveStale(t *testing.T, s Store) {
	ctx := context.Background()
	must(t, "SaveConsent", s.SaveConsent(ctx, "c.a", fullTokens("a"), fullStatus(1)))
	old := mustGet(t, s, "c.a")

	// A row r lacks, one without a known ETag, and a stale ETag: each deletes nothing.
	lacking := *old
	lacking.HasRefresh, lacking.ETags.Refresh = false, ""
	unknown := *old
	unknown.ETags.Access = ""
	for what, r := range map[string]*store.Record{"a record lacking a row": &lacking, "an unknown ETag": &unknown} {
		if _, err := s.Remove(ctx, r); !errors.Is(err, store.ErrConflict) {
			t.Errorf("Remove with %s: got %v; want ErrConflict", what, err)
		}
	}
	cur := mustGet(t, s, "c.a")
	must(t, "Lease", s.Lease(ctx, cur, fullStatus(2)))
	if _, err := s.Remove(ctx, old); !errors.Is(err, store.ErrConflict) {
		t.Errorf("Remove after a lease: got %v; want ErrConflict", err)
	}
	sameRecord(t, "after refused removals", mustGet(t, s, "c.a"), cur)
	if _, err := s.Remove(ctx, cur); err != nil {
		t.Errorf("Remove with the current record: %v", err)
	}
}
