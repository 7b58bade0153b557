package config

import (
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/freshtoken/freshtoken/internal/provider"
	"github.com/rs/zerolog"
	"golang.org/x/oauth2"
)

// sentinel stands in for every secret value; no message may contain it.
const sentinel = "s3cr3t-SENTINEL-9f8e7d"

// devKey is a syntactically valid base64 account key (not a real one).
const devKey = "c2VudGluZWwta2V5LW5vdC1hLXJlYWwtb25l"

type env map[string]string

func (e env) getenv(k string) string { return e[k] }

// with returns a copy of e with changes applied; a "" value deletes the setting.
func (e env) with(changes env) env {
	c := maps.Clone(e)
	for k, v := range changes {
		if v == "" {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// stravaEnv is a minimal valid environment.
func stravaEnv() env {
	return env{
		"AzureWebJobsStorage":        "UseDevelopmentStorage=true",
		"OAUTH_CONNECTIONS":          "strava",
		"OAUTH_STRAVA_PROVIDER":      "strava",
		"OAUTH_STRAVA_CLIENT_ID":     "12345",
		"OAUTH_STRAVA_CLIENT_SECRET": sentinel,
		"OAUTH_STRAVA_SCOPES":        "read,activity:read_all",
	}
}

// dexcomEnv is a valid environment with one dexcom connection, named cgm.
func dexcomEnv() env {
	return env{
		"AzureWebJobsStorage":     "UseDevelopmentStorage=true",
		"OAUTH_CONNECTIONS":       "cgm",
		"OAUTH_CGM_PROVIDER":      "dexcom",
		"OAUTH_CGM_CLIENT_ID":     "dexcom-client",
		"OAUTH_CGM_CLIENT_SECRET": sentinel,
		"OAUTH_CGM_SCOPES":        "offline_access",
	}
}

// customEnv is a valid environment with one custom connection.
func customEnv() env {
	return env{
		"AzureWebJobsStorage":           "UseDevelopmentStorage=true",
		"OAUTH_CONNECTIONS":             "my-idp",
		"OAUTH_MY_IDP_PROVIDER":         "custom",
		"OAUTH_MY_IDP_CLIENT_ID":        "client-1",
		"OAUTH_MY_IDP_CLIENT_SECRET":    sentinel,
		"OAUTH_MY_IDP_SCOPES":           "openid offline_access",
		"OAUTH_MY_IDP_AUTH_URL":         "https://idp.example.com/oauth2/auth",
		"OAUTH_MY_IDP_TOKEN_URL":        "https://idp.example.com/oauth2/token",
		"OAUTH_MY_IDP_AUTH_STYLE":       "header",
		"OAUTH_MY_IDP_PKCE":             "true",
		"OAUTH_MY_IDP_SCOPE_SEPARATOR":  "comma",
		"OAUTH_MY_IDP_REDIRECT_URL":     "https://app.example.com/api/callback/my-idp",
		"OAUTH_UNRELATED_CLIENT_SECRET": "ignored", // not a listed connection
	}
}

// load runs Load and checks that no secret leaks into its error or warnings.
func load(t *testing.T, e env) (Config, []string, error) {
	t.Helper()
	cfg, warnings, err := Load(e.getenv)
	if err != nil && strings.Contains(err.Error(), sentinel) {
		t.Errorf("error shows a secret value: %d bytes of message", len(err.Error()))
	}
	for _, w := range warnings {
		if strings.Contains(w, sentinel) {
			t.Errorf("a warning shows a secret value")
		}
	}
	return cfg, warnings, err
}

func mustLoad(t *testing.T, e env) (Config, []string) {
	t.Helper()
	cfg, warnings, err := load(t, e)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return cfg, warnings
}

func TestLoadEveryPreset(t *testing.T) {
	for _, name := range provider.Names() {
		if name == provider.Custom {
			continue
		}
		t.Run(name, func(t *testing.T) {
			prefix := ConnectionSetting(name, "")
			e := env{
				"AzureWebJobsStorage":    "UseDevelopmentStorage=true",
				"OAUTH_CONNECTIONS":      name,
				prefix + "PROVIDER":      name,
				prefix + "CLIENT_ID":     "id-" + name,
				prefix + "CLIENT_SECRET": sentinel,
				prefix + "SCOPES":        "a b",
			}
			cfg, warnings := mustLoad(t, e)
			want, _ := provider.Lookup(name)
			if len(cfg.Connections) != 1 {
				t.Fatalf("%d connections; want 1", len(cfg.Connections))
			}
			c := cfg.Connections[0]
			if !reflect.DeepEqual(c.Preset, want) {
				t.Errorf("Preset = %+v; want the catalog's %+v", c.Preset, want)
			}
			if c.Name != name || c.ClientID != "id-"+name || c.ClientSecret != sentinel {
				t.Errorf("Name, ClientID = %q, %q; want %q, %q (and the secret)", c.Name, c.ClientID, name, "id-"+name)
			}
			switch {
			case want.Gone != "":
				if len(warnings) != 1 || !strings.Contains(warnings[0], prefix+"PROVIDER") || !strings.Contains(warnings[0], want.Gone) {
					t.Errorf("warnings = %q; want one on %sPROVIDER saying %q", warnings, prefix, want.Gone)
				}
			case want.Loopback != provider.LoopbackAny:
				// The default redirect URL is http://localhost:7071/...
				if len(warnings) != 1 || !strings.HasPrefix(warnings[0], prefix+"REDIRECT_URL: "+name+" refuses") {
					t.Errorf("warnings = %q; want one on %sREDIRECT_URL saying %s refuses localhost", warnings, prefix, name)
				}
			case len(warnings) != 0:
				t.Errorf("warnings = %q; want none", warnings)
			}
		})
	}
}

func TestLoadCustom(t *testing.T) {
	cfg, warnings := mustLoad(t, customEnv())
	if len(warnings) != 0 {
		t.Errorf("warnings = %q; want none", warnings)
	}
	want := ConnectionSettings{
		Name: "my-idp",
		Preset: provider.Preset{
			Name: provider.Custom, Title: "Custom provider",
			AuthURL: "https://idp.example.com/oauth2/auth", TokenURL: "https://idp.example.com/oauth2/token",
			AuthStyle: oauth2.AuthStyleInHeader, ScopeSeparator: ",", PKCE: true, Dialect: provider.DialectRFC6749,
		},
		ClientID: "client-1", ClientSecret: sentinel,
		Scopes:      []string{"openid", "offline_access"},
		RedirectURL: "https://app.example.com/api/callback/my-idp",
	}
	if len(cfg.Connections) != 1 || !reflect.DeepEqual(cfg.Connections[0], want) {
		t.Errorf("Connections = %+v; want [%+v]", cfg.Connections, want)
	}

	// The optional settings of a custom connection and their defaults.
	cfg, _ = mustLoad(t, customEnv().with(env{"OAUTH_MY_IDP_PKCE": "", "OAUTH_MY_IDP_SCOPE_SEPARATOR": "", "OAUTH_MY_IDP_AUTH_STYLE": "Params"}))
	p := cfg.Connections[0].Preset
	if p.PKCE || p.ScopeSeparator != " " || p.AuthStyle != oauth2.AuthStyleInParams {
		t.Errorf("PKCE, ScopeSeparator, AuthStyle = %v, %q, %v; want false, \" \", AuthStyleInParams", p.PKCE, p.ScopeSeparator, p.AuthStyle)
	}
}

func TestLoadRegion(t *testing.T) {
	tests := []struct {
		name                            string
		changes                         env
		wantRegion, wantAuth, wantToken string
	}{
		{"default", nil, "us", "https://api.dexcom.com/v2/oauth2/login", "https://api.dexcom.com/v2/oauth2/token"},
		{"eu", env{"OAUTH_CGM_REGION": "eu"}, "eu", "https://api.dexcom.eu/v2/oauth2/login", "https://api.dexcom.eu/v2/oauth2/token"},
		{"jp, any case", env{"OAUTH_CGM_REGION": " JP "}, "jp", "https://api.dexcom.jp/v2/oauth2/login", "https://api.dexcom.jp/v2/oauth2/token"},
		{"sandbox", env{"OAUTH_CGM_REGION": "sandbox"}, "sandbox", "https://sandbox-api.dexcom.com/v2/oauth2/login", "https://sandbox-api.dexcom.com/v2/oauth2/token"},
		{"token URL overrides the region", env{"OAUTH_CGM_REGION": "eu", "OAUTH_CGM_TOKEN_URL": "http://127.0.0.1:9000/token"},
			"eu", "https://api.dexcom.eu/v2/oauth2/login", "http://127.0.0.1:9000/token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, warnings := mustLoad(t, dexcomEnv().with(tt.changes))
			if len(warnings) != 0 {
				t.Errorf("warnings = %q; want none", warnings)
			}
			c := cfg.Connections[0]
			if c.Region != tt.wantRegion || c.Preset.AuthURL != tt.wantAuth || c.Preset.TokenURL != tt.wantToken {
				t.Errorf("Region, AuthURL, TokenURL = %q, %q, %q; want %q, %q, %q",
					c.Region, c.Preset.AuthURL, c.Preset.TokenURL, tt.wantRegion, tt.wantAuth, tt.wantToken)
			}
			if c.Preset.Name != "dexcom" || len(c.Preset.Regions) != 4 {
				t.Errorf("Preset %q with %d regions; want dexcom with 4", c.Preset.Name, len(c.Preset.Regions))
			}
		})
	}
	// Providers without regions get none.
	cfg, _ := mustLoad(t, stravaEnv())
	if r := cfg.Connections[0].Region; r != "" {
		t.Errorf("strava Region = %q; want empty", r)
	}
}

func TestLoadDefaults(t *testing.T) {
	cfg, warnings := mustLoad(t, stravaEnv())
	if len(warnings) != 0 {
		t.Errorf("warnings = %q; want none", warnings)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"CustomHandlerPort", cfg.CustomHandlerPort, ""},
		{"Port", cfg.Port, "7071"},
		{"BindAddress", cfg.BindAddress, "127.0.0.1"},
		{"PublicBaseURL", cfg.PublicBaseURL, "http://localhost:7071"},
		{"Store", cfg.Store, Store{ConnectionString: "UseDevelopmentStorage=true", Table: "OAuthTokens"}},
		{"Schedule", cfg.Schedule.String(), "0 */15 * * * *"},
		{"Margin", cfg.Margin, time.Duration(0)},
		{"TokenTimeout", cfg.TokenTimeout, 30 * time.Second},
		{"Lease", cfg.Lease, 3 * time.Minute},
		{"LogLevel", cfg.LogLevel, zerolog.InfoLevel},
		{"LogFormat", cfg.LogFormat, "json"},
		{"RedirectURL", cfg.Connections[0].RedirectURL, "http://localhost:7071/api/callback/strava"},
		{"Scopes", cfg.Connections[0].Scopes, []string{"read", "activity:read_all"}},
		{"AuthorizeURL", cfg.AuthorizeURL("strava"), "http://localhost:7071/api/authorize/strava"},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v; want %#v", c.name, c.got, c.want)
		}
	}
}

func TestLoadValues(t *testing.T) {
	tests := []struct {
		name    string
		changes env
		check   func(Config) (got, want any)
	}{
		{"Azure host name", env{"WEBSITE_HOSTNAME": "myapp.azurewebsites.net"},
			func(c Config) (any, any) {
				return []string{c.PublicBaseURL, c.Connections[0].RedirectURL},
					[]string{"https://myapp.azurewebsites.net", "https://myapp.azurewebsites.net/api/callback/strava"}
			}},
		{"func start host name", env{"WEBSITE_HOSTNAME": "localhost:7072", "FUNCTIONS_CUSTOMHANDLER_PORT": "40123"},
			func(c Config) (any, any) {
				return []string{c.PublicBaseURL, c.Connections[0].RedirectURL, c.CustomHandlerPort},
					[]string{"http://localhost:7072", "http://localhost:7072/api/callback/strava", "40123"}
			}},
		{"port", env{"PORT": "8080", "BIND_ADDRESS": "0.0.0.0"},
			func(c Config) (any, any) {
				return []string{c.Port, c.BindAddress, c.Connections[0].RedirectURL},
					[]string{"8080", "0.0.0.0", "http://localhost:8080/api/callback/strava"}
			}},
		{"redirect URL", env{"OAUTH_STRAVA_REDIRECT_URL": "https://tokens.example.com/api/callback/strava"},
			func(c Config) (any, any) {
				return c.Connections[0].RedirectURL, "https://tokens.example.com/api/callback/strava"
			}},
		{"scopes split on spaces and commas, deduplicated", env{"OAUTH_STRAVA_SCOPES": " read, activity:read_all  read,,profile:read_all "},
			func(c Config) (any, any) {
				return c.Connections[0].Scopes, []string{"read", "activity:read_all", "profile:read_all"}
			}},
		{"google scopes written short", env{"OAUTH_CONNECTIONS": "health", "OAUTH_HEALTH_PROVIDER": "google", "OAUTH_HEALTH_CLIENT_ID": "g",
			"OAUTH_HEALTH_CLIENT_SECRET": sentinel, "OAUTH_HEALTH_SCOPES": "openid email googlehealth.sleep.readonly https://www.googleapis.com/auth/googlehealth.sleep.readonly https://mail.google.com/"},
			func(c Config) (any, any) {
				return c.Connections[0].Scopes, []string{"openid", "email", "https://www.googleapis.com/auth/googlehealth.sleep.readonly", "https://mail.google.com/"}
			}},
		{"other providers keep dotted scopes", env{"OAUTH_STRAVA_SCOPES": "read,a.b"},
			func(c Config) (any, any) { return c.Connections[0].Scopes, []string{"read", "a.b"} }},
		{"preset overrides", env{
			"OAUTH_STRAVA_AUTH_URL": "https://proxy.example.com/authorize", "OAUTH_STRAVA_TOKEN_URL": "http://127.0.0.1:9000/token",
			"OAUTH_STRAVA_AUTH_STYLE": "header", "OAUTH_STRAVA_PKCE": "1", "OAUTH_STRAVA_SCOPE_SEPARATOR": "space"},
			func(c Config) (any, any) {
				p := c.Connections[0].Preset
				return []any{p.Name, p.Dialect, p.AuthURL, p.TokenURL, p.AuthStyle, p.PKCE, p.ScopeSeparator},
					[]any{"strava", provider.DialectStrava, "https://proxy.example.com/authorize", "http://127.0.0.1:9000/token", oauth2.AuthStyleInHeader, true, " "}
			}},
		{"connection list", env{"OAUTH_CONNECTIONS": " strava , my-idp ,", "OAUTH_MY_IDP_PROVIDER": "CUSTOM",
			"OAUTH_MY_IDP_CLIENT_ID": "c", "OAUTH_MY_IDP_CLIENT_SECRET": sentinel, "OAUTH_MY_IDP_SCOPES": "s",
			"OAUTH_MY_IDP_AUTH_URL": "https://idp.example.com/a", "OAUTH_MY_IDP_TOKEN_URL": "https://idp.example.com/t",
			"OAUTH_MY_IDP_AUTH_STYLE": "params"},
			func(c Config) (any, any) {
				var names []string
				for _, conn := range c.Connections {
					names = append(names, conn.Name+"="+conn.Preset.Name)
				}
				return names, []string{"strava=strava", "my-idp=custom"}
			}},
		{"endpoint wins over AzureWebJobsStorage", env{"TOKEN_STORE_ENDPOINT": "https://acct.table.core.windows.net",
			"AZURE_CLIENT_ID": "0f8fad5b-d9cb-469f-a165-70867728950e", "TOKEN_TABLE": "Tokens2"},
			func(c Config) (any, any) {
				return c.Store, Store{Endpoint: "https://acct.table.core.windows.net",
					ManagedIdentityClientID: "0f8fad5b-d9cb-469f-a165-70867728950e", Table: "Tokens2"}
			}},
		{"loopback http endpoint", env{"TOKEN_STORE_ENDPOINT": "http://127.0.0.1:10002/devstoreaccount1"},
			func(c Config) (any, any) { return c.Store.Endpoint, "http://127.0.0.1:10002/devstoreaccount1" }},
		{"connection wins over AzureWebJobsStorage", env{"TOKEN_STORE_CONNECTION": "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=" + devKey + ";EndpointSuffix=core.windows.net"},
			func(c Config) (any, any) {
				return c.Store, Store{ConnectionString: "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=" + devKey + ";EndpointSuffix=core.windows.net", Table: "OAuthTokens"}
			}},
		{"SAS connection string", env{"AzureWebJobsStorage": "TableEndpoint=https://acct.table.core.windows.net/;SharedAccessSignature=sv=2022&sig=abc"},
			func(c Config) (any, any) {
				return c.Store.ConnectionString, "TableEndpoint=https://acct.table.core.windows.net/;SharedAccessSignature=sv=2022&sig=abc"
			}},
		{"AZURE_CLIENT_ID ignored without an endpoint", env{"AZURE_CLIENT_ID": "whatever"},
			func(c Config) (any, any) { return c.Store.ManagedIdentityClientID, "" }},
		{"schedule and margin", env{"REFRESH_SCHEDULE": " */5  * * * * ", "REFRESH_MARGIN": "1h30m"},
			func(c Config) (any, any) {
				return []any{c.Schedule.String(), c.Margin}, []any{"*/5 * * * *", 90 * time.Minute}
			}},
		{"logging", env{"LOG_LEVEL": "DEBUG", "LOG_FORMAT": "Console"},
			func(c Config) (any, any) { return []any{c.LogLevel, c.LogFormat}, []any{zerolog.DebugLevel, "console"} }},
		{"log level disabled", env{"LOG_LEVEL": "disabled"},
			func(c Config) (any, any) { return c.LogLevel, zerolog.Disabled }},
		{"values trimmed", env{"OAUTH_STRAVA_CLIENT_ID": "  12345\n", "PORT": " 9000 "},
			func(c Config) (any, any) {
				return []string{c.Connections[0].ClientID, c.Port}, []string{"12345", "9000"}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _ := mustLoad(t, stravaEnv().with(tt.changes))
			if got, want := tt.check(cfg); !reflect.DeepEqual(got, want) {
				t.Errorf("got %#v; want %#v", got, want)
			}
		})
	}
}

func TestLoadReportsEachFault(t *testing.T) {
	tests := []struct {
		name    string
		base    func() env
		changes env
		setting string
		says    string
	}{
		{"no connections", stravaEnv, env{"OAUTH_CONNECTIONS": ""}, "OAUTH_CONNECTIONS", "missing"},
		{"only commas", stravaEnv, env{"OAUTH_CONNECTIONS": " , ,"}, "OAUTH_CONNECTIONS", "lists no connection names"},
		{"upper-case name", stravaEnv, env{"OAUTH_CONNECTIONS": "Strava"}, "OAUTH_CONNECTIONS", `write "strava"`},
		{"underscore in name", stravaEnv, env{"OAUTH_CONNECTIONS": "my_app"}, "OAUTH_CONNECTIONS", `"my_app" is not a connection name`},
		{"duplicate name", stravaEnv, env{"OAUTH_CONNECTIONS": "strava, strava"}, "OAUTH_CONNECTIONS", `"strava" is listed twice`},
		{"provider missing", stravaEnv, env{"OAUTH_STRAVA_PROVIDER": ""}, "OAUTH_STRAVA_PROVIDER", "missing: one of"},
		{"provider unknown", stravaEnv, env{"OAUTH_STRAVA_PROVIDER": "stravaa"}, "OAUTH_STRAVA_PROVIDER", `"stravaa" is not a known provider: use one of ` + strings.Join(provider.Names(), ", ")},
		{"client id missing", stravaEnv, env{"OAUTH_STRAVA_CLIENT_ID": ""}, "OAUTH_STRAVA_CLIENT_ID", "missing"},
		{"client id placeholder", stravaEnv, env{"OAUTH_STRAVA_CLIENT_ID": "<client id>"}, "OAUTH_STRAVA_CLIENT_ID", "placeholder"},
		{"client secret missing", stravaEnv, env{"OAUTH_STRAVA_CLIENT_SECRET": ""}, "OAUTH_STRAVA_CLIENT_SECRET", "missing"},
		{"client secret placeholder", stravaEnv, env{"OAUTH_STRAVA_CLIENT_SECRET": "<" + sentinel + ">"}, "OAUTH_STRAVA_CLIENT_SECRET", "placeholder"},
		{"redirect not http", stravaEnv, env{"OAUTH_STRAVA_REDIRECT_URL": "ftp://x.example.com/api/callback/strava"}, "OAUTH_STRAVA_REDIRECT_URL", "is not an http(s) URL"},
		{"redirect relative", stravaEnv, env{"OAUTH_STRAVA_REDIRECT_URL": "/api/callback/strava"}, "OAUTH_STRAVA_REDIRECT_URL", "not an absolute URL"},
		{"redirect fragment", stravaEnv, env{"OAUTH_STRAVA_REDIRECT_URL": "https://x.example.com/api/callback/strava#top"}, "OAUTH_STRAVA_REDIRECT_URL", "#fragment"},
		{"redirect credentials", stravaEnv, env{"OAUTH_STRAVA_REDIRECT_URL": "https://u:" + sentinel + "@x.example.com/api/callback/strava"}, "OAUTH_STRAVA_REDIRECT_URL", "user name or password"},
		{"auth URL http", stravaEnv, env{"OAUTH_STRAVA_AUTH_URL": "http://auth.example.com/authorize"}, "OAUTH_STRAVA_AUTH_URL", "http is allowed only for localhost"},
		{"token URL not a URL", stravaEnv, env{"OAUTH_STRAVA_TOKEN_URL": "token.example.com/token"}, "OAUTH_STRAVA_TOKEN_URL", "not an absolute URL"},
		{"auth style", stravaEnv, env{"OAUTH_STRAVA_AUTH_STYLE": "basic"}, "OAUTH_STRAVA_AUTH_STYLE", `"basic" is not header`},
		{"pkce", stravaEnv, env{"OAUTH_STRAVA_PKCE": "yes"}, "OAUTH_STRAVA_PKCE", `"yes" is not true or false`},
		{"scope separator", stravaEnv, env{"OAUTH_STRAVA_SCOPE_SEPARATOR": "semicolon"}, "OAUTH_STRAVA_SCOPE_SEPARATOR", `"semicolon" is not space or comma`},
		{"region for a provider without regions", stravaEnv, env{"OAUTH_STRAVA_REGION": "eu"}, "OAUTH_STRAVA_REGION", `"eu" is set, but the strava provider has no regions`},
		{"region for custom", customEnv, env{"OAUTH_MY_IDP_REGION": "eu"}, "OAUTH_MY_IDP_REGION", "the custom provider has no regions"},
		{"unknown region", dexcomEnv, env{"OAUTH_CGM_REGION": "au"}, "OAUTH_CGM_REGION", `"au" is not a region of dexcom: use one of eu, jp, sandbox, us`},
		{"custom without auth URL", customEnv, env{"OAUTH_MY_IDP_AUTH_URL": ""}, "OAUTH_MY_IDP_AUTH_URL", "required for a custom provider"},
		{"custom without token URL", customEnv, env{"OAUTH_MY_IDP_TOKEN_URL": ""}, "OAUTH_MY_IDP_TOKEN_URL", "required for a custom provider"},
		{"custom without auth style", customEnv, env{"OAUTH_MY_IDP_AUTH_STYLE": ""}, "OAUTH_MY_IDP_AUTH_STYLE", "required for a custom provider"},
		{"schedule", stravaEnv, env{"REFRESH_SCHEDULE": "*/15 * * *"}, "REFRESH_SCHEDULE", `"*/15 * * *" is not an NCRONTAB schedule: 4 fields`},
		{"schedule field", stravaEnv, env{"REFRESH_SCHEDULE": "0 */15 25 * * *"}, "REFRESH_SCHEDULE", "hour field"},
		{"margin not a duration", stravaEnv, env{"REFRESH_MARGIN": "3 hours"}, "REFRESH_MARGIN", `"3 hours" is not a Go duration (e.g. 30m, 2h)`},
		{"accounts", stravaEnv, env{"OAUTH_STRAVA_ACCOUNTS": "several"}, "OAUTH_STRAVA_ACCOUNTS", `"several" is not one or many`},
		{"concurrency not a number", stravaEnv, env{"REFRESH_CONCURRENCY": "many"}, "REFRESH_CONCURRENCY", `"many" is not a whole number`},
		{"concurrency zero", stravaEnv, env{"REFRESH_CONCURRENCY": "0"}, "REFRESH_CONCURRENCY", `"0" must be between 1 and 256`},
		{"concurrency too high", stravaEnv, env{"REFRESH_CONCURRENCY": "1000"}, "REFRESH_CONCURRENCY", `"1000" must be between 1 and 256`},
		{"margin zero", stravaEnv, env{"REFRESH_MARGIN": "0s"}, "REFRESH_MARGIN", "more than 0"},
		{"margin negative", stravaEnv, env{"REFRESH_MARGIN": "-5m"}, "REFRESH_MARGIN", "more than 0"},
		{"margin a day", stravaEnv, env{"REFRESH_MARGIN": "24h"}, "REFRESH_MARGIN", "less than 24h"},
		{"token timeout not a duration", stravaEnv, env{"TOKEN_REQUEST_TIMEOUT": "30"}, "TOKEN_REQUEST_TIMEOUT", `"30" is not a Go duration`},
		{"token timeout too short", stravaEnv, env{"TOKEN_REQUEST_TIMEOUT": "10ms"}, "TOKEN_REQUEST_TIMEOUT", "between 1s and 5m0s"},
		{"lease not a duration", stravaEnv, env{"REFRESH_LEASE": "long"}, "REFRESH_LEASE", `"long" is not a Go duration`},
		{"lease shorter than two requests", stravaEnv, env{"TOKEN_REQUEST_TIMEOUT": "2m"}, "REFRESH_LEASE", "more than twice TOKEN_REQUEST_TIMEOUT"},
		{"log level", stravaEnv, env{"LOG_LEVEL": "verbose"}, "LOG_LEVEL", `"verbose" is not a level`},
		{"numeric log level", stravaEnv, env{"LOG_LEVEL": "1"}, "LOG_LEVEL", "is not a level"},
		{"log format", stravaEnv, env{"LOG_FORMAT": "text"}, "LOG_FORMAT", `"text" is not json or console`},
		{"handler port zero", stravaEnv, env{"FUNCTIONS_CUSTOMHANDLER_PORT": "0"}, "FUNCTIONS_CUSTOMHANDLER_PORT", "not a port number (1-65535)"},
		{"handler port big", stravaEnv, env{"FUNCTIONS_CUSTOMHANDLER_PORT": "70000"}, "FUNCTIONS_CUSTOMHANDLER_PORT", "not a port number"},
		{"port word", stravaEnv, env{"PORT": "http"}, "PORT", `"http" is not a port number (0-65535)`},
		{"port negative", stravaEnv, env{"PORT": "-1"}, "PORT", "not a port number"},
		{"port signed", stravaEnv, env{"PORT": "+80"}, "PORT", "not a port number"},
		{"bind address", stravaEnv, env{"BIND_ADDRESS": "localhost:7071"}, "BIND_ADDRESS", "not an IP address or host name"},
		{"host name with scheme", stravaEnv, env{"WEBSITE_HOSTNAME": "https://myapp.azurewebsites.net"}, "WEBSITE_HOSTNAME", "without https://"},
		{"table short", stravaEnv, env{"TOKEN_TABLE": "ab"}, "TOKEN_TABLE", "not an Azure table name"},
		{"table digit first", stravaEnv, env{"TOKEN_TABLE": "1tokens"}, "TOKEN_TABLE", "not an Azure table name"},
		{"table hyphen", stravaEnv, env{"TOKEN_TABLE": "oauth-tokens"}, "TOKEN_TABLE", "not an Azure table name"},
		{"table long", stravaEnv, env{"TOKEN_TABLE": "t" + strings.Repeat("x", 63)}, "TOKEN_TABLE", "not an Azure table name"},
		{"table reserved", stravaEnv, env{"TOKEN_TABLE": "Tables"}, "TOKEN_TABLE", "reserved"},
		{"no store", stravaEnv, env{"AzureWebJobsStorage": ""}, "AzureWebJobsStorage", "missing, and so are TOKEN_STORE_CONNECTION and TOKEN_STORE_ENDPOINT"},
		{"no store, identity-based host storage", stravaEnv, env{"AzureWebJobsStorage": "", "AzureWebJobsStorage__accountName": "acct"}, "AzureWebJobsStorage", "https://acct.table.core.windows.net"},
		{"endpoint and connection", stravaEnv, env{"TOKEN_STORE_ENDPOINT": "https://acct.table.core.windows.net", "TOKEN_STORE_CONNECTION": "AccountName=a;AccountKey=" + devKey}, "TOKEN_STORE_ENDPOINT", "ambiguous"},
		{"endpoint http", stravaEnv, env{"TOKEN_STORE_ENDPOINT": "http://acct.table.core.windows.net"}, "TOKEN_STORE_ENDPOINT", "uses http"},
		{"endpoint with SAS", stravaEnv, env{"TOKEN_STORE_ENDPOINT": "https://acct.table.core.windows.net/?sv=1&sig=" + sentinel}, "TOKEN_STORE_ENDPOINT", "query string"},
		{"endpoint not a URL", stravaEnv, env{"TOKEN_STORE_ENDPOINT": "acct"}, "TOKEN_STORE_ENDPOINT", "not an absolute URL"},
		{"client id not a GUID", stravaEnv, env{"TOKEN_STORE_ENDPOINT": "https://acct.table.core.windows.net", "AZURE_CLIENT_ID": "my-identity"}, "AZURE_CLIENT_ID", "not a client ID"},
		{"connection string garbage", stravaEnv, env{"TOKEN_STORE_CONNECTION": sentinel}, "TOKEN_STORE_CONNECTION", "not a storage connection string"},
		{"connection string without key", stravaEnv, env{"AzureWebJobsStorage": "DefaultEndpointsProtocol=https;AccountName=" + sentinel}, "AzureWebJobsStorage", "no AccountKey or SharedAccessSignature"},
		{"connection string bad key", stravaEnv, env{"AzureWebJobsStorage": "AccountName=acct;AccountKey=" + sentinel}, "AzureWebJobsStorage", "not base64"},
		{"connection string key without name", stravaEnv, env{"AzureWebJobsStorage": "AccountKey=" + devKey}, "AzureWebJobsStorage", "no AccountName"},
		{"connection string both", stravaEnv, env{"AzureWebJobsStorage": "AccountName=a;AccountKey=" + devKey + ";SharedAccessSignature=sig=" + sentinel}, "AzureWebJobsStorage", "both AccountKey and SharedAccessSignature"},
		{"connection string dev false", stravaEnv, env{"AzureWebJobsStorage": "UseDevelopmentStorage=false"}, "AzureWebJobsStorage", "other than true"},
		{"connection string twice", stravaEnv, env{"AzureWebJobsStorage": "AccountName=a;accountname=b;AccountKey=" + devKey}, "AzureWebJobsStorage", "names accountname twice"},
		{"connection string bad endpoint", stravaEnv, env{"AzureWebJobsStorage": "TableEndpoint=acct;SharedAccessSignature=" + sentinel}, "AzureWebJobsStorage", "TableEndpoint"},
		{"connection string protocol", stravaEnv, env{"AzureWebJobsStorage": "DefaultEndpointsProtocol=ftp;AccountName=a;AccountKey=" + devKey}, "AzureWebJobsStorage", "DefaultEndpointsProtocol"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := load(t, tt.base().with(tt.changes))
			var se *SettingsError
			if !errors.As(err, &se) {
				t.Fatalf("Load error = %v; want a *SettingsError", err)
			}
			if len(se.Problems) != 1 {
				t.Fatalf("problems:\n%v\nwant exactly one, on %s", err, tt.setting)
			}
			p := se.Problems[0]
			if p.Setting != tt.setting || !strings.Contains(p.Message, tt.says) {
				t.Errorf("problem %q; want %s: ...%s...", p, tt.setting, tt.says)
			}
			if !strings.Contains(err.Error(), "\n"+tt.setting+": ") {
				t.Errorf("error %q; want a line starting with %s: ", err, tt.setting)
			}
		})
	}
}

func TestLoadReportsAllFaultsAtOnce(t *testing.T) {
	e := stravaEnv().with(env{
		"AzureWebJobsStorage":        "",
		"OAUTH_CONNECTIONS":          "strava,my-idp",
		"OAUTH_STRAVA_CLIENT_SECRET": "",
		"OAUTH_MY_IDP_PROVIDER":      "custom",
		"OAUTH_MY_IDP_CLIENT_SECRET": sentinel,
		"REFRESH_MARGIN":             "3 hours",
		"LOG_FORMAT":                 "xml",
		"PORT":                       "port",
	})
	_, _, err := load(t, e)
	var se *SettingsError
	if !errors.As(err, &se) {
		t.Fatalf("Load error = %v; want a *SettingsError", err)
	}
	want := []string{
		"PORT", "AzureWebJobsStorage", "OAUTH_STRAVA_CLIENT_SECRET", "OAUTH_MY_IDP_CLIENT_ID",
		"OAUTH_MY_IDP_AUTH_URL", "OAUTH_MY_IDP_TOKEN_URL", "OAUTH_MY_IDP_AUTH_STYLE", "REFRESH_MARGIN", "LOG_FORMAT",
	}
	var got []string
	for _, p := range se.Problems {
		got = append(got, p.Setting)
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems on %q; want %q", got, want)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want)+1 || lines[0] != "9 problems with the settings:" {
		t.Errorf("error has %d lines, first %q; want a summary and one line per problem:\n%v", len(lines), lines[0], err)
	}
	for i, s := range want {
		if i+1 < len(lines) && !strings.HasPrefix(lines[i+1], s+": ") {
			t.Errorf("line %d = %q; want it to start with %s: ", i+1, lines[i+1], s)
		}
	}
}

func TestLoadNeverShowsSecrets(t *testing.T) {
	// Every secret setting holds the sentinel and is malformed or forces other problems.
	e := env{
		"AzureWebJobsStorage":        "AccountKey=" + sentinel,
		"TOKEN_STORE_CONNECTION":     "Foo" + sentinel,
		"OAUTH_CONNECTIONS":          "strava",
		"OAUTH_STRAVA_PROVIDER":      "strava",
		"OAUTH_STRAVA_CLIENT_SECRET": "<" + sentinel + ">",
	}
	_, _, err := load(t, e)
	if err == nil {
		t.Fatal("Load succeeded; want problems")
	}
	for _, setting := range []string{"TOKEN_STORE_CONNECTION", "OAUTH_STRAVA_CLIENT_SECRET", "OAUTH_STRAVA_CLIENT_ID"} {
		if !strings.Contains(err.Error(), setting+": ") {
			t.Errorf("error does not name %s:\n%v", setting, err)
		}
	}
	// quote is the guard for messages that do show values.
	for _, s := range []string{"AzureWebJobsStorage", "TOKEN_STORE_CONNECTION", "OAUTH_X_CLIENT_SECRET"} {
		if q := quote(s, sentinel); strings.Contains(q, sentinel) {
			t.Errorf("quote(%s, secret) shows the secret", s)
		}
	}
	if q := quote("PORT", "x"); q != `"x"` {
		t.Errorf("quote(PORT, x) = %s; want \"x\"", q)
	}
}

func TestLoadWarnings(t *testing.T) {
	tests := []struct {
		name    string
		changes env
		setting string
		says    string
	}{
		{"empty scopes", env{"OAUTH_STRAVA_SCOPES": ""}, "OAUTH_STRAVA_SCOPES", "empty"},
		{"margin shorter than gap", env{"REFRESH_SCHEDULE": "0 0 * * * *", "REFRESH_MARGIN": "30m"}, "REFRESH_MARGIN", "longest gap between runs of REFRESH_SCHEDULE (1h0m0s)"},
		{"weekday schedule", env{"REFRESH_SCHEDULE": "0 0 */2 * * MON-FRI", "REFRESH_MARGIN": "3h"}, "REFRESH_MARGIN", "(50h0m0s)"},
		{"http redirect", env{"OAUTH_STRAVA_REDIRECT_URL": "http://tokens.example.com/api/callback/strava"}, "OAUTH_STRAVA_REDIRECT_URL", "uses http"},
		{"redirect elsewhere", env{"OAUTH_STRAVA_REDIRECT_URL": "https://tokens.example.com/api/callback/google"}, "OAUTH_STRAVA_REDIRECT_URL", "does not end in /callback/strava"},
		{"schedule unset under the host", env{"FUNCTIONS_CUSTOMHANDLER_PORT": "40000"}, "REFRESH_SCHEDULE", "%REFRESH_SCHEDULE%"},
		{"port 0", env{"PORT": "0"}, "OAUTH_STRAVA_REDIRECT_URL", "port 0"},
		{"spotify on localhost", env{"OAUTH_STRAVA_PROVIDER": "spotify"}, "OAUTH_STRAVA_REDIRECT_URL",
			`spotify refuses localhost in redirect URLs: set this to "http://127.0.0.1:7071/api/callback/strava"`},
		{"withings on a loopback IP", env{"OAUTH_STRAVA_PROVIDER": "withings", "OAUTH_STRAVA_REDIRECT_URL": "http://127.0.0.1:7071/api/callback/strava"},
			"OAUTH_STRAVA_REDIRECT_URL", "withings refuses localhost and IP addresses"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, warnings := mustLoad(t, stravaEnv().with(tt.changes))
			if len(warnings) != 1 || !strings.HasPrefix(warnings[0], tt.setting+": ") || !strings.Contains(warnings[0], tt.says) {
				t.Errorf("warnings = %q; want one, %s: ...%s...", warnings, tt.setting, tt.says)
			}
		})
	}
}

func TestLoadNoScopesForAPresetThatAddsItsOwn(t *testing.T) {
	if _, warnings := mustLoad(t, dexcomEnv().with(env{"OAUTH_CGM_SCOPES": ""})); len(warnings) != 0 {
		t.Errorf("warnings = %q; want none (dexcom asks for offline_access itself)", warnings)
	}
}

func TestLoadLoopbackAccepted(t *testing.T) {
	for _, changes := range []env{
		{"OAUTH_STRAVA_PROVIDER": "spotify", "OAUTH_STRAVA_REDIRECT_URL": "http://127.0.0.1:7071/api/callback/strava"},
		{"OAUTH_STRAVA_PROVIDER": "withings", "OAUTH_STRAVA_REDIRECT_URL": "https://tokens.example.com/api/callback/strava"},
		{"OAUTH_STRAVA_PROVIDER": "google"},
	} {
		if _, warnings := mustLoad(t, stravaEnv().with(changes)); len(warnings) != 0 {
			t.Errorf("%v: warnings = %q; want none", changes, warnings)
		}
	}
}

func TestConnectionSetting(t *testing.T) {
	if got, want := ConnectionSetting("my-app-2", suffixClientID), "OAUTH_MY_APP_2_CLIENT_ID"; got != want {
		t.Errorf("ConnectionSetting = %q; want %q", got, want)
	}
	names := ConnectionSettingNames("strava")
	if len(names) != 13 || names[0] != "OAUTH_STRAVA_PROVIDER" || names[12] != "OAUTH_STRAVA_REVOKE_URL" {
		t.Errorf("ConnectionSettingNames = %q", names)
	}
}

func TestLoadEncryptionKeys(t *testing.T) {
	// 32 bytes of base64; the keys below are for this test only.
	const k1 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	const k2 = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="
	const short = "c2hvcnQta2V5LWJ5dGVz"
	t.Run("unset", func(t *testing.T) {
		cfg, _ := mustLoad(t, stravaEnv())
		if cfg.Store.Keys != nil {
			t.Errorf("Keys = %v; want nil", cfg.Store.Keys)
		}
	})
	t.Run("two keys, the first seals", func(t *testing.T) {
		cfg, _ := mustLoad(t, stravaEnv().with(env{"TOKEN_ENCRYPTION_KEYS": "new:" + k2 + ", old:" + k1}))
		if cfg.Store.Keys == nil || cfg.Store.Keys.Primary() != "new" {
			t.Fatalf("Keys = %v; want primary new", cfg.Store.Keys)
		}
	})
	for _, tt := range []struct{ name, value, says string }{
		{"wrong length", "k1:" + short, "k1"},
		{"duplicate id", "k1:" + k1 + ",k1:" + k2, "k1"},
		{"no id", k1, "TOKEN_ENCRYPTION_KEYS"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := load(t, stravaEnv().with(env{"TOKEN_ENCRYPTION_KEYS": tt.value}))
			if err == nil {
				t.Fatal("Load succeeded; want a problem")
			}
			msg := err.Error()
			if !strings.Contains(msg, "TOKEN_ENCRYPTION_KEYS: ") || !strings.Contains(msg, tt.says) {
				t.Errorf("got %q; want TOKEN_ENCRYPTION_KEYS named and %q", msg, tt.says)
			}
			for _, key := range []string{k1, k2, short, k1[:20], short[:12]} {
				if strings.Contains(msg, key) {
					t.Errorf("the message shows a key: %q", msg)
				}
			}
		})
	}
}

func TestLoadAccountsAndConcurrency(t *testing.T) {
	for _, tc := range []struct {
		accounts, concurrency string
		many                  bool
		n                     int
	}{
		{"", "", false, DefaultConcurrency},
		{"one", "1", false, 1},
		{"many", "64", true, 64},
		{"MANY", " 256 ", true, 256},
	} {
		e := stravaEnv()
		e["OAUTH_STRAVA_ACCOUNTS"] = tc.accounts
		e["REFRESH_CONCURRENCY"] = tc.concurrency
		cfg, _ := mustLoad(t, e)
		if got := cfg.Connections[0].Many; got != tc.many {
			t.Errorf("ACCOUNTS=%q: Many = %v; want %v", tc.accounts, got, tc.many)
		}
		if cfg.Concurrency != tc.n {
			t.Errorf("REFRESH_CONCURRENCY=%q: Concurrency = %d; want %d", tc.concurrency, cfg.Concurrency, tc.n)
		}
	}
}
