package secure

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/icetcp/icetcp/signaling"
)

// Key confirmation over signaling, before ICE. The rendezvous admits only
// holders of the secret to its room (RoomKey), but the peers do not take
// its word for it: before either sends its ICE credentials, each proves
// to the other that it holds the secret, so that a peer paired with
// someone else (by a rendezvous that does not check room proofs, or lies)
// learns it before it commits to the pairing, and can wait for the right
// one instead of failing the Noise handshake 15 s after ICE.
//
// The exchange is the classic nonce-and-MAC key confirmation (as in
// ISO/IEC 9798-4 and NIST SP 800-56A §5.9), under a key of its own from
// the secret (HKDF-SHA256, label "icetcp peer confirm v1"), with
// HMAC-SHA256:
//
//	A → B  confirm {nonce: Na}
//	B → A  confirm {nonce: Nb}
//	A → B  confirm {nonce: Na, to: Nb, mac: HMAC(K, label ‖ Na ‖ Nb)}
//	B → A  confirm {nonce: Nb, to: Na, mac: HMAC(K, label ‖ Nb ‖ Na)}
//
// Both sides send at once; each answers the other's nonce when it sees it
// and is done when a good answer to one of its own nonces arrives. The
// sender's nonce comes first in its MAC, so a MAC cannot be reflected, and
// a nonce equal to one of ours is refused. A MAC answers a fresh nonce of
// ours: one recorded elsewhere proves nothing. Nonces and MACs tell the
// rendezvous nothing it could test a guess of the secret with, beyond
// what the room's public key does already.

const (
	confirmNonceLen = 16
	confirmMACLen   = sha256.Size
	confirmLabel    = "icetcp confirm v1\x00"
	// maxConfirmRounds bounds how many times a wait restarts because the
	// peer left before it proved anything.
	maxConfirmRounds = 64
)

// ConfirmPeer runs the key confirmation with the peer on ch and returns
// nil once the peer proved it holds s and has been sent our proof; what
// the peer sends after its proof (its credentials) stays in ch for the
// agent. A peer that leaves before it proved anything is waited past: the
// next one in the room is asked again. A peer that fails its proof ends
// it with an error wrapping ErrUnconfirmed; the caller should leave the
// room (close ch) and join again to wait for the right peer. rnd is the
// source of nonces (nil: crypto/rand).
func ConfirmPeer(ctx context.Context, ch signaling.Channel, s Secret, rnd io.Reader) error {
	return confirmPeer(ctx, ch, s, rnd, false)
}

// confirmPeer is ConfirmPeer; once, it fails when the peer leaves instead
// of waiting for the next: after a code's key exchange the next peer would
// need an exchange of its own, and an exchange is a guess.
func confirmPeer(ctx context.Context, ch signaling.Channel, s Secret, rnd io.Reader, once bool) error {
	if !s.Valid() {
		return fmt.Errorf("%w: zero Secret", ErrInvalidSecret)
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	k := confirmer{key: s.derive(kdfConfirmInfo, 32)}
	if err := k.start(ctx, ch, rnd); err != nil {
		return err
	}
	for rounds := 0; ; {
		m, err := ch.Recv(ctx)
		switch {
		case errors.Is(err, signaling.ErrInvalidMessage):
			continue // one bad message; the channel goes on
		case err != nil:
			return fmt.Errorf("secure: key confirmation: %w", err)
		}
		switch m.Type {
		case signaling.TypePeerLeft:
			if once {
				return fmt.Errorf("%w: it left the room before it proved the code", ErrUnconfirmed)
			}
			// Gone before it proved anything: ask the next one.
			if rounds++; rounds > maxConfirmRounds {
				return fmt.Errorf("%w: %d peers left the room before they proved anything", ErrUnconfirmed, rounds)
			}
			if err := k.start(ctx, ch, rnd); err != nil {
				return err
			}
			continue
		case signaling.TypeError:
			return fmt.Errorf("secure: key confirmation: the rendezvous said %s: %s", m.Code, m.Reason)
		case signaling.TypeConfirm:
		default:
			return fmt.Errorf("%w: it sent %s before proving it (an icetcp without key confirmation, or a peer without --secret)", ErrUnconfirmed, m.Type)
		}
		done, err := k.take(ctx, ch, m.Confirm)
		if done || err != nil {
			return err
		}
	}
}

// confirmer is one side's state.
type confirmer struct {
	key      []byte
	mine     [][]byte // every nonce we sent in this confirmation, newest last
	answered [][]byte // the peer's nonces we sent our proof for
}

// start sends a fresh nonce of ours.
func (k *confirmer) start(ctx context.Context, ch signaling.Channel, rnd io.Reader) error {
	n := make([]byte, confirmNonceLen)
	if _, err := io.ReadFull(rnd, n); err != nil {
		return fmt.Errorf("secure: key confirmation: nonce: %w", err)
	}
	k.mine = append(k.mine, n)
	return k.send(ctx, ch, &signaling.Confirm{Nonce: b64(n)})
}

// take handles one confirm message; done when the peer proved the secret.
func (k *confirmer) take(ctx context.Context, ch signaling.Channel, c *signaling.Confirm) (done bool, err error) {
	theirs, err := decodeConfirm(c.Nonce, confirmNonceLen)
	if err != nil {
		return false, err
	}
	if k.ours(theirs) {
		return false, fmt.Errorf("%w: it sent one of our own nonces back", ErrUnconfirmed)
	}
	if !k.answeredTo(theirs) {
		// Prove the secret for this nonce of the peer's.
		mine := k.mine[len(k.mine)-1]
		if err := k.send(ctx, ch, &signaling.Confirm{Nonce: b64(mine), To: b64(theirs), MAC: b64(k.mac(mine, theirs))}); err != nil {
			return false, err
		}
		k.answered = append(k.answered, theirs)
	}
	if c.MAC == "" {
		return false, nil
	}
	to, err := decodeConfirm(c.To, confirmNonceLen)
	if err != nil {
		return false, err
	}
	if !k.ours(to) {
		// An answer to a nonce of ours that another peer got (the
		// rendezvous queued it before the room was re-paired): stale.
		return false, nil
	}
	mac, err := decodeConfirm(c.MAC, confirmMACLen)
	if err != nil {
		return false, err
	}
	if !hmac.Equal(mac, k.mac(theirs, to)) {
		return false, fmt.Errorf("%w: its proof does not match (it holds another secret)", ErrUnconfirmed)
	}
	return true, nil
}

func (k *confirmer) send(ctx context.Context, ch signaling.Channel, c *signaling.Confirm) error {
	if err := ch.Send(ctx, signaling.Message{Type: signaling.TypeConfirm, Confirm: c}); err != nil {
		return fmt.Errorf("secure: key confirmation: %w", err)
	}
	return nil
}

// mac is the proof of the side whose nonce is from, for the side whose
// nonce is to.
func (k *confirmer) mac(from, to []byte) []byte {
	h := hmac.New(sha256.New, k.key)
	h.Write([]byte(confirmLabel))
	h.Write(from)
	h.Write(to)
	return h.Sum(nil)
}

func (k *confirmer) ours(n []byte) bool {
	return slices.ContainsFunc(k.mine, func(m []byte) bool { return hmac.Equal(m, n) })
}

func (k *confirmer) answeredTo(n []byte) bool {
	return slices.ContainsFunc(k.answered, func(m []byte) bool { return hmac.Equal(m, n) })
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// decodeConfirm parses a nonce or MAC of exactly n bytes, in its one
// canonical spelling.
func decodeConfirm(s string, n int) ([]byte, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != n || b64(b) != s {
		return nil, fmt.Errorf("%w: a confirm value %q that is not %d bytes of base64url", ErrUnconfirmed, s, n)
	}
	return b, nil
}
