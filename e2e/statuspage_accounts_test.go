package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/freshtoken/freshtoken/e2e/faultproxy"
	"github.com/freshtoken/freshtoken/e2e/oauthserver"
)

// accountStates is the state of seeded account i: 150 ok, 50 retrying, 50 needs consent of 250.
func accountState(i int) string {
	return []string{"ok", "retrying", "ok", "needs_consent", "ok"}[i%5]
}

// seedAccounts writes n accounts p-000.. of connection conn as another writer would: an
// AccessToken and a Status row each, in one transaction per account.
func (w *world) seedAccounts(conn string, n int) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tc := w.tableClient()
	exp := aztables.EDMDateTime(time.Now().Add(time.Hour).UTC().Truncate(time.Second))
	for i := range n {
		pk := fmt.Sprintf("%s.p-%03d", conn, i)
		var actions []aztables.TransactionAction
		for _, e := range []aztables.EDMEntity{
			{Entity: aztables.Entity{PartitionKey: pk, RowKey: "AccessToken"}, Properties: map[string]any{
				"Value": "seeded-access-" + pk, "TokenType": "Bearer", "ExpiresAt": exp}},
			{Entity: aztables.Entity{PartitionKey: pk, RowKey: "Status"}, Properties: map[string]any{
				"State": accountState(i), "Provider": "custom", "AccountID": fmt.Sprint(5000 + i)}},
		} {
			b, err := json.Marshal(e)
			if err != nil {
				w.t.Fatal(err)
			}
			actions = append(actions, aztables.TransactionAction{ActionType: aztables.TransactionTypeAdd, Entity: b})
		}
		if _, err := tc.SubmitTransaction(ctx, actions, nil); err != nil {
			w.t.Fatalf("seed %s: %v", pk, err)
		}
	}
}

// pageDoc is the status page's JSON with a many-account connection.
type pageDoc struct {
	Connections []struct {
		connState
		Many   bool `json:"many"`
		Counts struct {
			OK           int `json:"ok"`
			Retrying     int `json:"retrying"`
			NeedsConsent int `json:"needs_consent"`
		} `json:"counts"`
		Accounts     []connState `json:"accounts"`
		Continuation string      `json:"continuation"`
	} `json:"connections"`
}

// TestStatusPageAccounts: 250 accounts of a many-account connection in three states, on the
// built handler under the emulated host: the page lists 100 with counts for all, its
// continuation gives the rest, the state filter lists only that state, each page costs a few
// table requests, and nothing is served without the function key.
func TestStatusPageAccounts(t *testing.T) {
	w := newWorld(t, oauthserver.Options{}, "solo", "study")
	w.env["OAUTH_STUDY_ACCOUNTS"] = "many"
	w.env["REFRESH_SCHEDULE"] = "0 0 0 1 1 *"
	var tableRequests atomic.Int64
	tables, err := faultproxy.Start(faultproxy.Options{
		Name:   "table",
		Target: azurite.Addr(),
		Decide: func(*faultproxy.Request) faultproxy.Action {
			tableRequests.Add(1)
			return faultproxy.Action{}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tables.Close() })
	w.env["AzureWebJobsStorage"] = azurite.ConnectionStringFor(tables.Addr())
	h := w.start(true)
	w.seedAccounts("study", 250)

	page := h.URL() + "/api/authorize/"
	key := url.QueryEscape(h.FunctionKey())
	jsonPage := func(query string) pageDoc {
		t.Helper()
		resp, body := get(t, page+"?format=json&code="+key+query, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET ?%s: %d %s", query, resp.StatusCode, body)
		}
		if strings.Contains(body, "seeded-access-") {
			t.Errorf("GET ?%s shows an access token", query)
		}
		var d pageDoc
		if err := json.Unmarshal([]byte(body), &d); err != nil {
			t.Fatalf("GET ?%s: %v", query, err)
		}
		return d
	}

	jsonPage("") // the store opens (creates its table) on first use
	before := tableRequests.Load()
	d := jsonPage("")
	if n := tableRequests.Load() - before; n != 4 {
		t.Errorf("the first page read the table %d times; want 4 (solo's rows, the counts, the Status and AccessToken rows of the page)", n)
	}
	if len(d.Connections) != 2 || d.Connections[0].Name != "solo" || d.Connections[0].Many || d.Connections[0].State != "not_connected" {
		t.Fatalf("connections: got %+v; want solo (single, not connected) then study", d.Connections)
	}
	s := d.Connections[1]
	if !s.Many || s.Counts.OK != 150 || s.Counts.Retrying != 50 || s.Counts.NeedsConsent != 50 || s.State != "needs_consent" {
		t.Errorf("study: many %v, counts %+v, state %s; want many, 150/50/50, needs_consent", s.Many, s.Counts, s.State)
	}
	if len(s.Accounts) != 100 || s.Accounts[0].Name != "study.p-000" || s.Continuation == "" {
		t.Fatalf("page 1: %d accounts, continuation %q; want 100 from study.p-000 and a continuation", len(s.Accounts), s.Continuation)
	}
	if a := s.Accounts[3]; a.State != "needs_consent" || a.AccountID != "5003" || a.Provider != "custom" {
		t.Errorf("study.p-003: got %+v; want needs_consent, account 5003", a)
	}
	seen := map[string]bool{}
	for _, a := range s.Accounts {
		seen[a.Name] = true
	}
	for s.Continuation != "" {
		d = jsonPage("&connection=study&continuation=" + url.QueryEscape(s.Continuation))
		s = d.Connections[0]
		if len(d.Connections) != 1 || len(s.Accounts) > 100 {
			t.Fatalf("a continued page: %d connections, %d accounts; want study alone, at most 100", len(d.Connections), len(s.Accounts))
		}
		for _, a := range s.Accounts {
			if seen[a.Name] {
				t.Errorf("%s listed twice", a.Name)
			}
			seen[a.Name] = true
		}
	}
	if len(seen) != 250 {
		t.Errorf("paged through %d accounts; want 250", len(seen))
	}

	for state, want := range map[string]int{"needs_consent": 50, "retrying": 50, "ok": 150} {
		got := 0
		cont := ""
		for {
			d := jsonPage("&connection=study&state=" + state + "&continuation=" + url.QueryEscape(cont))
			for _, a := range d.Connections[0].Accounts {
				got++
				if a.State != state {
					t.Errorf("state=%s lists %s in state %s", state, a.Name, a.State)
				}
			}
			if cont = d.Connections[0].Continuation; cont == "" {
				break
			}
		}
		if got != want {
			t.Errorf("state=%s: %d accounts; want %d", state, got, want)
		}
	}

	// HTML: 100 accounts, the filter and the next page as links that carry the key.
	resp, html := get(t, page+"?code="+key, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTML: %d", resp.StatusCode)
	}
	if n := strings.Count(html, `<h3 id="conn-study.p-`); n != 100 {
		t.Errorf("HTML page 1 lists %d accounts; want 100", n)
	}
	next := regexp.MustCompile(`<a href="([^"]*)" rel="next">`).FindStringSubmatch(html)
	if next == nil || !strings.Contains(next[1], "code="+key) || !strings.Contains(next[1], "continuation=") {
		t.Fatalf("HTML page 1: no Next page link with the key and a continuation")
	}
	nextURL := page + strings.ReplaceAll(next[1], "&amp;", "&")
	resp, html2 := get(t, nextURL, nil)
	if resp.StatusCode != http.StatusOK || strings.Count(html2, `<h3 id="conn-study.p-`) != 100 || !strings.Contains(html2, `id="conn-study.p-100"`) {
		t.Errorf("HTML page 2: %d, %d accounts; want 100 from study.p-100", resp.StatusCode, strings.Count(html2, `<h3 id="conn-study.p-`))
	}
	if !strings.Contains(html, "250 accounts: 150 ok, 50 retrying, 50 needs consent") {
		t.Errorf("HTML page 1 does not show the counts")
	}

	// The function key is still required, on every kind of page.
	for _, u := range []string{page + "?format=json", strings.ReplaceAll(nextURL, "code="+key, "code=wrong"), page + "?connection=study&state=ok"} {
		if resp, _ := get(t, u, nil); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without the key: %d; want 401", strings.TrimPrefix(u, h.URL()), resp.StatusCode)
		}
	}
	// A forged continuation is a clear 400.
	resp, body := get(t, page+"?format=json&code="+key+"&connection=study&continuation=%27%20or%20true", nil)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "continuation") {
		t.Errorf("a forged continuation: %d %s; want 400 naming it", resp.StatusCode, body)
	}

	// freshtoken status lists every account, with the same counts, and exits 1 (some need consent).
	out, errOut, code := w.cli("status", "--json")
	if code != 1 {
		t.Errorf("status --json: exit %d (%s); want 1", code, errOut)
	}
	var all pageDoc
	if err := json.Unmarshal([]byte(out), &all); err != nil {
		t.Fatalf("status --json: %v", err)
	}
	if len(all.Connections) != 2 || len(all.Connections[1].Accounts) != 250 || all.Connections[1].Continuation != "" || all.Connections[1].Counts.NeedsConsent != 50 {
		t.Errorf("status --json: want study's 250 accounts without a continuation")
	}
	out, _, _ = w.cli("status", "--state", "needs_consent")
	if n := strings.Count(out, "\n  study.p-"); n != 50 || !strings.Contains(out, "250 accounts: 150 ok, 50 retrying, 50 needs consent") {
		t.Errorf("status --state needs_consent: %d account lines; want 50 and the counts:\n%s", n, out)
	}
}
