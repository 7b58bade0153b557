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
