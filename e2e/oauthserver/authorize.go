package oauthserver

import (
	"crypto/rand"
	"crypto/subtle"
	"html/template"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"
)

const (
	// consentLifetime bounds how long a consent page can be answered.
	consentLifetime = 10 * time.Minute
	csrfCookie      = "oauthserver_csrf"
)

// pendingConsent is an authorization request waiting for the user's answer
// on the consent page. It is used once.
type pendingConsent struct {
	ar      fosite.AuthorizeRequester
	csrf    string
	expires time.Time
}

var accountIDPattern = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`)

func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ar, err := s.provider.NewAuthorizeRequest(ctx, r)
	if err != nil {
		s.provider.WriteAuthorizeError(ctx, w, ar, err)
		return
	}
	if c := s.clients[ar.GetClient().GetID()]; c.RequirePKCE && ar.GetRequestForm().Get("code_challenge") == "" {
		s.provider.WriteAuthorizeError(ctx, w, ar, fosite.ErrInvalidRequest.WithHint("This client must send a PKCE code_challenge."))
		return
	}

	s.mu.Lock()
	mode, granted, account := s.consent, s.grantedScopes, s.accountID
	s.mu.Unlock()

	switch mode {
	case AutoDeny:
		s.provider.WriteAuthorizeError(ctx, w, ar, fosite.ErrAccessDenied.WithHint("The resource owner denied the request."))
	case Interactive:
		s.showConsent(w, r, ar, account)
	default:
		requested := ar.GetRequestedScopes()
		if granted != nil {
			requested = slices.DeleteFunc(slices.Clone(requested), func(sc string) bool { return !slices.Contains(granted, sc) })
		}
		s.approve(w, r, ar, requested, account)
	}
}

// approve grants scopes (a subset of the requested ones) to account and
// redirects back with a code.
func (s *Server) approve(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, scopes []string, account string) {
	ctx := r.Context()
	for _, sc := range scopes {
		if ar.GetRequestedScopes().Has(sc) {
			ar.GrantScope(sc)
		}
	}
	resp, err := s.provider.NewAuthorizeResponse(ctx, ar, &fosite.DefaultSession{Subject: account, Username: account})
	if err != nil {
		s.provider.WriteAuthorizeError(ctx, w, ar, err)
		return
	}
	s.provider.WriteAuthorizeResponse(ctx, w, ar, resp)
}

func (s *Server) showConsent(w http.ResponseWriter, r *http.Request, ar fosite.AuthorizeRequester, account string) {
	// One CSRF token per browser, bound to each pending request: the POST
	// must carry it both in the form and in the cookie.
	csrf := ""
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 26 {
		csrf = c.Value
	} else {
		csrf = rand.Text()
	}
	challenge := rand.Text()

	now := s.now()
	s.mu.Lock()
	for k, p := range s.pending {
		if !now.Before(p.expires) {
			delete(s.pending, k)
		}
	}
	s.pending[challenge] = &pendingConsent{ar: ar, csrf: csrf, expires: now.Add(consentLifetime)}
	s.mu.Unlock()

	http.SetCookie(w, &http.Cookie{
		Name:     csrfCookie,
		Value:    csrf,
		Path:     "/oauth2/",
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
		MaxAge:   int(consentLifetime / time.Second),
	})
	setPageHeaders(w)
	_ = consentPage.Execute(w, consentData{
		ClientID:  ar.GetClient().GetID(),
		Scopes:    ar.GetRequestedScopes(),
		AccountID: account,
		Challenge: challenge,
		CSRF:      csrf,
		Action:    ConsentPath,
	})
}

func (s *Server) handleConsent(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		consentError(w, http.StatusBadRequest, "The form could not be read.")
		return
	}
	challenge := r.PostForm.Get("challenge")
	s.mu.Lock()
	p := s.pending[challenge]
	delete(s.pending, challenge)
	s.mu.Unlock()
	if p == nil || !s.now().Before(p.expires) {
		consentError(w, http.StatusBadRequest, "This consent request is unknown or has expired. Start the connection again.")
		return
	}
	cookie, err := r.Cookie(csrfCookie)
	if err != nil || !equalStrings(cookie.Value, p.csrf) || !equalStrings(r.PostForm.Get("csrf"), p.csrf) {
		consentError(w, http.StatusForbidden, "The consent form failed its CSRF check. Start the connection again.")
		return
	}

	if r.PostForm.Get("decision") != "allow" {
		s.provider.WriteAuthorizeError(r.Context(), w, p.ar, fosite.ErrAccessDenied.WithHint("The resource owner denied the request."))
		return
	}
	account := strings.TrimSpace(r.PostForm.Get("account_id"))
	if account != "" && !accountIDPattern.MatchString(account) {
		consentError(w, http.StatusBadRequest, "The account ID may hold 1 to 64 letters, digits and . _ @ - only. Start the connection again.")
		return
	}
	s.approve(w, r, p.ar, r.PostForm["scope"], account)
}

func equalStrings(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	// No form-action directive: browsers apply it to the redirect that
	// follows the POST, which goes to the client's redirect URI.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
}

func consentError(w http.ResponseWriter, status int, msg string) {
	setPageHeaders(w)
	w.WriteHeader(status)
	_ = errorPage.Execute(w, msg)
}

type consentData struct {
	ClientID  string
	Scopes    []string
	AccountID string
	Challenge string
	CSRF      string
	Action    string
}

var consentPage = template.Must(template.New("consent").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Authorize {{.ClientID}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}
button{padding:.5rem 1.5rem;margin-right:.5rem}label{display:block;margin:.3rem 0}</style></head>
<body><h1>Development OAuth server</h1>
<p>The application <strong>{{.ClientID}}</strong> asks for access to your account.</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="challenge" value="{{.Challenge}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<fieldset><legend>Scopes (untick to refuse one)</legend>
{{range .Scopes}}<label><input type="checkbox" name="scope" value="{{.}}" checked> {{.}}</label>
{{else}}<p>No scopes requested.</p>{{end}}</fieldset>
<p><label>Account ID <input name="account_id" value="{{.AccountID}}" maxlength="64"></label></p>
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form></body></html>
`))

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Consent error</title></head>
<body><h1>Development OAuth server</h1><p>{{.}}</p></body></html>
`))
