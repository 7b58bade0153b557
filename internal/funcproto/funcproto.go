// Package funcproto is the Azure Functions custom-handler JSON protocol, typed once for every
// function the host does not forward as plain HTTP (the timer trigger, and any HTTP function
// with extra bindings).
//
// The host POSTs {"Data":{...},"Metadata":{...}} to /<FunctionName> and expects a 2xx reply with
// Content-Type application/json and a body {"Outputs":{},"Logs":[],"ReturnValue":null}. The host
// reads both with Newtonsoft.Json, whose property matching is case-insensitive; this package
// decodes the same way and always encodes the canonical PascalCase names.
package funcproto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Headers the host sets on every invocation request.
const (
	headerInvocationID = "X-Azure-Functions-InvocationId"
	headerHostVersion  = "X-Azure-Functions-HostVersion"
)

// DefaultLimit is a generous bound for an invocation body: a timer payload is well under 1 KiB.
const defaultLimit = 1 << 20

// Sentinel errors returned (wrapped) by Decode; branch with errors.Is.
var (
	// ErrTooLarge: the body exceeds the limit given to Decode.
	ErrTooLarge = errors.New("invocation body too large")
	// ErrMalformed: the body is empty, not JSON, or not a JSON object.
	ErrMalformed = errors.New("malformed invocation body")
)

// InvokeRequest is the body the host sends. Each Data entry is keyed by binding name (the "name"
// in function.json) and each Metadata entry by trigger metadata name ("sys", "RetryContext", ...).
// Values stay raw: the host JSON-encodes plain strings and numbers a second time, so a value's
// shape is only known to the accessor that interprets it (see Timer and InvocationInfo).
type InvokeRequest struct {
	Data     map[string]json.RawMessage `json:"Data"`
	Metadata map[string]json.RawMessage `json:"Metadata"`
	// InvocationID is the host's X-Azure-Functions-InvocationId header (a GUID), set by Decode.
	// It is empty when the header is missing, longer than MaxInvocationIDLen, or holds anything
	// but hex digits and '-', so it is always safe to log and echo.
	InvocationID string `json:"-"`
}

// MaxInvocationIDLen bounds an accepted invocation id; a GUID has 36 characters.
const maxInvocationIDLen = 64

// invocationID returns the header value when it looks like an id the host generates, else "".
func invocationID(v string) string {
	if v == "" || len(v) > maxInvocationIDLen {
		return ""
	}
	for i := range len(v) {
		c := v[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' || c == '-') {
			return ""
		}
	}
	return v
}

// InvokeResponse is the body the handler returns. Each Logs entry is logged by the host at
// Information under the function (App Insights traces in Azure), but only when the status is
// 2xx: on any other status the host marks the invocation Failed and discards Logs and Outputs.
// Strings in Outputs or ReturnValue that happen to be valid base64 may be decoded to bytes by
// the host, so do not rely on string outputs surviving verbatim.
type InvokeResponse struct {
	Outputs     map[string]any `json:"Outputs"`
	Logs        []string       `json:"Logs"`
	ReturnValue any            `json:"ReturnValue"`
}

// decodeError carries a message that never contains body content and matches its kind
// (ErrTooLarge or ErrMalformed) under errors.Is.
type decodeError struct {
	kind error
	msg  string
}

func (e *decodeError) Error() string        { return e.msg }
func (e *decodeError) Is(target error) bool { return target == e.kind }

// Decode reads an invocation body of at most limit bytes (DefaultLimit when limit <= 0),
// and records the invocation id header (see InvokeRequest.InvocationID).
// It works with chunked bodies (the host sends no Content-Length) and requires a JSON object.
// Errors match ErrTooLarge or ErrMalformed, or wrap the read error; they name the problem and,
// since invocation payloads can carry request data, never echo the body.
func Decode(r *http.Request, limit int64) (InvokeRequest, error) {
	if limit <= 0 {
		limit = defaultLimit
	}
	if r.ContentLength > limit {
		return InvokeRequest{}, &decodeError{ErrTooLarge, fmt.Sprintf("invocation body exceeds %d bytes (Content-Length %d)", limit, r.ContentLength)}
	}
	if r.Body == nil || r.Body == http.NoBody {
		return InvokeRequest{}, &decodeError{ErrMalformed, "invocation body is empty"}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			// Someone upstream wrapped the body with a tighter http.MaxBytesReader.
			return InvokeRequest{}, &decodeError{ErrTooLarge, fmt.Sprintf("invocation body exceeds %d bytes", mbe.Limit)}
		}
		return InvokeRequest{}, fmt.Errorf("read invocation body: %w", err)
	}
	if int64(len(body)) > limit {
		return InvokeRequest{}, &decodeError{ErrTooLarge, fmt.Sprintf("invocation body exceeds %d bytes", limit)}
	}
	req, err := decodeBody(body)
	if err != nil {
		return InvokeRequest{}, err
	}
	req.InvocationID = invocationID(r.Header.Get(headerInvocationID))
	return req, nil
}

func decodeBody(body []byte) (InvokeRequest, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return InvokeRequest{}, &decodeError{ErrMalformed, "invocation body is empty"}
	}
	if !json.Valid(body) {
		return InvokeRequest{}, &decodeError{ErrMalformed, "invocation body is not JSON: " + syntaxProblem(body)}
	}
	if trimmed[0] != '{' {
		return InvokeRequest{}, &decodeError{ErrMalformed, "invocation body is JSON but not an object (got " + jsonKind(trimmed) + ")"}
	}
	var req InvokeRequest
	if err := json.Unmarshal(body, &req); err != nil {
		// The body is a valid object, so only a Data or Metadata of the wrong kind gets here.
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return InvokeRequest{}, &decodeError{ErrMalformed, fmt.Sprintf("invocation body has %s of JSON kind %s, want an object (at offset %d)", fieldOr(ute.Field, "a field"), ute.Value, ute.Offset)}
		}
		return InvokeRequest{}, &decodeError{ErrMalformed, "invocation body does not have the invocation shape"}
	}
	return req, nil
}

// syntaxProblem describes a JSON syntax error by offset only: json.SyntaxError's own message
// quotes the offending character, which is body content.
func syntaxProblem(body []byte) string {
	var v any
	err := json.Unmarshal(body, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		if se.Offset >= int64(len(body)) {
			return fmt.Sprintf("unexpected end at offset %d", se.Offset)
		}
		return fmt.Sprintf("syntax error at offset %d", se.Offset)
	}
	return "syntax error"
}

func fieldOr(field, fallback string) string {
	if field == "" {
		return fallback
	}
	return "field " + field
}

// jsonKind names the kind of a valid JSON value from its first byte.
func jsonKind(v []byte) string {
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

// Write sends resp as the invocation result with the given status. It always sets
// Content-Type: application/json (the host rejects Go's sniffed text/plain with "No
// MediaTypeFormatter is available...") and always writes a JSON object (an empty 2xx body can
// leave the invocation hanging until functionTimeout). Nil Outputs and Logs are sent as {} and [].
// A status that forbids a body (1xx, 204, 304) becomes 200, with a log line saying so.
// If resp cannot be marshalled (an unsupported ReturnValue, say), Write sends status 500 with
// resp's Logs plus a line saying so, and the host fails the invocation (a timer without a retry
// policy simply runs again at its next tick). The host discards Logs on any non-2xx status, so
// a caller that fails an invocation should also log the reason itself. A failed write means
// the host has gone away; there is no one left to tell, so it is not reported.
func Write(w http.ResponseWriter, status int, resp InvokeResponse) {
	if resp.Outputs == nil {
		resp.Outputs = map[string]any{}
	}
	resp.Logs = append([]string{}, resp.Logs...) // never null, and never the caller's array
	switch {
	case status < 100 || status > 999:
		// http.ResponseWriter panics on such codes; report the caller's bug instead.
		resp.Logs = append(resp.Logs, fmt.Sprintf("funcproto: invalid response status %d replaced by 500", status))
		status = http.StatusInternalServerError
	case status < 200 || status == http.StatusNoContent || status == http.StatusNotModified:
		// These cannot carry the JSON object the host must get.
		resp.Logs = append(resp.Logs, fmt.Sprintf("funcproto: response status %d cannot carry a body; sent 200", status))
		status = http.StatusOK
	}
	body, err := json.Marshal(resp)
	if err != nil {
		status = http.StatusInternalServerError
		logs := append(resp.Logs, fmt.Sprintf("funcproto: invocation response could not be encoded as JSON (%T); outputs and return value dropped", err))
		body, err = json.Marshal(InvokeResponse{Outputs: map[string]any{}, Logs: logs})
		if err != nil {
			body = []byte(`{"Outputs":{},"Logs":["funcproto: invocation response could not be encoded as JSON"],"ReturnValue":null}`)
		}
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// lookup finds key in m exactly, else case-insensitively (the host's Newtonsoft matching),
// taking the first such key in sorted order so that the result is deterministic.
func lookup(m map[string]json.RawMessage, key string) (json.RawMessage, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	keys := make([]string, 0, len(m))
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
