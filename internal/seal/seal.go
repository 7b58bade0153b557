// Package seal encrypts secrets stored in table properties (refresh tokens, PKCE verifiers) with
// a keyring of AES-256-GCM keys, and opens them again.
//
// A sealed value is written `ft1:KID:DATA`: KID names the key that sealed it and DATA is the
// unpadded base64url encoding of the 12-byte random nonce followed by the ciphertext (tag
// included). The additional authenticated data binds the value to where it is stored (table,
// partition key, row key, property; see Binding), so a value copied into another row, another
// connection or another property does not open.
//
// A value without the `ft1:` prefix is plain text written before keys were configured: Open
// returns it unchanged and says so. A sealed value never reads as plain text: a missing key, an
// unknown key id or a failed authentication is an *OpenError naming the key id.
//
// Neither keys nor values ever appear in errors.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// Prefix starts every sealed value; the 1 is the format version.
const Prefix = "ft1:"

const (
	keySize   = 32 // AES-256
	nonceSize = 12 // the GCM standard nonce
	tagSize   = 16
	// maxKeyIDLen keeps key ids short: they are written into every sealed value.
	maxKeyIDLen = 32
)

var keyIDRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// Sentinel reasons carried by *OpenError; test them with errors.Is.
var (
	// ErrNoKeys: a sealed value was read while no keys are configured.
	ErrNoKeys = errors.New("no encryption keys are configured")
	// ErrUnknownKey: the value's key id is not among the configured keys.
	ErrUnknownKey = errors.New("key id is not among the configured keys")
	// ErrAuthentication: the key is known but the value does not authenticate: it was altered,
	// copied from another row, connection or property, or the key under that id changed.
	ErrAuthentication = errors.New("authentication failed (value altered, copied from another row, or a different key under that id)")
	// ErrMalformed: the value has the sealed prefix but not the sealed format.
	ErrMalformed = errors.New("malformed sealed value")
)

// OpenError is a sealed value that could not be opened. Its text names the key id and the
// reason, never the value.
type OpenError struct {
	KeyID  string // as written in the value; "" when the value is too malformed to name one
	Reason error  // ErrNoKeys, ErrUnknownKey, ErrAuthentication or ErrMalformed
}

func (e *OpenError) Error() string {
	if e.KeyID == "" {
		return "sealed value: " + e.Reason.Error()
	}
	return fmt.Sprintf("sealed value under key id %q: %v", e.KeyID, e.Reason)
}

func (e *OpenError) Unwrap() error { return e.Reason }

// Binding is where a value is stored. It is authenticated with the value, so a value opens only
// where it was sealed.
type Binding struct {
	Table        string // compared case-insensitively, as the table service does
	PartitionKey string
	RowKey       string
	Property     string
}

// aad encodes b with the format version and the key id, each field length-prefixed, so that no
// two different bindings encode alike.
func (b Binding) aad(keyID string) []byte {
	fields := []string{"ft1", keyID, strings.ToLower(b.Table), b.PartitionKey, b.RowKey, b.Property}
	n := 0
	for _, f := range fields {
		n += 4 + len(f)
	}
	out := make([]byte, 0, n)
	for _, f := range fields {
		out = binary.BigEndian.AppendUint32(out, uint32(len(f)))
		out = append(out, f...)
	}
	return out
}

type key struct {
	id   string
	aead cipher.AEAD
}

// Keyring holds the configured keys: the first seals, every one opens. A nil *Keyring means no
// keys are configured: Seal returns values unchanged and Open reads only plain text. A Keyring
// is safe for concurrent use.
type Keyring struct {
	keys []key
	rand io.Reader
}

// Parse reads a keyring from value, written `KID:BASE64[,KID:BASE64...]`: a key id of 1-32
// letters, digits, '.', '_' or '-', and a 32-byte key in standard or URL-safe base64, padded or
// not (`openssl rand -base64 32` makes one). Spaces around entries are ignored. A malformed
// entry, a key of the wrong length or a repeated key id is an error that starts with setting
// and names the key id, or the entry's position when it has no usable id; never the key.
// rand is the nonce source; nil means crypto/rand.Reader.
func Parse(setting, value string, rand io.Reader) (*Keyring, error) {
	if strings.TrimSpace(value) == "" {
		return nil, fmt.Errorf("%s: empty; want KID:BASE64[,KID:BASE64...]", setting)
	}
	k := &Keyring{rand: rand}
	seen := make(map[string]bool)
	for i, entry := range strings.Split(value, ",") {
		entry = strings.TrimSpace(entry)
		id, b64, ok := strings.Cut(entry, ":")
		id = strings.TrimSpace(id)
		switch {
		case entry == "":
			return nil, fmt.Errorf("%s: entry %d is empty", setting, i+1)
		case !ok:
			return nil, fmt.Errorf("%s: entry %d is not KID:BASE64", setting, i+1)
		case id == "" || len(id) > maxKeyIDLen || !keyIDRE.MatchString(id):
			return nil, fmt.Errorf("%s: entry %d: key id must be 1-%d letters, digits, '.', '_' or '-'", setting, i+1, maxKeyIDLen)
		case seen[id]:
			return nil, fmt.Errorf("%s: key id %q appears twice", setting, id)
		}
		seen[id] = true
		raw, err := decodeKey(strings.TrimSpace(b64))
		if err != nil {
			return nil, fmt.Errorf("%s: key id %q: key is not valid base64", setting, id)
		}
		if len(raw) != keySize {
			return nil, fmt.Errorf("%s: key id %q: key is %d bytes; want %d (openssl rand -base64 32)", setting, id, len(raw), keySize)
		}
		block, err := aes.NewCipher(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: key id %q: %w", setting, id, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("%s: key id %q: %w", setting, id, err)
		}
		k.keys = append(k.keys, key{id: id, aead: aead})
	}
	return k, nil
}

func decodeKey(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("empty")
	}
	enc := base64.StdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.URLEncoding
	}
	if !strings.HasSuffix(s, "=") {
		enc = enc.WithPadding(base64.NoPadding)
	}
	return enc.Strict().DecodeString(s)
}

// KeyIDs returns the configured key ids, the sealing one first; nil for a nil Keyring.
func (k *Keyring) KeyIDs() []string {
	if k == nil {
		return nil
	}
	ids := make([]string, len(k.keys))
	for i, key := range k.keys {
		ids[i] = key.id
	}
	return ids
}

// Primary returns the id of the key that seals, "" for a nil Keyring.
func (k *Keyring) Primary() string {
	if k == nil {
		return ""
	}
	return k.keys[0].id
}

// Seal encrypts plain for b under the first key. With a nil Keyring it returns plain unchanged.
// It fails only when the nonce source does.
func (k *Keyring) Seal(plain string, b Binding) (string, error) {
	if k == nil {
		return plain, nil
	}
	primary := k.keys[0]
	buf := make([]byte, nonceSize, nonceSize+len(plain)+tagSize)
	r := k.rand
	if r == nil {
		r = rand.Reader
	}
	if _, err := io.ReadFull(r, buf); err != nil {
		return "", fmt.Errorf("seal: read nonce: %w", err)
	}
	buf = primary.aead.Seal(buf, buf[:nonceSize], []byte(plain), b.aad(primary.id))
	return Prefix + primary.id + ":" + base64.RawURLEncoding.EncodeToString(buf), nil
}

// Open returns the plain text of value stored at b. A value without Prefix is legacy plain text:
// it is returned unchanged with sealed false. A sealed value is opened with the key its id
// names; any failure is an *OpenError and the returned text is "".
func (k *Keyring) Open(value string, b Binding) (plain string, sealed bool, err error) {
	id, data, ok := split(value)
	if !ok {
		if strings.HasPrefix(value, Prefix) {
			return "", true, &OpenError{KeyID: id, Reason: ErrMalformed}
		}
		return value, false, nil
	}
	if k == nil {
		return "", true, &OpenError{KeyID: id, Reason: ErrNoKeys}
	}
	var aead cipher.AEAD
	for _, key := range k.keys {
		if key.id == id {
			aead = key.aead
			break
		}
	}
	if aead == nil {
		return "", true, &OpenError{KeyID: id, Reason: ErrUnknownKey}
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(data)
	if err != nil || len(raw) < nonceSize+tagSize {
		return "", true, &OpenError{KeyID: id, Reason: ErrMalformed}
	}
	out, err := aead.Open(nil, raw[:nonceSize], raw[nonceSize:], b.aad(id))
	if err != nil {
		return "", true, &OpenError{KeyID: id, Reason: ErrAuthentication}
	}
	return string(out), true, nil
}

// split parses `ft1:KID:DATA`. ok is false when value is not in that form; id is then still set
// when value has the prefix and a well-formed key id.
func split(value string) (id, data string, ok bool) {
	rest, found := strings.CutPrefix(value, Prefix)
	if !found {
		return "", "", false
	}
	id, data, found = strings.Cut(rest, ":")
	if len(id) > maxKeyIDLen || !keyIDRE.MatchString(id) {
		return "", "", false
	}
	return id, data, found
}

// KeyID returns the id of the key value is sealed under, and whether value is sealed at all
// (false for legacy plain text). A malformed sealed value gives sealed true and, when its id
// cannot be read, id "".
func KeyID(value string) (id string, sealed bool) {
	id, _, ok := split(value)
	return id, ok || strings.HasPrefix(value, Prefix)
}

// NeedsRekey reports whether writing value again would change how it is sealed: it is plain text
// or sealed under another key than the first. With a nil Keyring it is false: there is nothing to
// seal with.
func (k *Keyring) NeedsRekey(value string) bool {
	if k == nil {
		return false
	}
	id, sealed := KeyID(value)
	return !sealed || id != k.keys[0].id
}
