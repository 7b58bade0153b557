// Package heartbeat tells an outside monitor that the RefreshTimer ran: after each pass it
// sends GET HEARTBEAT_URL when the pass succeeded and GET HEARTBEAT_URL/fail when it failed
// (the healthchecks.io convention). A monitor whose period is the schedule then notices when
// the timer stops running, which nothing inside the app can.
//
// The URL is a credential: it is never logged or returned in an error. A failed ping is
// logged and never fails the pass.
package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/freshtoken/freshtoken/internal/redact"
	"github.com/rs/zerolog"
)

// DefaultTimeout bounds one ping.
const DefaultTimeout = 10 * time.Second

// Check validates a HEARTBEAT_URL value ("" is valid: no heartbeat). Its error names setting
// and the problem, never the URL.
func Check(setting, raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("%s: not a valid URL", setting)
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("%s: want an https:// URL", setting)
	case u.Host == "":
		return fmt.Errorf("%s: the URL has no host", setting)
	case u.Fragment != "":
		return fmt.Errorf("%s: the URL has a #fragment; want none", setting)
	}
	return nil
}

// Options configure a Pinger. The zero values of Client and Timeout work.
type Options struct {
	URL     string // HEARTBEAT_URL; "" turns the heartbeat off
	Client  *http.Client
	Timeout time.Duration // per ping; default DefaultTimeout
	Log     zerolog.Logger
}

// Pinger pings the monitor. A nil *Pinger, or one without a URL, does nothing.
type Pinger struct {
	ok, fail string
	client   *http.Client
	timeout  time.Duration
	log      zerolog.Logger
}

// New returns a Pinger; its error (a URL that Check refuses) names only "HEARTBEAT_URL".
func New(o Options) (*Pinger, error) {
	if err := Check("HEARTBEAT_URL", o.URL); err != nil {
		return nil, err
	}
	p := &Pinger{client: o.Client, timeout: o.Timeout, log: o.Log}
	if o.URL != "" {
		u, _ := url.Parse(o.URL)
		p.ok = u.String()
		u.Path = strings.TrimSuffix(u.Path, "/") + "/fail"
		u.RawPath = ""
		p.fail = u.String()
	}
	if p.client == nil {
		p.client = &http.Client{Timeout: DefaultTimeout}
	}
	if p.timeout <= 0 {
		p.timeout = DefaultTimeout
	}
	return p, nil
}

// Ping reports a pass: passed says whether it succeeded. It logs a failure and returns it
// (redacted, without the URL) for tests; callers ignore the error.
func (p *Pinger) Ping(ctx context.Context, passed bool) error {
	if p == nil || p.ok == "" {
		return nil
	}
	target, which := p.ok, "success"
	if !passed {
		target, which = p.fail, "failure"
	}
	err := p.get(ctx, target)
	if err != nil {
		p.log.Warn().Str("ping", which).Str("error", err.Error()).Msg("heartbeat: the monitor could not be told; the pass is unaffected")
		return err
	}
	p.log.Debug().Str("ping", which).Msg("heartbeat sent")
	return nil
}

func (p *Pinger) get(ctx context.Context, target string) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return errors.New("heartbeat: the request could not be built")
	}
	req.Header.Set("User-Agent", "freshtoken-heartbeat")
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("heartbeat: %s", p.scrub(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("heartbeat: the monitor answered HTTP %d", resp.StatusCode)
	}
	return nil
}

// scrub turns a client error into text without the URL: *url.Error quotes it in full.
func (p *Pinger) scrub(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out"
	}
	secrets := []string{p.fail, p.ok}
	if u, perr := url.Parse(p.ok); perr == nil {
		secrets = append(secrets, strings.Split(u.Path, "/")...)
		secrets = append(secrets, u.RawQuery)
	}
	return redact.String(err.Error(), 300, secrets...)
}
