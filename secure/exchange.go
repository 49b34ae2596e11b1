package secure

import (
	"context"
	"crypto/ecdh"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"

	"github.com/schollz/pake/v3"

	"github.com/icetcp/icetcp/signaling"
)

// The code exchange: SPAKE2 (Abdalla and Pointcheval, 2005) on NIST P-256
// as github.com/schollz/pake/v3 implements it (croc's PAKE), over
// signaling, then the key confirmation of ConfirmPeer under the key it
// agreed:
//
//	maker → taker  pake {from: maker, msg: X = a·G + pw·U}
//	taker → maker  pake {from: taker, msg: Y = b·G + pw·V}
//	both           K = SHA-256(pw, X, Y, Z), Z = a·(Y − pw·V) = b·(X − pw·U)
//	both           confirm (ConfirmPeer) under HKDF(K)
//
// X and Y travel as uncompressed SEC 1 points (65 bytes, base64url); each
// side checks the other's is on the curve before it is used. Someone
// without the code who takes the peer's place learns, from the confirm
// MAC, whether one guess was right, and nothing it could test other
// guesses with; so does the rendezvous, which sees X, Y and the MACs.
//
// The library's weaknesses, which we accept for now (no maintained
// alternative is served to this project: see doc.go): it computes with
// math/big and crypto/elliptic's deprecated affine API, so its timing is
// not constant (a local attacker who can time the process learns about
// the password scalar); the derivation of its points U and V is not
// published; its key is not bound to the two sides' identities (here the
// room and the confirmation's nonces are); and it panics on malformed
// input, which is why points are decoded and checked here first.

// CodeSide says which end of a code exchange this side is.
type CodeSide int

const (
	// CodeMaker made the code (NewCode) and read it out: icetcp send.
	CodeMaker CodeSide = iota
	// CodeTaker typed the code in (ParseCode): icetcp receive.
	CodeTaker
)

const pakeCurve = "p256"

// p256PointLen is an uncompressed SEC 1 point on P-256.
const p256PointLen = 65

// ExchangeCode runs the code's key exchange with the peer on ch (in the
// code's room, Code.RoomName) and then proves the key to the peer as
// ConfirmPeer does. It returns the agreed key as a Secret for Client and
// Server, with what the peer sends after its proof (its credentials) left
// in ch for the agent.
//
// A peer that leaves before it sent its key share is waited past (the
// maker sends a fresh share to the next). Once shares were exchanged the
// exchange was a guess for whoever is on the other side, so any failure
// from then on ends it: an error wrapping ErrUnconfirmed means the peer
// did not hold the code (a typo, or someone guessing). Do not run a new
// exchange with the same code after such an error: make a new code, or an
// attacker gets one guess per run. After a successful exchange, running
// another with the same code (to resume a transfer) is fine.
func ExchangeCode(ctx context.Context, ch signaling.Channel, c Code, side CodeSide) (Secret, error) {
	if !c.Valid() {
		return Secret{}, fmt.Errorf("%w: zero Code", ErrInvalidCode)
	}
	role, mine, theirs := 0, signaling.PakeMaker, signaling.PakeTaker
	if side == CodeTaker {
		role, mine, theirs = 1, signaling.PakeTaker, signaling.PakeMaker
	}
	pw := c.password()
	p, err := newPake(pw, role)
	if err != nil {
		return Secret{}, err
	}
	send := func(p *pake.Pake) error {
		x, y := p.Xᵤ, p.Xᵥ
		if role == 1 {
			x, y = p.Yᵤ, p.Yᵥ
		}
		msg := &signaling.Pake{From: mine, Msg: base64.RawURLEncoding.EncodeToString(encodePoint(x, y))}
		if err := ch.Send(ctx, signaling.Message{Type: signaling.TypePake, Pake: msg}); err != nil {
			return fmt.Errorf("secure: code exchange: %w", err)
		}
		return nil
	}
	if role == 0 {
		if err := send(p); err != nil {
			return Secret{}, err
		}
	}
	for rounds := 0; ; {
		m, err := ch.Recv(ctx)
		switch {
		case errors.Is(err, signaling.ErrInvalidMessage):
			continue
		case err != nil:
			return Secret{}, fmt.Errorf("secure: code exchange: %w", err)
		}
		switch m.Type {
		case signaling.TypePeerLeft:
			if rounds++; rounds > maxConfirmRounds {
				return Secret{}, fmt.Errorf("%w: %d peers left the room before the key exchange", ErrUnconfirmed, rounds)
			}
			if role == 0 { // a fresh share for the next peer
				if p, err = newPake(pw, role); err != nil {
					return Secret{}, err
				}
				if err := send(p); err != nil {
					return Secret{}, err
				}
			}
			continue
		case signaling.TypeError:
			return Secret{}, fmt.Errorf("secure: code exchange: the rendezvous said %s: %s", m.Code, m.Reason)
		case signaling.TypePake:
		case signaling.TypeConfirm:
			return Secret{}, fmt.Errorf("%w: it confirms a secret, not a code (the other side was started with --secret?)", ErrUnconfirmed)
		default:
			return Secret{}, fmt.Errorf("%w: it sent %s before the key exchange", ErrUnconfirmed, m.Type)
		}
		if m.Pake.From != theirs {
			return Secret{}, fmt.Errorf("%w: the peer is also the %s of the code (two senders, or two receivers, with one code)", ErrUnconfirmed, m.Pake.From)
		}
		x, y, err := decodePoint(m.Pake.Msg)
		if err != nil {
			return Secret{}, err
		}
		if err := update(p, role, x, y); err != nil {
			return Secret{}, err
		}
		if role == 1 {
			if err := send(p); err != nil {
				return Secret{}, err
			}
		}
		break
	}
	k, err := p.SessionKey()
	if err != nil {
		return Secret{}, fmt.Errorf("secure: code exchange: %w", err)
	}
	s := Secret{data: string(k), salt: kdfPakeSalt}
	if err := confirmPeer(ctx, ch, s, nil, true); err != nil {
		return Secret{}, err
	}
	return s, nil
}

// kdfPakeSalt is the HKDF salt of the keys derived from a PAKE's key.
const kdfPakeSalt = "icetcp code key v1"

func newPake(pw []byte, role int) (p *pake.Pake, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("secure: code exchange: pake: %v", r)
		}
	}()
	p, err = pake.InitCurve(pw, role, pakeCurve)
	if err != nil {
		return nil, fmt.Errorf("secure: code exchange: %w", err)
	}
	return p, nil
}

// update gives p the peer's share (X from the maker, Y from the taker).
// The point was checked by decodePoint; the library panics on what it does
// not expect, so a panic is an error here too.
func update(p *pake.Pake, role int, x, y *big.Int) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: its key share broke the exchange: %v", ErrUnconfirmed, r)
		}
	}()
	q := &pake.Pake{Role: 1 - role}
	if role == 0 {
		q.Yᵤ, q.Yᵥ = x, y
	} else {
		q.Xᵤ, q.Xᵥ = x, y
	}
	if err := p.Update(q.Bytes()); err != nil {
		return fmt.Errorf("%w: its key share: %w", ErrUnconfirmed, err)
	}
	return nil
}

func encodePoint(x, y *big.Int) []byte {
	b := make([]byte, p256PointLen)
	b[0] = 4
	x.FillBytes(b[1:33])
	y.FillBytes(b[33:])
	return b
}

// decodePoint parses a key share: base64url of an uncompressed P-256
// point that is on the curve and not the point at infinity.
func decodePoint(s string) (x, y *big.Int, err error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err == nil && len(b) != p256PointLen {
		err = fmt.Errorf("%d bytes, want %d", len(b), p256PointLen)
	}
	if err == nil {
		_, err = ecdh.P256().NewPublicKey(b) // on the curve, not infinity
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w: its key share is not a P-256 point: %w", ErrUnconfirmed, err)
	}
	return new(big.Int).SetBytes(b[1:33]), new(big.Int).SetBytes(b[33:]), nil
}
