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

	"github.com/icetcp/icetcp/internal/limits"
	"github.com/icetcp/icetcp/internal/stuntcp"
)

// clientConn is a client's connection as pion's TURN server sees it (the
// STUN server sees a stunView of it): the first message, already read by
// the demultiplexer, comes first. It also
//   - returns exactly one whole STUN message (or ChannelData frame) per
//     Read, never more than pion can take (maxTURNFrame), and never reads
//     past it: the bytes that follow a ConnectionBind request belong to
//     the peer, and pion's own buffer would lose them;
//   - puts the relay's own nonces in place of pion's, both ways, and
//     keeps what quotas and cross-user isolation need to know about the
//     requests (stunmsg.go);
//   - closes the connection after IdleTimeout without a request unless an
//     allocation lives on it;
//   - joins the relayed pair itself when pion starts copying after
//     ConnectionBind (WriteTo/ReadFrom, see pipe.go).
type clientConn struct {
	s      *Server
	raw    net.Conn     // the accepted connection; closing it ends everything
	tcp    *net.TCPConn // raw as a TCP socket, or nil
	remote netip.AddrPort
	local  netip.AddrPort

	tlsConf *tls.Config // ServeTLS's, or nil

	// Reader state, touched only by the goroutine that reads: pion's, then
	// the relayed pair's client-to-peer copy (pion's reader waits in its
	// ConnectionBind handler meanwhile, and gets errRelayed after).
	started bool     // the first message has been read
	toSTUN  bool     // it was a Binding request: the STUN server takes over at Close
	stream  net.Conn // raw, or the *tls.Conn over it
	pending []byte   // read from the stream, not yet returned (bytes handed back by the STUN side)

	method atomic.Uint32                 // of the request pion handles now (its permission handler asks)
	alloc  atomic.Pointer[relayListener] // the allocation made on this connection

	reqMu     sync.Mutex // guards following: set by the reader, read by pion's writers
	permTx    [stun.TransactionIDSize]byte
	permExact []netip.AddrPort // own relayed addresses named by the CreatePermission permTx
	bindTuple nonceTuple       // a ConnectionBind's nonces belong to the control connection's
	permIPs   []netip.Addr     // the peer IPs the CreatePermission permTx names
	lanes     *laneSet         // Connect lanes (lanes.go), made on first use
	shutting  bool             // no lanes any more

	allocs atomic.Int32 // allocations made on this connection
	data   atomic.Bool  // joined to a peer connection
	pair   atomic.Pointer[pair]

	atPion    atomic.Bool // pion holds it: its Close ends pion's goroutine
	closeOnce sync.Once
	closeErr  error
}

func newClientConn(s *Server, raw net.Conn, remote netip.AddrPort, tc *tls.Config) *clientConn {
	c := &clientConn{s: s, raw: raw, remote: remote, stream: raw, tlsConf: tc}
	c.tcp = limits.Socket(raw)
	if raw != nil {
		c.local = addrPortOf(raw.LocalAddr())
	}
	return c
}

// tuple is what the relay's nonces on this connection are bound to.
func (c *clientConn) tuple() nonceTuple { return nonceTuple{client: c.remote, server: c.local} }

// errToSTUN ends pion's reading of a connection that belongs to the STUN
// server: its first message is a Binding request.
var errToSTUN = errors.New("relay: a STUN Binding connection; handed to the STUN server")

// errRelayed ends pion's reading of a client data connection after
// ConnectionBind: its bytes belong to the relayed pair.
var errRelayed = errors.New("relay: a client data connection; its bytes are relayed to the peer")

// errFrame ends pion's reading of a connection whose next frame pion could
// not take: too large for its buffer, or neither STUN nor ChannelData.
var errFrame = errors.New("relay: not a TURN frame pion can take")

// first runs the TLS handshake, if any, and reads the first STUN message
// within FirstMessageTimeout (the deadline admit set). Its header says how
// much may follow: a Binding request up to what the STUN server reads, any
// other message up to what pion reads; a header that announces more is
// refused before anything is allocated for its body (issue 14: a bare
// 20-byte header made the relay allocate 64 KiB). A TURN message is read
// into p, pion's buffer; a Binding request makes the connection the STUN
// server's. It returns the TURN message's length.
func (c *clientConn) first(p []byte) (int, error) {
	c.started = true
	stream := c.raw
	if c.tlsConf != nil {
		t := tls.Server(c.raw, c.tlsConf)
		if err := t.Handshake(); err != nil {
			return 0, c.s.refuseFirst(c, fmt.Errorf("TLS handshake: %w", err))
		}
		stream = t
	}
	var head [stunHeader]byte
	if _, err := io.ReadFull(stream, head[:]); err != nil {
		return 0, c.s.refuseFirst(c, fmt.Errorf("stuntcp: read header: %w", err))
	}
	binding := binary.BigEndian.Uint16(head[:2]) == bindingRequest
	limit := maxTURNFrame - stunHeader
	var m stun.Message
	if binding {
		limit = stuntcp.MaxRequestBody
	} else if len(p) >= maxTURNFrame {
		m.Raw = p[:0] // no allocation: pion's buffer holds every TURN message that can be valid
	}
	if err := stuntcp.ReadMessageLimit(io.MultiReader(bytes.NewReader(head[:]), stream), &m, limit); err != nil {
		return 0, c.s.refuseFirst(c, err)
	}
	if err := c.raw.SetDeadline(time.Time{}); err != nil {
		return 0, err
	}
	c.stream = stream
	if binding {
		c.pending = m.Raw
		c.toSTUN = true
		return 0, errToSTUN
	}
	if len(m.Raw) > len(p) {
		return 0, fmt.Errorf("%w: a %d-byte first message for a %d-byte buffer", errFrame, len(m.Raw), len(p))
	}
	return copy(p, m.Raw), nil // a no-op when m.Raw is p
}

func (c *clientConn) Read(p []byte) (int, error) {
	var n int
	var err error
	switch {
	case !c.started:
		n, err = c.first(p)
	case c.data.Load():
		// The relayed pair reads the stream itself (and took pending);
		// pion's reader only comes back here once the pair has ended,
		// and must not touch the pair's state (it raced with the
		// client-to-peer copy's pending).
		return 0, errRelayed
	default:
		for {
			if n, err = c.readFrame(p); err != nil {
				return 0, err
			}
			if n = c.inbound(p, n); !c.toLane(p[:n]) {
				return n, nil
			}
		}
	}
	if err != nil {
		return 0, err
	}
	return c.inbound(p, n), nil
}

// readFrame reads exactly one frame into p: what was handed back first,
// then the stream, and not a byte past the frame's end.
func (c *clientConn) readFrame(p []byte) (int, error) {
	n := 0
	fill := func(want int) error {
		for n < want {
			if len(c.pending) > 0 {
				k := copy(p[n:want], c.pending)
				c.pending = c.pending[k:]
				n += k
				continue
			}
			c.armIdle()
			k, err := c.stream.Read(p[n:want])
			n += k
			if err != nil {
				if n > 0 && errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				return err
			}
		}
		return nil
	}
	defer func() {
		if len(c.pending) == 0 {
			c.pending = nil // let a handed-back buffer go
		}
	}()
	if len(p) < frameHead {
		return 0, fmt.Errorf("%w: a %d-byte buffer", errFrame, len(p))
	}
	if err := fill(frameHead); err != nil {
		return 0, err
	}
	size, err := frameSize(p[:frameHead])
	switch {
	case err != nil:
		return 0, err
	case size > maxTURNFrame || size > len(p):
		return 0, fmt.Errorf("%w: a %d-byte frame", errFrame, size)
	}
	if err := fill(size); err != nil {
		return 0, err
	}
	return size, nil
}

const (
	frameHead  = 4  // STUN type and length; ChannelData number and length
	stunHeader = 20 // RFC 8489 §5
)

// frameSize is the size of the frame that starts with head: a STUN
// message (RFC 8489 §5: top bits 00, a 20-byte header, a length that is a
// multiple of 4) or ChannelData (RFC 8656 §12: top bits 01, padded to 4
// bytes over TCP).
func frameSize(head []byte) (int, error) {
	n := int(binary.BigEndian.Uint16(head[2:4]))
	switch head[0] >> 6 {
	case 0:
		if n%4 != 0 {
			return 0, fmt.Errorf("%w: STUN length %d is not a multiple of 4", errFrame, n)
		}
		return stunHeader + n, nil
	case 1:
		return frameHead + (n+3)&^3, nil
	}
	return 0, fmt.Errorf("%w: first byte %#02x", errFrame, head[0])
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

// Write sends one message of pion's, with the relay's nonce in it (see
// outbound). pion writes whole messages, from its reader's goroutine and
// (ConnectionAttempt) from an allocation's.
func (c *clientConn) Write(p []byte) (int, error) {
	if _, err := c.stream.Write(c.outbound(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

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
		c.endLanes()
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
