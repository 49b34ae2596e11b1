package secure

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/flynn/noise"
)

// DefaultHandshakeTimeout bounds a handshake when Config leaves it zero.
const DefaultHandshakeTimeout = 10 * time.Second

// Config tunes a handshake. The zero value is ready to use.
type Config struct {
	// HandshakeTimeout bounds the whole handshake (a context deadline that
	// comes sooner wins). 0: DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// Rand is the source of the ephemeral keys. nil: crypto/rand.
	Rand io.Reader
	// Now is the clock for the handshake deadline. nil: time.Now.
	Now func() time.Time
}

// cipherSuite: X25519, ChaCha20-Poly1305, SHA-256. The pattern is NNpsk0:
//
//	-> psk, e
//	<- e, ee
//
// The pre-shared key from the secret authenticates both messages, the
// ephemeral-ephemeral Diffie-Hellman gives forward secrecy (a secret that
// leaks later does not open recorded sessions), and the initiator's first
// record ("ready") confirms the keys to the responder, so both sides have
// proof of the peer's possession of the secret before any data flows.
var cipherSuite = noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashSHA256)

// Client runs the handshake as the initiator over t (in icetcp, the ICE
// controlling agent's side) and returns the secure stream. On error the
// caller still owns t and should close it.
func Client(ctx context.Context, t net.Conn, s Secret, cfg Config) (*Conn, error) {
	return handshake(ctx, t, s, cfg, true)
}

// Server runs the handshake as the responder over t. It returns only after
// the initiator confirmed the keys. On error the caller still owns t.
func Server(ctx context.Context, t net.Conn, s Secret, cfg Config) (*Conn, error) {
	return handshake(ctx, t, s, cfg, false)
}

func handshake(ctx context.Context, t net.Conn, s Secret, cfg Config, initiator bool) (c *Conn, err error) {
	if !s.Valid() {
		return nil, fmt.Errorf("%w: zero Secret", ErrInvalidSecret)
	}
	now := time.Now
	if cfg.Now != nil {
		now = cfg.Now
	}
	timeout := cfg.HandshakeTimeout
	if timeout <= 0 {
		timeout = DefaultHandshakeTimeout
	}
	deadline := now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := t.SetDeadline(deadline); err != nil {
		return nil, fmt.Errorf("%w: set deadline: %w", ErrHandshake, err)
	}
	// Cancelling ctx interrupts blocked I/O through the deadline.
	stop := context.AfterFunc(ctx, func() { _ = t.SetDeadline(time.Unix(1, 0)) })
	defer func() {
		if !stop() && ctx.Err() != nil {
			c, err = nil, fmt.Errorf("%w: %w", ErrHandshake, context.Cause(ctx))
			return
		}
		if err == nil {
			err = t.SetDeadline(time.Time{})
			if err != nil {
				c, err = nil, fmt.Errorf("%w: clear deadline: %w", ErrHandshake, err)
			}
		}
	}()

	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:           cipherSuite,
		Random:                cfg.Rand,
		Pattern:               noise.HandshakeNN,
		Initiator:             initiator,
		Prologue:              []byte(handshakeMagic),
		PresharedKey:          s.psk(),
		PresharedKeyPlacement: 0,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	if initiator {
		return clientHandshake(t, hs, timeout)
	}
	return serverHandshake(t, hs, timeout)
}

func clientHandshake(t net.Conn, hs *noise.HandshakeState, timeout time.Duration) (*Conn, error) {
	msg, _, _, err := hs.WriteMessage(nil, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	if _, err := t.Write(appendHandshake(nil, msg)); err != nil {
		return nil, ioErr("send hello", err, timeout)
	}
	reply, err := readHandshake(t)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: the peer closed the connection without answering: it holds a different secret, or does not speak icetcp-secure/1", ErrHandshake)
		}
		return nil, ioErr("read reply", err, timeout)
	}
	_, toServer, toClient, err := hs.ReadMessage(nil, reply)
	if err != nil {
		return nil, fmt.Errorf("%w (reply: %w)", ErrWrongSecret, err)
	}
	c := newConn(t, true, toServer, toClient)
	c.writeMu.Lock()
	err = c.writeRecord(recReady, nil)
	c.writeMu.Unlock()
	if err != nil {
		return nil, ioErr("send ready", err, timeout)
	}
	return c, nil
}

func serverHandshake(t net.Conn, hs *noise.HandshakeState, timeout time.Duration) (*Conn, error) {
	hello, err := readHandshake(t)
	if err != nil {
		return nil, ioErr("read hello", err, timeout)
	}
	if _, _, _, err := hs.ReadMessage(nil, hello); err != nil {
		return nil, fmt.Errorf("%w (hello: %w)", ErrWrongSecret, err)
	}
	msg, toServer, toClient, err := hs.WriteMessage(nil, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	if _, err := t.Write(appendHandshake(nil, msg)); err != nil {
		return nil, ioErr("send reply", err, timeout)
	}
	c := newConn(t, false, toClient, toServer)
	typ, _, err := c.readRecord()
	switch {
	case err != nil && errors.Is(err, ErrRecord):
		return nil, fmt.Errorf("%w: key confirmation: %w", ErrWrongSecret, err)
	case err != nil:
		return nil, ioErr("read key confirmation", err, timeout)
	case typ != recReady:
		return nil, fmt.Errorf("%w: first record is %s, want ready", ErrHandshake, typ)
	}
	return c, nil
}

// ioErr words a transport failure during the handshake.
func ioErr(step string, err error, timeout time.Duration) error {
	if errors.Is(err, ErrNotSecure) || errors.Is(err, ErrHandshake) {
		return err
	}
	if isTimeout(err) {
		return fmt.Errorf("%w: %s: no answer within %v: %w", ErrHandshake, step, timeout, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrHandshake, step, err)
}
