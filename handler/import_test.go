package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/connection"
	"github.com/freshtoken/freshtoken/internal/store"
	"github.com/freshtoken/freshtoken/internal/tokenclient"
)

// flakySaver fails the first fails calls, then stores.
type flakySaver struct {
	fails, calls int
	saved        *store.Tokens
}

func (f *flakySaver) SaveConsent(_ context.Context, _ string, t store.Tokens, _ store.Status) error {
	f.calls++
	if f.calls <= f.fails {
		return errors.New("table unavailable: 503")
	}
	f.saved = &t
	return nil
}

func TestSavePair(t *testing.T) {
	tests := []struct {
		name      string
		fails     int
		within    time.Duration
		wantSaved bool
	}{
		{"first try", 0, time.Minute, true},
		{"after failures", 2, time.Minute, true},
		{"gives up at the deadline", 1 << 30, 100 * time.Millisecond, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &flakySaver{fails: tt.fails}
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // an interrupt does not stop the write
			err := savePair(ctx, s, "demo", store.Tokens{AccessToken: "at"}, store.Status{}, tt.within)
			if got := s.saved != nil; got != tt.wantSaved || (err == nil) != tt.wantSaved {
				t.Errorf("saved %v, err %v; want saved %v", got, err, tt.wantSaved)
			}
			if tt.wantSaved && s.calls != tt.fails+1 {
				t.Errorf("%d calls; want %d", s.calls, tt.fails+1)
			}
		})
	}
}

func TestLostPair(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	c := &connection.Connection{Name: "demo", AuthorizeURL: "http://localhost:7071/api/authorize/demo"}
	const given, rotated, access = "rt-given-0123456789", "rt-rotated-0123456789", "at-new-0123456789"
	storeErr := errors.New("transaction failed: token rt-rotated-0123456789 rejected")

	// Not rotated: the given token still works, nothing is written.
	err := lostPair(c, given, &tokenclient.Token{AccessToken: access, RefreshToken: given}, storeErr)
	if code := exitStatus(err, &strings.Builder{}); code != exitFailed || !strings.Contains(err.Error(), "still works") {
		t.Errorf("not rotated: status %d, %v; want 1 saying the given token still works", code, err)
	}
	if files, _ := os.ReadDir(dir); len(files) != 0 {
		t.Errorf("not rotated: %d files written; want none", len(files))
	}

	// Rotated: the new refresh token is kept in a file of mode 0600, never in the message.
	err = lostPair(c, given, &tokenclient.Token{AccessToken: access, RefreshToken: rotated, Rotated: true}, storeErr)
	msg := err.Error()
	for _, s := range []string{given, rotated, access} {
		if strings.Contains(msg, s) {
			t.Errorf("the message holds a token: %s", msg)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "freshtoken-demo-refresh-token-*.txt"))
	if len(files) != 1 {
		t.Fatalf("rescue files %q; want one", files)
	}
	if !strings.Contains(msg, files[0]) || !strings.Contains(msg, "freshtoken import demo --replace < "+files[0]) {
		t.Errorf("message %q; want the file and the command to bring it in", msg)
	}
	fi, err := os.Stat(files[0])
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("rescue file mode %v (%v); want 0600", fi.Mode().Perm(), err)
	}
	b, _ := os.ReadFile(files[0])
	if got, err := readRefreshToken(strings.NewReader(string(b)), &strings.Builder{}, "demo"); err != nil || got != rotated {
		t.Errorf("rescue file reads back as %q (%v); want the rotated refresh token", got, err)
	}
}
