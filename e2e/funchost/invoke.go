package funchost

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Request headers the host sets on every call to the handler.
const (
	headerInvocationID = "X-Azure-Functions-InvocationId"
	headerHostVersion  = "X-Azure-Functions-HostVersion"
	userAgent          = "Azure-Functions-Host/" + HostVersion
	maxResponseBody    = 32 << 20
)

// workerCategory is where the host logs its complaints about a handler's reply.
const workerCategory = "Microsoft.Azure.WebJobs.Script.Workers.Http.DefaultHttpWorkerService"

// TimerOptions shape a timer invocation. The zero value is an ordinary on-time tick.
type TimerOptions struct {
	// PastDue sets IsPastDue, with ScheduleStatus.Next an occurrence already missed.
	PastDue bool
	// First is the schedule's very first run: Last and LastUpdated are .NET's MinValue.
	First bool
	// NullScheduleStatus sends "ScheduleStatus": null, as the host does when useMonitor is
	// false (also applied automatically then, and for schedules firing more than once a minute).
	NullScheduleStatus bool
	// RetryCount is Metadata.RetryContext.RetryCount (0 when nil); the function needs a retry
	// policy, without which the host sends no RetryContext.
	RetryCount *int
	// Now is Metadata.sys.UtcNow and the instant the schedule is evaluated at; time.Now() when zero.
	Now time.Time
}

// InvokeResult is the outcome of one JSON-protocol invocation, judged as the host judges it.
type InvokeResult struct {
	Function     string
	InvocationID string
	Request      []byte // the body sent to the handler
	Status       int    // 0 when no HTTP response came back
	Header       http.Header
	Body         []byte // the raw response body
	// Failed is the host's verdict; Reason says why.
	Failed   bool
	Reason   string
	TimedOut bool // functionTimeout was exceeded (the handler has then been killed)
	// Logs, Outputs and ReturnValue come from a successful reply; the host discards them
	// when the invocation failed.
	Logs        []string
	Outputs     map[string]json.RawMessage
	ReturnValue json.RawMessage
}

func (r *InvokeResult) fail(format string, args ...any) {
	r.Failed = true
	r.Reason = fmt.Sprintf(format, args...)
	r.Logs, r.Outputs, r.ReturnValue = nil, nil, nil
}

// InvokeTimer runs a timer function once, as its schedule would: POST /<FunctionName> with a
// chunked JSON body. The error is for misuse (unknown function, function in error, ctx ended);
// a failing handler gives a result with Failed set.
func (h *Host) InvokeTimer(ctx context.Context, function string, opts TimerOptions) (*InvokeResult, error) {
	f, err := h.invocable(function)
	if err != nil {
		return nil, fmt.Errorf("invoke %s: %w", function, err)
	}
	if !f.IsTimer() {
		return nil, fmt.Errorf("invoke %s: trigger is %s, not timerTrigger", f.Name, f.Trigger.Type)
	}
	body, firedAt, err := h.timerBody(f, opts)
	if err != nil {
		return nil, fmt.Errorf("invoke %s: %w", f.Name, err)
	}
	res, err := h.invokeJSON(ctx, f, body, "Timer fired at "+firedAt)
	if err != nil {
		return nil, fmt.Errorf("invoke %s: %w", f.Name, err)
	}
	return res, nil
}

// invocable finds a function that the host would have indexed.
func (h *Host) invocable(name string) (*Function, error) {
	f := h.functions[strings.ToLower(name)]
	if f == nil {
		names := make([]string, 0, len(h.app.Functions))
		for _, fn := range h.app.Functions {
			names = append(names, fn.Name)
		}
		return nil, fmt.Errorf("no function named %q (have %s)", name, strings.Join(names, ", "))
	}
	if f.Disabled {
		return nil, fmt.Errorf("function %s is disabled", f.Name)
	}
	if err := h.funcErrors[strings.ToLower(f.Name)]; err != nil {
		return nil, fmt.Errorf("function %s is in error: %w", f.Name, err)
	}
	return f, nil
}

type timerJSON struct {
	Schedule struct {
		AdjustForDST bool `json:"AdjustForDST"`
	} `json:"Schedule"`
	ScheduleStatus *statusJSON `json:"ScheduleStatus"`
	IsPastDue      bool        `json:"IsPastDue"`
}

type statusJSON struct {
	Last        string `json:"Last"`
	Next        string `json:"Next"`
	LastUpdated string `json:"LastUpdated"`
}

type sysJSON struct {
	MethodName string `json:"MethodName"`
	UtcNow     string `json:"UtcNow"`
	RandGuid   string `json:"RandGuid"`
}

type retryJSON struct {
	RetryCount    int `json:"RetryCount"`
	MaxRetryCount int `json:"MaxRetryCount"`
	Exception     any `json:"Exception"`
}

// Newtonsoft's ISO format: fraction only when non-zero (up to 7 digits); a Local-kind time
// (ScheduleStatus) carries +00:00 on a UTC machine, a Utc-kind one (UtcNow) carries Z.
func statusTime(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00+00:00"
	}
	return t.UTC().Format("2006-01-02T15:04:05.9999999") + "+00:00"
}

func utcTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.9999999") + "Z" }

// timerBody builds the body in the host's shape and key order. The occurrence being run is
// the latest one at or before Now; Last is the one before it.
func (h *Host) timerBody(f *Function, opts TimerOptions) (body []byte, firedAt string, err error) {
	if opts.RetryCount != nil && f.Retry == nil {
		return nil, "", errors.New("RetryCount given but function.json has no retry policy (the host would send no RetryContext)")
	}
	sched, err := h.schedule(f)
	if err != nil {
		return nil, "", err
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	now = now.UTC()
	due := sched.prev(now.Truncate(time.Second).Add(time.Second))
	if due.IsZero() {
		due = now.Truncate(time.Second)
	}
	next, last := due, sched.prev(due)
	if opts.PastDue {
		next, last = last, sched.prev(last)
	}
	lastUpdated := last
	if opts.First {
		last, lastUpdated = time.Time{}, time.Time{}
	}
	var timer timerJSON
	timer.Schedule.AdjustForDST = true
	timer.IsPastDue = opts.PastDue
	if !opts.NullScheduleStatus && f.Trigger.UseMonitor && !sched.firesMoreThanOncePerMinute() {
		timer.ScheduleStatus = &statusJSON{Last: statusTime(last), Next: statusTime(next), LastUpdated: statusTime(lastUpdated)}
	}
	var b bytes.Buffer
	b.WriteString(`{"Data":{`)
	writeJSON(&b, f.Trigger.Name)
	b.WriteByte(':')
	writeJSON(&b, timer)
	b.WriteString(`},"Metadata":{"sys":`)
	writeJSON(&b, sysJSON{MethodName: f.Name, UtcNow: utcTime(now), RandGuid: newGUID()})
	if f.Retry != nil {
		rc := retryJSON{MaxRetryCount: f.Retry.MaxRetryCount}
		if opts.RetryCount != nil {
			rc.RetryCount = *opts.RetryCount
		}
		b.WriteString(`,"RetryContext":`)
		writeJSON(&b, rc)
	}
	b.WriteString(`}}`)
	return b.Bytes(), statusTime(now), nil
}

// writeJSON encodes values that cannot fail to encode (strings, fixed structs).
func writeJSON(b *bytes.Buffer, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("funchost: encode %T: %v", v, err))
	}
	b.Write(data)
}

// invokeJSON POSTs body to /<FunctionName> with the host's headers and judges the reply.
func (h *Host) invokeJSON(ctx context.Context, f *Function, body []byte, reason string) (*InvokeResult, error) {
	res := &InvokeResult{Function: f.Name, InvocationID: newGUID(), Request: body}
	category := FunctionCategory(f.Name)
	h.log(LevelInformation, category, res.InvocationID, fmt.Sprintf("Executing 'Functions.%s' (Reason='%s', Id=%s)", f.Name, reason, res.InvocationID))
	start := time.Now()

	callCtx, cancel := h.withFunctionTimeout(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(callCtx, http.MethodPost, h.HandlerURL()+"/"+f.Name, io.NopCloser(bytes.NewReader(body)))
	if err != nil {
		return nil, err
	}
	req.ContentLength = -1 // the host streams the body: chunked, no Content-Length
	req.TransferEncoding = []string{"chunked"}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set(headerInvocationID, res.InvocationID)
	req.Header.Set(headerHostVersion, HostVersion)
	req.Header.Set("User-Agent", userAgent)

	resp, err := h.client.Do(req)
	var respBody []byte
	if err == nil {
		respBody, err = io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
		resp.Body.Close()
	}
	switch {
	case ctx.Err() != nil:
		h.log(LevelError, category, res.InvocationID, fmt.Sprintf("Executed 'Functions.%s' (Failed, Id=%s): cancelled by the test", f.Name, res.InvocationID))
		return nil, ctx.Err()
	case errors.Is(callCtx.Err(), context.DeadlineExceeded):
		h.timedOut(res, f)
	case err != nil:
		res.fail("calling the handler failed: %v", err)
	default:
		h.judge(res, resp, respBody)
	}
	h.finish(res, start)
	return res, nil
}

func (h *Host) withFunctionTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if h.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, h.timeout)
}

// timedOut records a functionTimeout; the host then restarts, which here means the handler is
// killed and stays dead.
func (h *Host) timedOut(res *InvokeResult, f *Function) {
	res.fail("Timeout value of %s exceeded by function 'Functions.%s' (Id: '%s'). Initiating cancellation.", timeSpan(h.timeout), f.Name, res.InvocationID)
	res.TimedOut = true
	h.log(LevelError, FunctionCategory(f.Name), res.InvocationID, res.Reason)
	h.log(LevelError, CategoryHost, "", "A function timeout has occurred. The host restarts; funchost kills the handler instead.")
	h.Kill()
}

func (h *Host) finish(res *InvokeResult, start time.Time) {
	outcome := "Succeeded"
	level := LevelInformation
	if res.Failed {
		outcome, level = "Failed", LevelError
	}
	msg := fmt.Sprintf("Executed 'Functions.%s' (%s, Id=%s, Duration=%dms)", res.Function, outcome, res.InvocationID, time.Since(start).Milliseconds())
	if res.Failed {
		msg += ": " + res.Reason
	}
	h.log(level, FunctionCategory(res.Function), res.InvocationID, msg)
	h.mu.Lock()
	h.results = append(h.results, res)
	h.mu.Unlock()
}

// judge applies the host's checks to a reply: 2xx, a JSON media type (the host's reader has no
// formatter for text/plain), and a JSON object whose Outputs/Logs/ReturnValue match
// case-insensitively. A reply that reads as no result at all (an empty body, whitespace, or
// null) leaves the real host waiting until functionTimeout; it fails at once here, saying so.
// The host's reader would accept trailing data after the object; this one does not.
func (h *Host) judge(res *InvokeResult, resp *http.Response, body []byte) {
	res.Status, res.Header, res.Body = resp.StatusCode, resp.Header, body
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		res.fail("handler returned status %d: the host marks the invocation Failed and discards its Logs and Outputs", resp.StatusCode)
		return
	}
	noResult := func(what string) {
		res.fail("%s: the real host gets no result and waits until functionTimeout (%s), then restarts the handler", what, timeSpan(h.timeout))
	}
	if len(body) == 0 {
		noResult("empty response body")
		return
	}
	mediaType := "application/octet-stream" // what the host assumes when there is no Content-Type
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil {
			res.fail("unparsable Content-Type %q", ct)
			return
		}
		mediaType = mt
	}
	if mediaType != "application/json" && mediaType != "text/json" {
		res.fail("No MediaTypeFormatter is available to read an object of type 'HttpScriptInvocationResult' from content with media type '%s'.", mediaType)
		return
	}
	trimmed := bytes.TrimSpace(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")))
	if len(trimmed) == 0 || string(trimmed) == "null" {
		noResult("response body without a result")
		return
	}
	if !json.Valid(trimmed) {
		res.fail("response body is not valid JSON")
		return
	}
	var top map[string]json.RawMessage
	if trimmed[0] != '{' || json.Unmarshal(trimmed, &top) != nil {
		res.fail("response body is JSON but not an object")
		return
	}
	var outputs map[string]json.RawMessage
	if raw, ok := lookupFold(top, "Outputs"); ok && !isNull(raw) {
		if json.Unmarshal(raw, &outputs) != nil || outputs == nil {
			res.fail("Outputs is not an object")
			return
		}
	}
	var logs []string
	if raw, ok := lookupFold(top, "Logs"); ok && !isNull(raw) {
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			res.fail("Logs is not an array")
			return
		}
		for i, item := range items {
			s, ok := logString(item)
			if !ok {
				res.fail("Logs[%d] is not a string", i)
				return
			}
			logs = append(logs, s)
		}
	}
	returnValue := json.RawMessage("null")
	if raw, ok := lookupFold(top, "ReturnValue"); ok {
		returnValue = raw
	}
	res.Outputs, res.Logs, res.ReturnValue = outputs, logs, returnValue
	if len(outputs) == 0 {
		h.log(LevelWarning, workerCategory, res.InvocationID, "Outputs not set on http response for invocationId:"+res.InvocationID)
	}
	if isNull(returnValue) {
		h.log(LevelWarning, workerCategory, res.InvocationID, "ReturnValue not set on http response for invocationId:"+res.InvocationID)
	}
	for _, l := range logs {
		h.log(LevelInformation, UserCategory(res.Function), res.InvocationID, l)
	}
}

// logString converts a Logs item as Newtonsoft would into a List<string>: strings as they are,
// other scalars as their text; objects and arrays do not convert.
func logString(item json.RawMessage) (string, bool) {
	item = bytes.TrimSpace(item)
	if len(item) == 0 {
		return "", false
	}
	switch item[0] {
	case '"':
		var s string
		err := json.Unmarshal(item, &s)
		return s, err == nil
	case '{', '[':
		return "", false
	case 'n':
		return "", true
	default:
		return string(item), true
	}
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// lookupFold finds key exactly, else case-insensitively (first in sorted order).
func lookupFold(m map[string]json.RawMessage, key string) (json.RawMessage, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	var keys []string
	for k := range m {
		if strings.EqualFold(k, key) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, false
	}
	slices.Sort(keys)
	return m[keys[0]], true
}

// timeSpan formats d as .NET prints a TimeSpan: [d.]hh:mm:ss[.fffffff].
func timeSpan(d time.Duration) string {
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	s := fmt.Sprintf("%02d:%02d:%02d", d/time.Hour, d%time.Hour/time.Minute, d%time.Minute/time.Second)
	if frac := d % time.Second; frac != 0 {
		s += fmt.Sprintf(".%07d", frac/100)
	}
	if days > 0 {
		s = fmt.Sprintf("%d.%s", days, s)
	}
	return s
}
