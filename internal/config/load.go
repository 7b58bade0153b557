package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/freshtoken/freshtoken/internal/heartbeat"
	"github.com/freshtoken/freshtoken/internal/invite"
	"github.com/freshtoken/freshtoken/internal/notify"
	"github.com/freshtoken/freshtoken/internal/provider"
	"github.com/freshtoken/freshtoken/internal/schedule"
	"github.com/freshtoken/freshtoken/internal/seal"
	"github.com/freshtoken/freshtoken/internal/store"
	"github.com/rs/zerolog"
	"golang.org/x/oauth2"
)

var (
	connectionNameRE = regexp.MustCompile(`^[a-z0-9-]+$`)
	// Azure table names: 3-63 alphanumeric characters, starting with a letter.
	tableNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]{2,62}$`)
	guidRE      = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)
)

// gapHorizon is where the check of REFRESH_MARGIN against the schedule's longest gap starts.
var gapHorizon = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)

// Load reads the settings through getenv (os.Getenv in production). It returns warnings for
// settings that work but are likely mistakes (a provider that is shut down, a margin shorter
// than the gap between runs), each naming its setting. When any setting is missing or malformed
// it returns a *SettingsError listing all of them, and a zero Config.
func Load(getenv func(string) string) (Config, []string, error) {
	l := &loader{getenv: getenv}
	cfg := Config{
		CustomHandlerPort: l.port(SettingCustomHandlerPort, "", 1),
		Port:              l.port(SettingPort, defaultPort, 0),
		BindAddress:       l.bindAddress(),
		WorkerID:          l.get(SettingWorkerID),
	}
	cfg.PublicBaseURL = l.publicBaseURL(cfg.Port)
	cfg.Store = l.store()
	cfg.InviteKey = l.inviteKey()
	cfg.Connections = l.connections(cfg)
	cfg.Schedule, cfg.Margin = l.refresh(cfg.CustomHandlerPort != "")
	cfg.TokenTimeout, cfg.Lease = l.timing()
	cfg.Concurrency = l.concurrency()
	cfg.Notify = l.notify()
	cfg.HeartbeatURL = l.heartbeat()
	cfg.LogLevel = l.logLevel()
	cfg.LogFormat = l.logFormat()

	if len(l.problems) > 0 {
		return Config{}, l.warnings, &SettingsError{Problems: l.problems}
	}
	return cfg, l.warnings, nil
}

// loader collects problems and warnings while reading settings.
type loader struct {
	getenv   func(string) string
	problems []Problem
	warnings []string
}

func (l *loader) get(setting string) string { return strings.TrimSpace(l.getenv(setting)) }

func (l *loader) problem(setting, format string, a ...any) {
	l.problems = append(l.problems, Problem{Setting: setting, Message: fmt.Sprintf(format, a...)})
}

func (l *loader) warn(setting, format string, a ...any) {
	l.warnings = append(l.warnings, setting+": "+fmt.Sprintf(format, a...))
}

// quote returns value quoted for a message, or a stand-in when the setting is secret.
func quote(setting, value string) string {
	if isSecret(setting) {
		return "the value (not shown: it is secret)"
	}
	return strconv.Quote(value)
}

// port reads a TCP port number no lower than min; def when unset.
func (l *loader) port(setting, def string, min int) string {
	v := l.get(setting)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > 65535 || strings.TrimLeft(v, "0123456789") != "" {
		l.problem(setting, "%s is not a port number (%d-65535)", quote(setting, v), min)
		return def
	}
	return strconv.Itoa(n)
}

func (l *loader) bindAddress() string {
	v := l.get(SettingBindAddress)
	if v == "" {
		return defaultBindAddress
	}
	if net.ParseIP(v) == nil && !isHostName(v) {
		l.problem(SettingBindAddress, "%q is not an IP address or host name (e.g. 127.0.0.1, 0.0.0.0, ::1)", v)
	}
	return v
}

func (l *loader) publicBaseURL(port string) string {
	local := "http://localhost:" + port
	host := l.get(SettingWebsiteHostname)
	if host == "" {
		return local
	}
	h, p, err := net.SplitHostPort(host)
	if err != nil {
		h, p = host, ""
	}
	if !isHostName(h) || (p != "" && !isPort(p)) {
		l.problem(SettingWebsiteHostname, "%q is not a host name (want e.g. myapp.azurewebsites.net, without https://)", host)
		return local
	}
	if isLoopback(h) {
		// func start sets WEBSITE_HOSTNAME=localhost:<port> and serves plain http.
		return "http://" + strings.ToLower(host)
	}
	return "https://" + strings.ToLower(host)
}

func (l *loader) store() Store {
	s := Store{Table: defaultTable}
	if v := l.get(SettingEncryptionKeys); v != "" {
		keys, err := seal.Parse(SettingEncryptionKeys, v, nil)
		if err != nil {
			// The message starts with the setting's name and names key ids, never keys.
			l.problem(SettingEncryptionKeys, "%s", strings.TrimPrefix(strings.TrimPrefix(err.Error(), SettingEncryptionKeys), ": "))
		}
		s.Keys = keys
	}
	if t := l.get(SettingTable); t != "" {
		switch {
		case !tableNameRE.MatchString(t):
			l.problem(SettingTable, "%q is not an Azure table name (3-63 letters and digits, starting with a letter)", t)
		case strings.EqualFold(t, "tables"):
			l.problem(SettingTable, "%q is reserved by Azure Table Storage", t)
		default:
			s.Table = t
		}
	}

	endpoint, conn, webjobs := l.get(SettingStoreEndpoint), l.get(SettingStoreConnection), l.get(SettingWebJobsStorage)
	switch {
	case endpoint != "" && conn != "":
		l.problem(SettingStoreEndpoint, "set together with %s, so which to use is ambiguous: keep %s for "+
			"Microsoft Entra auth or %s for a key or SAS, not both", SettingStoreConnection, SettingStoreEndpoint, SettingStoreConnection)
	case endpoint != "":
		if msg := checkURL(endpoint, true); msg != "" {
			l.problem(SettingStoreEndpoint, "%s %s (e.g. https://<account>.table.core.windows.net)", showURL(endpoint), msg)
		} else if u, _ := url.Parse(endpoint); u.RawQuery != "" {
			l.problem(SettingStoreEndpoint, "has a query string: a SAS token belongs in %s", SettingStoreConnection)
		} else {
			s.Endpoint = endpoint
		}
		if id := l.get(SettingAzureClientID); id != "" {
			if !guidRE.MatchString(id) {
				l.problem(SettingAzureClientID, "%q is not a client ID (a GUID such as 00000000-0000-0000-0000-000000000000)", id)
			}
			s.ManagedIdentityClientID = id
		}
	case conn != "":
		s.ConnectionString = l.connectionString(SettingStoreConnection, conn)
	case webjobs != "":
		s.ConnectionString = l.connectionString(SettingWebJobsStorage, webjobs)
	default:
		hint := "https://<account>.table.core.windows.net"
		if account := l.get(SettingWebJobsStorage + "__accountName"); account != "" {
			// Identity-based host storage: the table can use the same account and identity.
			hint = "https://" + account + ".table.core.windows.net, the account of AzureWebJobsStorage__accountName"
		}
		l.problem(SettingWebJobsStorage, "missing, and so are %s and %s: set %s (%s, Microsoft Entra auth), "+
			"or %s or %s to a storage connection string (UseDevelopmentStorage=true for Azurite)",
			SettingStoreConnection, SettingStoreEndpoint, SettingStoreEndpoint, hint, SettingStoreConnection, SettingWebJobsStorage)
	}
	return s
}

func (l *loader) connectionString(setting, v string) string {
	if err := store.CheckConnectionString(v); err != nil {
		l.problem(setting, "%v; the value is not shown, as it holds a secret", err)
		return ""
	}
	return v
}

func (l *loader) connections(cfg Config) []ConnectionSettings {
	raw := l.get(SettingConnections)
	if raw == "" {
		l.problem(SettingConnections, "missing: list the connection names, comma-separated (e.g. strava,google)")
		return nil
	}
	var names []string
	bad := false
	seen := map[string]bool{}
	settingOf := map[string]string{} // setting prefix -> name, to catch names that map to the same settings
	for n := range strings.SplitSeq(raw, ",") {
		n = strings.TrimSpace(n)
		switch {
		case n == "":
			continue // a trailing comma is harmless
		case !connectionNameRE.MatchString(n):
			hint := ""
			if lower := strings.ToLower(n); connectionNameRE.MatchString(lower) {
				hint = fmt.Sprintf("; write %q", lower)
			}
			l.problem(SettingConnections, "%q is not a connection name: use lower-case letters, digits and '-'%s", n, hint)
			bad = true
			continue
		case seen[n]:
			l.problem(SettingConnections, "%q is listed twice", n)
			bad = true
			continue
		}
		prefix := ConnectionSetting(n, "")
		if other, ok := settingOf[prefix]; ok {
			l.problem(SettingConnections, "%q and %q would both be configured by %s* settings", other, n, prefix)
			bad = true
			continue
		}
		seen[n], settingOf[prefix] = true, n
		names = append(names, n)
	}
	if len(names) == 0 && !bad {
		l.problem(SettingConnections, "lists no connection names (e.g. strava,google)")
	}
	conns := make([]ConnectionSettings, 0, len(names))
	for _, n := range names {
		conns = append(conns, l.connection(cfg, n))
	}
	return conns
}

// connection reads the OAUTH_<NAME>_* settings of the connection called name.
func (l *loader) connection(cfg Config, name string) ConnectionSettings {
	setting := func(suffix string) string { return ConnectionSetting(name, suffix) }
	c := ConnectionSettings{Name: name}

	providerSetting := setting(suffixProvider)
	pname := strings.ToLower(l.get(providerSetting))
	custom := pname == provider.Custom
	switch p, ok := provider.Lookup(pname); {
	case pname == "":
		l.problem(providerSetting, "missing: one of %s", strings.Join(provider.Names(), ", "))
	case custom:
		c.Preset = provider.Preset{Name: provider.Custom, Title: "Custom provider", Dialect: provider.DialectRFC6749, ScopeSeparator: " "}
	case !ok:
		l.problem(providerSetting, "%q is not a known provider: use one of %s", pname, strings.Join(provider.Names(), ", "))
	default:
		c.Preset = p
		if p.Gone != "" {
			l.warn(providerSetting, "%s: %s", pname, p.Gone)
		}
	}

	c.Preset, c.Region = l.region(setting(suffixRegion), pname, c.Preset)
	c.Many = l.accounts(setting(suffixAccounts))

	c.ClientID = l.required(setting(suffixClientID))
	c.ClientSecret = l.required(setting(suffixClientSecret))

	c.Scopes = fullScopes(c.Preset, provider.SplitScopes(l.get(setting(suffixScopes))))
	if len(c.Scopes) == 0 && len(c.Preset.RequiredScopes) == 0 {
		l.warn(setting(suffixScopes), "empty: the provider's default scopes apply, and some providers (Google) refuse an authorization request without scopes")
	}

	c.RedirectURL = l.redirectURL(cfg, name, setting(suffixRedirectURL))
	l.checkLoopback(setting(suffixRedirectURL), pname, c.Preset, c.RedirectURL)

	need := func(suffix string) {
		if custom && l.get(setting(suffix)) == "" {
			l.problem(setting(suffix), "missing (required for a custom provider)")
		}
	}
	for _, suffix := range []string{suffixAuthURL, suffixTokenURL} {
		need(suffix)
		if v := l.get(setting(suffix)); v != "" {
			if msg := checkURL(v, true); msg != "" {
				l.problem(setting(suffix), "%s %s", showURL(v), msg)
			} else if suffix == suffixAuthURL {
				c.Preset.AuthURL = v
			} else {
				c.Preset.TokenURL = v
			}
		}
	}

	need(suffixAuthStyle)
	if v := l.get(setting(suffixAuthStyle)); v != "" {
		switch strings.ToLower(v) {
		case "header":
			c.Preset.AuthStyle = oauth2.AuthStyleInHeader
		case "params":
			c.Preset.AuthStyle = oauth2.AuthStyleInParams
		default:
			l.problem(setting(suffixAuthStyle), "%q is not header (HTTP Basic) or params (client_id and client_secret in the form)", v)
		}
	}

	if v := l.get(setting(suffixRevokeURL)); v != "" {
		if msg := checkURL(v, true); msg != "" {
			l.problem(setting(suffixRevokeURL), "%s %s", showURL(v), msg)
		} else {
			if c.Preset.Revoke == provider.RevokeNone {
				c.Preset.Revoke = provider.RevokeRFC7009
			}
			c.Preset.RevokeURL = v
		}
	}

	if v := l.get(setting(suffixPKCE)); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			l.problem(setting(suffixPKCE), "%q is not true or false", v)
		}
		c.Preset.PKCE = b
	}

	if v := l.get(setting(suffixScopeSeparator)); v != "" {
		switch strings.ToLower(v) {
		case "space":
			c.Preset.ScopeSeparator = " "
		case "comma":
			c.Preset.ScopeSeparator = ","
		default:
			l.problem(setting(suffixScopeSeparator), "%q is not space or comma", v)
		}
	}
	return c
}

// region reads the region of a preset with regions (dexcom) and applies its endpoints, before
// AUTH_URL and TOKEN_URL can override them. A region for any other provider is a mistake.
func (l *loader) region(setting, pname string, p provider.Preset) (provider.Preset, string) {
	v := strings.ToLower(l.get(setting))
	names := p.RegionNames()
	switch {
	case v == "" && len(names) == 0:
		return p, ""
	case v == "":
		v = p.DefaultRegion
	case len(names) == 0:
		if pname == "" || (pname != provider.Custom && p.Name == "") {
			return p, "" // the provider setting is already reported
		}
		l.problem(setting, "%q is set, but the %s provider has no regions: remove this setting", v, pname)
		return p, ""
	}
	rp, ok := p.WithRegion(v)
	if !ok {
		l.problem(setting, "%q is not a region of %s: use one of %s", v, pname, strings.Join(names, ", "))
		return p, ""
	}
	return rp, v
}

// required reads a setting that must be set and is not a placeholder from the sample file.
func (l *loader) required(setting string) string {
	v := l.get(setting)
	switch {
	case v == "":
		l.problem(setting, "missing")
	case strings.HasPrefix(v, "<") && strings.HasSuffix(v, ">"):
		l.problem(setting, "still a <placeholder> from local.settings.json.sample: put in the real value")
	}
	return v
}

func (l *loader) redirectURL(cfg Config, name, setting string) string {
	v := l.get(setting)
	if v == "" {
		if cfg.PublicBaseURL == "http://localhost:0" {
			l.warn(setting, "defaults to a URL with port 0, which no browser reaches: set it, or set %s", SettingPort)
		}
		return cfg.PublicBaseURL + "/api/callback/" + name
	}
	if msg := checkURL(v, false); msg != "" {
		l.problem(setting, "%s %s", showURL(v), msg)
		return ""
	}
	u, _ := url.Parse(v)
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		l.warn(setting, "%s uses http: providers accept http redirect URLs only for localhost", showURL(v))
	}
	if !strings.HasSuffix(strings.TrimSuffix(u.Path, "/"), "/callback/"+name) {
		l.warn(setting, "%s does not end in /callback/%s, where freshtoken takes the redirect for this connection", showURL(v), name)
	}
	return v
}

// checkLoopback warns when the redirect URL is on this machine and the provider will not send
// the browser back there.
func (l *loader) checkLoopback(setting, pname string, p provider.Preset, redirect string) {
	u, err := url.Parse(redirect)
	if err != nil || redirect == "" || !isLoopback(u.Hostname()) {
		return
	}
	host := strings.ToLower(u.Hostname())
	switch p.Loopback {
	case provider.LoopbackIPOnly:
		if net.ParseIP(host) == nil {
			ip := *u
			ip.Host = net.JoinHostPort("127.0.0.1", u.Port())
			if u.Port() == "" {
				ip.Host = "127.0.0.1"
			}
			l.warn(setting, "%s refuses %s in redirect URLs: set this to %s, register that URL with %s, and open the authorize URL on 127.0.0.1 too (the sign-in cookie belongs to one host name)",
				pname, host, showURL(ip.String()), pname)
		}
	case provider.LoopbackRefused:
		l.warn(setting, "%s refuses localhost and IP addresses as redirect URLs: use the deployed app's https URL (or an https tunnel to this machine)", pname)
	}
}

// refresh reads REFRESH_SCHEDULE and REFRESH_MARGIN. underHost says the Functions host runs us.
func (l *loader) refresh(underHost bool) (schedule.Schedule, time.Duration) {
	expr := l.get(SettingSchedule)
	if expr == "" {
		expr = defaultSchedule
		if underHost {
			l.warn(SettingSchedule, "not set: the Functions host cannot resolve %%%s%% in the timer's function.json, "+
				"so the timer does not run; set it (e.g. %s)", SettingSchedule, defaultSchedule)
		}
	}
	s, err := schedule.Parse(expr)
	if err != nil {
		l.problem(SettingSchedule, "%q is not an NCRONTAB schedule: %v", expr, err)
	}

	// Unset, the margin is 0: the handler then uses the adaptive timing (refresh.DefaultTiming).
	var margin time.Duration
	if v := l.get(SettingMargin); v != "" {
		d, err := time.ParseDuration(v)
		switch {
		case err != nil:
			l.problem(SettingMargin, "%q is not a Go duration (e.g. 30m, 2h)", v)
		case d <= 0:
			l.problem(SettingMargin, "%q must be more than 0", v)
		case d >= 24*time.Hour:
			l.problem(SettingMargin, "%q must be less than 24h", v)
		default:
			margin = d
		}
	}
	if err == nil && margin > 0 {
		if gap := s.LongestGap(gapHorizon, 2000); gap > margin {
			l.warn(SettingMargin, "%v is shorter than the longest gap between runs of %s (%v): "+
				"a token can expire before the run that would refresh it", margin, SettingSchedule, gap)
		}
	}
	return s, margin
}

// notify reads NOTIFY_URLS, NOTIFY_AFTER and NOTIFY_REMINDER. A bad URL is named by its
// position, never quoted: these URLs carry credentials.
func (l *loader) notify() Notify {
	n := Notify{
		After:    l.duration(SettingNotifyAfter, defaultNotifyAfter, time.Minute, 30*24*time.Hour),
		Reminder: defaultNotifyReminder,
	}
	if v := l.get(SettingNotifyReminder); v == "0" {
		n.Reminder = 0
	} else {
		n.Reminder = l.duration(SettingNotifyReminder, defaultNotifyReminder, time.Minute, 365*24*time.Hour)
	}
	if v := l.get(SettingNotifyURLs); v != "" {
		urls, err := notify.Parse(SettingNotifyURLs, v)
		if err != nil {
			l.problem(SettingNotifyURLs, "%s", strings.TrimPrefix(strings.TrimPrefix(err.Error(), SettingNotifyURLs), ": "))
		}
		n.URLs = urls
	}
	return n
}

// heartbeat reads HEARTBEAT_URL, never quoting it.
func (l *loader) heartbeat() string {
	v := l.get(SettingHeartbeatURL)
	if err := heartbeat.Check(SettingHeartbeatURL, v); err != nil {
		l.problem(SettingHeartbeatURL, "%s", strings.TrimPrefix(strings.TrimPrefix(err.Error(), SettingHeartbeatURL), ": "))
		return ""
	}
	return v
}

func (l *loader) logLevel() zerolog.Level {
	v := strings.ToLower(l.get(SettingLogLevel))
	if v == "" {
		return zerolog.InfoLevel
	}
	names := []string{"trace", "debug", "info", "warn", "error", "fatal", "panic", "disabled"}
	lvl, err := zerolog.ParseLevel(v)
	if err != nil || !slices.Contains(names, v) {
		l.problem(SettingLogLevel, "%q is not a level: use %s or %s", v, strings.Join(names[:len(names)-1], ", "), names[len(names)-1])
		return zerolog.InfoLevel
	}
	return lvl
}

func (l *loader) logFormat() string {
	v := strings.ToLower(l.get(SettingLogFormat))
	switch v {
	case "":
		return defaultLogFormat
	case "json", "console":
		return v
	}
	l.problem(SettingLogFormat, "%q is not json or console", v)
	return defaultLogFormat
}

// fullScopes completes scopes written short for p (Google's googlehealth.sleep.readonly),
// dropping repeats that the completion makes.
func fullScopes(p provider.Preset, scopes []string) []string {
	var out []string
	for _, s := range scopes {
		if s = p.FullScope(s); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// inviteKey reads INVITE_SIGNING_KEY; its messages never show the value.
func (l *loader) inviteKey() []byte {
	v := l.get(SettingInviteKey)
	if v == "" {
		return nil
	}
	key, err := invite.ParseKey(v)
	if err != nil {
		l.problem(SettingInviteKey, "%v; the value is not shown, as it is a secret", err)
		return nil
	}
	return key
}
