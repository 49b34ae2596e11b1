package agent

import (
	"context"
	"fmt"
	"net"
	"net/netip"

	"github.com/icetcp/icetcp/internal/turn"
)

// turnAllocate allocates on s with internal/turn, whose TCP connections
// to the server go through the agent's Network like every other socket.
func (a *Agent) turnAllocate(ctx context.Context, s TURNServer) (relayAlloc, error) {
	uri, err := turn.ParseURI(s.URI)
	if err != nil {
		return nil, err
	}
	al, err := turn.Allocate(ctx, turn.Config{
		Server: uri, Username: s.Username, Password: s.Password, Secret: s.Secret,
		TLSConfig: s.TLSConfig, Dial: a.dialTURN, LoggerFactory: a.cfg.LoggerFactory,
	})
	if err != nil {
		return nil, err
	}
	return al, nil
}

// dialTURN connects to a TURN server from an ephemeral port.
func (a *Agent) dialTURN(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("agent: TURN server %q: %w", addr, err)
	}
	var remote netip.AddrPort
	if ip, err := netip.ParseAddr(host); err == nil {
		ap, err := netip.ParseAddrPort(net.JoinHostPort(ip.String(), port))
		if err != nil {
			return nil, fmt.Errorf("agent: TURN server %q: %w", addr, err)
		}
		remote = ap
	} else {
		// A name: resolve it in the family of our first host address.
		if remote, err = resolveSTUN(ctx, addr, a.family); err != nil {
			return nil, err
		}
	}
	var local netip.AddrPort
	if remote.Addr().Is4() {
		local = netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
	} else {
		local = netip.AddrPortFrom(netip.IPv6Unspecified(), 0)
	}
	return a.net.Dial(ctx, local, remote)
}
