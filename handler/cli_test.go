package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/config"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		args []string
		want command
	}{
		{nil, command{}},
		{[]string{"--settings", "l.json"}, command{Settings: "l.json"}},
		{[]string{"refresh"}, command{Name: "refresh"}},
		{[]string{"refresh", "--settings", "l.json"}, command{Name: "refresh", Settings: "l.json"}},
		{[]string{"--settings=l.json", "refresh"}, command{Name: "refresh", Settings: "l.json"}},
		{[]string{"-settings", "l.json", "refresh"}, command{Name: "refresh", Settings: "l.json"}},
		{[]string{"status"}, command{Name: "status"}},
		{[]string{"status", "--json"}, command{Name: "status", JSON: true}},
		{[]string{"-json", "status"}, command{Name: "status", JSON: true}},
		{[]string{"status", "--state", "needs_consent", "--json"}, command{Name: "status", JSON: true, State: "needs_consent"}},
		{[]string{"status", "--state=retrying"}, command{Name: "status", State: "retrying"}},
		{[]string{"import", "strava"}, command{Name: "import", Connection: "strava"}},
		{[]string{"import", "strava", "--replace"}, command{Name: "import", Connection: "strava", Replace: true}},
		{[]string{"import", "--replace", "--settings", "x.json", "strava"}, command{Name: "import", Connection: "strava", Replace: true, Settings: "x.json"}},
		{[]string{"import", "--", "-odd-name"}, command{Name: "import", Connection: "-odd-name"}},
		{[]string{"invite", "strava", "p1"}, command{Name: "invite", Connection: "strava", Label: "p1"}},
		{[]string{"invite", "strava", "p1", "--for", "7d"}, command{Name: "invite", Connection: "strava", Label: "p1", For: "7d"}},
		{[]string{"invite", "--many=300", "strava", "--prefix", "p", "--for=14d"}, command{Name: "invite", Connection: "strava", Many: 300, Prefix: "p", For: "14d"}},
		{[]string{"remove", "strava", "p1"}, command{Name: "remove", Connection: "strava", Label: "p1"}},
		{[]string{"remove", "strava", "--keep-on-failure"}, command{Name: "remove", Connection: "strava", Keep: true}},
		{[]string{"version"}, command{Name: "version"}},
		{[]string{"help"}, command{Name: "help"}},
		{[]string{"help", "import"}, command{Name: "help"}},
		{[]string{"--help"}, command{Name: "help"}},
		{[]string{"status", "-h"}, command{Name: "help"}},
		{[]string{"bogus", "--help"}, command{Name: "help"}},
		{[]string{"rekey"}, command{Name: "rekey"}},
		{[]string{"reader-url", "strava"}, command{Name: "reader-url", Connection: "strava", Valid: 90 * day}},
		{[]string{"reader-url", "strava", "--for", "30d"}, command{Name: "reader-url", Connection: "strava", For: "30d", Valid: 30 * day}},
		{[]string{"--for=36h", "reader-url", "strava"}, command{Name: "reader-url", Connection: "strava", For: "36h", Valid: 36 * time.Hour}},
		{[]string{"reader-url", "strava", "--for", "1d12h30m"}, command{Name: "reader-url", Connection: "strava", For: "1d12h30m", Valid: 36*time.Hour + 30*time.Minute}},
		{[]string{"reader-url", "strava", "--for", "3650d"}, command{Name: "reader-url", Connection: "strava", For: "3650d", Valid: 3650 * day}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			got, err := parseArgs(tt.args)
			if err != nil {
				t.Fatalf("parseArgs(%q): %v", tt.args, err)
			}
			if got != tt.want {
				t.Errorf("parseArgs(%q) = %+v; want %+v", tt.args, got, tt.want)
			}
		})
	}
}

func TestParseArgsMisuse(t *testing.T) {
	const secret = "1//0gSecretRefreshTokenValue"
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"bogus"}, `unknown subcommand "bogus"`},
		{[]string{"--bogus"}, `unknown flag "--bogus"`},
		{[]string{"-x", "refresh"}, `unknown flag "--x"`},
		{[]string{"refresh", "now"}, `refresh takes no arguments; got "now"`},
		{[]string{"extra"}, `unknown subcommand "extra"`},
		{[]string{"status", "--json=true"}, "--json takes no value"},
		{[]string{"refresh", "--json"}, "--json is a flag of status"},
		{[]string{"status", "--state", "bogus"}, "--state \"bogus\": want ok, retrying or needs_consent"},
		{[]string{"status", "--state", "not_connected"}, "want ok, retrying or needs_consent"},
		{[]string{"status", "--state"}, "--state needs a value"},
		{[]string{"refresh", "--state", "ok"}, "--state is a flag of status"},
		{[]string{"status", "--replace"}, "--replace is a flag of import"},
		{[]string{"import"}, "import needs the connection name"},
		{[]string{"import", "strava", secret}, "never from an argument"},
		{[]string{secret}, "characters, not shown"},
		{[]string{"--token=" + secret}, `unknown flag "--token"`},
		{[]string{"--settings"}, "--settings needs a file"},
		{[]string{"--settings="}, "--settings needs a file"},
		{[]string{"--settings", "a", "--settings", "b"}, "--settings given twice"},
		{[]string{"version", "--settings", "a"}, "version reads no settings"},
		{[]string{"rekey", "now"}, `rekey takes no arguments; got "now"`},
		{[]string{"rekey", "--for", "1d"}, "--for is a flag of invite and reader-url"},
		{[]string{"reader-url"}, "reader-url needs the connection name"},
		{[]string{"reader-url", "a", "b"}, `reader-url takes one connection name; got "b" more`},
		{[]string{"reader-url", "a", "--for"}, "--for needs a value"},
		{[]string{"reader-url", "a", "--for", "soon"}, `--for "soon": want days or a duration, such as 90d`},
		{[]string{"reader-url", "a", "--for", "0s"}, "want more than 0"},
		{[]string{"reader-url", "a", "--for", "-5d"}, "want days or a duration"},
		{[]string{"reader-url", "a", "--for", "d"}, "want days or a duration"},
		{[]string{"reader-url", "a", "--for", "1d-1h"}, "want days or a duration"},
		{[]string{"reader-url", "a", "--for", "3651d"}, "want days or a duration"},
		{[]string{"reader-url", "a", "--for", "87601h"}, "at most 3650d"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			got, err := parseArgs(tt.args)
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("parseArgs(%q) = %+v, %v; want a *usageError", tt.args, got, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q; want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "Secret") {
				t.Errorf("error %q shows a secret-looking argument", err)
			}
		})
	}
}

// calls records what dispatch passed to the fake subcommands.
type calls struct {
	name       string
	getenv     func(string) string
	asJSON     bool
	connection string
	replace    bool
	valid      time.Duration
}

func fakeCommands(c *calls, result error) commands {
	return commands{
		Serve: func(_ context.Context, inv invocation) error {
			c.name, c.getenv = "serve", inv.Getenv
			return result
		},
		Refresh: func(_ context.Context, inv invocation) error {
			c.name, c.getenv = "refresh", inv.Getenv
			return result
		},
		Status: func(_ context.Context, inv invocation, asJSON bool, _ string) error {
			c.name, c.getenv, c.asJSON = "status", inv.Getenv, asJSON
			return result
		},
		Import: func(_ context.Context, inv invocation, connection string, replace bool) error {
			c.name, c.getenv, c.connection, c.replace = "import", inv.Getenv, connection, replace
			return result
		},
		Rekey: func(_ context.Context, inv invocation) error {
			c.name, c.getenv = "rekey", inv.Getenv
			return result
		},
		ReaderURL: func(_ context.Context, inv invocation, connection string, valid time.Duration) error {
			c.name, c.getenv, c.connection, c.valid = "reader-url", inv.Getenv, connection, valid
			return result
		},
	}
}

const day = 24 * time.Hour

func TestDispatch(t *testing.T) {
	dir := t.TempDir()
	settings := filepath.Join(dir, "local.settings.json")
	if err := os.WriteFile(settings, []byte(`{"IsEncrypted":false,"Values":{"FROM_FILE":"file","BOTH":"file"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	withIdentity := filepath.Join(dir, "identity.json")
	if err := os.WriteFile(withIdentity, []byte(`{"Values":{"AZURE_CLIENT_ID":"00000000-0000-0000-0000-000000000001","AZURE_TENANT_ID":"","OAUTH_CONNECTIONS":"x"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	encrypted := filepath.Join(dir, "encrypted.json")
	if err := os.WriteFile(encrypted, []byte(`{"IsEncrypted":true,"Values":{"X":"s3cr3t"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	environ := func(k string) string {
		return map[string]string{"BOTH": "env", "FROM_ENV": "env"}[k]
	}
	settingsErr := &config.SettingsError{Problems: []config.Problem{{Setting: "OAUTH_CONNECTIONS", Message: "missing"}}}

	tests := []struct {
		name       string
		args       []string
		result     error // what the subcommand returns
		wantCall   string
		wantStatus int
		wantStdout string // substring; "" means empty
		wantStderr string // substring; "" means empty
	}{
		{"serve", nil, nil, "serve", 0, "", ""},
		{"serve failing on settings keeps status 1", nil, settingsErr, "serve", 1, "", "OAUTH_CONNECTIONS: missing"},
		{"refresh", []string{"refresh"}, nil, "refresh", 0, "", ""},
		{"refresh with a failed connection", []string{"refresh"}, &exitError{Code: exitFailed}, "refresh", 1, "", ""},
		{"refresh on invalid settings", []string{"refresh"}, settingsErr, "refresh", 2, "", "OAUTH_CONNECTIONS: missing"},
		{"status", []string{"status", "--json"}, nil, "status", 0, "", ""},
		{"import refused", []string{"import", "strava"}, errors.New("the provider refused the refresh token"), "import", 1, "", "provider refused"},
		{"rekey with failures", []string{"rekey"}, &exitError{Code: exitFailed, Err: errors.New("2 of 5 rows are not under key k2")}, "rekey", 1, "", "2 of 5 rows"},
		{"rekey on invalid settings", []string{"rekey"}, settingsErr, "rekey", 2, "", "OAUTH_CONNECTIONS: missing"},
		{"reader-url", []string{"reader-url", "strava", "--for", "7d"}, nil, "reader-url", 0, "", ""},
		{"reader-url of an unknown connection", []string{"reader-url", "nope"}, &exitError{Code: exitUsage, Err: errors.New(`unknown connection "nope"`)}, "reader-url", 2, "", "unknown connection"},
		{"help", []string{"help"}, nil, "", 0, "Usage:", ""},
		{"misuse", []string{"frobnicate"}, nil, "", 2, "", "Usage:"},
		{"missing settings file", []string{"refresh", "--settings", filepath.Join(dir, "nope.json")}, nil, "", 2, "", "nope.json"},
		{"encrypted settings file", []string{"status", "--settings", encrypted}, nil, "", 2, "", "IsEncrypted"},
		{"settings file", []string{"--settings", settings, "refresh"}, nil, "refresh", 0, "", "the environment overrides these settings of " + settings + ": BOTH\n"},
		{"identity in the settings file", []string{"--settings", withIdentity, "status"}, nil, "status", 0, "", "the Azure SDK reads AZURE_CLIENT_ID from the process environment only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c calls
			var stdout, stderr bytes.Buffer
			err := dispatch(context.Background(), tt.args, environ, strings.NewReader(""), &stdout, &stderr, fakeCommands(&c, tt.result))
			status := exitStatus(err, &stderr)
			if status != tt.wantStatus {
				t.Errorf("exit status %d; want %d (error %v)", status, tt.wantStatus, err)
			}
			if c.name != tt.wantCall {
				t.Errorf("called %q; want %q", c.name, tt.wantCall)
			}
			for _, s := range []struct {
				name, got, want string
			}{{"stdout", stdout.String(), tt.wantStdout}, {"stderr", stderr.String(), tt.wantStderr}} {
				if s.want == "" && s.got != "" {
					t.Errorf("%s %q; want nothing", s.name, s.got)
				}
				if !strings.Contains(s.got, s.want) {
					t.Errorf("%s %q; want it to contain %q", s.name, s.got, s.want)
				}
			}
			if strings.Contains(stderr.String(), "s3cr3t") {
				t.Errorf("stderr %q quotes a settings value", stderr.String())
			}
		})
	}
}

func TestDispatchSettings(t *testing.T) {
	settings := filepath.Join(t.TempDir(), "local.settings.json")
	if err := os.WriteFile(settings, []byte(`{"Values":{"FROM_FILE":"file","BOTH":"file"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	environ := func(k string) string {
		return map[string]string{"BOTH": "env", "FROM_ENV": "env"}[k]
	}
	var c calls
	var stdout, stderr bytes.Buffer
	err := dispatch(context.Background(), []string{"import", "strava", "--replace", "--settings", settings}, environ, strings.NewReader(""), &stdout, &stderr, fakeCommands(&c, nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.connection != "strava" || !c.replace {
		t.Errorf("import got connection %q, replace %v; want strava, true", c.connection, c.replace)
	}
	for k, want := range map[string]string{"FROM_FILE": "file", "FROM_ENV": "env", "BOTH": "env", "NEITHER": ""} {
		if got := c.getenv(k); got != want {
			t.Errorf("getenv(%s) = %q; want %q", k, got, want)
		}
	}

	c = calls{}
	if err := dispatch(context.Background(), []string{"status"}, environ, strings.NewReader(""), &stdout, &stderr, fakeCommands(&c, nil)); err != nil {
		t.Fatal(err)
	}
	if got := c.getenv("FROM_FILE"); got != "" {
		t.Errorf("without --settings getenv(FROM_FILE) = %q; want the environment only", got)
	}
}

func TestWriteVersion(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Path:      "github.com/freshtoken/freshtoken/handler",
		Main:      debug.Module{Path: "github.com/freshtoken/freshtoken", Version: "v1.2.3"},
	}
	withVCS := *bi
	withVCS.Settings = []debug.BuildSetting{
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "c644b333df8361cb87e334148850a35c196e783c"},
		{Key: "vcs.time", Value: "2026-12-01T22:04:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		ok   bool
		want []string
	}{
		{"stamped", &withVCS, true, []string{"freshtoken v1.2.3\n", "module:   github.com/freshtoken/freshtoken\n", "revision: c644b333df8361cb87e334148850a35c196e783c (with uncommitted changes)\n", "commit:   2026-12-01T22:04:00Z\n", "go:       go1.26.8\n"}},
		{"no VCS", bi, true, []string{"freshtoken v1.2.3\n", "revision: unknown (built without VCS information"}},
		{"devel", &debug.BuildInfo{Main: debug.Module{Path: "m"}}, true, []string{"freshtoken (devel)\n"}},
		{"no build info", nil, false, []string{"no build information"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := writeVersion(&b, tt.bi, tt.ok); err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("got %q; want it to contain %q", b.String(), w)
				}
			}
		})
	}
}

// TestVersionOfThisBinary runs version through dispatch with the test binary's real build info.
func TestVersionOfThisBinary(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := dispatch(context.Background(), []string{"version"}, func(string) string { return "" }, nil, &stdout, &stderr, commands{})
	if status := exitStatus(err, &stderr); status != 0 {
		t.Fatalf("exit status %d; want 0 (%s)", status, stderr.String())
	}
	if !strings.HasPrefix(stdout.String(), "freshtoken ") || !strings.Contains(stdout.String(), "revision: ") {
		t.Errorf("version printed %q; want the version and a revision line", stdout.String())
	}
}

func TestExitStatus(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		want       int
		wantStderr string
	}{
		{"nil", nil, 0, ""},
		{"plain error", errors.New("boom"), 1, "freshtoken: boom\n"},
		{"silent exit error", &exitError{Code: 1}, 1, ""},
		{"exit error", &exitError{Code: 2, Err: errors.New("bad settings")}, 2, "freshtoken: bad settings\n"},
		{"wrapped exit error", errors.Join(&exitError{Code: 3, Err: errors.New("x")}), 3, "freshtoken: x\n"},
		{"usage", usagef("unknown flag"), 2, "freshtoken: unknown flag\n\nUsage:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if got := exitStatus(tt.err, &stderr); got != tt.want {
				t.Errorf("exitStatus = %d; want %d", got, tt.want)
			}
			if !strings.HasPrefix(stderr.String(), tt.wantStderr) || (tt.wantStderr == "" && stderr.Len() > 0) {
				t.Errorf("stderr %q; want it to start with %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}

func TestDispatchReaderURL(t *testing.T) {
	var c calls
	var stdout, stderr bytes.Buffer
	err := dispatch(context.Background(), []string{"reader-url", "strava", "--for", "7d"}, func(string) string { return "" },
		strings.NewReader(""), &stdout, &stderr, fakeCommands(&c, nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.name != "reader-url" || c.connection != "strava" || c.valid != 7*day {
		t.Errorf("called %q for %q valid %v; want reader-url for strava valid 7 days", c.name, c.connection, c.valid)
	}
}
