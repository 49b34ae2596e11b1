package relay

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/stun"

	"github.com/icetcp/icetcp/internal/stuntcp"
)

// clientConn is a client's connection as pion's TURN server sees it (the
// STUN server sees a stunView of it): the first message, already read by
// the demultiplexer, comes first. It also
//   - returns at most one STUN message (or ChannelData frame) per Read,
//     keeping what a read brought beyond it for the next one, so that
//     pion's reader never swallows bytes that follow a ConnectionBind
//     request (they belong to the peer, and pion's own buffer would lose
//     them);
//   - closes the connection after IdleTimeout without a request unless an
//     allocation lives on it;
//   - joins the relayed pair itself when pion starts copying after
//     ConnectionBind (WriteTo/ReadFrom, see pipe.go).
type clientConn struct {
	s      *Server
	raw    net.Conn     // the accepted connection; closing it ends everything
	tcp    *net.TCPConn // raw as a TCP socket, or nil
	remote netip.AddrPort

	tlsConf *tls.Config // ServeTLS's, or nil

	// Reader state, touched only by the goroutine that reads: pion's, then
	// the relayed pair's client-to-peer copy (pion's reader waits in its
	// ConnectionBind handler meanwhile, and gets errRelayed after).
	started bool     // the first message has been read
	toSTUN  bool     // it was a Binding request: the STUN server takes over at Close
	stream  net.Conn // raw, or the *tls.Conn over it

	pending []byte // read from the stream, not yet returned: the first message, or bytes past a frame
	frames  framer

	allocs atomic.Int32 // allocations made on this connection
	data   atomic.Bool  // joined to a peer connection
	pair   atomic.Pointer[pair]

	atPion    atomic.Bool // pion holds it: its Close ends pion's goroutine
	closeOnce sync.Once
	closeErr  error
}

func newClientConn(s *Server, raw net.Conn, remote netip.AddrPort, tc *tls.Config) *clientConn {
	c := &clientConn{s: s, raw: raw, remote: remote, stream: raw, tlsConf: tc}
	c.tcp, _ = raw.(*net.TCPConn)
	return c
}

// errToSTUN ends pion's reading of a connection that belongs to the STUN
// server: its first message is a Binding request.
var errToSTUN = errors.New("relay: a STUN Binding connection; handed to the STUN server")

// errRelayed ends pion's reading of a client data connection after
// ConnectionBind: its bytes belong to the relayed pair.
var errRelayed = errors.New("relay: a client data connection; its bytes are relayed to the peer")

// first runs the TLS handshake, if any, and reads the first STUN message
// within FirstMessageTimeout (the deadline admit set), with one read into
// pion's buffer p when the message fits. A Binding request makes the
// connection the STUN server's; anything else is pion's, and what was read
// waits in pending.
func (c *clientConn) first(p []byte) error {
	c.started = true
	stream := c.raw
	if c.tlsConf != nil {
		t := tls.Server(c.raw, c.tlsConf)
		if err := t.Handshake(); err != nil {
			return c.s.refuseFirst(c, fmt.Errorf("TLS handshake: %w", err))
		}
		stream = t
	}
	n, err := stream.Read(p)
	if n == 0 && err != nil {
		return c.s.refuseFirst(c, fmt.Errorf("stuntcp: read header: %w", err))
	}
	got := bytes.NewReader(p[:n])
	var m stun.Message
	if err := stuntcp.ReadMessage(io.MultiReader(got, stream), &m); err != nil {
		return c.s.refuseFirst(c, err)
	}
	if err := c.raw.SetDeadline(time.Time{}); err != nil {
		return err
	}
	c.stream = stream
	c.pending = append(m.Raw, p[n-got.Len():n]...)
	if m.Type == stun.BindingRequest {
		c.toSTUN = true
		return errToSTUN
	}
	return nil
}

func (c *clientConn) Read(p []byte) (int, error) {
	if !c.started {
		if err := c.first(p); err != nil {
			return 0, err
		}
	}
	if c.data.Load() {
		// The relayed pair reads the stream itself (and took pending);
		// pion's reader only comes back here once the pair has ended,
		// and must not touch the pair's state (it raced with the
		// client-to-peer copy's pending).
		return 0, errRelayed
	}
	var n int
	var err error
	fromPending := len(c.pending) > 0
	if fromPending {
		n = copy(p, c.pending)
	} else {
		c.armIdle()
		n, err = c.stream.Read(p)
	}
	k := c.frames.take(p[:n])
	switch {
	case fromPending:
		c.pending = c.pending[k:]
	case k < n:
		c.pending = append([]byte(nil), p[k:n]...)
	}
	if len(c.pending) == 0 {
		c.pending = nil // let a large first message go
	}
	return k, err
}

const frameHead = 4 // STUN type and length; ChannelData number and length

// framer finds frame ends in a stream of STUN messages (RFC 8489 §5: top
// bits 00, 20-byte header) and ChannelData (RFC 8656 §12: top bits 01,
// padded to 4 bytes over TCP). Anything else is passed on 4 bytes at a
// time, and pion rejects it.
type framer struct {
	left  int // bytes of the current frame still to come, after its head
	head  [frameHead]byte
	headN int // bytes of the next frame's head seen so far
}

// take returns how many bytes of data, which continues the stream, belong
// to the current frame: all of them, or up to the frame's end.
func (f *framer) take(data []byte) int {
	n := 0
	for n < len(data) {
		if f.left > 0 {
			k := min(f.left, len(data)-n)
			f.left -= k
			n += k
			if f.left == 0 {
				return n
			}
			continue
		}
		k := copy(f.head[f.headN:], data[n:])
		f.headN += k
		n += k
		if f.headN == frameHead {
			f.headN = 0
			f.left = frameSize(f.head[:]) - frameHead
			if f.left == 0 {
				return n
			}
		}
	}
	return n
}

// frameSize is the size of the frame that starts with head.
func frameSize(head []byte) int {
	n := int(binary.BigEndian.Uint16(head[2:4]))
	switch head[0] >> 6 {
	case 0:
		return 20 + n
	case 1:
		return frameHead + (n+3)&^3
	}
	return frameHead
}

// armIdle sets the read deadline for the next request: IdleTimeout without
// an allocation, none with one.
func (c *clientConn) armIdle() {
	var dl time.Time
	if c.allocs.Load() == 0 {
		dl = time.Now().Add(c.s.cfg.IdleTimeout)
	}
	c.stream.SetReadDeadline(dl)
}

func (c *clientConn) allocationAdded() {
	c.allocs.Add(1)
	c.stream.SetReadDeadline(time.Time{})
}

func (c *clientConn) allocationRemoved(idle time.Duration) {
	if c.allocs.Add(-1) == 0 && !c.data.Load() {
		c.stream.SetReadDeadline(time.Now().Add(idle))
	}
}

func (c *clientConn) Write(p []byte) (int, error) { return c.stream.Write(p) }

// Close is pion's: its connection goroutine closes the connection last,
// which is how the Server's Close knows it ended. A connection whose first
// message was a Binding request goes on to the STUN server instead.
func (c *clientConn) Close() error {
	if c.atPion.Swap(false) {
		defer c.s.pionWG.Done()
		if c.toSTUN {
			c.toSTUN = false
			if c.s.toSTUN(c) {
				return nil
			}
		}
	}
	return c.shut()
}

// shut closes the socket and releases the connection's slot.
func (c *clientConn) shut() error {
	c.closeOnce.Do(func() {
		c.closeErr = c.raw.Close()
		c.s.forget(c)
	})
	return c.closeErr
}

func (c *clientConn) LocalAddr() net.Addr                { return c.raw.LocalAddr() }
func (c *clientConn) RemoteAddr() net.Addr               { return c.raw.RemoteAddr() }
func (c *clientConn) SetDeadline(t time.Time) error      { return c.stream.SetDeadline(t) }
func (c *clientConn) SetReadDeadline(t time.Time) error  { return c.stream.SetReadDeadline(t) }
func (c *clientConn) SetWriteDeadline(t time.Time) error { return c.stream.SetWriteDeadline(t) }
