// Package refresh runs one RefreshTimer pass: it reads the connections and the accounts that may
// need it with a few paged queries (see Scanner for which rows an idle pass reads), refreshes
// those whose access token is due, at most Concurrency at once and within each provider app's
// rate limits, and stores each new pair with the status beside it. A lease written conditionally on the Status row's ETag before the provider is called makes
// sure two passes (two processes, a manual run beside the schedule, a retry) never send the same
// refresh token twice.
//
// # States and transitions
//
// A connection's state is its Status row (State, the lease, InFlight) plus, in one process, a
// pair held in memory. The states:
//
//	ok             State ok, no lease: the stored pair is good
//	retrying       State retrying: a transient failure; NextAttempt says when to try again
//	needs_consent  State needs_consent: only a new consent (the Callback) leaves it
//	leased         LeaseOwner set and LeaseUntil ahead: one pass is refreshing it now
//	in flight      InFlight (the fingerprint of the stored refresh token) set and the lease
//	               expired: a pass sent the refresh token and never stored the answer
//	pending pair   the provider issued a pair this process could not store (held in memory)
//
// Each transition below names the rows written: "Status" is the Status row alone, written
// conditionally on its ETag; "pair" is the AccessToken, RefreshToken and Status rows in one
// entity-group transaction conditional on all three ETags; "-" is nothing. Tests named
// TestTransition<From><Event> in refresh_test.go cover each line.
//
//	from           event                                    to             rows
//	ok             not due (expires after the margin)       ok             -
//	ok, retrying   due, lease won                           leased         Status: LeaseOwner, LeaseUntil, InFlight, InFlightSince
//	any            due, lease lost (412/409, or held)       unchanged      -    (result "in progress elsewhere")
//	leased         answer with a new pair                   ok             pair: new tokens, State ok, lease and InFlight cleared, Generation+1
//	leased         revoked or gone (invalid_grant, 410)     needs_consent  Status: failure, FailingSince, lease and InFlight cleared
//	leased         transient (429, 5xx, never connected)    retrying       Status: NextAttempt = backoff, at least Retry-After; lease and InFlight cleared
//	leased         ambiguous, inside the repeat window      leased         -    then the identical refresh once more
//	leased         ambiguous repeat, window still open      retrying       Status: NextAttempt now; InFlight kept, so the next pass repeats
//	leased         ambiguous, no window or window closed    needs_consent  Status: "lost in flight"; InFlight kept; the token is never resent
//	leased         answer, commit failing until lease ends  pending pair   -    (logged; the pass fails)
//	leased         answer, a newer pair stored meanwhile    unchanged      -    (ours is dropped)
//	pending pair   next pass of this process                ok             pair: the held one, unless a newer pair is stored
//	leased         crash (the process dies)                 in flight      -
//	in flight      lease expiry, inside the repeat window   leased         Status: a new lease; then the identical refresh
//	in flight      lease expiry, window closed or none      needs_consent  Status: "never stored"; InFlight kept
//	retrying       not yet NextAttempt                      retrying       -
//	needs_consent  any pass                                 needs_consent  -    (the pass fails with the Authorize URL)
//	any            consent (Callback)                       ok             all three rows replaced (store.SaveConsent)
package refresh
