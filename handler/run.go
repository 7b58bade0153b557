package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/freshtoken/freshtoken/internal/config"
	"github.com/freshtoken/freshtoken/internal/logging"
	"github.com/freshtoken/freshtoken/internal/redact"
	"github.com/freshtoken/freshtoken/internal/schedule"
	"github.com/freshtoken/freshtoken/internal/server"
	"github.com/rs/zerolog"
)

// run runs the command line args (without the program name) with the settings getenv reads and
// the standard streams. Without a subcommand it builds the handler and serves until ctx ends
// (SIGTERM), then drains in-flight work. The result goes to exitStatus.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	return dispatch(ctx, args, getenv, stdin, stdout, stderr, commands{
		Serve:     serveCommand,
		Refresh:   refreshCommand,
		Status:    statusCommand,
		Import:    importCommand,
		Invite:    inviteCommand,
		Remove:    removeCommand,
		Rekey:     rekeyCommand,
		ReaderURL: readerURLCommand,
	})
}

// serveCommand is freshtoken without a subcommand: the custom handler, or standalone. Its logs
// go to stdout, warnings and errors to stderr, as the Functions host reads them.
func serveCommand(ctx context.Context, inv invocation) error {
	cfg, log, err := loadSettings(inv, inv.Stdout)
	if err != nil {
		return err
	}
	a, err := build(cfg, log)
	if err != nil {
		return err
	}
	return a.serve(ctx)
}

// loadSettings reads and checks the settings and makes the logger: information to info,
// warnings and errors to inv.Stderr. Warnings of the settings are logged.
func loadSettings(inv invocation, info io.Writer) (config.Config, zerolog.Logger, error) {
	cfg, warnings, err := config.Load(inv.Getenv)
	if err != nil {
		return config.Config{}, zerolog.Nop(), err
	}
	log := logging.New(cfg.LogLevel, cfg.LogFormat, info, inv.Stderr)
	for _, w := range warnings {
		log.Warn().Msg(w)
	}
	return cfg, log, nil
}

// serve listens in the mode the settings choose, runs the schedule when standalone, and shuts
// down when ctx ends.
func (a *app) serve(ctx context.Context) error {
	addr, standalone := a.address()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := server.NewHTTPServer(addr, a.handler, server.DefaultPassTimeout+30*time.Second)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	go a.checkStore(ctx)

	mode := "custom handler"
	if standalone {
		mode = "standalone"
	}
	a.log.Info().Str("addr", ln.Addr().String()).Str("mode", mode).Int("connections", len(a.conns)).Msg("freshtoken listening")

	schedDone := make(chan struct{})
	if standalone {
		go func() {
			defer close(schedDone)
			a.runSchedule(ctx)
		}()
	} else {
		close(schedDone)
	}

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	return a.shutdown(srv, schedDone)
}

// address is where to listen: the host's port on loopback under the Functions host, else
// BIND_ADDRESS:PORT (standalone).
func (a *app) address() (addr string, standalone bool) {
	if a.cfg.CustomHandlerPort != "" {
		return net.JoinHostPort("127.0.0.1", a.cfg.CustomHandlerPort), false
	}
	return net.JoinHostPort(a.cfg.BindAddress, a.cfg.Port), true
}

// runSchedule runs a pass at every tick of REFRESH_SCHEDULE until ctx ends; standalone only,
// as the Functions host runs the timer itself.
func (a *app) runSchedule(ctx context.Context) {
	sched := a.cfg.Schedule
	a.log.Info().Str("schedule", sched.String()).Time("next", sched.Next(time.Now())).Msg("refreshing on the schedule")
	for _, c := range a.conns {
		a.log.Info().Str("connection", c.Name).Msg("to connect " + c.Name + ", open " + c.AuthorizeURL)
	}
	schedule.Run(ctx, sched, schedule.SystemClock(), func(ctx context.Context) {
		pctx, cancel := context.WithTimeout(ctx, server.DefaultPassTimeout)
		defer cancel()
		a.pass(pctx)
	}, func(tick time.Time) {
		a.log.Warn().Time("tick", tick).Msg("skipped a scheduled pass: the previous one is still running")
	})
}

// shutdown drains in-flight requests and the running pass, bounded by a pass and a margin.
func (a *app) shutdown(srv *http.Server, schedDone <-chan struct{}) error {
	a.log.Info().Msg("shutting down: draining in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), server.DefaultPassTimeout+15*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	<-schedDone
	a.log.Info().Msg("stopped")
	return nil
}

// checkStore opens the table once at start-up so that a bad connection shows in the logs
// before the first invocation needs it.
func (a *app) checkStore(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	table := a.cfg.Store.Table
	if _, err := a.store.Open(ctx); err != nil {
		a.log.Error().Str("table", table).Str("error", redact.String(err.Error(), 400)).
			Msg("the token table is not reachable yet; invocations will try again")
		return
	}
	a.log.Info().Str("table", table).Msg("token table ready")
}

// owner names this process in leases: host name, worker id and process id.
func owner(workerID string) string {
	host, _ := os.Hostname()
	if workerID == "" {
		workerID = "standalone"
	}
	return host + "/" + workerID + "/" + strconv.Itoa(os.Getpid())
}
