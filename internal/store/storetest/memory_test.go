package storetest

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/freshtoken/freshtoken/internal/store"
)

var _ KeyedStore = (*Memory)(nil)

func TestContract(t *testing.T) {
	RunContract(t, func(*testing.T) Store { return new(Memory) })
}

func TestInject(t *testing.T) {
	ctx := context.Background()
	m := New()
	if err := m.SaveConsent(ctx, "a", fullTokens("a"), store.Status{}); err != nil {
		t.Fatal(err)
	}
	if err := m.SaveConsent(ctx, "b", fullTokens("b"), store.Status{}); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	m.Inject(1, Fault{Op: OpGet, Name: "b", Err: boom})
	m.Inject(2, Fault{Op: OpGet})

	var got []string
	for _, name := range []string{"b", "b", "a", "a", "b"} {
		_, err := m.Get(ctx, name)
		var se *store.StatusError
		switch {
		case err == nil:
			got = append(got, "ok")
		case errors.Is(err, boom):
			got = append(got, "boom")
		case errors.As(err, &se) && se.StatusCode == http.StatusServiceUnavailable && store.IsTransient(err):
			got = append(got, "503")
		default:
			got = append(got, err.Error())
		}
	}
	// The fault for b is taken before the one for any connection.
	if want := []string{"boom", "503", "503", "ok", "ok"}; !slices.Equal(got, want) {
		t.Errorf("got %q; want %q", got, want)
	}

	m.Inject(-1, Fault{Op: OpList})
	for range 3 {
		if _, err := m.List(ctx); err == nil {
			t.Errorf("List with an unlimited fault: got nil error")
		}
	}
	m.ClearFaults()
	if _, err := m.List(ctx); err != nil {
		t.Errorf("List after ClearFaults: %v", err)
	}
}

func TestInjectApplied(t *testing.T) {
	ctx := context.Background()
	m := New()
	c := &store.Record{Name: "c"}
	if err := m.Commit(ctx, c, fullTokens("1"), store.Status{Generation: 1}); err != nil {
		t.Fatal(err)
	}
	held := *c
	m.Inject(1, Fault{Op: OpCommit, Err: &store.StatusError{StatusCode: http.StatusPreconditionFailed}, Applied: true})
	if err := m.Commit(ctx, c, fullTokens("2"), store.Status{Generation: 2}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Commit whose answer is lost: got %v; want the injected conflict", err)
	}
	if *c != held {
		t.Errorf("the caller's Record changed; want it as before the lost answer")
	}
	got, _ := m.Peek("c")
	if got.Status.Generation != 2 || got.Tokens.AccessToken != fullTokens("2").AccessToken {
		t.Errorf("stored generation %d; want the lost write's 2", got.Status.Generation)
	}
	if err := m.Lease(ctx, c, store.Status{}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("Lease with the ETags from before the lost write: got %v; want ErrConflict", err)
	}

	// A lost take: the row is gone, the taker does not know it.
	if err := m.PutAuthState(ctx, "c", "00", store.AuthState{Verifier: "v"}); err != nil {
		t.Fatal(err)
	}
	m.Inject(1, Fault{Op: OpTakeAuthState, Applied: true})
	if _, err := m.TakeAuthState(ctx, "c", "00"); !store.IsTransient(err) {
		t.Errorf("lost take: got %v; want the transient fault", err)
	}
	if n := len(m.AuthStates("c")); n != 0 {
		t.Errorf("after the lost take: %d auth states; want 0", n)
	}

	// A fault does not override a failed condition: the write is refused, not applied.
	stale := held
	m.Inject(1, Fault{Op: OpLease, Applied: true})
	if err := m.Lease(ctx, &stale, store.Status{LeaseOwner: "x"}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("lost Lease with a stale ETag: got %v; want ErrConflict", err)
	}
	if got, _ := m.Peek("c"); got.Status.LeaseOwner != "" {
		t.Errorf("LeaseOwner %q; want the refused write not applied", got.Status.LeaseOwner)
	}
}

func TestCallsAndHook(t *testing.T) {
	ctx := context.Background()
	m := New()
	var hooked []string
	m.SetHook(func(op Op, name string) {
		c := Call{Op: op, Name: name}
		if op == OpGet {
			// After the read: a write by the hook is not in what Get returned.
			if err := m.Put(ctx, &store.Record{Name: name, HasStatus: true, Status: store.Status{LeaseOwner: "hook"}}); err != nil {
				t.Error(err)
			}
		}
		hooked = append(hooked, c.String())
	})
	c := &store.Record{Name: "a"}
	if err := m.Lease(ctx, c, store.Status{}); err != nil {
		t.Fatal(err)
	}
	got, err := m.Get(ctx, "a")
	if err != nil || got.Status.LeaseOwner != "" {
		t.Fatalf("Get: owner %q, %v; want the row as before the hook", got.Status.LeaseOwner, err)
	}
	if err := m.Lease(ctx, got, store.Status{}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("Lease after the hook's write: got %v; want ErrConflict", err)
	}
	if _, err := m.List(ctx); err != nil {
		t.Fatal(err)
	}
	m.SetHook(nil)
	want := []string{"Lease a", "Get a", "Lease a", "List"}
	if !slices.Equal(hooked, want) {
		t.Errorf("hook saw %q; want %q", hooked, want)
	}
	var calls []string
	for _, c := range m.Calls() {
		calls = append(calls, c.String())
	}
	if !slices.Equal(calls, want) {
		t.Errorf("Calls = %q; want %q (Put is not counted)", calls, want)
	}
	if log := m.Calls(); log[0].Err != nil || !errors.Is(log[2].Err, store.ErrConflict) {
		t.Errorf("Calls' errors: first Lease %v, second %v; want nil, ErrConflict", log[0].Err, log[2].Err)
	}
	if got := m.Count(OpLease, ""); got != 2 {
		t.Errorf("Count(Lease, any) = %d; want 2", got)
	}
	if got := m.Count(OpLease, "b"); got != 0 {
		t.Errorf("Count(Lease, b) = %d; want 0", got)
	}
	m.ResetCalls()
	if got := len(m.Calls()); got != 0 {
		t.Errorf("after ResetCalls: %d calls; want 0", got)
	}
}
