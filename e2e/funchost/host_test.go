package funchost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeBin is testdata/fakehandler built under the name the test app's host.json expects.
var fakeBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "funchost-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	fakeBin = filepath.Join(dir, "fakehandler")
	build := exec.Command(goCmd, "build", "-o", fakeBin, "./testdata/fakehandler")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build fake handler: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// copyBin copies the fake handler to dir/name with the given mode.
func copyBin(t *testing.T, name string, mode os.FileMode) string {
	t.Helper()
	data, err := os.ReadFile(fakeBin)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func defaultEnv(extra ...string) map[string]string {
	env := map[string]string{
		"FUNCTIONS_WORKER_RUNTIME": "custom",
		"TICK_SCHEDULE":            "0 */5 * * * *",
		"APP_SETTING":              "from-settings",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == "" {
			delete(env, extra[i])
		} else {
			env[extra[i]] = extra[i+1]
		}
	}
	return env
}

// startApp starts the fake handler under the app at root. The host is stopped at cleanup,
// and its logs are shown if the test failed (the fake handles no secrets).
func startApp(t *testing.T, root string, opts StartOptions) *Host {
	t.Helper()
	app, err := Load(root)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if opts.Executable == "" {
		opts.Executable = fakeBin
	}
	if opts.Env == nil {
		opts.Env = defaultEnv()
	}
	h, err := app.Start(testContext(t), opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		_ = h.Stop(context.Background())
		if t.Failed() {
			for _, e := range h.Logs() {
				t.Log(e.String())
			}
		}
	})
	return h
}

func startTestApp(t *testing.T, opts StartOptions) *Host {
	t.Helper()
	return startApp(t, "testdata/app", opts)
}

// waitLog waits for a log entry: console output arrives through a pipe, independently of
// the HTTP exchange that made Start or an invocation return.
func waitLog(t *testing.T, h *Host, match func(LogEntry) bool, what string) LogEntry {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, e := range h.Logs() {
			if match(e) {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log entry %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func hasLog(h *Host, level Level, category, contains string) bool {
	return slices.ContainsFunc(h.Logs(), func(e LogEntry) bool {
		return e.Level == level && e.Category == category && strings.Contains(e.Message, contains)
	})
}

var guidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// received mirrors the fake handler's report.
type received struct {
	Method           string
	Path             string
	RawQuery         string
	Host             string
	Headers          http.Header
	ContentLength    int64
	TransferEncoding []string
	Body             string
	Env              map[string]string
	Args             []string
	Cwd              string
}

func decodeReceived(t *testing.T, data []byte) received {
	t.Helper()
	var r received
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("decode the fake's report: %v", err)
	}
	return r
}

func TestStartReadinessAndConsoleLogs(t *testing.T) {
	t.Parallel()
	// The fake listens only after a delay: Start must keep polling through refused connections.
	h := startTestApp(t, StartOptions{Env: defaultEnv("FAKE_LISTEN_DELAY", "200ms")})
	for _, want := range []struct {
		level Level
		text  string
	}{
		{LevelInformation, "fake: listening on port"},
		{LevelWarning, "fake: WARNING this line is a warning"},
		{LevelError, "fake: this line is an error"},
	} {
		e := waitLog(t, h, func(e LogEntry) bool { return strings.Contains(e.Message, want.text) }, want.text)
		if e.Level != want.level || e.Category != CategoryConsole {
			t.Errorf("%q logged as %s/%s; want %s/%s", want.text, e.Level, e.Category, want.level, CategoryConsole)
		}
	}
	resp, err := http.Get(h.URL() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("front door GET / = %d; want 200", resp.StatusCode)
	}
}

func TestStartFailures(t *testing.T) {
	t.Parallel()
	app, err := Load("testdata/app")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		opts    StartOptions
		wantErr []string
	}{
		{
			name:    "executable with another name",
			opts:    StartOptions{Executable: copyBin(t, "freshtoken", 0o755)},
			wantErr: []string{`executable "freshtoken" is not named "fakehandler"`},
		},
		{
			name:    "executable without exec bit",
			opts:    StartOptions{Executable: copyBin(t, "fakehandler", 0o644)},
			wantErr: []string{"no exec bit"},
		},
		{
			name:    "handler exits during start-up",
			opts:    StartOptions{Env: defaultEnv("FAKE_EXIT_AT_START", "3")},
			wantErr: []string{"exited during start-up (exit code 3)", "fake: boom at start"},
		},
		{
			name:    "handler never listens",
			opts:    StartOptions{Env: defaultEnv("FAKE_NEVER_LISTEN", "1"), ReadyTimeout: 300 * time.Millisecond},
			wantErr: []string{"did not answer GET", "within 300ms"},
		},
		{
			name:    "wrong worker runtime",
			opts:    StartOptions{Env: defaultEnv("FUNCTIONS_WORKER_RUNTIME", "node")},
			wantErr: []string{`FUNCTIONS_WORKER_RUNTIME is "node"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.opts.Executable == "" {
				tt.opts.Executable = fakeBin
			}
			if tt.opts.Env == nil {
				tt.opts.Env = defaultEnv()
			}
			h, err := app.Start(testContext(t), tt.opts)
			if err == nil {
				_ = h.Stop(context.Background())
				t.Fatal("Start: got nil error; want one")
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Start error = %q; want it to contain %q", err, want)
				}
			}
		})
	}
}

func TestInvokeTimerRequest(t *testing.T) {
	t.Parallel()
	h := startTestApp(t, StartOptions{})
	ctx := testContext(t)
	now := time.Date(2024, 5, 1, 10, 15, 0, 15432100, time.UTC)
	res, err := h.InvokeTimer(ctx, "tick", TimerOptions{Now: now}) // names match case-insensitively
	if err != nil {
		t.Fatalf("InvokeTimer: %v", err)
	}
	if res.Failed {
		t.Fatalf("invocation failed: %s", res.Reason)
	}
	got := decodeReceived(t, res.ReturnValue)

	if got.Method != http.MethodPost || got.Path != "/Tick" {
		t.Errorf("request = %s %s; want POST /Tick (the folder name, case kept)", got.Method, got.Path)
	}
	if got.ContentLength != -1 || !slices.Equal(got.TransferEncoding, []string{"chunked"}) {
		t.Errorf("ContentLength %d, TransferEncoding %v; want -1, [chunked]", got.ContentLength, got.TransferEncoding)
	}
	for name, want := range map[string]string{
		"Content-Type":                   "application/json; charset=utf-8",
		"X-Azure-Functions-InvocationId": res.InvocationID,
		"X-Azure-Functions-HostVersion":  HostVersion,
		"User-Agent":                     "Azure-Functions-Host/" + HostVersion,
	} {
		if v := got.Headers.Values(name); len(v) != 1 || v[0] != want {
			t.Errorf("header %s = %q; want [%q]", name, v, want)
		}
	}
	if !guidRE.MatchString(res.InvocationID) {
		t.Errorf("invocation id %q is not a GUID", res.InvocationID)
	}
	if got.Body != string(res.Request) {
		t.Errorf("the handler received %q; funchost reports sending %q", got.Body, res.Request)
	}
	randGUID := regexp.MustCompile(`"RandGuid":"([^"]*)"`)
	if m := randGUID.FindStringSubmatch(got.Body); m == nil || !guidRE.MatchString(m[1]) {
		t.Errorf("body %s has no RandGuid GUID", got.Body)
	}
	const want = `{"Data":{"myTimer":{"Schedule":{"AdjustForDST":true},` +
		`"ScheduleStatus":{"Last":"2024-05-01T10:10:00+00:00","Next":"2024-05-01T10:15:00+00:00","LastUpdated":"2024-05-01T10:10:00+00:00"},` +
		`"IsPastDue":false}},` +
		`"Metadata":{"sys":{"MethodName":"Tick","UtcNow":"2024-05-01T10:15:00.0154321Z","RandGuid":"*"},` +
		`"RetryContext":{"RetryCount":0,"MaxRetryCount":2,"Exception":null}}}`
	if body := randGUID.ReplaceAllString(got.Body, `"RandGuid":"*"`); body != want {
		t.Errorf("body =\n%s\nwant\n%s", body, want)
	}

	root, _ := filepath.Abs("testdata/app")
	for k, want := range map[string]string{
		"FUNCTIONS_CUSTOMHANDLER_PORT":      strings.TrimPrefix(h.HandlerURL(), "http://127.0.0.1:"),
		"FUNCTIONS_CUSTOMHANDLER_WORKER_ID": h.WorkerID(),
		"FUNCTIONS_APP_ROOT_PATH":           root,
		"APP_SETTING":                       "from-settings",
	} {
		if got.Env[k] != want {
			t.Errorf("handler env %s = %q; want %q", k, got.Env[k], want)
		}
	}
	if !guidRE.MatchString(h.WorkerID()) {
		t.Errorf("worker id %q is not a GUID", h.WorkerID())
	}
	if !slices.Equal(got.Args, []string{"-flag", "value"}) {
		t.Errorf("handler args = %q; want host.json arguments [-flag value]", got.Args)
	}
	if cwd, _ := filepath.EvalSymlinks(got.Cwd); cwd != mustEvalSymlinks(t, root) {
		t.Errorf("handler working directory = %s; want the app root %s", got.Cwd, root)
	}

	if !slices.Equal(res.Logs, []string{"received Tick"}) || res.Status != http.StatusOK {
		t.Errorf("result logs %q, status %d; want [received Tick], 200", res.Logs, res.Status)
	}
	if !hasLog(h, LevelInformation, UserCategory("Tick"), "received Tick") {
		t.Error("the invocation's Logs entry was not logged at Information under Function.Tick.User")
	}
	if !hasLog(h, LevelWarning, workerCategory, "Outputs not set") {
		t.Error("no host warning for empty Outputs")
	}
	if !hasLog(h, LevelInformation, FunctionCategory("Tick"), "Executed 'Functions.Tick' (Succeeded") {
		t.Error("no Executed (Succeeded) log")
	}
}

// redactCode hides the value of a code parameter (a key or an authorization code) in test
// output, keeping its length.
func redactCode(path string) string {
	return codeParam.ReplaceAllStringFunc(path, func(m string) string {
		return fmt.Sprintf("code=<%d bytes>", len(m)-len("code="))
	})
}

var codeParam = regexp.MustCompile(`code=[^&]*`)

func mustEvalSymlinks(t *testing.T, path string) string {
	t.Helper()
	p, err := filepath.EvalSymlinks(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestInvokeTimerVariants(t *testing.T) {
	t.Parallel()
	h := startTestApp(t, StartOptions{})
	ctx := testContext(t)
	now := time.Date(2024, 5, 1, 10, 17, 30, 0, time.UTC)
	one := 1
	tests := []struct {
		name     string
		function string
		opts     TimerOptions
		want     []string // substrings of the body
		notWant  []string
	}{
		{
			name: "on time", function: "Tick", opts: TimerOptions{Now: now},
			want: []string{`"Last":"2024-05-01T10:10:00+00:00","Next":"2024-05-01T10:15:00+00:00"`, `"IsPastDue":false`, `"UtcNow":"2024-05-01T10:17:30Z"`},
		},
		{
			name: "first run", function: "Tick", opts: TimerOptions{Now: now, First: true},
			want: []string{`"Last":"0001-01-01T00:00:00+00:00","Next":"2024-05-01T10:15:00+00:00","LastUpdated":"0001-01-01T00:00:00+00:00"`},
		},
		{
			name: "past due", function: "Tick", opts: TimerOptions{Now: now, PastDue: true},
			want: []string{`"Last":"2024-05-01T10:05:00+00:00","Next":"2024-05-01T10:10:00+00:00"`, `"IsPastDue":true`},
		},
		{
			name: "null status", function: "Tick", opts: TimerOptions{Now: now, NullScheduleStatus: true},
			want: []string{`"ScheduleStatus":null`},
		},
		{
			name: "retry attempt", function: "Tick", opts: TimerOptions{Now: now, RetryCount: &one},
			want: []string{`"RetryContext":{"RetryCount":1,"MaxRetryCount":2,"Exception":null}`},
		},
		{
			name: "schedule firing more than once a minute", function: "Frequent", opts: TimerOptions{Now: now},
			want: []string{`{"Data":{"timer":{`, `"ScheduleStatus":null`}, notWant: []string{"RetryContext"},
		},
		{
			name: "useMonitor false", function: "NoMonitor", opts: TimerOptions{Now: now},
			want: []string{`"ScheduleStatus":null`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := h.InvokeTimer(ctx, tt.function, tt.opts)
			if err != nil {
				t.Fatalf("InvokeTimer: %v", err)
			}
			if res.Failed {
				t.Fatalf("invocation failed: %s", res.Reason)
			}
			body := decodeReceived(t, res.ReturnValue).Body
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("body %s; want it to contain %s", body, w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(body, w) {
					t.Errorf("body %s; want it without %s", body, w)
				}
			}
		})
	}
}

func TestInvokeTimerReplyValidation(t *testing.T) {
	t.Parallel()
	h := startTestApp(t, StartOptions{})
	ctx := testContext(t)
	tests := []struct {
		function   string
		wantFailed bool
		wantReason string
		wantStatus int
		wantLogs   []string
	}{
		{"TickText", true, "No MediaTypeFormatter is available to read an object of type 'HttpScriptInvocationResult' from content with media type 'text/plain'", 200, nil},
		{"TickEmpty", true, "empty response body: the real host gets no result and waits until functionTimeout (00:01:00)", 200, nil},
		{"TickNull", true, "response body without a result", 200, nil},
		{"TickFail", true, "handler returned status 500", 500, nil},
		{"TickBadJSON", true, "not valid JSON", 200, nil},
		{"TickArray", true, "not an object", 200, nil},
		{"TickTextJSON", false, "", 200, []string{"text/json is fine"}},
		{"TickLower", false, "", 200, []string{"lower", "7"}},
	}
	for _, tt := range tests {
		t.Run(tt.function, func(t *testing.T) {
			res, err := h.InvokeTimer(ctx, tt.function, TimerOptions{})
			if err != nil {
				t.Fatalf("InvokeTimer: %v", err)
			}
			if res.Failed != tt.wantFailed || !strings.Contains(res.Reason, tt.wantReason) || res.Status != tt.wantStatus {
				t.Errorf("Failed %v, Reason %q, Status %d; want %v, %q, %d", res.Failed, res.Reason, res.Status, tt.wantFailed, tt.wantReason, tt.wantStatus)
			}
			if !slices.Equal(res.Logs, tt.wantLogs) {
				t.Errorf("Logs = %q; want %q", res.Logs, tt.wantLogs)
			}
			if tt.wantFailed && !hasLog(h, LevelError, FunctionCategory(tt.function), "(Failed, Id="+res.InvocationID) {
				t.Error("no Executed (Failed) log")
			}
		})
	}
	if slices.ContainsFunc(h.Logs(), func(e LogEntry) bool { return strings.Contains(e.Message, "failure log is discarded") }) {
		t.Error("Logs of a non-2xx reply were logged; the host discards them")
	}
	res, err := h.InvokeTimer(ctx, "TickLower", TimerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.ReturnValue) != `"done"` || string(res.Outputs["x"]) != "1" {
		t.Errorf("ReturnValue %s, Outputs %v; want \"done\" and x=1 (names match case-insensitively)", res.ReturnValue, res.Outputs)
	}
}

func TestInvokeTimerErrors(t *testing.T) {
	t.Parallel()
	h := startTestApp(t, StartOptions{})
	one := 1
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name     string
		ctx      context.Context
		function string
		opts     TimerOptions
		wantErr  string
	}{
		{"unknown function", testContext(t), "Nope", TimerOptions{}, `no function named "Nope"`},
		{"HTTP function", testContext(t), "Echo", TimerOptions{}, "not timerTrigger"},
		{"retry count without policy", testContext(t), "TickLower", TimerOptions{RetryCount: &one}, "no retry policy"},
		{"cancelled context", cancelled, "Tick", TimerOptions{}, "context canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := h.InvokeTimer(tt.ctx, tt.function, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("InvokeTimer: got %+v, %v; want error containing %q", res, err, tt.wantErr)
			}
		})
	}
}

// A %Setting% that is not set puts the function in error; the rest of the app still runs.
func TestFunctionInError(t *testing.T) {
	t.Parallel()
	h := startTestApp(t, StartOptions{Env: defaultEnv("TICK_SCHEDULE", "")})
	_, err := h.InvokeTimer(testContext(t), "Tick", TimerOptions{})
	if err == nil || !strings.Contains(err.Error(), "'%TICK_SCHEDULE%' does not resolve to a value") {
		t.Errorf("InvokeTimer: got %v; want the unresolved setting named", err)
	}
	if !hasLog(h, LevelError, FunctionCategory("Tick"), "The 'Tick' function is in error") {
		t.Error("no error log for the function in error")
	}
	if res, err := h.InvokeTimer(testContext(t), "TickLower", TimerOptions{}); err != nil || res.Failed {
		t.Errorf("another function: %+v, %v; want it to run", res, err)
	}
}

func TestFunctionTimeout(t *testing.T) {
	t.Parallel()
	h := startTestApp(t, StartOptions{FunctionTimeout: 300 * time.Millisecond})
	ctx := testContext(t)
	res, err := h.InvokeTimer(ctx, "TickSlow", TimerOptions{})
	if err != nil {
		t.Fatalf("InvokeTimer: %v", err)
	}
	if !res.Failed || !res.TimedOut || !strings.Contains(res.Reason, "Timeout value of 00:00:00.3000000 exceeded by function 'Functions.TickSlow'") {
		t.Errorf("Failed %v, TimedOut %v, Reason %q; want a functionTimeout failure", res.Failed, res.TimedOut, res.Reason)
	}
	if _, exited := h.ExitCode(); !exited {
		t.Error("handler still running after a function timeout; want it killed (the host restarts)")
	}
	res, err = h.InvokeTimer(ctx, "Tick", TimerOptions{})
	if err != nil {
		t.Fatalf("InvokeTimer: %v", err)
	}
	if !res.Failed || !strings.Contains(res.Reason, "calling the handler failed") {
		t.Errorf("after the kill: Failed %v, Reason %q; want a failed call", res.Failed, res.Reason)
	}
}

// noRedirect is a client that shows 3xx responses instead of following them.
var noRedirect = &http.Client{
	Timeout:       30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

type call struct {
	method, path string
	header       http.Header
	body         io.Reader
	length       int64 // -1: send the body chunked
}

func do(t *testing.T, h *Host, c call) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(testContext(t), c.method, h.URL()+c.path, c.body)
	if err != nil {
		t.Fatal(err)
	}
	if c.length != 0 {
		req.ContentLength = c.length
	}
	for k, vs := range c.header {
		req.Header[k] = vs
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestForwarding(t *testing.T) {
	t.Parallel()
	h := startTestApp(t, StartOptions{})
	frontHost := strings.TrimPrefix(h.URL(), "http://")

	t.Run("GET with query, cookies and headers", func(t *testing.T) {
		resp, body := do(t, h, call{method: "GET", path: "/api/echo/alice?b=2&a=1&A=x+y&code=abc", header: http.Header{
			"Cookie":     {"sid=1; theme=dark"},
			"X-Custom":   {"v"},
			"User-Agent": {"test-agent/1"},
		}})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d; want 200", resp.StatusCode)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
			t.Errorf("Content-Type %q; want the handler's", ct)
		}
		got := decodeReceived(t, body)
		if got.Method != "GET" || got.Path != "/api/echo/alice" || got.Host != frontHost {
			t.Errorf("handler got %s %s Host %s; want GET /api/echo/alice Host %s", got.Method, got.Path, got.Host, frontHost)
		}
		q, err := url.ParseQuery(got.RawQuery)
		if err != nil {
			t.Fatal(err)
		}
		want := url.Values{"b": {"2"}, "a": {"1,x y"}, "code": {"abc"}}
		if fmt.Sprint(q) != fmt.Sprint(want) {
			t.Errorf("query %q; want b=2, a=1,x y and code intact (repeated keys joined as the host does)", redactCode(got.RawQuery))
		}
		for name, want := range map[string]string{
			"Cookie":                        "sid=1; theme=dark",
			"X-Custom":                      "v",
			"User-Agent":                    "test-agent/1 Azure-Functions-Host/" + HostVersion,
			"X-Azure-Functions-HostVersion": HostVersion,
		} {
			if v := got.Headers.Get(name); v != want {
				t.Errorf("header %s = %q; want %q", name, v, want)
			}
		}
		if !guidRE.MatchString(got.Headers.Get("X-Azure-Functions-InvocationId")) {
			t.Errorf("invocation id header %q; want a GUID", got.Headers.Get("X-Azure-Functions-InvocationId"))
		}
		if got.Body != "" || got.ContentLength != 0 {
			t.Errorf("body %q (length %d); want none", got.Body, got.ContentLength)
		}
	})

	t.Run("POST with Content-Length forwards the body", func(t *testing.T) {
		_, body := do(t, h, call{method: "POST", path: "/api/echo/bob", body: strings.NewReader("hello"),
			header: http.Header{"Content-Type": {"text/plain"}}})
		got := decodeReceived(t, body)
		if got.Body != "hello" || got.ContentLength != 5 || got.Headers.Get("Content-Type") != "text/plain" {
			t.Errorf("body %q, length %d, type %q; want hello, 5, text/plain", got.Body, got.ContentLength, got.Headers.Get("Content-Type"))
		}
	})

	t.Run("chunked POST loses its body", func(t *testing.T) {
		_, body := do(t, h, call{method: "POST", path: "/api/echo/bob", body: io.NopCloser(strings.NewReader("hello")), length: -1})
		if got := decodeReceived(t, body); got.Body != "" {
			t.Errorf("body %q; want none: the host forwards a body only with Content-Length > 0", got.Body)
		}
	})

	t.Run("escaped segment", func(t *testing.T) {
		resp, body := do(t, h, call{method: "GET", path: "/api/echo/a%2Fb"})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d; want 200", resp.StatusCode)
		}
		if got := decodeReceived(t, body); got.Path != "/api/echo/a%2Fb" {
			t.Errorf("path %q; want /api/echo/a%%2Fb", got.Path)
		}
	})

	t.Run("no Content-Type is added", func(t *testing.T) {
		resp, body := do(t, h, call{method: "GET", path: "/api/files/raw"})
		if ct, ok := resp.Header["Content-Type"]; ok || string(body) != "raw bytes" {
			t.Errorf("Content-Type %q, body %q; want none and the handler's body", ct, body)
		}
	})

	t.Run("302 passes through", func(t *testing.T) {
		resp, body := do(t, h, call{method: "GET", path: "/api/redirect"})
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("status %d; want 302, not followed", resp.StatusCode)
		}
		if loc := resp.Header.Get("Location"); loc != "https://provider.example/authorize?state=xyz" {
			t.Errorf("Location %q; want the handler's", loc)
		}
		if sc := resp.Header.Values("Set-Cookie"); !slices.Equal(sc, []string{"sid=abc; Path=/; HttpOnly"}) {
			t.Errorf("Set-Cookie %q; want the handler's", sc)
		}
		if ct, ok := resp.Header["Content-Type"]; ok || len(body) != 0 {
			t.Errorf("Content-Type %q, body %q; want neither (nothing added)", ct, body)
		}
	})
}

func TestRoutingAndAuth(t *testing.T) {
	t.Parallel()
	h := startTestApp(t, StartOptions{})
	fk, mk := h.FunctionKey(), h.MasterKey()
	key := func(k string) http.Header { return http.Header{"X-Functions-Key": {k}} }
	tests := []struct {
		method, path string
		header       http.Header
		want         int
	}{
		{"GET", "/api/echo/x", nil, 200},
		{"POST", "/api/echo/x", nil, 200},
		{"DELETE", "/api/echo/x", nil, 404}, // method not in "methods"
		{"GET", "/API/Echo/x", nil, 200},
		{"GET", "/api/echo/x/", nil, 200},
		{"GET", "/api/echo", nil, 404},
		{"GET", "/api/echo/x/y", nil, 404},
		{"GET", "/echo/x", nil, 404}, // no route prefix
		{"GET", "/api/nothing", nil, 404},
		{"GET", "/api/DefaultRoute", nil, 200},
		{"GET", "/api/files", nil, 200},
		{"PUT", "/api/files/a/b/c.txt", nil, 200}, // no "methods": any
		{"GET", "/api/opt", nil, 200},
		{"GET", "/api/opt/5", nil, 200},
		{"GET", "/api/opt/5/6", nil, 404},
		// authLevel function (the default)
		{"GET", "/api/secure/12", nil, 401},
		{"GET", "/api/secure/12", key(fk), 200},
		{"GET", "/api/secure/12?code=" + fk, nil, 200},
		{"GET", "/api/secure/12", key(mk), 200},
		{"GET", "/api/secure/12", key("wrong"), 401},
		// An OAuth2 redirect to a function-level endpoint: the authorization code is taken
		// for a function key.
		{"GET", "/api/secure/12?code=4%2F0AfJohXn-authorization-code&state=s", nil, 401},
		// The header, when present, wins over ?code=, even when empty.
		{"GET", "/api/secure/12?code=" + fk, key("wrong"), 401},
		{"GET", "/api/secure/12?code=" + fk, key(""), 401},
		{"GET", "/api/secure/abc", key(fk), 404}, // {id:int}
		// authLevel admin
		{"GET", "/api/adminonly", key(fk), 401},
		{"GET", "/api/adminonly", key(mk), 200},
		// anonymous endpoints ignore keys and codes
		{"GET", "/api/echo/x?code=4%2F0AfJohXn-authorization-code", nil, 200},
		{"GET", "/api/echo/x", key("wrong"), 200},
	}
	for _, tt := range tests {
		resp, _ := do(t, h, call{method: tt.method, path: tt.path, header: tt.header})
		if resp.StatusCode != tt.want {
			t.Errorf("%s %s (header key %v): status %d; want %d", tt.method, redactCode(tt.path), tt.header != nil, resp.StatusCode, tt.want)
		}
	}
}

// func start ignores authLevel: the ?code= clash only shows in Azure.
func TestIgnoreAuthLevel(t *testing.T) {
	t.Parallel()
	h := startTestApp(t, StartOptions{IgnoreAuthLevel: true})
	if resp, _ := do(t, h, call{method: "GET", path: "/api/secure/12?code=authorization-code"}); resp.StatusCode != http.StatusOK {
		t.Errorf("status %d; want 200 with authLevel ignored", resp.StatusCode)
	}
}

func TestEmptyRoutePrefix(t *testing.T) {
	t.Parallel()
	root := writeApp(t, map[string]string{
		"host.json": `{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"fakehandler"},"enableForwardingHttpRequest":true},
			"extensions":{"http":{"routePrefix":""}}}`,
		"Echo/function.json": `{"bindings":[{"name":"req","type":"httpTrigger","direction":"in","authLevel":"anonymous","route":"echo/{x}"},
			{"name":"res","type":"http","direction":"out"}]}`,
	})
	h := startApp(t, root, StartOptions{})
	resp, body := do(t, h, call{method: "GET", path: "/echo/1"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d; want 200", resp.StatusCode)
	}
	if got := decodeReceived(t, body); got.Path != "/echo/1" {
		t.Errorf("forwarded path %q; want /echo/1", got.Path)
	}
	if resp, _ := do(t, h, call{method: "GET", path: "/api/echo/1"}); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/api/echo/1: status %d; want 404", resp.StatusCode)
	}
}

// An HTTP function with an extra output binding gets the JSON protocol instead of forwarding.
func TestHTTPOverJSONProtocol(t *testing.T) {
	t.Parallel()
	h := startTestApp(t, StartOptions{})
	resp, body := do(t, h, call{method: "POST", path: "/api/jsonhttp/bob?x=1&x=2", body: strings.NewReader("payload"),
		header: http.Header{"X-Test": {"t"}, "Content-Type": {"text/plain"}}})
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("X-Fake") != "json" || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("status %d, X-Fake %q, Content-Type %q; want 201, json, text/plain from the http output",
			resp.StatusCode, resp.Header.Get("X-Fake"), resp.Header.Get("Content-Type"))
	}
	// The fake put the invocation body it received into the http output's body.
	var inv struct {
		Data struct {
			Req struct {
				URL        string `json:"Url"`
				Method     string
				Query      map[string]string
				Headers    map[string][]string
				Params     map[string]string
				Identities []json.RawMessage
				Body       *string
			}
		}
		Metadata map[string]json.RawMessage
	}
	if err := json.Unmarshal(body, &inv); err != nil {
		t.Fatalf("decode the invocation body: %v\n%s", err, body)
	}
	r := inv.Data.Req
	if want := h.URL() + "/api/jsonhttp/bob?x=1&x=2"; r.URL != want || r.Method != "POST" {
		t.Errorf("Url %q, Method %q; want %q, POST", r.URL, r.Method, want)
	}
	if r.Query["x"] != "1,2" || r.Params["name"] != "bob" || !slices.Equal(r.Headers["X-Test"], []string{"t"}) {
		t.Errorf("Query %v, Params %v, Headers[X-Test] %v; want x=1,2, name=bob, [t]", r.Query, r.Params, r.Headers["X-Test"])
	}
	if r.Identities == nil || len(r.Identities) != 0 || r.Body == nil || *r.Body != "payload" {
		t.Errorf("Identities %v, Body %v; want [] (anonymous) and payload", r.Identities, r.Body)
	}
	if got := string(inv.Metadata["name"]); got != `"\"bob\""` {
		t.Errorf("Metadata.name = %s; want the route value JSON-encoded twice", got)
	}
	results := h.Results()
	if len(results) != 1 || results[0].Function != "JSONHTTP" || !slices.Equal(results[0].Logs, []string{"json http"}) {
		t.Errorf("results = %+v; want one JSONHTTP result with its log", results)
	}
}

func TestAdminManualRun(t *testing.T) {
	t.Parallel()
	h := startTestApp(t, StartOptions{})
	key := func(k string) http.Header { return http.Header{"X-Functions-Key": {k}} }
	tests := []struct {
		method, path string
		header       http.Header
		want         int
	}{
		{"POST", "/admin/functions/Tick", nil, 401},
		{"POST", "/admin/functions/Tick", key(h.FunctionKey()), 401},
		{"POST", "/admin/functions/Nope", key(h.MasterKey()), 404},
		{"POST", "/admin/functions/Echo", key(h.MasterKey()), 400},
		{"GET", "/admin/functions/Tick", key(h.MasterKey()), 404},
		{"POST", "/admin/functions/tick?code=" + h.MasterKey(), nil, 202},
	}
	for _, tt := range tests {
		resp, _ := do(t, h, call{method: tt.method, path: tt.path, header: tt.header, body: strings.NewReader(`{"input":""}`)})
		if resp.StatusCode != tt.want {
			t.Errorf("%s %s: status %d; want %d", tt.method, redactCode(tt.path), resp.StatusCode, tt.want)
		}
	}
	if err := h.WaitIdle(testContext(t)); err != nil {
		t.Fatal(err)
	}
	results := h.Results()
	if len(results) != 1 || results[0].Function != "Tick" || results[0].Failed {
		t.Fatalf("results = %+v; want one successful Tick", results)
	}
	if !hasLog(h, LevelInformation, FunctionCategory("Tick"), "Reason='This function was programmatically called via the host APIs.'") {
		t.Error("no Executing log with the manual-run reason")
	}
}

func TestStop(t *testing.T) {
	t.Parallel()
	t.Run("clean exit on SIGTERM", func(t *testing.T) {
		t.Parallel()
		h := startTestApp(t, StartOptions{})
		if err := h.Stop(testContext(t)); err != nil {
			t.Fatalf("Stop: %v; want nil", err)
		}
		if code, exited := h.ExitCode(); code != 0 || !exited {
			t.Errorf("ExitCode() = %d, %v; want 0, true", code, exited)
		}
		waitLog(t, h, func(e LogEntry) bool { return e.Message == "fake: got SIGTERM" }, "fake: got SIGTERM")
		if err := h.Stop(testContext(t)); err != nil {
			t.Errorf("second Stop: %v; want nil again", err)
		}
		if hasLog(h, LevelError, CategoryHost, "exited unexpectedly") {
			t.Error("a requested stop was logged as an unexpected exit")
		}
	})
	t.Run("non-zero exit code", func(t *testing.T) {
		t.Parallel()
		h := startTestApp(t, StartOptions{Env: defaultEnv("FAKE_EXIT_CODE", "4")})
		var exitErr *ExitError
		if err := h.Stop(testContext(t)); !errors.As(err, &exitErr) || exitErr.Code != 4 || exitErr.Killed {
			t.Errorf("Stop: %v; want an *ExitError with code 4, not killed", err)
		}
	})
	t.Run("SIGTERM ignored", func(t *testing.T) {
		t.Parallel()
		h := startTestApp(t, StartOptions{Env: defaultEnv("FAKE_IGNORE_TERM", "1"), StopGrace: 300 * time.Millisecond})
		var exitErr *ExitError
		if err := h.Stop(testContext(t)); !errors.As(err, &exitErr) || !exitErr.Killed || exitErr.Signal != "killed" {
			t.Errorf("Stop: %v; want an *ExitError, killed by SIGKILL", err)
		}
	})
	t.Run("Kill", func(t *testing.T) {
		t.Parallel()
		h := startTestApp(t, StartOptions{})
		h.Kill()
		if code, exited := h.ExitCode(); code != -1 || !exited {
			t.Errorf("ExitCode() = %d, %v; want -1, true", code, exited)
		}
		res, err := h.InvokeTimer(testContext(t), "Tick", TimerOptions{})
		if err != nil || !res.Failed {
			t.Errorf("InvokeTimer after Kill: %+v, %v; want a failed result", res, err)
		}
		if resp, _ := do(t, h, call{method: "GET", path: "/api/echo/x"}); resp.StatusCode != http.StatusInternalServerError {
			t.Errorf("forwarded request after Kill: status %d; want 500", resp.StatusCode)
		}
	})
	t.Run("unexpected exit is logged", func(t *testing.T) {
		t.Parallel()
		h := startTestApp(t, StartOptions{})
		_ = h.cmd.Process.Kill() // a crash, not a requested stop
		<-h.Done()
		waitLog(t, h, func(e LogEntry) bool {
			return e.Level == LevelError && strings.Contains(e.Message, "exited unexpectedly (signal killed)")
		}, "about the unexpected exit")
	})
}

// The real function.json files, served by the fake handler built under the real name.
func TestRealFunctions(t *testing.T) {
	t.Parallel()
	exe := copyBin(t, "freshtoken", 0o755)
	h := startApp(t, repoRoot, StartOptions{Executable: exe, Env: map[string]string{
		"FUNCTIONS_WORKER_RUNTIME": "custom",
		"REFRESH_SCHEDULE":         "0 */15 * * * *",
	}})
	key := http.Header{"X-Functions-Key": {h.FunctionKey()}}
	tests := []struct {
		name, method, path string
		header             http.Header
		want               int
	}{
		{"provider redirect to the anonymous callback", "GET", "/api/callback/github?code=4%2F0Afauthcode&state=s1", nil, 200},
		{"callback accepts GET only", "POST", "/api/callback/github", nil, 404},
		{"authorize without key", "GET", "/api/authorize/github", nil, 401},
		{"authorize with key header", "GET", "/api/authorize/github", key, 200},
		{"authorize with key in code", "GET", "/api/authorize/github?code=" + h.FunctionKey(), nil, 200},
		{"provider code at a function-level endpoint", "GET", "/api/authorize/github?code=4%2F0Afauthcode&state=s1", nil, 401},
	}
	for _, tt := range tests {
		resp, body := do(t, h, call{method: tt.method, path: tt.path, header: tt.header})
		if resp.StatusCode != tt.want {
			t.Errorf("%s: %s %s: status %d; want %d", tt.name, tt.method, redactCode(tt.path), resp.StatusCode, tt.want)
			continue
		}
		if tt.name == "provider redirect to the anonymous callback" {
			got := decodeReceived(t, body)
			q, _ := url.ParseQuery(got.RawQuery)
			if got.Path != "/api/callback/github" || q.Get("code") != "4/0Afauthcode" || q.Get("state") != "s1" {
				t.Errorf("handler got %s with code of %d bytes, state %q; want /api/callback/github with code and state intact", got.Path, len(q.Get("code")), q.Get("state"))
			}
		}
	}
	res, err := h.InvokeTimer(testContext(t), "RefreshTimer", TimerOptions{})
	if err != nil || res.Failed {
		t.Fatalf("InvokeTimer: %+v, %v", res, err)
	}
	got := decodeReceived(t, res.ReturnValue)
	if got.Path != "/RefreshTimer" || !strings.HasPrefix(got.Body, `{"Data":{"timer":{`) || strings.Contains(got.Body, "RetryContext") {
		t.Errorf("handler got %s with %s; want /RefreshTimer, binding timer, no RetryContext", got.Path, got.Body)
	}
}

// Without REFRESH_SCHEDULE in the app settings, the host cannot index RefreshTimer: the
// product's own default for the schedule does not help the host.
func TestRealTimerNeedsScheduleSetting(t *testing.T) {
	t.Parallel()
	exe := copyBin(t, "freshtoken", 0o755)
	h := startApp(t, repoRoot, StartOptions{Executable: exe, Env: map[string]string{"FUNCTIONS_WORKER_RUNTIME": "custom"}})
	_, err := h.InvokeTimer(testContext(t), "RefreshTimer", TimerOptions{})
	if err == nil || !strings.Contains(err.Error(), "'%REFRESH_SCHEDULE%' does not resolve to a value") {
		t.Errorf("InvokeTimer: %v; want the unresolved setting", err)
	}
}
