// Command devoauth runs a local OAuth 2.0 provider for development (`make
// run`): the authorization code grant with an interactive consent page, and
// rotating refresh tokens with reuse detection. All state is in memory and
// is lost on exit.
//
//	go run ./cmd/devoauth -addr 127.0.0.1:9096 -client-id demo -client-secret s3cret \
//	    -redirect http://localhost:7071/api/callback/demo
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
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/freshtoken/freshtoken/e2e/oauthserver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "devoauth:", err)
		os.Exit(1)
	}
}

// run serves until ctx is cancelled, then shuts down gracefully.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("devoauth", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:9096", "listen address")
	clientID := fs.String("client-id", "freshtoken-dev", "client ID")
	clientSecret := fs.String("client-secret", "freshtoken-dev-secret", "client secret (never printed)")
	redirects := fs.String("redirect", "http://localhost:7071/api/callback/demo", "comma-separated redirect URIs")
	scopes := fs.String("scopes", "activity sleep profile offline", "space-separated scopes the client may request")
	authMethod := fs.String("auth-method", oauthserver.AuthMethodBasic, "token endpoint client auth: client_secret_basic or client_secret_post")
	requirePKCE := fs.Bool("require-pkce", false, "reject authorization requests without an S256 code_challenge")
	accessTTL := fs.Duration("access-token-lifespan", 2*time.Minute, "access token lifespan (short, so refreshes happen soon)")
	refreshTTL := fs.Duration("refresh-token-lifespan", 0, "refresh token lifespan (0: 30 days; negative: never expires)")
	grace := fs.Duration("grace", 0, "window in which an identical repeated refresh gets the same answer (0: strict reuse detection)")
	consent := fs.String("consent", "interactive", "consent: interactive, approve or deny")
	accountID := fs.String("account-id", "dev-user-1", "default account ID, returned as user_id")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	mode, err := parseConsent(*consent)
	if err != nil {
		return err
	}

	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer l.Close()
	base := "http://" + l.Addr().String()

	srv, err := oauthserver.New(oauthserver.Options{
		Clients: []oauthserver.Client{{
			ID:           *clientID,
			Secret:       *clientSecret,
			RedirectURIs: splitList(*redirects, ","),
			Scopes:       strings.Fields(*scopes),
			AuthMethod:   *authMethod,
			RequirePKCE:  *requirePKCE,
		}},
		AccessTokenLifespan:  *accessTTL,
		RefreshTokenLifespan: *refreshTTL,
		Consent:              mode,
		AccountID:            *accountID,
		GraceWindow:          *grace,
		BaseURL:              base,
	})
	if err != nil {
		return err
	}

	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       time.Minute,
	}
	fmt.Fprintf(stdout, "devoauth listening on %s\n", srv.URL())
	fmt.Fprintf(stdout, "  authorize URL: %s\n", srv.AuthURL())
	fmt.Fprintf(stdout, "  token URL:     %s\n", srv.TokenURL())
	fmt.Fprintf(stdout, "  revoke URL:    %s\n", srv.RevokeURL())
	fmt.Fprintf(stdout, "  userinfo URL:  %s\n", srv.UserinfoURL())
	fmt.Fprintf(stdout, "  client ID:     %s (%s, secret from -client-secret)\n", *clientID, *authMethod)
	fmt.Fprintf(stdout, "  redirect URIs: %s\n", strings.Join(splitList(*redirects, ","), " "))
	fmt.Fprintf(stdout, "  access tokens live %s; grace window %s\n", *accessTTL, *grace)

	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	fmt.Fprintln(stdout, "devoauth stopped")
	return nil
}

func parseConsent(s string) (oauthserver.ConsentMode, error) {
	switch s {
	case "interactive":
		return oauthserver.Interactive, nil
	case "approve":
		return oauthserver.AutoApprove, nil
	case "deny":
		return oauthserver.AutoDeny, nil
	}
	return 0, fmt.Errorf("-consent %q: want interactive, approve or deny", s)
}

func splitList(s, sep string) []string {
	var out []string
	for _, part := range strings.Split(s, sep) {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
