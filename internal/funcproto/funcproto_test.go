package funcproto

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// examplePayload is the timer invocation body from FUNCTIONS-HOST.md, byte for byte.
const examplePayload = `{"Data":{"timer":{"Schedule":{"AdjustForDST":true},
  "ScheduleStatus":{"Last":"2024-05-01T10:00:00+00:00","Next":"2024-05-01T10:15:00+00:00","LastUpdated":"2024-05-01T10:00:00+00:00"},
  "IsPastDue":false}},
 "Metadata":{"sys":{"MethodName":"RefreshTimer","UtcNow":"2024-05-01T10:15:00.0154321Z","RandGuid":"0f8fad5b-d9cb-469f-a165-70867728950e"}}}`

func newRequest(body string) *http.Request {
	return httptest.NewRequest(http.MethodPost, "/RefreshTimer", strings.NewReader(body))
}

// chunked returns a request whose length is unknown, as the host's chunked POST arrives.
func chunked(body io.Reader) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/RefreshTimer", body)
	r.ContentLength = -1
	return r
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		req     *http.Request
		limit   int64
		wantErr error  // nil: success
		wantMsg string // substring of the error message
		check   func(t *testing.T, got InvokeRequest)
	}{
		{
			name: "host example",
			req:  newRequest(examplePayload),
			check: func(t *testing.T, got InvokeRequest) {
				if _, ok := got.Data["timer"]; !ok {
					t.Errorf("Data keys = %v; want timer", keyList(got.Data))
				}
				if _, ok := got.Metadata["sys"]; !ok {
					t.Errorf("Metadata keys = %v; want sys", keyList(got.Metadata))
				}
			},
		},
		{
			name: "property names are case-insensitive",
			req:  newRequest(`{"data":{"timer":{}},"METADATA":{"sys":{}}}`),
			check: func(t *testing.T, got InvokeRequest) {
				if len(got.Data) != 1 || len(got.Metadata) != 1 {
					t.Errorf("got %d Data and %d Metadata entries; want 1 and 1", len(got.Data), len(got.Metadata))
				}
			},
		},
		{
			name: "empty object",
			req:  newRequest(`{}`),
			check: func(t *testing.T, got InvokeRequest) {
				if got.Data != nil || got.Metadata != nil {
					t.Errorf("got %+v; want zero InvokeRequest", got)
				}
			},
		},
		{
			name: "chunked body without Content-Length",
			req:  chunked(iotest.HalfReader(strings.NewReader(examplePayload))),
			check: func(t *testing.T, got InvokeRequest) {
				if _, ok := got.Data["timer"]; !ok {
					t.Errorf("Data keys = %v; want timer", keyList(got.Data))
				}
			},
		},
		{name: "empty body", req: newRequest(""), wantErr: ErrMalformed, wantMsg: "invocation body is empty"},
		{name: "no body", req: httptest.NewRequest(http.MethodPost, "/RefreshTimer", nil), wantErr: ErrMalformed, wantMsg: "invocation body is empty"},
		{name: "whitespace body", req: newRequest(" \r\n\t"), wantErr: ErrMalformed, wantMsg: "invocation body is empty"},
		{name: "not JSON", req: newRequest(`{"Data":`), wantErr: ErrMalformed, wantMsg: "invocation body is not JSON: unexpected end at offset 8"},
		{name: "bad character", req: newRequest(`{"Data":x}`), wantErr: ErrMalformed, wantMsg: "invocation body is not JSON: syntax error at offset 9"},
		{name: "trailing data", req: newRequest(`{} {}`), wantErr: ErrMalformed, wantMsg: "not JSON"},
		{name: "array", req: newRequest(`[{"Data":{}}]`), wantErr: ErrMalformed, wantMsg: "not an object (got array)"},
		{name: "null", req: newRequest(`null`), wantErr: ErrMalformed, wantMsg: "not an object (got null)"},
		{name: "string", req: newRequest(`"{}"`), wantErr: ErrMalformed, wantMsg: "not an object (got string)"},
		{name: "Data of the wrong kind", req: newRequest(`{"Data":"timer"}`), wantErr: ErrMalformed, wantMsg: "field Data of JSON kind string"},
		{name: "oversized by Content-Length", req: newRequest(`{"Data":{}}`), limit: 4, wantErr: ErrTooLarge, wantMsg: "invocation body exceeds 4 bytes"},
		{name: "oversized chunked", req: chunked(strings.NewReader(`{"Data":{"timer":{}}}`)), limit: 10, wantErr: ErrTooLarge, wantMsg: "invocation body exceeds 10 bytes"},
		{name: "exactly at the limit", req: chunked(strings.NewReader(`{"Data":{}}`)), limit: 11},
		{
			name: "tighter MaxBytesReader upstream",
			req: func() *http.Request {
				r := chunked(strings.NewReader(examplePayload))
				r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 16)
				return r
			}(),
			wantErr: ErrTooLarge, wantMsg: "exceeds 16 bytes",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(tt.req, tt.limit)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Decode: got error %q; want nil", err)
				}
				if tt.check != nil {
					tt.check(t, got)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Decode: got error %v; want one matching %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Decode error = %q; want it to contain %q", err, tt.wantMsg)
			}
		})
	}
}

func TestDecodeInvocationID(t *testing.T) {
	const guid = "0f8fad5b-d9cb-469f-a165-70867728950e"
	tests := []struct {
		name   string
		header []string // values of X-Azure-Functions-InvocationId; nil: no header
		body   string
		want   string
	}{
		{name: "host GUID", header: []string{guid}, want: guid},
		{name: "upper-case GUID", header: []string{strings.ToUpper(guid)}, want: strings.ToUpper(guid)},
		{name: "missing", want: ""},
		{name: "empty", header: []string{""}, want: ""},
		{name: "first of two headers", header: []string{guid, "abc"}, want: guid},
		{name: "log injection", header: []string{guid + "\n{\"level\":\"error\"}"}, want: ""},
		{name: "markup", header: []string{"<script>alert(1)</script>"}, want: ""},
		{name: "spaces", header: []string{"0f8fad5b d9cb"}, want: ""},
		{name: "not hex", header: []string{"access-token-xyz"}, want: ""},
		{name: "non-ASCII", header: []string{"0f8fad5b\u00e9"}, want: ""},
		{name: "at the length bound", header: []string{strings.Repeat("a", maxInvocationIDLen)}, want: strings.Repeat("a", maxInvocationIDLen)},
		{name: "too long", header: []string{strings.Repeat("a", maxInvocationIDLen+1)}, want: ""},
		{name: "not taken from the body", body: `{"InvocationID":"` + guid + `","invocationId":"` + guid + `"}`, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := tt.body
			if body == "" {
				body = examplePayload
			}
			r := newRequest(body)
			for _, v := range tt.header {
				r.Header.Add(headerInvocationID, v)
			}
			got, err := Decode(r, 0)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got.InvocationID != tt.want {
				t.Errorf("InvocationID = %q; want %q", got.InvocationID, tt.want)
			}
		})
	}
}

func TestDecodeReadError(t *testing.T) {
	boom := errors.New("connection reset")
	_, err := Decode(chunked(iotest.ErrReader(boom)), 0)
	if !errors.Is(err, boom) {
		t.Fatalf("got %v; want it to wrap %v", err, boom)
	}
	if errors.Is(err, ErrMalformed) || errors.Is(err, ErrTooLarge) {
		t.Errorf("got %v; a read error must not look like a bad body", err)
	}
}

// Decode errors end up in logs; bodies can carry request data (codes, tokens).
func TestDecodeErrorsDoNotEchoBody(t *testing.T) {
	const secret = "s3cr3t-authorization-code"
	bodies := []string{
		`{"Data":{"req":{"Query":{"code":"` + secret + `"}}}`, // truncated
		`{"Data":"` + secret + `"}`,
		`"` + secret + `"`,
		secret,
		`{"Data":{}} ` + secret,
	}
	for _, body := range bodies {
		_, err := Decode(newRequest(body), 0)
		if err == nil {
			t.Fatalf("Decode(body of %d bytes): got nil error; want one", len(body))
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("Decode error for a body of %d bytes echoes the body: %q", len(body), err)
		}
		// A single quoted character is body content too (json.SyntaxError quotes one).
		if strings.Contains(err.Error(), "'") {
			t.Errorf("Decode error quotes a character of the body: %q", err)
		}
	}
}

// TestDecodeChunkedOverHTTP sends the body the way the host does: chunked, over a real
// connection, so that the server sees no Content-Length.
func TestDecodeChunkedOverHTTP(t *testing.T) {
	type result struct {
		contentLength int64
		te            []string
		req           InvokeRequest
		err           error
	}
	got := make(chan result, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := Decode(r, defaultLimit)
		got <- result{r.ContentLength, r.TransferEncoding, req, err}
		Write(w, http.StatusOK, InvokeResponse{})
	}))
	defer srv.Close()

	req, err := http.NewRequest(http.MethodPost, srv.URL+"/RefreshTimer", io.NopCloser(strings.NewReader(examplePayload)))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1
	req.TransferEncoding = []string{"chunked"}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set(headerInvocationID, "0f8fad5b-d9cb-469f-a165-70867728950e")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	r := <-got
	if r.contentLength != -1 || len(r.te) != 1 || r.te[0] != "chunked" {
		t.Fatalf("server saw ContentLength %d, TransferEncoding %v; want -1, [chunked]", r.contentLength, r.te)
	}
	if r.err != nil {
		t.Fatalf("Decode: %v", r.err)
	}
	if r.req.InvocationID != "0f8fad5b-d9cb-469f-a165-70867728950e" {
		t.Errorf("InvocationID = %q; want the header's GUID", r.req.InvocationID)
	}
	if _, _, err := r.req.Timer("timer"); err != nil {
		t.Errorf("Timer: %v", err)
	}
}

func TestWrite(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		resp       InvokeResponse
		wantStatus int
		wantBody   string // exact, when set
		wantLog    string // substring of some Logs entry, when set
	}{
		{
			name:       "zero response",
			status:     http.StatusOK,
			wantStatus: http.StatusOK,
			wantBody:   `{"Outputs":{},"Logs":[],"ReturnValue":null}`,
		},
		{
			name:       "logs and outputs",
			status:     http.StatusOK,
			resp:       InvokeResponse{Outputs: map[string]any{"res": map[string]any{"statusCode": 200}}, Logs: []string{"refreshed 2 of 2"}, ReturnValue: "ok"},
			wantStatus: http.StatusOK,
			wantBody:   `{"Outputs":{"res":{"statusCode":200}},"Logs":["refreshed 2 of 2"],"ReturnValue":"ok"}`,
		},
		{
			name:       "failure status keeps the body",
			status:     http.StatusInternalServerError,
			resp:       InvokeResponse{Logs: []string{"store unavailable"}},
			wantStatus: http.StatusInternalServerError,
			wantBody:   `{"Outputs":{},"Logs":["store unavailable"],"ReturnValue":null}`,
		},
		{
			name:       "unencodable return value",
			status:     http.StatusOK,
			resp:       InvokeResponse{Logs: []string{"kept"}, ReturnValue: make(chan int)},
			wantStatus: http.StatusInternalServerError,
			wantLog:    "could not be encoded as JSON",
		},
		{
			name:       "NaN output",
			status:     http.StatusOK,
			resp:       InvokeResponse{Outputs: map[string]any{"x": math.NaN()}},
			wantStatus: http.StatusInternalServerError,
			wantLog:    "could not be encoded as JSON",
		},
		{
			name:       "status without a body",
			status:     http.StatusNoContent,
			wantStatus: http.StatusOK,
			wantLog:    "response status 204 cannot carry a body",
		},
		{
			name:       "invalid status",
			status:     0,
			wantStatus: http.StatusInternalServerError,
			wantLog:    "invalid response status 0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			Write(rec, tt.status, tt.resp)
			if rec.Code != tt.wantStatus {
				t.Errorf("status = %d; want %d", rec.Code, tt.wantStatus)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("Content-Type = %q; want application/json; charset=utf-8", ct)
			}
			body := rec.Body.Bytes()
			if cl := rec.Header().Get("Content-Length"); cl != strconv.Itoa(len(body)) {
				t.Errorf("Content-Length = %q; want %d", cl, len(body))
			}
			if tt.wantBody != "" && string(body) != tt.wantBody {
				t.Errorf("body = %s; want %s", body, tt.wantBody)
			}
			// Whatever happened, the host must get an object with Outputs and Logs.
			var got struct {
				Outputs map[string]json.RawMessage
				Logs    []string
			}
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("body is not a JSON object: %v", err)
			}
			if got.Outputs == nil || got.Logs == nil {
				t.Errorf("body = %s; want non-null Outputs and Logs", body)
			}
			if tt.wantLog != "" {
				found := false
				for _, l := range got.Logs {
					found = found || strings.Contains(l, tt.wantLog)
				}
				if !found {
					t.Errorf("Logs = %q; want an entry containing %q", got.Logs, tt.wantLog)
				}
			}
			for _, keep := range tt.resp.Logs {
				if !bytes.Contains(body, []byte(keep)) {
					t.Errorf("body = %s; want it to keep log %q", body, keep)
				}
			}
		})
	}
}
