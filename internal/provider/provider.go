// Package provider describes the OAuth2 providers freshtoken knows: their endpoints, how a
// client authenticates at the token endpoint, how scopes are written, and the quirks that decide
// how a failed refresh may be handled. A Preset is plain data; package tokenclient acts on it.
package provider

import (
	"sort"
	"time"

	"golang.org/x/oauth2"
)

// Dialect names the shape of a provider's token responses and error bodies.
type Dialect string

const (
	// DialectRFC6749 is the standard shape: a JSON token, errors as {"error": "...", "error_description": "..."}.
	DialectRFC6749 Dialect = "rfc6749"
	// DialectFitbit reports errors as {"errors":[{"errorType":"invalid_grant","message":"..."}]}.
	DialectFitbit Dialect = "fitbit"
	// DialectStrava reports errors as {"message":"...","errors":[{"resource":"...","field":"...","code":"invalid"}]}.
	DialectStrava Dialect = "strava"
	// DialectWithings wraps every answer in {"status":0,"body":{...}} and reports errors with HTTP 200.
	DialectWithings Dialect = "withings"
)

// Custom is the preset name for a provider described entirely by settings.
const Custom = "custom"

// Preset is what freshtoken knows of one provider. The zero value of every optional field is the
// standard OAuth2 behaviour.
type Preset struct {
	Name  string // the OAUTH_<NAME>_PROVIDER value
	Title string // the provider's name for people

	AuthURL  string
	TokenURL string
	// AuthStyle is how the client authenticates at the token endpoint. Never AuthStyleAutoDetect:
	// auto-detection resends a failed request with the other style, burning single-use tokens.
	AuthStyle oauth2.AuthStyle
	// ScopeSeparator joins scopes in the authorize request: " " or ",".
	ScopeSeparator string
	// PKCE sends an S256 code challenge with the authorize request.
	PKCE bool
	// AuthParams are extra authorize request parameters (Google's access_type=offline).
	AuthParams map[string]string
	// RefreshParams are extra form parameters of a refresh request (WHOOP's scope=offline).
	RefreshParams map[string]string
	// AccountIDPath is where the token response carries the account id: a top-level field
	// ("user_id") or a dotted path ("athlete.id"). Empty: the provider does not say.
	AccountIDPath string
	// Dialect is the shape of token responses and error bodies.
	Dialect Dialect
	// RepeatWindow, when positive, is how long after a refresh an identical refresh request
	// returns the same new pair instead of being treated as reuse. Zero: never repeat a refresh.
	RepeatWindow time.Duration
	// RefreshTokenLifetime is the known deadline of a refresh token from when it was issued
	// (zero: none known). RefreshLifetimeFromConsent says the clock starts at the first consent
	// and refreshing does not extend it.
	RefreshTokenLifetime       time.Duration
	RefreshLifetimeFromConsent bool
	// NoRefreshToken says the provider issues long-lived access tokens and no refresh token:
	// the connection is stored and never due.
	NoRefreshToken bool
	// Gone, when set, says the provider's API is shut down and what to do instead.
	Gone string
	// ReconnectHint is added to a "needs consent" message for this provider.
	ReconnectHint string
}

// presets is the catalog, keyed by Name.
var presets = map[string]Preset{
	"google": {
		Name:           "google",
		Title:          "Google (incl. the Google Health API)",
		AuthURL:        "https://accounts.google.com/o/oauth2/v2/auth",
		TokenURL:       "https://oauth2.googleapis.com/token",
		AuthStyle:      oauth2.AuthStyleInParams,
		ScopeSeparator: " ",
		PKCE:           true,
		// A refresh token is issued only for offline access, and again only when consent is
		// shown, so every Authorize asks for both.
		AuthParams: map[string]string{"access_type": "offline", "prompt": "consent", "include_granted_scopes": "true"},
		Dialect:    DialectRFC6749,
		ReconnectHint: "Google refresh tokens die after 6 months unused, after 7 days while the OAuth " +
			"consent screen is in \"Testing\" status, or when the account holds more than 100 of them.",
	},
	"fitbit": {
		Name:           "fitbit",
		Title:          "Fitbit Web API (shut down)",
		AuthURL:        "https://www.fitbit.com/oauth2/authorize",
		TokenURL:       "https://api.fitbit.com/oauth2/token",
		AuthStyle:      oauth2.AuthStyleInHeader,
		ScopeSeparator: " ",
		PKCE:           true,
		AccountIDPath:  "user_id",
		Dialect:        DialectFitbit,
		RepeatWindow:   2 * time.Minute,
		Gone:           FitbitGone,
	},
	"strava": {
		Name:           "strava",
		Title:          "Strava",
		AuthURL:        "https://www.strava.com/oauth/authorize",
		TokenURL:       "https://www.strava.com/oauth/token",
		AuthStyle:      oauth2.AuthStyleInParams,
		ScopeSeparator: ",",
		AuthParams:     map[string]string{"approval_prompt": "auto"},
		AccountIDPath:  "athlete.id",
		Dialect:        DialectStrava,
	},
}

// FitbitGone is the message for anyone still on the Fitbit Web API.
const FitbitGone = "the Fitbit Web API and its OAuth endpoints are shut down (HTTP 410 Gone); " +
	"Fitbit tokens cannot be carried over: reconnect through the google preset with the Google " +
	"Health API scopes (" + GoogleHealthScopesText + ")"

// GoogleHealthScopes are the Google Health API scopes that replace the Fitbit Web API's.
var GoogleHealthScopes = []string{
	"https://www.googleapis.com/auth/googlehealth.activity_and_fitness.readonly",
	"https://www.googleapis.com/auth/googlehealth.health_metrics_and_measurements.readonly",
	"https://www.googleapis.com/auth/googlehealth.sleep.readonly",
	"https://www.googleapis.com/auth/googlehealth.profile.readonly",
}

// GoogleHealthScopesText is GoogleHealthScopes for messages.
const GoogleHealthScopesText = "https://www.googleapis.com/auth/googlehealth.activity_and_fitness.readonly, " +
	"googlehealth.health_metrics_and_measurements.readonly, googlehealth.sleep.readonly, " +
	"googlehealth.profile.readonly"

// Lookup returns the preset called name. Custom is not a preset: it has no entry.
func Lookup(name string) (Preset, bool) {
	p, ok := presets[name]
	if !ok {
		return Preset{}, false
	}
	return p.clone(), true
}

// Names lists the preset names, sorted, plus Custom.
func Names() []string {
	names := make([]string, 0, len(presets)+1)
	for n := range presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return append(names, Custom)
}

// clone copies the maps so a caller's overrides never reach the catalog.
func (p Preset) clone() Preset {
	p.AuthParams = cloneMap(p.AuthParams)
	p.RefreshParams = cloneMap(p.RefreshParams)
	return p
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}
