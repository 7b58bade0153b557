package funchost

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	headerFunctionsKey = "X-Functions-Key"
	maxRequestBody     = 32 << 20
	// Claim types the host puts on a key-authenticated identity.
	claimAuthLevel = "http://schemas.microsoft.com/2017/07/functions/claims/authlevel"
	claimKeyID     = "http://schemas.microsoft.com/2017/07/functions/claims/keyid"
)

// hopByHop headers are never forwarded; contentHeaders are .NET content headers, which the
// host drops from the forwarded request (Content-Type and Content-Length come back with a body).
var (
	hopByHop       = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}
	contentHeaders = []string{"Allow", "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
		"Content-Location", "Content-Md5", "Content-Range", "Content-Type", "Expires", "Last-Modified"}
)

func (h *Host) startFrontDoor() error {
	l := h.opts.FrontDoor
	if l == nil {
		var err error
		if l, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return fmt.Errorf("front door: %w", err)
		}
	}
	h.frontURL = "http://" + l.Addr().String()
	write := 10 * time.Minute
	if h.timeout > 0 {
		write = h.timeout + 30*time.Second
	}
	h.front = &http.Server{
		Handler:           http.HandlerFunc(h.serveFront),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      write,
		IdleTimeout:       time.Minute,
	}
	go func() {
		defer close(h.frontDone)
		if err := h.front.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			h.log(LevelError, CategoryHost, "", "Front door stopped: "+err.Error())
		}
	}()
	return nil
}

func (h *Host) stopFrontDoor(ctx context.Context) {
	if h.front == nil {
		return
	}
	if err := h.front.Shutdown(ctx); err != nil {
		_ = h.front.Close()
	}
	<-h.frontDone
}

// httpFunctions are the routable functions in the order routing tries them.
func (h *Host) httpFunctions() []*Function {
	var fs []*Function
	for _, f := range h.app.Functions {
		if f.IsHTTP() && !f.Disabled {
			fs = append(fs, f)
		}
	}
	slices.SortStableFunc(fs, func(a, b *Function) int { return slices.Compare(a.route.rank(), b.route.rank()) })
	return fs
}

func (h *Host) serveFront(w http.ResponseWriter, r *http.Request) {
	raw := r.URL.EscapedPath()
	if raw == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, "<html><body>Your Functions 4.0 app is up and running (funchost)</body></html>")
		return
	}
	segs := strings.Split(strings.TrimPrefix(raw, "/"), "/")
	for i, s := range segs {
		d, err := url.PathUnescape(s)
		if err != nil {
			http.Error(w, "bad path", http.StatusBadRequest)
			return
		}
		segs[i] = d
	}
	if len(segs) >= 2 && strings.EqualFold(segs[0], "admin") && strings.EqualFold(segs[1], "functions") {
		h.serveAdmin(w, r, segs[2:])
		return
	}
	if p := h.app.Host.RoutePrefix; p != "" {
		pre := strings.Split(p, "/")
		if len(segs) <= len(pre) {
			http.NotFound(w, r)
			return
		}
		for i, s := range pre {
			if !strings.EqualFold(segs[i], s) {
				http.NotFound(w, r)
				return
			}
		}
		segs = segs[len(pre):]
	}
	if len(segs) > 1 && segs[len(segs)-1] == "" {
		segs = segs[:len(segs)-1] // one trailing slash is ignored
	}
	f, params := h.matchRoute(r.Method, segs)
	if f == nil {
		// Also for a known route with a method not in "methods": the host answers 404.
		http.NotFound(w, r)
		return
	}
	level, ok := h.authorize(r, f.Trigger.AuthLevel)
	if !ok {
		h.log(LevelInformation, FunctionCategory(f.Name), "", fmt.Sprintf("Request to %s rejected with 401: authLevel %s and no valid key (header x-functions-key, else query code)", f.Name, f.Trigger.AuthLevel))
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if (h.app.Host.EnableForwardingHTTPRequest || h.app.Host.EnableProxyingHTTPRequest) && f.HTTPInOut() {
		h.forward(w, r, f)
		return
	}
	h.invokeHTTPJSON(w, r, f, params, level)
}

func (h *Host) matchRoute(method string, segs []string) (*Function, map[string]string) {
	for _, f := range h.httpFunctions() {
		params, ok := f.route.match(segs)
		if !ok {
			continue
		}
		if len(f.Trigger.Methods) > 0 && !slices.Contains(f.Trigger.Methods, strings.ToUpper(method)) {
			continue
		}
		return f, params
	}
	return nil, nil
}

// authorize applies authLevel. The key comes from the x-functions-key header when that header
// is present (even empty), else from the "code" query parameter: which is why an OAuth2
// redirect carrying ?code=<authorization code> is rejected by a function-level endpoint.
// It returns the level the key grants ("" for anonymous access).
func (h *Host) authorize(r *http.Request, level string) (string, bool) {
	key := ""
	if vals, present := r.Header[headerFunctionsKey]; present {
		if len(vals) > 0 {
			key = vals[0]
		}
	} else if vals, present := r.URL.Query()["code"]; present && len(vals) > 0 {
		key = vals[0]
	}
	granted := ""
	switch {
	case key == "":
	case key == h.masterKey:
		granted = "Admin"
	case key == h.functionKey:
		granted = "Function"
	}
	if h.opts.IgnoreAuthLevel || level == "anonymous" {
		return granted, true
	}
	switch level {
	case "function":
		return granted, granted != ""
	case "admin":
		return granted, granted == "Admin"
	default: // system and user levels need infrastructure that is not emulated
		return granted, false
	}
}

// forward passes the request to the handler as plain HTTP, as the host does for functions
// with exactly one httpTrigger in and one http out: same method, the public path, the query
// (re-encoded, repeated keys joined by commas), all headers (the Host header included), and
// the body only when Content-Length > 0. The reply goes back unchanged; 3xx is not followed.
func (h *Host) forward(w http.ResponseWriter, r *http.Request, f *Function) {
	id := newGUID()
	category := FunctionCategory(f.Name)
	h.log(LevelInformation, category, id, fmt.Sprintf("Executing 'Functions.%s' (Reason='This function was programmatically called via the host APIs.', Id=%s)", f.Name, id))
	start := time.Now()
	ctx, cancel := h.withFunctionTimeout(r.Context())
	defer cancel()

	var body io.Reader
	if r.ContentLength > 0 {
		body = r.Body
	}
	out, err := http.NewRequestWithContext(ctx, r.Method, h.HandlerURL()+r.URL.EscapedPath()+rebuildQuery(r.URL.RawQuery), body)
	if err != nil {
		h.forwardFailed(w, f, id, start, err)
		return
	}
	for k, vs := range r.Header {
		if slices.Contains(hopByHop, k) || slices.Contains(contentHeaders, k) {
			continue
		}
		out.Header[k] = slices.Clone(vs)
	}
	if body != nil {
		out.ContentLength = r.ContentLength
		if ct := r.Header.Get("Content-Type"); ct != "" {
			out.Header.Set("Content-Type", ct)
		}
	}
	out.Host = r.Host
	ua := userAgent
	if orig := r.Header.Get("User-Agent"); orig != "" {
		ua = orig + " " + userAgent
	}
	out.Header.Set("User-Agent", ua)
	out.Header.Set(headerHostVersion, HostVersion)
	out.Header.Set(headerInvocationID, id)

	resp, err := h.client.Do(out)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && r.Context().Err() == nil {
			res := &InvokeResult{Function: f.Name, InvocationID: id}
			h.timedOut(res, f)
			h.finish(res, start)
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		h.forwardFailed(w, f, id, start, err)
		return
	}
	defer resp.Body.Close()
	dst := w.Header()
	for k, vs := range resp.Header {
		if !slices.Contains(hopByHop, k) {
			dst[k] = vs
		}
	}
	// Keep the reply as the handler sent it: no sniffed Content-Type, no added Date.
	if _, ok := resp.Header["Content-Type"]; !ok {
		dst["Content-Type"] = nil
	}
	if _, ok := resp.Header["Date"]; !ok {
		dst["Date"] = nil
	}
	w.WriteHeader(resp.StatusCode)
	if _, err := io.Copy(w, resp.Body); err != nil {
		h.log(LevelError, category, id, fmt.Sprintf("Copying the handler's response failed: %v", err))
	}
	h.log(LevelInformation, category, id, fmt.Sprintf("Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%dms)", f.Name, id, time.Since(start).Milliseconds()))
}

func (h *Host) forwardFailed(w http.ResponseWriter, f *Function, id string, start time.Time, err error) {
	h.log(LevelError, FunctionCategory(f.Name), id, fmt.Sprintf("Executed 'Functions.%s' (Failed, Id=%s, Duration=%dms): forwarding to the handler failed: %v", f.Name, id, time.Since(start).Milliseconds(), err))
	w.WriteHeader(http.StatusInternalServerError)
}

// rebuildQuery re-creates the query as the host does: parsed into a case-insensitive
// collection (repeated keys joined with ","), then percent-encoded again.
func rebuildQuery(raw string) string {
	type pair struct {
		key  string
		vals []string
	}
	var pairs []*pair
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		k, v = queryUnescape(k), queryUnescape(v)
		if k == "" {
			continue
		}
		i := slices.IndexFunc(pairs, func(p *pair) bool { return strings.EqualFold(p.key, k) })
		if i < 0 {
			pairs = append(pairs, &pair{key: k})
			i = len(pairs) - 1
		}
		pairs[i].vals = append(pairs[i].vals, v)
	}
	if len(pairs) == 0 {
		return ""
	}
	var b strings.Builder
	for i, p := range pairs {
		if i == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		b.WriteString(queryEscape(p.key) + "=" + queryEscape(strings.Join(p.vals, ",")))
	}
	return b.String()
}

func queryUnescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

func queryEscape(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }

// queryMap is the host's view of the query: one string per key, repeated values joined by ",".
func queryMap(raw string) map[string]string {
	m := map[string]string{}
	q := rebuildQuery(raw)
	if q == "" {
		return m
	}
	for _, part := range strings.Split(q[1:], "&") {
		k, v, _ := strings.Cut(part, "=")
		m[queryUnescape(k)] = queryUnescape(v)
	}
	return m
}

type httpRequestJSON struct {
	URL        string              `json:"Url"`
	Method     string              `json:"Method"`
	Query      map[string]string   `json:"Query"`
	Headers    map[string][]string `json:"Headers"`
	Params     map[string]string   `json:"Params"`
	Identities []identityJSON      `json:"Identities"`
	Body       *string             `json:"Body,omitempty"`
}

type identityJSON struct {
	AuthenticationType string      `json:"AuthenticationType"`
	IsAuthenticated    bool        `json:"IsAuthenticated"`
	Actor              any         `json:"Actor"`
	BootstrapContext   any         `json:"BootstrapContext"`
	Claims             []claimJSON `json:"Claims"`
	Label              any         `json:"Label"`
	Name               any         `json:"Name"`
	NameClaimType      string      `json:"NameClaimType"`
	RoleClaimType      string      `json:"RoleClaimType"`
}

type claimJSON struct {
	Type  string `json:"Type"`
	Value string `json:"Value"`
}

// invokeHTTPJSON is the host's path for HTTP functions it does not forward: the request goes
// to POST /<FunctionName> as Data.<trigger name> = {Url, Method, Query, Headers, Params,
// Identities, Body}, and the reply's http output ({statusCode, body, headers}) becomes the
// HTTP response.
func (h *Host) invokeHTTPJSON(w http.ResponseWriter, r *http.Request, f *Function, params map[string]string, level string) {
	reqJSON := httpRequestJSON{
		URL:        "http://" + r.Host + r.URL.EscapedPath(),
		Method:     r.Method,
		Query:      queryMap(r.URL.RawQuery),
		Headers:    map[string][]string{},
		Params:     params,
		Identities: []identityJSON{},
	}
	if r.URL.RawQuery != "" {
		reqJSON.URL += "?" + r.URL.RawQuery
	}
	for k, vs := range r.Header {
		reqJSON.Headers[k] = vs
	}
	reqJSON.Headers["Host"] = []string{r.Host}
	if level != "" {
		reqJSON.Identities = append(reqJSON.Identities, identityJSON{
			AuthenticationType: "WebJobsAuthLevel",
			IsAuthenticated:    true,
			Claims:             []claimJSON{{claimAuthLevel, level}, {claimKeyID, "default"}},
			NameClaimType:      "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
			RoleClaimType:      "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
		})
	}
	if r.ContentLength > 0 {
		data, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
		if err != nil {
			http.Error(w, "read body", http.StatusBadRequest)
			return
		}
		s := string(data)
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/octet-stream" || strings.HasPrefix(mt, "multipart/") {
			s = base64.StdEncoding.EncodeToString(data)
		}
		reqJSON.Body = &s
	}
	meta := map[string]json.RawMessage{}
	meta["Query"] = mustJSON(reqJSON.Query)
	meta["Headers"] = mustJSON(reqJSON.Headers)
	for k, v := range params {
		// Plain strings in Metadata are JSON-encoded twice by the host.
		meta[k] = mustJSON(string(mustJSON(v)))
	}
	meta["sys"] = mustJSON(sysJSON{MethodName: f.Name, UtcNow: utcTime(time.Now()), RandGuid: newGUID()})
	var b bytes.Buffer
	b.WriteString(`{"Data":{`)
	writeJSON(&b, f.Trigger.Name)
	b.WriteByte(':')
	writeJSON(&b, reqJSON)
	b.WriteString(`},"Metadata":`)
	writeJSON(&b, meta)
	b.WriteString(`}`)

	res, err := h.invokeJSON(r.Context(), f, b.Bytes(), "This function was programmatically called via the host APIs.")
	if err != nil || res.Failed {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	h.writeHTTPOutput(w, f, res)
}

func mustJSON(v any) json.RawMessage {
	var b bytes.Buffer
	writeJSON(&b, v)
	return b.Bytes()
}

// writeHTTPOutput turns the http output binding value into the response.
func (h *Host) writeHTTPOutput(w http.ResponseWriter, f *Function, res *InvokeResult) {
	out := f.HTTPOut()
	var raw json.RawMessage
	switch {
	case out == nil:
	case out.Name == "$return":
		raw = res.ReturnValue
	default:
		raw = res.Outputs[out.Name]
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		// The host deserializes the value's text, so a JSON string holding an object works too.
		var s string
		if json.Unmarshal(raw, &s) == nil {
			raw = json.RawMessage(s)
		}
	}
	var o map[string]json.RawMessage
	if len(raw) == 0 || isNull(raw) {
		w.WriteHeader(http.StatusOK)
		return
	}
	if json.Unmarshal(raw, &o) != nil {
		h.log(LevelError, FunctionCategory(f.Name), res.InvocationID, "Output body should have 'StatusCode', 'Status', 'Body', and 'Headers'")
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	status := http.StatusOK
	for _, name := range []string{"StatusCode", "Status"} {
		v, ok := lookupFold(o, name)
		if !ok || isNull(v) {
			continue
		}
		text := strings.Trim(string(bytes.TrimSpace(v)), `"`)
		n, err := strconv.Atoi(text)
		if err != nil || n < 100 || n > 999 {
			h.log(LevelError, FunctionCategory(f.Name), res.InvocationID, fmt.Sprintf("Invalid %s in the http output", name))
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		status = n
		break
	}
	var body []byte
	contentType := ""
	if v, ok := lookupFold(o, "Body"); ok && !isNull(v) {
		var s string
		if json.Unmarshal(v, &s) == nil {
			body, contentType = []byte(s), "text/plain; charset=utf-8"
		} else {
			body, contentType = v, "application/json; charset=utf-8"
		}
	}
	if v, ok := lookupFold(o, "Headers"); ok && !isNull(v) {
		var hs map[string]json.RawMessage
		if json.Unmarshal(v, &hs) == nil {
			for k, hv := range hs {
				var s string
				if json.Unmarshal(hv, &s) != nil {
					s = string(hv)
				}
				w.Header().Set(k, s)
			}
		}
	}
	if w.Header().Get("Content-Type") == "" && contentType != "" {
		w.Header().Set("Content-Type", contentType)
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// serveAdmin handles POST /admin/functions/<name>: a manual run of a non-HTTP function, with
// the master key. Like the host it answers 202 at once and runs the function in the
// background; see Results and WaitIdle.
func (h *Host) serveAdmin(w http.ResponseWriter, r *http.Request, rest []string) {
	if _, ok := h.authorize(r, "admin"); !ok {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if len(rest) != 1 || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	f, err := h.invocable(rest[0])
	if err != nil {
		http.NotFound(w, r)
		return
	}
	if !f.IsTimer() {
		http.Error(w, "funchost runs only timer functions through the admin API", http.StatusBadRequest)
		return
	}
	// The body is {"input": "..."}; a timer ignores it.
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxRequestBody))
	body, _, err := h.timerBody(f, TimerOptions{})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h.bg.add()
	go func() {
		defer h.bg.done()
		_, _ = h.invokeJSON(context.Background(), f, body, "This function was programmatically called via the host APIs.")
	}()
	w.WriteHeader(http.StatusAccepted)
}
