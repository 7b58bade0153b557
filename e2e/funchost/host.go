// Package funchost emulates the Azure Functions host around a custom handler, for end-to-end
// tests: the real host and Core Tools cannot be installed here. It reads the app's real
// host.json and function.json files, starts the handler executable as the host does, invokes
// non-HTTP functions with the host's JSON protocol and validates the replies the way the host
// does, and serves a front door that routes, authorizes and forwards HTTP requests.
//
// The behaviour follows the facts in shared/FUNCTIONS-HOST.md (gathered from the host's
// source). What is not emulated: restarting a handler that exits or times out (the process
// is left dead so a test can see it), automatic retries, the schedule itself (a test calls
// InvokeTimer or the admin endpoint), WEBSITE_TIME_ZONE, and non-HTTP/timer triggers.
package funchost

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// HostVersion is the version the emulator reports in X-Azure-Functions-HostVersion and
// User-Agent: a plausible Functions 4.x host.
const HostVersion = "4.1040.300.1"

// Defaults for StartOptions.
const (
	DefaultReadyTimeout = 30 * time.Second // the host's limit (the docs say 60 s)
	DefaultStopGrace    = 10 * time.Second
	readyPollInterval   = 25 * time.Millisecond
)

// StartOptions configures Start. The zero value works except for Executable when the app root
// holds no built handler.
type StartOptions struct {
	// Executable is the built handler. Its base name must equal that of host.json's
	// defaultExecutablePath, as the host runs that exact name. Empty: <app root>/<path>.
	Executable string
	// Env holds the app settings (local.settings.json Values). The handler gets these plus a
	// few process variables (PATH, HOME, TMPDIR, GOCOVERDIR...) unless InheritEnviron is set,
	// so that a developer's environment cannot leak into a test.
	Env            map[string]string
	InheritEnviron bool
	// FunctionKey and MasterKey are the app's keys; random ones are made when empty.
	FunctionKey, MasterKey string
	// IgnoreAuthLevel emulates `func start`, which ignores authLevel.
	IgnoreAuthLevel bool
	// Stdout and Stderr, when set, get a copy of the handler's raw output.
	Stdout, Stderr io.Writer
	// ReadyTimeout bounds the readiness polling (DefaultReadyTimeout when 0).
	ReadyTimeout time.Duration
	// FunctionTimeout overrides host.json's functionTimeout when > 0.
	FunctionTimeout time.Duration
	// StopGrace is how long Stop waits after SIGTERM before SIGKILL (DefaultStopGrace when 0).
	StopGrace time.Duration
	// FrontDoor, when set, is the listener of the public front door (see Host.URL), so a test
	// knows the app's public URL, e.g. for redirect URLs, before the handler starts.
	FrontDoor net.Listener
}

// Level is a log level, named as the host names them.
type Level string

// Log levels.
const (
	LevelInformation Level = "Information"
	LevelWarning     Level = "Warning"
	LevelError       Level = "Error"
)

// Log categories used by the emulator.
const (
	CategoryConsole = "Host.Function.Console" // the handler's stdout and stderr
	CategoryHost    = "Host"
)

// FunctionCategory is the category of the host's own messages about a function.
func FunctionCategory(function string) string { return "Function." + function }

// UserCategory is the category of a function's invocation Logs entries.
func UserCategory(function string) string { return "Function." + function + ".User" }

// LogEntry is one log record, as the host would send it to App Insights.
type LogEntry struct {
	Time         time.Time
	Level        Level
	Category     string
	Message      string
	InvocationID string // set for invocation logs
}

func (e LogEntry) String() string {
	return fmt.Sprintf("[%s] %s: %s", e.Level, e.Category, e.Message)
}

// Host is a running emulated host with its handler process.
type Host struct {
	app         *App
	opts        StartOptions
	env         map[string]string // the handler's environment
	port        int
	workerID    string
	functions   map[string]*Function // by lower-case name
	funcErrors  map[string]error     // function in error, by lower-case name
	timeout     time.Duration
	functionKey string
	masterKey   string
	client      *http.Client // to the handler
	cmd         *exec.Cmd
	done        chan struct{} // closed when the process has exited
	stdout      *lineWriter
	stderr      *lineWriter
	front       *http.Server
	frontURL    string
	frontDone   chan struct{}
	bg          tracker // admin-triggered invocations in flight
	stopOnce    sync.Once
	stopErr     error
	mu          sync.Mutex
	logs        []LogEntry
	results     []*InvokeResult
	exitState   *os.ProcessState
	stopping    bool
	killed      bool
	outputMu    sync.Mutex // serializes writes to opts.Stdout/Stderr
}

// Start runs the handler as the host does and waits until it answers GET / on its port, then
// opens the front door (see URL). ctx bounds the start-up only; the process lives until Stop
// or Kill. Timer functions whose %Setting% does not resolve are logged as in error and refuse
// invocations, while the rest of the app runs, as in the host.
func (a *App) Start(ctx context.Context, opts StartOptions) (*Host, error) {
	h := &Host{
		app:        a,
		opts:       opts,
		functions:  map[string]*Function{},
		funcErrors: map[string]error{},
		done:       make(chan struct{}),
		frontDone:  make(chan struct{}),
	}
	h.functionKey, h.masterKey = opts.FunctionKey, opts.MasterKey
	if h.functionKey == "" {
		h.functionKey = randomKey()
	}
	if h.masterKey == "" {
		h.masterKey = randomKey()
	}
	h.timeout = a.Host.FunctionTimeout
	if opts.FunctionTimeout > 0 {
		h.timeout = opts.FunctionTimeout
	}
	if rt := opts.Env["FUNCTIONS_WORKER_RUNTIME"]; rt != "" && !strings.EqualFold(rt, "custom") {
		return nil, fmt.Errorf("start host: FUNCTIONS_WORKER_RUNTIME is %q; a custom handler needs \"custom\"", rt)
	}

	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("start host: %w", err)
	}
	h.port = port
	h.workerID = newGUID()
	h.env = h.buildEnv()
	h.indexFunctions()

	exe, err := h.executable()
	if err != nil {
		return nil, fmt.Errorf("start host: %w", err)
	}
	dir := a.Root
	if wd := a.Host.WorkingDirectory; wd != "" {
		dir = wd
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(a.Root, dir)
		}
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("start host: working directory %s is not a directory", dir)
	}

	h.client = &http.Client{
		Transport: &http.Transport{
			DisableCompression:  true, // pass Accept-Encoding and bodies through untouched
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     30 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	h.stdout = &lineWriter{emit: h.consoleLine(false), tee: opts.Stdout, teeMu: &h.outputMu}
	h.stderr = &lineWriter{emit: h.consoleLine(true), tee: opts.Stderr, teeMu: &h.outputMu, keep: 20}

	cmd := exec.Command(exe, a.Host.Arguments...)
	cmd.Dir = dir
	cmd.Env = envList(h.env)
	cmd.Stdout = h.stdout
	cmd.Stderr = h.stderr
	cmd.WaitDelay = 2 * time.Second // a grandchild holding the pipes must not hang Wait
	h.log(LevelInformation, CategoryHost, "", fmt.Sprintf("Starting custom handler %s on port %d (worker %s)", filepath.Base(exe), port, h.workerID))
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start host: run %s: %w", exe, err)
	}
	h.cmd = cmd
	go h.wait()

	if err := h.waitReady(ctx); err != nil {
		h.Kill()
		return nil, fmt.Errorf("start host: %w", err)
	}
	if err := h.startFrontDoor(); err != nil {
		h.Kill()
		return nil, fmt.Errorf("start host: %w", err)
	}
	h.log(LevelInformation, CategoryHost, "", "Worker process started and initialized.")
	h.logFunctions()
	return h, nil
}

// executable checks the handler binary the way the host would find it.
func (h *Host) executable() (string, error) {
	want, err := resolveEnvVars(h.app.Host.ExecutablePath, h.env)
	if err != nil {
		return "", fmt.Errorf("defaultExecutablePath: %w", err)
	}
	exe := h.opts.Executable
	if exe == "" {
		exe = want
		if !filepath.IsAbs(exe) {
			exe = filepath.Join(h.app.Root, exe)
		}
	}
	if filepath.Base(exe) != filepath.Base(want) {
		return "", fmt.Errorf("executable %q is not named %q: the host runs host.json's defaultExecutablePath exactly", filepath.Base(exe), filepath.Base(want))
	}
	abs, err := filepath.Abs(exe)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("executable: %w", err)
	}
	if runtime.GOOS != "windows" && fi.Mode()&0o111 == 0 {
		return "", fmt.Errorf("executable %s has no exec bit (zip tools other than func publish drop it)", abs)
	}
	return abs, nil
}

// processVars are passed through from the test process unless InheritEnviron is set.
var processVars = []string{"PATH", "HOME", "USER", "TMPDIR", "TMP", "TEMP", "LANG", "GOCOVERDIR", "SYSTEMROOT", "GORACE"}

func (h *Host) buildEnv() map[string]string {
	env := map[string]string{}
	if h.opts.InheritEnviron {
		for _, kv := range os.Environ() {
			if k, v, ok := strings.Cut(kv, "="); ok {
				env[k] = v
			}
		}
	} else {
		for _, k := range processVars {
			if v, ok := os.LookupEnv(k); ok {
				env[k] = v
			}
		}
	}
	for k, v := range h.opts.Env {
		env[k] = v
	}
	env["FUNCTIONS_CUSTOMHANDLER_PORT"] = strconv.Itoa(h.port)
	env["FUNCTIONS_CUSTOMHANDLER_WORKER_ID"] = h.workerID
	env["FUNCTIONS_APP_ROOT_PATH"] = h.app.Root
	return env
}

// indexFunctions resolves settings in the bindings; as in the host, a function that fails is
// "in error" (logged, never invoked) while the rest of the app runs.
func (h *Host) indexFunctions() {
	for _, f := range h.app.Functions {
		key := strings.ToLower(f.Name)
		h.functions[key] = f
		if f.IsTimer() {
			if _, err := h.schedule(f); err != nil {
				h.funcErrors[key] = err
				h.log(LevelError, FunctionCategory(f.Name), "", fmt.Sprintf("The '%s' function is in error: %v", f.Name, err))
			}
		}
	}
}

func (h *Host) schedule(f *Function) (*ncrontab, error) {
	expr, err := resolveSettings(f.Trigger.Schedule, h.opts.Env)
	if err != nil {
		return nil, fmt.Errorf("Error indexing method 'Functions.%s': %w", f.Name, err)
	}
	c, err := parseNCrontab(expr)
	if err != nil {
		return nil, fmt.Errorf("Error indexing method 'Functions.%s': %w", f.Name, err)
	}
	return c, nil
}

func (h *Host) logFunctions() {
	var b strings.Builder
	b.WriteString("Functions:")
	for _, f := range h.app.Functions {
		switch {
		case f.Disabled:
			fmt.Fprintf(&b, "\n\t%s: disabled", f.Name)
		case f.IsHTTP():
			methods := "ANY"
			if len(f.Trigger.Methods) > 0 {
				methods = strings.Join(f.Trigger.Methods, ",")
			}
			fmt.Fprintf(&b, "\n\t%s: [%s] %s%s (authLevel %s)", f.Name, methods, h.frontURL, h.publicPath(f.Trigger.Route), f.Trigger.AuthLevel)
		default:
			fmt.Fprintf(&b, "\n\t%s: %s", f.Name, f.Trigger.Type)
		}
	}
	h.log(LevelInformation, CategoryHost, "", b.String())
}

func (h *Host) publicPath(route string) string {
	if h.app.Host.RoutePrefix == "" {
		return "/" + route
	}
	return "/" + h.app.Host.RoutePrefix + "/" + route
}

// waitReady polls GET / as the host does: any HTTP answer means ready; only a refused
// connection means wait. Like the host, other transport errors count as ready too.
func (h *Host) waitReady(ctx context.Context) error {
	limit := h.opts.ReadyTimeout
	if limit <= 0 {
		limit = DefaultReadyTimeout
	}
	deadline := time.Now().Add(limit)
	url := h.HandlerURL() + "/"
	for {
		pingCtx, cancel := context.WithTimeout(ctx, max(time.Until(deadline), readyPollInterval))
		req, err := http.NewRequestWithContext(pingCtx, http.MethodGet, url, nil)
		if err != nil {
			cancel()
			return err
		}
		resp, err := h.client.Do(req)
		cancel()
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("wait for handler: %w", ctx.Err())
		}
		if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, context.DeadlineExceeded) {
			h.log(LevelWarning, CategoryHost, "", fmt.Sprintf("Readiness ping failed (%v); the host treats this as ready", err))
			return nil
		}
		select {
		case <-h.done:
			return fmt.Errorf("handler exited during start-up (%s)%s", h.exitDescription(), h.stderrTail())
		case <-ctx.Done():
			return fmt.Errorf("wait for handler: %w", ctx.Err())
		case <-time.After(readyPollInterval):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("handler did not answer GET %s within %v%s", url, limit, h.stderrTail())
		}
	}
}

func (h *Host) wait() {
	err := h.cmd.Wait()
	h.stdout.flush()
	h.stderr.flush()
	h.mu.Lock()
	h.exitState = h.cmd.ProcessState
	stopping := h.stopping
	h.mu.Unlock()
	close(h.done)
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		h.log(LevelError, CategoryHost, "", fmt.Sprintf("Waiting for the custom handler failed: %v", err))
	}
	if !stopping {
		h.log(LevelError, CategoryHost, "", fmt.Sprintf("Custom handler process exited unexpectedly (%s); the real host would restart it, funchost does not", h.exitDescription()))
	}
}

func (h *Host) exitDescription() string {
	h.mu.Lock()
	st := h.exitState
	h.mu.Unlock()
	if st == nil {
		return "still running"
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "signal " + ws.Signal().String()
	}
	return "exit code " + strconv.Itoa(st.ExitCode())
}

func (h *Host) stderrTail() string {
	lines := h.stderr.tail()
	if len(lines) == 0 {
		return ""
	}
	return "; stderr tail:\n\t" + strings.Join(lines, "\n\t")
}

// URL is the front door, the host's public endpoint: http://127.0.0.1:<port>.
func (h *Host) URL() string { return h.frontURL }

// HandlerURL is the handler's own address, http://127.0.0.1:<FUNCTIONS_CUSTOMHANDLER_PORT>.
func (h *Host) HandlerURL() string { return "http://127.0.0.1:" + strconv.Itoa(h.port) }

// FunctionKey is a key accepted for authLevel function (header x-functions-key or ?code=).
func (h *Host) FunctionKey() string { return h.functionKey }

// MasterKey is the admin key: it passes every authLevel and the admin endpoints.
func (h *Host) MasterKey() string { return h.masterKey }

// WorkerID is the FUNCTIONS_CUSTOMHANDLER_WORKER_ID given to the handler.
func (h *Host) WorkerID() string { return h.workerID }

// App returns the app the host runs.
func (h *Host) App() *App { return h.app }

// Logs returns a copy of every log entry so far: the handler's console output, invocation
// Logs, and the host's own messages.
func (h *Host) Logs() []LogEntry {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]LogEntry(nil), h.logs...)
}

// Results returns every invocation result so far, admin-triggered ones included.
func (h *Host) Results() []*InvokeResult {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*InvokeResult(nil), h.results...)
}

// WaitIdle waits until no admin-triggered invocation is in flight.
func (h *Host) WaitIdle(ctx context.Context) error { return h.bg.wait(ctx) }

func (h *Host) log(level Level, category, invocationID, msg string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.logs = append(h.logs, LogEntry{Time: time.Now(), Level: level, Category: category, Message: msg, InvocationID: invocationID})
}

// consoleLine maps handler output to levels as the host does: stdout Information; stderr
// Error, or Warning when the line contains "warn" in any case.
func (h *Host) consoleLine(stderr bool) func(string) {
	return func(line string) {
		level := LevelInformation
		if stderr {
			level = LevelError
			if strings.Contains(strings.ToLower(line), "warn") {
				level = LevelWarning
			}
		}
		h.log(level, CategoryConsole, "", line)
	}
}

// ExitCode reports the handler's exit code once it has exited (-1 when a signal ended it).
func (h *Host) ExitCode() (code int, exited bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.exitState == nil {
		return 0, false
	}
	return h.exitState.ExitCode(), true
}

// Done is closed when the handler process has exited.
func (h *Host) Done() <-chan struct{} { return h.done }

// ExitError describes a handler that did not stop cleanly.
type ExitError struct {
	Code       int    // -1 when a signal ended the process
	Signal     string // the signal that ended it, if any
	Killed     bool   // funchost sent SIGKILL (Kill, or Stop after its grace period)
	StderrTail []string
}

func (e *ExitError) Error() string {
	var b strings.Builder
	switch {
	case e.Killed:
		b.WriteString("handler was killed")
	case e.Signal != "":
		b.WriteString("handler ended by signal " + e.Signal)
	default:
		b.WriteString("handler exited with code " + strconv.Itoa(e.Code))
	}
	if len(e.StderrTail) > 0 {
		b.WriteString("; stderr tail: " + strings.Join(e.StderrTail, " | "))
	}
	return b.String()
}

func (h *Host) exitError() error {
	h.mu.Lock()
	st, killed := h.exitState, h.killed
	h.mu.Unlock()
	if st == nil {
		return errors.New("handler still running")
	}
	e := &ExitError{Code: st.ExitCode(), Killed: killed}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		e.Signal = ws.Signal().String()
	}
	if e.Code == 0 && !e.Killed && e.Signal == "" {
		return nil
	}
	e.StderrTail = h.stderr.tail()
	return e
}

// Stop shuts the host down: the front door stops accepting requests (in-flight ones may
// finish within the grace period), the handler gets SIGTERM and, if it has not exited after
// StopGrace or when ctx ends, SIGKILL. It returns nil when the handler exited with code 0 by
// itself, else an *ExitError (also when it had already died). Later calls return the same.
func (h *Host) Stop(ctx context.Context) error {
	h.stopOnce.Do(func() {
		grace := h.opts.StopGrace
		if grace <= 0 {
			grace = DefaultStopGrace
		}
		h.mu.Lock()
		h.stopping = true
		h.mu.Unlock()
		graceCtx, cancel := context.WithTimeout(ctx, grace)
		defer cancel()
		h.stopFrontDoor(graceCtx)
		select {
		case <-h.done:
		default:
			h.log(LevelInformation, CategoryHost, "", "Stopping custom handler (SIGTERM)")
			if err := h.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
				h.log(LevelError, CategoryHost, "", fmt.Sprintf("SIGTERM failed: %v", err))
			}
			select {
			case <-h.done:
			case <-graceCtx.Done():
				h.log(LevelWarning, CategoryHost, "", "Custom handler did not exit after SIGTERM; killing it")
				h.kill()
			}
		}
		h.client.CloseIdleConnections()
		h.stopErr = h.exitError()
	})
	return h.stopErr
}

// Kill sends SIGKILL to the handler and waits for it to exit (fault tests). The front door
// keeps serving, so requests now fail as they would against a crashed handler.
func (h *Host) Kill() {
	h.mu.Lock()
	h.stopping = true // an intended exit, not an unexpected one
	h.mu.Unlock()
	h.kill()
}

func (h *Host) kill() {
	select {
	case <-h.done:
		return
	default:
	}
	h.mu.Lock()
	h.killed = true
	h.mu.Unlock()
	_ = h.cmd.Process.Kill()
	<-h.done
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func envList(env map[string]string) []string {
	list := make([]string, 0, len(env))
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	return list
}

// resolveEnvVars expands %VAR% (Environment.ExpandEnvironmentVariables): unknown ones stay.
func resolveEnvVars(s string, env map[string]string) (string, error) {
	var b strings.Builder
	for {
		start := strings.IndexByte(s, '%')
		end := -1
		if start >= 0 {
			end = strings.IndexByte(s[start+1:], '%')
		}
		if start < 0 || end < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		name := s[start+1 : start+1+end]
		b.WriteString(s[:start])
		if v, ok := env[name]; ok {
			b.WriteString(v)
		} else {
			b.WriteString("%" + name + "%")
		}
		s = s[start+end+2:]
	}
}

// newGUID returns a random (version 4) GUID in the host's lower-case 8-4-4-4-12 form.
func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func randomKey() string {
	return strings.ReplaceAll(newGUID(), "-", "")
}

// lineWriter turns a byte stream into lines for emit, copying raw bytes to tee.
type lineWriter struct {
	emit  func(string)
	tee   io.Writer
	teeMu *sync.Mutex
	keep  int // how many last lines tail keeps

	mu   sync.Mutex
	buf  []byte
	last []string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	if w.tee != nil {
		w.teeMu.Lock()
		_, _ = w.tee.Write(p)
		w.teeMu.Unlock()
	}
	w.mu.Lock()
	w.buf = append(w.buf, p...)
	var lines []string
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		lines = append(lines, strings.TrimRight(string(w.buf[:i]), "\r"))
		w.buf = w.buf[i+1:]
	}
	w.remember(lines)
	w.mu.Unlock()
	for _, l := range lines {
		w.emit(l)
	}
	return len(p), nil
}

func (w *lineWriter) remember(lines []string) {
	if w.keep == 0 {
		return
	}
	w.last = append(w.last, lines...)
	if n := len(w.last) - w.keep; n > 0 {
		w.last = append([]string(nil), w.last[n:]...)
	}
}

func (w *lineWriter) flush() {
	w.mu.Lock()
	rest := string(w.buf)
	w.buf = nil
	if rest != "" {
		w.remember([]string{rest})
	}
	w.mu.Unlock()
	if rest != "" {
		w.emit(rest)
	}
}

func (w *lineWriter) tail() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.last...)
}

// tracker counts in-flight background work and lets callers wait for none.
type tracker struct {
	mu   sync.Mutex
	n    int
	idle chan struct{}
}

func (t *tracker) add() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n == 0 {
		t.idle = make(chan struct{})
	}
	t.n++
}

func (t *tracker) done() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n--
	if t.n == 0 {
		close(t.idle)
	}
}

func (t *tracker) wait(ctx context.Context) error {
	t.mu.Lock()
	if t.n == 0 {
		t.mu.Unlock()
		return nil
	}
	idle := t.idle
	t.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
