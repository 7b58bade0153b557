package store

import (
	"errors"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

// Row keys of a connection's partition. Other apps read AccessToken; keep these stable.
const (
	RowAccessToken  = "AccessToken"
	RowRefreshToken = "RefreshToken"
	RowStatus       = "Status"
	// rowAuthStatePrefix starts the row key of a pending authorization (see AuthState).
	rowAuthStatePrefix = "AuthState-"
	// rowInvitePrefix starts the row key of a spent invitation (see SpentInvite).
	rowInvitePrefix = "Invite-"
)

// State is a connection's health as shown in its Status row.
type State string

const (
	StateOK           State = "ok"
	StateRetrying     State = "retrying"
	StateNeedsConsent State = "needs_consent"
)

var (
	// ErrConflict: a conditional write lost to another writer (HTTP 412 or 409). Re-read first.
	ErrConflict = errors.New("store: conflicting write")
	// ErrNotFound: the row or partition does not exist.
	ErrNotFound = errors.New("store: not found")
)

// Tokens is a connection's token pair as stored in its AccessToken and RefreshToken rows.
type Tokens struct {
	AccessToken string    // AccessToken.Value
	TokenType   string    // AccessToken.TokenType
	ExpiresAt   time.Time // AccessToken.ExpiresAt (Edm.DateTime); zero when the provider gave none
	Scope       string    // AccessToken.Scope: the granted scopes, space-separated

	RefreshToken     string    // RefreshToken.Value; "" for providers that issue none
	RefreshExpiresAt time.Time // RefreshToken.ExpiresAt; zero when no deadline is known
}

// Status is the Status row: what anyone can read of a connection's health, plus the lease that
// serialises refreshes across processes.
type Status struct {
	State    State
	Provider string
	// AccountID is the provider's id of the account that consented, when it says.
	AccountID     string
	GrantedScopes string // space-separated
	MissingScopes string // asked for but not granted, space-separated

	ConnectedAt         time.Time
	LastSuccess         time.Time
	LastFailure         time.Time
	LastFailureClass    string // revoked, transient, ambiguous, storage, ...
	LastFailureMessage  string // redacted
	ConsecutiveFailures int
	NextAttempt         time.Time // a retrying connection is not tried before this

	// LeaseOwner holds the lease until LeaseUntil; a lease past LeaseUntil may be taken over.
	LeaseOwner string
	LeaseUntil time.Time
	// InFlight is the fingerprint (see Fingerprint) of the refresh token sent under the lease,
	// set when the lease is taken and cleared by the commit. Found set after the lease expired,
	// it means a refresh may have reached the provider without its answer being stored.
	InFlight      string
	InFlightSince time.Time
	// Generation counts stored token pairs; every commit increments it.
	Generation int64
	// RefreshDeadline mirrors RefreshToken.ExpiresAt (the refresh token's known deadline, zero
	// when none is known); Commit and SaveConsent set it from the tokens they write.
	RefreshDeadline time.Time
	// Warning says what needs a person's attention soon (a refresh-token deadline ahead).
	Warning string

	// FailingSince is the first failure of the current streak (zero while ok).
	FailingSince time.Time
	// NotifiedEvent is the last event a notification was delivered for (see package notify),
	// and NotifiedAt when; they make each event go out once per transition.
	NotifiedEvent string
	NotifiedAt    time.Time
	// NotifyClaim is the event a process is sending now, claimed until NotifyClaimUntil; an
	// expired claim (the sender crashed) is taken over, so delivery is at least once.
	NotifyClaim      string
	NotifyClaimUntil time.Time
}

// Record is one partition as read: the stored pair, the status, and the ETags that make
// the next write conditional on nothing having changed since.
type Record struct {
	Name       string
	HasAccess  bool // the AccessToken row exists
	HasRefresh bool // the RefreshToken row exists
	HasStatus  bool // the Status row exists
	Tokens     Tokens
	Status     Status

	// SecretErr is set when a sealed secret of the partition (RefreshToken.Value) could not be
	// opened: its key id is not configured, no keys are configured, or it fails authentication
	// (altered, or copied from another row or connection). It wraps a *seal.OpenError naming the
	// key id. The secret then reads as "": fail this connection without sending anything to the
	// provider and leave its rows as they are. Other records of the same List are unaffected.
	// A successful Commit clears it.
	SecretErr error

	// ETags are the rows' versions as read ("" for a row not read or whose version is unknown:
	// a conditional write against it is ErrConflict). Implementations of the store set them;
	// callers only carry them from a read to the next write.
	ETags ETags
}

// ETags are the versions of a partition's three rows.
type ETags struct {
	Access, Refresh, Status azcore.ETag
}

// AuthState is a pending authorization: created by Authorize, taken once by Callback.
type AuthState struct {
	Verifier  string // PKCE code verifier; "" without PKCE
	ExpiresAt time.Time
	Replace   bool // the Authorize URL asked to replace the connected account
	// Label is the account a sign-in of a many-account connection is for: the pair is stored in
	// partition NAME.LABEL, while the AuthState row stays in partition NAME (the provider's
	// redirect URL names only the connection). "" for a single-account connection.
	Label string
	// Invite is the id of the invitation the sign-in was started from ("" for Authorize): the
	// Callback spends it with SaveInvitedConsent.
	Invite string
}
