package secure

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"strings"

	"github.com/icetcp/icetcp/signaling"
)

// A secret is 26 random symbols (130 bits) and 2 check symbols in
// Crockford's base32 alphabet, printed as 7 groups of 4:
//
//	7kq3-m9xa-2fpd-wz0h-c4rt-e8vb-nj5s
//
// Crockford's alphabet has no I, L, O or U, and parsing maps i and l to 1
// and o to 0, so what a person reads aloud or retypes survives; case,
// hyphens and spaces do not matter.
const (
	secretAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"
	secretData     = 26 // random symbols: 26 × 5 = 130 bits
	secretCheck    = 2  // check symbols: 10 bits against typos
	secretLen      = secretData + secretCheck
	groupLen       = 4
	// minDistinct is the least number of distinct symbols among the random
	// ones. 26 uniform draws from 32 symbols have fewer than 8 distinct with
	// probability below 1e-10, so this refuses only hand-made codes.
	minDistinct = 8
)

// HKDF labels: one salt for the secret, one info label per derived value,
// so that the room name the rendezvous sees says nothing about the key.
const (
	kdfSalt        = "icetcp secret v1"
	kdfRoomKeyInfo = "icetcp room key v1"
	kdfPSKInfo     = "icetcp noise psk v1"
	kdfConfirmInfo = "icetcp peer confirm v1"
	checkLabel     = "icetcp secret check v1"
)

// Secret is a shared secret the two users exchange out of band (read aloud,
// sent in a chat). Its zero value is not valid; make one with NewSecret or
// ParseSecret.
//
// ExchangeCode also returns a Secret: the key two peers of a short Code
// agreed on. It keys the same things (ConfirmPeer, Client, Server) but has
// no printed form: its String is empty.
type Secret struct {
	data string // the 26 random symbols, normalised; or a PAKE's key
	salt string // HKDF salt: kdfSalt for codes, kdfPakeSalt for a PAKE's key
}

// NewSecret returns a fresh random secret from crypto/rand.
func NewSecret() Secret {
	s, err := newSecret(rand.Reader)
	if err != nil { // crypto/rand.Reader does not fail (Go 1.24+)
		panic(err)
	}
	return s
}

// newSecret draws the random symbols from r (tests pass a fixed reader).
func newSecret(r io.Reader) (Secret, error) {
	for {
		var b [secretData]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return Secret{}, fmt.Errorf("secure: new secret: %w", err)
		}
		var sb strings.Builder
		for _, x := range b {
			sb.WriteByte(secretAlphabet[x&31]) // 256 is a multiple of 32: uniform
		}
		if distinct(sb.String()) >= minDistinct { // practically always
			return Secret{data: sb.String()}, nil
		}
	}
}

// ParseSecret accepts a code printed by NewSecret (String), ignoring case,
// hyphens and spaces and mapping i, l → 1 and o → 0. It refuses anything
// else with an error wrapping ErrInvalidSecret that says what is wrong.
func ParseSecret(code string) (Secret, error) {
	var sym []byte
	for i, r := range code {
		switch r {
		case '-', ' ', '\t':
			continue
		case 'i', 'I', 'l', 'L':
			r = '1'
		case 'o', 'O':
			r = '0'
		}
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		if r > 0x7f || strings.IndexByte(secretAlphabet, byte(r)) < 0 {
			return Secret{}, fmt.Errorf("%w: character %q at %d is not one of %q (run `icetcp secret` for a valid one)", ErrInvalidSecret, r, i, secretAlphabet)
		}
		sym = append(sym, byte(r))
	}
	if len(sym) != secretLen {
		return Secret{}, fmt.Errorf("%w: %d symbols, want %d (7 groups of 4 as `icetcp secret` prints them); made-up secrets are refused because anyone who sees the handshake can test guesses offline",
			ErrInvalidSecret, len(sym), secretLen)
	}
	data, check := string(sym[:secretData]), string(sym[secretData:])
	if check != checkSymbols(data) {
		return Secret{}, fmt.Errorf("%w: the last two characters do not match the rest: mistyped?", ErrInvalidSecret)
	}
	if n := distinct(data); n < minDistinct {
		return Secret{}, fmt.Errorf("%w: only %d distinct characters, not a random code", ErrInvalidSecret, n)
	}
	return Secret{data: data}, nil
}

// String returns the code in 7 groups of 4, check symbols included: what
// the users exchange. It is the secret itself: do not log it. A Secret
// from ExchangeCode has no printed form: String is empty.
func (s Secret) String() string {
	if s.data == "" || s.salt != "" {
		return ""
	}
	all := s.data + checkSymbols(s.data)
	var sb strings.Builder
	for i := 0; i < len(all); i += groupLen {
		if i > 0 {
			sb.WriteByte('-')
		}
		sb.WriteString(all[i:min(len(all), i+groupLen)])
	}
	return sb.String()
}

// Valid reports whether s came from NewSecret or ParseSecret.
func (s Secret) Valid() bool { return s.data != "" }

// RoomKey is the Ed25519 key of the rendezvous room of s, from HKDF-SHA256
// under its own label: the room belongs to its public key
// (signaling.RoomForKey), and a rendezvous admits to it only clients that
// sign their connection's challenge with it (wsclient.Dialer.RoomKey), so
// someone who learns the room's name cannot take it. The rendezvous learns
// the public key; finding s from it means searching 2^130 secrets.
func RoomKey(s Secret) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(s.derive(kdfRoomKeyInfo, ed25519.SeedSize))
}

// RoomName is the rendezvous room two peers holding s join: the room of
// RoomKey's public key.
func RoomName(s Secret) string {
	return signaling.RoomForKey(RoomKey(s).Public().(ed25519.PublicKey))
}

// psk is the Noise pre-shared key.
func (s Secret) psk() []byte { return s.derive(kdfPSKInfo, 32) }

func (s Secret) derive(info string, n int) []byte {
	if s.data == "" {
		panic("secure: use of a zero Secret")
	}
	salt := kdfSalt
	if s.salt != "" {
		salt = s.salt
	}
	k, err := hkdf.Key(sha256.New, []byte(s.data), []byte(salt), info, n)
	if err != nil { // only for lengths above 255 × 32 bytes
		panic(err)
	}
	return k
}

// checkSymbols are the first 10 bits of SHA-256 over a label and the data
// symbols, as two symbols: a typo passes with probability 1/1024.
func checkSymbols(data string) string {
	h := sha256.Sum256([]byte(checkLabel + data))
	v := int(h[0])<<2 | int(h[1])>>6
	return string([]byte{secretAlphabet[v>>5], secretAlphabet[v&31]})
}

func distinct(s string) int {
	var seen [256]bool
	n := 0
	for i := 0; i < len(s); i++ {
		if !seen[s[i]] {
			seen[s[i]] = true
			n++
		}
	}
	return n
}
