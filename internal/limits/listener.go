package limits

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Refusal reasons a Listener notes and counts.
const (
	ReasonPerSource = "per-source" // the source's limit was reached
	ReasonTotal     = "max-conns"  // the limit in all was reached
)

// Listener admits accepted connections by a Counter before anything reads
// from them: one over a limit is reset at once (an RST leaves the server
// no TIME_WAIT entry), counted and noted; an admitted one gives its slot
// back when it is closed. Wrap the raw TCP listener, under any TLS.
type Listener struct {
	net.Listener
	counter *Counter
	log     *RefusalLog // nil: refusals are counted, not logged
	// Shared, when set, names sources that stand for many clients
	// (trusted proxies): their connections count in all, not per
	// source; their clients are counted where the proxy names them.
	// Set before the first Accept.
	Shared func(netip.Addr) bool

	perSource, total atomic.Uint64
}

// NewListener admits l's connections by c and notes refusals in log (which
// may be nil).
func NewListener(l net.Listener, c *Counter, log *RefusalLog) *Listener {
	return &Listener{Listener: l, counter: c, log: log}
}

// Accept returns the next admitted connection; refused ones never leave it.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteIP(c)
		if l.Shared != nil && l.Shared(ip) {
			if err := l.counter.TakeShared(); err != nil {
				l.total.Add(1)
				if l.log != nil {
					l.log.Note(ReasonTotal, fmt.Sprintf("%v on %v: %v", c.RemoteAddr(), l.Addr(), err))
				}
				Reset(c)
				continue
			}
			return &countedConn{Conn: c, give: l.counter.GiveShared}, nil
		}
		if err := l.counter.Take(ip); err != nil {
			reason := ReasonTotal
			if errors.Is(err, ErrPerSource) {
				reason = ReasonPerSource
				l.perSource.Add(1)
			} else {
				l.total.Add(1)
			}
			if l.log != nil {
				l.log.Note(reason, fmt.Sprintf("%v on %v: %v", c.RemoteAddr(), l.Addr(), err))
			}
			Reset(c)
			continue
		}
		return &countedConn{Conn: c, give: func() { l.counter.Give(ip) }}, nil
	}
}

// Open returns how many admitted connections are open.
func (l *Listener) Open() int { return l.counter.Open() }

// Refused returns the refusals so far by reason.
func (l *Listener) Refused() map[string]uint64 {
	return map[string]uint64{ReasonPerSource: l.perSource.Load(), ReasonTotal: l.total.Load()}
}

// Reset closes c with an RST when it is a TCP connection.
func Reset(c net.Conn) {
	if t := Socket(c); t != nil {
		t.SetLinger(0)
	}
	c.Close()
}

// Socket is the TCP socket of c: c itself, or the socket under a
// connection that only renames its addresses (one that came through a
// trusted proxy, whose PROXY header named the client) once nothing it
// read ahead is left to read; nil otherwise.
func Socket(c net.Conn) *net.TCPConn {
	switch t := c.(type) {
	case *net.TCPConn:
		return t
	case interface {
		Socket() *net.TCPConn
		Buffered() int
	}:
		if t.Buffered() == 0 {
			return t.Socket()
		}
	}
	return nil
}

func remoteIP(c net.Conn) netip.Addr {
	if t, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return t.AddrPort().Addr().Unmap()
	}
	if c.RemoteAddr() == nil {
		return netip.Addr{}
	}
	ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	return ap.Addr().Unmap()
}

// countedConn gives its slot back on its first Close.
type countedConn struct {
	net.Conn
	once sync.Once
	give func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.give)
	return err
}

// CloseWrite keeps a TCP connection's half-close (net/http sends its FIN
// with it before it closes a connection it answered).
func (c *countedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}
