package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/freshtoken/freshtoken/internal/config"
	"github.com/freshtoken/freshtoken/internal/consent"
	"github.com/freshtoken/freshtoken/internal/logging"
	"github.com/freshtoken/freshtoken/internal/redact"
	"github.com/freshtoken/freshtoken/internal/refresh"
	"github.com/freshtoken/freshtoken/internal/schedule"
	"github.com/freshtoken/freshtoken/internal/server"
	"github.com/freshtoken/freshtoken/internal/store"
	"github.com/freshtoken/freshtoken/internal/tokenclient"
	"github.com/rs/zerolog"
)

const (
	// passTimeout stays under host.json's functionTimeout (5m).
	passTimeout = 4*time.Minute + 30*time.Second
	// shutdownGrace is how long SIGTERM waits for in-flight requests and passes.
	shutdownGrace = passTimeout + 15*time.Second
)

// run wires the handler from the environment and serves until ctx ends (SIGTERM), then drains
// in-flight work. It returns an error only when the handler cannot start or serve.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected arguments %q: freshtoken is configured by environment settings only", args)
	}
	cfg, warnings, err := config.Load(getenv)
	if err != nil {
		return err
	}
	log := logging.New(cfg.LogLevel, cfg.LogFormat, stdout, stderr)
	for _, w := range warnings {
		log.Warn().Msg(w)
	}

	st, err := storeFor(cfg.Store)
	if err != nil {
		return err
	}
	hc := tokenclient.NewHTTPClient(cfg.TokenTimeout)
	refreshConns := make([]refresh.Connection, 0, len(cfg.Connections))
	consentConns := make(map[string]consent.Connection, len(cfg.Connections))
	for _, c := range cfg.Connections {
		client := tokenclient.For(c, hc, time.Now)
		refreshConns = append(refreshConns, refresh.Connection{
			Name: c.Name, Preset: c.Preset, Client: client, AuthorizeURL: cfg.AuthorizeURL(c.Name),
		})
		consentConns[c.Name] = consent.Connection{Config: c, Client: client}
	}
	refresher := refresh.New(refresh.Options{
		Store:         st,
		Connections:   refreshConns,
		Margin:        cfg.Margin,
		LeaseDuration: cfg.Lease,
		Owner:         owner(getenv),
		Now:           time.Now,
		Log:           log,
	})
	handler := server.New(server.Options{
		Refresher: refresher,
		Consent: consent.New(consent.Options{
			Store:       st,
			Connections: consentConns,
			Now:         time.Now,
			Log:         log,
			Rand:        rand.Reader,
		}),
		Log:         log,
		PassTimeout: passTimeout,
	})

	standalone := cfg.CustomHandlerPort == ""
	addr := net.JoinHostPort("127.0.0.1", cfg.CustomHandlerPort)
	if standalone {
		addr = net.JoinHostPort(cfg.BindAddress, cfg.Port)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := server.NewHTTPServer(addr, handler, passTimeout+30*time.Second)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	go checkStore(ctx, st, cfg.Store.Table, log)

	mode := "custom handler"
	if standalone {
		mode = "standalone"
	}
	log.Info().Str("addr", ln.Addr().String()).Str("mode", mode).Int("connections", len(cfg.Connections)).Msg("freshtoken listening")

	schedDone := make(chan struct{})
	if standalone {
		sched, err := schedule.Parse(cfg.Schedule)
		if err != nil {
			return fmt.Errorf("REFRESH_SCHEDULE: %w", err)
		}
		log.Info().Str("schedule", cfg.Schedule).Time("next", sched.Next(time.Now())).Msg("refreshing on the schedule")
		for _, c := range cfg.Connections {
			log.Info().Str("connection", c.Name).Msg("to connect " + c.Name + ", open " + cfg.AuthorizeURL(c.Name))
		}
		go func() {
			defer close(schedDone)
			schedule.Run(ctx, sched, schedule.SystemClock(), func(ctx context.Context) {
				pctx, cancel := context.WithTimeout(ctx, passTimeout)
				defer cancel()
				refresher.Run(pctx)
			}, func(tick time.Time) {
				log.Warn().Time("tick", tick).Msg("skipped a scheduled pass: the previous one is still running")
			})
		}()
	} else {
		close(schedDone)
	}

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info().Msg("shutting down: draining in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	<-schedDone
	log.Info().Msg("stopped")
	return nil
}

// storeFor describes the token table: by connection string, or by endpoint with Microsoft
// Entra auth (managed identity in Azure, developer sign-in locally; AZURE_CLIENT_ID picks a
// user-assigned identity, read by azidentity itself). It is opened on first use, so the
// handler answers the host's readiness ping before the table service has answered.
func storeFor(sc config.Store) (*store.Lazy, error) {
	o := store.Options{ConnectionString: sc.ConnectionString, Endpoint: sc.Endpoint, Table: sc.Table}
	if sc.Endpoint != "" {
		cred, err := azidentity.NewDefaultAzureCredential(nil)
		if err != nil {
			return nil, fmt.Errorf("TOKEN_STORE_ENDPOINT: Microsoft Entra credential: %w", err)
		}
		o.Credential = cred
	}
	return store.NewLazy(o), nil
}

// checkStore opens the table once at start-up so that a bad connection shows in the logs
// before the first invocation needs it.
func checkStore(ctx context.Context, st *store.Lazy, table string, log zerolog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := st.Open(ctx); err != nil {
		log.Error().Str("table", table).Str("error", redact.String(err.Error(), 400)).
			Msg("the token table is not reachable yet; invocations will try again")
		return
	}
	log.Info().Str("table", table).Msg("token table ready")
}

// owner names this process in leases.
func owner(getenv func(string) string) string {
	host, _ := os.Hostname()
	id := getenv("FUNCTIONS_CUSTOMHANDLER_WORKER_ID")
	if id == "" {
		id = "standalone"
	}
	return host + "/" + id + "/" + strconv.Itoa(os.Getpid())
}
