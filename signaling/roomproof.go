package signaling

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/icetcp/icetcp/internal/quote"
)

// Rooms that belong to a key. A room name alone is not a credential:
// whoever learns it (the rendezvous, anyone who watches ws://) can join
// first and be paired with the first real peer (issue 14: a squatter in
// the room of a secret made the real pair fail). A room named after an
// Ed25519 public key (RoomForKey) is joined only by a member that signs,
// with the private key, a challenge the rendezvous made for its
// connection alone: a squatter has no key, and a join captured on one
// connection proves nothing on another. icetcp derives the key from the
// shared secret (secure.RoomKey), so only holders of the secret
// get in, and the real pair meets whoever came first.
//
// The challenge travels in a header of the WebSocket upgrade's answer
// (ChallengeHeader), so that the join keeps its single round trip; the
// proof is the join's "proof" field:
//
//	Icetcp-Join-Challenge: <base64url of 32 random bytes>
//	{"v":1,"type":"join","room":"key.<base32 of the public key>","proof":"<base64url of the signature>"}
//
// The signature is over proofLabel, the challenge and the room name. The
// client signs with ProveJoin, the rendezvous checks with VerifyJoin; both
// are pure, so the format, not either side, owns them.

// KeyRoomPrefix starts the name of every room that belongs to a key; the
// rendezvous refuses any join to such a name without a good proof.
const KeyRoomPrefix = "key."

// ChallengeHeader is the header of the rendezvous's upgrade answer that
// carries the connection's challenge (EncodeChallenge).
const ChallengeHeader = "Icetcp-Join-Challenge"

const (
	challengeLen = 32
	proofLabel   = "icetcp room join v1\x00"
)

var keyEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// RoomForKey is the name of the room that belongs to pub.
func RoomForKey(pub ed25519.PublicKey) string {
	return KeyRoomPrefix + keyEncoding.EncodeToString(pub)
}

// IsKeyRoom reports whether joining the room named name takes a proof.
func IsKeyRoom(name string) bool { return strings.HasPrefix(name, KeyRoomPrefix) }

// roomKey parses the public key a key room's name carries: only the
// canonical spelling RoomForKey makes.
func roomKey(name string) (ed25519.PublicKey, error) {
	rest, ok := strings.CutPrefix(name, KeyRoomPrefix)
	if !ok {
		return nil, fmt.Errorf("%w: %s is not a key room", ErrRoomProof, quote.Short(name))
	}
	b, err := keyEncoding.DecodeString(rest)
	if err != nil || len(b) != ed25519.PublicKeySize || keyEncoding.EncodeToString(b) != rest {
		return nil, fmt.Errorf("%w: %s does not name an Ed25519 public key", ErrRoomProof, quote.Short(name))
	}
	return ed25519.PublicKey(b), nil
}

// proofMessage is what a join proof signs.
func proofMessage(room string, challenge []byte) []byte {
	m := make([]byte, 0, len(proofLabel)+len(challenge)+len(room))
	return append(append(append(m, proofLabel...), challenge...), room...)
}

// ProveJoin signs the join of room for the connection given challenge:
// the join's proof.
func ProveJoin(key ed25519.PrivateKey, room string, challenge []byte) string {
	return base64.RawURLEncoding.EncodeToString(ed25519.Sign(key, proofMessage(room, challenge)))
}

// VerifyJoin checks the proof of a join to the key room named room on the
// connection given challenge. Every failure wraps ErrRoomProof.
func VerifyJoin(room, proof string, challenge []byte) error {
	pub, err := roomKey(room)
	if err != nil {
		return err
	}
	if proof == "" {
		return fmt.Errorf("%w: room %s belongs to a key (the room of a secret: join it with icetcp connect --secret); this join carries no proof", ErrRoomProof, quote.Short(room))
	}
	sig, err := base64.RawURLEncoding.Strict().DecodeString(proof)
	if err != nil || len(sig) != ed25519.SignatureSize || base64.RawURLEncoding.EncodeToString(sig) != proof {
		return fmt.Errorf("%w: the proof is not a base64url Ed25519 signature", ErrRoomProof)
	}
	if len(challenge) != challengeLen || !ed25519.Verify(pub, proofMessage(room, challenge), sig) {
		return fmt.Errorf("%w: the proof does not verify for room %s on this connection", ErrRoomProof, quote.Short(room))
	}
	return nil
}

// NewChallenge returns a fresh random challenge for one connection.
func NewChallenge() []byte {
	c := make([]byte, challengeLen)
	rand.Read(c) // crypto/rand does not fail (Go 1.24+)
	return c
}

// EncodeChallenge spells a challenge for ChallengeHeader.
func EncodeChallenge(c []byte) string { return base64.RawURLEncoding.EncodeToString(c) }

// DecodeChallenge parses ChallengeHeader's value: only the canonical
// spelling of exactly a challenge's length. Failures wrap ErrRoomProof.
func DecodeChallenge(s string) ([]byte, error) {
	c, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(c) != challengeLen || base64.RawURLEncoding.EncodeToString(c) != s {
		return nil, fmt.Errorf("%w: the rendezvous's join challenge %s is not %d bytes of base64url", ErrRoomProof, quote.Short(s), challengeLen)
	}
	return c, nil
}
