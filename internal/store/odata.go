package store

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// filter builds an OData $filter expression from tmpl, replacing each {name} placeholder with
// args[name] written as an OData string literal (single quotes doubled). The template itself may
// hold no quote: every value reaches the filter as a parameter, so no value can change the
// expression's shape. Every placeholder needs an argument and every argument must be used.
func filter(tmpl string, args map[string]string) (string, error) {
	if strings.ContainsRune(tmpl, '\'') {
		return "", errors.New("odata filter: template holds a literal; pass values as parameters")
	}
	var b strings.Builder
	used := make(map[string]bool, len(args))
	rest := tmpl
	for {
		open := strings.IndexAny(rest, "{}")
		if open < 0 {
			b.WriteString(rest)
			break
		}
		if rest[open] == '}' {
			return "", errors.New("odata filter: unmatched '}' in template")
		}
		b.WriteString(rest[:open])
		end := strings.IndexAny(rest[open+1:], "{}")
		if end < 0 || rest[open+1+end] != '}' {
			return "", errors.New("odata filter: unterminated placeholder in template")
		}
		name := rest[open+1 : open+1+end]
		if !validParamName(name) {
			return "", fmt.Errorf("odata filter: bad placeholder name %q", name)
		}
		v, ok := args[name]
		if !ok {
			return "", fmt.Errorf("odata filter: no value for placeholder {%s}", name)
		}
		if !utf8.ValidString(v) {
			return "", fmt.Errorf("odata filter: value for {%s} is not valid UTF-8", name)
		}
		used[name] = true
		b.WriteString(quoteLiteral(v))
		rest = rest[open+1+end+1:]
	}
	for name := range args {
		if !used[name] {
			return "", fmt.Errorf("odata filter: value %q has no placeholder", name)
		}
	}
	return b.String(), nil
}

// quoteLiteral writes s as an OData string literal.
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

func validParamName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// filterValues is filter with typed values: a string becomes an OData string literal and a
// time.Time a DateTime literal (UTC, 100 ns precision, as the table keeps times).
func filterValues(tmpl string, args map[string]any) (string, error) {
	strs := make(map[string]string, len(args))
	times := map[string]string{}
	for k, v := range args {
		switch v := v.(type) {
		case string:
			strs[k] = v
		case time.Time:
			// A placeholder for the quoted literal that filter writes; replaced below.
			strs[k] = "\x00" + k + "\x00"
			times[quoteLiteral(strs[k])] = "datetime'" + storedTime(v).Format("2006-01-02T15:04:05.0000000Z") + "'"
		default:
			return "", fmt.Errorf("odata filter: value for {%s} is a %T; want a string or a time", k, v)
		}
	}
	f, err := filter(tmpl, strs)
	if err != nil {
		return "", err
	}
	for lit, dt := range times {
		f = strings.ReplaceAll(f, lit, dt)
	}
	return f, nil
}
