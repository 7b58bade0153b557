package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/freshtoken/freshtoken/e2e/faultproxy"
	"github.com/freshtoken/freshtoken/e2e/funchost"
	"github.com/freshtoken/freshtoken/e2e/oauthserver"
	"github.com/freshtoken/freshtoken/e2e/receiver"
	"golang.org/x/oauth2"
)

// The subcommands, each run as a separate process of the built binary against Azurite and the
// fosite server (rotation and reuse detection on).

// cliRun is one finished subcommand process.
type cliRun struct {
	args           []string
	stdout, stderr string
	code           int
}

// cli collects every subcommand run of a test, so that its output can be checked for secrets.
type cli struct {
	w    *world
	mu   sync.Mutex
	runs []cliRun
	// secrets are values that must never appear in any output: tokens given to import, or
	// obtained from the server, and keys.
	secrets []string
}

// newCLI returns the test's command runner; at the end of the test it fails on any output
// holding the client secret, a token stored after any run, or a registered secret.
func newCLI(w *world) *cli {
	c := &cli{w: w, secrets: []string{w.secret}}
	w.t.Cleanup(c.checkNoSecrets)
	return c
}

func (c *cli) secret(s ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.secrets = append(c.secrets, s...)
}

// run runs the binary with args, env (the world's settings with overrides; "" removes one)
// and stdin, and returns what it did.
func (c *cli) run(env map[string]string, stdin string, args ...string) cliRun {
	t := c.w.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, handlerBin, args...)
	merged := map[string]string{}
	for k, v := range c.w.env {
		merged[k] = v
	}
	for k, v := range env {
		if v == "" {
			delete(merged, k)
		} else {
			merged[k] = v
		}
	}
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range merged {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Dir = t.TempDir() // import writes a rescue file only here
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := cliRun{args: args, stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default: // not t.Fatal: run is called from goroutines too
		t.Errorf("run freshtoken %q: %v", args, err)
		r.code = -1
	}
	// Whatever the run stored is a secret from now on, even once it is replaced.
	var stored []string
	for _, conn := range c.w.conns {
		for _, rk := range []string{"AccessToken", "RefreshToken"} {
			if v := c.w.value(conn, rk); v != "" {
				stored = append(stored, v)
			}
		}
	}
	c.mu.Lock()
	c.runs = append(c.runs, r)
	c.secrets = append(c.secrets, stored...)
	c.mu.Unlock()
	return r
}

// want fails the test unless r exited with code.
func (r cliRun) want(t *testing.T, code int) cliRun {
	t.Helper()
	if r.code != code {
		t.Fatalf("freshtoken %q exited %d; want %d\nstdout:\n%s\nstderr:\n%s", r.args, r.code, code, r.stdout, r.stderr)
	}
	return r
}

func (c *cli) checkNoSecrets() {
	c.mu.Lock()
	defer c.mu.Unlock()
	secrets := c.secrets
	for _, r := range c.runs {
		for i, s := range secrets {
			if len(s) >= 8 && (strings.Contains(r.stdout, s) || strings.Contains(r.stderr, s)) {
				c.w.t.Errorf("the output of freshtoken %q holds secret #%d (length %d)", r.args, i, len(s))
			}
		}
	}
}

// value reads a row's Value, "" when the row or table is missing.
func (w *world) value(conn, rowKey string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := w.tableClient().GetEntity(ctx, conn, rowKey, nil)
	if err != nil {
		return ""
	}
	var row struct{ Value string }
	_ = json.Unmarshal(resp.Value, &row)
	return row.Value
}

// rows reads every row of the table, as raw JSON by partition and row key: what "the table
// exactly as it was" compares.
func (w *world) rows() map[string]string {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := map[string]string{}
	pager := w.tableClient().NewListEntitiesPager(&aztables.ListEntitiesOptions{Format: toPtr(aztables.MetadataFormatFull)})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			var re *azcore.ResponseError
			if errors.As(err, &re) && re.StatusCode == http.StatusNotFound {
				return out // no table yet
			}
			w.t.Fatalf("list rows: %v", err)
		}
		for _, raw := range page.Entities {
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				w.t.Fatal(err)
			}
			out[fmt.Sprint(m["PartitionKey"], "/", m["RowKey"])] = string(raw)
		}
	}
	return out
}

// directGrant walks the authorization-code flow against the OAuth2 server itself, outside the
// product (the redirect is never followed), and returns the token pair the server issued for
// conn's redirect URL: a refresh token "the user already holds".
func (w *world) directGrant(conn string) *oauth2.Token {
	w.t.Helper()
	cfg := oauth2.Config{
		ClientID: "e2e-client", ClientSecret: w.secret,
		Endpoint:    oauth2.Endpoint{AuthURL: w.oauth.AuthURL(), TokenURL: w.oauth.TokenURL(), AuthStyle: oauth2.AuthStyleInHeader},
		RedirectURL: w.base + "/api/callback/" + conn,
		Scopes:      []string{"activity", "sleep", "profile"},
	}
	verifier := oauth2.GenerateVerifier()
	state := oauth2.GenerateVerifier()
	hc := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)))
	if err != nil {
		w.t.Fatalf("authorize: %v", err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		w.t.Fatalf("authorize answered %d; want a redirect with a code", resp.StatusCode)
	}
	if loc.Query().Get("state") != state || loc.Query().Get("code") == "" {
		w.t.Fatalf("authorize redirect has no code or the wrong state")
	}
	ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), oauth2.HTTPClient, hc), 10*time.Second)
	defer cancel()
	tok, err := cfg.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		w.t.Fatalf("exchange: %v", err)
	}
	if tok.RefreshToken == "" {
		w.t.Fatal("the server issued no refresh token")
	}
	return tok
}

// TestCLIImport: import of a refresh token obtained from the server directly stores a working
// pair; a second import is refused without --replace before anything is read or sent; a token
// the server refuses changes nothing in the table.
func TestCLIImport(t *testing.T) {
	w := newWorld(t, oauthserver.Options{}, "demo", "other")
	c := newCLI(w)
	given := w.directGrant("demo")
	c.secret(given.AccessToken, given.RefreshToken)

	r := c.run(nil, given.RefreshToken+"\n", "import", "demo").want(t, 0)
	if !strings.Contains(r.stdout, "demo: imported; the access token expires ") {
		t.Errorf("import stdout = %q; want the connection and when the access token expires", r.stdout)
	}
	acc, st := w.row("demo", "AccessToken"), w.row("demo", "Status")
	stored := w.value("demo", "RefreshToken")
	if !w.oauth.ActiveAccessToken(str(acc, "Value")) {
		t.Errorf("the stored access token is not one the server accepts")
	}
	if !w.oauth.Accepts(stored) || stored == given.RefreshToken {
		t.Errorf("the stored refresh token is not the rotated one the server accepts")
	}
	if w.oauth.Accepts(given.RefreshToken) {
		t.Errorf("the given refresh token is still active; want it spent by the import's refresh")
	}
	if got, want := str(st, "State"), "ok"; got != want {
		t.Errorf("Status.State = %q; want %q", got, want)
	}
	if got, want := str(st, "GrantedScopes"), "activity sleep profile"; got != want {
		t.Errorf("Status.GrantedScopes = %q; want %q", got, want)
	}
	expires, err := time.Parse(time.RFC3339Nano, str(acc, "ExpiresAt"))
	if err != nil || !strings.Contains(r.stdout, expires.UTC().Format(time.RFC3339)) {
		t.Errorf("import stdout %q does not show the stored expiry %v (%v)", r.stdout, expires, err)
	}

	// The imported pair works: a due refresh rotates it.
	w.expireAccessToken("demo")
	c.run(nil, "", "refresh").want(t, 0)
	if now := w.value("demo", "RefreshToken"); now == stored || !w.oauth.Accepts(now) {
		t.Errorf("after refresh the stored refresh token did not rotate to an active one")
	}

	// A stored pair is refused without --replace, before stdin is read or the provider called.
	other := w.directGrant("demo")
	c.secret(other.AccessToken, other.RefreshToken)
	before, stats := w.rows(), w.oauth.Stats()
	r = c.run(nil, other.RefreshToken, "import", "demo").want(t, 1)
	if !strings.Contains(r.stderr, "connection demo already has a stored pair: nothing was changed") || !strings.Contains(r.stderr, "--replace") {
		t.Errorf("stderr = %q; want the refusal naming --replace", r.stderr)
	}
	if after := w.oauth.Stats(); after != stats {
		t.Errorf("a refused import reached the provider: %+v → %+v", stats, after)
	}
	if !w.oauth.Accepts(other.RefreshToken) {
		t.Errorf("the refused import spent the token it was not allowed to use")
	}
	if after := w.rows(); !reflect.DeepEqual(after, before) {
		t.Errorf("a refused import changed the table")
	}

	// A token the server refuses (its grant revoked) changes nothing, even with --replace.
	if err := w.oauth.Revoke(other.RefreshToken); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"import", "demo", "--replace"}, {"import", "other"}} {
		before = w.rows()
		r = c.run(nil, other.RefreshToken, args...).want(t, 1)
		if !strings.Contains(r.stderr, "refused the refresh token") || !strings.Contains(r.stderr, "nothing was stored") {
			t.Errorf("%q stderr = %q; want a refusal saying nothing was stored", args, r.stderr)
		}
		if after := w.rows(); !reflect.DeepEqual(after, before) {
			t.Errorf("%q: a refused token changed the table", args)
		}
	}
	if !w.oauth.Accepts(w.value("demo", "RefreshToken")) {
		t.Errorf("the stored pair stopped working after refused imports")
	}

	// --replace with a working token replaces the pair.
	third := w.directGrant("demo")
	c.secret(third.AccessToken, third.RefreshToken)
	gen := w.row("demo", "Status")["Generation"]
	c.run(nil, third.RefreshToken, "import", "demo", "--replace").want(t, 0)
	if w.oauth.Accepts(third.RefreshToken) || !w.oauth.Accepts(w.value("demo", "RefreshToken")) {
		t.Errorf("import --replace did not store the rotated pair of the new token")
	}
	if g := w.row("demo", "Status")["Generation"]; fmt.Sprint(g) == fmt.Sprint(gen) {
		t.Errorf("Generation stayed %v after import --replace; want it incremented", g)
	}
}

// TestCLIRefreshAndStatus: refresh refreshes a due connection once and exits 0; with a revoked
// grant it exits 1 and the connection needs consent; status --json and the table report each
// connection's state as the Status rows hold it, with the probe's exit statuses.
func TestCLIRefreshAndStatus(t *testing.T) {
	w := newWorld(t, oauthserver.Options{}, "fresh", "gone", "never")
	c := newCLI(w)
	for _, conn := range []string{"fresh", "gone"} {
		tok := w.directGrant(conn)
		c.secret(tok.AccessToken, tok.RefreshToken)
		c.run(nil, tok.RefreshToken, "import", conn).want(t, 0)
	}
	okOnly := map[string]string{"OAUTH_CONNECTIONS": "fresh,gone"}

	// Nothing due: no provider call, exit 0.
	stats := w.oauth.Stats()
	r := c.run(okOnly, "", "refresh").want(t, 0)
	if after := w.oauth.Stats(); after.Refreshes != stats.Refreshes {
		t.Errorf("a pass with nothing due refreshed %d times", after.Refreshes-stats.Refreshes)
	}
	if !strings.Contains(r.stdout, "fresh: not due") {
		t.Errorf("refresh stdout = %q; want a not-due line", r.stdout)
	}

	// One due connection: refreshed exactly once.
	w.expireAccessToken("fresh")
	old := w.value("fresh", "RefreshToken")
	r = c.run(okOnly, "", "refresh").want(t, 0)
	if got := w.oauth.Stats().Refreshes - stats.Refreshes; got != 1 {
		t.Errorf("refreshes at the provider = %d; want 1", got)
	}
	if now := w.value("fresh", "RefreshToken"); now == old || !w.oauth.Accepts(now) {
		t.Errorf("the stored refresh token was not rotated to an active one")
	}
	if !strings.Contains(r.stdout, "fresh: refreshed") {
		t.Errorf("refresh stdout = %q; want a refreshed line", r.stdout)
	}
	c.run(okOnly, "", "status").want(t, 0)

	// A revoked grant: exit 1, needs consent, the pair kept.
	gone := w.value("gone", "RefreshToken")
	if err := w.oauth.Revoke(gone); err != nil {
		t.Fatal(err)
	}
	w.expireAccessToken("gone")
	hook := receiver.NewWebhook()
	defer hook.Close()
	c.secret(hook.URL("/notify")) // notification URLs carry credentials
	withNotify := map[string]string{"OAUTH_CONNECTIONS": "fresh,gone", "NOTIFY_URLS": hook.URL("/notify")}
	r = c.run(withNotify, "", "refresh").want(t, 1)
	// The same pass as under the host: the person is told.
	if post, err := hook.Next(30 * time.Second); err != nil {
		t.Errorf("no notification after a revoked refresh: %v", err)
	} else if !strings.Contains(post.Body["title"], "gone") {
		t.Errorf("notification title %q; want it to name gone", post.Body["title"])
	}
	if !strings.Contains(r.stderr, "gone") || !strings.Contains(r.stderr, "without a fresh pair") {
		t.Errorf("refresh stderr = %q; want the failed connection named", r.stderr)
	}
	if got := str(w.row("gone", "Status"), "State"); got != "needs_consent" {
		t.Errorf("gone State = %q; want needs_consent", got)
	}
	if got := w.value("gone", "RefreshToken"); got != gone {
		t.Errorf("a revoked refresh changed the stored refresh token")
	}

	// status --json: the page's model, from the rows.
	r = c.run(nil, "", "status", "--json").want(t, 1)
	var m struct {
		Connections []struct {
			Name, Provider, State string
			AccessTokenExpiresAt  *time.Time
			LastFailureClass      string
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
		t.Fatalf("status --json stdout is not JSON: %v\n%s", err, r.stdout)
	}
	got := map[string]string{}
	for _, s := range m.Connections {
		got[s.Name] = s.State
		if s.Name == "never" {
			if s.AccessTokenExpiresAt != nil {
				t.Errorf("never: accessTokenExpiresAt = %v; want null", s.AccessTokenExpiresAt)
			}
			continue
		}
		exp, err := time.Parse(time.RFC3339Nano, str(w.row(s.Name, "AccessToken"), "ExpiresAt"))
		if err != nil || s.AccessTokenExpiresAt == nil || !s.AccessTokenExpiresAt.Equal(exp.Truncate(time.Second)) {
			t.Errorf("%s: accessTokenExpiresAt = %v; want the row's %v", s.Name, s.AccessTokenExpiresAt, exp)
		}
		if s.Provider != "custom" {
			t.Errorf("%s: provider %q; want custom", s.Name, s.Provider)
		}
	}
	want := map[string]string{"fresh": "ok", "gone": "needs_consent", "never": "not_connected"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("status --json states = %v; want %v", got, want)
	}
	if r.stderr == "" || !strings.Contains(r.stderr, "need a person") {
		t.Errorf("status stderr = %q; want why it exits 1", r.stderr)
	}

	// The table for a person.
	r = c.run(nil, "", "status").want(t, 1)
	for _, line := range []string{"CONNECTION", "fresh", "gone", "never", "revoked", "gone needs consent: open ", "never is not connected"} {
		if !strings.Contains(r.stdout, line) {
			t.Errorf("status table lacks %q:\n%s", line, r.stdout)
		}
	}
	if !regexp.MustCompile(`fresh .* (in \d+ min|in 1 hour) `).MatchString(r.stdout) {
		t.Errorf("status table does not show fresh's expiry relative to now:\n%s", r.stdout)
	}
}

// TestCLIMisuse: unknown subcommands, flags, connections and invalid settings exit 2, with a
// message and without touching the provider.
func TestCLIMisuse(t *testing.T) {
	w := newWorld(t, oauthserver.Options{}, "demo")
	c := newCLI(w)
	tests := []struct {
		env   map[string]string
		stdin string
		args  []string
		want  string
	}{
		{nil, "", []string{"bogus"}, `unknown subcommand "bogus"`},
		{nil, "", []string{"status", "--bogus"}, `unknown flag "--bogus"`},
		{nil, "", []string{"refresh", "now"}, "refresh takes no arguments"},
		{nil, "", []string{"import"}, "import needs the connection name"},
		{nil, "", []string{"import", "nosuch"}, `unknown connection "nosuch"`},
		{nil, "", []string{"import", "demo"}, "no refresh token on standard input"},
		{nil, "a\nb", []string{"import", "demo"}, "more than one line"},
		{nil, "", []string{"reader-url"}, "reader-url needs the connection name"},
		{nil, "", []string{"reader-url", "nosuch"}, `unknown connection "nosuch"`},
		{nil, "", []string{"reader-url", "demo", "--for", "soon"}, "--for"},
		{nil, "", []string{"rekey", "--for", "1d"}, "--for is a flag of invite and reader-url"},
		{nil, "", []string{"--settings", "/nonexistent/local.settings.json", "status"}, "settings file"},
		{map[string]string{"OAUTH_CONNECTIONS": "Bad Name", "REFRESH_MARGIN": "soon"}, "", []string{"refresh"}, "REFRESH_MARGIN"},
		{map[string]string{"OAUTH_DEMO_TOKEN_URL": ""}, "", []string{"status"}, "OAUTH_DEMO_TOKEN_URL"},
		{map[string]string{"OAUTH_DEMO_CLIENT_ID": "", "TOKEN_TABLE": "x"}, "tok", []string{"import", "demo"}, "OAUTH_DEMO_CLIENT_ID"},
		{map[string]string{"TOKEN_ENCRYPTION_KEYS": "k1:short"}, "", []string{"rekey"}, "TOKEN_ENCRYPTION_KEYS"},
	}
	stats := w.oauth.Stats()
	for _, tt := range tests {
		r := c.run(tt.env, tt.stdin, tt.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("freshtoken %q: exit %d, stderr %q; want 2 and %q", tt.args, r.code, r.stderr, tt.want)
		}
	}
	if r := c.run(map[string]string{"OAUTH_CONNECTIONS": "Bad Name", "REFRESH_MARGIN": "soon"}, "", "refresh"); !strings.Contains(r.stderr, "OAUTH_CONNECTIONS") {
		t.Errorf("invalid settings name only some problems: %q", r.stderr)
	}
	if after := w.oauth.Stats(); after != stats {
		t.Errorf("misuse reached the provider: %+v → %+v", stats, after)
	}
	r := c.run(nil, "", "help").want(t, 0)
	for _, sub := range []string{"refresh", "status", "import", "invite", "remove", "rekey", "reader-url", "version", "help"} {
		if !strings.Contains(r.stdout, "freshtoken "+sub) {
			t.Errorf("help does not list %s", sub)
		}
	}
	if r := c.run(nil, "", "version").want(t, 0); !strings.Contains(r.stdout, "github.com/freshtoken/freshtoken") {
		t.Errorf("version stdout = %q; want the module path", r.stdout)
	}
}

// newKey is a TOKEN_ENCRYPTION_KEYS entry with a fresh key.
func newKey(t *testing.T, c *cli, id string) string {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	b := base64.StdEncoding.EncodeToString(k)
	c.secret(b)
	return id + ":" + b
}

// sealedUnder lists the rows holding a value sealed under key id, and whether any holds a
// plain refresh token.
func (w *world) sealedUnder(id string) []string {
	var rows []string
	for key, raw := range w.rows() {
		if strings.Contains(raw, `"ft1:`+id+`:`) {
			rows = append(rows, key)
		}
	}
	sort.Strings(rows)
	return rows
}

// TestCLIRekey: with a new key put first, rekey leaves no row under the old key id, and the
// pairs keep working; without keys it exits 1.
func TestCLIRekey(t *testing.T) {
	w := newWorld(t, oauthserver.Options{}, "one", "two")
	c := newCLI(w)
	oldKey, newKeyEntry := newKey(t, c, "k2026"), newKey(t, c, "k2027")
	withOld := map[string]string{"TOKEN_ENCRYPTION_KEYS": oldKey}
	for _, conn := range []string{"one", "two"} {
		tok := w.directGrant(conn)
		c.secret(tok.AccessToken, tok.RefreshToken)
		c.run(withOld, tok.RefreshToken, "import", conn).want(t, 0)
	}
	if got := w.sealedUnder("k2026"); len(got) != 2 {
		t.Fatalf("rows under the old key after import = %v; want both RefreshToken rows", got)
	}
	// The rotated refresh tokens the server holds must not be in the table in plain text.
	for key, raw := range w.rows() {
		if strings.HasSuffix(key, "/RefreshToken") && !strings.Contains(raw, `"Value":"ft1:k2026:`) {
			t.Errorf("row %s holds a plain value", key)
		}
	}

	both := map[string]string{"TOKEN_ENCRYPTION_KEYS": newKeyEntry + "," + oldKey}
	r := c.run(both, "", "rekey").want(t, 0)
	if !strings.Contains(r.stdout, "2 rows hold a secret; 2 rewritten under key k2027; 0 left") {
		t.Errorf("rekey stdout = %q; want 2 scanned and 2 changed under k2027", r.stdout)
	}
	if got := w.sealedUnder("k2026"); len(got) != 0 {
		t.Errorf("rows still under the old key after rekey: %v", got)
	}
	if got := w.sealedUnder("k2027"); len(got) != 2 {
		t.Errorf("rows under the new key = %v; want 2", got)
	}
	r = c.run(both, "", "rekey").want(t, 0)
	if !strings.Contains(r.stdout, "0 rewritten") {
		t.Errorf("second rekey stdout = %q; want nothing rewritten", r.stdout)
	}

	// Only the new key now: the pairs still refresh.
	onlyNew := map[string]string{"TOKEN_ENCRYPTION_KEYS": newKeyEntry}
	w.expireAccessToken("one")
	c.run(onlyNew, "", "refresh").want(t, 0)
	if got := w.sealedUnder("k2027"); len(got) != 2 {
		t.Errorf("rows under the new key after a refresh = %v; want 2", got)
	}

	// An unrelated key cannot open the rows: every row is a failure naming the key id.
	before := w.rows()
	r = c.run(map[string]string{"TOKEN_ENCRYPTION_KEYS": newKey(t, c, "other")}, "", "rekey").want(t, 1)
	if !strings.Contains(r.stdout, "0 rewritten") || !strings.Contains(r.stdout, "k2027") || !strings.Contains(r.stdout, `"one"`) {
		t.Errorf("rekey with an unrelated key: stdout %q; want failures naming the connection and key id", r.stdout)
	}
	if after := w.rows(); !reflect.DeepEqual(after, before) {
		t.Errorf("a failed rekey changed the table")
	}

	// No keys at all.
	r = c.run(map[string]string{"TOKEN_ENCRYPTION_KEYS": ""}, "", "rekey").want(t, 1)
	if !strings.Contains(r.stderr, "TOKEN_ENCRYPTION_KEYS is not set") {
		t.Errorf("rekey without keys: stderr %q; want it to say the setting is not set", r.stderr)
	}
}

// TestCLIReaderURL: the URL reads the AccessToken row through aztables; its range is in the URL
// and signed (Azurite does not enforce the range itself, but refuses a URL whose range or
// permissions were widened), and it allows no write. Without an account key it explains why
// not; an unknown connection exits 2.
func TestCLIReaderURL(t *testing.T) {
	w := newWorld(t, oauthserver.Options{}, "demo", "other")
	c := newCLI(w)
	for _, conn := range []string{"demo", "other"} {
		tok := w.directGrant(conn)
		c.secret(tok.AccessToken, tok.RefreshToken)
		c.run(nil, tok.RefreshToken, "import", conn).want(t, 0)
	}

	start := time.Now()
	r := c.run(nil, "", "reader-url", "demo", "--for", "2d").want(t, 0)
	raw := strings.TrimSuffix(r.stdout, "\n")
	if strings.Contains(raw, "\n") {
		t.Fatalf("reader-url stdout has more than the URL: %q", r.stdout)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("reader-url stdout is not a URL")
	}
	q := u.Query()
	c.secret(q.Get("sig"))
	if strings.Contains(r.stderr, q.Get("sig")) {
		t.Errorf("reader-url wrote the signature to stderr")
	}
	for k, want := range map[string]string{"sp": "r", "spk": "demo", "epk": "demo", "srk": "AccessToken", "erk": "AccessToken"} {
		if got := q.Get(k); got != want {
			t.Errorf("URL %s = %q; want %q", k, got, want)
		}
	}
	se, err := time.Parse(time.RFC3339, q.Get("se"))
	if err != nil || se.Before(start.Add(47*time.Hour)) || se.After(time.Now().Add(49*time.Hour)) {
		t.Errorf("URL expiry se = %q; want about 2 days from now", q.Get("se"))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := aztables.NewClientWithNoCredential(raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.GetEntity(ctx, "demo", "AccessToken", nil)
	if err != nil {
		t.Fatalf("read the AccessToken row through the URL: %v", err)
	}
	var row struct{ Value string }
	if err := json.Unmarshal(resp.Value, &row); err != nil || row.Value == "" || row.Value != w.value("demo", "AccessToken") {
		t.Errorf("the row read through the URL is not the stored access token")
	}

	// What Azurite enforces: permissions and the signature over the range.
	ent, _ := json.Marshal(map[string]string{"PartitionKey": "demo", "RowKey": "Injected", "Value": "x"})
	if _, err := client.AddEntity(ctx, ent, nil); err == nil {
		t.Errorf("an insert through the reader URL succeeded; want it refused")
	}
	for k, v := range map[string]string{"epk": "zzzz", "srk": "A", "sp": "raud"} {
		wider := *u
		wq := wider.Query()
		wq.Set(k, v)
		wider.RawQuery = wq.Encode()
		wc, err := aztables.NewClientWithNoCredential(wider.String(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := wc.GetEntity(ctx, "demo", "AccessToken", nil); err == nil {
			t.Errorf("a URL with %s changed to %q still reads; want the signature refused", k, v)
		}
	}

	// Managed identity: no account key, so no SAS.
	r = c.run(map[string]string{"AzureWebJobsStorage": "", "TOKEN_STORE_ENDPOINT": "https://example.table.core.windows.net"}, "", "reader-url", "demo").want(t, 1)
	if r.stdout != "" || !strings.Contains(r.stderr, "account key") || !strings.Contains(r.stderr, "Storage Table Data Reader") {
		t.Errorf("reader-url without an account key: stdout %q stderr %q; want the explanation on stderr only", r.stdout, r.stderr)
	}
	c.run(nil, "", "reader-url", "nosuch").want(t, 2)
}

// TestCLIImportWriteRetried: when the table refuses the write after the provider rotated the
// given token, import keeps trying and stores the new pair; nothing is lost.
func TestCLIImportWriteRetried(t *testing.T) {
	w := newWorld(t, oauthserver.Options{}, "demo")
	c := newCLI(w)
	var mu sync.Mutex
	refused := 0
	proxy, err := faultproxy.Start(faultproxy.Options{
		Name: "azurite", Target: azurite.Addr(), Classify: faultproxy.AzureKind,
		Decide: func(r *faultproxy.Request) faultproxy.Action {
			mu.Lock()
			defer mu.Unlock()
			if r.Kind == faultproxy.KindCommit && refused < 6 {
				refused++
				return faultproxy.Action{Fault: faultproxy.Unavailable}
			}
			return faultproxy.Action{}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })

	given := w.directGrant("demo")
	c.secret(given.AccessToken, given.RefreshToken)
	r := c.run(map[string]string{"AzureWebJobsStorage": azurite.ConnectionStringFor(proxy.Addr())}, given.RefreshToken, "import", "demo").want(t, 0)
	mu.Lock()
	n := refused
	mu.Unlock()
	if n < 6 {
		t.Fatalf("the proxy refused %d commits; want 6 (the test did not test the retry)", n)
	}
	if !strings.Contains(r.stdout, "demo: imported") {
		t.Errorf("stdout = %q; want imported", r.stdout)
	}
	if stored := w.value("demo", "RefreshToken"); !w.oauth.Accepts(stored) || stored == given.RefreshToken {
		t.Errorf("after the retried write the stored refresh token is not the rotated, active one")
	}
}

// TestCLIRefreshBesideHandler: `freshtoken refresh` processes and timer invocations of a running
// handler on the same table, all at once, send the due refresh token once: the lease.
func TestCLIRefreshBesideHandler(t *testing.T) {
	w := newWorld(t, oauthserver.Options{}, "demo")
	c := newCLI(w)
	h := w.start(true)
	if status, page := w.consent(h, browser(), "demo"); status != http.StatusOK {
		t.Fatalf("consent = %d %q", status, page)
	}
	w.expireAccessToken("demo")
	stats := w.oauth.Stats()

	var wg sync.WaitGroup
	runs := make([]cliRun, 3)
	for i := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runs[i] = c.run(nil, "", "refresh")
		}()
	}
	invocations := make([]bool, 2)
	for i := range invocations {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			res, err := h.InvokeTimer(ctx, "RefreshTimer", funchost.TimerOptions{})
			invocations[i] = err == nil && !res.Failed
		}()
	}
	wg.Wait()
	for _, r := range runs {
		if r.code != 0 {
			t.Errorf("a refresh beside the handler exited %d:\n%s%s", r.code, r.stdout, r.stderr)
		}
	}
	for i, ok := range invocations {
		if !ok {
			t.Errorf("timer invocation %d failed", i)
		}
	}
	after := w.oauth.Stats()
	if got := after.Refreshes - stats.Refreshes; got != 1 {
		t.Errorf("refreshes at the provider = %d; want 1", got)
	}
	if after.ReuseDetections != 0 || after.RefreshFailures != stats.RefreshFailures {
		t.Errorf("the provider saw a reused or failed refresh: %+v", after)
	}
	if !w.oauth.Accepts(w.value("demo", "RefreshToken")) {
		t.Errorf("the stored refresh token is not the active one")
	}
}
