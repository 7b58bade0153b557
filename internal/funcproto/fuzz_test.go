package funcproto

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// FuzzDecodeTimer feeds arbitrary bodies through the whole timer path: Decode, Timer,
// Retry and Write. Nothing may panic, every error and warning must say something, and
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
		for _, tm := range []time.Time{info.Last, info.Next} {
			if !tm.IsZero() && tm.Location() != time.UTC {
				t.Fatalf("Last/Next not in UTC: %+v", info)
			}
		}
		retry := req.Retry()

		rec := httptest.NewRecorder()
		Write(rec, http.StatusOK, InvokeResponse{
			Logs:        warnings,
			ReturnValue: map[string]any{"retry": retry, "info": info},
		})
		var out map[string]json.RawMessage
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out == nil {
			t.Fatalf("Write produced %q, not a JSON object: %v", rec.Body.Bytes(), err)
		}
	})
}
