package store

import "time"

// The table's rules, exported for other implementations of the store (storetest) so that they
// apply exactly these and keep no copy.

// CheckName says why name cannot be a partition key, or nil.
func CheckName(name string) error { return checkName(name) }

// CheckAuthKey says why key cannot name a pending authorization of name, or nil.
func CheckAuthKey(name, key string) error { return checkAuthKey(name, key) }

// StoredTime is t as the table keeps it: UTC, 100 ns precision; zero stays zero.
func StoredTime(t time.Time) time.Time { return storedTime(t) }

// Stored returns t and s as reading them back from the table gives them.
func Stored(t Tokens, s Status) (Tokens, Status) { return normTokens(t), normStatus(s) }
