//go:build !linux

package tcpso

import (
	"context"
	"net"
	"net/netip"
)

// primeSupported: changing the TTL between the first SYN and its
// retransmissions needs a hand-driven non-blocking connect, done for Linux only.
const primeSupported = false

// dialPrimed is never reached when primeSupported is false; it dials
// normally to stay correct if it were.
func dialPrimed(ctx context.Context, local, remote netip.AddrPort, _ int) (*net.TCPConn, error) {
	return Dial(ctx, local, remote)
}
