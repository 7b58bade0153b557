package main

import (
	"bytes"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReadRefreshToken(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  string
	}{
		{"bare", "1//0gAbC-_.~+/=", "1//0gAbC-_.~+/="},
		{"trailing newline", "tok123\n", "tok123"},
		{"CRLF and spaces", "  tok123 \r\n\r\n", "tok123"},
		{"byte order mark", "\xef\xbb\xbftok123\n", "tok123"},
		{"largest", strings.Repeat("a", maxRefreshTokenSize), strings.Repeat("a", maxRefreshTokenSize)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var prompt bytes.Buffer
			got, err := readRefreshToken(strings.NewReader(tt.input), &prompt, "strava")
			if err != nil {
				t.Fatalf("readRefreshToken: %v", err)
			}
			if got != tt.want {
				t.Errorf("got %q; want %q", got, tt.want)
			}
			if prompt.Len() > 0 {
				t.Errorf("prompted %q for input that is not a terminal; want no prompt", prompt.String())
			}
		})
	}
}

func TestReadRefreshTokenRefuses(t *testing.T) {
	const secret = "s3cr3tT0ken"
	tests := []struct {
		name  string
		input string
		want  string
	}{
		{"empty", "", "no refresh token on standard input"},
		{"blank", " \n\t\n", "no refresh token on standard input"},
		{"two lines", secret + "\n" + secret + "\n", "more than one line"},
		{"name and token", "refresh_token " + secret, "white space"},
		{"tab", secret + "\t" + secret, "white space"},
		{"quoted", `"` + secret + `"`, "in quotes"},
		{"single-quoted", "'" + secret + "'", "in quotes"},
		{"UTF-16", "\xff\xfes\x003\x00c\x00", "UTF-16"},
		{"non-ASCII", secret + "é", "not printable ASCII (at position 12)"},
		{"control character", secret + "\x1b[A", "not printable ASCII"},
		{"too large", secret + strings.Repeat("a", maxRefreshTokenSize), "more than 16384 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readRefreshToken(strings.NewReader(tt.input), &bytes.Buffer{}, "strava")
			if err == nil {
				t.Fatalf("readRefreshToken = %q; want an error containing %q", got, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q; want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "T0ken") {
				t.Errorf("error %q quotes the input", err)
			}
		})
	}
}

func TestReadRefreshTokenReadError(t *testing.T) {
	_, err := readRefreshToken(iotest.ErrReader(iotest.ErrTimeout), &bytes.Buffer{}, "strava")
	if err == nil || !strings.Contains(err.Error(), "read the refresh token from standard input") {
		t.Errorf("error %v; want one naming the read of standard input", err)
	}
}
