package consent

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/store"
)

// fuzzState is a pending authorization every fuzz run starts with, so that inputs can reach
// the exchange and the save.
const fuzzState = "fuzz-state-0123456789abcdefghijklmnopqrstuv"

// FuzzCallbackQuery sends arbitrary query strings and cookie values to the callback: it must
// never panic, always answer a page with a 2xx, 4xx or 5xx status, and never show a secret.
func FuzzCallbackQuery(f *testing.F) {
	f.Add("state="+fuzzState+"&code=abc", fuzzState)
	f.Add("state="+fuzzState+"&code=abc&scope=read", fuzzState)
	f.Add("error=access_denied&state="+fuzzState, fuzzState)
	f.Add("error=x&error_description=%3Cscript%3E", "")
	f.Add("state=%zz&code=;;", "a\"b")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, rawQuery, cookie string) {
		e := newEnv(t)
		seedState(t, e.store, "strava", fuzzState, store.AuthState{ExpiresAt: t0.Add(time.Minute)})
		r := httptest.NewRequest(http.MethodGet, "/api/callback/strava", nil)
		r.URL.RawQuery = rawQuery
		r.Header.Set("Cookie", cookieName("strava")+"="+cookie)
		w := httptest.NewRecorder()
		e.mux.ServeHTTP(w, r)
		resp := w.Result()
		body, _ := io.ReadAll(resp.Body)
		switch c := resp.StatusCode / 100; c {
		case 2, 4, 5:
		default:
			t.Errorf("status %d; want 2xx, 4xx or 5xx", resp.StatusCode)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("Content-Type = %q; want text/html; charset=utf-8", ct)
		}
		for label, v := range map[string]string{"access token": accessToken, "refresh token": refreshToken, "client secret": clientSecret} {
			if strings.Contains(string(body), v) {
				t.Errorf("page contains the %s", label)
			}
		}
		if strings.Contains(string(body), fuzzState) {
			t.Errorf("page contains the state")
		}
	})
}
