package statuspage

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/freshtoken/freshtoken/internal/human"
	"github.com/freshtoken/freshtoken/internal/redact"
	"github.com/rs/zerolog"
)

// Options configure the page handler. Now defaults to time.Now.
type Options struct {
	Store       Lister
	Connections []Connection
	Now         func() time.Time
	Log         zerolog.Logger
	// Timeout bounds the table read. Default 15 s.
	Timeout time.Duration
}

// Handler serves the status page: HTML, or JSON when the request sends
// Accept: application/json or ?format=json. The query parameters connection, state,
// continuation and prev (the HTML's trail of earlier pages) select what it shows (see
// ParseQuery); a bad one is answered 400, an unknown connection 404. It reads the table once per
// request without many-account connections, and a few times with them (see BuildQuery). Every
// answer is sent with a Content-Security-Policy that forbids framing and outside sources,
// Cache-Control: no-store and Referrer-Policy: no-referrer. The caller checks the function
// key before calling it (the Functions host does, with authLevel function).
type Handler struct {
	o   Options
	csp string
}

// NewHandler returns the handler.
func NewHandler(o Options) *Handler {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
	sum := sha256.Sum256([]byte(pageCSS))
	csp := "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; " +
		"img-src 'none'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
	return &Handler{o: o, csp: csp}
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", h.csp)
	hd.Set("Cache-Control", "no-store")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Vary", "Accept")
	wantJSON := WantsJSON(r)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		h.fail(w, wantJSON, http.StatusMethodNotAllowed, "Only GET is supported here.")
		return
	}
	ctx, cancel := contextWithTimeout(r, h.o.Timeout)
	defer cancel()
	q, err := ParseQuery(r.URL.Query())
	if err == nil {
		err = checkTrail(r.URL.Query().Get("prev"), q)
	}
	var m Model
	if err == nil {
		m, err = BuildQuery(ctx, h.o.Store, h.o.Connections, q, h.o.Now())
	}
	switch {
	case errors.Is(err, ErrBadQuery):
		h.fail(w, wantJSON, http.StatusBadRequest, queryMessage(err))
		return
	case errors.Is(err, ErrUnknownConnection):
		h.fail(w, wantJSON, http.StatusNotFound, "No connection of that name is configured.")
		return
	case err != nil:
		h.o.Log.Error().Str("error", redact.String(err.Error(), 300)).Msg("status page: the token table could not be read")
		h.fail(w, wantJSON, http.StatusServiceUnavailable, "The token table could not be read. Try again in a minute.")
		return
	}
	if wantJSON {
		writeJSON(w, http.StatusOK, m)
		return
	}
	var b bytes.Buffer
	if err := pageTemplate.Execute(&b, h.view(m, FunctionKey(r), q, r.URL.Query().Get("prev"))); err != nil {
		h.o.Log.Error().Str("error", err.Error()).Msg("status page: render")
		h.fail(w, false, http.StatusInternalServerError, "The page could not be rendered.")
		return
	}
	hd.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.Bytes())
}

// WantsJSON says whether r asks for the JSON form.
func WantsJSON(r *http.Request) bool {
	if f := r.URL.Query().Get("format"); f != "" {
		return strings.EqualFold(f, "json")
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(mt), "application/json") {
			return true
		}
	}
	return false
}

// keyRE is what a function key looks like; anything else is not carried into links.
var keyRE = regexp.MustCompile(`^[A-Za-z0-9_\-=+/.~]{1,256}$`)

// FunctionKey returns the function key r was sent with (the code query parameter, else the
// x-functions-key header), or "" when there is none or it does not look like a key.
func FunctionKey(r *http.Request) string {
	k := r.URL.Query().Get("code")
	if k == "" {
		k = r.Header.Get("x-functions-key")
	}
	if !keyRE.MatchString(k) {
		return ""
	}
	return k
}

// withKey returns authorizeURL with code=key added to its query ("" key: unchanged).
func withKey(authorizeURL, key string) string {
	if key == "" {
		return authorizeURL
	}
	u, err := url.Parse(authorizeURL)
	if err != nil {
		return authorizeURL
	}
	q := u.Query()
	q.Set("code", key)
	u.RawQuery = q.Encode()
	return u.String()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"the status could not be encoded"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func (h *Handler) fail(w http.ResponseWriter, wantJSON bool, status int, msg string) {
	if wantJSON {
		writeJSON(w, status, map[string]string{"error": msg})
		return
	}
	var b bytes.Buffer
	if err := errorTemplate.Execute(&b, struct {
		CSS            template.CSS
		Title, Message string
	}{template.CSS(pageCSS), http.StatusText(status), msg}); err != nil {
		b.Reset()
		b.WriteString(template.HTMLEscapeString(msg))
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// view is what the template shows.
type view struct {
	CSS         template.CSS
	Generated   string
	Summary     string
	Connections []connView
	// AllURL links back to every connection when the page shows one.
	AllURL string
}

type connView struct {
	Status
	StateWords, StateClass, Symbol string
	Expires, Success, Failure      timeView
	Next, Deadline                 timeView
	Button, ButtonURL              string
	// Account: an account listed under its connection; Many: a many-account connection.
	Account bool
	Many    *manyView
}

type timeView struct {
	Known    bool
	ISO, At  string
	Relative string
}

func (h *Handler) view(m Model, key string, q Query, prev string) view {
	now := m.GeneratedAt
	v := view{CSS: template.CSS(pageCSS), Generated: stamp(now)}
	counts := m.Counts()
	var parts []string
	for _, s := range []State{OK, Retrying, NeedsConsent, NotConnected} {
		if n := counts[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, strings.ToLower(s.Words())))
		}
	}
	noun := "connections"
	if len(m.Connections) == 1 {
		noun = "connection"
	}
	v.Summary = fmt.Sprintf("%d %s", len(m.Connections), noun)
	if len(parts) > 0 {
		v.Summary += ": " + strings.Join(parts, ", ")
	}
	for _, s := range m.Connections {
		c := h.connView(s, key, now)
		if s.Accounts != nil {
			c.Button, c.ButtonURL = "", ""
			c.Many = h.manyView(s, key, prev, func(a Status) connView {
				v := h.connView(a, key, now)
				v.Account = true
				return v
			})
		}
		v.Connections = append(v.Connections, c)
	}
	if q.Connection != "" {
		v.AllURL = withKey("?", key)
	}
	return v
}

func (h *Handler) connView(s Status, key string, now time.Time) connView {
	c := connView{Status: s, StateWords: s.State.Words(), StateClass: strings.ReplaceAll(string(s.State), "_", "-")}
	c.Symbol = map[State]string{OK: "✓", Retrying: "↻", NeedsConsent: "!", NotConnected: "–"}[s.State]
	c.Expires = tv(s.AccessTokenExpiresAt, now)
	c.Success = tv(s.LastSuccess, now)
	c.Failure = tv(s.LastFailure, now)
	c.Next = tv(s.NextAttempt, now)
	c.Deadline = tv(s.RefreshDeadline, now)
	c.Button = "Reconnect"
	if s.State == NotConnected {
		c.Button = "Connect"
	}
	c.ButtonURL = withKey(s.AuthorizeURL, key)
	return c
}

func tv(t Time, now time.Time) timeView {
	if t.IsZero() {
		return timeView{}
	}
	return timeView{Known: true, ISO: t.UTC().Format(time.RFC3339), At: stamp(t.Time), Relative: human.Relative(t.Time, now)}
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }
