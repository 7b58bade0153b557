package tokenclient

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

const withingsOK = `{"status":0,"body":{"userid":36342817,"access_token":"` + newAT + `","refresh_token":"` + newRT + `","scope":"user.metrics","expires_in":10800,"token_type":"Bearer"}}`

func TestForPicksTheClient(t *testing.T) {
	hc := NewHTTPClient(time.Second)
	if _, ok := For(withClient(connection(lookup(t, "withings"), ""), hc)).(*Withings); !ok {
		t.Errorf("For(withings) is not a *Withings")
	}
	for _, name := range []string{"google", "strava", "polar", "dexcom"} {
		if _, ok := For(withClient(connection(lookup(t, name), ""), hc)).(*Client); !ok {
			t.Errorf("For(%s) is not a *Client", name)
		}
	}
}

// TestWithingsEnvelope covers answers beyond the golden ones: odd but valid encodings, and
// envelopes that must not be mistaken for a token.
func TestWithingsEnvelope(t *testing.T) {
	tests := []struct {
		name        string
		body        string
		wantClass   Class // "" means success
		wantAccount string
		wantRT      string
		wantRotated bool
		wantExpiry  time.Time
	}{
		{name: "status as a string", body: `{"status":"0","body":{"userid":"7","access_token":"` + newAT + `","refresh_token":"` + newRT + `","expires_in":10800}}`,
			wantAccount: "7", wantRT: newRT, wantRotated: true, wantExpiry: testNow.Add(3 * time.Hour)},
		{name: "a userid beyond float precision keeps every digit", body: `{"status":0,"body":{"userid":12345678901234567890,"access_token":"` + newAT + `"}}`,
			wantAccount: "12345678901234567890", wantRT: oldRT},
		{name: "no refresh_token keeps the one sent", body: `{"status":0,"body":{"access_token":"` + newAT + `","expires_in":10800}}`,
			wantRT: oldRT, wantExpiry: testNow.Add(3 * time.Hour)},
		{name: "expires_in out of range is no expiry", body: `{"status":0,"body":{"access_token":"` + newAT + `","expires_in":1e30}}`,
			wantRT: oldRT},
		{name: "fractional status", body: `{"status":0.5,"body":{}}`, wantClass: Ambiguous},
		{name: "no status", body: `{"body":{"access_token":"` + newAT + `"}}`, wantClass: Ambiguous},
		{name: "body is an array", body: `{"status":0,"body":[]}`, wantClass: Ambiguous},
		{name: "access_token of the wrong type", body: `{"status":0,"body":{"access_token":42}}`, wantClass: Ambiguous},
		{name: "empty answer", body: ``, wantClass: Ambiguous},
		{name: "error as an object", body: `{"status":2555,"body":{},"error":{"message":"boom"}}`, wantClass: Transient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := newTokenServer(t, jsonReply(http.StatusOK, tt.body))
			tok, err := NewWithings(withClient(connection(lookup(t, "withings"), ts.tokenURL()), NewHTTPClient(2*time.Second))).Refresh(context.Background(), oldRT)
			if tt.wantClass != "" {
				if got := ClassOf(err); err == nil || got != tt.wantClass {
					t.Fatalf("got error %v (class %q); want class %q", err, got, tt.wantClass)
				}
				checkRedacted(t, err)
				return
			}
			if err != nil {
				t.Fatalf("Refresh: got error %v; want none", err)
			}
			if tok.AccountID != tt.wantAccount {
				t.Errorf("got AccountID %q; want %q", tok.AccountID, tt.wantAccount)
			}
			if tok.RefreshToken != tt.wantRT || tok.Rotated != tt.wantRotated {
				t.Errorf("got RefreshToken %s Rotated %v; want %s %v", fp(tok.RefreshToken), tok.Rotated, fp(tt.wantRT), tt.wantRotated)
			}
			if !tok.Expiry.Equal(tt.wantExpiry) {
				t.Errorf("got Expiry %v; want %v", tok.Expiry, tt.wantExpiry)
			}
			if !tok.Rotated && !tok.RefreshExpiry.IsZero() {
				t.Errorf("got RefreshExpiry %v without rotation; want none", tok.RefreshExpiry)
			}
		})
	}
}

// TestWithingsTransport: what happened on the wire decides the class when no envelope came.
func TestWithingsTransport(t *testing.T) {
	big := `{"status":0,"body":{"access_token":"` + strings.Repeat("a", maxEnvelope) + `"}}`
	tests := []struct {
		name      string
		endpoint  func(t *testing.T) endpoint
		timeout   time.Duration
		wantClass Class
		wantGone  bool
		wantHits  int
	}{
		{name: "connection refused", endpoint: refused, wantClass: Transient},
		{name: "hang-up after the request", endpoint: hangUp, wantClass: Ambiguous, wantHits: 1},
		{name: "no answer before the timeout", endpoint: silent, timeout: 200 * time.Millisecond, wantClass: Ambiguous, wantHits: 1},
		{name: "answer over 1 MiB", endpoint: serve(jsonReply(http.StatusOK, big)), wantClass: Ambiguous, wantHits: 1},
		{name: "redirect to the retired endpoint", endpoint: serve(reply(http.StatusFound, "text/html", "<a>moved</a>", "Location", "https://developer.withings.com/")), wantClass: Transient, wantHits: 1},
		{name: "410 Gone", endpoint: serve(reply(http.StatusGone, "text/html", "gone")), wantClass: Revoked, wantGone: true, wantHits: 1},
		{name: "502 from a gateway", endpoint: serve(reply(http.StatusBadGateway, "text/html", html502)), wantClass: Ambiguous, wantHits: 1},
		{name: "503 from Withings itself", endpoint: serve(reply(http.StatusServiceUnavailable, "text/html", html502)), wantClass: Transient, wantHits: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ep := tt.endpoint(t)
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 2 * time.Second
			}
			_, err := NewWithings(withClient(connection(lookup(t, "withings"), ep.url), NewHTTPClient(timeout))).Refresh(context.Background(), oldRT)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v (%T); want an *Error", err, err)
			}
			if e.Class != tt.wantClass {
				t.Errorf("got Class %q; want %q (error: %v)", e.Class, tt.wantClass, e)
			}
			if (e.Gone != "") != tt.wantGone {
				t.Errorf("got Gone %q; want set: %v", e.Gone, tt.wantGone)
			}
			if got := ep.hits(); got != tt.wantHits {
				t.Errorf("server got %d requests; want %d", got, tt.wantHits)
			}
			checkRedacted(t, err)
		})
	}
}

// TestWithingsOverrides: settings may switch on PKCE or HTTP Basic, and the client follows.
func TestWithingsOverrides(t *testing.T) {
	p := lookup(t, "withings")
	p.PKCE = true
	p.AuthStyle = oauth2.AuthStyleInHeader
	ts := newTokenServer(t, jsonReply(http.StatusOK, withingsOK))
	c := NewWithings(withClient(connection(p, ts.tokenURL()), NewHTTPClient(2*time.Second)))
	if !c.UsesPKCE() {
		t.Errorf("got UsesPKCE false; want true")
	}
	if _, err := c.Exchange(context.Background(), authCode, pkceVerifier); err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	r := ts.requests()[0]
	if !r.hasBasic || r.basicUser != testClientID || r.basicPass != testClientSecret {
		t.Errorf("got Basic %v user %q; want the client credentials in HTTP Basic", r.hasBasic, r.basicUser)
	}
	if r.form.Has("client_secret") || r.form.Has("client_id") {
		t.Errorf("got client credentials in the form; want them only in the header")
	}
	if got := r.form.Get("code_verifier"); got != pkceVerifier {
		t.Errorf("got code_verifier %s; want %s", fp(got), fp(pkceVerifier))
	}
	if got := r.form.Get("action"); got != "requesttoken" {
		t.Errorf("got action %q; want requesttoken", got)
	}
}

// TestWithingsErrorsNeverEchoSecrets: Withings' error text is free; whatever it repeats of the
// request must not reach Error().
func TestWithingsErrorsNeverEchoSecrets(t *testing.T) {
	for _, op := range []string{"refresh", "exchange"} {
		body := `{"status":503,"body":{},"error":"Invalid Params: invalid refresh_token ` + oldRT + ` code ` + authCode + ` secret ` + testClientSecret + ` verifier ` + pkceVerifier + `"}`
		ts := newTokenServer(t, jsonReply(http.StatusOK, body))
		c := NewWithings(withClient(connection(lookup(t, "withings"), ts.tokenURL()), NewHTTPClient(2*time.Second)))
		var err error
		if op == "exchange" {
			_, err = c.Exchange(context.Background(), authCode, pkceVerifier)
		} else {
			_, err = c.Refresh(context.Background(), oldRT)
		}
		if ClassOf(err) != Revoked {
			t.Errorf("%s: got %v; want a revoked error", op, err)
		}
		checkRedacted(t, err)
	}
}
