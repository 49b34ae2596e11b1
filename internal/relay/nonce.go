package relay

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// The relay's NONCE (RFC 8489 §9.2). pion/turn v5's own nonce is the same
// for every client within a minute and good for an hour: a request
// captured anywhere could be sent again, byte for byte, on a connection of
// one's own (issue 14: an Allocate and a CreatePermission replayed that
// way, without the password, succeeded). coturn binds its nonce to the
// client's session and lets it go stale after --stale-nonce seconds; so
// does this one, without keeping state: a nonce is its issue time and an
// HMAC of that time and the connection it was given on (the client's
// address and port and the server's), under a key made at start.
//
// pion never sees these nonces and the clients never see pion's: the
// relay puts its own in every answer that carries one, and in a request
// that carries a good one of its own it puts pion's back and signs the
// request again with the user's key, after it checked the client's
// MESSAGE-INTEGRITY itself (see stunmsg.go).

// nonceTuple is what a nonce is bound to: a client's connection.
type nonceTuple struct{ client, server netip.AddrPort }

const (
	noncePrefix  = "icetcp1-" // names the format; a nonce of another kind fails at once
	nonceTimeLen = 8          // issue time, Unix milliseconds, big endian
	nonceTagLen  = 16         // truncated HMAC-SHA256
	nonceLen     = len(noncePrefix) + (nonceTimeLen+nonceTagLen)*4/3
)

var errBadNonce = errors.New("relay: not a nonce of this relay")

// nonceKeeper makes and checks nonces. Its zero value is not usable:
// newNonceKeeper draws the key.
type nonceKeeper struct {
	key      [32]byte
	lifetime time.Duration
}

func newNonceKeeper(lifetime time.Duration) *nonceKeeper {
	k := &nonceKeeper{lifetime: lifetime}
	rand.Read(k.key[:]) // crypto/rand does not fail (Go 1.24+)
	return k
}

// issue returns a fresh nonce for t.
func (k *nonceKeeper) issue(t nonceTuple, now time.Time) string {
	var b [nonceTimeLen + nonceTagLen]byte
	binary.BigEndian.PutUint64(b[:nonceTimeLen], uint64(now.UnixMilli()))
	copy(b[nonceTimeLen:], k.tag(b[:nonceTimeLen], t))
	return noncePrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// check says why nonce is not a good nonce for t at now, or nil.
func (k *nonceKeeper) check(nonce string, t nonceTuple, now time.Time) error {
	issued, tag, err := decodeNonce(nonce)
	if err != nil {
		return err
	}
	var ms [nonceTimeLen]byte
	binary.BigEndian.PutUint64(ms[:], uint64(issued.UnixMilli()))
	if !hmac.Equal(tag, k.tag(ms[:], t)) {
		return fmt.Errorf("%w: issued to another connection or by another server", errBadNonce)
	}
	switch age := now.Sub(issued); {
	case age > k.lifetime:
		return fmt.Errorf("%w: stale, issued %v ago (lifetime %v)", errBadNonce, age.Round(time.Second), k.lifetime)
	case age < -time.Second:
		return fmt.Errorf("%w: issued in the future", errBadNonce)
	}
	return nil
}

func (k *nonceKeeper) tag(ms []byte, t nonceTuple) []byte {
	h := hmac.New(sha256.New, k.key[:])
	h.Write([]byte("icetcp relay nonce v1"))
	h.Write(ms)
	for _, ap := range []netip.AddrPort{t.client, t.server} {
		b, _ := ap.MarshalBinary() // 16 bytes of address (IPv4 mapped), 2 of port: never fails
		h.Write(b)
	}
	return h.Sum(nil)[:nonceTagLen]
}

// decodeNonce parses the relay's nonce format: the prefix, then 32
// characters of unpadded base64url holding the issue time and the tag.
func decodeNonce(nonce string) (issued time.Time, tag []byte, err error) {
	rest, ok := strings.CutPrefix(nonce, noncePrefix)
	if !ok || len(nonce) != nonceLen {
		return time.Time{}, nil, fmt.Errorf("%w: %d bytes, not of the form %s…", errBadNonce, len(nonce), noncePrefix)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	// Only the canonical spelling: the decoder skips CR and LF, which
	// would give one nonce several spellings.
	if err != nil || len(b) != nonceTimeLen+nonceTagLen || base64.RawURLEncoding.EncodeToString(b) != rest {
		return time.Time{}, nil, fmt.Errorf("%w: not base64url", errBadNonce)
	}
	ms := binary.BigEndian.Uint64(b[:nonceTimeLen])
	if ms > 1<<62 {
		return time.Time{}, nil, fmt.Errorf("%w: time out of range", errBadNonce)
	}
	return time.UnixMilli(int64(ms)), b[nonceTimeLen:], nil
}
