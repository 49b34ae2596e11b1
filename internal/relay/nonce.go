package relay

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"net/netip"
	"sync"
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
	// macs are HMAC-SHA256 states keyed with key: Reset brings one back
	// to its keyed state, so a nonce costs no new hash (every
	// authenticated request checks one, every 401 and 438 issues one).
	macs sync.Pool
}

func newNonceKeeper(lifetime time.Duration) *nonceKeeper {
	k := &nonceKeeper{lifetime: lifetime}
	rand.Read(k.key[:]) // crypto/rand does not fail (Go 1.24+)
	k.macs.New = func() any { return hmac.New(sha256.New, k.key[:]) }
	return k
}

// issue returns a fresh nonce for t.
func (k *nonceKeeper) issue(t nonceTuple, now time.Time) string {
	var b [nonceTimeLen + nonceTagLen]byte
	binary.BigEndian.PutUint64(b[:nonceTimeLen], uint64(now.UnixMilli()))
	k.tag(b[nonceTimeLen:], b[:nonceTimeLen], t)
	var out [nonceLen]byte
	copy(out[:], noncePrefix)
	base64.RawURLEncoding.Encode(out[len(noncePrefix):], b[:])
	return string(out[:])
}

// check says why nonce is not a good nonce for t at now, or nil.
func (k *nonceKeeper) check(nonce string, t nonceTuple, now time.Time) error {
	return k.checkBytes([]byte(nonce), t, now)
}

// checkBytes is check on the attribute's bytes, without a copy.
func (k *nonceKeeper) checkBytes(nonce []byte, t nonceTuple, now time.Time) error {
	var raw [nonceTimeLen + nonceTagLen]byte
	issued, err := decodeNonceInto(nonce, &raw)
	if err != nil {
		return err
	}
	var want [nonceTagLen]byte
	k.tag(want[:], raw[:nonceTimeLen], t)
	if !hmac.Equal(raw[nonceTimeLen:], want[:]) {
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

// tag writes the nonce's truncated HMAC of the issue time ms and the tuple
// into dst (nonceTagLen bytes).
func (k *nonceKeeper) tag(dst, ms []byte, t nonceTuple) {
	h := k.macs.Get().(hash.Hash)
	h.Reset()
	h.Write([]byte("icetcp relay nonce v1"))
	h.Write(ms)
	var b [2 * 18]byte // each address as 16 bytes (IPv4-mapped), its port big endian
	for i, ap := range []netip.AddrPort{t.client, t.server} {
		a := ap.Addr().As16()
		copy(b[18*i:], a[:])
		binary.BigEndian.PutUint16(b[18*i+16:], ap.Port())
	}
	h.Write(b[:])
	var sum [sha256.Size]byte
	copy(dst, h.Sum(sum[:0])[:nonceTagLen])
	k.macs.Put(h)
}

// decodeNonce parses the relay's nonce format: the prefix, then 32
// characters of unpadded base64url holding the issue time and the tag.
func decodeNonce(nonce string) (issued time.Time, tag []byte, err error) {
	var raw [nonceTimeLen + nonceTagLen]byte
	issued, err = decodeNonceInto([]byte(nonce), &raw)
	if err != nil {
		return time.Time{}, nil, err
	}
	return issued, raw[nonceTimeLen:], nil
}

func decodeNonceInto(nonce []byte, raw *[nonceTimeLen + nonceTagLen]byte) (time.Time, error) {
	if len(nonce) != nonceLen || string(nonce[:len(noncePrefix)]) != noncePrefix {
		return time.Time{}, fmt.Errorf("%w: %d bytes, not of the form %s…", errBadNonce, len(nonce), noncePrefix)
	}
	rest := nonce[len(noncePrefix):]
	n, err := base64.RawURLEncoding.Strict().Decode(raw[:], rest)
	// Only the canonical spelling: the decoder skips CR and LF, which
	// would give one nonce several spellings.
	var again [nonceLen - len(noncePrefix)]byte
	if err == nil && n == len(raw) {
		base64.RawURLEncoding.Encode(again[:], raw[:])
	}
	if err != nil || n != len(raw) || string(again[:]) != string(rest) {
		return time.Time{}, fmt.Errorf("%w: not base64url", errBadNonce)
	}
	ms := binary.BigEndian.Uint64(raw[:nonceTimeLen])
	if ms > 1<<62 {
		return time.Time{}, fmt.Errorf("%w: time out of range", errBadNonce)
	}
	return time.UnixMilli(int64(ms)), nil
}
