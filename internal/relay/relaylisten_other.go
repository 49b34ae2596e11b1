//go:build !linux

package relay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// listenRelay fails: a relayed address must be shared by its listener and
// the Connect sockets dialing from it (RFC 6062 §5.2), and the way this
// relay does that safely is Linux's.
func listenRelay(context.Context, netip.AddrPort) (*net.TCPListener, error) {
	return nil, fmt.Errorf("relay: TCP allocations on this system: %w", errors.ErrUnsupported)
}
