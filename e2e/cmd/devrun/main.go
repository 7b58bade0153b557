// Command devrun is `make run`: it starts Azurite on its default table port (so the handler's
// embedded `UseDevelopmentStorage=true` works), the local OAuth2 development server with an
// interactive consent page, and the freshtoken handler standalone with one connection, "demo",
// pointing at that server. It prints the URL to open and stops everything on Ctrl-C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/freshtoken/freshtoken/e2e/oauthserver"
	"github.com/freshtoken/freshtoken/internal/azuritetest"
)

// The development client's credentials: they exist only in this process and the local server.
const (
	devClientID     = "freshtoken-dev"
	devClientSecret = "freshtoken-dev-secret"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "devrun:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("devrun", flag.ContinueOnError)
	fs.SetOutput(stderr)
	port := fs.Int("port", 7071, "the handler's port (as `func start` uses)")
	oauthAddr := fs.String("oauth-addr", "127.0.0.1:9096", "the development OAuth2 server's address")
	azuritePort := fs.Int("azurite-port", 10002, "Azurite's table port (10002 is what UseDevelopmentStorage=true means)")
	schedule := fs.String("schedule", "*/20 * * * * *", "REFRESH_SCHEDULE for the demo (NCRONTAB, 6 fields)")
	accessTTL := fs.Duration("access-token-lifespan", 2*time.Minute, "access token lifespan at the development server")
	margin := fs.String("refresh-margin", "90s", "REFRESH_MARGIN for the demo (Go duration): a token is due when it expires within this")
	if err := fs.Parse(args); err != nil {
		return err
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}

	// 1. Azurite, in memory, on the well-known table port.
	fmt.Fprintf(stdout, "starting Azurite on 127.0.0.1:%d ...\n", *azuritePort)
	az, err := azuritetest.Run(ctx, azuritetest.Options{Dir: root, Port: *azuritePort})
	if err != nil {
		return fmt.Errorf("start Azurite (is port %d free? run `npm ci` first): %w", *azuritePort, err)
	}
	defer az.Stop()

	// 2. The OAuth2 development server.
	redirect := "http://localhost:" + strconv.Itoa(*port) + "/api/callback/demo"
	ln, err := net.Listen("tcp", *oauthAddr)
	if err != nil {
		return fmt.Errorf("listen for the OAuth2 development server on %s: %w", *oauthAddr, err)
	}
	base := "http://" + ln.Addr().String()
	oauth, err := oauthserver.New(oauthserver.Options{
		Clients: []oauthserver.Client{{
			ID:           devClientID,
			Secret:       devClientSecret,
			RedirectURIs: []string{redirect},
			Scopes:       []string{"activity", "sleep", "profile"},
			AuthMethod:   oauthserver.AuthMethodBasic,
			RequirePKCE:  true,
		}},
		AccessTokenLifespan: *accessTTL,
		Consent:             oauthserver.Interactive,
		AccountID:           "dev-user-1",
		BaseURL:             base,
	})
	if err != nil {
		ln.Close()
		return fmt.Errorf("OAuth2 development server: %w", err)
	}
	osrv := &http.Server{Handler: oauth, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute}
	go osrv.Serve(ln)
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		osrv.Shutdown(sctx)
	}()
	fmt.Fprintf(stdout, "OAuth2 development server on %s (rotating refresh tokens, reuse detection on)\n", base)

	// 3. The handler, built from this checkout and run standalone on embedded defaults. Each run
	// builds into a directory of its own, so two runs (make run beside make test) never replace
	// each other's executable.
	binDir, err := os.MkdirTemp("", "freshtoken-devrun-")
	if err != nil {
		return fmt.Errorf("make a directory for the handler: %w", err)
	}
	defer os.RemoveAll(binDir)
	bin := filepath.Join(binDir, "freshtoken")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./handler")
	build.Dir, build.Stdout, build.Stderr = root, stdout, stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build the handler: %w", err)
	}
	h := exec.Command(bin)
	h.Dir, h.Stdout, h.Stderr = root, stdout, stderr
	h.Env = append(os.Environ(),
		"FUNCTIONS_CUSTOMHANDLER_PORT=", // standalone, even inside a Functions shell
		"PORT="+strconv.Itoa(*port),
		"AzureWebJobsStorage=UseDevelopmentStorage=true",
		"TOKEN_STORE_CONNECTION=", "TOKEN_STORE_ENDPOINT=",
		"OAUTH_CONNECTIONS=demo",
		"OAUTH_DEMO_PROVIDER=custom",
		"OAUTH_DEMO_CLIENT_ID="+devClientID,
		"OAUTH_DEMO_CLIENT_SECRET="+devClientSecret,
		"OAUTH_DEMO_SCOPES=activity sleep profile",
		"OAUTH_DEMO_AUTH_URL="+oauth.AuthURL(),
		"OAUTH_DEMO_TOKEN_URL="+oauth.TokenURL(),
		"OAUTH_DEMO_AUTH_STYLE=header",
		"OAUTH_DEMO_PKCE=true",
		"REFRESH_SCHEDULE="+*schedule,
		"REFRESH_MARGIN="+*margin,
		"LOG_FORMAT=console",
	)
	if *azuritePort != 10002 {
		h.Env = append(h.Env, "AzureWebJobsStorage="+az.ConnectionString())
	}
	if err := h.Start(); err != nil {
		return fmt.Errorf("start the handler: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- h.Wait() }()

	if err := waitReady(ctx, "http://127.0.0.1:"+strconv.Itoa(*port)+"/", exited); err != nil {
		h.Process.Kill()
		return err
	}
	fmt.Fprintf(stdout, `
freshtoken is running (standalone, refreshing on %q).

  1. Open  http://localhost:%d/api/authorize/demo  in your browser.
  2. Allow access on the development server's consent page.
  3. The Callback page shows "demo is connected" and when its access token expires.
  4. Watch this terminal: the access token lives %s and is refreshed once it is due
     (REFRESH_MARGIN=%s); each refresh rotates the refresh token.
  The tokens are in Azurite, table OAuthTokens, partition "demo" (rows AccessToken, RefreshToken, Status).

Press Ctrl-C to stop.
`, *schedule, *port, *accessTTL, *margin)

	select {
	case err := <-exited:
		return fmt.Errorf("the handler exited: %v", err)
	case <-ctx.Done():
	}
	fmt.Fprintln(stdout, "stopping ...")
	h.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		h.Process.Kill()
		<-exited
	}
	return nil
}

// waitReady polls url until the handler answers, as the Functions host does.
func waitReady(ctx context.Context, url string, exited <-chan error) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("the handler exited before it was ready: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.New("the handler did not answer GET / within 30s")
}

// repoRoot finds the checkout: the nearest directory upwards holding host.json.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "host.json")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run devrun inside the freshtoken checkout (no host.json found)")
		}
		dir = parent
	}
}
