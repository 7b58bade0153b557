package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/freshtoken/freshtoken/e2e/funchost"
	"github.com/freshtoken/freshtoken/e2e/oauthserver"
	"github.com/freshtoken/freshtoken/internal/azuritetest"
)

// Shared by every test in this package: the handler built once from this checkout, the app
// (host.json and function.json files read from the repo root) and one Azurite; each test uses
// its own table.
var (
	repoRoot   string
	handlerBin string
	app        *funchost.App
	azurite    *azuritetest.Server
	tableSeq   atomic.Int64
)

func TestMain(m *testing.M) {
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	root, err := filepath.Abs("..")
	if err != nil {
		return 0, err
	}
	repoRoot = root
	if app, err = funchost.Load(repoRoot); err != nil {
		return 0, err
	}
	dir, err := os.MkdirTemp("", "freshtoken-e2e-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	// The host runs exactly the name host.json gives.
	handlerBin = filepath.Join(dir, filepath.Base(app.Host.ExecutablePath))
	build := exec.Command("go", "build", "-race", "-o", handlerBin, "./handler")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("build the handler: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if azurite, err = azuritetest.Run(ctx, azuritetest.Options{Dir: repoRoot}); err != nil {
		return 0, err
	}
	defer azurite.Stop()
	return m.Run(), nil
}

// world is one test's provider, app settings and table.
type world struct {
	t      *testing.T
	oauth  *oauthserver.Server
	front  net.Listener // the host's public front door, opened early so redirect URLs are known
	base   string       // http://127.0.0.1:<port>
	table  string
	env    map[string]string
	secret string
	conns  []string
	// extra are more secrets checkNoSecrets looks for: notification and heartbeat URLs,
	// authorization codes seen by a test's browser.
	extra []string
}

const testClientSecret = "e2e-client-secret-7f3a9c1d0b"

// newWorld starts an OAuth2 server with one client whose redirect URIs point at a front door
// for each connection, and builds the app settings for them (a custom provider, PKCE, HTTP
// Basic client auth).
func newWorld(t *testing.T, o oauthserver.Options, conns ...string) *world {
	t.Helper()
	front, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, front: front, base: "http://" + front.Addr().String(), secret: testClientSecret, conns: conns}
	var redirects []string
	for _, c := range conns {
		redirects = append(redirects, w.base+"/api/callback/"+c)
	}
	o.Clients = []oauthserver.Client{{
		ID: "e2e-client", Secret: w.secret, RedirectURIs: redirects,
		Scopes: []string{"activity", "sleep", "profile"}, AuthMethod: oauthserver.AuthMethodBasic, RequirePKCE: true,
	}}
	if o.AccessTokenLifespan == 0 {
		o.AccessTokenLifespan = time.Hour
	}
	if o.AccountID == "" {
		o.AccountID = "user-42"
	}
	srv, err := oauthserver.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	w.oauth = srv
	w.table = fmt.Sprintf("E2E%d%d", time.Now().UnixNano()%1e9, tableSeq.Add(1))
	w.env = map[string]string{
		"FUNCTIONS_WORKER_RUNTIME": "custom",
		"AzureWebJobsStorage":      azurite.ConnectionString(),
		"TOKEN_TABLE":              w.table,
		"OAUTH_CONNECTIONS":        strings.Join(conns, ","),
		"REFRESH_SCHEDULE":         "0 */15 * * * *",
		"LOG_LEVEL":                "debug",
	}
	for _, c := range conns {
		p := "OAUTH_" + strings.ToUpper(strings.ReplaceAll(c, "-", "_")) + "_"
		w.env[p+"PROVIDER"] = "custom"
		w.env[p+"CLIENT_ID"] = "e2e-client"
		w.env[p+"CLIENT_SECRET"] = w.secret
		w.env[p+"SCOPES"] = "activity, sleep profile"
		w.env[p+"AUTH_URL"] = srv.AuthURL()
		w.env[p+"TOKEN_URL"] = srv.TokenURL()
		w.env[p+"AUTH_STYLE"] = "header"
		w.env[p+"PKCE"] = "true"
		w.env[p+"REDIRECT_URL"] = w.base + "/api/callback/" + c
	}
	return w
}

// start runs the built handler under the emulated host. The first host gets the world's front
// door; later ones get their own (their redirect URLs still point at the first).
func (w *world) start(first bool) *funchost.Host {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opts := funchost.StartOptions{Executable: handlerBin, Env: w.env}
	if first {
		opts.FrontDoor = w.front
	}
	h, err := app.Start(ctx, opts)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := h.Stop(sctx); err != nil {
			w.t.Errorf("stop the handler: %v", err)
		}
		w.checkNoSecrets(h)
	})
	return h
}

// browser is a person's browser: cookies kept, redirects followed.
func browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 30 * time.Second}
}

// consent walks Authorize → the provider's (auto-approving) consent → Callback and returns the
// final page.
func (w *world) consent(h *funchost.Host, b *http.Client, conn string) (int, string) {
	w.t.Helper()
	resp, err := b.Get(h.URL() + "/api/authorize/" + conn + "?code=" + h.FunctionKey())
	if err != nil {
		w.t.Fatalf("consent %s: %v", conn, err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, sb.String()
}

// tableClient reads the token table the way another app would.
func (w *world) tableClient() *aztables.Client {
	w.t.Helper()
	svc, err := aztables.NewServiceClientFromConnectionString(azurite.ConnectionString(), nil)
	if err != nil {
		w.t.Fatal(err)
	}
	return svc.NewClient(w.table)
}

// row reads one entity as raw JSON properties (odata annotations included).
func (w *world) row(conn, rowKey string) map[string]any {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := w.tableClient().GetEntity(ctx, conn, rowKey, &aztables.GetEntityOptions{
		Format: toPtr(aztables.MetadataFormatFull),
	})
	if err != nil {
		w.t.Fatalf("read %s/%s: %v", conn, rowKey, err)
	}
	var m map[string]any
	if err := json.Unmarshal(resp.Value, &m); err != nil {
		w.t.Fatal(err)
	}
	return m
}

func toPtr[T any](v T) *T { return &v }

// str reads a string property.
func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// invoke sends one timer invocation.
func invoke(t *testing.T, h *funchost.Host) *funchost.InvokeResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := h.InvokeTimer(ctx, "RefreshTimer", funchost.TimerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// responseLogs reads the Logs of an invocation reply even when the host marked it failed.
func responseLogs(t *testing.T, res *funchost.InvokeResult) []string {
	t.Helper()
	var body struct{ Logs []string }
	if err := json.Unmarshal(res.Body, &body); err != nil {
		t.Fatalf("invocation reply is not JSON (status %d): %v", res.Status, err)
	}
	return body.Logs
}

// checkNoSecrets fails the test when a log line of h holds the client secret, a token the
// server issued, or a value that is stored (sealed ones included).
func (w *world) checkNoSecrets(h *funchost.Host) {
	secrets := append([]string{w.secret}, w.extra...)
	issued := w.oauth.Issued()
	secrets = append(secrets, issued.AccessTokens...)
	secrets = append(secrets, issued.RefreshTokens...)
	for _, c := range w.conns {
		for _, rk := range []string{"AccessToken", "RefreshToken"} {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			resp, err := w.tableClient().GetEntity(ctx, c, rk, nil)
			cancel()
			if err != nil {
				continue
			}
			var row struct{ Value string }
			if json.Unmarshal(resp.Value, &row) == nil && row.Value != "" {
				secrets = append(secrets, row.Value)
			}
		}
	}
	for _, e := range h.Logs() {
		for i, s := range secrets {
			if strings.Contains(e.Message, s) {
				w.t.Errorf("a log line holds secret #%d (length %d)", i, len(s))
			}
		}
	}
}
