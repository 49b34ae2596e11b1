package tcpso

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
)

// Listener is a TCP listener on an S-O or passive candidate's base that
// hands a connection from a punch's remote address to that punch (see
// Punch.Listener) and every other connection to Accept.
//
// A connection reaches a listener instead of a punching socket when the
// peer's SYN arrives while no socket of ours is in SYN_SENT for that
// 4-tuple: a public peer (no NAT to open first), or a NAT that lets
// unsolicited SYNs in. Then our own connect() can only fail with
// EADDRNOTAVAIL, and the accepted connection is the punch's result.
type Listener struct {
	l *net.TCPListener

	// mu guards claims. Held only for map operations.
	mu     sync.Mutex
	claims map[netip.AddrPort]*claim
}

// ListenConfig opens listeners. The zero value opens a plain listener.
type ListenConfig struct {
	// Shared sets SO_REUSEADDR and SO_REUSEPORT (see PortSharing) so that
	// dialers can bind the listener's port: needed for S-O candidates and
	// for server-reflexive gathering from the port (RFC 6544 §5.2, §7.2).
	// Where sharing is not implemented, Listen fails with
	// errors.ErrUnsupported. false: a plain listener, available on every
	// system (a passive candidate without server-reflexive gathering).
	Shared bool
}

// Listen opens a listener on addr; addr's port may be 0, the chosen port
// is in Addr.
func (lc ListenConfig) Listen(ctx context.Context, addr netip.AddrPort) (*Listener, error) {
	addr = unmap(addr)
	if !addr.Addr().IsValid() {
		return nil, fmt.Errorf("tcpso: listen %s: %w", addr, errInvalidAddr)
	}
	var nlc net.ListenConfig
	if lc.Shared {
		nlc.Control = controlReuse
	}
	l, err := nlc.Listen(ctx, network(addr.Addr()), addr.String())
	if err != nil {
		return nil, fmt.Errorf("tcpso: listen %s: %w", addr, err)
	}
	return &Listener{l: l.(*net.TCPListener), claims: map[netip.AddrPort]*claim{}}, nil
}

// AcceptTCP returns the next connection that no punch claims.
func (l *Listener) AcceptTCP() (*net.TCPConn, error) {
	for {
		c, err := l.l.AcceptTCP()
		if err != nil {
			return nil, err
		}
		if !l.deliver(c) {
			return c, nil
		}
	}
}

// Accept implements net.Listener.
func (l *Listener) Accept() (net.Conn, error) { return l.AcceptTCP() }

// Addr is the listening address.
func (l *Listener) Addr() net.Addr { return l.l.Addr() }

// Close stops the listener; a pending Accept returns net.ErrClosed.
func (l *Listener) Close() error { return l.l.Close() }

// TCPListener is the underlying listener, for deadlines and file
// descriptors. Accepting from it directly bypasses the punches' claims.
func (l *Listener) TCPListener() *net.TCPListener { return l.l }

var errClaimed = errors.New("a punch to this remote address is already running on the listener")

// claim registers a punch from local to remote; cancel is called with
// errAccepted when its connection arrives.
func (l *Listener) claim(local, remote netip.AddrPort, cancel context.CancelCauseFunc) (*claim, error) {
	la, err := netip.ParseAddrPort(l.l.Addr().String())
	if err != nil || la.Port() != local.Port() {
		return nil, fmt.Errorf("listener %s is not on the punch's port %d", l.l.Addr(), local.Port())
	}
	c := &claim{l: l, remote: remote, cancel: cancel}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.claims[remote] != nil {
		return nil, fmt.Errorf("%s: %w", remote, errClaimed)
	}
	l.claims[remote] = c
	return c, nil
}

// deliver hands c to the punch that claims its remote address, if any.
func (l *Listener) deliver(c *net.TCPConn) bool {
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return false
	}
	l.mu.Lock()
	cl := l.claims[unmap(ap)]
	delete(l.claims, unmap(ap))
	l.mu.Unlock()
	return cl != nil && cl.give(c)
}

// claim is one punch's interest in a connection from remote.
type claim struct {
	l      *Listener
	remote netip.AddrPort
	cancel context.CancelCauseFunc

	// mu guards the fields below.
	mu       sync.Mutex
	conn     *net.TCPConn
	released bool
}

func (c *claim) give(conn *net.TCPConn) bool {
	c.mu.Lock()
	if c.released {
		c.mu.Unlock()
		return false
	}
	c.conn = conn
	c.mu.Unlock()
	c.cancel(errAccepted)
	return true
}

// release withdraws the claim and returns the connection delivered to it,
// if any. Safe on a nil claim and more than once.
func (c *claim) release() *net.TCPConn {
	if c == nil {
		return nil
	}
	c.l.mu.Lock()
	if c.l.claims[c.remote] == c {
		delete(c.l.claims, c.remote)
	}
	c.l.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.released = true
	conn := c.conn
	c.conn = nil
	return conn
}
