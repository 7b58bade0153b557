package connection

import (
	"errors"
	"fmt"
	"strings"
)

// An account of a many-account connection (OAUTH_<NAME>_ACCOUNTS=many) lives in its own
// partition NAME.LABEL, with the same three rows as a single connection's partition NAME.
// Connection names hold no '.', so the first '.' of a partition key separates the two.

// LabelSeparator joins a connection's name and an account's label in a partition key.
const LabelSeparator = "."

// MaxLabel is the longest account label.
const MaxLabel = 63

// ErrLabel is wrapped by every error of CheckLabel.
var ErrLabel = errors.New("invalid account label")

// CheckLabel says whether label can name an account: 1 to 63 lower-case letters, digits and '-'.
// Its errors name the problem and never quote more than the label's length.
func CheckLabel(label string) error {
	if label == "" || len(label) > MaxLabel {
		return fmt.Errorf("%w: %d characters; want 1 to %d", ErrLabel, len(label), MaxLabel)
	}
	for i := 0; i < len(label); i++ {
		b := label[i]
		if !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '-') {
			return fmt.Errorf("%w: character %d is not a lower-case letter, digit or '-'", ErrLabel, i+1)
		}
	}
	return nil
}

// Partition is the partition key of account label of the connection called name.
func Partition(name, label string) string { return name + LabelSeparator + label }

// SplitPartition splits an account's partition key into the connection name and the label. ok is
// false for a single connection's partition (no separator), and for a label CheckLabel refuses.
func SplitPartition(pk string) (name, label string, ok bool) {
	name, label, found := strings.Cut(pk, LabelSeparator)
	if !found || name == "" || CheckLabel(label) != nil {
		return "", "", false
	}
	return name, label, true
}

// AccountRange is the half-open range [lo, hi) of partition keys holding the accounts of the
// connection called name: every NAME.LABEL sorts within it, and no other partition does.
func AccountRange(name string) (lo, hi string) {
	// '/' is the byte after '.', and a label holds no byte outside [-0-9a-z].
	return name + LabelSeparator, name + "/"
}

// Account is the value of one account of a many-account connection c: a copy of c whose Name
// is the account's partition key and whose AuthorizeURL starts consent for that account.
func (c *Connection) Account(label string) (*Connection, error) {
	if !c.Many {
		return nil, fmt.Errorf("connection %s: account %q: the connection holds one account (set OAUTH_<NAME>_ACCOUNTS=many for several)", c.Name, label)
	}
	if err := CheckLabel(label); err != nil {
		return nil, fmt.Errorf("connection %s: %w", c.Name, err)
	}
	a := *c
	a.Name = Partition(c.Name, label)
	a.Label = label
	a.Base = c.Name
	a.AuthorizeURL = strings.TrimSuffix(c.AuthorizeURL, "/") + "/" + label
	return &a, nil
}

// App is the name of the connection c belongs to: c.Name for a configured connection, the
// connection's name for one of its accounts. Rate limits are kept per App.
func (c *Connection) App() string {
	if c.Base != "" {
		return c.Base
	}
	return c.Name
}
