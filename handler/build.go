package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/freshtoken/freshtoken/internal/config"
	"github.com/freshtoken/freshtoken/internal/connection"
	"github.com/freshtoken/freshtoken/internal/consent"
	"github.com/freshtoken/freshtoken/internal/heartbeat"
	"github.com/freshtoken/freshtoken/internal/invite"
	"github.com/freshtoken/freshtoken/internal/notify"
	"github.com/freshtoken/freshtoken/internal/redact"
	"github.com/freshtoken/freshtoken/internal/refresh"
	"github.com/freshtoken/freshtoken/internal/server"
	"github.com/freshtoken/freshtoken/internal/statuspage"
	"github.com/freshtoken/freshtoken/internal/store"
	"github.com/freshtoken/freshtoken/internal/tokenclient"
	"github.com/rs/zerolog"
)

// app is the handler's dependencies, built once from the settings.
type app struct {
	cfg       config.Config
	log       zerolog.Logger
	store     *store.Lazy
	conns     []*connection.Connection
	refresher *refresh.Refresher
	notifier  *notify.Dispatcher // nil without NOTIFY_URLS
	heartbeat *heartbeat.Pinger  // nil without HEARTBEAT_URL
	handler   http.Handler
}

// build turns the settings into the handler's parts: the store, one resolved value per
// connection, the refresh pass and the HTTP routes. It is the only place settings become
// package options.
func build(cfg config.Config, log zerolog.Logger) (*app, error) {
	st, err := openStore(cfg.Store)
	if err != nil {
		return nil, err
	}
	conns := resolve(cfg)
	a := &app{cfg: cfg, log: log, store: st, conns: conns}
	var invites *invite.Signer
	if cfg.InviteKey != nil {
		if invites, err = invite.New(invite.Options{Key: cfg.InviteKey, Now: time.Now, Rand: rand.Reader}); err != nil {
			return nil, fmt.Errorf("%s: %w", config.SettingInviteKey, err)
		}
	}
	timing := refresh.FixedTiming(cfg.Margin)
	if cfg.Margin == 0 {
		// REFRESH_MARGIN unset: the timing the simulated year chose, its floor set to two of
		// the schedule's gaps.
		timing = refresh.DefaultTiming()
		timing.Gap = cfg.Schedule.LongestGap(time.Now(), 2000)
	}
	a.refresher = refresh.New(refresh.Options{
		Store:         st,
		Connections:   conns,
		Timing:        timing,
		LeaseDuration: cfg.Lease,
		Concurrency:   cfg.Concurrency,
		Reserve:       reserve(cfg.TokenTimeout),
		Owner:         owner(cfg.WorkerID),
		Now:           time.Now,
		Log:           log,
	})
	if len(cfg.Notify.URLs) > 0 {
		sender, err := notify.New(config.SettingNotifyURLs, cfg.Notify.URLs, notify.Options{})
		if err != nil {
			return nil, err
		}
		a.notifier = &notify.Dispatcher{
			Store:  st,
			Sender: sender,
			Policy: notify.Policy{After: cfg.Notify.After, Reminder: cfg.Notify.Reminder},
			Now:    time.Now,
			Log:    log,
		}
	}
	if cfg.HeartbeatURL != "" {
		if a.heartbeat, err = heartbeat.New(heartbeat.Options{URL: cfg.HeartbeatURL, Log: log}); err != nil {
			return nil, err
		}
	}
	a.handler = server.New(server.Options{
		Refresher: passRunner{a},
		Status: statuspage.NewHandler(statuspage.Options{
			Store:       st,
			Connections: pageConnections(conns),
			Now:         time.Now,
			Log:         log,
		}),
		Consent: consent.New(consent.Options{
			Store:       st,
			Connections: conns,
			Now:         time.Now,
			Log:         log,
			Rand:        rand.Reader,
			Invites:     invites,
		}),
		Log: log,
	})
	return a, nil
}

// passRunner is a RefreshTimer pass and what follows it, for the server and the schedule.
type passRunner struct{ a *app }

func (p passRunner) Run(ctx context.Context) refresh.Report { return p.a.pass(ctx) }

// pass runs one refresh pass, then sends the notifications it calls for and pings the
// heartbeat. Neither of those can fail the pass.
func (a *app) pass(ctx context.Context) refresh.Report {
	rep := a.refresher.Run(ctx)
	a.notifier.Pass(ctx, a.targets(rep))
	// Ping logs its own failure (and a nil Pinger does nothing): its error is for tests.
	_ = a.heartbeat.Ping(ctx, !rep.Failed())
	return rep
}

// targets are the connections notifications are about: every single-account connection, and
// the accounts of many-account connections that the pass reported on (idle accounts are only
// counted, and have nothing to notify).
func (a *app) targets(rep refresh.Report) []notify.Target {
	ts := make([]notify.Target, 0, len(a.conns))
	many := map[string]*connection.Connection{}
	for _, c := range a.conns {
		if c.Many {
			many[c.Name] = c
			continue
		}
		ts = append(ts, notify.Target{Name: c.Name, AuthorizeURL: c.AuthorizeURL, Hint: c.Preset.ReconnectHint})
	}
	for _, res := range rep.Results {
		name, label, ok := connection.SplitPartition(res.Connection)
		if c := many[name]; ok && c != nil {
			if acct, err := c.Account(label); err == nil {
				ts = append(ts, notify.Target{Name: acct.Name, AuthorizeURL: acct.AuthorizeURL, Hint: c.Preset.ReconnectHint})
			}
		}
	}
	return ts
}

// pageConnections are the connections the status page lists.
func pageConnections(conns []*connection.Connection) []statuspage.Connection {
	out := make([]statuspage.Connection, 0, len(conns))
	for _, c := range conns {
		out = append(out, statuspage.Connection{Name: c.Name, Provider: c.Preset.Name, AuthorizeURL: c.AuthorizeURL, Many: c.Many})
	}
	return out
}

// resolve makes one connection value per configured connection, with its token client. Every
// client shares one HTTP client bounded by TOKEN_REQUEST_TIMEOUT.
func resolve(cfg config.Config) []*connection.Connection {
	hc := tokenclient.NewHTTPClient(cfg.TokenTimeout)
	conns := make([]*connection.Connection, 0, len(cfg.Connections))
	for _, c := range cfg.Connections {
		conns = append(conns, &connection.Connection{
			Name:         c.Name,
			Preset:       c.Preset,
			Scopes:       c.Scopes,
			RedirectURL:  c.RedirectURL,
			AuthorizeURL: cfg.AuthorizeURL(c.Name),
			Many:         c.Many,
			Client: tokenclient.For(tokenclient.Options{
				Preset:       c.Preset,
				ClientID:     c.ClientID,
				ClientSecret: c.ClientSecret,
				Scopes:       c.Scopes,
				RedirectURL:  c.RedirectURL,
				Timeout:      cfg.TokenTimeout,
				HTTPClient:   hc,
				Now:          time.Now,
			}),
		})
	}
	return conns
}

// openStore describes the token table: by connection string, or by endpoint with Microsoft
// Entra auth (managed identity in Azure, developer sign-in locally; AZURE_CLIENT_ID picks a
// user-assigned identity, read by azidentity itself). It is opened on first use, so the
// handler answers the host's readiness ping before the table service has answered.
func openStore(sc config.Store) (*store.Lazy, error) {
	o := storeOptions(sc)
	if sc.Endpoint != "" {
		cred, err := azidentity.NewDefaultAzureCredential(nil)
		if err != nil {
			return nil, fmt.Errorf("%s: Microsoft Entra credential: %w", config.SettingStoreEndpoint, err)
		}
		o.Credential = cred
	}
	return store.NewLazy(o), nil
}

// reserve is how long before a pass's deadline it starts its last refresh: enough for a token
// request, an identical repeat and the commit, so that no lease outlives the pass; at most half
// the pass.
func reserve(tokenTimeout time.Duration) time.Duration {
	return min(2*tokenTimeout+15*time.Second, server.DefaultPassTimeout/2)
}

// storeOptions describes the token table to the store, without a credential.
func storeOptions(sc config.Store) store.Options {
	return store.Options{ConnectionString: sc.ConnectionString, Endpoint: sc.Endpoint, Table: sc.Table, Keys: sc.Keys}
}

// readerURL is the SAS URL that reads only the AccessToken row of the connection called name,
// valid for valid from now. Without an account key the error (exit status 1) says what to do
// instead; it never holds the key.
func readerURL(sc config.Store, name string, valid time.Duration, now time.Time) (string, error) {
	u, err := store.ReaderURL(storeOptions(sc), name, valid, now)
	switch {
	case errors.Is(err, store.ErrNeedsAccountKey):
		return "", &exitError{Code: exitFailed, Err: errNeedsAccountKey}
	case err != nil:
		return "", &exitError{Code: exitFailed, Err: fmt.Errorf("reader URL for %s: %s", name, redact.String(err.Error(), maxShown))}
	}
	return u, nil
}
