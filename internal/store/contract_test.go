package store_test

import (
	"testing"

	"github.com/freshtoken/freshtoken/internal/seal"
	"github.com/freshtoken/freshtoken/internal/store"
	"github.com/freshtoken/freshtoken/internal/store/storetest"
)

// TestContract runs the contract that storetest.Memory also passes against the real store on
// Azurite: the two behave alike, sealing included.
func TestContract(t *testing.T) {
	t.Parallel()
	storetest.RunContract(t, func(t *testing.T) storetest.Store { return keyed{store.OpenTestStore(t)} })
}

// keyed is the real store as a storetest.KeyedStore.
type keyed struct{ *store.Store }

func (k keyed) Reopen(keys *seal.Keyring) storetest.KeyedStore { return keyed{k.WithKeys(keys)} }

var _ storetest.KeyedStore = keyed{}
