package config

import (
	"strings"

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
)

// Suffixes of a connection's settings: OAUTH_<NAME>_<suffix> (see ConnectionSetting).
const (
	SuffixProvider       = "PROVIDER"
	SuffixClientID       = "CLIENT_ID"
	SuffixClientSecret   = "CLIENT_SECRET"
	SuffixScopes         = "SCOPES"
	SuffixRedirectURL    = "REDIRECT_URL"
	SuffixAuthURL        = "AUTH_URL"
	SuffixTokenURL       = "TOKEN_URL"
	SuffixAuthStyle      = "AUTH_STYLE"
	SuffixPKCE           = "PKCE"
	SuffixScopeSeparator = "SCOPE_SEPARATOR"
	SuffixRegion         = "REGION"
)

// Defaults of optional settings.
const (
	DefaultTable        = store.DefaultTable
	DefaultSchedule     = "0 */15 * * * *"
	DefaultMargin       = refresh.DefaultMargin
	DefaultPort         = "7071"
	DefaultBindAddress  = "127.0.0.1"
	DefaultLogFormat    = "json"
	DefaultTokenTimeout = tokenclient.DefaultTimeout
	DefaultLease        = refresh.DefaultLease
)

// SettingNames lists the settings Load reads that do not belong to one connection, in the
// order of the documentation.
func SettingNames() []string {
	return []string{
		SettingWebJobsStorage, SettingStoreConnection, SettingStoreEndpoint, SettingAzureClientID,
		SettingTable, SettingConnections, SettingSchedule, SettingMargin, SettingLogLevel,
		SettingLogFormat, SettingCustomHandlerPort, SettingPort, SettingBindAddress,
		SettingWebsiteHostname, SettingTokenTimeout, SettingLease, SettingWorkerID,
		SettingEncryptionKeys,
	}
}

// ConnectionSettingNames lists the settings Load reads for the connection called name.
func ConnectionSettingNames(name string) []string {
	suffixes := []string{
		SuffixProvider, SuffixClientID, SuffixClientSecret, SuffixScopes, SuffixRedirectURL,
		SuffixAuthURL, SuffixTokenURL, SuffixAuthStyle, SuffixPKCE, SuffixScopeSeparator, SuffixRegion,
	}
	names := make([]string, len(suffixes))
	for i, s := range suffixes {
		names[i] = ConnectionSetting(name, s)
	}
	return names
}

// ConnectionSetting returns the name of one of a connection's settings:
// ConnectionSetting("my-app", SuffixClientID) is OAUTH_MY_APP_CLIENT_ID.
func ConnectionSetting(name, suffix string) string {
	return "OAUTH_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_" + suffix
}

// isSecret says whether a setting's value must never appear in a message.
func isSecret(setting string) bool {
	return setting == SettingWebJobsStorage || setting == SettingStoreConnection || setting == SettingEncryptionKeys ||
		strings.HasSuffix(setting, "_"+SuffixClientSecret)
}
