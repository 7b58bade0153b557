package refresh

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/freshtoken/freshtoken/internal/connection"
	"github.com/freshtoken/freshtoken/internal/human"
	"github.com/freshtoken/freshtoken/internal/redact"
	"github.com/freshtoken/freshtoken/internal/store"
	"github.com/freshtoken/freshtoken/internal/tokenclient"
	"github.com/rs/zerolog"
)

// Store is the token table as a pass uses it.
type Store interface {
	List(ctx context.Context) (map[string]*store.Record, error)
	Get(ctx context.Context, name string) (*store.Record, error)
	Lease(ctx context.Context, c *store.Record, st store.Status) error
	Commit(ctx context.Context, c *store.Record, t store.Tokens, st store.Status) error
	SetStatus(ctx context.Context, c *store.Record, st store.Status) error
}

// Defaults for the zero values of Options (REFRESH_MARGIN and REFRESH_LEASE unset).
const (
	DefaultMargin      = 30 * time.Minute
	DefaultLease       = 3 * time.Minute
	DefaultReserve     = 75 * time.Second
	DefaultConcurrency = 24
)

// Options configure a Refresher. Zero values take the defaults above.
type Options struct {
	Store       Store
	Connections []*connection.Connection
	// Margin: a token is due when it expires within it. Ignored when Timing is set.
	Margin time.Duration
	// Timing decides when a token is due and when a failed refresh is retried (policy.go).
	// Zero: FixedTiming(Margin).
	Timing Timing
	// LeaseDuration bounds one connection's refresh, provider call and commit included; it must
	// outlive the slowest of them.
	LeaseDuration time.Duration
	// Owner names this process in leases (host name, worker id, pid).
	Owner string
	Now   func() time.Time
	Log   zerolog.Logger
	// Concurrency bounds connections refreshed at once. Default DefaultConcurrency.
	Concurrency int
	// Jitter returns a factor in [0.8, 1.2) for backoff; default random.
	Jitter func() float64
	// Reserve is the time a refresh needs to finish (its token request, a repeat, the
	// commit): the pass starts no refresh later than Reserve before its context's deadline,
	// so that every lease it takes is committed or released in time. Default DefaultReserve.
	Reserve time.Duration
}

// Refresher runs passes. It is safe for concurrent use: concurrent passes in one process
// exclude each other through the same table lease as passes in different processes.
type Refresher struct {
	o Options

	mu      sync.Mutex
	seq     int
	pending map[string]pendingPair // pairs the provider issued that could not be stored yet
	left    map[string]bool        // due partitions the last pass left: first in the next

	limits *limiter
}

// pendingPair is a token pair held in memory because storing it failed.
type pendingPair struct {
	conn   *store.Record // as leased: its ETags guard the later write
	tokens store.Tokens
	status store.Status
	sent   string // fingerprint of the refresh token that was exchanged for it
}

// New returns a Refresher with defaults applied.
func New(o Options) *Refresher {
	if o.Margin <= 0 {
		o.Margin = DefaultMargin
	}
	if o.Timing == (Timing{}) {
		o.Timing = FixedTiming(o.Margin)
	}
	o.Timing = o.Timing.withDefaults()
	if o.LeaseDuration <= 0 {
		o.LeaseDuration = DefaultLease
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Jitter == nil {
		o.Jitter = func() float64 { return 0.8 + 0.4*rand.Float64() }
	}
	if o.Reserve <= 0 {
		o.Reserve = DefaultReserve
	}
	return &Refresher{o: o, pending: map[string]pendingPair{}, left: map[string]bool{}, limits: newLimiter(o.Now)}
}

// Outcome is what a pass did with one connection.
type Outcome string

const (
	Refreshed    Outcome = "refreshed"
	NotDue       Outcome = "not due"
	NotConnected Outcome = "not connected"
	InProgress   Outcome = "in progress elsewhere"
	Failed       Outcome = "failed"
	// Deferred: due, but not started in this pass (the pass was ending, or the provider
	// app's rate limit held it); the next pass takes it first.
	Deferred Outcome = "left for the next pass"
)

// Class says why a refresh failed. It is stored as Status.LastFailureClass.
type Class string

const (
	// ClassRevoked: the provider refused the grant or the client; a person must consent again.
	ClassRevoked = Class(tokenclient.Revoked)
	// ClassTransient: the provider did not act; the stored pair is intact and is retried.
	ClassTransient = Class(tokenclient.Transient)
	// ClassAmbiguous: the provider may have acted and its answer is lost.
	ClassAmbiguous = Class(tokenclient.Ambiguous)
	// ClassStorage: the table could not be read or written.
	ClassStorage Class = "storage"
	// ClassGone: the provider's API is shut down (HTTP 410 from a preset that says so); a
	// person must move to its successor.
	ClassGone Class = "gone"
	// ClassSecret: a sealed secret in the table could not be opened (a key id missing from
	// TOKEN_ENCRYPTION_KEYS, or a value that fails authentication). Nothing is sent or written.
	ClassSecret Class = "secret"
)

// classOf is the class of a token client error.
func classOf(err error) Class { return Class(tokenclient.ClassOf(err)) }

// DeadlineWarning says a refresh token's known deadline is near or has passed: a person must
// consent again before it (Google's 7 days in Testing status, Spotify's 6 months, Withings' year).
type DeadlineWarning struct {
	Deadline time.Time
	// Left is the time to the deadline when it was checked; zero or less once it has passed.
	Left time.Duration
}

// deadlineNotice is how far ahead a refresh-token deadline is warned of.
const deadlineNotice = 14 * 24 * time.Hour

// deadlineWarning is the warning for a refresh token whose known deadline is deadline, or nil
// when none is known or it is more than two weeks away.
func deadlineWarning(deadline, now time.Time) *DeadlineWarning {
	if deadline.IsZero() || deadline.Sub(now) >= deadlineNotice {
		return nil
	}
	return &DeadlineWarning{Deadline: deadline, Left: deadline.Sub(now)}
}

// String is the warning for people, as stored in Status.Warning.
func (w *DeadlineWarning) String() string {
	if w == nil {
		return ""
	}
	at := w.Deadline.UTC().Format(time.RFC3339)
	if w.Left <= 0 {
		return "the refresh token passed its known deadline " + at + ": consent again"
	}
	return "the refresh token expires " + at + " (in " + human.Duration(w.Left) + "): consent again before then"
}

// Result is one connection's line in a pass.
type Result struct {
	Connection string
	Outcome    Outcome
	// Detail says why, in words safe to log (no secret).
	Detail string
	// Expiry is the access token's expiry after the pass (zero when unknown).
	Expiry time.Time
	// Class is the failure class when Outcome is Failed.
	Class Class
	// Warning is set when the refresh token's known deadline is near or passed.
	Warning *DeadlineWarning
}

// Line renders r for the invocation's Logs.
func (r Result) Line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", r.Connection, r.Outcome)
	if r.Class != "" {
		fmt.Fprintf(&b, " (%s)", r.Class)
	}
	if r.Detail != "" {
		fmt.Fprintf(&b, ": %s", r.Detail)
	}
	if r.Warning != nil {
		sep := ": "
		if r.Detail != "" {
			sep = "; "
		}
		b.WriteString(sep + r.Warning.String())
	}
	if !r.Expiry.IsZero() {
		fmt.Fprintf(&b, "; access token expires %s", r.Expiry.UTC().Format(time.RFC3339))
	}
	return b.String()
}

func (r *Refresher) nextOwner() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	return fmt.Sprintf("%s#%d", r.o.Owner, r.seq)
}

// one decides and acts for one connection. sc is the connection as listed (nil: no rows).
func (r *Refresher) one(ctx context.Context, owner string, c *connection.Connection, sc *store.Record) Result {
	now := r.o.Now()
	res := Result{Connection: c.Name}
	if sc == nil || (!sc.HasRefresh && !sc.HasAccess) {
		res.Outcome = NotConnected
		res.Detail = "open " + c.AuthorizeURL + " to connect"
		return res
	}
	res.Expiry = sc.Tokens.ExpiresAt
	if sc.SecretErr != nil {
		// The ciphertext is never sent as a token, and the rows stay as they are for the key
		// that opens them.
		return r.fail(res, ClassSecret, redact.String(sc.SecretErr.Error(), 300)+
			"; nothing was sent to the provider and the rows are unchanged: check TOKEN_ENCRYPTION_KEYS")
	}
	if c.Preset.NoRefreshToken {
		res.Outcome = NotDue
		res.Detail = "the provider issues long-lived access tokens and no refresh token"
		return res
	}
	st := sc.Status
	if st.State == store.StateNeedsConsent {
		class := Class(st.LastFailureClass)
		if class == "" {
			class = ClassRevoked
		}
		return r.fail(res, class, "needs consent: "+st.LastFailureMessage+"; open "+c.AuthorizeURL+" to connect again")
	}
	if sc.Tokens.RefreshToken == "" {
		return r.fail(res, ClassRevoked, "no refresh token is stored; open "+c.AuthorizeURL+" to connect again")
	}
	if st.LeaseOwner != "" && st.LeaseUntil.After(now) {
		res.Outcome = InProgress
		res.Detail = "another pass holds the lease until " + st.LeaseUntil.UTC().Format(time.RFC3339)
		return res
	}
	if st.InFlight != "" && st.InFlight == store.Fingerprint(sc.Tokens.RefreshToken) {
		// A pass took the lease, may have sent this refresh token, and never stored an answer.
		return r.recoverInFlight(ctx, owner, c, sc, res)
	}
	if !r.due(c, sc, now) {
		res.Outcome = NotDue
		res.Warning = deadlineWarning(sc.Tokens.RefreshExpiresAt, now)
		return res
	}
	if st.State == store.StateRetrying && st.NextAttempt.After(now) {
		return r.fail(res, Class(st.LastFailureClass), "retrying after "+st.LastFailureMessage+"; next attempt after "+
			st.NextAttempt.UTC().Format(time.RFC3339))
	}
	return r.refresh(ctx, owner, c, sc, res, false)
}

// due says whether the stored access token is due by the Timing. A token without an expiry
// never is; a pair without an access token row always is.
func (r *Refresher) due(c *connection.Connection, sc *store.Record, now time.Time) bool {
	if !sc.HasAccess || sc.Tokens.AccessToken == "" {
		return true
	}
	stored := sc.Status.LastSuccess
	if sc.Status.ConnectedAt.After(stored) {
		stored = sc.Status.ConnectedAt
	}
	return r.o.Timing.Due(now, TokenAge{Expiry: sc.Tokens.ExpiresAt, Stored: stored}, c.Preset)
}

// refresh leases the connection, sends its refresh token once and stores the answer. repeat
// says this is a deliberate identical repeat of an earlier, unanswered refresh.
func (r *Refresher) refresh(ctx context.Context, owner string, c *connection.Connection, sc *store.Record, res Result, repeat bool) Result {
	if !repeat {
		if err := r.admit(ctx, c.App(), c.Preset); err != nil {
			res.Outcome = Deferred
			res.Detail = "due, not started before the pass's end or within the provider's rate limit"
			return res
		}
	}
	now := r.o.Now()
	sent := sc.Tokens.RefreshToken
	lease := sc.Status
	lease.LeaseOwner = owner
	lease.LeaseUntil = now.Add(r.o.LeaseDuration)
	lease.InFlight = store.Fingerprint(sent)
	if !repeat || lease.InFlightSince.IsZero() {
		lease.InFlightSince = now
	}
	if err := r.o.Store.Lease(ctx, sc, lease); err != nil {
		// A lease write can be applied and its answer lost (the store's retry then meets its
		// own write as a conflict): only a re-read tells whose lease is in the table.
		fresh, ours := r.ownLease(ctx, sc.Name, owner, lease.InFlight)
		switch {
		case ours:
			sc = fresh
		case errors.Is(err, store.ErrConflict):
			res.Outcome = InProgress
			res.Detail = "another pass took the lease first"
			return res
		default:
			return r.fail(res, ClassStorage, "could not take the lease: "+redact.String(err.Error(), 300))
		}
	}
	// Everything under the lease must finish before it expires, or another pass may take over.
	// The deadline is a duration from now on the wall clock: contexts run on it, not on o.Now.
	lctx, cancel := context.WithTimeout(ctx, r.o.LeaseDuration-r.o.LeaseDuration/10)
	defer cancel()

	tok, err := c.Client.Refresh(lctx, sent)
	if err != nil {
		// Recording the failure is a conditional write, safe after the lease's deadline: a
		// provider call that used up the lease's time must still clear InFlight.
		return r.failed(ctx, owner, c, sc, res, err, repeat)
	}
	tokens, status := r.success(sc, c, tok)
	if err := r.commit(lctx, sc, tokens, status); err != nil {
		if errors.Is(err, errSuperseded) {
			res.Outcome = InProgress
			res.Detail = "a newer pair was stored while this refresh ran; this pass's pair was dropped"
			return res
		}
		return r.fail(res, ClassStorage, err.Error())
	}
	res.Outcome = Refreshed
	res.Expiry = tokens.ExpiresAt
	if !tok.Rotated {
		res.Detail = "the provider kept the refresh token"
	}
	if repeat {
		res.Detail = strings.TrimPrefix(res.Detail+"; recovered an unanswered refresh by an identical repeat", "; ")
	}
	res.Warning = deadlineWarning(tokens.RefreshExpiresAt, r.o.Now())
	return res
}

// success builds the rows to store after a successful refresh.
func (r *Refresher) success(sc *store.Record, c *connection.Connection, tok *tokenclient.Token) (store.Tokens, store.Status) {
	now := r.o.Now()
	t := connection.Tokens(&sc.Tokens, tok)
	st := sc.Status
	st.State = store.StateOK
	st.Provider = c.Preset.Name
	if tok.AccountID != "" {
		st.AccountID = tok.AccountID
	}
	st.LastSuccess = now
	st.ConsecutiveFailures = 0
	st.FailingSince = time.Time{}
	st.NextAttempt = time.Time{}
	st.LeaseOwner, st.LeaseUntil = "", time.Time{}
	st.InFlight, st.InFlightSince = "", time.Time{}
	st.Generation++
	st.Warning = deadlineWarning(t.RefreshExpiresAt, now).String()
	return t, st
}

// failed records a failed refresh according to its class.
func (r *Refresher) failed(ctx context.Context, owner string, c *connection.Connection, sc *store.Record, res Result, err error, repeated bool) Result {
	now := r.o.Now()
	class := classOf(err)
	msg := redact.String(err.Error(), 300)
	var te *tokenclient.Error
	errors.As(err, &te)

	st := sc.Status
	st.LastFailure = now
	if te != nil && te.Gone != "" {
		class = ClassGone
	}
	st.LastFailureClass = string(class)
	if st.ConsecutiveFailures == 0 || st.FailingSince.IsZero() {
		st.FailingSince = now // the streak starts
	}
	st.ConsecutiveFailures++
	st.LeaseOwner, st.LeaseUntil = "", time.Time{}

	switch class {
	case ClassRevoked, ClassGone:
		st.State = store.StateNeedsConsent
		st.InFlight, st.InFlightSince = "", time.Time{}
		st.LastFailureMessage = msg
		r.record(ctx, sc, st, c.Name)
		if te != nil && te.Gone != "" {
			// The error text already carries the migration message.
			return r.fail(res, class, msg)
		}
		hint := "open " + c.AuthorizeURL + " to connect again"
		if c.Preset.ReconnectHint != "" {
			hint += " (" + c.Preset.ReconnectHint + ")"
		}
		return r.fail(res, class, "the provider refused the refresh token: "+msg+"; needs consent: "+hint)

	case ClassAmbiguous:
		// The provider answers a repeat with the same pair only within its window of the first send.
		window := r.o.Timing.RepeatWindow(c.Preset)
		windowEnds := st.InFlightSince.Add(window)
		inWindow := window > 0 && now.Before(windowEnds)
		if inWindow && !repeated {
			return r.repeat(ctx, owner, c, sc, res, msg)
		}
		if inWindow {
			// The repeat went unanswered too. While the window lasts, InFlight stays set so
			// that the next pass repeats again rather than giving up on the chain.
			st.State = store.StateRetrying
			st.NextAttempt = now
			st.LastFailureMessage = "a refresh and its repeat went unanswered (" + msg + "); the provider answers an identical repeat until " +
				windowEnds.UTC().Format(time.RFC3339) + ", so the next pass repeats it"
			r.record(ctx, sc, st, c.Name)
			return r.fail(res, class, st.LastFailureMessage)
		}
		// The provider may have rotated and its answer is lost. Resending the old refresh
		// token could make it revoke the whole grant, so the connection waits for a person.
		st.State = store.StateNeedsConsent
		st.LastFailureMessage = "a refresh was lost in flight (" + msg + "); the provider may have rotated the refresh token, so it is not resent"
		r.record(ctx, sc, st, c.Name)
		return r.fail(res, class, st.LastFailureMessage+"; consent may be needed: if the next check still fails, open "+c.AuthorizeURL)

	default:
		st.State = store.StateRetrying
		if !repeated {
			// The provider did not act on this request, and no earlier one is in doubt.
			st.InFlight, st.InFlightSince = "", time.Time{}
		}
		var retryAfter time.Duration
		if te != nil {
			retryAfter = te.RetryAfter
		}
		if te != nil && te.StatusCode == http.StatusTooManyRequests {
			// The limit is the app's: hold every account of it, not just this one.
			r.limits.pause(c.App(), now.Add(max(te.RetryAfter, defaultPause)))
		}
		st.NextAttempt = r.o.Timing.NextAttempt(now, st.ConsecutiveFailures, retryAfter, sc.Tokens.ExpiresAt, r.o.Jitter())
		st.LastFailureMessage = msg
		r.record(ctx, sc, st, c.Name)
		return r.fail(res, class, msg+"; the stored pair is intact; next attempt after "+st.NextAttempt.UTC().Format(time.RFC3339))
	}
}

// repeat re-reads the connection and, when nobody stored a newer pair meanwhile, sends the
// identical refresh again: the preset says the provider answers a repeat within its window
// with the same new pair.
func (r *Refresher) repeat(ctx context.Context, owner string, c *connection.Connection, sc *store.Record, res Result, why string) Result {
	fresh, err := r.o.Store.Get(ctx, c.Name)
	if err == nil && fresh.SecretErr != nil {
		err = fresh.SecretErr
	}
	if err != nil {
		return r.fail(res, ClassAmbiguous, "no answer to the refresh ("+why+") and the table could not be re-read: "+redact.String(err.Error(), 200))
	}
	if fresh.Tokens.RefreshToken != sc.Tokens.RefreshToken {
		res.Outcome = InProgress
		res.Detail = "another pass stored a newer pair"
		res.Expiry = fresh.Tokens.ExpiresAt
		return res
	}
	if fresh.Status.LeaseOwner != owner {
		res.Outcome = InProgress
		res.Detail = "the lease was taken over"
		return res
	}
	r.o.Log.Warn().Str("connection", c.Name).Str("reason", why).Msg("no answer to a refresh; repeating it once, as the provider allows")
	return r.refresh(ctx, owner, c, fresh, res, true)
}

// ownLease re-reads name after a failed lease write and says whether the lease in the table is
// this pass's own (owner and in-flight fingerprint match), returning the connection as read.
func (r *Refresher) ownLease(ctx context.Context, name, owner, inFlight string) (*store.Record, bool) {
	fresh, err := r.o.Store.Get(ctx, name)
	if err != nil || fresh.SecretErr != nil || fresh.Status.LeaseOwner != owner || fresh.Status.InFlight != inFlight {
		return nil, false
	}
	return fresh, true
}

// recoverInFlight handles a connection whose previous lease expired with a refresh in flight.
func (r *Refresher) recoverInFlight(ctx context.Context, owner string, c *connection.Connection, sc *store.Record, res Result) Result {
	since := sc.Status.InFlightSince
	if w := r.o.Timing.RepeatWindow(c.Preset); w > 0 && r.o.Now().Sub(since) < w {
		r.o.Log.Warn().Str("connection", c.Name).Msg("a refresh was left in flight by an ended pass; repeating it inside the provider's repeat window")
		return r.refresh(ctx, owner, c, sc, res, true)
	}
	st := sc.Status
	st.State = store.StateNeedsConsent
	st.LastFailure = r.o.Now()
	st.LastFailureClass = string(ClassAmbiguous)
	if st.ConsecutiveFailures == 0 || st.FailingSince.IsZero() {
		st.FailingSince = r.o.Now()
	}
	st.LastFailureMessage = "a refresh started at " + since.UTC().Format(time.RFC3339) +
		" was never stored (the pass ended mid-way); the provider may have rotated the refresh token, so it is not resent"
	st.ConsecutiveFailures++
	st.LeaseOwner, st.LeaseUntil = "", time.Time{}
	r.record(ctx, sc, st, c.Name)
	return r.fail(res, ClassAmbiguous, st.LastFailureMessage+"; consent may be needed: open "+c.AuthorizeURL)
}

// record writes a failure status. It is best effort: the pass already fails, and a status that
// could not be written is reported by the log line.
func (r *Refresher) record(ctx context.Context, sc *store.Record, st store.Status, name string) {
	if err := r.o.Store.SetStatus(ctx, sc, st); err != nil {
		r.o.Log.Error().Str("connection", name).Str("error", redact.String(err.Error(), 300)).Msg("could not record the failure in the Status row")
	}
}

func (r *Refresher) fail(res Result, class Class, detail string) Result {
	res.Outcome = Failed
	res.Class = class
	res.Detail = detail
	return res
}
