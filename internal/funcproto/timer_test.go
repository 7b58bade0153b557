package funcproto

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func utc(y int, mo time.Month, d, h, mi, s, ns int) time.Time {
	return time.Date(y, mo, d, h, mi, s, ns, time.UTC)
}

// timerData builds a request whose Data.timer is the given raw JSON.
func timerData(raw string) InvokeRequest {
	return InvokeRequest{Data: map[string]json.RawMessage{"timer": json.RawMessage(raw)}}
}

func mustDecode(t *testing.T, body string) InvokeRequest {
	t.Helper()
	req, err := Decode(newRequest(body), 0)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	return req
}

func TestTimer(t *testing.T) {
	ten, quarterPast := utc(2024, 5, 1, 10, 0, 0, 0), utc(2024, 5, 1, 10, 15, 0, 0)
	tests := []struct {
		name         string
		req          InvokeRequest
		binding      string
		want         TimerInfo
		wantWarnings []string // substrings, one per expected warning, in order
	}{
		{
			name: "host example",
			req:  mustDecode(t, examplePayload),
			want: TimerInfo{Last: ten, Next: quarterPast},
		},
		{
			name: "first run",
			req: mustDecode(t, `{"Data":{"timer":{"Schedule":{"AdjustForDST":true},
				"ScheduleStatus":{"Last":"0001-01-01T00:00:00+00:00","Next":"2024-05-01T10:15:00+00:00","LastUpdated":"0001-01-01T00:00:00+00:00"},
				"IsPastDue":false}},"Metadata":{}}`),
			want: TimerInfo{Next: quarterPast},
		},
		{
			name: "ScheduleStatus null",
			req:  mustDecode(t, `{"Data":{"timer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":null,"IsPastDue":false}}}`),
		},
		{
			name: "past due, fields missing",
			req:  timerData(`{"IsPastDue":true}`),
			want: TimerInfo{IsPastDue: true},
		},
		{
			name: "empty object",
			req:  timerData(`{}`),
		},
		{
			name: "lower-case names and binding",
			req: InvokeRequest{Data: map[string]json.RawMessage{"TIMER": json.RawMessage(
				`{"schedulestatus":{"last":"2024-05-01T10:00:00Z","next":"2024-05-01T10:15:00Z"},"ispastdue":true}`)}},
			want: TimerInfo{IsPastDue: true, Last: ten, Next: quarterPast},
		},
		{
			name: "values JSON-encoded twice",
			req: timerData(`{"ScheduleStatus":{"Last":"\"2024-05-01T10:00:00+00:00\"","Next":"\"2024-05-01T10:15:00.0000000+00:00\""},
				"IsPastDue":"\"True\"","Schedule":"{\"AdjustForDST\":\"true\"}"}`),
			want: TimerInfo{IsPastDue: true, Last: ten, Next: quarterPast},
		},
		{
			name: "whole binding JSON-encoded as a string",
			req:  timerData(`"{\"ScheduleStatus\":{\"Last\":\"2024-05-01T10:00:00+00:00\"},\"IsPastDue\":true}"`),
			want: TimerInfo{IsPastDue: true, Last: ten},
		},
		{
			name: "seven-digit fractions, offsets, odd separators",
			req: timerData(`{"ScheduleStatus":{"Last":"2024-05-01T12:00:00.1234567+02:00","Next":"2024-05-01 10:15:00.5Z",
				"LastUpdated":"2024-05-01T10:00:00+0000"}}`),
			want: TimerInfo{
				Last: utc(2024, 5, 1, 10, 0, 0, 123456700),
				Next: utc(2024, 5, 1, 10, 15, 0, 500000000),
			},
		},
		{
			name: "no offset: assumed UTC with a warning",
			req:  timerData(`{"ScheduleStatus":{"Last":"2024-05-01T10:00:00","Next":"2024-05-01T10:15:00.0000001"}}`),
			want: TimerInfo{
				Last: ten,
				Next: utc(2024, 5, 1, 10, 15, 0, 100),
			},
			wantWarnings: []string{"ScheduleStatus.Last: timestamp \"2024-05-01T10:00:00\" has no UTC offset", "ScheduleStatus.Next"},
		},
		{
			name:         ".NET and Microsoft JSON date forms",
			req:          timerData(`{"ScheduleStatus":{"Last":"5/1/2024 10:00:00 AM","Next":"/Date(1714558500000)/","LastUpdated":"05/01/2024 10:00:00"}}`),
			want:         TimerInfo{Last: ten, Next: quarterPast},
			wantWarnings: []string{"Last: timestamp"},
		},
		{
			name: "MinValue with an offset is still no time",
			req:  timerData(`{"ScheduleStatus":{"Last":"0001-01-01T00:00:00+01:00","Next":"0001-01-01T00:00:00"}}`),
			// "no offset" is not worth a warning for a value that means "never".
		},
		{
			name: "garbage timestamps become zero with warnings",
			req: timerData(`{"ScheduleStatus":{"Last":"yesterday at ten","Next":1714558500,"LastUpdated":"2024-13-45T99:00:00Z"},
				"IsPastDue":"maybe","Schedule":[1]}`),
			wantWarnings: []string{
				"IsPastDue: not a boolean",
				`ScheduleStatus.Last: unparsable timestamp "yesterday at ten"`,
				"ScheduleStatus.Next: a JSON number is not a timestamp",
			},
		},
		{
			name:         "ScheduleStatus of the wrong kind",
			req:          timerData(`{"ScheduleStatus":"soon"}`),
			wantWarnings: []string{"ScheduleStatus: is a JSON string, want an object or null"},
		},
		{
			name:         "binding missing",
			req:          mustDecode(t, `{"Data":{"other":{}},"Metadata":{}}`),
			wantWarnings: []string{`timer binding "timer" not in invocation Data (bindings present: "other")`},
		},
		{
			name:         "no Data at all",
			req:          mustDecode(t, `{}`),
			wantWarnings: []string{"bindings present: none"},
		},
		{
			name:         "binding null",
			req:          timerData(`null`),
			wantWarnings: []string{"value is null"},
		},
		{
			name:         "binding is an array",
			req:          timerData(`[{"IsPastDue":true}]`),
			wantWarnings: []string{"value is a JSON array, want an object"},
		},
		{
			name:         "binding is a plain string",
			req:          timerData(`"\"tick\""`),
			wantWarnings: []string{"value is a JSON string"},
		},
		{
			name:    "other binding name",
			req:     InvokeRequest{Data: map[string]json.RawMessage{"myTimer": json.RawMessage(`{"IsPastDue":true}`)}},
			binding: "myTimer",
			want:    TimerInfo{IsPastDue: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			binding := tt.binding
			if binding == "" {
				binding = "timer"
			}
			got, warnings, err := tt.req.Timer(binding)
			if err != nil {
				t.Fatalf("Timer: got error %v; want nil", err)
			}
			checkTimerInfo(t, got, tt.want)
			if len(warnings) != len(tt.wantWarnings) {
				t.Fatalf("warnings = %q; want %d matching %q", warnings, len(tt.wantWarnings), tt.wantWarnings)
			}
			for i, w := range tt.wantWarnings {
				if !strings.Contains(warnings[i], w) {
					t.Errorf("warning[%d] = %q; want it to contain %q", i, warnings[i], w)
				}
			}
		})
	}
}

func checkTimerInfo(t *testing.T, got, want TimerInfo) {
	t.Helper()
	for _, f := range []struct {
		name      string
		got, want time.Time
	}{{"Last", got.Last, want.Last}, {"Next", got.Next, want.Next}} {
		if !f.got.Equal(f.want) || f.got.Location() != time.UTC {
			t.Errorf("%s = %v; want %v (UTC)", f.name, f.got, f.want)
		}
	}
	if got.IsPastDue != want.IsPastDue {
		t.Errorf("IsPastDue = %v; want %v", got.IsPastDue, want.IsPastDue)
	}
}

// Only a value that is not JSON at all is an error; Decode cannot produce one, a caller can.
func TestTimerValueNotJSON(t *testing.T) {
	_, _, err := timerData(`{"IsPastDue":`).Timer("timer")
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("got %v; want an error matching ErrMalformed", err)
	}
	if !strings.Contains(err.Error(), `timer binding "timer": value is not JSON`) {
		t.Errorf("error = %q; want it to name the binding and the problem", err)
	}
}

func TestRetry(t *testing.T) {
	tests := []struct {
		name string
		req  InvokeRequest
		want Retry
	}{
		{name: "host example", req: mustDecode(t, examplePayload)},
		{
			name: "retry policy",
			req: mustDecode(t, `{"Data":{},"Metadata":{"sys":{"MethodName":"RefreshTimer","UtcNow":"2024-05-01T10:15:00Z"},
				"RetryContext":{"RetryCount":2,"MaxRetryCount":5,"Exception":null}}}`),
			want: Retry{Count: 2, Max: 5},
		},
		{
			name: "RetryContext JSON-encoded as a string",
			req:  mustDecode(t, `{"Metadata":{"RetryContext":"{\"RetryCount\":\"\\\"1\\\"\",\"MaxRetryCount\":\"3\"}"}}`),
			want: Retry{Count: 1, Max: 3},
		},
		{
			name: "counts JSON-encoded twice",
			req:  mustDecode(t, `{"Metadata":{"RetryContext":{"RetryCount":"\"1\"","MaxRetryCount":"3"}}}`),
			want: Retry{Count: 1, Max: 3},
		},
		{
			name: "case-insensitive, float counts",
			req:  mustDecode(t, `{"metadata":{"SYS":{"methodname":"RefreshTimer"},"retrycontext":{"retrycount":1.0,"maxretrycount":4}}}`),
			want: Retry{Count: 1, Max: 4},
		},
		{
			name: "unlimited retries",
			req:  mustDecode(t, `{"Metadata":{"RetryContext":{"RetryCount":7,"MaxRetryCount":-1}}}`),
			want: Retry{Count: 7, Max: -1},
		},
		{
			name: "garbage is zero",
			req:  mustDecode(t, `{"Metadata":{"RetryContext":{"RetryCount":"many","MaxRetryCount":1e300}}}`),
		},
		{name: "RetryContext of the wrong kind", req: mustDecode(t, `{"Metadata":{"RetryContext":[2,5]}}`)},
		{name: "no metadata", req: mustDecode(t, `{"Data":{}}`)},
		{name: "null metadata entries", req: mustDecode(t, `{"Metadata":{"sys":null,"RetryContext":null}}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.req.Retry(); got != tt.want {
				t.Errorf("Retry() = %+v; want %+v", got, tt.want)
			}
		})
	}
}
