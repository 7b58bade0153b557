// Package receiver runs real notification receivers on loopback for tests: a generic JSON
// webhook (what shoutrrr's generic:// URLs post to) and an SMTP server (for smtp:// URLs).
// Each records what it received; tests wait on it with a deadline.
package receiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Post is one webhook request.
type Post struct {
	Path string
	Body map[string]string // the JSON object posted (title, message)
}

// Webhook is a generic JSON webhook receiver.
type Webhook struct {
	srv   *httptest.Server
	posts chan Post
	// Status is what it answers; 0 means 204.
	mu     sync.Mutex
	status int
}

// NewWebhook starts a receiver; Close stops it.
func NewWebhook() *Webhook {
	w := &Webhook{posts: make(chan Post, 64)}
	w.srv = httptest.NewServer(http.HandlerFunc(w.serve))
	return w
}

func (w *Webhook) serve(rw http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	p := Post{Path: r.URL.Path}
	if err == nil {
		err = json.Unmarshal(b, &p.Body)
	}
	if err != nil || r.Method != http.MethodPost {
		http.Error(rw, "want a POST of a JSON object", http.StatusBadRequest)
		return
	}
	w.mu.Lock()
	status := w.status
	w.mu.Unlock()
	w.posts <- p
	if status == 0 {
		status = http.StatusNoContent
	}
	rw.WriteHeader(status)
}

// SetStatus makes later requests answer status (e.g. 500 to test a failed delivery).
func (w *Webhook) SetStatus(status int) {
	w.mu.Lock()
	w.status = status
	w.mu.Unlock()
}

// URL is the shoutrrr URL that posts JSON here, at path (which should start with "/").
func (w *Webhook) URL(path string) string {
	return "generic://" + strings.TrimPrefix(w.srv.URL, "http://") + path + "?template=json&disabletls=yes"
}

// Next returns the next post, or an error after timeout.
func (w *Webhook) Next(timeout time.Duration) (Post, error) {
	select {
	case p := <-w.posts:
		return p, nil
	case <-time.After(timeout):
		return Post{}, errors.New("webhook: no post arrived")
	}
}

// Pending returns the posts received and not yet taken, without waiting.
func (w *Webhook) Pending() []Post {
	var ps []Post
	for {
		select {
		case p := <-w.posts:
			ps = append(ps, p)
		default:
			return ps
		}
	}
}

// Close stops the receiver.
func (w *Webhook) Close() { w.srv.Close() }

// Mail is one message the SMTP server accepted.
type Mail struct {
	From string
	To   []string
	Data string // the raw message, headers included
}

// SMTP is a real SMTP server on loopback requiring PLAIN authentication with User and
// Password (allowed without TLS, on loopback only).
type SMTP struct {
	User, Password string
	srv            *smtp.Server
	ln             net.Listener
	mails          chan Mail
}

// NewSMTP starts a server; Close stops it.
func NewSMTP(user, password string) (*SMTP, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("smtp receiver: listen: %w", err)
	}
	s := &SMTP{User: user, Password: password, ln: ln, mails: make(chan Mail, 64)}
	s.srv = smtp.NewServer(backend{s})
	s.srv.Domain = "localhost"
	s.srv.AllowInsecureAuth = true
	s.srv.ReadTimeout = 10 * time.Second
	s.srv.WriteTimeout = 10 * time.Second
	s.srv.MaxMessageBytes = 1 << 20
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Addr is host:port.
func (s *SMTP) Addr() string { return s.ln.Addr().String() }

// URL is the shoutrrr URL that mails from→to through this server.
func (s *SMTP) URL(from, to string) string {
	return fmt.Sprintf("smtp://%s:%s@%s/?from=%s&to=%s&auth=Plain&encryption=None&usestarttls=no",
		s.User, s.Password, s.Addr(), from, to)
}

// Next returns the next mail, or an error after timeout.
func (s *SMTP) Next(timeout time.Duration) (Mail, error) {
	select {
	case m := <-s.mails:
		return m, nil
	case <-time.After(timeout):
		return Mail{}, errors.New("smtp: no mail arrived")
	}
}

// Pending returns the mails received and not yet taken, without waiting.
func (s *SMTP) Pending() []Mail {
	var ms []Mail
	for {
		select {
		case m := <-s.mails:
			ms = append(ms, m)
		default:
			return ms
		}
	}
}

// Close stops the server.
func (s *SMTP) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

type backend struct{ s *SMTP }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{s: b.s}, nil }

type session struct {
	s      *SMTP
	authed bool
	mail   Mail
}

func (ss *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != ss.s.User || pass != ss.s.Password {
			return errors.New("invalid credentials")
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.mail = Mail{From: from}
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.mail.To = append(ss.mail.To, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.mail.Data = string(b)
	ss.s.mails <- ss.mail
	return nil
}

func (ss *session) Reset()        { ss.mail = Mail{} }
func (ss *session) Logout() error { return nil }
