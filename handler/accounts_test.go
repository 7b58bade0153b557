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

func runArgs(t *testing.T, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, func(k string) string { return env[k] }, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestInviteCommand(t *testing.T) {
	env := inviteEnv()
	out, errOut, err := runArgs(t, env, "invite", "study", "p-017", "--for", "2d")
	if err != nil {
		t.Fatalf("invite: %v (stderr %q)", err, errOut)
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

	out, _, err = runArgs(t, env, "invite", "study", "--many", "12", "--prefix", "s-")
	if err != nil {
		t.Fatalf("invite --many: %v", err)
	}
	rows, cerr := csv.NewReader(strings.NewReader(out)).ReadAll()
	if cerr != nil || len(rows) != 13 || rows[0][0] != "label" || rows[1][0] != "s-01" || rows[12][0] != "s-12" {
		t.Errorf("roster: %d rows, %v; want a header and s-01..s-12", len(rows), cerr)
	}

	for _, tt := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{env, []string{"invite", "solo", "a"}, "holds one account"},
		{env, []string{"invite", "nosuch", "a"}, "no connection named"},
		{env, []string{"invite", "study", "Bad"}, "invalid account label"},
		{env, []string{"invite", "study"}, "usage"},
		{env, []string{"invite", "study", "a", "--many", "3"}, "usage"},
		{env, []string{"invite", "study", "a", "--for", "7x"}, "--for"},
		{env, []string{"invite", "study", "a", "--for", "400d"}, "validity"},
		{withoutKey(env), []string{"invite", "study", "a"}, "INVITE_SIGNING_KEY is not set"},
	} {
		_, _, err := runArgs(t, tt.env, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: got %v; want an error with %q", tt.args, err, tt.want)
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
