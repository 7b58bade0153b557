package config

import (
	"bytes"
	"strings"
	"testing"

	"github.com/freshtoken/freshtoken/internal/provider"
)

func TestLoadInviteKey(t *testing.T) {
	// 32 bytes of base64, for this test only.
	const k = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	cfg, _ := mustLoad(t, stravaEnv())
	if cfg.InviteKey != nil {
		t.Errorf("unset: InviteKey = %d bytes; want nil", len(cfg.InviteKey))
	}
	cfg, _ = mustLoad(t, stravaEnv().with(env{SettingInviteKey: k}))
	if !bytes.Equal(cfg.InviteKey, []byte("0123456789abcdef0123456789abcdef")) {
		t.Errorf("InviteKey = %d bytes; want the decoded key", len(cfg.InviteKey))
	}
	for _, bad := range []string{"c2hvcnQta2V5LWJ5dGVz", "not*base64*at*all", k + k} {
		_, _, err := load(t, stravaEnv().with(env{SettingInviteKey: bad}))
		if err == nil {
			t.Errorf("%d characters: Load succeeded; want a problem", len(bad))
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, SettingInviteKey+": ") || !strings.Contains(msg, "not shown") {
			t.Errorf("got %q; want %s named and the value not shown", msg, SettingInviteKey)
		}
		if strings.Contains(msg, bad) || strings.Contains(msg, bad[:12]) {
			t.Errorf("the message shows the key: %q", msg)
		}
	}
	if !isSecret(SettingInviteKey) {
		t.Errorf("%s is not treated as a secret", SettingInviteKey)
	}
}

func TestLoadRevokeURL(t *testing.T) {
	const u = "https://auth.example.com/oauth2/revoke"
	tests := []struct {
		name    string
		changes env
		style   provider.RevokeStyle
		url     string
	}{
		{"strava keeps its own", env{}, provider.RevokeStravaDeauthorize, "https://www.strava.com/oauth/deauthorize"},
		{"strava overridden", env{"OAUTH_STRAVA_REVOKE_URL": u}, provider.RevokeStravaDeauthorize, u},
		{"spotify gets RFC 7009", env{"OAUTH_STRAVA_PROVIDER": "spotify", "OAUTH_STRAVA_REDIRECT_URL": "http://127.0.0.1:7071/api/callback/strava", "OAUTH_STRAVA_REVOKE_URL": u}, provider.RevokeRFC7009, u},
		{"custom without", env{"OAUTH_STRAVA_PROVIDER": "custom", "OAUTH_STRAVA_AUTH_URL": "https://auth.example.com/a", "OAUTH_STRAVA_TOKEN_URL": "https://auth.example.com/t", "OAUTH_STRAVA_AUTH_STYLE": "header"}, provider.RevokeNone, ""},
		{"custom with", env{"OAUTH_STRAVA_PROVIDER": "custom", "OAUTH_STRAVA_AUTH_URL": "https://auth.example.com/a", "OAUTH_STRAVA_TOKEN_URL": "https://auth.example.com/t", "OAUTH_STRAVA_AUTH_STYLE": "header", "OAUTH_STRAVA_REVOKE_URL": u}, provider.RevokeRFC7009, u},
	}
	for _, tt := range tests {
		cfg, _ := mustLoad(t, stravaEnv().with(tt.changes))
		p := cfg.Connections[0].Preset
		if p.Revoke != tt.style || p.RevokeURL != tt.url {
			t.Errorf("%s: revoke %q at %q; want %q at %q", tt.name, p.Revoke, p.RevokeURL, tt.style, tt.url)
		}
	}
	_, _, err := load(t, stravaEnv().with(env{"OAUTH_STRAVA_REVOKE_URL": "not a url"}))
	if err == nil || !strings.Contains(err.Error(), "OAUTH_STRAVA_REVOKE_URL") {
		t.Errorf("bad URL: got %v; want a problem naming OAUTH_STRAVA_REVOKE_URL", err)
	}
}
