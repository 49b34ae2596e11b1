package tcpso

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// PortSharing reports whether this system lets a listener and dialers share
// one local port (SO_REUSEPORT: Linux, macOS, the BSDs). When false, the
// agent must not offer S-O candidates, and passive candidates should get a
// plain listener (ListenConfig{}).
func PortSharing() bool { return portSharing }

// Listen opens a shared TCP listener on addr, as ListenConfig{Shared:
// true}.Listen does, and returns the bare *net.TCPListener (no punch can
// claim its connections). addr's port may be 0; the chosen port is in the
// listener's Addr.
func Listen(ctx context.Context, addr netip.AddrPort) (*net.TCPListener, error) {
	l, err := ListenConfig{Shared: true}.Listen(ctx, addr)
	if err != nil {
		return nil, err
	}
	return l.l, nil
}

// Dial makes ONE connect attempt from local to remote. local's address may be
// the zero Addr (any) and its port may be 0 (ephemeral); with a non-zero port
// the socket gets SO_REUSEADDR+SO_REUSEPORT so it can share the port with a
// listener and with other dialers. ctx bounds the attempt.
//
// Errors are *ConnectError values wrapping the *net.OpError, so errors.Is
// works with syscall errnos and context errors.
func Dial(ctx context.Context, local, remote netip.AddrPort) (*net.TCPConn, error) {
	local, remote = unmap(local), unmap(remote)
	if err := checkPair(local, remote); err != nil {
		return nil, &ConnectError{Local: local, Remote: remote, Err: err}
	}
	d := net.Dialer{}
	if local.Addr().IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(local)
	}
	if local.Port() != 0 {
		d.Control = controlReuse
	}
	c, err := d.DialContext(ctx, network(remote.Addr()), remote.String())
	if err != nil {
		return nil, &ConnectError{Local: local, Remote: remote, Err: err}
	}
	return c.(*net.TCPConn), nil
}

// ConnectError is a failed connect attempt from Local to Remote.
type ConnectError struct {
	Local, Remote netip.AddrPort
	Err           error // usually a *net.OpError
}

// Error reads "tcpso: connect 10.0.0.1:5000->198.51.100.2:6000: connect:
// connection refused"; the addresses are not repeated from the *net.OpError.
func (e *ConnectError) Error() string {
	return fmt.Sprintf("tcpso: connect %s->%s: %s", e.Local, e.Remote, causeText(e.Err))
}

func (e *ConnectError) Unwrap() error { return e.Err }

// causeText is err's message without the *net.OpError preamble, which only
// repeats the addresses.
func causeText(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	return err.Error()
}

var errInvalidAddr = errors.New("invalid address")

// checkPair rejects pairs the kernel would refuse with a less helpful errno.
func checkPair(local, remote netip.AddrPort) error {
	if !remote.Addr().IsValid() || remote.Port() == 0 {
		return fmt.Errorf("remote %w", errInvalidAddr)
	}
	if local.Addr().IsValid() && local.Addr().Is4() != remote.Addr().Is4() {
		return errors.New("local and remote address families differ")
	}
	return nil
}

// unmap turns ::ffff:a.b.c.d into a.b.c.d so that the family is chosen by what
// the address is, not how it was written.
func unmap(ap netip.AddrPort) netip.AddrPort {
	if !ap.Addr().Is4In6() {
		return ap
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// network pins the family: an ICE candidate is IPv4 or IPv6, never both, and
// "tcp6" makes Go set IPV6_V6ONLY on a wildcard listener.
func network(a netip.Addr) string {
	if a.Is4() {
		return "tcp4"
	}
	return "tcp6"
}
