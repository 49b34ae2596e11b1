package memnet

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/icetcp/icetcp/internal/wait"
)

// bufferLimit is how many bytes one direction holds before Write blocks:
// a stand-in for the kernel's socket buffers, so flow control exists.
const bufferLimit = 256 << 10

// stream is one direction of a connection: bytes written by one end and
// read by the other.
type stream struct {
	mu      sync.Mutex // guards following
	buf     []byte
	eof     bool // the writer half-closed (FIN)
	reset   bool // the path was reset: reads fail after the bytes before
	broken  bool // the reader's end is closed: writes fail
	stalled bool // the path died: writes vanish
	// With a delay (Network.Delay), written bytes and the FIN travel in
	// queue until they are due; finSent is the writer's own view of its
	// FIN, eof the reader's.
	delay    func() time.Duration
	queue    []chunk
	inflight int // bytes in queue
	lastDue  time.Time
	finSent  bool
	// readable and writable are poked (capacity 1) when the state changes.
	readable chan struct{}
	writable chan struct{}
}

// chunk is a write (or the FIN) on its way to the reader.
type chunk struct {
	due  time.Time
	data []byte
	fin  bool
}

// sendLocked queues data (or the FIN) for delivery after the stream's
// delay, never before what was sent earlier.
func (s *stream) sendLocked(data []byte, fin bool) {
	due := time.Now().Add(s.delay())
	if due.Before(s.lastDue) {
		due = s.lastDue
	}
	s.lastDue = due
	s.queue = append(s.queue, chunk{due: due, data: data, fin: fin})
	s.inflight += len(data)
	time.AfterFunc(time.Until(due), s.deliverDue)
}

// deliverDue moves what is due from the queue to the reader, in order.
func (s *stream) deliverDue() {
	s.mu.Lock()
	now := time.Now()
	for len(s.queue) > 0 && !s.queue[0].due.After(now) {
		c := s.queue[0]
		s.queue = s.queue[1:]
		s.inflight -= len(c.data)
		switch {
		case s.broken || s.reset || s.stalled:
		case c.fin:
			s.eof = true
		default:
			s.buf = append(s.buf, c.data...)
		}
	}
	s.mu.Unlock()
	poke(s.readable)
	poke(s.writable)
}

func newStream() *stream {
	return &stream{readable: make(chan struct{}, 1), writable: make(chan struct{}, 1)}
}

func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Conn is one end of an in-memory TCP connection: a net.Conn with
// *net.TCPAddr addresses, half-close and deadlines.
type Conn struct {
	n             *Network
	local, remote *net.TCPAddr
	in, out       *stream
	peer          *Conn

	closeOnce sync.Once
	done      chan struct{} // closed by Close
	rd, wd    wait.Deadline
}

func newPair(a, b *net.TCPAddr) (*Conn, *Conn) {
	ab, ba := newStream(), newStream()
	x := &Conn{local: a, remote: b, in: ba, out: ab, done: make(chan struct{})}
	y := &Conn{local: b, remote: a, in: ab, out: ba, done: make(chan struct{})}
	x.peer, y.peer = y, x
	return x, y
}

var _ net.Conn = (*Conn)(nil)

// Read reads what the peer wrote; io.EOF after the peer's CloseWrite or
// Close.
func (c *Conn) Read(p []byte) (int, error) {
	for {
		s := c.in
		s.mu.Lock()
		if len(s.buf) > 0 {
			n := copy(p, s.buf)
			s.buf = s.buf[n:]
			if len(s.buf) == 0 {
				s.buf = nil
			}
			s.mu.Unlock()
			poke(s.writable)
			return n, nil
		}
		eof, reset := s.eof, s.reset
		s.mu.Unlock()
		if reset {
			return 0, c.opErr("read", syscall.ECONNRESET)
		}
		if eof {
			return 0, io.EOF
		}
		select {
		case <-s.readable:
		case <-c.done:
			return 0, c.opErr("read", net.ErrClosed)
		case <-c.rd.Done():
			return 0, c.opErr("read", os.ErrDeadlineExceeded)
		}
	}
}

// Write queues p for the peer, blocking while its buffer is full.
func (c *Conn) Write(p []byte) (int, error) {
	n := 0
	for {
		select {
		case <-c.done:
			return n, c.opErr("write", net.ErrClosed)
		default:
		}
		s := c.out
		s.mu.Lock()
		switch {
		case s.broken || s.reset:
			s.mu.Unlock()
			return n, c.opErr("write", syscall.ECONNRESET)
		case s.eof || s.finSent:
			s.mu.Unlock()
			return n, c.opErr("write", syscall.EPIPE)
		}
		if s.stalled {
			s.mu.Unlock()
			return len(p), nil
		}
		if room := bufferLimit - len(s.buf) - s.inflight; room > 0 {
			k := min(room, len(p)-n)
			if s.delay != nil {
				s.sendLocked(append([]byte(nil), p[n:n+k]...), false)
			} else {
				s.buf = append(s.buf, p[n:n+k]...)
			}
			n += k
		}
		s.mu.Unlock()
		poke(s.readable)
		if n == len(p) {
			return n, nil
		}
		select {
		case <-s.writable:
		case <-c.done:
			return n, c.opErr("write", net.ErrClosed)
		case <-c.wd.Done():
			return n, c.opErr("write", os.ErrDeadlineExceeded)
		}
	}
}

// CloseWrite sends FIN: the peer reads io.EOF after the bytes written.
func (c *Conn) CloseWrite() error {
	c.in.mu.Lock()
	wasReset := c.in.reset // this end read the reset: its socket sends nothing more
	c.in.mu.Unlock()
	s := c.out
	s.mu.Lock()
	switch {
	case s.stalled, s.reset, wasReset: // a FIN into a dead path never arrives
	case s.delay != nil:
		if !s.finSent {
			s.finSent = true
			s.sendLocked(nil, true)
		}
	default:
		s.eof = true
	}
	s.mu.Unlock()
	poke(s.readable)
	return nil
}

// Close closes both directions: the peer reads io.EOF, its writes fail.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		close(c.done)
		c.CloseWrite()
		s := c.in
		s.mu.Lock()
		if !s.stalled {
			s.broken = true
		}
		s.buf = nil
		s.mu.Unlock()
		poke(s.writable)
		if c.n != nil {
			c.n.forget(c)
		}
	})
	return nil
}

// Reset breaks the connection as a middlebox that dies would (a relay, a
// NAT losing its state): both ends read ECONNRESET after what they had.
//
// Both directions are marked before either end is woken: an end that
// woke on the first could otherwise close, and its FIN reach the other
// end ahead of the reset (a reset connection carries no FIN).
func (c *Conn) Reset() {
	streams := []*stream{c.in, c.out}
	for _, s := range streams {
		s.mu.Lock()
		s.reset, s.broken = true, true
		s.mu.Unlock()
	}
	for _, s := range streams {
		poke(s.readable)
		poke(s.writable)
	}
}

func (s *stream) stall() {
	s.mu.Lock()
	s.stalled = true
	s.mu.Unlock()
}

func (c *Conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.local, Addr: c.remote, Err: err}
}

func (c *Conn) LocalAddr() net.Addr  { return c.local }
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

func (c *Conn) SetDeadline(t time.Time) error {
	c.rd.Set(t)
	c.wd.Set(t)
	return nil
}
func (c *Conn) SetReadDeadline(t time.Time) error  { c.rd.Set(t); return nil }
func (c *Conn) SetWriteDeadline(t time.Time) error { c.wd.Set(t); return nil }

// errRefused is what a connect to a closed port gets: errors.Is works with
// syscall.ECONNREFUSED, as for a real RST.
var errRefused = syscall.ECONNREFUSED

var errTimeout = errors.New("memnet: connect timed out")

// errInUse is what connect meets when the 4-tuple is taken.
var errInUse = syscall.EADDRNOTAVAIL
