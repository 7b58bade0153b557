package tokenclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/provider"
	"golang.org/x/oauth2"
)

// stubTransport answers every request with one canned response, without a network.
type stubTransport struct {
	status      int
	contentType string
	retryAfter  string
	body        string
}

func (s stubTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	return s.response(req), nil
}

func (s stubTransport) response(req *http.Request) *http.Response {
	h := http.Header{}
	if s.contentType != "" {
		h.Set("Content-Type", s.contentType)
	}
	if s.retryAfter != "" {
		h.Set("Retry-After", s.retryAfter)
	}
	return &http.Response{
		StatusCode: s.status,
		Status:     fmt.Sprintf("%d %s", s.status, http.StatusText(s.status)),
		Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:  h,
		Body:    io.NopCloser(strings.NewReader(s.body)),
		Request: req,
	}
}

// FuzzClassifyBody feeds arbitrary answers through Refresh (x/oauth2's parsing included) and
// straight into classify. "$RT" and "$CS" in a body stand for the refresh token sent and the
// client secret, so seeds can echo them as Fitbit does. Whatever arrives, the error must be
// an *Error of a known class whose text is non-empty and holds neither secret.
func FuzzClassifyBody(f *testing.F) {
	dialects := []provider.Dialect{provider.DialectRFC6749, provider.DialectFitbit, provider.DialectStrava, provider.DialectWithings, provider.DialectOura}
	secrets := []string{testClientSecret, oldRT, authCode}
	f.Fuzz(func(t *testing.T, status int, contentType, retryAfter, body string) {
		status = 100 + int(uint(status)%500)
		body = strings.NewReplacer("$RT", oldRT, "$CS", testClientSecret).Replace(body)
		stub := stubTransport{status: status, contentType: contentType, retryAfter: retryAfter, body: body}

		check := func(path string, err error) {
			t.Helper()
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("%s: got %T; want *Error", path, err)
			}
			switch e.Class {
			case Revoked, Transient, Ambiguous:
			default:
				t.Errorf("%s: got Class %q; want revoked, transient or ambiguous", path, e.Class)
			}
			msg := e.Error()
			if msg == "" {
				t.Errorf("%s: got an empty Error()", path)
			}
			for _, s := range secrets {
				if strings.Contains(msg, s) {
					t.Errorf("%s: Error() holds a secret %s", path, fp(s))
				}
			}
			if e.RetryAfter < 0 {
				t.Errorf("%s: got RetryAfter %v; want >= 0", path, e.RetryAfter)
			}
		}

		// The Withings client reads the same answer as an envelope, on both calls.
		hc := &http.Client{Transport: stub, Timeout: 5 * time.Second}
		w := NewWithings(withClient(connection(lookup(t, "withings"), "http://token.invalid/v2/oauth2"), hc))
		if _, err := w.Refresh(context.Background(), oldRT); err != nil {
			check("withings refresh", err)
		}
		if _, err := w.Exchange(context.Background(), authCode, ""); err != nil {
			check("withings exchange", err)
		}

		for _, d := range dialects {
			p := customPreset()
			p.Dialect = d
			p.Gone = provider.FitbitGone

			hc := &http.Client{Transport: stub, Timeout: 5 * time.Second}
			c := New(withClient(connection(p, "http://token.invalid/oauth2/token"), hc))
			if _, err := c.Refresh(context.Background(), oldRT); err != nil {
				check("refresh "+string(d), err)
			}

			// The same answer as a RetrieveError whose parsed fields hold the raw text too.
			req, _ := http.NewRequest(http.MethodPost, "http://token.invalid/oauth2/token", nil)
			re := &oauth2.RetrieveError{
				Response:         stub.response(req),
				Body:             []byte(body),
				ErrorCode:        firstLine(body),
				ErrorDescription: body,
			}
			check("classify RetrieveError "+string(d), classify("refresh", p, re, observation{}, testNow, secrets))

			// A transport error whose text carries the body, before and after sending.
			terr := fmt.Errorf("oauth2: cannot parse json: %s", body)
			for _, obs := range []observation{{}, {wrote: true}, {wrote: true, gotStatus: status}} {
				check("classify transport error "+string(d), classify("refresh", p, terr, obs, testNow, secrets))
			}
		}
	})
}
