package store

import (
	"encoding/base64"
	"errors"
	"net/url"
	"strconv"
	"strings"
)

// Azurite's well-known development account: public, documented by Microsoft, never a secret.
const (
	devAccountName = "devstoreaccount1"
	devAccountKey  = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
	// devTableEndpoint is where `UseDevelopmentStorage=true` points: Azurite's table service.
	devTableEndpoint = "http://127.0.0.1:10002/" + devAccountName
	devTablePort     = "10002"
)

// account is a parsed connection string: where the table service is and how to sign requests.
// Exactly one of key and sas is set.
type account struct {
	endpoint string // table service URL, without query
	name     string
	key      string // base64 shared key
	sas      string // shared access signature query, without '?'
}

// parseConnectionString understands the Azure Storage connection string forms that reach a table
// service: `UseDevelopmentStorage=true` (optionally with DevelopmentStorageProxyUri), which
// aztables rejects and which is translated to Azurite's well-known account; an account name and
// key with TableEndpoint or with DefaultEndpointsProtocol/EndpointSuffix; and a
// SharedAccessSignature with TableEndpoint or AccountName. Keys are case-insensitive.
//
// Errors name the missing or malformed setting and never echo the string: it holds a secret.
func parseConnectionString(s string) (account, error) {
	kv, err := connStringPairs(s)
	if err != nil {
		return account{}, err
	}
	if v, ok := kv["usedevelopmentstorage"]; ok {
		if !strings.EqualFold(v, "true") {
			return account{}, errors.New("connection string has UseDevelopmentStorage set to something other than true")
		}
		a := account{endpoint: devTableEndpoint, name: devAccountName, key: devAccountKey}
		if p, ok := kv["developmentstorageproxyuri"]; ok {
			u, err := url.Parse(p)
			if err != nil || u.Scheme == "" || u.Hostname() == "" {
				return account{}, errors.New("connection string: DevelopmentStorageProxyUri is not an absolute URL")
			}
			a.endpoint = u.Scheme + "://" + joinHostPort(u.Hostname(), devTablePort) + "/" + devAccountName
		}
		return a, nil
	}

	a := account{name: kv["accountname"], key: kv["accountkey"], sas: strings.TrimPrefix(kv["sharedaccesssignature"], "?")}
	switch {
	case a.key == "" && a.sas == "":
		return account{}, errors.New("connection string has no AccountKey or SharedAccessSignature (for Microsoft Entra auth use a table endpoint instead)")
	case a.key != "" && a.sas != "":
		return account{}, errors.New("connection string has both AccountKey and SharedAccessSignature")
	case a.key != "":
		if a.name == "" {
			return account{}, errors.New("connection string has no AccountName")
		}
		if _, err := base64.StdEncoding.DecodeString(a.key); err != nil {
			return account{}, errors.New("connection string has an AccountKey that is not base64")
		}
	}

	if ep, ok := kv["tableendpoint"]; ok {
		u, err := url.Parse(ep)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return account{}, errors.New("connection string: TableEndpoint is not an absolute http(s) URL")
		}
		if u.RawQuery != "" || u.Fragment != "" {
			return account{}, errors.New("connection string: TableEndpoint has a query or fragment; use SharedAccessSignature")
		}
		a.endpoint = strings.TrimRight(u.String(), "/")
		return a, nil
	}
	if a.name == "" {
		return account{}, errors.New("connection string has no AccountName or TableEndpoint")
	}
	scheme := "https"
	if p, ok := kv["defaultendpointsprotocol"]; ok {
		if p != "http" && p != "https" {
			return account{}, errors.New("connection string: DefaultEndpointsProtocol must be http or https")
		}
		scheme = p
	}
	suffix := "core.windows.net"
	if v, ok := kv["endpointsuffix"]; ok && v != "" {
		suffix = v
	}
	a.endpoint = scheme + "://" + a.name + ".table." + suffix
	if _, err := url.Parse(a.endpoint); err != nil {
		return account{}, errors.New("connection string: AccountName or EndpointSuffix makes no valid URL")
	}
	return a, nil
}

// CheckConnectionString says what is wrong with s as a storage connection string that reaches a
// table service, or nil. It is the parse Open does, so a string it accepts opens. The error
// names keys, never values.
func CheckConnectionString(s string) error {
	_, err := parseConnectionString(s)
	return err
}

// connStringPairs splits `k1=v1;k2=v2;` into lower-cased keys and their values. Values may hold
// '=' (base64 keys end with it).
func connStringPairs(s string) (map[string]string, error) {
	kv := make(map[string]string)
	for i, seg := range strings.Split(s, ";") {
		seg = strings.TrimSpace(seg)
		if seg == "" {
			continue
		}
		k, v, ok := strings.Cut(seg, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if !ok || k == "" {
			return nil, errors.New("connection string: segment " + strconv.Itoa(i+1) + " is not key=value, so this is not a storage connection string")
		}
		if _, dup := kv[k]; dup {
			// Keys are names such as AccountName, never secrets.
			return nil, errors.New("connection string names " + k + " twice (segment " + strconv.Itoa(i+1) + ")")
		}
		kv[k] = strings.TrimSpace(v)
	}
	if len(kv) == 0 {
		return nil, errors.New("connection string is empty")
	}
	return kv, nil
}

func joinHostPort(host, port string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + port
	}
	return host + ":" + port
}
