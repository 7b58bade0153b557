package consent

import (
	"bytes"
	"errors"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/freshtoken/freshtoken/internal/redact"
	"github.com/freshtoken/freshtoken/internal/store"
	"github.com/freshtoken/freshtoken/internal/tokenclient"
)

// Bounds of what is shown and logged.
const (
	maxShown  = 300 // provider text shown on a page
	maxLogged = 500 // error detail in a log line
	maxName   = 64  // an unknown connection name from the path
)

// pageError is a failed request: Title, Message and Details are shown to the person (escaped by
// the template); LogMsg and Err are logged, Err after redaction.
type pageError struct {
	Status  int
	Title   string
	Message string
	Details []string
	LogMsg  string
	Err     error
	// secrets are masked from Err's text on top of the request's own (see requestSecrets).
	secrets []string
}

func (e *pageError) Error() string {
	if e.Err == nil {
		return e.LogMsg
	}
	return e.LogMsg + ": " + e.Err.Error()
}

func (e *pageError) Unwrap() error { return e.Err }

// fail is the one place a failed request is logged and answered.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, op, name string, err error) {
	var pe *pageError
	if !errors.As(err, &pe) {
		pe = &pageError{
			Status: http.StatusInternalServerError, Title: "Something went wrong",
			Message: "The request failed unexpectedly. Try again.", LogMsg: op + " failed", Err: err,
		}
	}
	ev := h.log.Warn()
	if pe.Status >= 500 {
		ev = h.log.Error()
	}
	ev = ev.Str("op", op).Str("connection", redact.Truncate(name, maxName)).Int("status", pe.Status)
	if pe.Err != nil {
		secrets := append(requestSecrets(r, name), pe.secrets...)
		ev = ev.Str("detail", redact.String(pe.Err.Error(), maxLogged, secrets...))
	}
	ev.Msg(pe.LogMsg)
	h.render(w, pe.Status, &page{Title: pe.Title, Paragraphs: append([]string{pe.Message}, pe.Details...)})
}

// page is what a response page shows.
type page struct {
	Title      string
	Paragraphs []string
	ListTitle  string
	List       []string
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{.Title}} - freshtoken</title>
<style>body{font-family:system-ui,sans-serif;max-width:42rem;margin:3rem auto;padding:0 1rem;line-height:1.5}code,li{overflow-wrap:anywhere}</style>
</head>
<body>
<h1>{{.Title}}</h1>
{{range .Paragraphs}}<p>{{.}}</p>
{{end}}{{if .List}}<p>{{.ListTitle}}</p>
<ul>
{{range .List}}<li><code>{{.}}</code></li>
{{end}}</ul>
{{end}}</body>
</html>
`))

// pageCSP allows nothing but the page's own inline style.
const pageCSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// render writes p with the headers every page carries. The callback URL holds the code, so no
// page may leak it through a Referer, a cache or a frame.
func (h *Handler) render(w http.ResponseWriter, status int, p *page) {
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, p); err != nil {
		h.log.Error().Str("detail", err.Error()).Msg("render page")
		buf.Reset()
		buf.WriteString("freshtoken: the page could not be rendered\n")
		status = http.StatusInternalServerError
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Content-Security-Policy", pageCSP)
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// successPage tells what was connected, never a token.
func successPage(name, title string, tok *tokenclient.Token, t store.Tokens, missing []string, noRefresh bool, preset string) *page {
	p := &page{Title: name + " is connected"}
	if t.ExpiresAt.IsZero() {
		p.Paragraphs = append(p.Paragraphs, title+" did not say when the access token expires.")
	} else {
		p.Paragraphs = append(p.Paragraphs, "The access token expires at "+t.ExpiresAt.UTC().Format(time.RFC3339)+
			"; freshtoken refreshes it before then.")
	}
	if tok.AccountID != "" {
		p.Paragraphs = append(p.Paragraphs, "Account: "+tok.AccountID+".")
	}
	if noRefresh {
		msg := "Warning: " + title + " issued no refresh token, so this connection cannot be refreshed and needs consent again when the access token expires."
		if preset == "google" {
			msg += " Google issues one only with access_type=offline and prompt=consent, which freshtoken's google preset asks for; check any overrides of the authorize URL."
		}
		p.Paragraphs = append(p.Paragraphs, msg)
	}
	if len(missing) > 0 {
		p.ListTitle = "These scopes were asked for but not granted (unticked on the consent page?). " +
			"Open /api/authorize/" + name + " again and keep them ticked if they are needed:"
		p.List = missing
	}
	if len(p.List) == 0 && strings.TrimSpace(t.Scope) != "" {
		p.Paragraphs = append(p.Paragraphs, "All requested scopes were granted.")
	}
	return p
}
