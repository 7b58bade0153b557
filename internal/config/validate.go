package config

import (
	"net"
	"net/url"
	"strconv"
	"strings"
)

// checkURL returns what is wrong with raw as an absolute http(s) URL, or "". With strictHTTPS,
// plain http is allowed only for loopback hosts. The message follows the shown URL.
func checkURL(raw string, strictHTTPS bool) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil || !u.IsAbs():
		return "is not an absolute URL"
	case u.Scheme != "https" && u.Scheme != "http":
		return "is not an http(s) URL"
	case u.Host == "" || u.Hostname() == "":
		return "has no host"
	case u.User != nil:
		return "must not carry a user name or password"
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return "must not have a #fragment"
	case strictHTTPS && u.Scheme == "http" && !isLoopback(u.Hostname()):
		return "uses http: use https (http is allowed only for localhost and loopback addresses such as 127.0.0.1 and [::1])"
	}
	return ""
}

// showURL quotes raw for a message without its query, which may hold a token, or says "the
// value" when raw does not parse or carries credentials.
func showURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User != nil {
		return "the value"
	}
	s := *u
	s.RawQuery, s.ForceQuery, s.Fragment, s.RawFragment = "", false, "", ""
	shown := s.String()
	if u.RawQuery != "" {
		shown += "?..."
	}
	return strconv.Quote(shown)
}

func isLoopback(host string) bool {
	host = strings.ToLower(host)
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// isHostName says whether h is a DNS name: dot-separated labels of letters, digits and inner
// hyphens.
func isHostName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

func isPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535 && strings.TrimLeft(p, "0123456789") == ""
}
