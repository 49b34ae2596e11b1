package relay

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Connect lanes. pion reads a control connection's requests one at a time
// and answers each before it reads the next, and its answer to a Connect
// waits for the relay's TCP connect to the peer: up to connectTimeout
// (30 s, the least RFC 6062 §5.2 allows) when the peer's NAT or firewall
// drops the SYN, as filtering NATs do with the addresses an ICE agent
// tries. Whatever the client asked meanwhile waited as long: its Refresh
// (in the lab a deallocation timed out on the client and the allocation
// counted against the user's quota until the connect gave up), its
// permissions, its next Connect. So a Connect request on a connection
// that holds an allocation goes to a lane: another pion reader of the
// same connection (the same addresses, hence the same allocation), whose
// answer is written between the main reader's. A connection gets lanes
// when a Connect finds none free, at most maxLanes; with all of them
// connecting, the next Connect waits for one, and so does the main
// reader: the bound on what one client makes the relay do at once. A
// lane idle for laneIdle retires (a pion reader and its buffer, ~10 KiB,
// would otherwise stay with every allocation that ever sent a Connect),
// and the connection's close ends the others.
const maxLanes = 8

// laneIdle is how long a lane waits for a Connect before it retires:
// an agent's Connects come in a burst, its checks.
const laneIdle = 10 * time.Second

// nowhere is a retiring lane's remote address: pion deletes the
// allocation of the address a reader it leaves reports (after any read
// error), and no allocation is nowhere's.
var nowhere = &net.TCPAddr{IP: net.IPv4zero, Port: 0}

// typeConnectRequest is a Connect request's STUN message type (RFC 6062
// §6.1: method 0x000A, class request).
const typeConnectRequest = 0x000a

// laneSet is a connection's lanes, made once under the connection's
// reqMu. Only the main reader adds to n; a retiring lane takes itself off
// and tells the main reader, which may be waiting for a free lane.
type laneSet struct {
	ch      chan []byte   // Connect requests, each taken by one free lane
	done    chan struct{} // closed when the connection shuts
	retired chan struct{} // poked (capacity 1) when a lane retired
	n       atomic.Int32  // lanes running
}

// toLane hands frame f, when it is a Connect request on a connection with
// an allocation, to a lane and reports true; false leaves it to the main
// reader (anything else, or the connection is shutting).
func (c *clientConn) toLane(f []byte) bool {
	if len(f) < stunHeader || binary.BigEndian.Uint16(f[:2]) != typeConnectRequest || c.alloc.Load() == nil {
		return false
	}
	ls := c.laneSet()
	if ls == nil {
		return false
	}
	f = bytes.Clone(f) // pion reuses its buffer for the main reader's next frame
	select {
	case <-ls.retired: // from before this Connect: n counts it already
	default:
	}
	for {
		select {
		case ls.ch <- f:
			return true
		case <-ls.done:
			return false
		default: // every lane connects, or none runs: one more, or wait for one
		}
		if ls.n.Load() < maxLanes {
			ls.n.Add(1)
			if !c.s.startLane(&laneConn{c: c, ls: ls}) {
				ls.n.Add(-1)
			}
		}
		select {
		case ls.ch <- f:
			return true
		case <-ls.done:
			return false
		case <-ls.retired: // look again: the lane waited for may have gone
		}
	}
}

// laneSet returns the connection's lanes, made on first use; nil once the
// connection shut.
func (c *clientConn) laneSet() *laneSet {
	c.reqMu.Lock()
	defer c.reqMu.Unlock()
	if c.lanes == nil && !c.shutting {
		c.lanes = &laneSet{ch: make(chan []byte), done: make(chan struct{}), retired: make(chan struct{}, 1)}
	}
	return c.lanes
}

// endLanes ends the connection's lanes: pion's reader of each returns.
func (c *clientConn) endLanes() {
	c.reqMu.Lock()
	defer c.reqMu.Unlock()
	c.shutting = true
	if c.lanes != nil {
		close(c.lanes.done)
	}
}

// startLane hands l to pion, which reads it on a goroutine of its own
// until the lane retires or the connection shuts; false when the relay
// is closing.
func (s *Server) startLane(l *laneConn) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false
	}
	s.pionWG.Add(1) // until pion closes l
	s.mu.Unlock()
	if !s.turnLn.deliver(l) {
		s.pionWG.Done()
		return false
	}
	return true
}

// laneConn is a lane as pion sees it: a connection that reads the Connect
// requests the main reader hands over and writes to the client's
// connection. It never fails a read before the connection shuts: pion
// deletes the allocation of a connection whose read failed.
type laneConn struct {
	c       *clientConn
	ls      *laneSet
	retired atomic.Bool
	once    sync.Once
}

// errLaneIdle ends the pion reader of a lane that retired.
var errLaneIdle = errors.New("relay: a Connect lane retired, idle")

func (l *laneConn) Read(p []byte) (int, error) {
	t := time.NewTimer(l.c.s.laneIdle)
	defer t.Stop()
	select {
	case f := <-l.ls.ch:
		// f fit the main reader's buffer, which is as large as this one.
		return copy(p, f), nil
	case <-l.ls.done:
		return 0, net.ErrClosed
	case <-t.C:
		l.retired.Store(true) // before the error: pion asks for the address after it
		l.ls.n.Add(-1)
		select {
		case l.ls.retired <- struct{}{}:
		default:
		}
		if h := l.c.s.hooks.laneRetired; h != nil {
			h()
		}
		return 0, errLaneIdle
	}
}

// Write sends pion's answer on the client's connection: whole messages,
// which the socket (or TLS) writes one at a time.
func (l *laneConn) Write(p []byte) (int, error) { return l.c.Write(p) }

// Close is pion's, once its reader of the lane returned; the connection
// itself is the main reader's to close.
func (l *laneConn) Close() error {
	l.once.Do(l.c.s.pionWG.Done)
	return nil
}

func (l *laneConn) LocalAddr() net.Addr { return l.c.LocalAddr() }

// RemoteAddr is the client's, which makes pion find the connection's
// allocation; nowhere once the lane retired, so that pion, leaving it,
// deletes nothing.
func (l *laneConn) RemoteAddr() net.Addr {
	if l.retired.Load() {
		return nowhere
	}
	return l.c.RemoteAddr()
}

func (l *laneConn) SetDeadline(time.Time) error      { return nil }
func (l *laneConn) SetReadDeadline(time.Time) error  { return nil }
func (l *laneConn) SetWriteDeadline(time.Time) error { return nil }
