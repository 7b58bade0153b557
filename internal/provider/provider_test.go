package provider

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// TestCatalog checks what every preset must have, whatever the provider.
func TestCatalog(t *testing.T) {
	want := []string{"dexcom", "fitbit", "google", "oura", "polar", "spotify", "strava", "whoop", "withings", Custom}
	if got := Names(); !slices.Equal(got, want) {
		t.Fatalf("Names() = %q; want %q", got, want)
	}
	for _, name := range want[:len(want)-1] {
		p, ok := Lookup(name)
		if !ok {
			t.Fatalf("Lookup(%q): not found", name)
		}
		if p.Name != name || p.Title == "" {
			t.Errorf("%s: Name %q Title %q; want the key and a title", name, p.Name, p.Title)
		}
		for what, u := range map[string]string{"AuthURL": p.AuthURL, "TokenURL": p.TokenURL, "RegisterURL": p.RegisterURL, "DocsURL": p.DocsURL} {
			if pu, err := url.Parse(u); err != nil || pu.Scheme != "https" || pu.Host == "" || pu.RawQuery != "" {
				t.Errorf("%s: %s %q; want an https URL without a query", name, what, u)
			}
		}
		if p.AuthStyle != oauth2.AuthStyleInHeader && p.AuthStyle != oauth2.AuthStyleInParams {
			t.Errorf("%s: AuthStyle %v; want header or params, never auto-detection", name, p.AuthStyle)
		}
		if p.ScopeSeparator != " " && p.ScopeSeparator != "," {
			t.Errorf("%s: ScopeSeparator %q; want a space or a comma", name, p.ScopeSeparator)
		}
		if p.Dialect == "" {
			t.Errorf("%s: no Dialect", name)
		}
		if p.NoRefreshToken && (p.RepeatWindow != 0 || p.RefreshTokenLifetime != 0 || len(p.RefreshParams) != 0) {
			t.Errorf("%s: refresh settings on a provider without refresh tokens", name)
		}
		if p.RefreshLifetimeFromConsent && p.RefreshTokenLifetime == 0 {
			t.Errorf("%s: RefreshLifetimeFromConsent without a lifetime", name)
		}
		for k := range p.AuthParams {
			if slices.Contains([]string{"client_id", "redirect_uri", "response_type", "scope", "state", "code_challenge", "code_challenge_method"}, k) {
				t.Errorf("%s: AuthParams sets %s, which the client sets itself", name, k)
			}
		}
		if len(p.Regions) > 0 {
			def, ok := p.Regions[p.DefaultRegion]
			if !ok || def.AuthURL != p.AuthURL || def.TokenURL != p.TokenURL {
				t.Errorf("%s: AuthURL, TokenURL are not those of DefaultRegion %q", name, p.DefaultRegion)
			}
		}
	}
}

func TestFitbitGoneNamesTheGoogleHealthScopes(t *testing.T) {
	p, _ := Lookup("fitbit")
	g, _ := Lookup("google")
	if p.Gone == "" {
		t.Fatal("fitbit has no Gone message")
	}
	// A refresh line is "refresh: revoked: HTTP 410: " and the message, cut to 300 bytes.
	if n := len("refresh: revoked: HTTP 410: " + p.Gone); n > 300 {
		t.Errorf("fitbit's Gone message makes a %d-byte line; want it whole in 300", n)
	}
	if len(GoogleHealthScopeNames) != len(GoogleHealthScopes) {
		t.Fatalf("%d short scope names for %d scopes", len(GoogleHealthScopeNames), len(GoogleHealthScopes))
	}
	for i, s := range GoogleHealthScopeNames {
		if !strings.Contains(p.Gone, s) {
			t.Errorf("fitbit's Gone message does not name %s", s)
		}
		if full := g.FullScope(s); full != GoogleHealthScopes[i] || !strings.HasPrefix(full, GoogleScopeBase+"googlehealth.") {
			t.Errorf("google FullScope(%q) = %q; want %q", s, full, GoogleHealthScopes[i])
		}
	}
	if got := strings.Fields(GoogleHealthScopesText); !slices.Equal(got, GoogleHealthScopeNames) {
		t.Errorf("GoogleHealthScopesText = %q; want GoogleHealthScopeNames %q", got, GoogleHealthScopeNames)
	}
	if !strings.Contains(p.Gone, "google preset") {
		t.Errorf("fitbit's Gone message does not say to use the google preset: %q", p.Gone)
	}
}

func TestFullScope(t *testing.T) {
	g, _ := Lookup("google")
	s, _ := Lookup("strava")
	tests := []struct {
		p        Preset
		in, want string
	}{
		{g, "googlehealth.sleep.readonly", GoogleScopeBase + "googlehealth.sleep.readonly"},
		{g, GoogleScopeBase + "drive.readonly", GoogleScopeBase + "drive.readonly"},
		{g, "openid", "openid"},
		{g, "email", "email"},
		{g, "https://mail.google.com/", "https://mail.google.com/"},
		{s, "activity:read_all", "activity:read_all"},
		{s, "a.b", "a.b"},
	}
	for _, tt := range tests {
		if got := tt.p.FullScope(tt.in); got != tt.want {
			t.Errorf("%s FullScope(%q) = %q; want %q", tt.p.Name, tt.in, got, tt.want)
		}
	}
}

func TestDexcomRegions(t *testing.T) {
	p, _ := Lookup("dexcom")
	if got, want := p.RegionNames(), []string{"eu", "jp", "sandbox", "us"}; !slices.Equal(got, want) {
		t.Errorf("RegionNames() = %q; want %q", got, want)
	}
	hosts := map[string]string{"us": "api.dexcom.com", "eu": "api.dexcom.eu", "jp": "api.dexcom.jp", "sandbox": "sandbox-api.dexcom.com"}
	for region, host := range hosts {
		rp, ok := p.WithRegion(region)
		if !ok {
			t.Fatalf("WithRegion(%q): not found", region)
		}
		if rp.AuthURL != "https://"+host+"/v2/oauth2/login" || rp.TokenURL != "https://"+host+"/v2/oauth2/token" {
			t.Errorf("%s: AuthURL %q TokenURL %q; want https://%s/v2/oauth2/{login,token}", region, rp.AuthURL, rp.TokenURL, host)
		}
	}
	if _, ok := p.WithRegion("au"); ok {
		t.Error(`WithRegion("au") found a region; want none`)
	}
	if g, _ := Lookup("google"); g.RegionNames() != nil {
		t.Errorf("google has regions %q; want none", g.RegionNames())
	}
}

// TestLookupReturnsCopies: a caller changing what Lookup returned must not change the catalog.
func TestLookupReturnsCopies(t *testing.T) {
	for _, name := range []string{"google", "withings", "dexcom", "whoop"} {
		p, _ := Lookup(name)
		for _, m := range []map[string]string{p.AuthParams, p.ExchangeParams, p.RefreshParams} {
			if m != nil {
				m["injected"] = "x"
			}
		}
		if p.Regions != nil {
			p.Regions["injected"] = Endpoints{}
		}
		if len(p.RequiredScopes) > 0 {
			p.RequiredScopes[0] = "injected"
		}
		again, _ := Lookup(name)
		for _, m := range []map[string]string{again.AuthParams, again.ExchangeParams, again.RefreshParams} {
			if _, ok := m["injected"]; ok {
				t.Errorf("%s: a change to a looked-up map reached the catalog", name)
			}
		}
		if _, ok := again.Regions["injected"]; ok {
			t.Errorf("%s: a change to the looked-up regions reached the catalog", name)
		}
		if slices.Contains(again.RequiredScopes, "injected") {
			t.Errorf("%s: a change to the looked-up required scopes reached the catalog", name)
		}
	}
}

func TestSplitScopes(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"a b", []string{"a", "b"}},
		{"read,activity:read_all", []string{"read", "activity:read_all"}},
		{" ,a,, b ,", []string{"a", "b"}},
		{"a\tb\na", []string{"a", "b"}},
	}
	for _, tt := range tests {
		if got := SplitScopes(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("SplitScopes(%q): got %q; want %q", tt.in, got, tt.want)
		}
	}
}
