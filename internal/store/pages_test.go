package store_test

import (
	"testing"

	"github.com/freshtoken/freshtoken/internal/connection"
	"github.com/freshtoken/freshtoken/internal/store"
)

func TestAccountRangeIsConnections(t *testing.T) {
	for _, name := range []string{"strava", "a", "with-dash"} {
		lo, hi := store.AccountRange(name)
		wlo, whi := connection.AccountRange(name)
		if lo != wlo || hi != whi {
			t.Errorf("AccountRange(%q) = [%q, %q); want connection's [%q, %q)", name, lo, hi, wlo, whi)
		}
	}
}
