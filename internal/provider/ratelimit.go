package provider

import "time"

// RateLimit is a published limit on the requests one provider app (one client id) may send.
type RateLimit struct {
	Requests int
	Per      time.Duration
	// PerUser says the limit counts one user's requests (each account's), not the app's.
	PerUser bool
	// Source is where the number is published.
	Source string
}

// rateLimits are the published limits per preset, as of autumn 2026 (shared/PROVIDERS.md).
// Providers that publish none (Google, Polar) or no number (Spotify's rolling 30-second
// window, Oura) have none here: their 429 with Retry-After is honoured instead.
var rateLimits = map[string][]RateLimit{
	// Strava: "200 requests every 15 minutes, with up to 2,000 requests per day" per
	// application; new apps start lower (the "Standard" tier since June 2026), which their
	// 429s then show. Source: developers.strava.com/docs/rate-limits.
	"strava": {
		{Requests: 200, Per: 15 * time.Minute, Source: "https://developers.strava.com/docs/rate-limits/"},
		{Requests: 2000, Per: 24 * time.Hour, Source: "https://developers.strava.com/docs/rate-limits/"},
	},
	// WHOOP: 100 requests a minute and 10,000 a day per app. Source:
	// developer.whoop.com/docs/developing/rate-limiting.
	"whoop": {
		{Requests: 100, Per: time.Minute, Source: "https://developer.whoop.com/docs/developing/rate-limiting"},
		{Requests: 10000, Per: 24 * time.Hour, Source: "https://developer.whoop.com/docs/developing/rate-limiting"},
	},
	// Fitbit Web API: 150 requests an hour per user. Source:
	// dev.fitbit.com/build/reference/web-api/developer-guide/application-design/#Rate-Limits.
	"fitbit": {
		{Requests: 150, Per: time.Hour, PerUser: true, Source: "https://dev.fitbit.com/build/reference/web-api/developer-guide/application-design/#Rate-Limits"},
	},
	// Withings: 120 requests a minute per app. Source: developer.withings.com (API rate limits).
	"withings": {
		{Requests: 120, Per: time.Minute, Source: "https://developer.withings.com/developer-guide/v3/get-access/data-api/"},
	},
	// Dexcom: 60,000 requests an hour per app. Source: developer.dexcom.com (rate limiting).
	"dexcom": {
		{Requests: 60000, Per: time.Hour, Source: "https://developer.dexcom.com/docs/dexcom/rate-limiting"},
	},
}

// RateLimits are the published limits of p's provider: app-wide ones first. nil when none is
// published. The caller may not change the slice.
func (p Preset) RateLimits() []RateLimit { return rateLimits[p.Name] }

// AppRateLimits are the limits that count every request of the app, PerUser ones left out: a
// refresher sends at most one request per account and pass, far under any per-user limit.
func (p Preset) AppRateLimits() []RateLimit {
	var out []RateLimit
	for _, l := range rateLimits[p.Name] {
		if !l.PerUser {
			out = append(out, l)
		}
	}
	return out
}
