package store

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/freshtoken/freshtoken/internal/azuritetest"
)

// readerClient reads the table through a SAS URL with the aztables SDK, as a reader would.
func readerClient(t *testing.T, u string) *aztables.Client {
	t.Helper()
	c, err := aztables.NewClientWithNoCredential(u, &aztables.ClientOptions{ClientOptions: azcore.ClientOptions{
		Retry:     policy.RetryOptions{MaxRetries: -1},
		Transport: &http.Client{Timeout: 10 * time.Second},
	}})
	if err != nil {
		t.Fatalf("NewClientWithNoCredential: %v", err)
	}
	return c
}

// readRow reads row pk/rk's Value through u; the error is the service's status, classified.
func readRow(t *testing.T, u, pk, rk string) (string, error) {
	t.Helper()
	resp, err := readerClient(t, u).GetEntity(context.Background(), pk, rk, nil)
	if err != nil {
		return "", classify(err)
	}
	var row struct{ Value string }
	if err := json.Unmarshal(resp.Value, &row); err != nil {
		t.Fatal(err)
	}
	return row.Value, nil
}

func wantStatus(t *testing.T, what string, err error, code int) {
	t.Helper()
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != code {
		t.Errorf("%s: got %v; want HTTP %d", what, err, code)
	}
}

func TestReaderURL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	table := newTableName(t)
	s := openStore(t, table, keyring(t, "k1=a"))
	for _, name := range []string{"alpha", "beta"} {
		if err := s.SaveConsent(ctx, name, testTokens(name), fullStatus()); err != nil {
			t.Fatal(err)
		}
	}
	opts := Options{ConnectionString: azurite(t).ConnectionString(), Table: table}
	now := time.Now()
	u, err := ReaderURL(opts, "alpha", 90*24*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}

	// The URL names the one row, query only, and carries no key.
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	q := parsed.Query()
	for k, want := range map[string]string{
		"sp": "r", "spk": "alpha", "epk": "alpha", "srk": "AccessToken", "erk": "AccessToken",
		"tn": strings.ToLower(table), "sv": sasVersion, "spr": "",
		"se": now.Add(90 * 24 * time.Hour).UTC().Format("2006-01-02T15:04:05Z"),
	} {
		if got := q.Get(k); got != want {
			t.Errorf("URL %s = %q; want %q", k, got, want)
		}
	}
	if strings.Contains(u, url.QueryEscape(azuritetest.AccountKey)) || strings.Contains(u, azuritetest.AccountKey) {
		t.Errorf("the URL holds the account key")
	}
	if want := azurite(t).TableEndpoint() + "/" + table; parsed.Scheme+"://"+parsed.Host+parsed.Path != want {
		t.Errorf("URL without query = %s; want %s", parsed.Scheme+"://"+parsed.Host+parsed.Path, want)
	}

	// What it is for: the access token reads, in plain text.
	if got, err := readRow(t, u, "alpha", RowAccessToken); err != nil || got != testTokens("alpha").AccessToken {
		t.Errorf("read alpha/AccessToken through the URL = %s, %v; want the access token", Fingerprint(got), err)
	}

	// Azurite does not enforce the key range (Azure does, answering 403): these reads succeed on
	// Azurite. They are logged, not asserted; the sealed refresh token is useless to the reader.
	for _, row := range [][2]string{{"alpha", RowRefreshToken}, {"beta", RowAccessToken}} {
		_, err := readRow(t, u, row[0], row[1])
		t.Logf("Azurite, outside the signed range %s/%s: %v (Azure refuses it)", row[0], row[1], err)
	}

	// What Azurite does enforce. The signature covers the range, the permissions and the table:
	tamper := func(k, v string) string {
		q := parsed.Query()
		q.Set(k, v)
		p := *parsed
		p.RawQuery = q.Encode()
		return p.String()
	}
	_, err = readRow(t, tamper("spk", "beta"), "beta", RowAccessToken)
	wantStatus(t, "range widened to partition beta", err, http.StatusForbidden)
	_, err = readRow(t, tamper("erk", "Status"), "alpha", RowAccessToken)
	wantStatus(t, "row range widened", err, http.StatusForbidden)
	_, err = readRow(t, tamper("sp", "raud"), "alpha", RowAccessToken)
	wantStatus(t, "permissions widened", err, http.StatusForbidden)
	_, err = readRow(t, tamper("se", "2999-01-01T00:00:00Z"), "alpha", RowAccessToken)
	wantStatus(t, "expiry moved", err, http.StatusForbidden)
	other := newTableName(t)
	if _, err := Open(ctx, Options{ConnectionString: opts.ConnectionString, Table: other}); err != nil {
		t.Fatal(err)
	}
	_, err = readRow(t, strings.Replace(u, "/"+table+"?", "/"+other+"?", 1), "alpha", RowAccessToken)
	wantStatus(t, "another table", err, http.StatusForbidden)

	// Query only: no writes.
	body, _ := encodeEntity("alpha", RowAccessToken, map[string]any{"Value": "forged"})
	_, err = readerClient(t, u).UpsertEntity(ctx, body, nil)
	wantStatus(t, "write through the reader URL", classify(err), http.StatusForbidden)
	_, err = readerClient(t, u).DeleteEntity(ctx, "alpha", RowAccessToken, nil)
	wantStatus(t, "delete through the reader URL", classify(err), http.StatusForbidden)
	if got := rawValue(t, s, "alpha", RowAccessToken, "Value"); got != testTokens("alpha").AccessToken {
		t.Errorf("the AccessToken row changed through the reader URL")
	}

	// Expiry.
	expired, err := ReaderURL(opts, "alpha", time.Hour, now.Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	_, err = readRow(t, expired, "alpha", RowAccessToken)
	wantStatus(t, "expired URL", err, http.StatusForbidden)

	// Protocol: signed for https (an https endpoint), used over http.
	httpsOpts := opts
	httpsOpts.ConnectionString = strings.Replace(opts.ConnectionString, "TableEndpoint=http://", "TableEndpoint=https://", 1)
	httpsURL, err := ReaderURL(httpsOpts, "alpha", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(httpsURL, "spr=https") {
		t.Errorf("URL for an https endpoint does not pin spr=https")
	}
	_, err = readRow(t, strings.Replace(httpsURL, "https://", "http://", 1), "alpha", RowAccessToken)
	wantStatus(t, "https-only URL over http", err, http.StatusForbidden)
}

// TestReaderURLSDKHelperDropsRange records why ReaderURL builds the URL itself: aztables
// v1.4.1's GetTableSASURL signs the key range but leaves it out of the URL, and the service
// refuses the signature (Azurite signs what the URL carries). If this test fails, the helper
// has been fixed.
func TestReaderURLSDKHelperDropsRange(t *testing.T) {
	t.Parallel()
	table := newTableName(t)
	s := openStore(t, table, nil)
	if err := s.SaveConsent(context.Background(), "alpha", testTokens("alpha"), fullStatus()); err != nil {
		t.Fatal(err)
	}
	cred, err := aztables.NewSharedKeyCredential(azuritetest.AccountName, azuritetest.AccountKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := aztables.NewClientWithSharedKey(azurite(t).TableEndpoint()+"/"+table, cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := c.GetTableSASURL(aztables.SASPermissions{Read: true, StartPartitionKey: "alpha", EndPartitionKey: "alpha", StartRowKey: RowAccessToken, EndRowKey: RowAccessToken},
		time.Time{}, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(u, "spk=") {
		t.Errorf("aztables' SAS URL now carries spk: the helper may have been fixed")
	}
	// The helper also joins an endpoint with a path (Azurite's /devstoreaccount1) to the table
	// name without a '/'; keep only its query, on the right path.
	_, query, _ := strings.Cut(u, "?")
	_, err = readRow(t, azurite(t).TableEndpoint()+"/"+table+"?"+query, "alpha", RowAccessToken)
	wantStatus(t, "aztables' range SAS URL", err, http.StatusForbidden)

	// The same helper without a range reads: it is the range that breaks it.
	u, err = c.GetTableSASURL(aztables.SASPermissions{Read: true}, time.Time{}, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	_, query, _ = strings.Cut(u, "?")
	if _, err := readRow(t, azurite(t).TableEndpoint()+"/"+table+"?"+query, "alpha", RowAccessToken); err != nil {
		t.Errorf("aztables' SAS URL without a range: %v; want the row", err)
	}
}

func TestReaderURLErrors(t *testing.T) {
	const cs = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=" + azuritetest.AccountKey + ";EndpointSuffix=core.windows.net"
	tests := []struct {
		name    string
		o       Options
		conn    string
		valid   time.Duration
		needKey bool
		want    string
	}{
		{"managed identity", Options{Endpoint: "https://acct.table.core.windows.net"}, "alpha", time.Hour, true, "Storage Table Data Reader"},
		{"SAS connection string", Options{ConnectionString: "TableEndpoint=https://acct.table.core.windows.net;SharedAccessSignature=sv=2019-02-02&sig=x"}, "alpha", time.Hour, true, "account key"},
		{"zero validity", Options{ConnectionString: cs}, "alpha", 0, false, "positive duration"},
		{"bad connection", Options{ConnectionString: cs}, "a/b", time.Hour, false, "invalid connection name"},
		{"bad table", Options{ConnectionString: cs, Table: "x"}, "alpha", time.Hour, false, "table name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := ReaderURL(tt.o, tt.conn, tt.valid, time.Now())
			if err == nil {
				t.Fatalf("ReaderURL = a URL; want an error containing %q", tt.want)
			}
			if u != "" || !strings.Contains(err.Error(), tt.want) || errors.Is(err, ErrNeedsAccountKey) != tt.needKey {
				t.Errorf("ReaderURL error %q; want one containing %q (ErrNeedsAccountKey %v)", err, tt.want, tt.needKey)
			}
			if strings.Contains(err.Error(), "sig=x") || strings.Contains(err.Error(), azuritetest.AccountKey) {
				t.Errorf("error quotes a secret")
			}
		})
	}
	// An Azure account URL: https only, the table's path.
	u, err := ReaderURL(Options{ConnectionString: cs}, "alpha", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if want := "https://acct.table.core.windows.net/OAuthTokens?"; !strings.HasPrefix(u, want) || !strings.Contains(u, "spr=https") {
		t.Errorf("ReaderURL = %.60s...; want prefix %s and spr=https", u, want)
	}
}
