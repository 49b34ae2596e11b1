// Package signalingtest provides an in-memory signaling.Channel pair for
// tests of code that takes a Channel, such as the agent.
package signalingtest

import (
	"context"
	"fmt"
	"sync"

	"github.com/icetcp/icetcp/signaling"
)

// Pair returns two connected in-memory Channels; both are *End.
//
// Send round-trips every message through signaling.Encode and
// signaling.Decode, so a test exercises the real schema, and never blocks:
// the queue is unbounded. Closing one end makes the other's Recv return the
// messages already sent, then one TypePeerLeft message, then errors that
// match both signaling.ErrClosed and signaling.ErrPeerLeft; its Send
// returns an error matching signaling.ErrPeerLeft at once.
func Pair() (a, b signaling.Channel) {
	x, y := NewPair()
	return x, y
}

// NewPair is Pair with the concrete type, for tests that inject raw bytes.
func NewPair() (a, b *End) {
	a, b = newEnd(), newEnd()
	a.peer, b.peer = b, a
	return a, b
}

// End is one side of a Pair.
type End struct {
	peer   *End
	ready  chan struct{} // capacity 1: "queue or state changed"
	closed chan struct{} // closed by this end's Close

	closeOnce sync.Once

	mu sync.Mutex
	// guarded by mu
	queue    []item
	peerGone bool // the peer closed; deliver peer-left after the queue
	leftSent bool // peer-left has been returned once
}

type item struct {
	m   signaling.Message
	err error
}

func newEnd() *End {
	return &End{ready: make(chan struct{}, 1), closed: make(chan struct{})}
}

var _ signaling.Channel = (*End)(nil)

// Send validates m through an Encode/Decode round trip and queues the
// decoded copy for the other end.
func (e *End) Send(ctx context.Context, m signaling.Message) error {
	if err := e.check(ctx); err != nil {
		return fmt.Errorf("signalingtest: send: %w", err)
	}
	if !m.Type.FromAgent() {
		return fmt.Errorf("%w: %q", signaling.ErrRendezvousOnly, m.Type)
	}
	b, err := signaling.Encode(m)
	if err != nil {
		return err
	}
	d, err := signaling.Decode(b)
	if err != nil {
		return err
	}
	return e.peer.deliver(item{m: d})
}

// SendRaw delivers b to the other end as if it had arrived off the wire:
// the other end's Recv returns Decode's result for it (an error matching
// signaling.ErrInvalidMessage, ErrVersion or ErrTooLarge for bad input,
// after which the channel stays usable).
func (e *End) SendRaw(ctx context.Context, b []byte) error {
	if err := e.check(ctx); err != nil {
		return fmt.Errorf("signalingtest: send: %w", err)
	}
	m, err := signaling.Decode(b)
	if err != nil {
		return e.peer.deliver(item{err: fmt.Errorf("signalingtest: recv: %w", err)})
	}
	return e.peer.deliver(item{m: m})
}

func (e *End) check(ctx context.Context) error {
	select {
	case <-e.closed:
		return signaling.ErrClosed
	default:
	}
	return ctx.Err()
}

func (e *End) deliver(it item) error {
	e.mu.Lock()
	if e.peerGone { // e is the receiver; its peer is the sender
		e.mu.Unlock()
		return fmt.Errorf("signalingtest: send: %w", signaling.ErrPeerLeft)
	}
	select {
	case <-e.closed:
		e.mu.Unlock()
		return fmt.Errorf("signalingtest: send: %w", signaling.ErrPeerLeft)
	default:
	}
	e.queue = append(e.queue, it)
	e.mu.Unlock()
	e.wake()
	return nil
}

func (e *End) wake() {
	select {
	case e.ready <- struct{}{}:
	default:
	}
}

// Recv returns the next message from the other end.
func (e *End) Recv(ctx context.Context) (signaling.Message, error) {
	for {
		if err := e.check(ctx); err != nil {
			return signaling.Message{}, fmt.Errorf("signalingtest: recv: %w", err)
		}
		e.mu.Lock()
		switch {
		case len(e.queue) > 0:
			it := e.queue[0]
			e.queue[0] = item{}
			e.queue = e.queue[1:]
			e.mu.Unlock()
			e.wake() // a second concurrent Recv may take the next one
			return it.m, it.err
		case e.peerGone && !e.leftSent:
			e.leftSent = true
			e.mu.Unlock()
			return signaling.Message{V: signaling.Version, Type: signaling.TypePeerLeft}, nil
		case e.peerGone:
			e.mu.Unlock()
			return signaling.Message{}, fmt.Errorf("signalingtest: recv: %w: %w", signaling.ErrClosed, signaling.ErrPeerLeft)
		}
		e.mu.Unlock()
		select {
		case <-e.ready:
		case <-e.closed:
		case <-ctx.Done():
		}
	}
}

// Close ends this side: its own Send and Recv return ErrClosed, and the
// other end sees the peer leave. It is idempotent and returns nil.
func (e *End) Close() error {
	e.closeOnce.Do(func() {
		close(e.closed)
		p := e.peer
		p.mu.Lock()
		p.peerGone = true
		p.mu.Unlock()
		p.wake()
	})
	return nil
}
