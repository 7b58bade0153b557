// Command fakehandler is a stand-in custom handler for funchost's own tests: it reports what
// it receives and misbehaves on request, so that the emulator's checks can be tested.
// Behaviour is chosen by function name (timer functions) or path, and by environment:
// FAKE_EXIT_AT_START=<code>, FAKE_NEVER_LISTEN=1, FAKE_LISTEN_DELAY=<duration>,
// FAKE_IGNORE_TERM=1, FAKE_EXIT_CODE=<code on SIGTERM>.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	port := os.Getenv("FUNCTIONS_CUSTOMHANDLER_PORT")
	if port == "" {
		fmt.Fprintln(os.Stderr, "fake: FUNCTIONS_CUSTOMHANDLER_PORT not set")
		os.Exit(2)
	}
	if code := os.Getenv("FAKE_EXIT_AT_START"); code != "" {
		fmt.Fprintln(os.Stderr, "fake: boom at start")
		n, _ := strconv.Atoi(code)
		os.Exit(n)
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	if os.Getenv("FAKE_NEVER_LISTEN") != "" {
		<-term
		os.Exit(0)
	}
	if d, err := time.ParseDuration(os.Getenv("FAKE_LISTEN_DELAY")); err == nil {
		time.Sleep(d)
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake: listen:", err)
		os.Exit(1)
	}
	fmt.Println("fake: listening on port " + port)
	fmt.Fprintln(os.Stderr, "fake: WARNING this line is a warning")
	fmt.Fprintln(os.Stderr, "fake: this line is an error")

	srv := &http.Server{Handler: http.HandlerFunc(serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	for range term {
		fmt.Println("fake: got SIGTERM")
		if os.Getenv("FAKE_IGNORE_TERM") != "" {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = srv.Shutdown(ctx)
		cancel()
		n, _ := strconv.Atoi(os.Getenv("FAKE_EXIT_CODE"))
		os.Exit(n)
	}
}

// received is what the fake reports back about a request.
type received struct {
	Method           string              `json:"method"`
	Path             string              `json:"path"`
	RawQuery         string              `json:"rawQuery"`
	Host             string              `json:"host"`
	Headers          map[string][]string `json:"headers"`
	ContentLength    int64               `json:"contentLength"`
	TransferEncoding []string            `json:"transferEncoding"`
	Body             string              `json:"body"`
	Env              map[string]string   `json:"env"`
	Args             []string            `json:"args"`
	Cwd              string              `json:"cwd"`
}

func describe(r *http.Request) received {
	body, _ := io.ReadAll(r.Body)
	cwd, _ := os.Getwd()
	env := map[string]string{}
	for _, k := range []string{"FUNCTIONS_CUSTOMHANDLER_PORT", "FUNCTIONS_CUSTOMHANDLER_WORKER_ID", "FUNCTIONS_APP_ROOT_PATH", "APP_SETTING", "FUNCHOST_TEST_LEAK"} {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	return received{
		Method: r.Method, Path: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery, Host: r.Host,
		Headers: r.Header, ContentLength: r.ContentLength, TransferEncoding: r.TransferEncoding,
		Body: string(body), Env: env, Args: os.Args[1:], Cwd: cwd,
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func serve(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	switch {
	case path == "/" && r.Method == http.MethodGet:
		_, _ = io.WriteString(w, "ok")
	case strings.HasSuffix(path, "/redirect"):
		http.SetCookie(w, &http.Cookie{Name: "sid", Value: "abc", Path: "/", HttpOnly: true})
		w.Header().Set("Location", "https://provider.example/authorize?state=xyz")
		w.WriteHeader(http.StatusFound)
	case strings.HasSuffix(path, "/raw"):
		w.Header()["Content-Type"] = nil // no Content-Type at all, which Go would otherwise sniff
		_, _ = io.WriteString(w, "raw bytes")
	case r.Method == http.MethodPost && strings.Count(path, "/") == 1:
		invoke(w, r, strings.TrimPrefix(path, "/"))
	default:
		writeJSON(w, http.StatusOK, describe(r))
	}
}

// invoke answers a JSON-protocol invocation according to the function name.
func invoke(w http.ResponseWriter, r *http.Request, function string) {
	got := describe(r)
	switch function {
	case "Tick", "Frequent", "NoMonitor", "RefreshTimer":
		writeJSON(w, http.StatusOK, map[string]any{"Outputs": map[string]any{}, "Logs": []string{"received " + function}, "ReturnValue": got})
	case "TickLower":
		writeJSON(w, http.StatusOK, map[string]any{"outputs": map[string]any{"x": 1}, "logs": []any{"lower", 7}, "returnvalue": "done"})
	case "TickTextJSON":
		w.Header().Set("Content-Type", "text/json")
		_, _ = io.WriteString(w, `{"Outputs":{},"Logs":["text/json is fine"],"ReturnValue":null}`)
	case "TickText":
		// No Content-Type: Go sniffs text/plain, which the host cannot read.
		_, _ = io.WriteString(w, `{"Outputs":{},"Logs":["never seen"],"ReturnValue":null}`)
	case "TickEmpty":
		w.WriteHeader(http.StatusOK)
	case "TickNull":
		writeJSON(w, http.StatusOK, nil)
	case "TickFail":
		writeJSON(w, http.StatusInternalServerError, map[string]any{"Outputs": map[string]any{}, "Logs": []string{"failure log is discarded"}, "ReturnValue": nil})
	case "TickBadJSON":
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"Outputs":`)
	case "TickArray":
		writeJSON(w, http.StatusOK, []string{"not", "an", "object"})
	case "TickSlow":
		<-r.Context().Done()
	case "JSONHTTP":
		writeJSON(w, http.StatusOK, map[string]any{
			"Outputs": map[string]any{
				"res": map[string]any{"statusCode": "201", "body": got.Body, "headers": map[string]string{"X-Fake": "json"}},
				"msg": "queued",
			},
			"Logs":        []string{"json http"},
			"ReturnValue": nil,
		})
	default: // a forwarded HTTP request whose path has a single segment
		writeJSON(w, http.StatusOK, got)
	}
}
