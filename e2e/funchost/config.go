package funchost

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultFunctionTimeout applies when host.json sets none (the Consumption plan default).
const DefaultFunctionTimeout = 5 * time.Minute

// App is a function app read from disk: host.json plus every <dir>/function.json.
type App struct {
	Root      string // absolute app root
	Host      HostConfig
	Functions []*Function // sorted by name
}

// HostConfig is the part of host.json the emulator uses.
type HostConfig struct {
	Version string
	// FunctionTimeout is 0 when host.json says "-1" (unbounded, Premium/Dedicated only).
	FunctionTimeout             time.Duration
	ExecutablePath              string // customHandler.description.defaultExecutablePath, unexpanded
	Arguments                   []string
	WorkingDirectory            string // as written; "" means the app root
	EnableForwardingHTTPRequest bool
	EnableProxyingHTTPRequest   bool   // newer hosts: same restriction as forwarding
	RoutePrefix                 string // extensions.http.routePrefix; "api" when absent, "" allowed

	allowList []string // host.json "functions"; applied by Load
}

// Function is one function.json; Name is its folder name, case kept.
type Function struct {
	Name     string
	Dir      string
	Disabled bool
	Bindings []Binding
	Retry    *RetryPolicy
	// Trigger is the single binding whose type ends in "Trigger".
	Trigger *Binding
	route   *routeTemplate // HTTP functions only
}

// Binding is one entry of function.json "bindings", with the defaults the host applies.
type Binding struct {
	Name      string
	Type      string
	Direction string
	// httpTrigger
	AuthLevel string   // lower case; "function" when absent
	Methods   []string // upper case; empty means every method
	Route     string   // the function name when absent
	// timerTrigger
	Schedule     string // unresolved: may contain %Setting%
	RunOnStartup bool
	UseMonitor   bool // true when absent
}

// RetryPolicy is function.json "retry".
type RetryPolicy struct {
	Strategy        string // fixedDelay or exponentialBackoff
	MaxRetryCount   int    // -1: retry forever
	DelayInterval   time.Duration
	MinimumInterval time.Duration
	MaximumInterval time.Duration
}

// IsHTTP reports whether the function is triggered by httpTrigger.
func (f *Function) IsHTTP() bool { return strings.EqualFold(f.Trigger.Type, "httpTrigger") }

// IsTimer reports whether the function is triggered by timerTrigger.
func (f *Function) IsTimer() bool { return strings.EqualFold(f.Trigger.Type, "timerTrigger") }

// HTTPInOut reports whether the bindings are exactly one httpTrigger in and one http out: the
// only shape the host forwards as plain HTTP.
func (f *Function) HTTPInOut() bool {
	if len(f.Bindings) != 2 || !f.IsHTTP() {
		return false
	}
	for _, b := range f.Bindings {
		if b.Direction == "out" && strings.EqualFold(b.Type, "http") {
			return true
		}
	}
	return false
}

// HTTPOut returns the http output binding, if any.
func (f *Function) HTTPOut() *Binding {
	for i := range f.Bindings {
		if f.Bindings[i].Direction == "out" && strings.EqualFold(f.Bindings[i].Type, "http") {
			return &f.Bindings[i]
		}
	}
	return nil
}

// Function returns the function with the given name, matched case-insensitively as the host
// does, or nil.
func (a *App) Function(name string) *Function {
	for _, f := range a.Functions {
		if strings.EqualFold(f.Name, name) {
			return f
		}
	}
	return nil
}

type hostJSON struct {
	Version         *string         `json:"version"`
	FunctionTimeout *string         `json:"functionTimeout"`
	Functions       []string        `json:"functions"`
	CustomHandler   *customHandler  `json:"customHandler"`
	Extensions      json.RawMessage `json:"extensions"`
}

type customHandler struct {
	Description struct {
		DefaultExecutablePath string   `json:"defaultExecutablePath"`
		Arguments             []string `json:"arguments"`
		WorkingDirectory      string   `json:"workingDirectory"`
	} `json:"description"`
	EnableForwardingHTTPRequest bool `json:"enableForwardingHttpRequest"`
	EnableProxyingHTTPRequest   bool `json:"enableProxyingHttpRequest"`
}

type functionJSON struct {
	Disabled json.RawMessage   `json:"disabled"`
	Bindings []json.RawMessage `json:"bindings"`
	Retry    *struct {
		Strategy        string `json:"strategy"`
		MaxRetryCount   *int   `json:"maxRetryCount"`
		DelayInterval   string `json:"delayInterval"`
		MinimumInterval string `json:"minimumInterval"`
		MaximumInterval string `json:"maximumInterval"`
	} `json:"retry"`
}

type bindingJSON struct {
	Name         string   `json:"name"`
	Type         string   `json:"type"`
	Direction    string   `json:"direction"`
	AuthLevel    string   `json:"authLevel"`
	Methods      []string `json:"methods"`
	Route        *string  `json:"route"`
	Schedule     string   `json:"schedule"`
	RunOnStartup bool     `json:"runOnStartup"`
	UseMonitor   *bool    `json:"useMonitor"`
}

// Load reads appRoot/host.json and every appRoot/<dir>/function.json. Property names match
// case-insensitively, as in the host. Settings (%NAME%) are resolved later, by Start, against
// the environment given there.
func Load(appRoot string) (*App, error) {
	root, err := filepath.Abs(appRoot)
	if err != nil {
		return nil, fmt.Errorf("load app: %w", err)
	}
	app := &App{Root: root}
	if err := app.loadHost(); err != nil {
		return nil, fmt.Errorf("load app %s: %w", root, err)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("load app: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		path := filepath.Join(root, e.Name(), "function.json")
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("load app: %w", err)
		}
		fn, err := parseFunction(e.Name(), filepath.Join(root, e.Name()), data)
		if err != nil {
			return nil, fmt.Errorf("load app: %s: %w", path, err)
		}
		app.Functions = append(app.Functions, fn)
	}
	if allow := app.Host.allowList; allow != nil {
		app.Functions = slices.DeleteFunc(app.Functions, func(f *Function) bool {
			return !slices.ContainsFunc(allow, func(n string) bool { return strings.EqualFold(n, f.Name) })
		})
	}
	slices.SortFunc(app.Functions, func(a, b *Function) int { return strings.Compare(a.Name, b.Name) })
	if len(app.Functions) == 0 {
		return nil, fmt.Errorf("load app %s: no function.json found", root)
	}
	return app, nil
}

func (a *App) loadHost() error {
	data, err := os.ReadFile(filepath.Join(a.Root, "host.json"))
	if err != nil {
		return err
	}
	var hj hostJSON
	if err := json.Unmarshal(data, &hj); err != nil {
		return fmt.Errorf("host.json: %w", err)
	}
	if hj.Version == nil || *hj.Version == "" {
		return errors.New(`host.json: the required "version" property is missing`)
	}
	if *hj.Version != "2.0" {
		return fmt.Errorf(`host.json: version %q is not supported; the host requires "2.0"`, *hj.Version)
	}
	h := &a.Host
	h.Version = *hj.Version
	h.FunctionTimeout = DefaultFunctionTimeout
	if hj.FunctionTimeout != nil {
		d, err := parseTimeSpan(*hj.FunctionTimeout)
		if err != nil {
			return fmt.Errorf("host.json: functionTimeout: %w", err)
		}
		h.FunctionTimeout = d
	}
	if hj.CustomHandler == nil || hj.CustomHandler.Description.DefaultExecutablePath == "" {
		return errors.New("host.json: customHandler.description.defaultExecutablePath is missing")
	}
	ch := hj.CustomHandler
	h.ExecutablePath = ch.Description.DefaultExecutablePath
	h.Arguments = ch.Description.Arguments
	h.WorkingDirectory = ch.Description.WorkingDirectory
	h.EnableForwardingHTTPRequest = ch.EnableForwardingHTTPRequest
	h.EnableProxyingHTTPRequest = ch.EnableProxyingHTTPRequest
	h.RoutePrefix = "api"
	if len(hj.Extensions) > 0 {
		var ext struct {
			HTTP struct {
				RoutePrefix *string `json:"routePrefix"`
			} `json:"http"`
		}
		if err := json.Unmarshal(hj.Extensions, &ext); err != nil {
			return fmt.Errorf("host.json: extensions: %w", err)
		}
		if p := ext.HTTP.RoutePrefix; p != nil {
			h.RoutePrefix = strings.Trim(*p, "/")
		}
	}
	h.allowList = hj.Functions
	return nil
}

func parseFunction(name, dir string, data []byte) (*Function, error) {
	var fj functionJSON
	if err := json.Unmarshal(data, &fj); err != nil {
		return nil, err
	}
	fn := &Function{Name: name, Dir: dir}
	if len(fj.Disabled) > 0 {
		// "disabled" may be a boolean or a string (an app setting name is not emulated).
		var b bool
		var s string
		switch {
		case json.Unmarshal(fj.Disabled, &b) == nil:
			fn.Disabled = b
		case json.Unmarshal(fj.Disabled, &s) == nil:
			fn.Disabled, _ = strconv.ParseBool(s)
		}
	}
	if len(fj.Bindings) == 0 {
		return nil, errors.New(`no "bindings"`)
	}
	for i, raw := range fj.Bindings {
		var bj bindingJSON
		if err := json.Unmarshal(raw, &bj); err != nil {
			return nil, fmt.Errorf("binding %d: %w", i, err)
		}
		b, err := newBinding(name, bj)
		if err != nil {
			return nil, fmt.Errorf("binding %d (%q): %w", i, bj.Name, err)
		}
		fn.Bindings = append(fn.Bindings, b)
	}
	for i := range fn.Bindings {
		b := &fn.Bindings[i]
		if b.Direction == "in" && strings.HasSuffix(strings.ToLower(b.Type), "trigger") {
			if fn.Trigger != nil {
				return nil, fmt.Errorf("more than one trigger binding (%q and %q)", fn.Trigger.Name, b.Name)
			}
			fn.Trigger = b
		}
	}
	if fn.Trigger == nil {
		return nil, errors.New("no trigger binding")
	}
	if fn.IsHTTP() {
		rt, err := parseRoute(fn.Trigger.Route)
		if err != nil {
			return nil, fmt.Errorf("route %q: %w", fn.Trigger.Route, err)
		}
		fn.route = rt
	}
	if r := fj.Retry; r != nil {
		p := &RetryPolicy{Strategy: r.Strategy}
		if r.MaxRetryCount == nil {
			return nil, errors.New("retry: maxRetryCount is required")
		}
		p.MaxRetryCount = *r.MaxRetryCount
		var err error
		switch strings.ToLower(r.Strategy) {
		case "fixeddelay":
			p.DelayInterval, err = parseTimeSpan(r.DelayInterval)
		case "exponentialbackoff":
			p.MinimumInterval, err = parseTimeSpan(r.MinimumInterval)
			if err == nil {
				p.MaximumInterval, err = parseTimeSpan(r.MaximumInterval)
			}
		default:
			err = fmt.Errorf("strategy %q is neither fixedDelay nor exponentialBackoff", r.Strategy)
		}
		if err != nil {
			return nil, fmt.Errorf("retry: %w", err)
		}
		fn.Retry = p
	}
	return fn, nil
}

var (
	authLevels  = []string{"anonymous", "function", "admin", "system", "user"}
	httpMethods = []string{"GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS", "TRACE", "CONNECT"}
)

func newBinding(function string, bj bindingJSON) (Binding, error) {
	b := Binding{
		Name:         bj.Name,
		Type:         bj.Type,
		Direction:    strings.ToLower(bj.Direction),
		Schedule:     bj.Schedule,
		RunOnStartup: bj.RunOnStartup,
		UseMonitor:   bj.UseMonitor == nil || *bj.UseMonitor,
	}
	switch {
	case b.Name == "":
		return b, errors.New(`"name" is required`)
	case b.Type == "":
		return b, errors.New(`"type" is required`)
	case b.Direction != "in" && b.Direction != "out" && b.Direction != "inout":
		return b, fmt.Errorf("direction %q is not in, out or inout", bj.Direction)
	}
	switch strings.ToLower(b.Type) {
	case "httptrigger":
		b.AuthLevel = strings.ToLower(bj.AuthLevel)
		if b.AuthLevel == "" {
			b.AuthLevel = "function"
		}
		if !slices.Contains(authLevels, b.AuthLevel) {
			return b, fmt.Errorf("authLevel %q is not one of %v", bj.AuthLevel, authLevels)
		}
		for _, m := range bj.Methods {
			m = strings.ToUpper(m)
			if !slices.Contains(httpMethods, m) {
				return b, fmt.Errorf("method %q is not an HTTP method", m)
			}
			b.Methods = append(b.Methods, m)
		}
		b.Route = function
		if bj.Route != nil && strings.Trim(*bj.Route, "/") != "" {
			b.Route = strings.Trim(*bj.Route, "/")
		}
	case "timertrigger":
		if strings.TrimSpace(b.Schedule) == "" {
			return b, errors.New(`timerTrigger needs a "schedule"`)
		}
	}
	return b, nil
}

// parseTimeSpan parses .NET TimeSpan text as host.json and function.json use it:
// [d.]hh:mm[:ss[.fffffff]], or "-1" for unbounded (returned as 0).
func parseTimeSpan(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "-1" {
		return 0, nil
	}
	var days int64
	rest := s
	if dot := strings.IndexByte(rest, '.'); dot >= 0 && dot < strings.IndexByte(rest, ':') {
		d, err := strconv.ParseInt(rest[:dot], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("timespan %q: bad days", s)
		}
		days, rest = d, rest[dot+1:]
	}
	parts := strings.Split(rest, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, fmt.Errorf("timespan %q: want [d.]hh:mm:ss", s)
	}
	h, err1 := strconv.ParseInt(parts[0], 10, 64)
	m, err2 := strconv.ParseInt(parts[1], 10, 64)
	var sec float64
	var err3 error
	if len(parts) == 3 {
		sec, err3 = strconv.ParseFloat(parts[2], 64)
	}
	if err := errors.Join(err1, err2, err3); err != nil || h < 0 || h > 23 || m < 0 || m > 59 || sec < 0 || sec >= 60 {
		return 0, fmt.Errorf("timespan %q: want [d.]hh:mm:ss", s)
	}
	d := time.Duration(days)*24*time.Hour + time.Duration(h)*time.Hour + time.Duration(m)*time.Minute +
		time.Duration(sec*float64(time.Second))
	return d, nil
}

// resolveSettings replaces each %NAME% in s with env[NAME], as the host's name resolver does
// for binding properties; a setting that is not set is an error naming it.
func resolveSettings(s string, env map[string]string) (string, error) {
	var b strings.Builder
	for {
		start := strings.IndexByte(s, '%')
		if start < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		end := strings.IndexByte(s[start+1:], '%')
		if end < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		name := s[start+1 : start+1+end]
		v, ok := env[name]
		if !ok || v == "" {
			return "", fmt.Errorf("'%%%s%%' does not resolve to a value", name)
		}
		b.WriteString(s[:start])
		b.WriteString(v)
		s = s[start+end+2:]
	}
}
