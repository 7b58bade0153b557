// Package config reads freshtoken's settings from the environment (app settings in Azure,
// local.settings.json `Values` under `func start`) once, at start-up, into a Config.
//
// Load reports every missing or malformed setting at once, each naming its setting, and never
// quotes a secret (client secrets, connection strings). Values are trimmed of surrounding white
// space; an empty value is the same as an unset one.
//
// Settings:
//
//	AzureWebJobsStorage            storage connection string for the token table, unless one of the
//	                               next two is set; UseDevelopmentStorage=true means Azurite
//	TOKEN_STORE_CONNECTION         a separate storage connection string for the token table
//	TOKEN_STORE_ENDPOINT           table endpoint URL (https://<account>.table.core.windows.net):
//	                               Microsoft Entra auth; not together with TOKEN_STORE_CONNECTION
//	AZURE_CLIENT_ID                with TOKEN_STORE_ENDPOINT: the user-assigned managed identity
//	TOKEN_TABLE                    table name, default OAuthTokens
//	NOTIFY_URLS                    shoutrrr URLs, space- or comma-separated: told when a connection
//	                               needs a person (credentials: never shown)
//	NOTIFY_AFTER                   Go duration, default 1h: a transient failure streak reported after it
//	NOTIFY_REMINDER                Go duration, default 24h, 0 off: needs consent reported again
//	HEARTBEAT_URL                  pinged after every pass, +/fail after a failed one (a credential)
//	TOKEN_ENCRYPTION_KEYS          KID:BASE64[,KID:BASE64...], 32-byte keys: the first seals refresh
//	                               tokens and PKCE verifiers in the table, every one opens them
//	INVITE_SIGNING_KEY             32 bytes in base64 (openssl rand -base64 32): signs invitations
//	                               to accounts (HMAC-SHA256); unset: no invitations
//	OAUTH_CONNECTIONS              comma-separated connection names (a-z, 0-9, '-')
//	OAUTH_<NAME>_PROVIDER          a preset (see provider.Names) or custom
//	OAUTH_<NAME>_CLIENT_ID         required
//	OAUTH_<NAME>_CLIENT_SECRET     required
//	OAUTH_<NAME>_SCOPES            scopes separated by spaces and/or commas; for google, a scope
//	                               with a dot may omit https://www.googleapis.com/auth/
//	OAUTH_<NAME>_REDIRECT_URL      default <public base URL>/api/callback/<name>: from
//	                               WEBSITE_HOSTNAME, else http://localhost:<PORT>
//	OAUTH_<NAME>_AUTH_URL          required for custom, else overrides the preset
//	OAUTH_<NAME>_TOKEN_URL         required for custom, else overrides the preset
//	OAUTH_<NAME>_AUTH_STYLE        header (HTTP Basic) or params (form fields); required for custom
//	OAUTH_<NAME>_PKCE              true or false; default false for custom, else the preset's
//	OAUTH_<NAME>_SCOPE_SEPARATOR   how the authorize request joins scopes: space (default for
//	                               custom) or comma; overrides a preset's
//	OAUTH_<NAME>_REGION            for a provider with regions (dexcom): us (default), eu, jp
//	                               or sandbox; AUTH_URL and TOKEN_URL still override it
//	OAUTH_<NAME>_ACCOUNTS          one (default): one account, in partition NAME; many: any
//	                               number of accounts, each in partition NAME.LABEL (LABEL: 1-63
//	                               of a-z, 0-9, '-')
//	OAUTH_<NAME>_REVOKE_URL        where a removed account's access is revoked: for custom (or a
//	                               preset without a revocation call) an RFC 7009 endpoint, else
//	                               overrides the preset's URL
//	REFRESH_SCHEDULE               NCRONTAB (see package schedule), default 0 */15 * * * *
//	REFRESH_MARGIN                 a token is refreshed when it expires within this; default 30m
//	TOKEN_REQUEST_TIMEOUT          timeout of one token request, default 30s
//	REFRESH_LEASE                  how long a pass holds a connection it refreshes, default 3m;
//	                               more than twice TOKEN_REQUEST_TIMEOUT
//	REFRESH_CONCURRENCY            refreshes a pass runs at once, 1 to 256, default 24
//	LOG_LEVEL                      trace, debug, info (default), warn, error, fatal, panic, disabled
//	LOG_FORMAT                     json (default) or console
//	FUNCTIONS_CUSTOMHANDLER_PORT   set by the Functions host; unset means standalone
//	PORT                           standalone listen port, default 7071 (0: any free port)
//	BIND_ADDRESS                   standalone listen address, default 127.0.0.1
//	WEBSITE_HOSTNAME               set by Azure: the public base URL is https://<it>; func start
//	                               sets it to localhost:<port>, which gives http://localhost:<port>
//
// FUNCTIONS_CUSTOMHANDLER_PORT and WEBSITE_HOSTNAME are set by the host (func start sets both):
// keep them out of local.settings.json.
//
// <NAME> is the connection name upper-cased with '-' turned into '_' (ConnectionSetting).
package config
