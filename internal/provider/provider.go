// Package provider describes the OAuth2 providers freshtoken knows: their endpoints, how a
// client authenticates at the token endpoint, how scopes are written, and the quirks that decide
// how a failed refresh may be handled. A Preset is plain data; package tokenclient acts on it.
//
// Every fact in the catalog names its source in a comment. Where the provider's own
// documentation says nothing, the comment says so and the value is the one that works either way.
package provider

import (
	"maps"
	"slices"
	"sort"
	"strings"
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
	// DialectOura is RFC 7807 problem details ({"status":400,"title":"...","detail":"..."}), to
	// which OAuth2 requests add the RFC 6749 fields; the title alone may carry the reason.
	DialectOura Dialect = "oura"
)

// Custom is the preset name for a provider described entirely by settings.
const Custom = "custom"

// Endpoints are a provider's authorize and token URLs in one region.
type Endpoints struct {
	AuthURL  string
	TokenURL string
}

// Preset is what freshtoken knows of one provider. The zero value of every optional field is the
// standard OAuth2 behaviour.
type Preset struct {
	Name  string // the OAUTH_<NAME>_PROVIDER value
	Title string // the provider's name for people

	AuthURL  string
	TokenURL string
	// Regions, when set, are the provider's separate deployments by region name
	// (OAUTH_<NAME>_REGION); AuthURL and TokenURL are those of DefaultRegion.
	Regions       map[string]Endpoints
	DefaultRegion string
	// AuthStyle is how the client authenticates at the token endpoint. Never AuthStyleAutoDetect:
	// auto-detection resends a failed request with the other style, burning single-use tokens.
	AuthStyle oauth2.AuthStyle
	// ScopeSeparator joins scopes in the authorize request: " " or ",".
	ScopeSeparator string
	// RequiredScopes are added to every authorize request that lacks them: without them the
	// provider issues no refresh token (WHOOP's offline, Dexcom's offline_access).
	RequiredScopes []string
	// ScopeBase, when set, completes configured scopes written short: one with a '.' and no
	// ':' is ScopeBase+scope (Google: googlehealth.sleep.readonly). openid or email stay.
	ScopeBase string
	// PKCE sends an S256 code challenge with the authorize request.
	PKCE bool
	// AuthParams are extra authorize request parameters (Google's access_type=offline).
	AuthParams map[string]string
	// ExchangeParams are extra form parameters of the code exchange (Withings' action).
	ExchangeParams map[string]string
	// RefreshParams are extra form parameters of a refresh request (WHOOP's scope=offline).
	RefreshParams map[string]string
	// AccountIDPath is where the token response carries the account id: a top-level field
	// ("user_id") or a dotted path ("athlete.id"). Empty: the provider does not say.
	AccountIDPath string
	// Dialect is the shape of token responses and error bodies.
	Dialect Dialect
	// CodeLifetime, when positive, is how long an authorization code stays valid, when that is
	// short enough for a person to miss it (Withings: 30 seconds).
	CodeLifetime time.Duration
	// RepeatWindow, when positive, is how long after a refresh was sent an identical refresh
	// request is still answered with a usable pair instead of being treated as reuse. Zero:
	// never repeat a refresh whose answer was lost.
	RepeatWindow time.Duration
	// RefreshTokenLifetime is the known deadline of a refresh token from when it was issued
	// (zero: none known). RefreshLifetimeFromConsent says the clock starts at the first consent
	// and refreshing does not extend it.
	RefreshTokenLifetime       time.Duration
	RefreshLifetimeFromConsent bool
	// ReissueWithin, when positive, says a refresh returns the same access token (and expiry)
	// while the current one has more than this left (Strava: 1h): refreshing earlier gains
	// nothing. Zero: every refresh issues a new access token.
	ReissueWithin time.Duration
	// NoRefreshToken says the provider issues long-lived access tokens and no refresh token:
	// the connection is stored and never due.
	NoRefreshToken bool
	// Gone, when set, says the provider's API is shut down and what to do instead.
	Gone string
	// ReconnectHint is added to a "needs consent" message for this provider.
	ReconnectHint string
	// Loopback is what the provider accepts of a loopback redirect URL (local runs).
	Loopback LoopbackRule
	// RegisterURL is where a developer registers the OAuth app; DocsURL the provider's OAuth
	// documentation. For people (README, messages).
	RegisterURL string
	DocsURL     string
	// Revoke says how an account's access is taken back when it is removed, RevokeURL where
	// (for RevokeBearerDelete and RevokePolarUser a path the account id completes), and
	// RevokeHelp where the person can revoke it themselves: a URL or a sentence, with
	// {client_id} and {account_id} filled in. Zero: no API, and the person revokes.
	Revoke     RevokeStyle
	RevokeURL  string
	RevokeHelp string
}

// RevokeStyle is how a provider takes back an app's access to one account.
type RevokeStyle string

const (
	// RevokeNone: the provider has no revocation API the app can call (RevokeHelp says where the
	// person revokes).
	RevokeNone RevokeStyle = ""
	// RevokeRFC7009: POST RevokeURL with token=<refresh token, else access token> and
	// token_type_hint, the client authenticated as at the token endpoint (AuthStyle).
	RevokeRFC7009 RevokeStyle = "rfc7009"
	// RevokeTokenOnly: RFC 7009's request without client authentication (Google).
	RevokeTokenOnly RevokeStyle = "token-only"
	// RevokeStravaDeauthorize: POST RevokeURL with access_token=<access token>.
	RevokeStravaDeauthorize RevokeStyle = "strava-deauthorize"
	// RevokeBearerDelete: DELETE RevokeURL with the access token as Bearer (WHOOP).
	RevokeBearerDelete RevokeStyle = "bearer-delete"
	// RevokePolarUser: DELETE RevokeURL/<account id> with the access token as Bearer (Polar).
	RevokePolarUser RevokeStyle = "polar-user"
)

// LoopbackRule is what a provider accepts of a redirect URL on this machine.
type LoopbackRule int

const (
	// LoopbackAny: http://localhost and loopback IP addresses are accepted.
	LoopbackAny LoopbackRule = iota
	// LoopbackIPOnly: a loopback IP literal (http://127.0.0.1:7071/...) is accepted, the name
	// localhost is not.
	LoopbackIPOnly
	// LoopbackRefused: neither localhost nor an IP address is accepted.
	LoopbackRefused
)

const day = 24 * time.Hour

// presets is the catalog, keyed by Name.
var presets = map[string]Preset{
	// Google, also the Google Health API that replaces the Fitbit Web API.
	// Source: developers.google.com/identity/protocols/oauth2/web-server (shared/PROVIDERS.md).
	"google": {
		Name:     "google",
		Title:    "Google (incl. the Google Health API)",
		AuthURL:  "https://accounts.google.com/o/oauth2/v2/auth",
		TokenURL: "https://oauth2.googleapis.com/token",
		// Google accepts both styles; the form is what its own guide shows.
		AuthStyle:      oauth2.AuthStyleInParams,
		ScopeSeparator: " ",
		ScopeBase:      GoogleScopeBase,
		PKCE:           true, // optional at Google, S256
		// A refresh token is issued only for offline access, and again only when consent is
		// shown, so every Authorize asks for both.
		AuthParams: map[string]string{"access_type": "offline", "prompt": "consent", "include_granted_scopes": "true"},
		Dialect:    DialectRFC6749,
		// Google never rotates its refresh token (the refresh answer has none), so resending
		// one whose answer was lost cannot burn anything: a day covers any pass.
		RepeatWindow: day,
		// No fixed lifetime: it dies after 6 months unused, after 7 days while the consent
		// screen is in "Testing" (no setting for that: see the hint), or past 100 per account.
		ReconnectHint: "Google refresh tokens die after 6 months unused, after 7 days while the OAuth " +
			"consent screen is in \"Testing\" status (publish the app to avoid that), or when the account holds more than 100 of them",
		RegisterURL: "https://console.cloud.google.com/apis/credentials",
		DocsURL:     "https://developers.google.com/identity/protocols/oauth2/web-server",
		// "Revoking a token": POST https://oauth2.googleapis.com/revoke with token= (access or
		// refresh), no client credentials; it removes every scope granted to the project.
		Revoke:     RevokeTokenOnly,
		RevokeURL:  "https://oauth2.googleapis.com/revoke",
		RevokeHelp: "https://myaccount.google.com/permissions",
	},
	// Fitbit Web API: shut down in autumn 2026 (HTTP 410), kept so that old connections say what
	// to do. Source: dev.fitbit.com authorization docs (shared/PROVIDERS.md).
	"fitbit": {
		Name:           "fitbit",
		Title:          "Fitbit Web API (shut down)",
		AuthURL:        "https://www.fitbit.com/oauth2/authorize",
		TokenURL:       "https://api.fitbit.com/oauth2/token",
		AuthStyle:      oauth2.AuthStyleInHeader, // Basic is required for server apps
		ScopeSeparator: " ",
		PKCE:           true, // recommended by Fitbit, S256
		AccountIDPath:  "user_id",
		Dialect:        DialectFitbit,
		// An identical refresh within 2 minutes returns the same new pair (older Fitbit docs).
		RepeatWindow: 2 * time.Minute,
		Gone:         FitbitGone,
		RevokeHelp:   "the Fitbit Web API is shut down: nothing to revoke there",
		RegisterURL:  "https://dev.fitbit.com/apps/new",
		DocsURL:      "https://dev.fitbit.com/build/reference/web-api/authorization/",
	},
	// Strava. Source: developers.strava.com/docs/authentication (shared/PROVIDERS.md).
	"strava": {
		Name:           "strava",
		Title:          "Strava",
		AuthURL:        "https://www.strava.com/oauth/authorize",
		TokenURL:       "https://www.strava.com/oauth/token",
		AuthStyle:      oauth2.AuthStyleInParams,
		ScopeSeparator: ",",
		// PKCE: not documented by Strava, so not sent.
		// force: always show the consent page, so a person who unticked a scope can tick it
		// again (with auto, Strava may skip the page for an app it already approved).
		AuthParams:    map[string]string{"approval_prompt": "force"},
		AccountIDPath: "athlete.id", // the athlete object comes with the code exchange only
		Dialect:       DialectStrava,
		// No repeat: once a new refresh token is returned the old one is dead at once.
		// "If the access token has more than one hour left, the same token is returned."
		ReissueWithin: time.Hour,
		RegisterURL:   "https://www.strava.com/settings/api",
		DocsURL:       "https://developers.strava.com/docs/authentication/",
		// "Deauthorization": POST https://www.strava.com/oauth/deauthorize with access_token;
		// it revokes every token the app holds for the athlete. (A newer /oauth/revoke is
		// reported by community code only: not used.)
		Revoke:     RevokeStravaDeauthorize,
		RevokeURL:  "https://www.strava.com/oauth/deauthorize",
		RevokeHelp: "https://www.strava.com/settings/apps",
	},
	// Withings: its own token client (package tokenclient's Withings). Source:
	// developer.withings.com developer guide "Access and refresh tokens" and the API reference
	// (oauth2 requesttoken), and its FAQ ("the code expires after 30 seconds").
	"withings": {
		Name:     "withings",
		Title:    "Withings",
		AuthURL:  "https://account.withings.com/oauth2_user/authorize2",
		TokenURL: "https://wbsapi.withings.net/v2/oauth2",
		// client_id and client_secret go in the form of the requesttoken call.
		AuthStyle:      oauth2.AuthStyleInParams,
		ScopeSeparator: ",",
		// PKCE: not documented by Withings, so not sent.
		// The requesttoken webservice needs action=requesttoken on both calls.
		ExchangeParams: map[string]string{"action": "requesttoken"},
		RefreshParams:  map[string]string{"action": "requesttoken"},
		AccountIDPath:  "userid", // a number or a string, inside the body envelope
		Dialect:        DialectWithings,
		CodeLifetime:   30 * time.Second,
		// Every refresh returns a new pair, but the old refresh token stays valid for 8 hours
		// or until the new access token is used. A pair whose answer was lost was never stored,
		// so nobody used its access token: resending the old token within the 8 hours gets
		// another fresh pair. 7 hours leaves a margin.
		RepeatWindow:         7 * time.Hour,
		RefreshTokenLifetime: 365 * day, // rotating: a year from each refresh
		// "Localhost and IP addresses are not allowed as callback URLs" (Withings FAQ).
		Loopback: LoopbackRefused,
		// Withings' FAQ: partners cannot unlink a user; the person disconnects the app at this
		// page. (Its signed action=revoke call is not attempted: the FAQ says it is refused.)
		RevokeHelp:  "https://account.withings.com/partner/disconnect_partner/{client_id}?selecteduser={account_id}",
		RegisterURL: "https://developer.withings.com/dashboard/",
		DocsURL:     "https://developer.withings.com/developer-guide/v3/integration-guide/public-health-data-api/get-access/access-and-refresh-tokens",
	},
	// Oura API v2. Source: cloud.ouraring.com/docs/authentication (URLs, space-separated scopes,
	// no PKCE parameter documented) and /docs/error-handling (RFC 7807 bodies with the RFC 6749
	// fields on OAuth2 requests; "a refresh token can only be used once").
	"oura": {
		Name:      "oura",
		Title:     "Oura",
		AuthURL:   "https://cloud.ouraring.com/oauth/authorize",
		TokenURL:  "https://api.ouraring.com/oauth/token",
		AuthStyle: oauth2.AuthStyleInParams, // the form, as Oura's examples send it
		// PKCE: not in Oura's documented authorize parameters, so not sent.
		ScopeSeparator: " ",
		Dialect:        DialectOura,
		// Single use: no repeat.
		// Revocation: only community reports of an /oauth/revoke call, method unstated: not used.
		RevokeHelp:  "the person removes the app's access in their Oura account (Oura documents no revocation call)",
		RegisterURL: "https://cloud.ouraring.com/oauth/applications",
		DocsURL:     "https://cloud.ouraring.com/docs/authentication",
	},
	// Spotify. Source: developer.spotify.com authorization code flow and PKCE guides
	// (shared/PROVIDERS.md); the blog post of 2025-02-12 ("Increasing the security requirements")
	// and the Redirect URIs page: PKCE for the code grant, https redirect URLs except loopback IP
	// literals, localhost refused since November 2025. Error bodies are RFC 6749
	// ({"error":"invalid_grant","error_description":"Refresh token revoked"}, spotify/web-api
	// issues #313, #1202).
	"spotify": {
		Name:           "spotify",
		Title:          "Spotify",
		AuthURL:        "https://accounts.spotify.com/authorize",
		TokenURL:       "https://accounts.spotify.com/api/token",
		AuthStyle:      oauth2.AuthStyleInHeader, // Basic, as Spotify's guide shows
		ScopeSeparator: " ",
		PKCE:           true, // S256
		Dialect:        DialectRFC6749,
		// A refresh may return a new refresh token; whether the old one then still works is
		// not documented, so no repeat.
		RefreshTokenLifetime:       183 * day, // about 6 months from the first consent
		RefreshLifetimeFromConsent: true,
		ReconnectHint:              "Spotify refresh tokens last about 6 months from the consent, and refreshing does not extend them",
		Loopback:                   LoopbackIPOnly,
		// No revocation API: the person removes the app at their account's Apps page.
		RevokeHelp:  "https://www.spotify.com/account/apps/",
		RegisterURL: "https://developer.spotify.com/dashboard",
		DocsURL:     "https://developer.spotify.com/documentation/web-api/tutorials/code-flow",
	},
	// WHOOP (an Ory Hydra server: /oauth/oauth2/auth, Hydra's error texts). Source:
	// developer.whoop.com/docs/developing/oauth and the refresh tutorials, which send
	// client_id and client_secret in the form and scope=offline on refresh.
	"whoop": {
		Name:           "whoop",
		Title:          "WHOOP",
		AuthURL:        "https://api.prod.whoop.com/oauth/oauth2/auth",
		TokenURL:       "https://api.prod.whoop.com/oauth/oauth2/token",
		AuthStyle:      oauth2.AuthStyleInParams,
		ScopeSeparator: " ",
		// PKCE: not documented by WHOOP, so not sent.
		RequiredScopes: []string{"offline"}, // no refresh token without it
		RefreshParams:  map[string]string{"scope": "offline"},
		Dialect:        DialectRFC6749,
		// Rotates on every refresh, and Hydra revokes the whole grant when an old refresh token
		// comes back: never repeat.
		RegisterURL: "https://developer-dashboard.whoop.com/",
		DocsURL:     "https://developer.whoop.com/docs/developing/oauth",
		// "Revoke user access": DELETE /developer/v2/user/access with the user's Bearer token.
		Revoke:     RevokeBearerDelete,
		RevokeURL:  "https://api.prod.whoop.com/developer/v2/user/access",
		RevokeHelp: "the person can also remove the app from their WHOOP account",
	},
	// Dexcom API v2/v3. Source: developer.dexcom.com/docs/dexcom/authentication (the login URL
	// with scope=offline_access, the sandbox host, and a token request with client_id and
	// client_secret in the form; no PKCE parameter documented).
	"dexcom": {
		Name:           "dexcom",
		Title:          "Dexcom",
		AuthURL:        dexcomRegions["us"].AuthURL,
		TokenURL:       dexcomRegions["us"].TokenURL,
		Regions:        dexcomRegions,
		DefaultRegion:  "us",
		AuthStyle:      oauth2.AuthStyleInParams,
		ScopeSeparator: " ",
		RequiredScopes: []string{"offline_access"}, // the only scope, and the one for a refresh token
		Dialect:        DialectRFC6749,
		// Single use (community reports): no repeat.
		// No revocation API: only the person can revoke.
		RevokeHelp:  "the person revokes the app's access in their Dexcom account settings (Dexcom has no revocation API)",
		RegisterURL: "https://developer.dexcom.com/",
		DocsURL:     "https://developer.dexcom.com/docs/dexcom/authentication",
	},
	// Polar AccessLink (the fitness API, not polar.sh). Source: Polar's official example
	// github.com/polarofficial/accesslink-example-python (accesslink.py: the two URLs; oauth2.py:
	// HTTP Basic for the code exchange; authorization.py: x_user_id in the token answer, codes
	// valid 10 minutes, no refresh token). Token lifetime: not documented there; expires_in is
	// used when sent.
	"polar": {
		Name:           "polar",
		Title:          "Polar AccessLink",
		AuthURL:        "https://flow.polar.com/oauth2/authorization",
		TokenURL:       "https://polarremote.com/v2/oauth2/token",
		AuthStyle:      oauth2.AuthStyleInHeader,
		ScopeSeparator: " ",
		AccountIDPath:  "x_user_id",
		Dialect:        DialectRFC6749,
		NoRefreshToken: true,
		ReconnectHint:  "Polar issues no refresh token: when its access token stops working, connect again",
		RegisterURL:    "https://admin.polaraccesslink.com/",
		DocsURL:        "https://www.polar.com/accesslink-api/",
		// AccessLink "Delete user": DELETE /v3/users/{user-id} with the user's Bearer token
		// removes the registration and the access token.
		Revoke:     RevokePolarUser,
		RevokeURL:  "https://www.polaraccesslink.com/v3/users",
		RevokeHelp: "the person can also remove the app from their Polar account",
	},
}

// dexcomRegions are Dexcom's deployments; every one has the same paths.
var dexcomRegions = map[string]Endpoints{
	"us":      dexcomEndpoints("https://api.dexcom.com"),
	"eu":      dexcomEndpoints("https://api.dexcom.eu"),
	"jp":      dexcomEndpoints("https://api.dexcom.jp"),
	"sandbox": dexcomEndpoints("https://sandbox-api.dexcom.com"),
}

func dexcomEndpoints(base string) Endpoints {
	return Endpoints{AuthURL: base + "/v2/oauth2/login", TokenURL: base + "/v2/oauth2/token"}
}

// GoogleScopeBase starts Google's OAuth scopes. The google preset takes a scope written
// without it (googlehealth.sleep.readonly) as short for the full one (see Preset.ScopeBase).
const GoogleScopeBase = "https://www.googleapis.com/auth/"

// GoogleHealthScopeNames are the read-only Google Health API scopes that replace the Fitbit
// Web API's, in the short form the google preset accepts. Google's mapping
// (developers.google.com/health/migration/api-specifications): activity and cardio_fitness
// become activity_and_fitness; heartrate, oxygen_saturation, respiratory_rate, temperature and
// blood_glucose become health_metrics_and_measurements; sleep becomes sleep; profile becomes
// profile (settings, nutrition, location, electrocardiogram and irregular_rhythm_notifications
// have scopes of their own).
var GoogleHealthScopeNames = []string{
	"googlehealth.activity_and_fitness.readonly",
	"googlehealth.health_metrics_and_measurements.readonly",
	"googlehealth.sleep.readonly",
	"googlehealth.profile.readonly",
}

// GoogleHealthScopes are GoogleHealthScopeNames in full, as Google reports them granted.
var GoogleHealthScopes = []string{
	GoogleScopeBase + "googlehealth.activity_and_fitness.readonly",
	GoogleScopeBase + "googlehealth.health_metrics_and_measurements.readonly",
	GoogleScopeBase + "googlehealth.sleep.readonly",
	GoogleScopeBase + "googlehealth.profile.readonly",
}

// GoogleHealthScopesText is GoogleHealthScopeNames as an OAUTH_<NAME>_SCOPES value.
const GoogleHealthScopesText = "googlehealth.activity_and_fitness.readonly googlehealth.health_metrics_and_measurements.readonly " +
	"googlehealth.sleep.readonly googlehealth.profile.readonly"

// FitbitGone is the message for anyone still on the Fitbit Web API. It is kept under 272 bytes
// so that it survives whole in a status message cut to 300.
const FitbitGone = "the Fitbit Web API is shut down: consent again through the google preset with the Google Health API scopes " +
	GoogleHealthScopesText

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

// FullScope completes a configured scope written short (see ScopeBase).
func (p Preset) FullScope(scope string) string {
	if p.ScopeBase == "" || !strings.Contains(scope, ".") || strings.Contains(scope, ":") {
		return scope
	}
	return p.ScopeBase + scope
}

// RegionNames lists p's regions, sorted; nil when it has none.
func (p Preset) RegionNames() []string {
	if len(p.Regions) == 0 {
		return nil
	}
	return slices.Sorted(maps.Keys(p.Regions))
}

// WithRegion returns p with the endpoints of region; false when p has no such region.
func (p Preset) WithRegion(region string) (Preset, bool) {
	e, ok := p.Regions[region]
	if !ok {
		return p, false
	}
	p.AuthURL, p.TokenURL = e.AuthURL, e.TokenURL
	return p, true
}

// clone copies the maps and slices so a caller's overrides never reach the catalog.
func (p Preset) clone() Preset {
	p.AuthParams = maps.Clone(p.AuthParams)
	p.ExchangeParams = maps.Clone(p.ExchangeParams)
	p.RefreshParams = maps.Clone(p.RefreshParams)
	p.Regions = maps.Clone(p.Regions)
	p.RequiredScopes = slices.Clone(p.RequiredScopes)
	return p
}

// SplitScopes splits a scope list written with spaces, commas or both, dropping empty parts and
// repeats. It reads settings, token answers and redirect parameters alike.
func SplitScopes(s string) []string {
	var scopes []string
	for _, sc := range strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	}) {
		if !slices.Contains(scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	return scopes
}
