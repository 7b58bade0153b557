package main

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/freshtoken/freshtoken/internal/azuritetest"
)

// Bounds on waiting for devrun; they guard against hangs and are not what the test measures.
const (
	// startWithin covers building the handler from a cold build cache and starting Azurite.
	startWithin   = 3 * time.Minute
	refreshWithin = time.Minute
	stopWithin    = time.Minute
)

// TestRun is `make run` used the way the README says: run devrun, open the printed URL in a
// browser, deny once, then allow, and watch the schedule refresh the token. A short token
// lifespan and a one-second schedule make the refreshes come within seconds.
func TestRun(t *testing.T) {
	const lifespan = 12 * time.Second // due 3 s after it is issued with a 9 s margin
	port, azPort := freePort(t), freePort(t)
	d := start(t, "-port", strconv.Itoa(port), "-azurite-port", strconv.Itoa(azPort),
		"-oauth-addr", "127.0.0.1:0", "-schedule", "*/1 * * * * *",
		"-access-token-lifespan", lifespan.String(), "-refresh-margin", "9s")

	// What `make run` prints: the three services, then the URL to open.
	open := d.waitFor(regexp.MustCompile(`Open\s+(\S+)\s+in your browser`), 1, startWithin)[0][1]
	if want := "http://localhost:" + strconv.Itoa(port) + "/api/authorize/demo"; open != want {
		t.Fatalf("devrun says to open %q; want %q", open, want)
	}
	if m := regexp.MustCompile(`starting Azurite on 127\.0\.0\.1:(\d+)`).FindStringSubmatch(d.stdout.String()); m == nil || m[1] != strconv.Itoa(azPort) {
		t.Errorf("devrun did not say it starts Azurite on port %d", azPort)
	}
	m := regexp.MustCompile(`OAuth2 development server on (http://\S+)`).FindStringSubmatch(d.stdout.String())
	if m == nil {
		t.Fatal("devrun did not print the OAuth2 development server's address")
	}
	oauthBase, err := url.Parse(m[1])
	if err != nil {
		t.Fatalf("OAuth2 development server address: %v", err)
	}

	b := newBrowser(t)
	t.Run("deny", func(t *testing.T) {
		status, final, body := b.consent(t, open, "deny")
		if status != http.StatusForbidden {
			t.Errorf("after Deny the callback answers %d; want %d", status, http.StatusForbidden)
		}
		if final.Path != "/api/callback/demo" {
			t.Errorf("Deny ended at %s; want the callback /api/callback/demo", final.Path)
		}
		for _, want := range []string{"Access declined", "You declined access", "demo was not connected", "/api/authorize/demo"} {
			if !strings.Contains(body, want) {
				t.Errorf("the callback page after Deny lacks %q", want)
			}
		}
	})

	before := time.Now()
	status, final, body := b.consent(t, open, "allow")
	after := time.Now()
	if status != http.StatusOK || final.Path != "/api/callback/demo" {
		t.Fatalf("after Allow: %d at %s; want %d at /api/callback/demo; page:\n%s", status, final.Path, http.StatusOK, body)
	}
	if !strings.Contains(body, "demo is connected") {
		t.Errorf("the callback page does not say %q:\n%s", "demo is connected", body)
	}
	em := regexp.MustCompile(`The access token expires at (\S+?);`).FindStringSubmatch(body)
	if em == nil {
		t.Fatalf("the callback page does not say when the access token expires:\n%s", body)
	}
	connectedExpiry, err := time.Parse(time.RFC3339, em[1])
	if err != nil {
		t.Fatalf("the callback page's expiry %q: %v", em[1], err)
	}
	// RFC 3339 here has whole seconds and expires_in is whole seconds: allow one each.
	if lo, hi := before.Add(lifespan-2*time.Second), after.Add(lifespan); connectedExpiry.Before(lo) || connectedExpiry.After(hi) {
		t.Errorf("the callback page says the token expires at %v; want between %v and %v", connectedExpiry, lo, hi)
	}

	// Two refreshes in a row: the second sends the refresh token the first one stored, and the
	// development server has reuse detection on.
	refreshed := d.waitFor(regexp.MustCompile(`INF demo: refreshed; access token expires (\S+)`), 2, refreshWithin)
	for i, r := range refreshed {
		exp, err := time.Parse(time.RFC3339, r[1])
		if err != nil {
			t.Fatalf("refresh %d: expiry %q: %v", i+1, r[1], err)
		}
		if !exp.After(connectedExpiry) {
			t.Errorf("refresh %d: the access token expires %v; want after %v, the expiry at consent", i+1, exp, connectedExpiry)
		}
	}

	// The printed instructions say where the tokens are: Azurite, table OAuthTokens, partition demo.
	rows := readRows(t, azPort, "OAuthTokens", "demo", "AccessToken", "RefreshToken", "Status")
	if got := rows["Status"]["State"]; got != "ok" {
		t.Errorf("demo/Status.State = %v; want ok", got)
	}
	// Generation is an Edm.Int64, a string in JSON: one pair at consent and one per refresh.
	if g, _ := strconv.Atoi(asString(rows["Status"]["Generation"])); g < 3 {
		t.Errorf("demo/Status.Generation = %v; want at least 3 (consent and two refreshes)", rows["Status"]["Generation"])
	}
	for _, rk := range []string{"AccessToken", "RefreshToken"} {
		v := asString(rows[rk]["Value"])
		if v == "" {
			t.Errorf("demo/%s has no Value", rk)
			continue
		}
		b.secrets = append(b.secrets, v)
	}

	// Ctrl-C: everything stops and every port is free again.
	if err := d.stop(); err != nil {
		t.Errorf("run after cancel = %v; want nil", err)
	}
	for _, addr := range []string{"127.0.0.1:" + strconv.Itoa(port), "127.0.0.1:" + strconv.Itoa(azPort), oauthBase.Host} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("%s is still taken after devrun returned: %v", addr, err)
			continue
		}
		ln.Close()
	}
	out := d.stdout.String()
	if !strings.Contains(out, "stopping ...") || !regexp.MustCompile(`(?m)INF stopped$`).MatchString(out) {
		t.Error("devrun did not say it was stopping, or the handler did not log that it stopped cleanly")
	}

	all := out + d.stderr.String()
	for i, s := range append([]string{devClientSecret}, b.secrets...) {
		if strings.Contains(all, s) {
			t.Errorf("secret %d (length %d) appears in devrun's output", i, len(s))
		}
	}
	if m := regexp.MustCompile(`(?m)^.* ERR .*$`).FindString(d.stderr.String()); m != "" {
		t.Errorf("devrun's output has an error line: %s", m)
	}
}

// devrun is one run of run in this process.
type devrun struct {
	t              *testing.T
	stdout, stderr *output
	cancel         context.CancelFunc
	done           chan struct{} // closed when run has returned
	err            error         // run's result, set before done is closed
	stopped        bool          // the test called stop and checked its result
}

// start calls run with args. The test's cleanup stops it, and shows its output if the test failed.
func start(t *testing.T, args ...string) *devrun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &devrun{t: t, stdout: newOutput(), stderr: newOutput(), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(d.done)
		d.err = run(ctx, args, d.stdout, d.stderr)
	}()
	t.Cleanup(func() {
		if checked := d.stopped; d.stop() != nil && !checked {
			t.Errorf("run = %v", d.err)
		}
		if t.Failed() {
			t.Logf("devrun stdout:\n%s\ndevrun stderr:\n%s", d.stdout, d.stderr)
		}
	})
	return d
}

// stop is Ctrl-C: it cancels run's context and returns run's result.
func (d *devrun) stop() error {
	d.stopped = true
	d.cancel()
	select {
	case <-d.done:
		return d.err
	case <-time.After(stopWithin):
		d.t.Fatalf("run did not return within %v of the cancel", stopWithin)
		return nil
	}
}

// waitFor waits until stdout holds at least n matches of re and returns the first n. It fails the
// test when run returns or the wait exceeds within.
func (d *devrun) waitFor(re *regexp.Regexp, n int, within time.Duration) [][]string {
	d.t.Helper()
	timeout := time.After(within)
	for {
		s, changed := d.stdout.snapshot()
		if m := re.FindAllStringSubmatch(s, n); len(m) == n {
			return m
		}
		select {
		case <-changed:
		case <-d.done:
			d.t.Fatalf("run returned (%v) before its output had %d match(es) of %q", d.err, n, re)
		case <-timeout:
			d.t.Fatalf("no %d match(es) of %q in devrun's output within %v", n, re, within)
		}
	}
}

// output collects what run and its processes write, and tells waiters when it grows.
type output struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed at the next write
}

func newOutput() *output { return &output{changed: make(chan struct{})} }

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n, err := o.buf.Write(p)
	close(o.changed)
	o.changed = make(chan struct{})
	return n, err
}

func (o *output) String() string {
	s, _ := o.snapshot()
	return s
}

// snapshot returns the output so far and a channel closed when more arrives.
func (o *output) snapshot() (string, <-chan struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String(), o.changed
}

// browser is a person's browser: a cookie jar, redirects followed. It remembers the code and
// state it saw in redirects, which must never appear in the output.
type browser struct {
	client  *http.Client
	secrets []string
}

func newBrowser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{}
	b.client = &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			q := req.URL.Query()
			for _, k := range []string{"code", "state"} {
				if v := q.Get(k); v != "" {
					b.secrets = append(b.secrets, v)
				}
			}
			if len(via) >= 10 {
				return http.ErrUseLastResponse
			}
			return nil
		}}
	return b
}

// consent opens authorizeURL, lands on the development server's consent page, submits its form
// with the given decision ("allow" or "deny") and returns where the browser ended.
func (b *browser) consent(t *testing.T, authorizeURL, decision string) (status int, final *url.URL, body string) {
	t.Helper()
	status, page, body := b.do(t, http.MethodGet, authorizeURL, nil, nil)
	if status != http.StatusOK || page.Path != "/oauth2/auth" {
		t.Fatalf("GET %s: %d at %s; want 200 on the consent page; page:\n%s", authorizeURL, status, page, body)
	}
	f := parseForm(t, body)
	if !f.decisions[decision] {
		t.Fatalf("the consent page has no %q button (form: %+v)", decision, f.decisions)
	}
	for _, sc := range []string{"activity", "sleep", "profile"} {
		if !slices.Contains(f.values["scope"], sc) {
			t.Errorf("the consent page does not offer scope %q ticked", sc)
		}
	}
	action, err := page.Parse(f.action)
	if err != nil {
		t.Fatalf("form action %q: %v", f.action, err)
	}
	csrf := ""
	for _, c := range b.client.Jar.Cookies(action) {
		if c.Name == "oauthserver_csrf" {
			csrf = c.Value
		}
	}
	if csrf == "" || csrf != f.values.Get("csrf") {
		t.Fatalf("the CSRF cookie (set: %t) does not match the form's csrf field", csrf != "")
	}
	f.values.Set("decision", decision)
	hdr := http.Header{
		"Content-Type":   {"application/x-www-form-urlencoded"},
		"Origin":         {page.Scheme + "://" + page.Host},
		"Sec-Fetch-Site": {"same-origin"},
	}
	return b.do(t, http.MethodPost, action.String(), strings.NewReader(f.values.Encode()), hdr)
}

func (b *browser) do(t *testing.T, method, u string, body io.Reader, hdr http.Header) (int, *url.URL, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("%s %s: read the page: %v", method, req.URL.Path, err)
	}
	return resp.StatusCode, resp.Request.URL, string(data)
}

// form is what a browser would submit from a page's form: its action, the hidden and text
// fields and ticked checkboxes, and the values of its submit buttons named "decision".
type form struct {
	action    string
	values    url.Values
	decisions map[string]bool
}

var (
	formTag  = regexp.MustCompile(`(?s)<form\b([^>]*)>(.*?)</form>`)
	fieldTag = regexp.MustCompile(`<(input|button)\b([^>]*)>`)
	attr     = regexp.MustCompile(`([a-zA-Z_-]+)(?:="([^"]*)")?`)
)

// parseForm reads the one form of the consent page. It knows only the HTML the development
// server writes, attributes in double quotes.
func parseForm(t *testing.T, page string) form {
	t.Helper()
	fm := formTag.FindStringSubmatch(page)
	if fm == nil {
		t.Fatalf("the page has no form:\n%s", page)
	}
	attrs := func(s string) map[string]string {
		m := map[string]string{}
		for _, a := range attr.FindAllStringSubmatch(s, -1) {
			m[strings.ToLower(a[1])] = html.UnescapeString(a[2])
		}
		return m
	}
	fa := attrs(fm[1])
	if !strings.EqualFold(fa["method"], "post") {
		t.Fatalf("the consent form's method is %q; want post", fa["method"])
	}
	f := form{action: fa["action"], values: url.Values{}, decisions: map[string]bool{}}
	for _, tag := range fieldTag.FindAllStringSubmatch(fm[2], -1) {
		a := attrs(tag[2])
		name := a["name"]
		if name == "" {
			continue
		}
		switch typ := a["type"]; {
		case tag[1] == "button" && (typ == "" || typ == "submit"):
			if name == "decision" {
				f.decisions[a["value"]] = true
			}
		case typ == "checkbox":
			if _, checked := a["checked"]; checked {
				f.values.Add(name, a["value"])
			}
		case typ == "" || typ == "hidden" || typ == "text":
			f.values.Add(name, a["value"])
		}
	}
	for _, k := range []string{"challenge", "csrf"} {
		if f.values.Get(k) == "" {
			t.Fatalf("the consent form has no %s field", k)
		}
	}
	return f
}

// readRows reads rows of a partition the way another app reads the token table.
func readRows(t *testing.T, azPort int, table, partition string, rowKeys ...string) map[string]map[string]any {
	t.Helper()
	conn := "DefaultEndpointsProtocol=http;AccountName=" + azuritetest.AccountName + ";AccountKey=" + azuritetest.AccountKey +
		";TableEndpoint=http://127.0.0.1:" + strconv.Itoa(azPort) + "/" + azuritetest.AccountName + ";"
	svc, err := aztables.NewServiceClientFromConnectionString(conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	client := svc.NewClient(table)
	rows := map[string]map[string]any{}
	for _, rk := range rowKeys {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := client.GetEntity(ctx, partition, rk, nil)
		cancel()
		if err != nil {
			t.Fatalf("read %s %s/%s: %v", table, partition, rk, err)
		}
		var m map[string]any
		if err := json.Unmarshal(resp.Value, &m); err != nil {
			t.Fatalf("%s/%s: %v", partition, rk, err)
		}
		rows[rk] = m
	}
	return rows
}

func asString(v any) string {
	s, _ := v.(string)
	return s
}

// freePort returns a loopback port that was free a moment ago. devrun takes fixed ports (the
// redirect URL names the handler's), so another process could take it first: rare, and the
// run then fails saying which port.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
