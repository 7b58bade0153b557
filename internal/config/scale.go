package config

import (
	"strconv"
	"strings"
)

// accounts reads OAUTH_<NAME>_ACCOUNTS: "one" (the default) or "many".
func (l *loader) accounts(setting string) bool {
	switch v := strings.ToLower(l.get(setting)); v {
	case "", "one":
		return false
	case "many":
		return true
	default:
		l.problem(setting, "%q is not one or many", v)
		return false
	}
}

// concurrency reads REFRESH_CONCURRENCY: a whole number from 1 to MaxConcurrency.
func (l *loader) concurrency() int {
	v := l.get(SettingConcurrency)
	if v == "" {
		return DefaultConcurrency
	}
	n, err := strconv.Atoi(v)
	switch {
	case err != nil:
		l.problem(SettingConcurrency, "%q is not a whole number", v)
	case n < 1 || n > MaxConcurrency:
		l.problem(SettingConcurrency, "%q must be between 1 and %d", v, MaxConcurrency)
	default:
		return n
	}
	return DefaultConcurrency
}
