package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/invite"
)

// inviteEnv is a configuration with one many-account connection and one single-account one.
func inviteEnv() map[string]string {
	env := map[string]string{
		"AzureWebJobsStorage":  "UseDevelopmentStorage=true",
		"OAUTH_CONNECTIONS":    "study,solo",
		"INVITE_SIGNING_KEY":   "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		"OAUTH_STUDY_ACCOUNTS": "many",
	}
	for _, up := range []string{"STUDY", "SOLO"} {
		env["OAUTH_"+up+"_PROVIDER"] = "custom"
		env["OAUTH_"+up+"_CLIENT_ID"] = "client"
		env["OAUTH_"+up+"_CLIENT_SECRET"] = "cs-accounts-secret-0123456789"
		env["OAUTH_"+up+"_SCOPES"] = "read"
		env["OAUTH_"+up+"_AUTH_URL"] = "https://auth.example.com/authorize"
		env["OAUTH_"+up+"_TOKEN_URL"] = "https://auth.example.com/token"
		env["OAUTH_"+up+"_AUTH_STYLE"] = "params"
	}
	env["OAUTH_STUDY_REDIRECT_URL"] = "https://app.example.net/api/callback/study"
	return env
}

// runArgs runs the command line args and returns its output and exit status.
func runArgs(t *testing.T, env map[string]string, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, func(k string) string { return env[k] }, strings.NewReader(""), &out, &errOut)
	code := exitStatus(err, &errOut)
	return out.String(), errOut.String(), code
}

func TestInviteCommand(t *testing.T) {
	env := inviteEnv()
	out, errOut, code := runArgs(t, env, "invite", "study", "p-017", "--for", "2d")
	if code != 0 {
		t.Fatalf("invite: exit %d (stderr %q)", code, errOut)
	}
	u, perr := url.Parse(strings.TrimSpace(out))
	if perr != nil || u.Scheme+"://"+u.Host+u.Path != "https://app.example.net/api/callback/study" || u.Query().Get("invite") == "" {
		t.Fatalf("invite printed %q; want the callback URL with ?invite=", out)
	}
	key, _ := invite.ParseKey(env["INVITE_SIGNING_KEY"])
	s, _ := invite.New(invite.Options{Key: key})
	inv, verr := s.Verify("study", u.Query().Get("invite"))
	if verr != nil || inv.Label != "p-017" || inv.Expires.Before(time.Now().Add(47*time.Hour)) || inv.Expires.After(time.Now().Add(49*time.Hour)) {
		t.Errorf("the invitation verifies as %+v, %v; want p-017 valid for 2 days", inv, verr)
	}
	if !strings.Contains(errOut, "valid until") {
		t.Errorf("stderr %q; want the expiry", errOut)
	}

	out, errOut, code = runArgs(t, env, "invite", "study", "--many", "12", "--prefix", "s-")
	if code != 0 {
		t.Fatalf("invite --many: exit %d (stderr %q)", code, errOut)
	}
	rows, cerr := csv.NewReader(strings.NewReader(out)).ReadAll()
	if cerr != nil || len(rows) != 13 || rows[0][0] != "label" || rows[1][0] != "s-01" || rows[12][0] != "s-12" {
		t.Errorf("roster: %d rows, %v; want a header and s-01..s-12", len(rows), cerr)
	}

	for _, tt := range []struct {
		env  map[string]string
		args []string
		want string
		code int
	}{
		{env, []string{"invite", "solo", "a"}, "holds one account", 1},
		{env, []string{"invite", "nosuch", "a"}, "no connection named", 1},
		{env, []string{"invite", "study", "Bad"}, "invalid account label", 1},
		{env, []string{"invite", "study"}, "invite needs an account label", 2},
		{env, []string{"invite", "study", "a", "--many", "3"}, "not both", 2},
		{env, []string{"invite", "study", "--prefix", "p"}, "--prefix goes with --many", 2},
		{env, []string{"invite", "study", "--many", "0"}, "--many needs a number", 2},
		{env, []string{"remove", "study", "a", "--for", "7d"}, "--for is a flag of invite and reader-url", 2},
		{env, []string{"invite", "study", "a", "--keep-on-failure"}, "flag of remove", 2},
		{env, []string{"invite", "study", "a", "--for", "7x"}, "--for", 2},
		{env, []string{"invite", "study", "a", "--for", "400d"}, "validity", 1},
		{withoutKey(env), []string{"invite", "study", "a"}, "INVITE_SIGNING_KEY is not set", 1},
	} {
		_, errOut, code := runArgs(t, tt.env, tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.want) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", tt.args, code, errOut, tt.code, tt.want)
		}
	}
}

func withoutKey(env map[string]string) map[string]string {
	c := map[string]string{}
	for k, v := range env {
		if k != "INVITE_SIGNING_KEY" {
			c[k] = v
		}
	}
	return c
}

func TestParseValidity(t *testing.T) {
	for in, want := range map[string]time.Duration{"7d": 7 * 24 * time.Hour, "36h": 36 * time.Hour, "90m": 90 * time.Minute} {
		if got, err := parseValidity(in); err != nil || got != want {
			t.Errorf("parseValidity(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0d", "-1d", "d", "7 days", "-5h"} {
		if _, err := parseValidity(in); err == nil {
			t.Errorf("parseValidity(%q): got nil error; want one", in)
		}
	}
}
