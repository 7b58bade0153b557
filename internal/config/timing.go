package config

import "time"

// timing reads TOKEN_REQUEST_TIMEOUT and REFRESH_LEASE. The lease must outlive a token request,
// an identical repeat of it, and the commit that follows: more than twice the request timeout.
func (l *loader) timing() (timeout, lease time.Duration) {
	timeout = l.duration(SettingTokenTimeout, defaultTokenTimeout, time.Second, 5*time.Minute)
	lease = l.duration(SettingLease, defaultLease, 2*time.Second, time.Hour)
	if lease <= 2*timeout {
		l.problem(SettingLease, "%v must be more than twice %s (%v): the lease must outlive a "+
			"token request, its repeat and the commit", lease, SettingTokenTimeout, timeout)
	}
	return timeout, lease
}

// duration reads a Go duration setting within [min, max], or def when it is unset.
func (l *loader) duration(setting string, def, min, max time.Duration) time.Duration {
	v := l.get(setting)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	switch {
	case err != nil:
		l.problem(setting, "%q is not a Go duration (e.g. 30s, 2m)", v)
	case d < min || d > max:
		l.problem(setting, "%q must be between %v and %v", v, min, max)
	default:
		return d
	}
	return def
}
