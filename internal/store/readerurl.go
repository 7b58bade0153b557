package store

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// sasVersion is the service version the reader SAS is signed for (the one aztables v1.4.1 uses).
const sasVersion = "2019-02-02"

// ErrNeedsAccountKey: a table SAS is signed with the storage account key, and the store is
// reached without one (Microsoft Entra ID / managed identity, or a connection string holding
// a SAS). Tables have no user-delegation SAS.
var ErrNeedsAccountKey = errors.New("a table SAS is signed with the storage account key, and this store is reached without one " +
	"(tables have no user-delegation SAS); use a connection string with AccountKey, or give the reader " +
	`the "Storage Table Data Reader" role instead: it can be scoped to a table but not to a partition or row, ` +
	"so keep what readers may see in a table of its own")

// ReaderURL returns a table SAS URL that allows query ("r") only on connection's AccessToken row:
// the partition range and the row-key range are both fixed to it (spk=epk=connection,
// srk=erk=AccessToken). It expires valid after now, and allows https only when the table
// endpoint is https. The store must be reached with an account key (Options.ConnectionString
// with AccountKey, or UseDevelopmentStorage); otherwise the error wraps ErrNeedsAccountKey.
// Nothing is contacted.
//
// The URL is a credential: give it to the reader, never log it. Azure enforces the key range;
// Azurite checks the signature (which covers the range), expiry, protocol and permissions, but
// does not enforce the range.
//
// The URL is built here rather than with aztables' SAS helper: v1.4.1 signs the key range but
// leaves spk/srk/epk/erk out of the URL it returns, which the service then refuses (and it
// joins an endpoint with a path, such as Azurite's, to the table name without a '/').
func ReaderURL(o Options, connection string, valid time.Duration, now time.Time) (string, error) {
	if err := checkName(connection); err != nil {
		return "", fmt.Errorf("store: reader URL: %w", err)
	}
	if valid <= 0 {
		return "", fmt.Errorf("store: reader URL for %s: validity %v; want a positive duration", connection, valid)
	}
	table := o.Table
	if table == "" {
		table = DefaultTable
	}
	if !tableNameRE.MatchString(table) {
		return "", fmt.Errorf("store: reader URL: table name %q: want a letter then 2-62 letters or digits", table)
	}
	if o.ConnectionString == "" {
		return "", fmt.Errorf("store: reader URL for %s: %w", connection, ErrNeedsAccountKey)
	}
	a, err := parseConnectionString(o.ConnectionString)
	if err != nil {
		return "", fmt.Errorf("store: reader URL: %w", err)
	}
	if a.key == "" {
		return "", fmt.Errorf("store: reader URL for %s: %w", connection, ErrNeedsAccountKey)
	}
	key, err := base64.StdEncoding.DecodeString(a.key)
	if err != nil {
		return "", errors.New("store: reader URL: connection string: AccountKey is not valid base64")
	}
	endpoint, err := url.Parse(a.endpoint)
	if err != nil {
		return "", errors.New("store: reader URL: the table endpoint is not a valid URL")
	}

	// Values are signed as they are, and URL-encoded only in the query.
	v := sasValues{
		permissions: "r",
		expiry:      now.Add(valid).UTC().Format("2006-01-02T15:04:05Z"),
		resource:    "/table/" + a.name + "/" + strings.ToLower(table),
		version:     sasVersion,
		startPK:     connection,
		startRK:     RowAccessToken,
		endPK:       connection,
		endRK:       RowAccessToken,
	}
	if endpoint.Scheme == "https" {
		v.protocol = "https"
	}
	q := url.Values{
		"sv":  {v.version},
		"tn":  {strings.ToLower(table)},
		"sp":  {v.permissions},
		"se":  {v.expiry},
		"spk": {v.startPK},
		"srk": {v.startRK},
		"epk": {v.endPK},
		"erk": {v.endRK},
		"sig": {v.sign(key)},
	}
	if v.protocol != "" {
		q.Set("spr", v.protocol)
	}
	return strings.TrimRight(a.endpoint, "/") + "/" + url.PathEscape(table) + "?" + q.Encode(), nil
}

// sasValues are the signed fields of a table service SAS.
type sasValues struct {
	permissions, start, expiry, resource, identifier, ip, protocol, version string
	startPK, startRK, endPK, endRK                                          string
}

// sign is the base64 HMAC-SHA256, under the account key, of the table service SAS StringToSign
// (https://learn.microsoft.com/rest/api/storageservices/create-service-sas#version-2018-11-09-and-later).
func (v sasValues) sign(key []byte) string {
	stringToSign := strings.Join([]string{
		v.permissions, v.start, v.expiry, v.resource, v.identifier, v.ip, v.protocol, v.version,
		v.startPK, v.startRK, v.endPK, v.endRK,
	}, "\n")
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(stringToSign))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
