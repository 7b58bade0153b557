package config

import (
	"strings"

	"github.com/freshtoken/freshtoken/internal/notify"
	"github.com/freshtoken/freshtoken/internal/refresh"
	"github.com/freshtoken/freshtoken/internal/store"
	"github.com/freshtoken/freshtoken/internal/tokenclient"
)

// Names of the settings Load reads, other than the per-connection ones.
const (
	SettingWebJobsStorage    = "AzureWebJobsStorage"
	SettingStoreConnection   = "TOKEN_STORE_CONNECTION"
	SettingStoreEndpoint     = "TOKEN_STORE_ENDPOINT"
	SettingAzureClientID     = "AZURE_CLIENT_ID"
	SettingTable             = "TOKEN_TABLE"
	SettingConnections       = "OAUTH_CONNECTIONS"
	SettingSchedule          = "REFRESH_SCHEDULE"
	SettingMargin            = "REFRESH_MARGIN"
	SettingLogLevel          = "LOG_LEVEL"
	SettingLogFormat         = "LOG_FORMAT"
	SettingCustomHandlerPort = "FUNCTIONS_CUSTOMHANDLER_PORT"
	SettingPort              = "PORT"
	SettingBindAddress       = "BIND_ADDRESS"
	SettingWebsiteHostname   = "WEBSITE_HOSTNAME"
	SettingTokenTimeout      = "TOKEN_REQUEST_TIMEOUT"
	SettingLease             = "REFRESH_LEASE"
	SettingWorkerID          = "FUNCTIONS_CUSTOMHANDLER_WORKER_ID"
	SettingEncryptionKeys    = "TOKEN_ENCRYPTION_KEYS"
	SettingConcurrency       = "REFRESH_CONCURRENCY"
	SettingNotifyURLs        = "NOTIFY_URLS"
	SettingNotifyAfter       = "NOTIFY_AFTER"
	SettingNotifyReminder    = "NOTIFY_REMINDER"
	SettingHeartbeatURL      = "HEARTBEAT_URL"
	SettingInviteKey         = "INVITE_SIGNING_KEY"
)

// Suffixes of a connection's settings: OAUTH_<NAME>_<suffix> (see ConnectionSetting).
const (
	suffixProvider       = "PROVIDER"
	suffixClientID       = "CLIENT_ID"
	suffixClientSecret   = "CLIENT_SECRET"
	suffixScopes         = "SCOPES"
	suffixRedirectURL    = "REDIRECT_URL"
	suffixAuthURL        = "AUTH_URL"
	suffixTokenURL       = "TOKEN_URL"
	suffixAuthStyle      = "AUTH_STYLE"
	suffixPKCE           = "PKCE"
	suffixScopeSeparator = "SCOPE_SEPARATOR"
	suffixRegion         = "REGION"
	suffixAccounts       = "ACCOUNTS"
	suffixRevokeURL      = "REVOKE_URL"
)

// Defaults of optional settings.
const (
	defaultTable          = store.DefaultTable
	defaultSchedule       = "0 */15 * * * *"
	defaultPort           = "7071"
	defaultBindAddress    = "127.0.0.1"
	defaultLogFormat      = "json"
	defaultTokenTimeout   = tokenclient.DefaultTimeout
	defaultLease          = refresh.DefaultLease
	defaultNotifyAfter    = notify.DefaultAfter
	defaultNotifyReminder = notify.DefaultReminder
	DefaultConcurrency    = refresh.DefaultConcurrency
	MaxConcurrency        = 256
)

// SettingNames lists the settings Load reads that do not belong to one connection, in the
// order of the documentation.
func SettingNames() []string {
	return []string{
		SettingWebJobsStorage, SettingStoreConnection, SettingStoreEndpoint, SettingAzureClientID,
		SettingTable, SettingConnections, SettingSchedule, SettingMargin, SettingLogLevel,
		SettingLogFormat, SettingCustomHandlerPort, SettingPort, SettingBindAddress,
		SettingWebsiteHostname, SettingTokenTimeout, SettingLease, SettingWorkerID,
		SettingEncryptionKeys, SettingConcurrency, SettingNotifyURLs, SettingNotifyAfter,
		SettingNotifyReminder, SettingHeartbeatURL, SettingInviteKey,
	}
}

// ConnectionSettingNames lists the settings Load reads for the connection called name.
func ConnectionSettingNames(name string) []string {
	suffixes := []string{
		suffixProvider, suffixClientID, suffixClientSecret, suffixScopes, suffixRedirectURL,
		suffixAuthURL, suffixTokenURL, suffixAuthStyle, suffixPKCE, suffixScopeSeparator, suffixRegion, suffixAccounts,
		suffixRevokeURL,
	}
	names := make([]string, len(suffixes))
	for i, s := range suffixes {
		names[i] = ConnectionSetting(name, s)
	}
	return names
}

// ConnectionSetting returns the name of one of a connection's settings:
// ConnectionSetting("my-app", suffixClientID) is OAUTH_MY_APP_CLIENT_ID.
func ConnectionSetting(name, suffix string) string {
	return "OAUTH_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_" + suffix
}

// isSecret says whether a setting's value must never appear in a message.
func isSecret(setting string) bool {
	return setting == SettingWebJobsStorage || setting == SettingStoreConnection || setting == SettingEncryptionKeys ||
		setting == SettingInviteKey ||
		setting == SettingNotifyURLs || setting == SettingHeartbeatURL ||
		strings.HasSuffix(setting, "_"+suffixClientSecret)
}
