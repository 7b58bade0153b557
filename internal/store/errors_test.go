package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

func TestIsTransient(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"deadline", fmt.Errorf("store: list: %w", context.DeadlineExceeded), true},
		{"canceled", fmt.Errorf("store: list: %w", context.Canceled), false},
		{"connection refused", &url.Error{Op: "Get", URL: "http://127.0.0.1:1", Err: dial}, true},
		{"connection reset", fmt.Errorf("x: %w", syscall.ECONNRESET), true},
		{"unknown host", &url.Error{Op: "Get", URL: "https://nosuch.table.core.windows.net",
			Err: &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "nosuch", IsNotFound: true}}}, false},
		{"dns timeout", &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "timeout", Name: "a", IsTimeout: true}}, true},
		{"unexpected EOF", fmt.Errorf("x: %w", io.ErrUnexpectedEOF), true},
		{"500", &StatusError{StatusCode: 500}, true},
		{"503", fmt.Errorf("store: commit a: %w", &StatusError{StatusCode: 503, Code: "ServerBusy"}), true},
		{"429", &StatusError{StatusCode: 429}, true},
		{"408", &StatusError{StatusCode: 408}, true},
		{"raw 502", &azcore.ResponseError{StatusCode: 502}, true},
		{"412", &StatusError{StatusCode: 412}, false},
		{"404", &StatusError{StatusCode: 404}, false},
		{"403", &StatusError{StatusCode: 403, Code: "AuthorizationFailure"}, false},
		{"conflict sentinel", ErrConflict, false},
		{"other", errors.New("decode row: malformed entity"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsTransient(tt.err); got != tt.want {
				t.Errorf("IsTransient(%v) = %v; want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestStatusErrorIs(t *testing.T) {
	tests := []struct {
		err                *StatusError
		conflict, notFound bool
	}{
		{&StatusError{StatusCode: 412, Code: "UpdateConditionNotSatisfied"}, true, false},
		{&StatusError{StatusCode: 409, Code: "EntityAlreadyExists"}, true, false},
		{&StatusError{StatusCode: 404, Code: "ResourceNotFound"}, false, true},
		{&StatusError{StatusCode: 404, Code: "TableNotFound"}, false, false},
		{&StatusError{StatusCode: 500}, false, false},
	}
	for _, tt := range tests {
		wrapped := fmt.Errorf("store: op: %w", tt.err)
		if got := errors.Is(wrapped, ErrConflict); got != tt.conflict {
			t.Errorf("%v: Is ErrConflict = %v; want %v", tt.err, got, tt.conflict)
		}
		if got := errors.Is(wrapped, ErrNotFound); got != tt.notFound {
			t.Errorf("%v: Is ErrNotFound = %v; want %v", tt.err, got, tt.notFound)
		}
	}
}

func TestClassifyDropsSecrets(t *testing.T) {
	const sig = "c2lnbmF0dXJl"
	body := `{"odata.error":{"code":"InvalidInput","message":{"value":"bad value ` + sig + `"}}}`
	resp := &http.Response{
		StatusCode: 400, Status: "400 Bad Request",
		Header:  http.Header{"x-ms-error-code": {"InvalidInput"}},
		Body:    io.NopCloser(strings.NewReader(body)),
		Request: &http.Request{Method: "PUT", URL: &url.URL{Scheme: "https", Host: "a.table.core.windows.net", Path: "/t", RawQuery: "sig=" + sig}},
	}
	tests := []struct {
		name string
		err  error
	}{
		{"response error", &azcore.ResponseError{StatusCode: 400, ErrorCode: "InvalidInput", RawResponse: resp}},
		{"transport error", &url.Error{Op: "Put", URL: "https://a.table.core.windows.net/t?sv=1&sig=" + sig, Err: syscall.ECONNRESET}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := classify(tt.err)
			if strings.Contains(got.Error(), sig) {
				t.Errorf("classified error keeps the secret: %d bytes", len(got.Error()))
			}
		})
	}
	if got := classify(tests[1].err); !IsTransient(got) {
		t.Errorf("classify lost the transport error's cause: IsTransient = false")
	}
}

// azureBatchFailure is the shape of an Azure Storage answer to a failed changeset
// (learn.microsoft.com, "Performing entity group transactions").
const azureBatchFailure = "--batchresponse_e69b1c6c-1a5c-4a89-a4b6-2f6d5f1f1e02\r\n" +
	"Content-Type: multipart/mixed; boundary=changesetresponse_0f5d0a5a-1c3f-4e64-b6f9-3a9f8e5f1d11\r\n" +
	"\r\n" +
	"--changesetresponse_0f5d0a5a-1c3f-4e64-b6f9-3a9f8e5f1d11\r\n" +
	"Content-Type: application/http\r\n" +
	"Content-Transfer-Encoding: binary\r\n" +
	"\r\n" +
	"HTTP/1.1 412 Precondition Failed\r\n" +
	"Content-ID: 2\r\n" +
	"X-Content-Type-Options: nosniff\r\n" +
	"Cache-Control: no-cache\r\n" +
	"DataServiceVersion: 3.0;\r\n" +
	"Content-Type: application/json;odata=minimalmetadata;streaming=true;charset=utf-8\r\n" +
	"\r\n" +
	`{"odata.error":{"code":"UpdateConditionNotSatisfied","message":{"lang":"en-US","value":"1:The update condition specified in the request was not satisfied."}}}` + "\r\n" +
	"--changesetresponse_0f5d0a5a-1c3f-4e64-b6f9-3a9f8e5f1d11--\r\n" +
	"--batchresponse_e69b1c6c-1a5c-4a89-a4b6-2f6d5f1f1e02--\r\n"

const azureBatchSuccess = "--batchresponse_1\r\n" +
	"Content-Type: multipart/mixed; boundary=changesetresponse_2\r\n" +
	"\r\n" +
	"--changesetresponse_2\r\n" +
	"Content-Type: application/http\r\n" +
	"Content-Transfer-Encoding: binary\r\n" +
	"\r\n" +
	"HTTP/1.1 204 No Content\r\n" +
	"ETag: W/\"datetime'2024-01-01T00%3A00%3A00.1Z'\"\r\n" +
	"\r\n" +
	"\r\n" +
	"--changesetresponse_2\r\n" +
	"Content-Type: application/http\r\n" +
	"Content-Transfer-Encoding: binary\r\n" +
	"\r\n" +
	"HTTP/1.1 204 No Content\r\n" +
	"Preference-Applied: return-no-content\r\n" +
	"ETag: W/\"datetime'2024-01-01T00%3A00%3A00.2Z'\"\r\n" +
	"\r\n" +
	"\r\n" +
	"--changesetresponse_2--\r\n" +
	"--batchresponse_1--\r\n"

func TestParseBatch(t *testing.T) {
	tests := []struct {
		name     string
		boundary string
		body     string
		want     []batchResult
	}{
		{"failure", "batchresponse_e69b1c6c-1a5c-4a89-a4b6-2f6d5f1f1e02", azureBatchFailure,
			[]batchResult{{status: 412, code: "UpdateConditionNotSatisfied"}}},
		{"success", "batchresponse_1", azureBatchSuccess, []batchResult{
			{status: 204, etag: azcore.ETag(`W/"datetime'2024-01-01T00%3A00%3A00.1Z'"`)},
			{status: 204, etag: azcore.ETag(`W/"datetime'2024-01-01T00%3A00%3A00.2Z'"`)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := &http.Response{
				StatusCode: 202,
				Header:     http.Header{"Content-Type": {"multipart/mixed; boundary=" + tt.boundary}},
				Body:       io.NopCloser(strings.NewReader(tt.body)),
			}
			got, err := parseBatch(resp)
			if err != nil {
				t.Fatalf("parseBatch: %v", err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %+v; want %+v", got, tt.want)
			}
		})
	}
}

func TestParseBatchRejectsNonMultipart(t *testing.T) {
	resp := &http.Response{
		StatusCode: 202,
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       io.NopCloser(strings.NewReader(`{"odata.error":{}}`)),
	}
	if got, err := parseBatch(resp); err == nil {
		t.Errorf("got %+v, nil error; want an error", got)
	}
}
