package funcproto

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// TimerInfo is what the product reads from a timer trigger's Data value
//
//	{"Schedule":{...},"ScheduleStatus":{"Last":"...","Next":"...",...},"IsPastDue":false}
//
// Other fields the host sends are ignored.
type TimerInfo struct {
	// IsPastDue: the host found this occurrence overdue (it was down, or a run overran).
	IsPastDue bool
	// Last and Next are the previous and next scheduled occurrences, in UTC. Each is zero when
	// the host sent no ScheduleStatus (it sends null when useMonitor is false in function.json
	// or the schedule fires more than once a minute), on the very first run for Last (the host
	// sends 0001-01-01T00:00:00+00:00), and when the value did not parse.
	Last, Next time.Time
}

// Timer interprets Data[binding] (matched case-insensitively) as a timer trigger value.
//
// It is lenient on purpose: the host's payload is informational, and a timer invocation must
// never fail because of it. A missing binding, a null ScheduleStatus, missing fields, values
// JSON-encoded twice (the host does that to plain strings), and timestamps that do not parse
// (real hosts have sent odd ones) give zero values plus a warning to log. Only a Data value
// that is not JSON at all is an error (matching ErrMalformed); Decode never yields one.
// Warnings quote at most a short prefix of a timestamp, which is host-generated and not secret.
func (r InvokeRequest) Timer(binding string) (TimerInfo, []string, error) {
	raw, ok := lookup(r.Data, binding)
	if !ok {
		return TimerInfo{}, []string{fmt.Sprintf("timer binding %q not in invocation Data (bindings present: %s)", binding, keyList(r.Data))}, nil
	}
	if !json.Valid(raw) {
		return TimerInfo{}, nil, &decodeError{ErrMalformed, fmt.Sprintf("timer binding %q: value is not JSON", binding)}
	}
	w := &warner{prefix: fmt.Sprintf("timer binding %q: ", binding)}
	var info TimerInfo
	obj, kind := object(raw)
	if obj == nil {
		if kind != "null" {
			w.add("", "value is a JSON %s, want an object; using defaults", kind)
		} else {
			w.add("", "value is null; using defaults")
		}
		return info, w.list, nil
	}
	info.IsPastDue = w.boolean(obj, "IsPastDue")
	if st, ok := lookup(obj, "ScheduleStatus"); ok {
		so, kind := object(st)
		switch {
		case so != nil:
			info.Last = w.timestamp(so, "ScheduleStatus.Last")
			info.Next = w.timestamp(so, "ScheduleStatus.Next")
		case kind != "null":
			w.add("ScheduleStatus", "is a JSON %s, want an object or null; treated as null", kind)
		}
	}
	return info, w.list, nil
}

// Retry is the attempt an invocation is, from Metadata.RetryContext.
type Retry struct {
	// Count is 0 on the first attempt. Max is the retry policy's maxRetryCount (-1 means
	// unlimited); both are 0 when function.json has no retry policy.
	Count, Max int
}

// Retry reads Metadata.RetryContext.RetryCount and .MaxRetryCount, which the host sends from
// the first attempt when function.json has a retry policy. Missing or unreadable values are
// zero: they are informational and must never decide whether an invocation runs.
func (r InvokeRequest) Retry() Retry {
	var rt Retry
	raw, ok := lookup(r.Metadata, "RetryContext")
	if !ok {
		return rt
	}
	if rc, _ := object(raw); rc != nil {
		w := &warner{} // warnings are dropped: these values are informational
		rt.Count = w.integer(rc, "RetryCount")
		rt.Max = w.integer(rc, "MaxRetryCount")
	}
	return rt
}

// peel undoes the host's double encoding: while raw is a JSON string whose content is itself
// JSON (`"\"x\""`, `"12"`, `"{...}"`), it continues with that content. The bound stops
// pathological nesting.
func peel(raw json.RawMessage) json.RawMessage {
	raw = bytes.TrimSpace(raw)
	for range 4 {
		if len(raw) == 0 || raw[0] != '"' {
			break
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			break
		}
		inner := bytes.TrimSpace([]byte(s))
		if len(inner) == 0 || !json.Valid(inner) {
			break
		}
		raw = inner
	}
	return raw
}

// object returns raw (peeled) as an object, or nil and the JSON kind it has instead.
func object(raw json.RawMessage) (map[string]json.RawMessage, string) {
	raw = peel(raw)
	kind := jsonKind(raw)
	if kind != "object" {
		return nil, kind
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil, "invalid JSON"
	}
	return m, kind
}

// warner collects warnings for one value.
type warner struct {
	prefix string
	list   []string
}

func (w *warner) add(field, format string, args ...any) {
	msg := w.prefix
	if field != "" {
		msg += field + ": "
	}
	w.list = append(w.list, msg+fmt.Sprintf(format, args...))
}

// boolean accepts true/false, and strings such as "true" or .NET's "True".
func (w *warner) boolean(m map[string]json.RawMessage, field string) bool {
	raw, ok := lookup(m, field)
	if !ok {
		return false
	}
	raw = peel(raw)
	switch jsonKind(raw) {
	case "null":
		return false
	case "boolean":
		return raw[0] == 't'
	case "string":
		var s string
		if json.Unmarshal(raw, &s) == nil {
			if b, err := strconv.ParseBool(strings.TrimSpace(s)); err == nil {
				return b
			}
		}
	}
	w.add(field, "not a boolean; using false")
	return false
}

// integer accepts JSON numbers with an integral value and numeric strings.
func (w *warner) integer(m map[string]json.RawMessage, field string) int {
	raw, ok := lookup(m, field)
	if !ok {
		return 0
	}
	raw = peel(raw)
	text := string(raw)
	switch jsonKind(raw) {
	case "null":
		return 0
	case "string":
		var s string
		if json.Unmarshal(raw, &s) != nil {
			break
		}
		text = strings.TrimSpace(s)
		fallthrough
	case "number":
		if n, err := strconv.Atoi(text); err == nil {
			return n
		}
		if f, err := strconv.ParseFloat(text, 64); err == nil && f == math.Trunc(f) && math.Abs(f) <= math.MaxInt32 {
			return int(f)
		}
	}
	w.add(field, "not an integer; using 0")
	return 0
}

// timestamp reads a time leniently (see parseTime); absent or null gives zero silently.
func (w *warner) timestamp(m map[string]json.RawMessage, field string) time.Time {
	raw, ok := lookup(m, field[strings.LastIndexByte(field, '.')+1:])
	if !ok {
		return time.Time{}
	}
	raw = peel(raw)
	var s string
	switch jsonKind(raw) {
	case "null":
		return time.Time{}
	case "string":
		if json.Unmarshal(raw, &s) != nil {
			w.add(field, "unreadable string; using zero time")
			return time.Time{}
		}
	default:
		w.add(field, "a JSON %s is not a timestamp; using zero time", jsonKind(raw))
		return time.Time{}
	}
	t, note, ok := parseTime(s)
	if !ok {
		w.add(field, "unparsable timestamp %q; using zero time", clip(s, 40))
		return time.Time{}
	}
	if note != "" {
		w.add(field, "timestamp %q %s", clip(s, 40), note)
	}
	return t
}

// Layouts tried in order. Parsing accepts any fraction length (the host sends 7 digits).
var (
	offsetLayouts = []string{
		time.RFC3339Nano,                     // 2024-05-01T10:00:00.0154321Z, ...+00:00
		"2006-01-02T15:04:05.999999999-0700", // +0000
		"2006-01-02T15:04:05.999999999-07",   // +00
		time.RFC1123Z,
		time.RFC1123,
	}
	// Without an offset the time is taken as UTC, which is what the host runs in unless
	// WEBSITE_TIME_ZONE is set.
	localLayouts = []string{
		"2006-01-02T15:04:05.999999999",
		"2006-01-02T15:04",
		"2006-01-02",
		"1/2/2006 15:04:05",   // .NET invariant culture
		"1/2/2006 3:04:05 PM", // .NET en-US
	}
	// .NET's DateTime.MinValue, shifted by any offset, is still "no time".
	minValueEnd = time.Date(1, 1, 2, 0, 0, 0, 0, time.UTC)
)

// parseTime parses the shapes hosts have been seen to send. ok is false only when nothing
// fits; note explains an assumption made (no offset: UTC assumed).
func parseTime(s string) (t time.Time, note string, ok bool) {
	s = strings.TrimSpace(s)
	if len(s) > 10 && s[10] == ' ' && s[4] == '-' {
		s = s[:10] + "T" + s[11:] // "2024-05-01 10:00:00Z"
	}
	parsed := false
	for _, layout := range offsetLayouts {
		if p, err := time.Parse(layout, s); err == nil {
			t, parsed = p, true
			break
		}
	}
	if !parsed {
		for _, layout := range localLayouts {
			if p, err := time.Parse(layout, s); err == nil {
				t, parsed, note = p, true, "has no UTC offset; assumed UTC"
				break
			}
		}
	}
	if !parsed {
		if ms, ok := msJSONDate(s); ok {
			t, parsed = time.UnixMilli(ms), true
		}
	}
	if !parsed {
		return time.Time{}, "", false
	}
	if t.Before(minValueEnd) {
		return time.Time{}, "", true
	}
	return t.UTC(), note, true
}

// msJSONDate parses the old Microsoft JSON date form /Date(1714557600000)/ or /Date(...+0000)/.
func msJSONDate(s string) (int64, bool) {
	inner, ok := strings.CutPrefix(s, "/Date(")
	if !ok {
		return 0, false
	}
	inner, ok = strings.CutSuffix(inner, ")/")
	if !ok {
		return 0, false
	}
	if i := strings.IndexAny(inner[min(1, len(inner)):], "+-"); i >= 0 {
		inner = inner[:i+min(1, len(inner))] // the offset does not change the instant
	}
	ms, err := strconv.ParseInt(inner, 10, 64)
	return ms, err == nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func keyList(m map[string]json.RawMessage) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, strconv.Quote(clip(k, 40)))
	}
	slices.Sort(keys)
	return strings.Join(keys, ", ")
}
