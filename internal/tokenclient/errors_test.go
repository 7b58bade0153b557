package tokenclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/provider"
	"golang.org/x/oauth2"
)

// endpoint is a token URL for one test and a count of the requests that reached it.
type endpoint struct {
	url  string
	hits func() int
}

// serve starts a fake token server answering with h.
func serve(h http.HandlerFunc) func(t *testing.T) endpoint {
	return func(t *testing.T) endpoint {
		ts := newTokenServer(t, h)
		return endpoint{ts.tokenURL(), func() int { return len(ts.requests()) }}
	}
}

// refused is a token URL where nothing listens.
func refused(t *testing.T) endpoint {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	return endpoint{"http://" + addr + "/oauth2/token", func() int { return 0 }}
}

// hangUp reads the whole request, then closes the connection without an answer.
func hangUp(t *testing.T) endpoint {
	return serve(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		conn.Close()
	})(t)
}

// silent reads the whole request and never answers; the client's timeout ends it.
func silent(t *testing.T) endpoint {
	release := make(chan struct{})
	ep := serve(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})(t)
	t.Cleanup(func() { close(release) }) // runs before the server's Close
	return ep
}

const (
	htmlType = "text/html; charset=utf-8"
	html400  = "<!DOCTYPE html>\n<html><head><title>400 Bad Request</title></head><body><h1>Bad Request</h1></body></html>\n"
	html502  = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body><center><h1>502 Bad Gateway</h1></center></body>\r\n</html>\r\n"
	// fitbitInvalidGrant echoes the refresh token it refused, as Fitbit does.
	fitbitInvalidGrant = `{"errors":[{"errorType":"invalid_grant","message":"Refresh token invalid: ` + oldRT + `. Visit https://dev.fitbit.com/docs/oauth2 for more information on the Fitbit Web API authorization process."}],"success":false}`
	stravaInvalidGrant = `{"message":"Bad Request","errors":[{"resource":"RefreshToken","field":"refresh_token","code":"invalid"}]}`
)

func TestRefreshClassification(t *testing.T) {
	retryDate := testNow.Add(90 * time.Second).Format(http.TimeFormat)
	tests := []struct {
		name      string
		preset    string // default google
		endpoint  func(t *testing.T) endpoint
		timeout   time.Duration // default 2s
		cancelled bool          // the context is cancelled before the call

		wantClass      Class
		wantStatus     int
		wantCode       string
		wantRetryAfter time.Duration
		wantGone       string
		wantHits       int // requests that reached the server
	}{
		{
			name:       "rfc6749 invalid_grant",
			endpoint:   serve(jsonReply(400, `{"error":"invalid_grant","error_description":"Token has been expired or revoked."}`)),
			wantClass:  Revoked,
			wantStatus: 400,
			wantCode:   "invalid_grant",
			wantHits:   1,
		},
		{
			name:       "rfc6749 invalid_client",
			endpoint:   serve(jsonReply(401, `{"error":"invalid_client","error_description":"The OAuth client was not found."}`)),
			wantClass:  Revoked,
			wantStatus: 401,
			wantCode:   "invalid_client",
			wantHits:   1,
		},
		{
			name:       "fitbit invalid_grant echoing the token",
			preset:     "fitbit",
			endpoint:   serve(jsonReply(400, fitbitInvalidGrant)),
			wantClass:  Revoked,
			wantStatus: 400,
			wantCode:   "invalid_grant",
			wantHits:   1,
		},
		{
			name:       "fitbit invalid_client",
			preset:     "fitbit",
			endpoint:   serve(jsonReply(401, `{"errors":[{"errorType":"invalid_client","message":"Invalid authorization header format. Visit https://dev.fitbit.com/docs/oauth2 for more information on the Fitbit Web API authorization process."}],"success":false}`)),
			wantClass:  Revoked,
			wantStatus: 401,
			wantCode:   "invalid_client",
			wantHits:   1,
		},
		{
			name:       "strava invalid refresh_token",
			preset:     "strava",
			endpoint:   serve(jsonReply(400, stravaInvalidGrant)),
			wantClass:  Revoked,
			wantStatus: 400,
			wantCode:   "invalid_grant",
			wantHits:   1,
		},
		{
			name:       "strava invalid client_id",
			preset:     "strava",
			endpoint:   serve(jsonReply(400, `{"message":"Bad Request","errors":[{"resource":"Application","field":"client_id","code":"invalid"}]}`)),
			wantClass:  Revoked,
			wantStatus: 400,
			wantCode:   "invalid_client",
			wantHits:   1,
		},
		{
			name:       "fitbit 410 Gone",
			preset:     "fitbit",
			endpoint:   serve(reply(410, htmlType, "<html><body>Gone</body></html>")),
			wantClass:  Revoked,
			wantStatus: 410,
			wantGone:   provider.FitbitGone,
			wantHits:   1,
		},
		{
			name:           "429 Retry-After seconds",
			endpoint:       serve(jsonReply(429, `{"error":"rate_limit_exceeded"}`, "Retry-After", "120")),
			wantClass:      Transient,
			wantStatus:     429,
			wantCode:       "rate_limit_exceeded",
			wantRetryAfter: 120 * time.Second,
			wantHits:       1,
		},
		{
			name:           "429 Retry-After HTTP-date",
			preset:         "fitbit",
			endpoint:       serve(jsonReply(429, `{"errors":[{"errorType":"system","message":"Too Many Requests"}],"success":false}`, "Retry-After", retryDate)),
			wantClass:      Transient,
			wantStatus:     429,
			wantCode:       "system",
			wantRetryAfter: 90 * time.Second,
			wantHits:       1,
		},
		{
			name:       "429 without Retry-After",
			endpoint:   serve(reply(429, "text/plain", "Too Many Requests")),
			wantClass:  Transient,
			wantStatus: 429,
			wantHits:   1,
		},
		{
			name:           "strava 429: wait for the next quarter hour",
			preset:         "strava",
			endpoint:       serve(jsonReply(429, `{"message":"Rate Limit Exceeded","errors":[{"resource":"Application","field":"rate limit","code":"exceeded"}]}`, "X-RateLimit-Limit", "200,2000", "X-RateLimit-Usage", "200,1400")),
			wantClass:      Transient,
			wantStatus:     429,
			wantRetryAfter: 15 * time.Minute,
			wantHits:       1,
		},
		{
			name:       "500",
			endpoint:   serve(jsonReply(500, `{"error":"internal_failure","error_description":"Backend Error"}`)),
			wantClass:  Transient,
			wantStatus: 500,
			wantCode:   "internal_failure",
			wantHits:   1,
		},
		{
			// A gateway answers for an origin that may have rotated already.
			name:       "502 from a proxy",
			endpoint:   serve(reply(502, htmlType, html502)),
			wantClass:  Ambiguous,
			wantStatus: 502,
			wantHits:   1,
		},
		{
			name:       "504 from a gateway",
			endpoint:   serve(reply(504, htmlType, html502)),
			wantClass:  Ambiguous,
			wantStatus: 504,
			wantHits:   1,
		},
		{
			name:           "503 with Retry-After",
			endpoint:       serve(reply(503, "text/plain", "Service Unavailable", "Retry-After", "30")),
			wantClass:      Transient,
			wantStatus:     503,
			wantRetryAfter: 30 * time.Second,
			wantHits:       1,
		},
		{
			name:       "400 with an HTML body",
			endpoint:   serve(reply(400, htmlType, html400)),
			wantClass:  Transient,
			wantStatus: 400,
			wantHits:   1,
		},
		{
			name:      "connection refused",
			endpoint:  refused,
			wantClass: Transient,
		},
		{
			name:      "connection closed after the request was read",
			endpoint:  hangUp,
			wantClass: Ambiguous,
			wantHits:  1,
		},
		{
			name:      "no answer before the client's timeout",
			endpoint:  silent,
			timeout:   200 * time.Millisecond,
			wantClass: Ambiguous,
			wantHits:  1,
		},
		{
			name:       "200 with an HTML body",
			endpoint:   serve(reply(200, htmlType, "<html><body>Welcome</body></html>")),
			wantClass:  Ambiguous,
			wantStatus: 200,
			wantHits:   1,
		},
		{
			name:       "200 JSON without access_token",
			endpoint:   serve(jsonReply(200, `{"token_type":"Bearer","expires_in":3600,"refresh_token":"`+newRT+`"}`)),
			wantClass:  Ambiguous,
			wantStatus: 200,
			wantHits:   1,
		},
		{
			name:      "context cancelled before sending",
			endpoint:  serve(jsonReply(200, `{"access_token":"`+newAT+`"}`)),
			cancelled: true,
			wantClass: Transient,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			presetName := tt.preset
			if presetName == "" {
				presetName = "google"
			}
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 2 * time.Second
			}
			ep := tt.endpoint(t)
			c := New(withClient(connection(lookup(t, presetName), ep.url), NewHTTPClient(timeout)))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancelled {
				cancel()
			}

			tok, err := c.Refresh(ctx, oldRT)
			if err == nil {
				t.Fatalf("Refresh: got a token (access token %s); want an error", fp(tok.AccessToken))
			}
			checkRedacted(t, err)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got error %v (%T); want *Error", err, err)
			}
			if e.Op != "refresh" {
				t.Errorf("got Op %q; want refresh", e.Op)
			}
			if e.Class != tt.wantClass {
				t.Errorf("got Class %q; want %q (err: %v)", e.Class, tt.wantClass, err)
			}
			if got := ClassOf(err); got != tt.wantClass {
				t.Errorf("got ClassOf %q; want %q", got, tt.wantClass)
			}
			if e.StatusCode != tt.wantStatus {
				t.Errorf("got StatusCode %d; want %d", e.StatusCode, tt.wantStatus)
			}
			if e.Code != tt.wantCode {
				t.Errorf("got Code %q; want %q", e.Code, tt.wantCode)
			}
			if e.RetryAfter != tt.wantRetryAfter {
				t.Errorf("got RetryAfter %v; want %v", e.RetryAfter, tt.wantRetryAfter)
			}
			if e.Gone != tt.wantGone {
				t.Errorf("got Gone %q; want %q", e.Gone, tt.wantGone)
			}
			if tt.wantGone != "" && !strings.Contains(err.Error(), tt.wantGone) {
				t.Errorf("got Error() %q; want it to say %q", err.Error(), tt.wantGone)
			}
			if n := ep.hits(); n != tt.wantHits {
				t.Errorf("server got %d requests; want %d", n, tt.wantHits)
			}
			if tt.cancelled && !errors.Is(err, context.Canceled) {
				t.Errorf("got errors.Is(err, context.Canceled) false; want true")
			}
		})
	}
}

// Test410WithoutPresetText: any provider's 410 is a shut-down endpoint, with a generic message.
func Test410WithoutPresetText(t *testing.T) {
	ts := newTokenServer(t, reply(410, "text/plain", "Gone"))
	_, err := newTestClient(connection(customPreset(), ts.tokenURL())).Refresh(context.Background(), oldRT)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got error %v; want *Error", err)
	}
	if e.Class != Revoked {
		t.Errorf("got Class %q; want %q", e.Class, Revoked)
	}
	if e.Gone == "" || !strings.Contains(e.Gone, "410") {
		t.Errorf("got Gone %q; want a message naming 410", e.Gone)
	}
}

// TestErrorRedaction feeds provider answers that echo credentials through both operations.
func TestErrorRedaction(t *testing.T) {
	tests := []struct {
		name    string
		preset  string
		op      string
		handler http.HandlerFunc
	}{
		{"fitbit echoes the refresh token", "fitbit", "refresh", jsonReply(400, fitbitInvalidGrant)},
		{"rfc description echoes token and secret", "google", "refresh",
			jsonReply(400, `{"error":"invalid_grant","error_description":"refresh token `+oldRT+` for client secret `+testClientSecret+` revoked"}`)},
		{"rfc error code holds the token", "google", "refresh",
			jsonReply(400, `{"error":"bad `+oldRT+`"}`)},
		{"withings-style 200 error echoes the token", "google", "refresh",
			jsonReply(200, `{"status":503,"body":{},"error":"Invalid Params: invalid refresh_token `+oldRT+`"}`)},
		{"form-encoded error", "google", "refresh",
			reply(400, "application/x-www-form-urlencoded", "error=invalid_grant&error_description="+url.QueryEscape("token "+oldRT+" revoked"))},
		{"HTML first line echoes the secret", "google", "refresh",
			reply(400, htmlType, "client_secret="+testClientSecret+" rejected\n<html></html>")},
		{"500 plain text echoes the token", "google", "refresh",
			reply(500, "text/plain", "upstream said: "+oldRT)},
		{"401 with everything", "fitbit", "refresh",
			jsonReply(401, `{"errors":[{"errorType":"`+testClientSecret+`","message":"`+oldRT+`"}],"message":"`+newRT+`"}`)},
		{"exchange description echoes the code", "google", "exchange",
			jsonReply(400, `{"error":"invalid_grant","error_description":"Malformed auth code: `+authCode+`"}`)},
		{"exchange echoes the verifier", "google", "exchange",
			jsonReply(400, `{"error":"invalid_grant","error_description":"code_verifier `+pkceVerifier+` does not match"}`)},
		{"exchange 200 without access_token", "google", "exchange",
			jsonReply(200, `{"refresh_token":"`+newRT+`","expires_in":"`+newAT+`"}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := newTokenServer(t, tt.handler)
			_, err := run(context.Background(), newTestClient(connection(lookup(t, tt.preset), ts.tokenURL())), tt.op)
			if err == nil {
				t.Fatalf("%s: got no error; want one", tt.op)
			}
			if err.Error() == "" {
				t.Errorf("got an empty Error()")
			}
			checkRedacted(t, err)
		})
	}
}

func TestErrorText(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{Op: "refresh", Class: Transient}, "refresh: transient"},
		{&Error{Op: "refresh", Class: Revoked, StatusCode: 400, Code: "invalid_grant", Detail: "Token has been expired or revoked."},
			"refresh: revoked: HTTP 400: invalid_grant: Token has been expired or revoked."},
		{&Error{Op: "exchange", Class: Revoked, StatusCode: 410, Gone: "shut down"}, "exchange: revoked: HTTP 410: shut down"},
		{&Error{Op: "refresh", Class: Revoked, StatusCode: 410, Gone: "shut down", Detail: "<html>Gone</html>"}, "refresh: revoked: HTTP 410: shut down: <html>Gone</html>"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got Error() %q; want %q", got, tt.want)
		}
	}
}

func TestClassOf(t *testing.T) {
	inner := &Error{Op: "refresh", Class: Ambiguous}
	tests := []struct {
		name string
		err  error
		want Class
	}{
		{"*Error", inner, Ambiguous},
		{"wrapped *Error", fmt.Errorf("refresh connection x: %w", inner), Ambiguous},
		{"foreign error", errors.New("store: unavailable"), Transient},
	}
	for _, tt := range tests {
		if got := ClassOf(tt.err); got != tt.want {
			t.Errorf("%s: got ClassOf %q; want %q", tt.name, got, tt.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"120", 120 * time.Second},
		{" 7 ", 7 * time.Second},
		{"0", 0},
		{"-5", 0},
		{"soon", 0},
		{testNow.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{testNow.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"Monday, 05-Oct-26 12:01:00 GMT", time.Minute}, // RFC 850
		{"99999999999999999", time.Duration(maxSeconds) * time.Second},
	}
	for _, tt := range tests {
		if got := retryAfter(tt.in, testNow); got != tt.want {
			t.Errorf("retryAfter(%q): got %v; want %v", tt.in, got, tt.want)
		}
	}
}

// TestErrorBodyDialects reads error bodies directly, as x/oauth2 hands them over.
func TestErrorBodyDialects(t *testing.T) {
	tests := []struct {
		name       string
		dialect    provider.Dialect
		body       string
		errorCode  string // what x/oauth2 parsed into RetrieveError.ErrorCode
		wantCode   string
		wantDetail string
	}{
		{"rfc6749", provider.DialectRFC6749, `{"error":"invalid_grant","error_description":"Bad Request"}`, "invalid_grant", "invalid_grant", "Bad Request"},
		{"fitbit", provider.DialectFitbit, `{"errors":[{"errorType":"invalid_grant","message":"Refresh token invalid"}],"success":false}`, "", "invalid_grant", "Refresh token invalid"},
		{"fitbit shape under another dialect", provider.DialectRFC6749, `{"errors":[{"errorType":"invalid_grant","message":"Refresh token invalid"}],"success":false}`, "", "", ""},
		{"strava", provider.DialectStrava, stravaInvalidGrant, "", "invalid_grant", "RefreshToken refresh_token invalid"},
		{"strava message only", provider.DialectStrava, `{"message":"Authorization Error"}`, "", "", "Authorization Error"},
		{"html", provider.DialectRFC6749, html400, "", "", "<!DOCTYPE html>"},
		{"empty", provider.DialectRFC6749, "", "", "", ""},
		{"json array", provider.DialectRFC6749, `[1,2]`, "", "", "[1,2]"},
	}
	for _, tt := range tests {
		re := &oauth2.RetrieveError{
			Response:  &http.Response{StatusCode: 400, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(""))},
			Body:      []byte(tt.body),
			ErrorCode: tt.errorCode,
		}
		code, detail := errorBody(tt.dialect, re)
		if code != tt.wantCode || detail != tt.wantDetail {
			t.Errorf("%s: got (%q, %q); want (%q, %q)", tt.name, code, detail, tt.wantCode, tt.wantDetail)
		}
	}
}
