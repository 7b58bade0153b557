package funcproto

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzDecodeTimer feeds arbitrary bodies through the whole timer path: Decode, Timer,
// InvocationInfo and Write. Nothing may panic, every error and warning must say something, and
// Write must still produce a JSON object. Seeds live in testdata/fuzz/FuzzDecodeTimer.
func FuzzDecodeTimer(f *testing.F) {
	f.Add([]byte(examplePayload))
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/RefreshTimer", bytes.NewReader(body))
		r.ContentLength = -1
		req, err := Decode(r, 1<<16)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("Decode returned an error with an empty message")
			}
			return
		}
		info, warnings, err := req.Timer("timer")
		if err != nil && err.Error() == "" {
			t.Fatal("Timer returned an error with an empty message")
		}
		for i, w := range warnings {
			if w == "" {
				t.Fatalf("warning %d is empty", i)
			}
		}
		if info.ScheduleStatus == nil && (!info.Last.IsZero() || !info.Next.IsZero()) {
			t.Fatalf("Last/Next set without a ScheduleStatus: %+v", info)
		}
		method, now, retry, maxRetry := req.InvocationInfo()

		rec := httptest.NewRecorder()
		Write(rec, http.StatusOK, InvokeResponse{
			Logs:        append(warnings, method),
			ReturnValue: map[string]any{"now": now, "retry": retry, "max": maxRetry, "info": info},
		})
		var out map[string]json.RawMessage
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out == nil {
			t.Fatalf("Write produced %q, not a JSON object: %v", rec.Body.Bytes(), err)
		}
	})
}
