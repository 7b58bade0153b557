// Package redact removes secrets from text before it is logged, stored as a status message or
// shown to a person. Provider error bodies are the main hazard: Fitbit's echoes the refresh
// token it rejected.
package redact

import (
	"regexp"
	"strings"
	"unicode/utf8"
)

// Mask replaces every secret.
const Mask = "[REDACTED]"

// tokenLike matches runs that look like credentials: long base64/hex/JWT-ish words. Real error
// messages are prose; a 24+ character run without spaces of this alphabet is almost always a
// token, a code or a key.
var tokenLike = regexp.MustCompile(`[A-Za-z0-9_\-+/=.~%]{24,}`)

// String returns s with every known secret and every token-like run replaced by Mask, cut to
// at most max bytes (0: no cut) on a rune boundary. Known secrets shorter than 4 bytes are
// ignored: masking them would shred ordinary words.
func String(s string, max int, secrets ...string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, Mask)
		}
	}
	s = tokenLike.ReplaceAllStringFunc(s, func(m string) string {
		if isURLish(m) {
			return m
		}
		return Mask
	})
	return Truncate(s, max)
}

// isURLish keeps plain URLs and dotted names (https://..., googleapis.com/auth/...) readable:
// a run with a "/" or "." between lower-case letters and no digits-heavy segment is not a token.
func isURLish(m string) bool {
	if !strings.ContainsAny(m, "/.") {
		return false
	}
	digits := 0
	for _, r := range m {
		if r >= '0' && r <= '9' {
			digits++
		}
	}
	// Tokens are dense with digits and mixed case; paths and hostnames mostly are not.
	return digits*5 < len(m) && strings.ToLower(m) == m
}

// Truncate cuts s to at most max bytes on a rune boundary, marking the cut. max <= 0: no cut.
func Truncate(s string, max int) string {
	if max <= 0 || len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
