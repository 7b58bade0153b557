package funchost

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// routeTemplate is an ASP.NET-style route: literal segments, {name}, {name:constraint},
// {name?} (optional: only optional parameters may follow it, as in "authorize/{connection?}/{label?}";
// a request may stop before any of them) and {*name} (catch-all, last only). Literals match
// case-insensitively. Segments that mix literals and parameters ("file.{ext}") are not
// emulated, nor constraints other than those in routeConstraints (others match anything).
type routeTemplate struct {
	text     string
	segments []routeSegment
}

type routeSegment struct {
	literal    string // when param == ""
	param      string
	constraint string
	optional   bool
	catchAll   bool
}

var guidPattern = regexp.MustCompile(`^\{?[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\}?$`)

var routeConstraints = map[string]func(string) bool{
	"int":    func(v string) bool { _, err := strconv.ParseInt(v, 10, 32); return err == nil },
	"long":   func(v string) bool { _, err := strconv.ParseInt(v, 10, 64); return err == nil },
	"bool":   func(v string) bool { return strings.EqualFold(v, "true") || strings.EqualFold(v, "false") },
	"double": func(v string) bool { _, err := strconv.ParseFloat(v, 64); return err == nil },
	"float":  func(v string) bool { _, err := strconv.ParseFloat(v, 32); return err == nil },
	"guid":   guidPattern.MatchString,
	"alpha": func(v string) bool {
		for _, r := range v {
			if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') {
				return false
			}
		}
		return true
	},
}

func parseRoute(text string) (*routeTemplate, error) {
	rt := &routeTemplate{text: text}
	parts := strings.Split(strings.Trim(text, "/"), "/")
	for i, p := range parts {
		if p == "" {
			return nil, errors.New("empty segment")
		}
		if !strings.ContainsAny(p, "{}") {
			rt.segments = append(rt.segments, routeSegment{literal: p})
			continue
		}
		if p[0] != '{' || p[len(p)-1] != '}' || strings.Count(p, "{") != 1 || strings.Count(p, "}") != 1 {
			return nil, fmt.Errorf("segment %q mixes literals and parameters (not emulated)", p)
		}
		inner := p[1 : len(p)-1]
		seg := routeSegment{}
		if rest, ok := strings.CutPrefix(inner, "*"); ok {
			seg.catchAll, inner = true, rest
			if i != len(parts)-1 {
				return nil, fmt.Errorf("catch-all %q must be the last segment", p)
			}
		}
		if rest, ok := strings.CutSuffix(inner, "?"); ok {
			seg.optional, inner = true, rest
		}
		name, constraint, _ := strings.Cut(inner, ":")
		if name == "" {
			return nil, fmt.Errorf("segment %q has no parameter name", p)
		}
		if eq := strings.IndexByte(constraint, '='); eq >= 0 || strings.Contains(name, "=") {
			return nil, fmt.Errorf("segment %q: default values are not emulated", p)
		}
		seg.param, seg.constraint = name, constraint
		rt.segments = append(rt.segments, seg)
	}
	// ASP.NET accepts a required segment after an optional one, but a request that leaves out
	// the optional one then never matches: refuse such a template rather than emulate that.
	for i, s := range rt.segments {
		if !s.optional {
			continue
		}
		for _, next := range rt.segments[i+1:] {
			if !next.optional {
				return nil, fmt.Errorf("optional parameter %q is followed by a required segment (not emulated)", s.param)
			}
		}
	}
	return rt, nil
}

// match matches decoded path segments (after the route prefix) and returns the route values.
func (rt *routeTemplate) match(segs []string) (map[string]string, bool) {
	params := map[string]string{}
	for i, s := range rt.segments {
		if s.catchAll {
			params[s.param] = strings.Join(segs[min(i, len(segs)):], "/")
			return params, true
		}
		if i >= len(segs) {
			// The request stops here: only optional parameters may remain.
			for _, rest := range rt.segments[i:] {
				if !rest.optional && !rest.catchAll {
					return nil, false
				}
			}
			return params, true
		}
		v := segs[i]
		if s.param == "" {
			if !strings.EqualFold(v, s.literal) {
				return nil, false
			}
			continue
		}
		if v == "" || !constraintOK(s.constraint, v) {
			return nil, false
		}
		params[s.param] = v
	}
	return params, len(segs) == len(rt.segments)
}

func constraintOK(constraint, v string) bool {
	for _, c := range strings.Split(constraint, ":") {
		if f, ok := routeConstraints[strings.ToLower(c)]; ok && !f(v) {
			return false
		}
	}
	return true
}

// rank orders templates as ASP.NET routing prefers them: per segment, literals before
// constrained parameters before parameters before optional ones before catch-alls.
func (rt *routeTemplate) rank() []int {
	r := make([]int, len(rt.segments))
	for i, s := range rt.segments {
		switch {
		case s.param == "":
			r[i] = 1
		case s.catchAll:
			r[i] = 5
		case s.optional:
			r[i] = 4
		case s.constraint != "":
			r[i] = 2
		default:
			r[i] = 3
		}
	}
	return r
}
