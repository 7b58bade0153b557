package tokenclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/freshtoken/freshtoken/internal/provider"
	"github.com/freshtoken/freshtoken/internal/redact"
	"golang.org/x/oauth2"
)

// Class says what a failed token request means for the stored pair.
type Class string

const (
	// Revoked: the grant or the client is no longer accepted (invalid_grant, invalid_client,
	// 410 Gone). Retrying cannot help; a person must consent again or fix the settings.
	Revoked Class = "revoked"
	// Transient: the provider did not act on the request (429, 5xx, connection never made,
	// an error answer we could not read). The stored pair is still good: retry later.
	Transient Class = "transient"
	// Ambiguous: the request reached the provider and no usable answer came back. The
	// provider may have rotated the refresh token: never resend blindly.
	Ambiguous Class = "ambiguous"
)

// maxDetail bounds the redacted provider detail kept in an Error; maxCode its error code.
const (
	maxDetail = 300
	maxCode   = 100
)

// Error is a failed token request, classified. Its text is safe to log, store and show: it
// holds no token, code, verifier or client secret.
type Error struct {
	Op         string // "refresh" or "exchange"
	Class      Class
	StatusCode int    // the provider's HTTP status; 0 when none arrived
	Code       string // the OAuth2 error code in any dialect (invalid_grant, ...), when one was read
	// Detail is the redacted description from the provider or the transport. When a provider
	// with short-lived codes refuses one, it ends with a hint saying so.
	Detail     string
	RetryAfter time.Duration
	// Gone is set when the provider's API is shut down (HTTP 410 from a preset with Gone).
	Gone string
	err  error
}

// Error is "op: class[: HTTP status][: gone][: code][: detail]". What to do about a shut-down
// API comes before the provider's own words, so that a text cut to a few hundred bytes keeps it.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", e.Op, e.Class)
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.StatusCode)
	}
	if e.Gone != "" {
		fmt.Fprintf(&b, ": %s", e.Gone)
	}
	if e.Code != "" {
		fmt.Fprintf(&b, ": %s", e.Code)
	}
	if e.Detail != "" {
		fmt.Fprintf(&b, ": %s", e.Detail)
	}
	return b.String()
}

// Unwrap gives the underlying transport or library error, for errors.Is (context deadlines).
// Its own text may hold secrets; Error never prints it unredacted.
func (e *Error) Unwrap() error { return e.err }

// ClassOf returns the class of a token request error; errors not from this package are
// Transient (nothing was sent).
func ClassOf(err error) Class {
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	return Transient
}

// revokedCodes are OAuth2 error codes after which retrying the same request cannot succeed.
var revokedCodes = map[string]bool{
	"invalid_grant":       true,
	"invalid_client":      true,
	"unauthorized_client": true,
	"invalid_token":       true,
	"expired_token":       true,
	"access_denied":       true,
}

// observation is what the transport saw of one token request.
type observation struct {
	wrote     bool // the whole request was written to the connection
	gotStatus int  // the status of the response, 0 when none arrived
}

// classify turns an error from x/oauth2 into an *Error. secrets are masked from every text.
func classify(op string, p provider.Preset, err error, obs observation, now time.Time, secrets []string) *Error {
	e := &Error{Op: op, err: err}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		e.StatusCode = status
		code, detail := errorBody(p.Dialect, re)
		// The code comes from the provider's body as free text (Withings puts a sentence in
		// "error"): it is printed by Error, so it is redacted like the detail.
		e.Code = redact.String(code, maxCode, secrets...)
		e.Detail = redact.String(detail, maxDetail, secrets...)
		switch {
		case status == http.StatusGone:
			e.Class = Revoked
			e.Gone = p.Gone
			if e.Gone == "" {
				e.Gone = "the provider answered 410 Gone: its API or this endpoint is shut down"
			}
		case status == http.StatusTooManyRequests:
			e.Class = Transient
			if re.Response != nil {
				e.RetryAfter = retryAfter(re.Response.Header.Get("Retry-After"), now)
				if e.RetryAfter == 0 && p.Dialect == provider.DialectStrava {
					e.RetryAfter = stravaRetryAfter(re.Response.Header, now)
				}
			}
		case status == http.StatusBadGateway || status == http.StatusGatewayTimeout:
			// A gateway answers for an origin that may have acted on the request before the
			// gateway gave up on it: the refresh token may have rotated. The origin's own
			// 500 or 503 says it did not issue tokens.
			e.Class = Ambiguous
		case status >= 500:
			e.Class = Transient
			if re.Response != nil {
				// A 503 during maintenance often says when to come back.
				e.RetryAfter = retryAfter(re.Response.Header.Get("Retry-After"), now)
			}
		case revokedCodes[code] || status == http.StatusUnauthorized:
			e.Class = Revoked
		default:
			// A 4xx we cannot read (an HTML page, an unknown code): the provider refused
			// this request without issuing tokens, so the stored pair is intact.
			e.Class = Transient
		}
		addCodeHint(e, p)
		return e
	}
	e.Detail = redact.String(err.Error(), maxDetail, secrets...)
	switch {
	case obs.gotStatus >= 200 && obs.gotStatus < 300:
		// A success we could not read: the provider may have rotated.
		e.StatusCode = obs.gotStatus
		e.Class = Ambiguous
		e.Detail = "the provider answered " + strconv.Itoa(obs.gotStatus) + " but the token response could not be read: " + e.Detail
	case obs.wrote:
		e.Class = Ambiguous
	default:
		e.Class = Transient
	}
	return e
}

// addCodeHint ends the detail of a refused code exchange with the provider's code lifetime,
// when it is short enough for a person to miss (Withings: 30 seconds).
func addCodeHint(e *Error, p provider.Preset) {
	if e.Op != "exchange" || e.Class != Revoked || e.Code != "invalid_grant" || p.CodeLifetime <= 0 {
		return
	}
	name := p.Title
	if name == "" {
		name = p.Name
	}
	hint := name + " authorization codes expire " + humanDuration(p.CodeLifetime) +
		" after the consent page: start again and let the browser return without pausing"
	if e.Detail == "" {
		e.Detail = hint
		return
	}
	e.Detail += "; " + hint
}

// humanDuration writes d for people: "30 seconds", "10 minutes", else Go's form.
func humanDuration(d time.Duration) string {
	var n int64
	var unit string
	switch {
	case d%time.Minute == 0:
		n, unit = int64(d/time.Minute), "minute"
	case d%time.Second == 0:
		n, unit = int64(d/time.Second), "second"
	default:
		return d.String()
	}
	if n != 1 {
		unit += "s"
	}
	return strconv.FormatInt(n, 10) + " " + unit
}

// ouraTitles map the RFC 7807 titles of Oura's error-handling documentation that name a dead
// grant or client onto OAuth2 codes, for answers that carry no "error" field.
var ouraTitles = map[string]string{
	"token already used or revoked": "invalid_grant",
	"expired token":                 "invalid_grant",
	"invalid client id":             "invalid_client",
}

// errorBody reads the error code and description from a provider's error body in its dialect.
func errorBody(d provider.Dialect, re *oauth2.RetrieveError) (code, detail string) {
	code, detail = re.ErrorCode, re.ErrorDescription
	var body struct {
		Error            any    `json:"error"`
		ErrorDescription string `json:"error_description"`
		Message          string `json:"message"`
		Title            string `json:"title"`  // RFC 7807 (Oura)
		Detail           string `json:"detail"` // RFC 7807 (Oura)
		Errors           []struct {
			ErrorType string `json:"errorType"`
			Message   string `json:"message"`
			Resource  string `json:"resource"`
			Field     string `json:"field"`
			Code      string `json:"code"`
		} `json:"errors"`
	}
	if json.Unmarshal(re.Body, &body) != nil {
		if detail == "" {
			detail = firstLine(string(re.Body))
		}
		return code, detail
	}
	if s, ok := body.Error.(string); ok && code == "" {
		code = s
	}
	if detail == "" {
		detail = body.ErrorDescription
	}
	for _, item := range body.Errors {
		switch {
		case d == provider.DialectFitbit && item.ErrorType != "":
			if code == "" {
				code = item.ErrorType
			}
			if detail == "" {
				detail = item.Message
			}
		case item.Code != "":
			// Strava: {"resource":"RefreshToken","field":"refresh_token","code":"invalid"}.
			if code == "" && item.Code == "invalid" && (item.Field == "refresh_token" || item.Field == "code") {
				code = "invalid_grant"
			}
			if code == "" && (item.Field == "client_id" || item.Field == "client_secret") {
				code = "invalid_client"
			}
			if detail == "" {
				detail = item.Resource + " " + item.Field + " " + item.Code
			}
		}
	}
	if code == "" && d == provider.DialectOura {
		code = ouraTitles[strings.ToLower(strings.TrimSpace(body.Title))]
	}
	for _, s := range []string{body.Message, body.Detail, body.Title} {
		if detail == "" {
			detail = s
		}
	}
	return code, detail
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	return s
}

// maxSeconds is the largest whole number of seconds a time.Duration holds.
const maxSeconds = int64(math.MaxInt64 / time.Second)

// retryAfter reads a Retry-After header (seconds or an HTTP date); zero when absent or bad.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil && secs >= 0 {
		if secs > maxSeconds {
			secs = maxSeconds // time.Duration would overflow
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// stravaRetryAfter is the wait after a Strava 429, which carries no Retry-After: Strava's
// 15-minute limit resets at the next quarter hour and its daily limit at midnight UTC;
// X-RateLimit-Limit and X-RateLimit-Usage ("15-minute,daily") say which one was reached.
func stravaRetryAfter(h http.Header, now time.Time) time.Duration {
	now = now.UTC()
	limit, usage := countPair(h.Get("X-RateLimit-Limit")), countPair(h.Get("X-RateLimit-Usage"))
	if limit[1] > 0 && usage[1] >= limit[1] {
		midnight := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
		return midnight.Sub(now)
	}
	return now.Truncate(15 * time.Minute).Add(15 * time.Minute).Sub(now)
}

// countPair reads "a,b" as two counts; a part that is no count is 0.
func countPair(v string) [2]int64 {
	var out [2]int64
	a, b, _ := strings.Cut(v, ",")
	for i, s := range []string{a, b} {
		if n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil && n > 0 {
			out[i] = n
		}
	}
	return out
}
