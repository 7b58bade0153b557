package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/freshtoken/freshtoken/e2e/funchost"
	"github.com/freshtoken/freshtoken/e2e/oauthserver"
)

// testInviteKey signs this package's invitations (32 bytes, base64; for tests only).
const testInviteKey = "ZTJlLWludml0ZS1rZXktMDEyMzQ1Njc4OWFiY2RlZiE="

// studyWorld is a world with one many-account connection, study, whose provider revokes at
// the test server's RFC 7009 endpoint, and invitations enabled.
func studyWorld(t *testing.T) (*world, *funchost.Host) {
	t.Helper()
	w := newWorld(t, oauthserver.Options{}, "study")
	w.env["OAUTH_STUDY_ACCOUNTS"] = "many"
	w.env["OAUTH_STUDY_REVOKE_URL"] = w.oauth.RevokeURL()
	w.env["INVITE_SIGNING_KEY"] = testInviteKey
	return w, w.start(true)
}

// cli runs the built handler as a command with the world's settings.
func (w *world) cli(args ...string) (stdout, stderr string, code int) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, handlerBin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range w.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		w.t.Fatalf("run %v: %v", args, err)
	}
	for _, s := range []string{w.secret} {
		if strings.Contains(out.String()+errOut.String(), s) {
			w.t.Errorf("%v printed the client secret", args)
		}
	}
	return out.String(), errOut.String(), code
}

// inviteURL prints one invitation with the invite command.
func (w *world) inviteURL(conn, label, valid string) string {
	w.t.Helper()
	out, errOut, code := w.cli("invite", conn, label, "--for", valid)
	if code != 0 {
		w.t.Fatalf("invite %s %s: exit %d: %s", conn, label, code, errOut)
	}
	u := strings.TrimSpace(out)
	if !strings.HasPrefix(u, w.base+"/api/callback/"+conn+"?invite=") {
		w.t.Fatalf("invite printed %q; want the Callback URL with ?invite=", u)
	}
	return u
}

// open is a browser opening u and following every redirect; it returns the last page.
func open(t *testing.T, b *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := b.Get(u)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// rowRef is one entity of the table as another app sees it.
type rowRef struct{ PK, RK, ETag string }

// snapshot lists every entity of the table, sorted.
func (w *world) snapshot() []rowRef {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rows []rowRef
	pager := w.tableClient().NewListEntitiesPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			w.t.Fatalf("list the table: %v", err)
		}
		for _, raw := range page.Entities {
			var e aztables.EDMEntity
			if err := json.Unmarshal(raw, &e); err != nil {
				w.t.Fatal(err)
			}
			rows = append(rows, rowRef{e.PartitionKey, e.RowKey, e.ETag})
		}
	}
	slices.SortFunc(rows, func(a, b rowRef) int { return strings.Compare(a.PK+"\x00"+a.RK, b.PK+"\x00"+b.RK) })
	return rows
}

// partition is the row keys the table holds under pk.
func partition(rows []rowRef, pk string) []string {
	var keys []string
	for _, r := range rows {
		if r.PK == pk {
			keys = append(keys, r.RK)
		}
	}
	return keys
}

// A participant's browser opens an invitation (no function key) and connects exactly that
// account; the coordinator connects another with the function key; each is read from its own
// partition; forged, altered, expired and spent invitations are refused with nothing changed.
func TestInvitations(t *testing.T) {
	w, h := studyWorld(t)

	// The coordinator connects an account with the function key.
	resp, err := browser().Get(h.URL() + "/api/authorize/study/coach?code=" + h.FunctionKey())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "study.coach is connected") {
		t.Fatalf("coach: status %d; want 200 study.coach is connected; page:\n%s", resp.StatusCode, body)
	}

	u := w.inviteURL("study", "p1", "1h")
	status, page := open(t, browser(), u)
	if status != http.StatusOK || !strings.Contains(page, "study.p1 is connected") {
		t.Fatalf("invitation: status %d; want 200 study.p1 is connected; page:\n%s", status, page)
	}

	rows := w.snapshot()
	if got := partition(rows, "study.p1"); len(got) != 4 || !slices.Contains(got, "AccessToken") || !strings.HasPrefix(got[1], "Invite-") {
		t.Errorf("partition study.p1 holds %q; want AccessToken, Invite-<id>, RefreshToken, Status", got)
	}
	if got := partition(rows, "study"); len(got) != 0 {
		t.Errorf("partition study holds %q; want nothing (its accounts have their own)", got)
	}
	// Each account reads as a Functions table binding would: partitionKey NAME.LABEL.
	for _, pk := range []string{"study.p1", "study.coach"} {
		at := w.row(pk, "AccessToken")
		if str(at, "Value") == "" || !w.oauth.ActiveAccessToken(str(at, "Value")) {
			t.Errorf("%s/AccessToken: a live access token stored %t; want true", pk, str(at, "Value") != "")
		}
	}
	if a, b := str(w.row("study.p1", "AccessToken"), "Value"), str(w.row("study.coach", "AccessToken"), "Value"); a == b {
		t.Errorf("two accounts hold the same access token")
	}

	// Refused: spent, altered, forged, for another connection, expired. Nothing changes.
	value := strings.TrimPrefix(u, w.base+"/api/callback/study?invite=")
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-20] ^= 0x04 // the label's last byte
	altered := base64.RawURLEncoding.EncodeToString(raw)
	forgedKey := w.env["INVITE_SIGNING_KEY"]
	w.env["INVITE_SIGNING_KEY"] = "b3RoZXIta2V5LW90aGVyLWtleS1vdGhlci1rZXktMDE="
	forged := w.inviteURL("study", "p1", "1h")
	w.env["INVITE_SIGNING_KEY"] = forgedKey
	expired := w.inviteURL("study", "p9", "1s")
	time.Sleep(1100 * time.Millisecond)

	before := w.snapshot()
	for _, tt := range []struct {
		name, url string
		status    int
		says      string
	}{
		{"spent", u, http.StatusGone, "already connected study.p1"},
		{"altered", w.base + "/api/callback/study?invite=" + url.QueryEscape(altered), http.StatusBadRequest, "not valid"},
		{"cut short", u[:len(u)-4], http.StatusBadRequest, "not valid"},
		{"forged", forged, http.StatusBadRequest, "not valid"},
		{"made up", w.base + "/api/callback/study?invite=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", http.StatusBadRequest, "not valid"},
		{"expired", expired, http.StatusGone, "expired"},
	} {
		b := browser()
		status, page := open(t, b, tt.url)
		if status != tt.status || !strings.Contains(page, tt.says) {
			t.Errorf("%s: status %d, says %q: %t; want %d; page:\n%s", tt.name, status, tt.says, strings.Contains(page, tt.says), tt.status, page)
		}
		cu, _ := url.Parse(w.base + "/api/callback/study")
		if cks := b.Jar.Cookies(cu); len(cks) != 0 {
			t.Errorf("%s: the browser got %d cookies; want none", tt.name, len(cks))
		}
	}
	if after := w.snapshot(); !slices.Equal(before, after) {
		t.Errorf("refused invitations changed the table:\nbefore %v\nafter  %v", before, after)
	}
	if _, err := w.tableClient().GetEntity(context.Background(), "study.p9", "Status", nil); err == nil {
		t.Errorf("the expired invitation's account was created")
	}

	// The accounts' tokens and the invitations, credentials all, never reach a log line.
	secrets := []string{value, altered}
	for _, pk := range []string{"study.p1", "study.coach"} {
		for _, rk := range []string{"AccessToken", "RefreshToken"} {
			secrets = append(secrets, str(w.row(pk, rk), "Value"))
		}
	}
	for _, e := range h.Logs() {
		for i, s := range secrets {
			if s != "" && strings.Contains(e.Message, s) {
				t.Errorf("a log line holds secret #%d (length %d)", i, len(s))
			}
		}
	}
}

// remove revokes the account's grant at the provider (RFC 7009) and leaves no row of it; the
// other accounts of the connection stay.
func TestRemoveAccount(t *testing.T) {
	w, _ := studyWorld(t)
	for _, label := range []string{"p1", "p2"} {
		if status, page := open(t, browser(), w.inviteURL("study", label, "1h")); status != http.StatusOK {
			t.Fatalf("%s: status %d; page:\n%s", label, status, page)
		}
	}
	rt := str(w.row("study.p1", "RefreshToken"), "Value")
	at := str(w.row("study.p1", "AccessToken"), "Value")
	rt2 := str(w.row("study.p2", "RefreshToken"), "Value")
	if !w.oauth.Accepts(rt) || !w.oauth.ActiveAccessToken(at) {
		t.Fatalf("before remove: the grant is not live")
	}

	out, errOut, code := w.cli("remove", "study", "p1")
	if code != 0 || !strings.Contains(out, "removed study.p1: access revoked") || !strings.Contains(out, "4 rows deleted") {
		t.Fatalf("remove: exit %d, stdout %q, stderr %q; want 0 and the revocation and 4 rows reported", code, out, errOut)
	}
	for _, s := range []string{rt, at} {
		if strings.Contains(out+errOut, s) {
			t.Errorf("remove printed a token")
		}
	}
	rows := w.snapshot()
	if got := partition(rows, "study.p1"); len(got) != 0 {
		t.Errorf("partition study.p1 after remove holds %q; want nothing", got)
	}
	if w.oauth.Accepts(rt) || w.oauth.ActiveAccessToken(at) {
		t.Errorf("after remove the test server still accepts the grant; want it revoked")
	}
	if got := partition(rows, "study.p2"); len(got) != 4 || !w.oauth.Accepts(rt2) {
		t.Errorf("study.p2 after removing p1: rows %q, grant live %t; want untouched", got, w.oauth.Accepts(rt2))
	}

	// Again: nothing left to remove, said plainly.
	_, errOut, code = w.cli("remove", "study", "p1")
	if code == 0 || !strings.Contains(errOut, "nothing is stored") {
		t.Errorf("second remove: exit %d, stderr %q; want a failure saying nothing is stored", code, errOut)
	}
}
