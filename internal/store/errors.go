package store

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
)

// StatusError is a table service error reduced to what is safe to show: the HTTP status and the
// service's error code, never the response body. It matches ErrConflict (409, 412) and
// ErrNotFound (404, except a missing table) with errors.Is.
type StatusError struct {
	StatusCode int
	Code       string // the service's error code, e.g. UpdateConditionNotSatisfied; may be ""
}

func (e *StatusError) Error() string {
	var msg string
	if t := http.StatusText(e.StatusCode); t != "" {
		msg = fmt.Sprintf("table service: HTTP %d %s", e.StatusCode, t)
	} else {
		msg = fmt.Sprintf("table service: HTTP %d", e.StatusCode)
	}
	if e.Code != "" {
		msg += " (" + e.Code + ")"
	}
	return msg
}

// Is makes errors.Is(err, ErrConflict) and errors.Is(err, ErrNotFound) work.
func (e *StatusError) Is(target error) bool {
	switch target {
	case ErrConflict:
		return e.StatusCode == http.StatusConflict || e.StatusCode == http.StatusPreconditionFailed
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound && e.Code != "TableNotFound"
	}
	return false
}

// IsTransient reports whether err is worth retrying later: a time-out, a refused or reset
// connection, or a 408, 429 or 5xx answer. A cancelled context is not transient; neither is a
// conflict (re-read instead).
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var se *StatusError
	if errors.As(err, &se) {
		return transientStatus(se.StatusCode)
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return transientStatus(re.StatusCode)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return false // a wrong account name or endpoint does not fix itself
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, io.EOF)
}

func transientStatus(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500
}

// classify turns an error from aztables into one safe to return: a *StatusError for a service
// answer (its body, which may quote the request, is dropped) and a transport error with any
// query string (a SAS signature) removed from its URL. Other errors pass unchanged.
func classify(err error) error {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return &StatusError{StatusCode: re.StatusCode, Code: re.ErrorCode}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: redactURL(ue.URL), Err: ue.Err}
	}
	return err
}

func redactURL(s string) string {
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		return s[:i]
	}
	return s
}

// batchResult is one operation's answer inside a $batch response.
type batchResult struct {
	status int
	etag   azcore.ETag
	code   string
}

// parseBatch reads the per-operation answers of an entity group transaction. aztables discards
// them: it returns no ETags on success, and on failure a *ResponseError carrying the outer 202.
// A failed changeset holds a single answer, the failing operation's.
func parseBatch(resp *http.Response) ([]batchResult, error) {
	body, err := runtime.Payload(resp)
	if err != nil {
		return nil, fmt.Errorf("read batch response: %w", err)
	}
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(mt, "multipart/") || params["boundary"] == "" {
		return nil, errors.New("batch response is not multipart")
	}
	outer := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	changeset, err := outer.NextPart()
	if err != nil {
		return nil, errors.New("batch response has no changeset")
	}
	mt, params, err = mime.ParseMediaType(changeset.Header.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(mt, "multipart/") || params["boundary"] == "" {
		// Some services answer a rejected batch with a single application/http part.
		r, perr := readInnerResponse(changeset)
		if perr != nil {
			return nil, errors.New("batch response changeset is not multipart")
		}
		return []batchResult{r}, nil
	}
	inner := multipart.NewReader(changeset, params["boundary"])
	var results []batchResult
	for {
		part, err := inner.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, errors.New("batch response changeset is malformed")
		}
		r, err := readInnerResponse(part)
		if err != nil {
			return nil, err
		}
		results = append(results, r)
	}
	if len(results) == 0 {
		return nil, errors.New("batch response holds no answers")
	}
	return results, nil
}

func readInnerResponse(part io.Reader) (batchResult, error) {
	r, err := http.ReadResponse(bufio.NewReader(part), nil)
	if err != nil {
		return batchResult{}, errors.New("batch response holds a malformed answer")
	}
	defer r.Body.Close()
	res := batchResult{status: r.StatusCode, etag: azcore.ETag(r.Header.Get("ETag")), code: r.Header.Get("x-ms-error-code")}
	if res.code == "" && r.StatusCode >= 400 {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		res.code = odataErrorCode(b)
	}
	return res, nil
}

// odataErrorCode extracts the code of an OData JSON error body, or "".
func odataErrorCode(b []byte) string {
	var body struct {
		OData struct {
			Code string `json:"code"`
		} `json:"odata.error"`
	}
	if json.Unmarshal(b, &body) != nil {
		return ""
	}
	return body.OData.Code
}
