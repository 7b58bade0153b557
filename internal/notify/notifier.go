package notify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/freshtoken/freshtoken/internal/redact"
	"github.com/nicholas-fedor/shoutrrr/pkg/router"
	"github.com/nicholas-fedor/shoutrrr/pkg/types"
)

// DefaultTimeout bounds one delivery to one URL when Options.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Split splits a NOTIFY_URLS value at spaces and commas, dropping empty entries.
func Split(raw string) []string {
	return strings.FieldsFunc(raw, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
}

// Parse checks every URL of a NOTIFY_URLS value. Its error names setting and the 1-based
// position of each bad URL, and the service scheme when it is a plain word, never the URL:
// these URLs carry credentials.
func Parse(setting, raw string) ([]string, error) {
	urls := Split(raw)
	var errs []error
	for i, u := range urls {
		if _, err := service(u); err != nil {
			errs = append(errs, fmt.Errorf("%s: URL %d of %d: %w", setting, i+1, len(urls), err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return urls, nil
}

// schemeRE is a scheme safe to name in an error (it carries no credential).
var schemeRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,19}(\+[a-z]{1,8})?$`)

// service builds the shoutrrr service for one URL. Its errors never quote the URL: shoutrrr's
// own errors can, so they are replaced by a description.
func service(raw string) (types.Service, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return nil, errors.New("not a URL of the form service://...")
	}
	scheme := strings.ToLower(u.Scheme)
	if !schemeRE.MatchString(scheme) {
		return nil, errors.New("its service name is not valid")
	}
	// A router with a discarding logger: shoutrrr logs custom URLs in full.
	r, err := router.New(discard())
	if err != nil {
		return nil, errors.New("the notification library could not start")
	}
	svc, err := r.Locate(raw)
	switch {
	case errors.Is(err, router.ErrUnknownService):
		return nil, fmt.Errorf("unknown service %q", strings.SplitN(scheme, "+", 2)[0])
	case errors.Is(err, router.ErrCustomURLsNotSupported):
		return nil, fmt.Errorf("service %q takes no custom URL (%s)", strings.SplitN(scheme, "+", 2)[0], scheme)
	case err != nil:
		return nil, fmt.Errorf("not a valid %s URL (check its host, path and query against the service's URL format)", scheme)
	}
	return svc, nil
}

func discard() types.StdLogger { return log.New(io.Discard, "", 0) }

// Options configure a Notifier. The zero value of Timeout takes DefaultTimeout.
type Options struct {
	// Timeout bounds each delivery to one URL.
	Timeout time.Duration
}

// Notifier sends messages to every configured URL. It is safe for concurrent use.
type Notifier struct {
	urls    []string
	svcs    []types.Service
	schemes []string
	timeout time.Duration
}

// New returns a Notifier for urls (as Parse returns them). Its error, like Parse's, names only
// setting and positions.
func New(setting string, urls []string, o Options) (*Notifier, error) {
	n := &Notifier{urls: urls, timeout: o.Timeout}
	if n.timeout <= 0 {
		n.timeout = DefaultTimeout
	}
	var errs []error
	for i, u := range urls {
		svc, err := service(u)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: URL %d of %d: %w", setting, i+1, len(urls), err))
			continue
		}
		n.svcs = append(n.svcs, svc)
		scheme, _, _ := strings.Cut(u, ":")
		n.schemes = append(n.schemes, strings.ToLower(scheme))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return n, nil
}

// Len is the number of URLs.
func (n *Notifier) Len() int {
	if n == nil {
		return 0
	}
	return len(n.svcs)
}

// Send delivers m to every URL at once, each bounded by the timeout and ctx. It returns nil
// when every delivery succeeded, else an error per failed URL naming its position and service,
// with the library's error redacted of the URL and its parts. A nil or empty Notifier sends
// nothing. A delivery that outlives its timeout is abandoned (the library takes no context).
func (n *Notifier) Send(ctx context.Context, m Message) error {
	if n.Len() == 0 {
		return nil
	}
	errs := make([]error, len(n.svcs))
	done := make(chan struct{}, len(n.svcs))
	for i := range n.svcs {
		go func() {
			defer func() { done <- struct{}{} }()
			errs[i] = n.sendOne(ctx, i, m)
		}()
	}
	for range n.svcs {
		<-done
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}

func (n *Notifier) sendOne(ctx context.Context, i int, m Message) error {
	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	params := types.Params{}
	params.SetTitle(m.Title)
	result := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				result <- errors.New("the notification library panicked")
			}
		}()
		result <- n.svcs[i].Send(m.Body, &params)
	}()
	var err error
	select {
	case err = <-result:
	case <-ctx.Done():
		err = errors.New("timed out")
	}
	if err == nil {
		return nil
	}
	return fmt.Errorf("URL %d (%s): %s", i+1, n.schemes[i], Sanitize(err.Error(), n.urls[i]))
}

// urlRE matches anything URL-shaped (scheme://...) in an error text.
var urlRE = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.\-]*://[^\s"']*`)

// Sanitize removes a notification URL from text: every URL-shaped run, then every part of rawURL
// that can carry a credential (user, password, path segments, query values, the whole URL),
// then token-like runs (redact.String). The result is cut to 300 bytes.
func Sanitize(text, rawURL string) string {
	text = urlRE.ReplaceAllString(text, "[URL]")
	secrets := []string{rawURL}
	if u, err := url.Parse(rawURL); err == nil {
		if u.User != nil {
			secrets = append(secrets, u.User.Username())
			if p, ok := u.User.Password(); ok {
				secrets = append(secrets, p, url.QueryEscape(p))
			}
		}
		for _, seg := range strings.Split(u.Path, "/") {
			secrets = append(secrets, seg)
		}
		for _, vs := range u.Query() {
			secrets = append(secrets, vs...)
		}
		secrets = append(secrets, u.RawQuery, u.Fragment)
	}
	// Longest first, so that a part does not leave pieces of a longer one behind.
	for i := range secrets {
		for j := i + 1; j < len(secrets); j++ {
			if len(secrets[j]) > len(secrets[i]) {
				secrets[i], secrets[j] = secrets[j], secrets[i]
			}
		}
	}
	return redact.String(text, 300, secrets...)
}
