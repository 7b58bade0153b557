// Package server is the custom handler's HTTP front: the host's readiness ping, the
// RefreshTimer invocation (Functions JSON protocol) and the forwarded HTTP routes of Authorize
// and Callback, behind one mux with explicit timeouts.
package server

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/freshtoken/freshtoken/internal/funcproto"
	"github.com/freshtoken/freshtoken/internal/refresh"
	"github.com/rs/zerolog"
)

// Refresher runs one refresh pass.
type Refresher interface {
	Run(ctx context.Context) refresh.Report
}

// Routes registers more routes on the mux (the consent handlers).
type Routes interface {
	Register(mux *http.ServeMux)
}

// Options configure the handler. Zero values take the documented defaults.
type Options struct {
	Refresher Refresher
	Consent   Routes
	// Status serves the status page at /api/authorize without a connection (the Authorize
	// function's optional route parameter), behind the same function key.
	Status http.Handler
	Log    zerolog.Logger
	// MaxBody bounds an invocation body. Default 1 MiB.
	MaxBody int64
	// PassTimeout bounds one refresh pass; keep it under host.json's functionTimeout so the
	// host never kills the process mid-commit. Default DefaultPassTimeout.
	PassTimeout time.Duration
}

// DefaultPassTimeout bounds a pass when Options.PassTimeout is zero. It stays under host.json's
// functionTimeout (5m on Consumption) so the host never kills the process mid-commit.
const DefaultPassTimeout = 4*time.Minute + 30*time.Second

// timerBinding is the trigger's binding name in RefreshTimer/function.json.
const timerBinding = "timer"

// New returns the handler serving every route.
func New(o Options) http.Handler {
	if o.MaxBody <= 0 {
		o.MaxBody = 1 << 20
	}
	if o.PassTimeout <= 0 {
		o.PassTimeout = DefaultPassTimeout
	}
	mux := http.NewServeMux()
	// The host polls GET / for readiness and later as a health ping: answer at once.
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("freshtoken is running\n"))
	})
	mux.HandleFunc("POST /RefreshTimer", o.refreshTimer)
	if o.Consent != nil {
		o.Consent.Register(mux)
	}
	if o.Status != nil {
		mux.Handle("GET /api/authorize", o.Status)
		mux.Handle("GET /api/authorize/{$}", o.Status)
	}
	return mux
}

// refreshTimer answers the host's timer invocation: a first Logs line naming the invocation,
// then one line per connection, and a non-2xx status when any due connection was left without
// a fresh pair, so the invocation shows as Failed (the host then discards Logs, so every line
// is also logged by the pass).
func (o Options) refreshTimer(w http.ResponseWriter, r *http.Request) {
	req, err := funcproto.Decode(r, o.MaxBody)
	if err != nil {
		o.Log.Warn().Str("error", err.Error()).Msg("RefreshTimer: rejected a malformed invocation")
		funcproto.Write(w, http.StatusBadRequest, funcproto.InvokeResponse{Logs: []string{"bad invocation: " + err.Error()}})
		return
	}
	timer, warnings, err := req.Timer(timerBinding)
	if err != nil {
		// The timer's data only informs the logs; never fail a pass over it.
		warnings = append(warnings, "timer data ignored: "+err.Error())
	}
	for _, wmsg := range warnings {
		o.Log.Warn().Str("invocation_id", req.InvocationID).Str("warning", wmsg).Msg("RefreshTimer: odd timer payload")
	}
	retry := req.Retry()
	// Logged before the pass, so that a pass the host kills at functionTimeout still has it.
	ev := o.Log.Info().Str("invocation_id", req.InvocationID).Bool("past_due", timer.IsPastDue).Int("retry_count", retry.Count)
	if retry.Max > 0 {
		ev = ev.Int("max_retry", retry.Max)
	}
	if !timer.Last.IsZero() {
		ev = ev.Time("last_tick", timer.Last)
	}
	if !timer.Next.IsZero() {
		ev = ev.Time("next_tick", timer.Next)
	}
	ev.Msg("RefreshTimer: starting a refresh pass")
	logs := []string{invocationLine(req.InvocationID, timer.IsPastDue, retry)}
	ctx, cancel := context.WithTimeout(r.Context(), o.PassTimeout)
	defer cancel()
	report := o.Refresher.Run(ctx)
	logs = append(logs, report.Lines()...)
	status := http.StatusOK
	if report.Failed() {
		status = http.StatusInternalServerError
	}
	funcproto.Write(w, status, funcproto.InvokeResponse{Logs: logs})
}

// invocationLine is the first Logs line of a timer invocation, e.g.
// "invocation 0f8f...: past due: false; retry 0". id is already safe to echo (see
// funcproto.InvokeRequest.InvocationID).
func invocationLine(id string, pastDue bool, retry funcproto.Retry) string {
	if id == "" {
		id = "(no id)"
	}
	line := fmt.Sprintf("invocation %s: past due: %t", id, pastDue)
	if pastDue {
		line += " (this pass runs late)"
	}
	line += fmt.Sprintf("; retry %d", retry.Count)
	if retry.Max > 0 {
		line += fmt.Sprintf(" of %d", retry.Max)
	}
	return line
}

// NewHTTPServer wraps h with the timeouts every server needs. writeTimeout must outlast a
// refresh pass.
func NewHTTPServer(addr string, h http.Handler, writeTimeout time.Duration) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}
