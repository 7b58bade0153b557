package store_test

import (
	"testing"

	"github.com/freshtoken/freshtoken/internal/store"
	"github.com/freshtoken/freshtoken/internal/store/storetest"
)

// TestContract runs the contract that storetest.Memory also passes against the real store on
// Azurite: the two behave alike.
func TestContract(t *testing.T) {
	t.Parallel()
	storetest.RunContract(t, func(t *testing.T) storetest.Store { return store.OpenTestStore(t) })
}
