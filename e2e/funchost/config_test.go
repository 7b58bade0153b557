package funchost

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// repoRoot is the product repository, whose real host.json and function.json files are tested.
const repoRoot = "../.."

func TestLoadRealRepo(t *testing.T) {
	app, err := Load(repoRoot)
	if err != nil {
		t.Fatalf("Load(%s): %v", repoRoot, err)
	}
	h := app.Host
	if h.Version != "2.0" || h.ExecutablePath != "freshtoken" || !h.EnableForwardingHTTPRequest || h.RoutePrefix != "api" || h.FunctionTimeout != 5*time.Minute {
		t.Errorf("host = %+v; want version 2.0, executable freshtoken, forwarding on, prefix api, timeout 5m", h)
	}
	var names []string
	for _, f := range app.Functions {
		names = append(names, f.Name)
	}
	if want := []string{"Authorize", "Callback", "RefreshTimer"}; !slices.Equal(names, want) {
		t.Fatalf("functions = %v; want %v", names, want)
	}
	tests := []struct {
		name, route, authLevel string
	}{
		{"Authorize", "authorize/{connection?}/{label?}", "function"},
		// The OAuth2 redirect target: must be anonymous, or ?code=<authorization code> is
		// taken for a function key and the host answers 401.
		{"Callback", "callback/{connection}", "anonymous"},
	}
	for _, tt := range tests {
		f := app.Function(tt.name)
		if !f.IsHTTP() || !f.HTTPInOut() {
			t.Errorf("%s: IsHTTP %v, HTTPInOut %v; want both (forwarded as plain HTTP)", tt.name, f.IsHTTP(), f.HTTPInOut())
			continue
		}
		b := f.Trigger
		if b.Route != tt.route || b.AuthLevel != tt.authLevel || !slices.Equal(b.Methods, []string{"GET"}) {
			t.Errorf("%s: route %q, authLevel %q, methods %v; want %q, %q, [GET]", tt.name, b.Route, b.AuthLevel, b.Methods, tt.route, tt.authLevel)
		}
	}
	timer := app.Function("refreshtimer")
	if timer == nil || !timer.IsTimer() {
		t.Fatalf("RefreshTimer: %+v; want a timer function", timer)
	}
	if b := timer.Trigger; b.Name != "timer" || b.Schedule != "%REFRESH_SCHEDULE%" || b.RunOnStartup || !b.UseMonitor {
		t.Errorf("RefreshTimer trigger = %+v; want name timer, schedule %%REFRESH_SCHEDULE%%, runOnStartup false, useMonitor true", b)
	}
	if timer.Retry != nil {
		t.Errorf("RefreshTimer retry = %+v; want none", timer.Retry)
	}
}

func TestLoadTestApp(t *testing.T) {
	app, err := Load("testdata/app")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(app.Functions) != 20 {
		t.Errorf("got %d functions; want 20 (folders without function.json are skipped)", len(app.Functions))
	}
	if got := app.Host.Arguments; !slices.Equal(got, []string{"-flag", "value"}) || app.Host.FunctionTimeout != time.Minute {
		t.Errorf("arguments %v, timeout %v; want [-flag value], 1m", got, app.Host.FunctionTimeout)
	}
	tick := app.Function("Tick")
	if tick.Trigger.Name != "myTimer" || tick.Retry == nil || tick.Retry.MaxRetryCount != 2 || tick.Retry.DelayInterval != 10*time.Second {
		t.Errorf("Tick = trigger %+v, retry %+v; want myTimer with fixedDelay 2 x 10s", tick.Trigger, tick.Retry)
	}
	def := app.Function("DefaultRoute").Trigger
	if def.Route != "DefaultRoute" || def.Methods != nil {
		t.Errorf("DefaultRoute: route %q, methods %v; want the function name and no methods", def.Route, def.Methods)
	}
	if got := app.Function("Secure").Trigger.AuthLevel; got != "function" {
		t.Errorf("Secure authLevel = %q; want the default, function", got)
	}
	if app.Function("JSONHTTP").HTTPInOut() {
		t.Error("JSONHTTP has an extra output binding; HTTPInOut() = true; want false")
	}
	if app.Function("NoMonitor").Trigger.UseMonitor {
		t.Error("NoMonitor useMonitor = true; want false")
	}
}

// writeApp creates an app root with the given files (path -> content).
func writeApp(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for path, content := range files {
		full := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const (
	okHost  = `{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"fakehandler"}}}`
	okTimer = `{"bindings":[{"name":"t","type":"timerTrigger","direction":"in","schedule":"0 * * * * *"}]}`
)

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		wantErr string
	}{
		{"no host.json", map[string]string{"A/function.json": okTimer}, "host.json"},
		{"no version", map[string]string{"host.json": `{"customHandler":{"description":{"defaultExecutablePath":"x"}}}`, "A/function.json": okTimer}, `"version" property is missing`},
		{"old version", map[string]string{"host.json": `{"version":"1.0","customHandler":{"description":{"defaultExecutablePath":"x"}}}`, "A/function.json": okTimer}, `version "1.0"`},
		{"no custom handler", map[string]string{"host.json": `{"version":"2.0"}`, "A/function.json": okTimer}, "defaultExecutablePath is missing"},
		{"bad timeout", map[string]string{"host.json": `{"version":"2.0","functionTimeout":"5 minutes","customHandler":{"description":{"defaultExecutablePath":"x"}}}`, "A/function.json": okTimer}, "functionTimeout"},
		{"no functions", map[string]string{"host.json": okHost}, "no function.json"},
		{"malformed function.json", map[string]string{"host.json": okHost, "A/function.json": `{"bindings":[`}, filepath.Join("A", "function.json")},
		{"no bindings", map[string]string{"host.json": okHost, "A/function.json": `{}`}, `no "bindings"`},
		{"no trigger", map[string]string{"host.json": okHost, "A/function.json": `{"bindings":[{"name":"res","type":"http","direction":"out"}]}`}, "no trigger binding"},
		{"two triggers", map[string]string{"host.json": okHost, "A/function.json": `{"bindings":[
			{"name":"a","type":"timerTrigger","direction":"in","schedule":"0 * * * * *"},
			{"name":"b","type":"httpTrigger","direction":"in"}]}`}, "more than one trigger"},
		{"binding without name", map[string]string{"host.json": okHost, "A/function.json": `{"bindings":[{"type":"timerTrigger","direction":"in","schedule":"x"}]}`}, `"name" is required`},
		{"bad direction", map[string]string{"host.json": okHost, "A/function.json": `{"bindings":[{"name":"t","type":"timerTrigger","direction":"sideways","schedule":"x"}]}`}, "direction"},
		{"timer without schedule", map[string]string{"host.json": okHost, "A/function.json": `{"bindings":[{"name":"t","type":"timerTrigger","direction":"in"}]}`}, "schedule"},
		{"bad authLevel", map[string]string{"host.json": okHost, "A/function.json": `{"bindings":[{"name":"r","type":"httpTrigger","direction":"in","authLevel":"secret"}]}`}, "authLevel"},
		{"bad method", map[string]string{"host.json": okHost, "A/function.json": `{"bindings":[{"name":"r","type":"httpTrigger","direction":"in","methods":["fetch"]}]}`}, "method"},
		{"bad route", map[string]string{"host.json": okHost, "A/function.json": `{"bindings":[{"name":"r","type":"httpTrigger","direction":"in","route":"a/{*rest}/b"}]}`}, "catch-all"},
		{"retry without count", map[string]string{"host.json": okHost, "A/function.json": `{"bindings":[{"name":"t","type":"timerTrigger","direction":"in","schedule":"x"}],"retry":{"strategy":"fixedDelay","delayInterval":"00:00:05"}}`}, "maxRetryCount"},
		{"retry strategy", map[string]string{"host.json": okHost, "A/function.json": `{"bindings":[{"name":"t","type":"timerTrigger","direction":"in","schedule":"x"}],"retry":{"strategy":"often","maxRetryCount":1}}`}, "strategy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeApp(t, tt.files))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Load: got error %v; want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestLoadOptions(t *testing.T) {
	root := writeApp(t, map[string]string{
		"host.json": `{"Version":"2.0","functionTimeout":"-1","functions":["b"],
			"customHandler":{"description":{"defaultExecutablePath":"fakehandler"},"enableProxyingHttpRequest":true},
			"extensions":{"http":{"routePrefix":""}}}`,
		"A/function.json": okTimer,
		"B/function.json": `{"disabled":true,"bindings":[{"name":"t","type":"timerTrigger","direction":"in","schedule":"0 * * * * *"}]}`,
	})
	app, err := Load(root)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(app.Functions) != 1 || app.Functions[0].Name != "B" || !app.Functions[0].Disabled {
		t.Errorf("functions = %+v; want only B (host.json allow-list), disabled", app.Functions)
	}
	if h := app.Host; h.RoutePrefix != "" || h.FunctionTimeout != 0 || !h.EnableProxyingHTTPRequest {
		t.Errorf("host = %+v; want empty route prefix, no timeout, proxying on", h)
	}
}

func TestParseTimeSpan(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"00:05:00", 5 * time.Minute, false},
		{"01:30", 90 * time.Minute, false},
		{"1.02:00:00", 26 * time.Hour, false},
		{"00:00:01.5", 1500 * time.Millisecond, false},
		{"-1", 0, false},
		{"5", 0, true},
		{"00:60:00", 0, true},
		{"24:00:00", 0, true},
		{"a:b:c", 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		got, err := parseTimeSpan(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseTimeSpan(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	for d, want := range map[time.Duration]string{
		5 * time.Minute:        "00:05:00",
		300 * time.Millisecond: "00:00:00.3000000",
		26 * time.Hour:         "1.02:00:00",
	} {
		if got := timeSpan(d); got != want {
			t.Errorf("timeSpan(%v) = %q; want %q", d, got, want)
		}
	}
}

func TestResolveSettings(t *testing.T) {
	env := map[string]string{"A": "0 */5 * * * *", "B": "b", "EMPTY": ""}
	tests := []struct {
		in, want, wantErr string
	}{
		{"%A%", "0 */5 * * * *", ""},
		{"x-%B%-%B%-y", "x-b-b-y", ""},
		{"no settings", "no settings", ""},
		{"50% off", "50% off", ""},
		{"%MISSING%", "", "'%MISSING%' does not resolve to a value"},
		{"%EMPTY%", "", "'%EMPTY%' does not resolve"},
	}
	for _, tt := range tests {
		got, err := resolveSettings(tt.in, env)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("resolveSettings(%q): got %q, %v; want error %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("resolveSettings(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestRouteTemplates(t *testing.T) {
	tests := []struct {
		route  string
		path   string // after the prefix, slash-separated
		want   map[string]string
		wantOK bool
	}{
		{"callback/{connection}", "callback/github", map[string]string{"connection": "github"}, true},
		{"callback/{connection}", "CALLBACK/github", map[string]string{"connection": "github"}, true},
		{"callback/{connection}", "callback", nil, false},
		{"callback/{connection}", "callback/a/b", nil, false},
		{"callback/{connection}", "callback/", nil, false},
		{"items/{id:int}", "items/42", map[string]string{"id": "42"}, true},
		{"items/{id:int}", "items/x", nil, false},
		{"items/{id:guid}", "items/0f8fad5b-d9cb-469f-a165-70867728950e", map[string]string{"id": "0f8fad5b-d9cb-469f-a165-70867728950e"}, true},
		{"items/{id:alpha}", "items/ab1", nil, false},
		{"opt/{id?}", "opt", map[string]string{}, true},
		{"opt/{id?}", "opt/1", map[string]string{"id": "1"}, true},
		{"authorize/{connection?}/{label?}", "authorize", map[string]string{}, true},
		{"authorize/{connection?}/{label?}", "authorize/strava", map[string]string{"connection": "strava"}, true},
		{"authorize/{connection?}/{label?}", "authorize/strava/alice", map[string]string{"connection": "strava", "label": "alice"}, true},
		{"authorize/{connection?}/{label?}", "authorize/strava/alice/x", nil, false},
		{"authorize/{connection?}/{label?}", "authorize//alice", nil, false},
		{"authorize/{connection?}/{label?}", "Authorize/strava/alice", map[string]string{"connection": "strava", "label": "alice"}, true},
		{"x/{a}/{b?}", "x", nil, false},
		{"files/{*rest}", "files", map[string]string{"rest": ""}, true},
		{"files/{*rest}", "files/a/b/c", map[string]string{"rest": "a/b/c"}, true},
		{"Hello", "hello", map[string]string{}, true},
	}
	for _, tt := range tests {
		rt, err := parseRoute(tt.route)
		if err != nil {
			t.Fatalf("parseRoute(%q): %v", tt.route, err)
		}
		got, ok := rt.match(strings.Split(tt.path, "/"))
		if ok != tt.wantOK {
			t.Errorf("%q matching %q: ok = %v; want %v", tt.route, tt.path, ok, tt.wantOK)
			continue
		}
		if ok && !maps.Equal(got, tt.want) {
			t.Errorf("%q matching %q: params %v; want %v", tt.route, tt.path, got, tt.want)
		}
	}
	for _, bad := range []string{"a//b", "file.{ext}", "{*rest}/x", "{a?}/b", "{a?}/{b}", "{a?}/{b?}/c", "{}", "{:int}", "x/{a=1}"} {
		if _, err := parseRoute(bad); err == nil {
			t.Errorf("parseRoute(%q): got nil error; want one", bad)
		}
	}
}
