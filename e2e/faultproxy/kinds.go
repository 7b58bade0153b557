package faultproxy

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
)

// Kinds of Azure Table service requests (AzureKind).
const (
	// KindQuery is a read: a query ($filter) or a point read.
	KindQuery = "query"
	// KindStatusWrite writes a Status row: PUT (aztables' UpdateReplace, with If-Match), MERGE or
	// PATCH on RowKey='Status', or a POST inserting one. The lease and failure records are these.
	KindStatusWrite = "status-write"
	// KindCommit is an entity group transaction (POST .../$batch): a pair and its status.
	KindCommit = "commit"
	// KindOther is anything else (table creation, authorization state rows, deletes).
	KindOther = "other"
)

// Kinds of OAuth2 token endpoint requests (OAuthKind).
const (
	KindExchange = "exchange" // grant_type=authorization_code
	KindRefresh  = "refresh"  // grant_type=refresh_token
)

// AzureKind classifies a Table service request.
func AzureKind(r *Request) string {
	path := r.URL.Path
	if p, err := url.PathUnescape(r.URL.EscapedPath()); err == nil {
		path = p
	}
	switch {
	case r.Method == "POST" && strings.HasSuffix(path, "/$batch"):
		return KindCommit
	case r.Method == "GET":
		return KindQuery
	case (r.Method == "PUT" || r.Method == "MERGE" || r.Method == "PATCH" || r.Method == "DELETE") &&
		strings.Contains(path, "RowKey='Status'"):
		return KindStatusWrite
	case r.Method == "POST" && !strings.HasSuffix(path, "/Tables"):
		var row struct{ RowKey string }
		if json.Unmarshal(r.Body, &row) == nil && row.RowKey == "Status" {
			return KindStatusWrite
		}
	}
	return KindOther
}

// OAuthKind classifies a token endpoint request by its grant_type.
func OAuthKind(r *Request) string {
	switch FormValue(r, "grant_type") {
	case "authorization_code":
		return KindExchange
	case "refresh_token":
		return KindRefresh
	}
	return KindOther
}

// FormValue reads a field of a form-encoded request body ("" when absent or not a form).
func FormValue(r *Request, key string) string {
	form, err := url.ParseQuery(string(r.Body))
	if err != nil {
		return ""
	}
	return form.Get(key)
}

// TokenResponse reads the tokens of a JSON token response ("" where absent or unreadable).
func TokenResponse(body []byte) (accessToken, refreshToken string) {
	var t struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if json.Unmarshal(body, &t) != nil {
		return "", ""
	}
	return t.AccessToken, t.RefreshToken
}

// OAuthSecrets lists every secret an OAuth2 exchange carried: the client secret (HTTP Basic or
// form; the client id is no secret), the authorization code, the PKCE verifier and the refresh token of the request, and
// the access and refresh tokens of the server's answer (also when the client never got it).
func OAuthSecrets(e Exchange) []string {
	var out []string
	add := func(s string) {
		if s != "" {
			out = append(out, s)
		}
	}
	if _, pass, ok := basicAuth(e.Header.Get("Authorization")); ok {
		add(pass)
	}
	for _, k := range []string{"client_secret", "code", "code_verifier", "refresh_token"} {
		add(FormValue(&e.Request, k))
	}
	if e.Upstream != nil {
		at, rt := TokenResponse(e.Upstream.Body)
		add(at)
		add(rt)
	}
	return out
}

// basicAuth decodes an HTTP Basic Authorization header; OAuth2 form-encodes both parts first
// (RFC 6749 section 2.3.1).
func basicAuth(h string) (user, pass string, ok bool) {
	enc, ok := strings.CutPrefix(h, "Basic ")
	if !ok {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return "", "", false
	}
	user, pass, ok = strings.Cut(string(raw), ":")
	if !ok {
		return "", "", false
	}
	if u, err := url.QueryUnescape(user); err == nil {
		user = u
	}
	if p, err := url.QueryUnescape(pass); err == nil {
		pass = p
	}
	return user, pass, true
}
