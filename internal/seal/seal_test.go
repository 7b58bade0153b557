package seal

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

const setting = "TOKEN_ENCRYPTION_KEYS"

// testKey returns a base64 key of n bytes, each byte b.
func testKey(b byte, n int) string {
	return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, n))
}

func mustParse(t testing.TB, v string) *Keyring {
	t.Helper()
	k, err := Parse(setting, v, nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return k
}

var bind = Binding{Table: "OAuthTokens", PartitionKey: "strava", RowKey: "RefreshToken", Property: "Value"}

func TestParse(t *testing.T) {
	k1, k2 := testKey(1, 32), testKey(2, 32)
	raw := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32)) // holds '-' or '_'
	tests := []struct {
		value   string
		wantIDs []string
	}{
		{"k1:" + k1, []string{"k1"}},
		{" new:" + k2 + " , old:" + k1 + " ", []string{"new", "old"}},
		{"url_key.2-a:" + raw, []string{"url_key.2-a"}},
		{"nopad:" + strings.TrimRight(k1, "="), []string{"nopad"}},
	}
	for _, tt := range tests {
		k, err := Parse(setting, tt.value, nil)
		if err != nil {
			t.Errorf("Parse(%d ids): %v", len(tt.wantIDs), err)
			continue
		}
		if got := strings.Join(k.KeyIDs(), ","); got != strings.Join(tt.wantIDs, ",") {
			t.Errorf("KeyIDs = %s; want %s", got, strings.Join(tt.wantIDs, ","))
		}
		if got := k.Primary(); got != tt.wantIDs[0] {
			t.Errorf("Primary = %s; want %s", got, tt.wantIDs[0])
		}
	}
}

func TestParseErrors(t *testing.T) {
	k1 := testKey(1, 32)
	tests := []struct {
		name, value string
		want        string // a part of the error text
	}{
		{"empty", " ", setting + ": empty"},
		{"empty entry", "a:" + k1 + ",,b:" + k1, "entry 2 is empty"},
		{"no colon", "a:" + k1 + "," + k1, "entry 2 is not KID:BASE64"},
		{"no id", ":" + k1, "entry 1: key id must be"},
		{"bad id", "a b:" + k1, "entry 1: key id must be"},
		{"long id", strings.Repeat("x", 33) + ":" + k1, "entry 1: key id must be"},
		{"duplicate", "a:" + k1 + ",b:" + testKey(2, 32) + ",a:" + testKey(3, 32), `key id "a" appears twice`},
		{"short", "short:" + testKey(7, 16), `key id "short": key is 16 bytes; want 32`},
		{"long", "long:" + testKey(7, 64), `key id "long": key is 64 bytes; want 32`},
		{"not base64", "bad:" + strings.Repeat("*", 44), `key id "bad": key is not valid base64`},
		{"no key", "nokey:", `key id "nokey": key is not valid base64`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(setting, tt.value, nil)
			if err == nil {
				t.Fatalf("Parse: got no error; want one containing %q", tt.want)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, setting+": ") || !strings.Contains(msg, tt.want) {
				t.Errorf("error %q; want it to start with %s and contain %q", msg, setting, tt.want)
			}
			// No key material, whole or part, may appear.
			for _, entry := range strings.Split(tt.value, ",") {
				if _, key, ok := strings.Cut(entry, ":"); ok && len(key) >= 8 && strings.Contains(msg, key[:8]) {
					t.Errorf("error %q quotes key material", msg)
				}
			}
		})
	}
}

func TestSealOpen(t *testing.T) {
	k := mustParse(t, "k1:"+testKey(1, 32))
	for _, plain := range []string{"", "rt-secret", strings.Repeat("é", 5000)} {
		v, err := k.Seal(plain, bind)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(v, "ft1:k1:") {
			t.Errorf("sealed value %.12q...; want prefix ft1:k1:", v)
		}
		if plain != "" && strings.Contains(v, plain) {
			t.Errorf("sealed value holds the plain text")
		}
		data := strings.TrimPrefix(v, "ft1:k1:")
		raw, err := base64.RawURLEncoding.Strict().DecodeString(data)
		if err != nil {
			t.Fatalf("DATA is not unpadded base64url: %v", err)
		}
		if got, want := len(raw), 12+len(plain)+16; got != want {
			t.Errorf("len(nonce||ciphertext) = %d; want %d", got, want)
		}
		got, sealed, err := k.Open(v, bind)
		if err != nil || !sealed || got != plain {
			t.Errorf("Open = %.20q, %v, %v; want the plain text, true, nil", got, sealed, err)
		}
	}
}

func TestSealUsesFreshNonces(t *testing.T) {
	k := mustParse(t, "k1:"+testKey(1, 32))
	a, _ := k.Seal("same", bind)
	b, _ := k.Seal("same", bind)
	if a == b {
		t.Errorf("two seals of the same value are identical; want different nonces")
	}
}

func TestSealInjectedNonce(t *testing.T) {
	nonce := bytes.Repeat([]byte{9}, 12)
	k, err := Parse(setting, "k1:"+testKey(1, 32), bytes.NewReader(append(nonce, nonce...)))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := k.Seal("x", bind)
	b, _ := k.Seal("x", bind)
	if a != b {
		t.Errorf("seals with the same injected nonce differ: %s, %s", a, b)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(a, "ft1:k1:"))
	if !bytes.Equal(raw[:12], nonce) {
		t.Errorf("nonce = %x; want %x", raw[:12], nonce)
	}
	if _, err := k.Seal("x", bind); err == nil {
		t.Errorf("Seal with an exhausted nonce source: got no error")
	}
}

func TestOpenLegacyPlain(t *testing.T) {
	for _, k := range []*Keyring{nil, mustParse(t, "k1:"+testKey(1, 32))} {
		for _, v := range []string{"", "plain-refresh-token", "ft1", "ft2:k1:abc"} {
			got, sealed, err := k.Open(v, bind)
			if err != nil || sealed || got != v {
				t.Errorf("Open(%q) = %q, %v, %v; want it unchanged, false, nil", v, got, sealed, err)
			}
		}
	}
}

func TestNilKeyringSealsNothing(t *testing.T) {
	var k *Keyring
	if v, err := k.Seal("rt", bind); err != nil || v != "rt" {
		t.Errorf("nil Seal = %q, %v; want rt, nil", v, err)
	}
	if k.NeedsRekey("rt") {
		t.Errorf("nil NeedsRekey = true; want false")
	}
}

func TestOpenFailures(t *testing.T) {
	k1, k2 := testKey(1, 32), testKey(2, 32)
	ring := mustParse(t, "k1:"+k1)
	v, err := ring.Seal("rt-secret", bind)
	if err != nil {
		t.Fatal(err)
	}
	data := strings.TrimPrefix(v, "ft1:k1:")
	raw, _ := base64.RawURLEncoding.DecodeString(data)
	flip := func(i int) string {
		b := bytes.Clone(raw)
		b[i] ^= 1
		return "ft1:k1:" + base64.RawURLEncoding.EncodeToString(b)
	}
	other := func(f func(*Binding)) Binding { b := bind; f(&b); return b }

	tests := []struct {
		name   string
		ring   *Keyring
		value  string
		b      Binding
		wantID string
		want   error
	}{
		{"no keys", nil, v, bind, "k1", ErrNoKeys},
		{"unknown kid", mustParse(t, "k2:"+k2), v, bind, "k1", ErrUnknownKey},
		{"same kid, other key", mustParse(t, "k1:"+k2), v, bind, "k1", ErrAuthentication},
		{"tampered nonce", ring, flip(0), bind, "k1", ErrAuthentication},
		{"tampered ciphertext", ring, flip(13), bind, "k1", ErrAuthentication},
		{"tampered tag", ring, flip(len(raw) - 1), bind, "k1", ErrAuthentication},
		{"truncated", ring, "ft1:k1:" + base64.RawURLEncoding.EncodeToString(raw[:27]), bind, "k1", ErrMalformed},
		{"padded base64", ring, v + "=", bind, "k1", ErrMalformed},
		{"std base64", ring, "ft1:k1:" + base64.RawStdEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 40)), bind, "k1", ErrMalformed},
		{"kid rewritten", mustParse(t, "k1:"+k1+",k9:"+k1), "ft1:k9:" + data, bind, "k9", ErrAuthentication},
		{"other connection", ring, v, other(func(b *Binding) { b.PartitionKey = "fitbit" }), "k1", ErrAuthentication},
		{"other row", ring, v, other(func(b *Binding) { b.RowKey = "AuthState-ab" }), "k1", ErrAuthentication},
		{"other property", ring, v, other(func(b *Binding) { b.Property = "Verifier" }), "k1", ErrAuthentication},
		{"other table", ring, v, other(func(b *Binding) { b.Table = "OtherTokens" }), "k1", ErrAuthentication},
		// Length prefixes keep field boundaries: moving bytes between fields changes the AAD.
		{"shifted boundary", ring, v, Binding{Table: "OAuthTokens", PartitionKey: "stravaR", RowKey: "efreshToken", Property: "Value"}, "k1", ErrAuthentication},
		{"no kid", ring, "ft1::" + data, bind, "", ErrMalformed},
		{"no data separator", ring, "ft1:k1", bind, "k1", ErrMalformed},
		{"bad kid", ring, "ft1:k 1:" + data, bind, "", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, sealed, err := tt.ring.Open(tt.value, tt.b)
			var oe *OpenError
			if !errors.As(err, &oe) || !errors.Is(err, tt.want) {
				t.Fatalf("Open error = %v; want an *OpenError wrapping %v", err, tt.want)
			}
			if got != "" || !sealed {
				t.Errorf("Open = %q, %v; want \"\", true", got, sealed)
			}
			if oe.KeyID != tt.wantID {
				t.Errorf("KeyID = %q; want %q", oe.KeyID, tt.wantID)
			}
			if tt.wantID != "" && !strings.Contains(err.Error(), `"`+tt.wantID+`"`) {
				t.Errorf("error %q does not name key id %q", err, tt.wantID)
			}
			if strings.Contains(err.Error(), data[:10]) || strings.Contains(err.Error(), "rt-secret") {
				t.Errorf("error %q quotes the value", err)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	oldKey, newKey := testKey(1, 32), testKey(2, 32)
	before := mustParse(t, "old:"+oldKey)
	after := mustParse(t, "new:"+newKey+",old:"+oldKey)

	v, _ := before.Seal("rt", bind)
	if got, _, err := after.Open(v, bind); err != nil || got != "rt" {
		t.Fatalf("rotated ring opens old value = %q, %v; want rt, nil", got, err)
	}
	if !after.NeedsRekey(v) {
		t.Errorf("NeedsRekey(old value) = false; want true")
	}
	w, _ := after.Seal("rt", bind)
	if id, sealed := KeyID(w); id != "new" || !sealed {
		t.Errorf("KeyID(new seal) = %q, %v; want new, true", id, sealed)
	}
	if after.NeedsRekey(w) {
		t.Errorf("NeedsRekey(new value) = true; want false")
	}
	if !after.NeedsRekey("plain") || !after.NeedsRekey("") {
		t.Errorf("NeedsRekey(plain) = false; want true")
	}
	if _, _, err := mustParse(t, "new:"+newKey).Open(v, bind); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("ring without the old key opens old value: %v; want ErrUnknownKey", err)
	}
}

func TestKeyID(t *testing.T) {
	tests := []struct {
		v      string
		id     string
		sealed bool
	}{
		{"plain", "", false},
		{"ft1:k1:AAAA", "k1", true},
		{"ft1:k1", "k1", true},
		{"ft1:", "", true},
	}
	for _, tt := range tests {
		if id, sealed := KeyID(tt.v); id != tt.id || sealed != tt.sealed {
			t.Errorf("KeyID(%q) = %q, %v; want %q, %v", tt.v, id, sealed, tt.id, tt.sealed)
		}
	}
}

func FuzzOpen(f *testing.F) {
	key := testKey(5, 32)
	ring, err := Parse(setting, "fz:"+key+",old:"+testKey(6, 32), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	good, _ := ring.Seal("refresh-token", bind)
	for _, s := range []string{good, "plain", "", "ft1:", "ft1:fz:", "ft1:fz:AAAA", "ft1:old:" + strings.TrimPrefix(good, "ft1:fz:"), good[:len(good)-1]} {
		f.Add(s, "strava")
	}
	f.Fuzz(func(t *testing.T, value, pk string) {
		b := Binding{Table: "OAuthTokens", PartitionKey: pk, RowKey: "RefreshToken", Property: "Value"}
		got, sealed, err := ring.Open(value, b)
		switch {
		case !strings.HasPrefix(value, Prefix):
			if err != nil || sealed || got != value {
				t.Fatalf("plain %q: Open = %q, %v, %v; want it unchanged", value, got, sealed, err)
			}
		case err != nil:
			var oe *OpenError
			if !errors.As(err, &oe) || got != "" || !sealed {
				t.Fatalf("Open(%q) = %q, %v, %v; want \"\", true, *OpenError", value, got, sealed, err)
			}
			if strings.Contains(err.Error(), key) {
				t.Fatalf("error quotes the key")
			}
		default:
			// Opened: it must round-trip and be bound to where it was opened.
			again, err := ring.Seal(got, b)
			if err != nil {
				t.Fatal(err)
			}
			if back, _, err := ring.Open(again, b); err != nil || back != got {
				t.Fatalf("re-sealed value does not round-trip: %v", err)
			}
			b.PartitionKey += "x"
			if _, _, err := ring.Open(value, b); err == nil {
				t.Fatalf("value opened for two partitions")
			}
		}
	})
}
