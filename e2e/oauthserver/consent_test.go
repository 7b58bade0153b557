package oauthserver_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/freshtoken/freshtoken/e2e/oauthserver"
)

var hiddenField = regexp.MustCompile(`name="(challenge|csrf)" value="([^"]+)"`)

// browser is an HTTP client with a cookie jar that does not follow
// redirects.
func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := httpClient()
	c.Jar = jar
	return c
}

// consentPage loads the consent page and returns its hidden fields.
func consentPage(t *testing.T, b *http.Client, cfg *oauth2.Config) (challenge, csrf string) {
	t.Helper()
	resp, err := b.Get(cfg.AuthCodeURL("state-0123456789", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if err != nil {
		t.Fatalf("GET authorize: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("authorize = %d %q; want 200 text/html", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, scope := range cfg.Scopes {
		if !strings.Contains(string(body), `value="`+scope+`" checked`) {
			t.Errorf("page has no ticked checkbox for %q", scope)
		}
	}
	for _, m := range hiddenField.FindAllStringSubmatch(string(body), -1) {
		switch m[1] {
		case "challenge":
			challenge = m[2]
		case "csrf":
			csrf = m[2]
		}
	}
	if challenge == "" || csrf == "" {
		t.Fatal("consent page lacks the challenge or csrf field")
	}
	return challenge, csrf
}

func postConsent(t *testing.T, b *http.Client, srv *oauthserver.Server, form url.Values, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL()+oauthserver.ConsentPath, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := b.Do(req)
	if err != nil {
		t.Fatalf("POST consent: %v", err)
	}
	resp.Body.Close()
	return resp
}

func TestInteractiveConsent(t *testing.T) {
	srv := newServer(t, oauthserver.Options{Consent: oauthserver.Interactive})
	cfg := oauthConfig(srv, "basic-client", oauth2.AuthStyleInHeader, "activity", "sleep")

	tests := []struct {
		name       string
		form       func(challenge, csrf string) url.Values
		header     http.Header
		wantStatus int
		wantError  string // in the callback
		wantScope  string
	}{
		{
			name: "allow with one scope unticked",
			form: func(ch, csrf string) url.Values {
				return url.Values{"challenge": {ch}, "csrf": {csrf}, "decision": {"allow"}, "scope": {"sleep"}, "account_id": {"acct-typed"}}
			},
			wantStatus: http.StatusSeeOther, wantScope: "sleep",
		},
		{
			name: "deny",
			form: func(ch, csrf string) url.Values {
				return url.Values{"challenge": {ch}, "csrf": {csrf}, "decision": {"deny"}}
			},
			wantStatus: http.StatusSeeOther, wantError: "access_denied",
		},
		{
			name: "wrong csrf",
			form: func(ch, _ string) url.Values {
				return url.Values{"challenge": {ch}, "csrf": {"forged"}, "decision": {"allow"}}
			},
			wantStatus: http.StatusForbidden,
		},
		{
			name: "unknown challenge",
			form: func(_, csrf string) url.Values {
				return url.Values{"challenge": {"made-up"}, "csrf": {csrf}, "decision": {"allow"}}
			},
			wantStatus: http.StatusBadRequest,
		},
		{
			name: "cross-site post",
			form: func(ch, csrf string) url.Values {
				return url.Values{"challenge": {ch}, "csrf": {csrf}, "decision": {"allow"}}
			},
			header:     http.Header{"Sec-Fetch-Site": {"cross-site"}},
			wantStatus: http.StatusForbidden,
		},
		{
			name: "bad account id",
			form: func(ch, csrf string) url.Values {
				return url.Values{"challenge": {ch}, "csrf": {csrf}, "decision": {"allow"}, "account_id": {"<script>"}}
			},
			wantStatus: http.StatusBadRequest,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := browser(t)
			challenge, csrf := consentPage(t, b, cfg)
			resp := postConsent(t, b, srv, tt.form(challenge, csrf), tt.header)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d; want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.wantStatus != http.StatusSeeOther {
				return
			}
			loc, err := url.Parse(resp.Header.Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			q := loc.Query()
			if got := q.Get("error"); got != tt.wantError {
				t.Fatalf("callback error = %q; want %q", got, tt.wantError)
			}
			if tt.wantError != "" {
				return
			}
			if got := q.Get("scope"); got != tt.wantScope {
				t.Errorf("callback scope = %q; want %q", got, tt.wantScope)
			}
		})
	}
}

func TestInteractiveConsentIsSingleUse(t *testing.T) {
	srv := newServer(t, oauthserver.Options{Consent: oauthserver.Interactive})
	cfg := oauthConfig(srv, "basic-client", oauth2.AuthStyleInHeader, "activity")
	b := browser(t)
	challenge, csrf := consentPage(t, b, cfg)
	form := url.Values{"challenge": {challenge}, "csrf": {csrf}, "decision": {"allow"}, "scope": {"activity"}}
	if resp := postConsent(t, b, srv, form, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("first POST status = %d; want 303", resp.StatusCode)
	}
	if resp := postConsent(t, b, srv, form, nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("replayed POST status = %d; want 400", resp.StatusCode)
	}
}

// TestInteractiveConsentFullFlow exchanges the code the consent page
// produced, with the account ID typed on the page.
func TestInteractiveConsentFullFlow(t *testing.T) {
	srv := newServer(t, oauthserver.Options{Consent: oauthserver.Interactive, AccessTokenLifespan: 2 * time.Minute})
	cfg := oauthConfig(srv, "post-client", oauth2.AuthStyleInParams, "activity", "profile")
	b := browser(t)
	verifier := oauth2.GenerateVerifier()
	resp, err := b.Get(cfg.AuthCodeURL("state-0123456789", oauth2.S256ChallengeOption(verifier)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fields := map[string]string{}
	for _, m := range hiddenField.FindAllStringSubmatch(string(body), -1) {
		fields[m[1]] = m[2]
	}
	form := url.Values{"challenge": {fields["challenge"]}, "csrf": {fields["csrf"]}, "decision": {"allow"},
		"scope": {"activity", "profile"}, "account_id": {"acct-typed"}}
	resp = postConsent(t, b, srv, form, nil)
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cfg.Exchange(clientCtx(t), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if tok.Extra("user_id") != "acct-typed" || tok.Extra("scope") != "activity profile" {
		t.Errorf("user_id %v scope %v; want acct-typed, activity profile", tok.Extra("user_id"), tok.Extra("scope"))
	}
}

// TestInteractiveConsentBoundToBrowser posts a valid form from a browser
// that did not load the page (no CSRF cookie).
func TestInteractiveConsentBoundToBrowser(t *testing.T) {
	srv := newServer(t, oauthserver.Options{Consent: oauthserver.Interactive})
	cfg := oauthConfig(srv, "basic-client", oauth2.AuthStyleInHeader, "activity")
	challenge, csrf := consentPage(t, browser(t), cfg)
	form := url.Values{"challenge": {challenge}, "csrf": {csrf}, "decision": {"allow"}, "scope": {"activity"}}
	if resp := postConsent(t, browser(t), srv, form, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status = %d; want 403", resp.StatusCode)
	}
}
