package simulate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/freshtoken/freshtoken/internal/provider"
)

// Provider is one provider's token endpoint as an http.RoundTripper: it keeps grants, refresh
// tokens and access tokens, applies the model's rotation rules and the world's faults, and
// answers in the preset's dialect. It is the truth the figures are measured against: a stored
// access token counts as valid only while the provider would accept it.
type Provider struct {
	m      Model
	faults Faults
	// Latency is how long the provider takes to answer.
	Latency time.Duration

	mu       sync.Mutex
	rng      *rand.Rand
	seq      int
	grants   map[int]*grant
	refresh  map[string]*refreshToken
	access   map[string]*accessToken
	requests int         // refresh requests received
	lost     []time.Time // answers lost after the provider acted
}

type grant struct {
	id       int
	deadline time.Time // the refresh token's deadline from consent; zero: none
	revoked  time.Time // zero: alive
	latestAT string
}

type refreshToken struct {
	grant     int
	expires   time.Time // zero: never
	dead      time.Time // zero: alive; set when rotated out (strict) or its grace ended
	successor string    // the refresh token issued in exchange for it
	rotatedAt time.Time
}

type accessToken struct {
	grant   int
	expires time.Time // zero: never
	revoked time.Time
	used    bool
	from    string // the refresh token whose refresh issued it
}

// NewProvider returns a provider following m in a world with faults; rng draws the
// per-request faults.
func NewProvider(m Model, faults Faults, rng *rand.Rand) *Provider {
	return &Provider{m: m, faults: faults, Latency: 300 * time.Millisecond, rng: rng,
		grants: map[int]*grant{}, refresh: map[string]*refreshToken{}, access: map[string]*accessToken{}}
}

// Issued is a pair handed out at a consent.
type Issued struct {
	AccessToken, RefreshToken string
	Expiry, RefreshExpiry     time.Time
}

// Available says whether the provider answers at all at now (a person's consent needs it).
func (p *Provider) Available(now time.Time) bool {
	return !p.faults.Provider503.Contains(now) && !p.faults.Provider429.Contains(now)
}

// Consent starts a new grant, as a person's consent and code exchange do.
func (p *Provider) Consent(now time.Time) Issued {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	g := &grant{id: p.seq}
	if p.m.RefreshLifetime > 0 && p.m.FromConsent {
		g.deadline = now.Add(p.m.RefreshLifetime)
	}
	p.grants[g.id] = g
	at, exp := p.newAccess(g, now, "")
	out := Issued{AccessToken: at, Expiry: exp}
	if !p.m.NoRefresh() {
		out.RefreshToken = p.newRefresh(g, now)
		out.RefreshExpiry = p.refresh[out.RefreshToken].expires
		if !g.deadline.IsZero() {
			out.RefreshExpiry = g.deadline
		}
	}
	return out
}

func (p *Provider) token(kind string) string {
	p.seq++
	return fmt.Sprintf("%s-%s-%06d-%08x", p.m.Preset.Name, kind, p.seq, p.rng.Uint32())
}

func (p *Provider) newAccess(g *grant, now time.Time, from string) (string, time.Time) {
	at := p.token("at")
	var exp time.Time
	if p.m.Lifetime > 0 {
		exp = now.Add(p.m.Lifetime)
	}
	p.access[at] = &accessToken{grant: g.id, expires: exp, from: from}
	g.latestAT = at
	return at, exp
}

func (p *Provider) newRefresh(g *grant, now time.Time) string {
	rt := p.token("rt")
	r := &refreshToken{grant: g.id}
	if p.m.RefreshLifetime > 0 && !p.m.FromConsent {
		r.expires = now.Add(p.m.RefreshLifetime)
	}
	p.refresh[rt] = r
	return rt
}

// Use records that a consumer used access token at at now (the app reading the token table):
// under RotateGrace it ends the grace of the refresh token it was issued for.
func (p *Provider) Use(at string, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.access[at]
	if !ok || a.used {
		return
	}
	a.used = true
	if p.m.Rotation == RotateGrace && a.from != "" {
		if old := p.refresh[a.from]; old != nil && old.dead.IsZero() {
			old.dead = now
		}
	}
}

// ValidUntil is when access token at stops being accepted: its expiry or its revocation,
// whichever comes first; the zero time means never. ok is false for a token never issued.
func (p *Provider) ValidUntil(at string) (until time.Time, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.access[at]
	if !ok {
		return time.Time{}, false
	}
	until = a.expires
	if g := p.grants[a.grant]; !g.revoked.IsZero() && (until.IsZero() || g.revoked.Before(until)) {
		until = g.revoked
	}
	if !a.revoked.IsZero() && (until.IsZero() || a.revoked.Before(until)) {
		until = a.revoked
	}
	return until, true
}

// Requests is the number of refresh requests received.
func (p *Provider) Requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests
}

// Lost lists when an answer was lost after the provider acted on the refresh.
func (p *Provider) Lost() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.lost...)
}

// errReset is a connection reset after the whole request was written.
var errReset = errors.New("read tcp 10.0.0.2:51234->203.0.113.7:443: read: connection reset by peer")

// RoundTrip answers one token request. The whole request counts as written (the trace of the
// token client hears so), so any failure without an answer is ambiguous to the client.
func (p *Provider) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<16))
	req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("simulate: read the request: %w", err)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return p.respond(req, http.StatusBadRequest, "text/plain", "bad form"), nil
	}
	if trace := httptrace.ContextClientTrace(req.Context()); trace != nil && trace.WroteRequest != nil {
		trace.WroteRequest(httptrace.WroteRequestInfo{})
	}
	select {
	case <-time.After(p.Latency):
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
	now := time.Now()
	if form.Get("grant_type") != "refresh_token" {
		return p.errorAnswer(req, http.StatusBadRequest, "unsupported_grant_type"), nil
	}
	if p.m.Preset.Dialect == provider.DialectWithings && form.Get("action") != "requesttoken" {
		return p.respond(req, http.StatusOK, "application/json", `{"status":2554,"body":{},"error":"Wrong action"}`), nil
	}

	p.mu.Lock()
	p.requests++
	switch {
	case p.faults.Provider503.Contains(now):
		p.mu.Unlock()
		return p.respond(req, http.StatusServiceUnavailable, "text/html", "<html><body><h1>503 Service Unavailable</h1></body></html>"), nil
	case p.faults.Provider429.Contains(now):
		end := p.faults.Provider429.EndOf(now)
		p.mu.Unlock()
		return p.tooMany(req, now, end), nil
	}
	draw := p.rng.Float64()
	if draw < p.faults.TimeoutRate {
		// The request waits in a queue the provider never serves: the client times out.
		p.mu.Unlock()
		<-req.Context().Done()
		return nil, req.Context().Err()
	}
	status, answer := p.refreshLocked(form.Get("refresh_token"), now)
	if draw < p.faults.TimeoutRate+p.faults.LostRate && status == http.StatusOK {
		// The provider acted (it may have rotated) and the answer never arrives.
		p.lost = append(p.lost, now)
		p.mu.Unlock()
		return nil, errReset
	}
	p.mu.Unlock()
	if status != http.StatusOK {
		return p.errorAnswer(req, status, answer), nil
	}
	return p.respond(req, http.StatusOK, "application/json", answer), nil
}

// refreshLocked applies the rotation rules to refresh token rt. It returns 200 and the token
// answer in the dialect, or an error status and the OAuth2 error code.
func (p *Provider) refreshLocked(rt string, now time.Time) (int, string) {
	r, ok := p.refresh[rt]
	if !ok || p.m.NoRefresh() {
		return http.StatusBadRequest, "invalid_grant"
	}
	g := p.grants[r.grant]
	switch {
	case !g.revoked.IsZero():
		return http.StatusBadRequest, "invalid_grant"
	case !g.deadline.IsZero() && !now.Before(g.deadline), !r.expires.IsZero() && !now.Before(r.expires):
		return http.StatusBadRequest, "invalid_grant"
	case p.m.Rotation == RotateGrace && r.successor != "" && !r.dead.IsZero() && !now.Before(r.dead):
		return http.StatusBadRequest, "invalid_grant"
	case p.m.Rotation == RotateGrace && r.successor != "" && now.Sub(r.rotatedAt) >= p.m.Grace:
		return http.StatusBadRequest, "invalid_grant"
	case p.m.Rotation == RotateStrict && r.successor != "":
		return http.StatusBadRequest, "invalid_grant"
	case p.m.Rotation == RotateReuseDetection && r.successor != "":
		// RFC 9700: a rotated-out refresh token coming back means it leaked; revoke everything.
		g.revoked = now
		return http.StatusBadRequest, "invalid_grant"
	}

	if p.m.ReissueWithin > 0 {
		if cur := p.access[g.latestAT]; cur != nil && cur.expires.Sub(now) > p.m.ReissueWithin {
			// Strava: the same access token, and the same refresh token, while over an hour is left.
			return http.StatusOK, p.answer(g.latestAT, cur.expires, rt, now)
		}
	}
	if p.m.Rotation == RotateGrace && r.successor != "" {
		// A repeat inside the grace: the unused pair it got before is replaced.
		if s := p.refresh[r.successor]; s != nil {
			s.dead = now
		}
	}
	at, exp := p.newAccess(g, now, rt)
	newRT := ""
	if p.m.Rotation != NoRotation {
		newRT = p.newRefresh(g, now)
		r.successor, r.rotatedAt = newRT, now
		if p.m.Rotation != RotateGrace {
			r.dead = now
		}
	}
	return http.StatusOK, p.answer(at, exp, newRT, now)
}

// answer is a token answer in the preset's dialect; rt "" leaves the refresh token out.
func (p *Provider) answer(at string, exp time.Time, rt string, now time.Time) string {
	tok := map[string]any{"access_token": at, "token_type": "Bearer"}
	if !exp.IsZero() {
		tok["expires_in"] = int64(exp.Sub(now).Round(time.Second) / time.Second)
	}
	if rt != "" {
		tok["refresh_token"] = rt
	}
	var v any = tok
	switch p.m.Preset.Dialect {
	case provider.DialectStrava:
		tok["expires_at"] = exp.Unix()
	case provider.DialectWithings:
		tok["userid"] = 36342817
		tok["scope"] = "user.metrics"
		v = map[string]any{"status": 0, "body": tok}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// errorAnswer is an OAuth2 error in the preset's dialect.
func (p *Provider) errorAnswer(req *http.Request, status int, code string) *http.Response {
	switch p.m.Preset.Dialect {
	case provider.DialectStrava:
		return p.respond(req, status, "application/json",
			`{"message":"Bad Request","errors":[{"resource":"RefreshToken","field":"refresh_token","code":"invalid"}]}`)
	case provider.DialectWithings:
		return p.respond(req, http.StatusOK, "application/json", `{"status":503,"body":{},"error":"Invalid Params: invalid refresh_token"}`)
	case provider.DialectOura:
		return p.respond(req, status, "application/problem+json",
			`{"status":400,"title":"Token already used or revoked","error":"`+code+`"}`)
	}
	return p.respond(req, status, "application/json", `{"error":"`+code+`","error_description":"The refresh token is invalid, expired or revoked"}`)
}

// tooMany is a rate-limit answer until end, in the provider's way of saying so.
func (p *Provider) tooMany(req *http.Request, now, end time.Time) *http.Response {
	secs := strconv.FormatInt(int64(end.Sub(now).Round(time.Second)/time.Second)+1, 10)
	switch p.m.Preset.Dialect {
	case provider.DialectStrava:
		// Strava sends no Retry-After: its limit headers say the 15-minute limit is reached.
		resp := p.respond(req, http.StatusTooManyRequests, "application/json", `{"message":"Rate Limit Exceeded","errors":[{"resource":"Application","field":"rate limit","code":"exceeded"}]}`)
		resp.Header.Set("X-RateLimit-Limit", "200,2000")
		resp.Header.Set("X-RateLimit-Usage", "200,900")
		return resp
	case provider.DialectWithings:
		resp := p.respond(req, http.StatusOK, "application/json", `{"status":601,"body":{},"error":"Too many requests"}`)
		resp.Header.Set("Retry-After", secs)
		return resp
	}
	resp := p.respond(req, http.StatusTooManyRequests, "application/json", `{"error":"rate_limited","error_description":"Too many requests"}`)
	resp.Header.Set("Retry-After", secs)
	return resp
}

func (p *Provider) respond(req *http.Request, status int, ctype, body string) *http.Response {
	h := http.Header{}
	h.Set("Content-Type", ctype)
	return &http.Response{
		Status: fmt.Sprintf("%d %s", status, http.StatusText(status)), StatusCode: status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)),
		Request: req,
	}
}

// HTTPClient is the token clients' HTTP client in the world: p as the transport, the product's
// request timeout, and no redirects, as tokenclient.NewHTTPClient sets them.
func (p *Provider) HTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Transport: p,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

var _ http.RoundTripper = (*Provider)(nil)
