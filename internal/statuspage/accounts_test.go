package statuspage

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/store"
	"github.com/freshtoken/freshtoken/internal/store/storetest"
)

const testKey = "fn-KEY_abc123=="

// seedStudy writes 250 accounts of connection study (150 ok, 50 retrying, 50 needs consent;
// account i's state by i%5) and the single connection google.
func seedStudy(t *testing.T) *storetest.Memory {
	t.Helper()
	m := storetest.New()
	ctx := context.Background()
	states := []store.State{store.StateOK, store.StateRetrying, store.StateOK, store.StateNeedsConsent, store.StateOK}
	for i := range 250 {
		name := fmt.Sprintf("study.p-%03d", i)
		tok := store.Tokens{AccessToken: "at-" + name, RefreshToken: "rt-" + name, ExpiresAt: now.Add(time.Hour)}
		if err := m.SaveConsent(ctx, name, tok, store.Status{State: states[i%5], Provider: "withings", AccountID: fmt.Sprint(1000 + i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.SaveConsent(ctx, "google", store.Tokens{AccessToken: "at-g", RefreshToken: "rt-g"}, store.Status{State: store.StateOK}); err != nil {
		t.Fatal(err)
	}
	m.ResetCalls()
	return m
}

func studyConns() []Connection {
	return []Connection{
		{Name: "google", Provider: "google", AuthorizeURL: "https://ft.example.com/api/authorize/google"},
		{Name: "study", Provider: "withings", AuthorizeURL: "https://ft.example.com/api/authorize/study", Many: true},
	}
}

func serve(t *testing.T, h http.Handler, target string) (*httptest.ResponseRecorder, string) {
	t.Helper()
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequest(http.MethodGet, target, nil))
	body := rr.Body.String()
	for _, secret := range []string{"at-study", "rt-study", "rt-g"} {
		if strings.Contains(body, secret) {
			t.Errorf("GET %s shows a token (%s)", target, secret)
		}
	}
	return rr, body
}

func getModel(t *testing.T, h http.Handler, target string) Model {
	t.Helper()
	rr, body := serve(t, h, target)
	if rr.Code != http.StatusOK {
		t.Fatalf("GET %s: status %d; want 200: %s", target, rr.Code, body)
	}
	var m Model
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	return m
}

func names(ss []Status) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Name)
	}
	return out
}

func TestAccountsJSON(t *testing.T) {
	mem := seedStudy(t)
	h := NewHandler(Options{Store: mem, Connections: studyConns(), Now: func() time.Time { return now }})

	rr, body := serve(t, h, "/api/authorize/?format=json")
	if rr.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rr.Code, body)
	}
	var raw struct {
		Connections []map[string]json.RawMessage `json:"connections"`
	}
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	// The single connection's entry keeps its shape exactly.
	var keys []string
	for k := range raw.Connections[0] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	wantKeys := "accessTokenExpiresAt accountId consecutiveFailures lastFailure lastFailureClass lastFailureMessage lastSuccess missingScopes name nextAttempt provider refreshDeadline state warning"
	if strings.Join(keys, " ") != wantKeys {
		t.Errorf("single connection's keys: got %v; want %s", keys, wantKeys)
	}
	for _, k := range []string{"many", "counts", "accounts", "continuation"} {
		if _, ok := raw.Connections[1][k]; !ok {
			t.Errorf("many-account connection: no %q in %s", k, truncate(body, 400))
		}
	}
	if got := mem.Count(storetest.OpAccounts, "") + mem.Count(storetest.OpAccountCounts, "") + mem.Count(storetest.OpGet, "") + mem.Count(storetest.OpList, ""); got != 3 {
		t.Errorf("one page read the store %d times (%v); want 3 (Get, AccountCounts, Accounts)", got, mem.Calls())
	}

	mem.ResetCalls()
	if one := getModel(t, h, "/api/authorize/?format=json&connection=google"); len(one.Connections) != 1 || one.Connections[0].Name != "google" || one.Connections[0].State != OK {
		t.Errorf("?connection=google: got %+v; want google alone, ok", one.Connections)
	}
	if calls := mem.Calls(); len(calls) != 1 || calls[0].Op != storetest.OpGet {
		t.Errorf("?connection=google read %v; want one Get (a List would read every account)", calls)
	}

	m := getModel(t, h, "/api/authorize/?format=json")
	s := m.Connections[1]
	if s.Accounts == nil {
		t.Fatalf("many-account connection without accounts: %+v", s)
	}
	if c := s.Accounts.Counts; c != (Counts{OK: 150, Retrying: 50, NeedsConsent: 50}) {
		t.Errorf("counts = %+v; want 150 ok, 50 retrying, 50 needs consent", c)
	}
	if s.State != NeedsConsent {
		t.Errorf("connection state = %s; want needs_consent (some account needs consent)", s.State)
	}
	// Page through: 100, 100, 50, every account once, in label order.
	var all []string
	pages := 0
	for {
		pages++
		if len(s.Accounts.List) > PageSize {
			t.Errorf("page %d: %d accounts; want at most %d", pages, len(s.Accounts.List), PageSize)
		}
		all = append(all, names(s.Accounts.List)...)
		if s.Accounts.Continuation == "" {
			break
		}
		m = getModel(t, h, "/api/authorize/?format=json&connection=study&continuation="+url.QueryEscape(s.Accounts.Continuation))
		if len(m.Connections) != 1 {
			t.Fatalf("?connection=study: %d connections; want 1", len(m.Connections))
		}
		s = m.Connections[0]
	}
	if pages != 3 || len(all) != 250 || all[0] != "study.p-000" || all[249] != "study.p-249" || !sort.StringsAreSorted(all) {
		t.Errorf("paged %d pages, %d accounts (%v … %v); want 3 pages of the 250 in order", pages, len(all), all[:1], all[len(all)-1:])
	}
	a := m.Connections[0].Accounts.List[0]
	if a.AccountID != "1200" || a.Provider != "withings" || a.State != OK || !a.AccessTokenExpiresAt.Equal(now.Add(time.Hour)) {
		t.Errorf("account study.p-200: got %+v", a)
	}

	for _, tc := range []struct {
		state State
		n     int
	}{{NeedsConsent, 50}, {Retrying, 50}, {OK, 150}} {
		var got []Status
		target := "/api/authorize/?format=json&connection=study&state=" + string(tc.state)
		for target != "" {
			s := getModel(t, h, target).Connections[0].Accounts
			got = append(got, s.List...)
			target = ""
			if s.Continuation != "" {
				target = "/api/authorize/?format=json&connection=study&state=" + string(tc.state) + "&continuation=" + url.QueryEscape(s.Continuation)
			}
		}
		for _, a := range got {
			if a.State != tc.state {
				t.Errorf("state=%s lists %s in state %s", tc.state, a.Name, a.State)
			}
		}
		if len(got) != tc.n {
			t.Errorf("state=%s: %d accounts; want %d", tc.state, len(got), tc.n)
		}
	}
}

func TestAccountsBadQueries(t *testing.T) {
	mem := seedStudy(t)
	h := NewHandler(Options{Store: mem, Connections: studyConns(), Now: func() time.Time { return now }})
	first := getModel(t, h, "/api/authorize/?format=json").Connections[1].Accounts.Continuation
	filtered := getModel(t, h, "/api/authorize/?format=json&state=ok&connection=study").Connections[0].Accounts.Continuation
	for _, tc := range []struct {
		query string
		code  int
		says  string
	}{
		{"state=bogus", 400, "state"},
		{"state=not_connected", 400, "not_connected"},
		{"connection=study&continuation=%27%20or%20%27a", 400, "continuation"},
		{"connection=study&continuation=" + url.QueryEscape(filtered), 400, "continuation"},
		{"continuation=" + url.QueryEscape(first), 400, "connection"},
		{"connection=google&continuation=" + url.QueryEscape(first), 400, "continuation"},
		{"connection=study&continuation=" + url.QueryEscape(first) + "&prev=junk", 400, "prev"},
		{"connection=nope", 404, "No connection"},
	} {
		for _, format := range []string{"json", "html"} {
			rr, body := serve(t, h, "/api/authorize/?format="+format+"&"+tc.query)
			if rr.Code != tc.code || !strings.Contains(strings.ToLower(body), strings.ToLower(tc.says)) {
				t.Errorf("%s (%s): got %d %s; want %d naming %q", tc.query, format, rr.Code, truncate(body, 200), tc.code, tc.says)
			}
		}
	}
}

var hrefRE = regexp.MustCompile(`<a [^>]*href="([^"]*)"[^>]*>([^<]*)</a>`)

// links returns the page's links by their text.
func links(body string) map[string]string {
	out := map[string]string{}
	for _, m := range hrefRE.FindAllStringSubmatch(body, -1) {
		out[html.UnescapeString(m[2])] = html.UnescapeString(m[1])
	}
	return out
}

func TestAccountsHTML(t *testing.T) {
	mem := seedStudy(t)
	h := NewHandler(Options{Store: mem, Connections: studyConns(), Now: func() time.Time { return now }})
	accountRE := regexp.MustCompile(`<h3 id="conn-(study\.p-\d+)">`)
	open := func(target string) (string, map[string]string, []string) {
		t.Helper()
		rr, body := serve(t, h, target)
		if rr.Code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", target, rr.Code, truncate(body, 300))
		}
		var accts []string
		for _, m := range accountRE.FindAllStringSubmatch(body, -1) {
			accts = append(accts, m[1])
		}
		return body, links(body), accts
	}
	resolve := func(href string) string {
		t.Helper()
		u, err := url.Parse("/api/authorize/")
		if err != nil {
			t.Fatal(err)
		}
		ref, err := url.Parse(href)
		if err != nil {
			t.Fatalf("link %q: %v", href, err)
		}
		r := u.ResolveReference(ref)
		if r.Query().Get("code") != testKey {
			t.Errorf("link %q does not carry the function key", href)
		}
		return r.String()
	}

	body, ls, accts := open("/api/authorize/?code=" + url.QueryEscape(testKey))
	if len(accts) != 100 || accts[0] != "study.p-000" {
		t.Fatalf("page 1: %d accounts from %v; want 100 from study.p-000", len(accts), accts[:min(1, len(accts))])
	}
	if !strings.Contains(body, "250 accounts: 150 ok, 50 retrying, 50 needs consent") {
		t.Errorf("page 1 does not show the counts")
	}
	for _, l := range []string{"All (250)", "OK (150)", "Retrying (50)", "Needs consent (50)", "Next page", "Reconnect study.p-007", "Reconnect google"} {
		if ls[l] == "" {
			t.Errorf("page 1: no link %q (links %v)", l, ls)
		}
	}
	if u := ls["Reconnect study.p-007"]; !strings.HasPrefix(u, "https://ft.example.com/api/authorize/study/p-007?") || !strings.Contains(u, "code=") {
		t.Errorf("an account's Reconnect link is %q; want its own authorize URL with the key", u)
	}
	if _, ok := ls["Previous page"]; ok {
		t.Errorf("page 1 has a Previous page link")
	}

	_, ls2, accts2 := open(resolve(ls["Next page"]))
	if len(accts2) != 100 || accts2[0] != "study.p-100" {
		t.Errorf("page 2: %d accounts from %v; want 100 from study.p-100", len(accts2), accts2[:min(1, len(accts2))])
	}
	_, ls3, accts3 := open(resolve(ls2["Next page"]))
	if len(accts3) != 50 || accts3[0] != "study.p-200" || ls3["Next page"] != "" {
		t.Errorf("page 3: %d accounts from %v, next %q; want the last 50 from study.p-200, no next", len(accts3), accts3[:min(1, len(accts3))], ls3["Next page"])
	}
	_, _, back := open(resolve(ls3["Previous page"]))
	if fmt.Sprint(back) != fmt.Sprint(accts2) {
		t.Errorf("Previous from page 3 gives %d accounts from %v; want page 2", len(back), back[:min(1, len(back))])
	}
	_, _, back1 := open(resolve(ls2["Previous page"]))
	if fmt.Sprint(back1) != fmt.Sprint(accts) {
		t.Errorf("Previous from page 2 is not page 1")
	}
	_, _, first := open(resolve(ls3["First page"]))
	if fmt.Sprint(first) != fmt.Sprint(accts) {
		t.Errorf("First page from page 3 is not page 1")
	}

	fb, fl, needs := open(resolve(ls["Needs consent (50)"]))
	if len(needs) != 50 {
		t.Errorf("filter needs consent: %d accounts; want 50", len(needs))
	}
	if strings.Count(fb, `data-state="needs_consent"`) != 51 { // the connection's own badge and its 50 accounts
		t.Errorf("filter needs consent shows other states (%d needs_consent badges)", strings.Count(fb, `data-state="needs_consent"`))
	}
	if fl["All connections"] == "" || !strings.Contains(fb, `aria-current="page">Needs consent (50)`) {
		t.Errorf("filtered page: no All connections link or current filter marked")
	}
	_, _, ok1 := open(resolve(ls["OK (150)"]))
	if len(ok1) != 100 {
		t.Errorf("filter ok page 1: %d; want 100", len(ok1))
	}
}

func TestManyWithoutAccounts(t *testing.T) {
	h := NewHandler(Options{Store: storetest.New(), Connections: studyConns(), Now: func() time.Time { return now }})
	_, body := serve(t, h, "/api/authorize/")
	if !strings.Contains(body, "No account is connected yet: invite one with freshtoken invite study LABEL.") {
		t.Errorf("empty many-account connection: %s", truncate(body, 2000))
	}
	m := getModel(t, h, "/api/authorize/?format=json")
	if s := m.Connections[1]; s.State != NotConnected || s.Accounts == nil || len(s.Accounts.List) != 0 || s.Accounts.Counts.Total() != 0 {
		t.Errorf("empty many-account connection: %+v", s)
	}
	// A Lister that cannot page accounts is refused, not shown wrong.
	if _, err := Build(context.Background(), &lister{}, studyConns(), now); err == nil {
		t.Errorf("Build with a List-only store and a many-account connection: got nil error")
	}
}
