// Package invite makes and checks invitations: signed values that let a person connect one
// account of a many-account connection without the function key. An invitation binds the
// connection, the account's label, an expiry and a random id under HMAC-SHA256 with
// INVITE_SIGNING_KEY; anyone holding it can start the consent for exactly that account until it
// expires or is spent. Spending is recorded in the token table (see store.SpentInvite), not here.
//
// The value is URL-safe base64 (no padding) of
//
//	version (1 byte, 1) | id (16 bytes) | expiry (8 bytes, Unix seconds, big-endian) | label | tag (16 bytes)
//
// where tag is the first 16 bytes of HMAC-SHA256(key, "freshtoken invite v1" 0x00 | len(connection) |
// connection | everything before the tag). The connection is not carried (the URL's path names
// it) but is authenticated, so an invitation for one connection does not open another. About 60
// characters for a short label.
package invite

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/freshtoken/freshtoken/internal/connection"
)

// KeySize is the length of a signing key in bytes.
const KeySize = 32

// MaxValidity is the longest an invitation may be valid: one cannot be withdrawn alone (only by
// changing the key, which withdraws every unspent one), so it should not outlive a study's
// enrolment.
const MaxValidity = 366 * 24 * time.Hour

const (
	version  = 1
	idSize   = 16
	tagSize  = 16
	header   = 1 + idSize + 8
	minSize  = header + 1 + tagSize
	maxValue = 200 // characters: a longer value is refused before decoding
	domain   = "freshtoken invite v1\x00"
)

// Errors of Verify; each is wrapped with the detail.
var (
	// ErrMalformed: the value is not an invitation at all (cut short, not base64, unknown version).
	ErrMalformed = errors.New("invitation is malformed")
	// ErrForged: the value does not carry a valid signature for this connection: altered, made
	// up, signed with another key, or meant for another connection.
	ErrForged = errors.New("invitation signature does not match")
	// ErrExpired: the invitation is genuine but past its expiry.
	ErrExpired = errors.New("invitation expired")
)

// Invitation is what a value binds.
type Invitation struct {
	Connection string
	Label      string
	ID         string    // 32 lower-case hex digits
	Expires    time.Time // whole seconds, UTC
}

// Options configure a Signer. Now defaults to time.Now and Rand to crypto/rand.Reader.
type Options struct {
	Key  []byte // KeySize bytes
	Now  func() time.Time
	Rand io.Reader
}

// Signer issues and verifies invitations under one key. It is safe for concurrent use.
type Signer struct {
	key  []byte
	now  func() time.Time
	rand io.Reader
}

// New returns a Signer for o. Its error never shows the key.
func New(o Options) (*Signer, error) {
	if len(o.Key) != KeySize {
		return nil, fmt.Errorf("invite: signing key is %d bytes; want %d", len(o.Key), KeySize)
	}
	s := &Signer{key: append([]byte(nil), o.Key...), now: o.Now, rand: o.Rand}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	return s, nil
}

// ParseKey decodes a signing key written in base64 (standard or URL alphabet, padded or not).
// Its errors say what is wrong without quoting the value.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != KeySize {
				return nil, fmt.Errorf("decodes to %d bytes; want %d (openssl rand -base64 32)", len(b), KeySize)
			}
			return b, nil
		}
	}
	return nil, fmt.Errorf("not base64 (%d characters); want %d bytes in base64 (openssl rand -base64 32)", len(s), KeySize)
}

// Issue makes a new invitation for account label of connection name, valid for valid from now,
// and returns it with its value.
func (s *Signer) Issue(name, label string, valid time.Duration) (Invitation, string, error) {
	if valid <= 0 || valid > MaxValidity {
		return Invitation{}, "", fmt.Errorf("invite: validity %s; want more than 0 and at most %s", valid, MaxValidity)
	}
	id := make([]byte, idSize)
	if _, err := io.ReadFull(s.rand, id); err != nil {
		return Invitation{}, "", fmt.Errorf("invite: random id: %w", err)
	}
	inv := Invitation{
		Connection: name, Label: label, ID: hex.EncodeToString(id),
		// Rounded up, so an invitation never expires earlier than asked.
		Expires: s.now().Add(valid + time.Second - 1).Truncate(time.Second).UTC(),
	}
	v, err := s.Sign(inv)
	if err != nil {
		return Invitation{}, "", err
	}
	return inv, v, nil
}

// Sign returns the value of inv.
func (s *Signer) Sign(inv Invitation) (string, error) {
	if inv.Connection == "" || len(inv.Connection) > 255 {
		return "", fmt.Errorf("invite: connection name of %d characters; want 1 to 255", len(inv.Connection))
	}
	if err := connection.CheckLabel(inv.Label); err != nil {
		return "", fmt.Errorf("invite: %w", err)
	}
	id, err := hex.DecodeString(inv.ID)
	if err != nil || len(id) != idSize || hex.EncodeToString(id) != inv.ID {
		return "", fmt.Errorf("invite: id: want %d lower-case hex digits", 2*idSize)
	}
	if inv.Expires.Unix() <= 0 {
		return "", errors.New("invite: no expiry")
	}
	b := make([]byte, 0, header+len(inv.Label)+tagSize)
	b = append(b, version)
	b = append(b, id...)
	b = binary.BigEndian.AppendUint64(b, uint64(inv.Expires.Unix()))
	b = append(b, inv.Label...)
	b = append(b, s.tag(inv.Connection, b)...)
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Verify checks value as an invitation to connection name: well formed, signed under this key
// for name, and not expired. It returns the invitation, also with ErrExpired (so that the page
// can say when it expired); with ErrMalformed and ErrForged it returns nothing read from the
// value. The signature is checked before anything else of the value is trusted, in constant
// time.
func (s *Signer) Verify(name, value string) (Invitation, error) {
	if len(value) > maxValue {
		return Invitation{}, fmt.Errorf("%w: %d characters; at most %d", ErrMalformed, len(value), maxValue)
	}
	b, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil {
		return Invitation{}, fmt.Errorf("%w: not URL-safe base64", ErrMalformed)
	}
	if len(b) < minSize {
		return Invitation{}, fmt.Errorf("%w: %d bytes; at least %d", ErrMalformed, len(b), minSize)
	}
	if b[0] != version {
		return Invitation{}, fmt.Errorf("%w: unknown version %d", ErrMalformed, b[0])
	}
	body, tag := b[:len(b)-tagSize], b[len(b)-tagSize:]
	if !hmac.Equal(tag, s.tag(name, body)) {
		return Invitation{}, ErrForged
	}
	secs := binary.BigEndian.Uint64(body[1+idSize : header])
	inv := Invitation{
		Connection: name,
		Label:      string(body[header:]),
		ID:         hex.EncodeToString(body[1 : 1+idSize]),
		Expires:    time.Unix(int64(min(secs, 1<<62)), 0).UTC(),
	}
	if err := connection.CheckLabel(inv.Label); err != nil {
		// Only a value signed by a buggy issuer gets here.
		return Invitation{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if !s.now().Before(inv.Expires) {
		return inv, fmt.Errorf("%w at %s", ErrExpired, inv.Expires.Format(time.RFC3339))
	}
	return inv, nil
}

func (s *Signer) tag(name string, body []byte) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(domain))
	m.Write([]byte{byte(len(name))})
	m.Write([]byte(name))
	m.Write(body)
	return m.Sum(nil)[:tagSize]
}
