package rendezvous

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/icetcp/icetcp/internal/quote"
	"github.com/icetcp/icetcp/signaling"
)

// Join tokens let a rendezvous that fronts many users admit only those it
// issued a token to, in the manner of TURN REST credentials
// (draft-uberti-behave-turn-rest-00): a server secret, an expiry and an
// optional subject, bound by an HMAC. The server keeps no state per token.
//
//	v1.<expiry, unix seconds>.<base64url(subject)>.<base64url(HMAC-SHA256(key, "icetcp-token\x00" || everything before the last dot))>
//
// A token travels in the WebSocket upgrade request as
// "Authorization: Bearer <token>" (see wsclient.Dialer.Token).
const (
	// MinTokenKeyLen is the shortest server secret MintToken and the
	// Server accept: an HMAC key shorter than 128 bits is guessable.
	MinTokenKeyLen = 16
	// MaxTokenLen bounds a token's text.
	MaxTokenLen = 512
	// MaxSubjectLen bounds a token's subject.
	MaxSubjectLen = 128

	tokenVersion = "v1"
	tokenLabel   = "icetcp-token\x00"
)

var b64 = base64.RawURLEncoding

// decode64 accepts only the canonical spelling: encoding/base64 also
// accepts stray bits in the last character (unless Strict) and skips \r
// and \n anywhere, and a token must have one spelling, so that what is
// accepted is exactly what was signed and what is logged. FuzzToken found
// both.
func decode64(s string) ([]byte, error) {
	b, err := b64.DecodeString(s)
	if err == nil && b64.EncodeToString(b) != s {
		err = errors.New("rendezvous: not the canonical base64url spelling")
	}
	return b, err
}

// Token is what a join token says.
type Token struct {
	// Expires is when the token stops being accepted (second precision).
	Expires time.Time
	// Subject optionally names the holder, for the server's logs.
	Subject string
}

// MintToken returns the token for t under key.
func MintToken(key []byte, t Token) (string, error) {
	if len(key) < MinTokenKeyLen {
		return "", fmt.Errorf("rendezvous: mint token: key of %d bytes, want at least %d", len(key), MinTokenKeyLen)
	}
	if len(t.Subject) > MaxSubjectLen || !utf8.ValidString(t.Subject) {
		return "", fmt.Errorf("rendezvous: mint token: subject %s: want at most %d bytes of UTF-8", quote.Short(t.Subject), MaxSubjectLen)
	}
	if t.Expires.Unix() <= 0 {
		return "", fmt.Errorf("rendezvous: mint token: no expiry")
	}
	body := tokenVersion + "." + strconv.FormatInt(t.Expires.Unix(), 10) + "." + b64.EncodeToString([]byte(t.Subject))
	return body + "." + b64.EncodeToString(tokenMAC(key, body)), nil
}

// ParseToken verifies s under key at time now. Every failure wraps
// signaling.ErrUnauthorized and says what is wrong (malformed, bad signature,
// expired), never which part of the MAC differed.
func ParseToken(key []byte, s string, now time.Time) (Token, error) {
	if len(s) == 0 {
		return Token{}, fmt.Errorf("%w: no token (send Authorization: Bearer <token>)", signaling.ErrUnauthorized)
	}
	if len(s) > MaxTokenLen {
		return Token{}, fmt.Errorf("%w: token of %d bytes, limit %d", signaling.ErrUnauthorized, len(s), MaxTokenLen)
	}
	dot := strings.LastIndexByte(s, '.')
	if dot < 0 {
		return Token{}, fmt.Errorf("%w: malformed token", signaling.ErrUnauthorized)
	}
	body, sig := s[:dot], s[dot+1:]
	parts := strings.Split(body, ".")
	if len(parts) != 3 || parts[0] != tokenVersion {
		return Token{}, fmt.Errorf("%w: malformed token (want %s.<expiry>.<subject>.<mac>)", signaling.ErrUnauthorized, tokenVersion)
	}
	mac, err := decode64(sig)
	if err != nil || !hmac.Equal(mac, tokenMAC(key, body)) {
		return Token{}, fmt.Errorf("%w: token signature does not verify (minted with another server secret?)", signaling.ErrUnauthorized)
	}
	// Only signed fields are interpreted from here on.
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || exp <= 0 {
		return Token{}, fmt.Errorf("%w: malformed token expiry %s", signaling.ErrUnauthorized, quote.Short(parts[1]))
	}
	subject, err := decode64(parts[2])
	if err != nil || !utf8.Valid(subject) {
		return Token{}, fmt.Errorf("%w: malformed token subject", signaling.ErrUnauthorized)
	}
	t := Token{Expires: time.Unix(exp, 0), Subject: string(subject)}
	if !now.Before(t.Expires) {
		return Token{}, fmt.Errorf("%w: token expired %v ago", signaling.ErrUnauthorized, now.Sub(t.Expires).Round(time.Second))
	}
	return t, nil
}

func tokenMAC(key []byte, body string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(tokenLabel))
	m.Write([]byte(body))
	return m.Sum(nil)
}
