package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/freshtoken/freshtoken/internal/refresh"
	"github.com/rs/zerolog"
)

// fakeRefresher returns a fixed report and counts passes.
type fakeRefresher struct {
	report refresh.Report
	runs   atomic.Int32
}

func (f *fakeRefresher) Run(ctx context.Context) refresh.Report {
	f.runs.Add(1)
	if _, ok := ctx.Deadline(); !ok {
		return refresh.Report{Err: context.DeadlineExceeded} // a pass must always be bounded
	}
	return f.report
}

type fakeRoutes struct{}

func (fakeRoutes) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/authorize/{connection}", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("authorize " + r.PathValue("connection")))
	})
}

const hostPayload = `{"Data":{"timer":{"Schedule":{"AdjustForDST":true},
  "ScheduleStatus":{"Last":"2024-05-01T10:00:00+00:00","Next":"2024-05-01T10:15:00+00:00","LastUpdated":"2024-05-01T10:00:00+00:00"},
  "IsPastDue":false}},
 "Metadata":{"sys":{"MethodName":"RefreshTimer","UtcNow":"2024-05-01T10:15:00.0154321Z","RandGuid":"0f8fad5b-d9cb-469f-a165-70867728950e"}}}`

func TestRoutes(t *testing.T) {
	ok := refresh.Report{Results: []refresh.Result{{Connection: "strava", Outcome: refresh.Refreshed}}}
	failed := refresh.Report{Results: []refresh.Result{{Connection: "strava", Outcome: refresh.Failed, Class: "transient", Detail: "HTTP 503"}}}
	tests := []struct {
		name       string
		report     refresh.Report
		method     string
		path       string
		body       string
		wantStatus int
		wantJSON   bool
		wantText   string
		wantRuns   int32
	}{
		{"readiness ping", ok, "GET", "/", "", 200, false, "running", 0},
		{"timer ok", ok, "POST", "/RefreshTimer", hostPayload, 200, true, "strava: refreshed", 1},
		{"timer failed pass", failed, "POST", "/RefreshTimer", hostPayload, 500, true, "strava: failed (transient): HTTP 503", 1},
		{"timer null schedule status", ok, "POST", "/RefreshTimer", `{"Data":{"timer":{"ScheduleStatus":null,"IsPastDue":true}},"Metadata":{}}`, 200, true, "past due", 1},
		{"timer malformed", ok, "POST", "/RefreshTimer", `{"Data":`, 400, true, "bad invocation", 0},
		{"timer not an object", ok, "POST", "/RefreshTimer", `[1,2]`, 400, true, "bad invocation", 0},
		{"timer oversized", ok, "POST", "/RefreshTimer", `{"Data":{"x":"` + strings.Repeat("a", 2<<20) + `"}}`, 400, true, "bad invocation", 0},
		{"timer wrong method", ok, "GET", "/RefreshTimer", "", 405, false, "", 0},
		{"unknown route", ok, "POST", "/Nope", "{}", 404, false, "", 0},
		{"unknown path under /", ok, "GET", "/favicon.ico", "", 404, false, "", 0},
		{"consent route", ok, "GET", "/api/authorize/strava", "", 200, false, "authorize strava", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeRefresher{report: tt.report}
			h := New(Options{Refresher: f, Consent: fakeRoutes{}, Log: zerolog.New(io.Discard)})
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Errorf("status = %d; want %d (body %q)", rec.Code, tt.wantStatus, trim(rec.Body.String()))
			}
			if got := f.runs.Load(); got != tt.wantRuns {
				t.Errorf("passes = %d; want %d", got, tt.wantRuns)
			}
			if tt.wantJSON {
				if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
					t.Errorf("Content-Type = %q; want application/json", ct)
				}
				var resp struct {
					Outputs     map[string]any
					Logs        []string
					ReturnValue any
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
					t.Fatalf("body is not the host's JSON: %v", err)
				}
				if resp.Outputs == nil || resp.Logs == nil {
					t.Errorf("Outputs or Logs is null in %q; the host wants objects", trim(rec.Body.String()))
				}
				if !strings.Contains(strings.Join(resp.Logs, "\n"), tt.wantText) {
					t.Errorf("Logs = %q; want %q", resp.Logs, tt.wantText)
				}
			} else if !strings.Contains(rec.Body.String(), tt.wantText) {
				t.Errorf("body = %q; want %q", trim(rec.Body.String()), tt.wantText)
			}
		})
	}
}

// TestChunkedInvocation: the host sends the timer body chunked, without Content-Length.
func TestChunkedInvocation(t *testing.T) {
	f := &fakeRefresher{report: refresh.Report{}}
	srv := httptest.NewServer(New(Options{Refresher: f, Log: zerolog.New(io.Discard)}))
	defer srv.Close()
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(hostPayload[:40]))
		pw.Write([]byte(hostPayload[40:]))
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", srv.URL+"/RefreshTimer", pr)
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if len(req.TransferEncoding) == 0 && req.ContentLength != -1 && req.ContentLength != 0 {
		t.Fatalf("the request was not chunked")
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
		t.Errorf("chunked invocation = %d %q; want 200 with a JSON object", resp.StatusCode, body)
	}
	if f.runs.Load() != 1 {
		t.Errorf("passes = %d; want 1", f.runs.Load())
	}
}

func trim(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// TestRefreshTimerInvocationLog: each pass logs the invocation id, past due and the retry
// count, on its zerolog line and as the first line of the invocation's Logs.
func TestRefreshTimerInvocationLog(t *testing.T) {
	const guid = "0f8fad5b-d9cb-469f-a165-70867728950e"
	const hostile = `evil"}` + "\n" + `{"level":"error","message":"forged`
	retryPayload := `{"Data":{"timer":{"ScheduleStatus":{"Last":"2024-05-01T10:00:00+00:00","Next":"2024-05-01T10:15:00+00:00"},"IsPastDue":true}},
		"Metadata":{"RetryContext":{"RetryCount":2,"MaxRetryCount":5}}}`
	tests := []struct {
		name       string
		id         string
		body       string
		wantFields map[string]any // JSON values, as zerolog writes them
		noFields   []string
		wantLine   string // Logs[0]
	}{
		{
			name: "host example",
			id:   guid,
			body: hostPayload,
			wantFields: map[string]any{
				"invocation_id": guid, "past_due": false, "retry_count": 0.0,
				"last_tick": "2024-05-01T10:00:00Z", "next_tick": "2024-05-01T10:15:00Z",
			},
			noFields: []string{"max_retry"},
			wantLine: "invocation " + guid + ": past due: false; retry 0",
		},
		{
			name: "past due, retried",
			id:   guid,
			body: retryPayload,
			wantFields: map[string]any{
				"invocation_id": guid, "past_due": true, "retry_count": 2.0, "max_retry": 5.0,
				"last_tick": "2024-05-01T10:00:00Z", "next_tick": "2024-05-01T10:15:00Z",
			},
			wantLine: "invocation " + guid + ": past due: true (this pass runs late); retry 2 of 5",
		},
		{
			name:       "no id, null schedule status",
			body:       `{"Data":{"timer":{"ScheduleStatus":null,"IsPastDue":false}},"Metadata":{}}`,
			wantFields: map[string]any{"invocation_id": "", "past_due": false, "retry_count": 0.0},
			noFields:   []string{"max_retry", "last_tick", "next_tick"},
			wantLine:   "invocation (no id): past due: false; retry 0",
		},
		{
			name:       "hostile id is not echoed",
			id:         hostile,
			body:       hostPayload,
			wantFields: map[string]any{"invocation_id": "", "past_due": false, "retry_count": 0.0},
			wantLine:   "invocation (no id): past due: false; retry 0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logBuf bytes.Buffer
			f := &fakeRefresher{report: refresh.Report{Results: []refresh.Result{{Connection: "strava", Outcome: refresh.Refreshed}}}}
			h := New(Options{Refresher: f, Log: zerolog.New(&logBuf)})
			req := httptest.NewRequest("POST", "/RefreshTimer", strings.NewReader(tt.body))
			if tt.id != "" {
				req.Header.Set("X-Azure-Functions-InvocationId", tt.id)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Fatalf("status = %d; want 200 (body %q)", rec.Code, trim(rec.Body.String()))
			}

			var pass map[string]any
			for line := range strings.Lines(logBuf.String()) {
				var entry map[string]any
				if err := json.Unmarshal([]byte(line), &entry); err != nil {
					t.Fatalf("log line %q is not JSON: %v", line, err)
				}
				if entry["message"] == "RefreshTimer: starting a refresh pass" {
					if pass != nil {
						t.Errorf("two pass lines in the log: %s", logBuf.String())
					}
					pass = entry
				}
			}
			if pass == nil {
				t.Fatalf("no pass line in the log: %s", logBuf.String())
			}
			for k, want := range tt.wantFields {
				if got, ok := pass[k]; !ok || got != want {
					t.Errorf("pass line field %s = %v (present %v); want %v", k, got, ok, want)
				}
			}
			for _, k := range tt.noFields {
				if got, ok := pass[k]; ok {
					t.Errorf("pass line has field %s = %v; want it absent", k, got)
				}
			}

			var resp struct{ Logs []string }
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
				t.Fatalf("body is not the host's JSON: %v", err)
			}
			if len(resp.Logs) != 2 || resp.Logs[0] != tt.wantLine || resp.Logs[1] != "strava: refreshed" {
				t.Errorf("Logs = %q; want [%q %q]", resp.Logs, tt.wantLine, "strava: refreshed")
			}
			for _, where := range []string{logBuf.String(), rec.Body.String()} {
				if strings.Contains(where, "evil") || strings.Contains(where, "forged") {
					t.Errorf("the hostile invocation id was echoed: %q", where)
				}
			}
		})
	}
}
