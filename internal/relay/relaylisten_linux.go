package relay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// listenRelay opens the listener of a relayed address. The port must be
// free — bound by no other socket of this host — so the socket binds
// without SO_REUSEPORT (a port shared with another listener, say an ICE
// agent's tcpso listener of the same user, would split the incoming
// connections between them). Only once it listens does it get
// SO_REUSEPORT, which Linux checks when a later socket binds: the relay's
// Connect sockets can then bind the same port (RFC 6062 §5.2).
func listenRelay(ctx context.Context, ap netip.AddrPort) (*net.TCPListener, error) {
	network := "tcp4"
	if ap.Addr().Is6() {
		network = "tcp6"
	}
	var lc net.ListenConfig // SO_REUSEADDR only, as every Go listener
	l, err := lc.Listen(ctx, network, ap.String())
	if err != nil {
		return nil, err
	}
	tl := l.(*net.TCPListener)
	rc, err := tl.SyscallConn()
	if err != nil {
		tl.Close()
		return nil, err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil || serr != nil {
		tl.Close()
		return nil, fmt.Errorf("relay: SO_REUSEPORT on %s: %w", ap, errors.Join(err, serr))
	}
	return tl, nil
}
