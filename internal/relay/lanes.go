package relay

import (
	"bytes"
	"encoding/binary"
	"net"
	"sync"
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
// when a Connect finds none free, at most maxLanes, and they end with it.
// With all of them connecting, the next Connect waits for one, and so
// does the main reader: the bound on what one client makes the relay do
// at once.
const maxLanes = 8

// typeConnectRequest is a Connect request's STUN message type (RFC 6062
// §6.1: method 0x000A, class request).
const typeConnectRequest = 0x000a

// laneSet is a connection's lanes. ch and done are set once, under the
// connection's reqMu; n is the main reader's alone.
type laneSet struct {
	ch   chan []byte   // Connect requests, each taken by one free lane
	done chan struct{} // closed when the connection shuts
	n    int
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
	case ls.ch <- f:
		return true
	case <-ls.done:
		return false
	default: // every lane connects: one more, or wait for one
	}
	if ls.n < maxLanes && c.s.startLane(&laneConn{c: c, ls: ls}) {
		ls.n++
	}
	select {
	case ls.ch <- f:
		return true
	case <-ls.done:
		return false
	}
}

// laneSet returns the connection's lanes, made on first use; nil once the
// connection shut.
func (c *clientConn) laneSet() *laneSet {
	c.reqMu.Lock()
	defer c.reqMu.Unlock()
	if c.lanes == nil && !c.shutting {
		c.lanes = &laneSet{ch: make(chan []byte), done: make(chan struct{})}
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
// until the connection shuts; false when the relay is closing.
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
	c    *clientConn
	ls   *laneSet
	once sync.Once
}

func (l *laneConn) Read(p []byte) (int, error) {
	select {
	case f := <-l.ls.ch:
		// f fit the main reader's buffer, which is as large as this one.
		return copy(p, f), nil
	case <-l.ls.done:
		return 0, net.ErrClosed
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

func (l *laneConn) LocalAddr() net.Addr              { return l.c.LocalAddr() }
func (l *laneConn) RemoteAddr() net.Addr             { return l.c.RemoteAddr() }
func (l *laneConn) SetDeadline(time.Time) error      { return nil }
func (l *laneConn) SetReadDeadline(time.Time) error  { return nil }
func (l *laneConn) SetWriteDeadline(time.Time) error { return nil }
