package store

import (
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/freshtoken/freshtoken/internal/seal"
)

// SecretProperty returns the property of row rowKey that holds a secret, sealed at rest when keys
// are configured (Options.Keys): RefreshToken.Value and the Verifier of AuthState rows. Every
// other property, the AccessToken row's included, stays plain text for readers.
func SecretProperty(rowKey string) (property string, ok bool) {
	switch {
	case rowKey == RowRefreshToken:
		return propValue, true
	case strings.HasPrefix(rowKey, rowAuthStatePrefix):
		return propVerifier, true
	}
	return "", false
}

// Binding is where a secret is stored, as its seal authenticates it: a sealed value opens only in
// the table, partition, row and property it was sealed for.
func Binding(table, partitionKey, rowKey, property string) seal.Binding {
	return seal.Binding{Table: table, PartitionKey: partitionKey, RowKey: rowKey, Property: property}
}

// encodeRow is encodeEntity with the row's secret property sealed under the first key.
func (s *Store) encodeRow(pk, rk string, props map[string]any) ([]byte, error) {
	if prop, ok := SecretProperty(rk); ok && s.keys != nil {
		if v, ok := props[prop].(string); ok {
			sealed, err := s.keys.Seal(v, Binding(s.table, pk, rk, prop))
			if err != nil {
				return nil, fmt.Errorf("encode row %s: %w", rk, err)
			}
			props[prop] = sealed
		}
	}
	return encodeEntity(pk, rk, props)
}

// openRow replaces e's sealed secret property with its plain text. A value that cannot be opened
// is removed from e, so that nothing downstream mistakes the ciphertext for a secret, and the
// error (wrapping a *seal.OpenError) names the row, the property and the key id.
func (s *Store) openRow(e *aztables.EDMEntity) error {
	prop, ok := SecretProperty(e.RowKey)
	if !ok {
		return nil
	}
	v, ok := e.Properties[prop].(string)
	if !ok {
		return nil // missing, or a type propReader reports
	}
	plain, _, err := s.keys.Open(v, Binding(s.table, e.PartitionKey, e.RowKey, prop))
	if err != nil {
		delete(e.Properties, prop)
		return fmt.Errorf("row %s property %s: %w", e.RowKey, prop, err)
	}
	e.Properties[prop] = plain
	return nil
}
