package redact

import (
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	const rt = "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2"
	tests := []struct {
		name    string
		in      string
		secrets []string
		want    string
	}{
		{"fitbit echo", `{"errors":[{"errorType":"invalid_grant","message":"Refresh token invalid: ` + rt + `. Visit https://dev.fitbit.com/docs/oauth2 for more information"}]}`, []string{rt},
			`{"errors":[{"errorType":"invalid_grant","message":"Refresh token invalid: [REDACTED]. Visit https://dev.fitbit.com/docs/oauth2 for more information"}]}`},
		{"unknown token-like run", "bad token ya29.A0ARrdaM-Zx9QwErTy12345abcdefGHIJ", nil, "bad token [REDACTED]"},
		{"known short secret", "secret s3cr3t here", []string{"s3cr3t"}, "secret [REDACTED] here"},
		{"too-short secret ignored", "a b c", []string{"b"}, "a b c"},
		{"plain prose kept", `{"error":"invalid_grant","error_description":"Token has been expired or revoked."}`, nil,
			`{"error":"invalid_grant","error_description":"Token has been expired or revoked."}`},
		{"scope URL kept", "missing https://www.googleapis.com/auth/googlehealth.sleep.readonly", nil,
			"missing https://www.googleapis.com/auth/googlehealth.sleep.readonly"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := String(tt.in, 0, tt.secrets...)
			if got != tt.want {
				t.Errorf("String() = %q; want %q", got, tt.want)
			}
			for _, s := range tt.secrets {
				if len(s) >= 4 && strings.Contains(got, s) {
					t.Errorf("String() still holds a secret of length %d", len(s))
				}
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"hello", 0, "hello"},
		{"hello", 5, "hello"},
		{"hello", 3, "hel…"},
		{"héllo", 2, "h…"}, // é is two bytes: never cut inside it
	}
	for _, tt := range tests {
		if got := Truncate(tt.in, tt.max); got != tt.want {
			t.Errorf("Truncate(%q, %d) = %q; want %q", tt.in, tt.max, got, tt.want)
		}
	}
}
