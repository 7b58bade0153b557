package tokenclient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/provider"
	"golang.org/x/oauth2"
)

const (
	revAccess  = "AT-revoke-0123456789abcdef"
	revRefresh = "RT-revoke-0123456789abcdef"
	revSecret  = "CS-revoke-0123456789abcdef"
)

// seen is one request a fake revocation endpoint received.
type seen struct {
	method, path, auth string
	form               url.Values
	user, pass         string
	basic              bool
}

// revokeServer answers every request with status and body, recording it.
func revokeServer(t *testing.T, status int, body string) (*httptest.Server, *[]seen) {
	t.Helper()
	var got []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(b))
		s := seen{method: r.Method, path: r.URL.Path, auth: r.Header.Get("Authorization"), form: form}
		s.user, s.pass, s.basic = r.BasicAuth()
		got = append(got, s)
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, &got
}

// revokerFor is the token client of preset name with its revocation URL moved to base+path.
func revokerFor(t *testing.T, name, base string) Revoker {
	t.Helper()
	p, ok := provider.Lookup(name)
	if !ok {
		t.Fatalf("no preset %s", name)
	}
	if p.RevokeURL != "" {
		u, _ := url.Parse(p.RevokeURL)
		p.RevokeURL = base + u.Path
	}
	return For(Options{Preset: p, ClientID: "client-1", ClientSecret: revSecret, Timeout: 5 * time.Second}).(Revoker)
}

var grant = Grant{AccessToken: revAccess, RefreshToken: revRefresh, AccountID: "4242"}

func TestRevokeShapes(t *testing.T) {
	tests := []struct {
		preset string
		check  func(t *testing.T, s seen)
	}{
		{"google", func(t *testing.T, s seen) {
			if s.method != "POST" || s.path != "/revoke" || s.form.Get("token") != revRefresh || s.form.Get("token_type_hint") != "refresh_token" {
				t.Errorf("got %s %s with token %t hint %q; want POST /revoke with the refresh token", s.method, s.path, s.form.Get("token") == revRefresh, s.form.Get("token_type_hint"))
			}
			if s.form.Has("client_secret") || s.basic {
				t.Errorf("Google's revoke got client credentials; want the token only")
			}
		}},
		{"strava", func(t *testing.T, s seen) {
			if s.method != "POST" || s.path != "/oauth/deauthorize" || s.form.Get("access_token") != revAccess || s.form.Has("refresh_token") {
				t.Errorf("got %s %s, access token sent %t; want POST /oauth/deauthorize with access_token only", s.method, s.path, s.form.Get("access_token") == revAccess)
			}
		}},
		{"whoop", func(t *testing.T, s seen) {
			if s.method != "DELETE" || s.path != "/developer/v2/user/access" || s.auth != "Bearer "+revAccess {
				t.Errorf("got %s %s, bearer %t; want DELETE /developer/v2/user/access with the Bearer access token", s.method, s.path, s.auth == "Bearer "+revAccess)
			}
		}},
		{"polar", func(t *testing.T, s seen) {
			if s.method != "DELETE" || s.path != "/v3/users/4242" || s.auth != "Bearer "+revAccess {
				t.Errorf("got %s %s, bearer %t; want DELETE /v3/users/4242 with the Bearer access token", s.method, s.path, s.auth == "Bearer "+revAccess)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.preset, func(t *testing.T) {
			srv, got := revokeServer(t, http.StatusOK, "")
			rv, err := revokerFor(t, tt.preset, srv.URL).Revoke(context.Background(), grant)
			if err != nil || !rv.Revoked {
				t.Fatalf("Revoke = %+v, %v; want revoked", rv, err)
			}
			if len(*got) != 1 {
				t.Fatalf("%d requests; want exactly 1", len(*got))
			}
			tt.check(t, (*got)[0])
		})
	}
}

// A custom provider with OAUTH_<NAME>_REVOKE_URL gets RFC 7009, authenticated as at its token
// endpoint.
func TestRevokeRFC7009(t *testing.T) {
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		srv, got := revokeServer(t, http.StatusOK, "")
		p := provider.Preset{Name: provider.Custom, AuthStyle: style, Revoke: provider.RevokeRFC7009, RevokeURL: srv.URL + "/oauth2/revoke"}
		c := New(Options{Preset: p, ClientID: "client 1", ClientSecret: revSecret})
		rv, err := c.Revoke(context.Background(), Grant{AccessToken: revAccess})
		if err != nil || !rv.Revoked || len(*got) != 1 {
			t.Fatalf("style %v: Revoke = %+v, %v, %d requests; want revoked by one", style, rv, err, len(*got))
		}
		s := (*got)[0]
		if s.form.Get("token") != revAccess || s.form.Get("token_type_hint") != "access_token" {
			t.Errorf("style %v: without a refresh token the access token goes: got hint %q", style, s.form.Get("token_type_hint"))
		}
		switch style {
		case oauth2.AuthStyleInHeader:
			if !s.basic || s.user != "client+1" || s.pass != revSecret || s.form.Has("client_secret") {
				t.Errorf("header style: Basic %t user %q; want Basic client+1 and no secret in the form", s.basic, s.user)
			}
		default:
			if s.basic || s.form.Get("client_id") != "client 1" || s.form.Get("client_secret") != revSecret {
				t.Errorf("params style: Basic %t, form client_id %q; want the form", s.basic, s.form.Get("client_id"))
			}
		}
	}
}

func TestRevokeFailures(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"strava expired token", http.StatusUnauthorized, `{"message":"Authorization Error","errors":[{"resource":"Athlete","field":"access_token","code":"invalid"}]}`, "HTTP 401"},
		{"echoes the token", http.StatusBadRequest, `{"error":"invalid_request","error_description":"bad token ` + revAccess + `"}`, "HTTP 400"},
		{"unavailable", http.StatusServiceUnavailable, "", "HTTP 503"},
	}
	for _, tt := range tests {
		srv, got := revokeServer(t, tt.status, tt.body)
		rv, err := revokerFor(t, "strava", srv.URL).Revoke(context.Background(), grant)
		if err == nil || rv.Revoked || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Revoke = %+v, %v; want an error with %q", tt.name, rv, err, tt.want)
			continue
		}
		if rv.Help != "https://www.strava.com/settings/apps" {
			t.Errorf("%s: Help %q; want where the athlete revokes", tt.name, rv.Help)
		}
		for _, s := range []string{revAccess, revRefresh, revSecret} {
			if strings.Contains(err.Error(), s) {
				t.Errorf("%s: error holds a secret: %q", tt.name, err)
			}
		}
		if len(*got) != 1 {
			t.Errorf("%s: %d requests; want exactly 1 (never retried)", tt.name, len(*got))
		}
	}
	// Nothing listens: an error, no secret.
	srv, _ := revokeServer(t, 200, "")
	srv.Close()
	if _, err := revokerFor(t, "google", srv.URL).Revoke(context.Background(), grant); err == nil || strings.Contains(err.Error(), revRefresh) {
		t.Errorf("closed server: got %v; want an error without the token", err)
	}
	// Missing what the call needs: nothing sent.
	srv2, got := revokeServer(t, 200, "")
	for _, tt := range []struct {
		preset string
		g      Grant
	}{{"polar", Grant{AccessToken: revAccess}}, {"whoop", Grant{RefreshToken: revRefresh}}, {"strava", Grant{}}, {"google", Grant{}}} {
		if _, err := revokerFor(t, tt.preset, srv2.URL).Revoke(context.Background(), tt.g); err == nil {
			t.Errorf("%s with %+v: got nil error; want one", tt.preset, tt.g)
		}
	}
	if len(*got) != 0 {
		t.Errorf("%d requests sent without what they need; want 0", len(*got))
	}
}

func TestRevokeNoAPI(t *testing.T) {
	tests := []struct {
		preset, account, help string
	}{
		{"spotify", "", "https://www.spotify.com/account/apps/"},
		{"withings", "1234567", "https://account.withings.com/partner/disconnect_partner/client-1?selecteduser=1234567"},
		{"withings", "", "https://account.withings.com/partner/disconnect_partner/client-1"},
		{"dexcom", "", "Dexcom"},
		{"oura", "", "Oura"},
	}
	for _, tt := range tests {
		rv, err := revokerFor(t, tt.preset, "http://127.0.0.1:1").Revoke(context.Background(), Grant{AccessToken: revAccess, RefreshToken: revRefresh, AccountID: tt.account})
		if !errors.Is(err, ErrNoRevokeAPI) || rv.Revoked || !strings.Contains(rv.Help, tt.help) {
			t.Errorf("%s: Revoke = %+v, %v; want ErrNoRevokeAPI and Help with %q", tt.preset, rv, err, tt.help)
		}
	}
}

// The catalog's revocation endpoints are the documented ones (shared/PROVIDERS.md).
func TestRevokeCatalog(t *testing.T) {
	want := map[string]struct {
		style provider.RevokeStyle
		url   string
	}{
		"google":   {provider.RevokeTokenOnly, "https://oauth2.googleapis.com/revoke"},
		"strava":   {provider.RevokeStravaDeauthorize, "https://www.strava.com/oauth/deauthorize"},
		"whoop":    {provider.RevokeBearerDelete, "https://api.prod.whoop.com/developer/v2/user/access"},
		"polar":    {provider.RevokePolarUser, "https://www.polaraccesslink.com/v3/users"},
		"withings": {provider.RevokeNone, ""},
		"spotify":  {provider.RevokeNone, ""},
		"dexcom":   {provider.RevokeNone, ""},
		"oura":     {provider.RevokeNone, ""},
		"fitbit":   {provider.RevokeNone, ""},
	}
	for name, w := range want {
		p, _ := provider.Lookup(name)
		if p.Revoke != w.style || p.RevokeURL != w.url || p.RevokeHelp == "" {
			t.Errorf("%s: revoke %q at %q, help %q; want %q at %q with help", name, p.Revoke, p.RevokeURL, p.RevokeHelp, w.style, w.url)
		}
	}
}
