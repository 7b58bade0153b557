package config

import (
	"time"

	"github.com/freshtoken/freshtoken/internal/provider"
	"github.com/freshtoken/freshtoken/internal/schedule"
	"github.com/freshtoken/freshtoken/internal/seal"
	"github.com/rs/zerolog"
)

// Config is every setting, read once at start-up by Load.
type Config struct {
	// CustomHandlerPort is FUNCTIONS_CUSTOMHANDLER_PORT: set when the Functions host runs us.
	// Empty means standalone: serve on BindAddress:Port and run the schedule ourselves.
	CustomHandlerPort string
	Port              string // PORT, default 7071 (standalone)
	BindAddress       string // BIND_ADDRESS, default 127.0.0.1 (standalone)
	// PublicBaseURL is where browsers reach the app: https://$WEBSITE_HOSTNAME in Azure,
	// else http://localhost:<Port>. Used for default redirect URLs and in messages.
	PublicBaseURL string

	// WorkerID is FUNCTIONS_CUSTOMHANDLER_WORKER_ID, set by the host; "" standalone. It names
	// this process in leases.
	WorkerID string

	Store       Store
	Connections []ConnectionSettings
	// InviteKey is INVITE_SIGNING_KEY decoded: the 32-byte HMAC-SHA256 key that signs
	// invitations. nil when unset: invitations are neither issued nor accepted.
	InviteKey []byte

	Schedule schedule.Schedule // REFRESH_SCHEDULE (NCRONTAB), default "0 */15 * * * *"
	Margin   time.Duration     // REFRESH_MARGIN; 0 when unset (the adaptive timing)

	// TokenTimeout bounds one request to a provider's token endpoint (TOKEN_REQUEST_TIMEOUT,
	// default 30s).
	TokenTimeout time.Duration
	// Lease is how long a pass holds a connection while it refreshes it (REFRESH_LEASE, default
	// 3m). It must outlive the slowest refresh: a token request, an identical repeat, and the
	// commit's retries, so Load requires more than 2×TokenTimeout.
	Lease time.Duration
	// Concurrency bounds the refreshes a pass runs at once (REFRESH_CONCURRENCY, default
	// DefaultConcurrency, at most MaxConcurrency).
	Concurrency int

	Notify Notify

	// HeartbeatURL is HEARTBEAT_URL: pinged after every pass (a credential: never logged).
	HeartbeatURL string

	LogLevel  zerolog.Level // LOG_LEVEL, default info
	LogFormat string        // LOG_FORMAT: "json" (default) or "console"
}

// Notify says who is told when a connection needs a person.
type Notify struct {
	// URLs are NOTIFY_URLS, shoutrrr URLs (credentials: never shown); none turns notifications off.
	URLs []string
	// After is NOTIFY_AFTER: how long a transient failure streak lasts before it is reported.
	After time.Duration
	// Reminder is NOTIFY_REMINDER: how often a connection that needs consent is reported again;
	// 0 turns reminders off.
	Reminder time.Duration
}

// Store says where the token table lives. Exactly one of ConnectionString and Endpoint is set.
type Store struct {
	// ConnectionString is TOKEN_STORE_CONNECTION, else AzureWebJobsStorage.
	ConnectionString string
	// Endpoint is TOKEN_STORE_ENDPOINT: Microsoft Entra auth through azidentity.
	Endpoint string
	// ManagedIdentityClientID is AZURE_CLIENT_ID: a user-assigned identity, with Endpoint.
	ManagedIdentityClientID string
	Table                   string // TOKEN_TABLE, default OAuthTokens
	// Keys are TOKEN_ENCRYPTION_KEYS: they seal refresh tokens and PKCE verifiers in the table.
	// nil when unset (secrets stored as plain text).
	Keys *seal.Keyring
}

// ConnectionSettings is one OAUTH_<NAME>_* group, resolved against its preset.
type ConnectionSettings struct {
	Name string // lower-case letters, digits and '-'
	// Preset is the provider preset with the connection's overrides applied (REGION, AUTH_URL,
	// TOKEN_URL, AUTH_STYLE, PKCE, SCOPE_SEPARATOR). For custom, built from the settings alone.
	Preset       provider.Preset
	ClientID     string
	ClientSecret string
	Scopes       []string // split on spaces and commas, empty parts dropped
	RedirectURL  string
	// Region is OAUTH_<NAME>_REGION for a preset with regions (its default when unset), whose
	// endpoints Preset then holds; "" for every other provider.
	Region string
	// Many is OAUTH_<NAME>_ACCOUNTS=many: the connection holds any number of accounts, each in
	// partition NAME.LABEL. Unset or "one": one account, in partition NAME, as before.
	Many bool
}

// AuthorizeURL is where a person opens the consent flow for c (in Azure, a function key must be
// added as ?code=...).
func (c Config) AuthorizeURL(name string) string {
	return c.PublicBaseURL + "/api/authorize/" + name
}
