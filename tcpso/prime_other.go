//go:build !linux

package tcpso

import (
	"context"
	"errors"
	"net"
	"net/netip"
)

// primeSupported: changing the TTL between the first SYN and its
// retransmissions needs a hand-driven non-blocking connect, and telling an
// ICMP Time Exceeded from other errors needs the socket error queue: done
// for Linux only.
const primeSupported = false

// settleSupported: elsewhere a punch dials through net.Dialer, which closes
// a handshake that ended while the process was not running once its
// deadline passed (see dialPrimed on Linux).
const settleSupported = false

// dialPrimed is never reached when primeSupported is false; it dials
// normally to stay correct if it were.
func dialPrimed(ctx context.Context, local, remote netip.AddrPort, _ int) (*net.TCPConn, error) {
	return Dial(ctx, local, remote)
}

// primedConn and startPrimed exist for Trace, which returns
// errors.ErrUnsupported before reaching them here.
type primedConn struct{}

func startPrimed(_, _ netip.AddrPort, _ int) (*primedConn, error) { return nil, errors.ErrUnsupported }

func (*primedConn) wait(context.Context) (*net.TCPConn, error) { return nil, errors.ErrUnsupported }
