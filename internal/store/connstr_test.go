package store

import (
	"context"
	"strings"
	"testing"
)

func TestParseConnectionString(t *testing.T) {
	const key = "c2VjcmV0LWtleS1ieXRlcw==" // base64 of "secret-key-bytes"
	tests := []struct {
		name string
		in   string
		want account
	}{
		{"development storage", "UseDevelopmentStorage=true",
			account{endpoint: "http://127.0.0.1:10002/devstoreaccount1", name: devAccountName, key: devAccountKey}},
		{"development storage, case and trailing semicolon", " usedevelopmentstorage = TRUE ;",
			account{endpoint: "http://127.0.0.1:10002/devstoreaccount1", name: devAccountName, key: devAccountKey}},
		{"development storage behind a proxy", "UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://ipv4.fiddler",
			account{endpoint: "http://ipv4.fiddler:10002/devstoreaccount1", name: devAccountName, key: devAccountKey}},
		{"Azurite on another port",
			"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" + devAccountKey + ";TableEndpoint=http://127.0.0.1:41234/devstoreaccount1;",
			account{endpoint: "http://127.0.0.1:41234/devstoreaccount1", name: devAccountName, key: devAccountKey}},
		{"table endpoint trailing slash", "AccountName=acct;AccountKey=" + key + ";TableEndpoint=https://acct.table.core.windows.net/",
			account{endpoint: "https://acct.table.core.windows.net", name: "acct", key: key}},
		{"Azure defaults", "AccountName=acct;AccountKey=" + key,
			account{endpoint: "https://acct.table.core.windows.net", name: "acct", key: key}},
		{"Azure full", "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=" + key + ";EndpointSuffix=core.chinacloudapi.cn",
			account{endpoint: "https://acct.table.core.chinacloudapi.cn", name: "acct", key: key}},
		{"SAS", "TableEndpoint=https://acct.table.core.windows.net;SharedAccessSignature=?sv=2019-02-02&sig=abc%3D",
			account{endpoint: "https://acct.table.core.windows.net", sas: "sv=2019-02-02&sig=abc%3D"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseConnectionString(tt.in)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if got != tt.want {
				t.Errorf("got %+v; want %+v", got, tt.want)
			}
		})
	}
}

func TestParseConnectionStringErrors(t *testing.T) {
	const secret = "c2VjcmV0LWtleS1ieXRlcw=="
	tests := []struct {
		name, in, wantMsg string
	}{
		{"empty", "", "empty"},
		{"no key", "AccountName=acct;EndpointSuffix=core.windows.net", "no AccountKey"},
		{"no account name", "AccountKey=" + secret, "no AccountName"},
		{"key and sas", "AccountName=a;AccountKey=" + secret + ";SharedAccessSignature=sig=" + secret, "both"},
		{"key not base64", "AccountName=a;AccountKey=" + secret + "!!", "not base64"},
		{"segment without =", "AccountName=a;" + secret[:10], "segment 2"},
		{"duplicate", "AccountName=a;AccountName=b;AccountKey=" + secret, "twice"},
		{"bad protocol", "DefaultEndpointsProtocol=ftp;AccountName=a;AccountKey=" + secret, "DefaultEndpointsProtocol"},
		{"relative table endpoint", "AccountName=a;AccountKey=" + secret + ";TableEndpoint=/x", "TableEndpoint"},
		{"table endpoint with query", "AccountName=a;AccountKey=" + secret + ";TableEndpoint=http://h/?sig=" + secret, "TableEndpoint"},
		{"development storage false", "UseDevelopmentStorage=false", "UseDevelopmentStorage"},
		{"bad proxy", "UseDevelopmentStorage=true;DevelopmentStorageProxyUri=" + secret, "DevelopmentStorageProxyUri"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConnectionString(tt.in)
			if err == nil {
				t.Fatal("got nil error; want one")
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("got %q; want it to mention %q", err, tt.wantMsg)
			}
			if strings.Contains(err.Error(), secret[:10]) {
				t.Errorf("error echoes the secret (length %d)", len(err.Error()))
			}
		})
	}
}

func TestOpenOptionErrors(t *testing.T) {
	const secret = "c2VjcmV0LWtleS1ieXRlcw=="
	tests := []struct {
		name string
		o    Options
	}{
		{"nothing", Options{}},
		{"both", Options{ConnectionString: "UseDevelopmentStorage=true", Endpoint: "https://a.table.core.windows.net"}},
		{"endpoint without credential", Options{Endpoint: "https://a.table.core.windows.net"}},
		{"bad table", Options{ConnectionString: "UseDevelopmentStorage=true", Table: "no-dashes"}},
		{"short table", Options{ConnectionString: "UseDevelopmentStorage=true", Table: "ab"}},
		{"bad connection string", Options{ConnectionString: "AccountName=a;Key=" + secret}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// These fail before any request, so no server is needed.
			s, err := Open(context.Background(), tt.o)
			if err == nil {
				t.Fatalf("got store %v, nil error; want an error", s)
			}
			if strings.Contains(err.Error(), secret[:10]) {
				t.Errorf("error echoes the secret (length %d)", len(err.Error()))
			}
		})
	}
}
