package tokenclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/freshtoken/freshtoken/internal/provider"
	"github.com/freshtoken/freshtoken/internal/redact"
	"golang.org/x/oauth2"
)

// maxEnvelope bounds the Withings answer read; a token envelope is a few hundred bytes.
const maxEnvelope = 1 << 20

// Withings is the token client of Withings' requesttoken webservice, which x/oauth2 cannot
// speak: both calls carry action=requesttoken, every answer is wrapped as
// {"status":0,"body":{...}}, and failures come with HTTP 200 and a non-zero status, such as
// {"status":503,"body":{},"error":"Invalid Params: invalid refresh_token"}. userid arrives as a
// number or a string. The consent page URL is standard OAuth2. It is safe for concurrent use.
type Withings struct {
	conn Options
	http *http.Client
	now  func() time.Time
	std  *Client // builds the consent page URL
}

// NewWithings returns the Withings client for o.
func NewWithings(o Options) *Withings {
	o = o.withDefaults()
	return &Withings{conn: o, http: o.HTTPClient, now: o.Now, std: New(o)}
}

// AuthCodeURL is the consent page URL for state (scopes comma-joined, as Withings wants them).
func (w *Withings) AuthCodeURL(state, verifier string) string {
	return w.std.AuthCodeURL(state, verifier)
}

// UsesPKCE says whether Authorize must create a verifier: only when a setting asks for it, as
// Withings documents no PKCE.
func (w *Withings) UsesPKCE() bool { return w.conn.Preset.PKCE }

// Exchange trades an authorization code, valid 30 seconds, for the first token pair.
func (w *Withings) Exchange(ctx context.Context, code, verifier string) (*Token, error) {
	form := url.Values{
		"grant_type":   {"authorization_code"},
		"code":         {code},
		"redirect_uri": {w.conn.RedirectURL},
	}
	if verifier != "" {
		form.Set("code_verifier", verifier)
	}
	return w.request(ctx, "exchange", form, w.conn.Preset.ExchangeParams, "", code, verifier)
}

// Refresh sends refreshToken once and returns the new pair. It never retries.
func (w *Withings) Refresh(ctx context.Context, refreshToken string) (*Token, error) {
	form := url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {refreshToken},
	}
	return w.request(ctx, "refresh", form, w.conn.Preset.RefreshParams, refreshToken, refreshToken)
}

// request posts form (with the preset's extra parameters and the client credentials) to the
// token URL and reads the envelope. sent is the refresh token sent, "" for an exchange;
// secrets are masked from every error text.
func (w *Withings) request(ctx context.Context, op string, form url.Values, extra map[string]string, sent string, secrets ...string) (*Token, error) {
	p := w.conn.Preset
	secrets = append(secrets, w.conn.ClientSecret)
	for k, v := range extra {
		form.Set(k, v)
	}
	header := p.AuthStyle == oauth2.AuthStyleInHeader
	if !header {
		form.Set("client_id", w.conn.ClientID)
		form.Set("client_secret", w.conn.ClientSecret)
	}
	ctx, cancel := w.conn.bounded(ctx)
	defer cancel()
	ctx, rec := traced(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, &Error{Op: op, Class: Transient, Detail: redact.String("build the token request: "+err.Error(), maxDetail, secrets...), err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if header {
		req.SetBasicAuth(url.QueryEscape(w.conn.ClientID), url.QueryEscape(w.conn.ClientSecret))
	}

	resp, err := w.http.Do(req)
	if err != nil {
		return nil, classify(op, p, err, rec.get(), w.now(), secrets)
	}
	defer resp.Body.Close()
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxEnvelope+1))
	if resp.StatusCode != http.StatusOK {
		// Withings answers 200 even to errors: anything else is a gateway, a redirect or a
		// shutdown, classified like any provider's HTTP error.
		return nil, classify(op, p, &oauth2.RetrieveError{Response: resp, Body: body}, rec.get(), w.now(), secrets)
	}
	if rerr == nil && len(body) > maxEnvelope {
		rerr = errors.New("the answer is larger than 1 MiB")
	}
	if rerr != nil {
		return nil, &Error{Op: op, Class: Ambiguous, StatusCode: resp.StatusCode,
			Detail: redact.String("Withings answered 200 but the answer could not be read: "+rerr.Error(), maxDetail, secrets...), err: rerr}
	}
	return w.envelope(op, resp, body, sent, secrets)
}

// envelope reads a 200 answer: status 0 is a token, any other status a classified failure,
// and an answer that is no envelope is ambiguous (Withings may have rotated the refresh token).
func (w *Withings) envelope(op string, resp *http.Response, raw []byte, sent string, secrets []string) (*Token, error) {
	ambiguous := func(why string) error {
		return &Error{Op: op, Class: Ambiguous, StatusCode: resp.StatusCode,
			Detail: "Withings answered 200 but " + why}
	}
	var env struct {
		Status json.RawMessage `json:"status"`
		Body   json.RawMessage `json:"body"`
		Error  json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, ambiguous("the answer is not a JSON envelope")
	}
	status, ok := jsonInt(env.Status)
	if !ok {
		return nil, ambiguous("the envelope has no numeric status")
	}
	if status != 0 {
		return nil, withingsError(op, w.conn.Preset, status, jsonText(env.Error), resp, w.now(), secrets)
	}

	var b map[string]any
	dec := json.NewDecoder(bytes.NewReader(env.Body))
	dec.UseNumber()
	if err := dec.Decode(&b); err != nil || b == nil {
		return nil, ambiguous("status 0 came without a token body")
	}
	now := w.now()
	t := &Token{
		AccessToken:  stringField(b, "access_token"),
		TokenType:    stringField(b, "token_type"),
		RefreshToken: stringField(b, "refresh_token"),
		AccountID:    idField(b[w.conn.Preset.AccountIDPath]),
	}
	if t.AccessToken == "" {
		return nil, ambiguous("status 0 came without an access_token")
	}
	t.Rotated = t.RefreshToken != "" && t.RefreshToken != sent
	if t.RefreshToken == "" {
		t.RefreshToken = sent
	}
	if secs, ok := number(jsonValue(b["expires_in"])); ok && secs > 0 && secs <= float64(maxSeconds) {
		t.Expiry = now.Add(time.Duration(secs) * time.Second)
	}
	t.RefreshExpiry = refreshExpiry(w.conn.Preset, 0, false, sent == "" && t.RefreshToken != "", t.Rotated, now)
	if s, ok := b["scope"].(string); ok {
		t.Scope = provider.SplitScopes(s)
	}
	return t, nil
}

// withingsError classifies a non-zero envelope status. Withings' status list (API reference,
// "Response status"): 100-102, 200 and 401 authentication failed, 214, 277 and 2553
// unauthorized, 601 too many requests, 522 timeout, 2554 wrong action, 2555 unknown error, 503
// and a long list of "invalid params". The requesttoken call reports a dead refresh token or
// code as status 503 with "Invalid Params: invalid refresh_token" (or "invalid code"), so the
// text decides between a dead grant and a malformed request: this is the one place that reads
// Withings' error text.
func withingsError(op string, p provider.Preset, status int, text string, resp *http.Response, now time.Time, secrets []string) *Error {
	e := &Error{Op: op, StatusCode: resp.StatusCode}
	lower := strings.ToLower(text)
	switch {
	case strings.Contains(lower, "refresh_token") || strings.Contains(lower, "invalid code") || strings.Contains(lower, "invalid_grant"):
		e.Code = "invalid_grant"
	case strings.Contains(lower, "client_id") || strings.Contains(lower, "client_secret") || strings.Contains(lower, "invalid_client"):
		e.Code = "invalid_client"
	}
	detail := fmt.Sprintf("Withings status %d", status)
	if text != "" {
		detail += ": " + text
	}
	e.Detail = redact.String(detail, maxDetail, secrets...)

	switch {
	case status == 601:
		e.Class = Transient
		e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), now)
	case e.Code != "", withingsAuthFailed[status]:
		e.Class = Revoked
	case op == "exchange":
		// Withings refused the code: it is single use, so only a new consent can help.
		e.Class = Revoked
	default:
		// Withings did not act on the request (a server error, or parameters it did not like
		// that name no token): the stored pair is intact.
		e.Class = Transient
	}
	addCodeHint(e, p)
	return e
}

// withingsAuthFailed are the statuses that say the client or the grant is not accepted.
var withingsAuthFailed = map[int]bool{100: true, 101: true, 102: true, 200: true, 401: true, 214: true, 277: true, 2553: true}

// jsonInt reads a JSON number or numeric string holding an integer.
func jsonInt(raw json.RawMessage) (int, bool) {
	v := jsonValue(raw)
	f, ok := number(v)
	if !ok || f != float64(int(f)) {
		return 0, false
	}
	return int(f), true
}

// jsonValue decodes raw (or passes a decoded json.Number through) into a string, float64 or
// other plain value; nil when it is absent or broken.
func jsonValue(v any) any {
	switch x := v.(type) {
	case json.RawMessage:
		if len(x) == 0 {
			return nil
		}
		dec := json.NewDecoder(bytes.NewReader(x))
		dec.UseNumber()
		var out any
		if dec.Decode(&out) != nil {
			return nil
		}
		return jsonValue(out)
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return nil
		}
		return f
	}
	return v
}

// jsonText is the envelope's error field as text: a string as is, anything else as JSON.
func jsonText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	return string(raw)
}

func stringField(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// idField reads an account id given as a JSON number (every digit kept) or a string.
func idField(v any) string {
	switch x := v.(type) {
	case json.Number:
		return x.String()
	case string:
		return x
	}
	return ""
}
