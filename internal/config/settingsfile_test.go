package config

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// secretMarker stands for a secret value; no error may contain it.
const secretMarker = "s3cr3t-d0-not-print"

func TestParseSettingsFile(t *testing.T) {
	tests := []struct {
		name string
		data string
		want map[string]string
	}{
		{"plain", `{"IsEncrypted":false,"Values":{"A":"1","B":"two words","C":""}}`, map[string]string{"A": "1", "B": "two words", "C": ""}},
		{"no IsEncrypted", `{"Values":{"A":"x"}}`, map[string]string{"A": "x"}},
		{"IsEncrypted null", `{"IsEncrypted":null,"Values":{"A":"x"}}`, map[string]string{"A": "x"}},
		{"case-insensitive sections", `{"isEncrypted":false,"values":{"A":"x"}}`, map[string]string{"A": "x"}},
		{"numbers and booleans", `{"Values":{"PORT":7071,"PKCE":true,"F":1.5e3}}`, map[string]string{"PORT": "7071", "PKCE": "true", "F": "1.5e3"}},
		{"null is unset", `{"Values":{"A":null,"B":"b"}}`, map[string]string{"B": "b"}},
		{"escapes", `{"Values":{"A":"x\u0041\"y"}}`, map[string]string{"A": `xA"y`}},
		{"other sections ignored", `{"Values":{"A":"x"},"Host":{"LocalHttpPort":7072},"ConnectionStrings":{"db":"y"}}`, map[string]string{"A": "x"}},
		{"byte order mark", "\xef\xbb\xbf" + `{"Values":{"A":"x"}}`, map[string]string{"A": "x"}},
		{"names kept as spelled", `{"Values":{"AzureWebJobsStorage":"UseDevelopmentStorage=true"}}`, map[string]string{"AzureWebJobsStorage": "UseDevelopmentStorage=true"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSettingsFile([]byte(tt.data))
			if err != nil {
				t.Fatalf("parseSettingsFile: %v", err)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("got %q; want %q", got, tt.want)
			}
		})
	}
}

func TestParseSettingsFileRefuses(t *testing.T) {
	s := secretMarker
	tests := []struct {
		name string
		data string
		want string
	}{
		{"encrypted", `{"IsEncrypted":true,"Values":{"OAUTH_X_CLIENT_SECRET":"` + s + `"}}`, "func settings decrypt"},
		{"IsEncrypted not a bool", `{"IsEncrypted":"` + s + `","Values":{}}`, `"IsEncrypted" must be true or false`},
		{"no Values", `{"IsEncrypted":false}`, `no "Values" object`},
		{"Values not an object", `{"Values":"` + s + `"}`, `"Values" must be a JSON object, found a JSON string`},
		{"Values a number", `{"Values":12345}`, `"Values" must be a JSON object, found a JSON number`},
		{"top level array", `["` + s + `"]`, "the top level must be a JSON object, found a JSON array"},
		{"object value", `{"Values":{"B":{"x":"` + s + `"},"A":["` + s + `"]}}`, `Values: ["A" "B"] must be strings`},
		{"empty name", `{"Values":{"":"` + s + `"}}`, "empty name"},
		{"syntax error after a secret", "{\"Values\":{\n\"OAUTH_X_CLIENT_SECRET\":\"" + s + "\" x}}", "not valid JSON at line 2, column"},
		{"bad escape inside a secret", `{"Values":{"OAUTH_X_CLIENT_SECRET":"` + s + `\q"}}`, "not valid JSON at line 1, column"},
		{"truncated", `{"Values":{"OAUTH_X_CLIENT_SECRET":"` + s, "not valid JSON"},
		{"empty", ``, "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSettingsFile([]byte(tt.data))
			if err == nil {
				t.Fatalf("parseSettingsFile = %q; want an error containing %q", got, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q; want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "print") {
				t.Errorf("error %q quotes the file's values", err)
			}
		})
	}
}

func TestReadSettingsFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.json", `{"IsEncrypted":false,"Values":{"A":"x"}}`)
	f, err := ReadSettingsFile(good)
	if err != nil {
		t.Fatal(err)
	}
	if f.Path != good || !maps.Equal(f.Values, map[string]string{"A": "x"}) {
		t.Errorf("got %+v; want Path %s and Values A=x", f, good)
	}

	tests := []struct {
		name string
		path string
		want []string
	}{
		{"missing", filepath.Join(dir, "nope.json"), []string{"nope.json", "no such file"}},
		{"encrypted", write("enc.json", `{"IsEncrypted":true,"Values":{"A":"`+secretMarker+`"}}`), []string{"enc.json", "IsEncrypted"}},
		{"too large", write("big.json", `{"Values":{"A":"`+secretMarker+strings.Repeat("x", maxSettingsFileSize)+`"}}`), []string{"big.json", "larger than"}},
		{"a folder", dir, []string{dir}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadSettingsFile(tt.path)
			if err == nil {
				t.Fatalf("ReadSettingsFile(%s): no error; want one containing %q", tt.path, tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q; want it to contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), secretMarker) {
				t.Errorf("error %q quotes a value", err)
			}
		})
	}
}

func TestSettingsFileGetenv(t *testing.T) {
	f := &SettingsFile{Values: map[string]string{"BOTH": "file", "FILE_ONLY": "file", "EMPTY_IN_ENV": "file", "SAME": "v", "EMPTY_IN_FILE": ""}}
	environ := env{"BOTH": "env", "ENV_ONLY": "env", "EMPTY_IN_ENV": "", "SAME": "v", "EMPTY_IN_FILE": "env"}.getenv
	getenv := f.Getenv(environ)
	for name, want := range map[string]string{
		"BOTH":          "env",
		"FILE_ONLY":     "file",
		"ENV_ONLY":      "env",
		"EMPTY_IN_ENV":  "file",
		"EMPTY_IN_FILE": "env",
		"SAME":          "v",
		"NEITHER":       "",
	} {
		if got := getenv(name); got != want {
			t.Errorf("getenv(%s) = %q; want %q", name, got, want)
		}
	}
	if got, want := f.Overridden(environ), []string{"BOTH", "EMPTY_IN_FILE"}; !slices.Equal(got, want) {
		t.Errorf("Overridden = %q; want %q", got, want)
	}
}

// TestSettingsFileReadsTheSample reads the committed sample as a user's file and loads it.
func TestSettingsFileReadsTheSample(t *testing.T) {
	f, err := ReadSettingsFile("../../local.settings.json.sample")
	if err != nil {
		t.Fatal(err)
	}
	if want := readSample(t); !maps.Equal(f.Values, want) {
		t.Errorf("Values %q; want the sample's %q", f.Values, want)
	}
	filled := maps.Clone(f.Values)
	filled["OAUTH_STRAVA_CLIENT_ID"] = "12345"
	filled["OAUTH_STRAVA_CLIENT_SECRET"] = secretMarker
	sf := &SettingsFile{Values: filled}
	cfg, _, err := Load(sf.Getenv(env{"LOG_LEVEL": "debug"}.getenv))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := cfg.LogLevel.String(); got != "debug" {
		t.Errorf("LogLevel %s; want debug, from the environment over the file's info", got)
	}
	if len(cfg.Connections) != 1 || cfg.Connections[0].Name != "strava" {
		t.Errorf("Connections %+v; want strava from the file", cfg.Connections)
	}
}
