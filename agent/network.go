package agent

import (
	"context"
	"net"
	"net/netip"

	"github.com/icetcp/icetcp/tcpso"
)

// Network opens the agent's TCP sockets. It is the seam between the ICE
// logic and the operating system: nil in Config means the host's TCP stack
// (package tcpso); tests pass an in-memory network (internal/memnet) so that
// the checklist and its timers run under testing/synctest.
type Network interface {
	// Listen opens a listener on addr (port 0: any free port). shared asks
	// for a port that dialers may bind too (SO_REUSEADDR/SO_REUSEPORT): S-O
	// candidates and STUN queries from a candidate's own port need it.
	Listen(ctx context.Context, addr netip.AddrPort, shared bool) (net.Listener, error)
	// Dial makes one connect attempt from local to remote. local's port 0
	// means an ephemeral port; a fixed port is shared with a listener.
	Dial(ctx context.Context, local, remote netip.AddrPort) (net.Conn, error)
	// SimultaneousOpen punches from p.Local to p.Remote on p's schedule
	// (tcpso.SimultaneousOpen).
	SimultaneousOpen(ctx context.Context, p tcpso.Punch) (net.Conn, error)
}

// hostNetwork is the operating system's TCP stack.
type hostNetwork struct{}

func (hostNetwork) Listen(ctx context.Context, addr netip.AddrPort, shared bool) (net.Listener, error) {
	return tcpso.Listen(ctx, addr)
}

func (hostNetwork) Dial(ctx context.Context, local, remote netip.AddrPort) (net.Conn, error) {
	c, err := tcpso.Dial(ctx, local, remote)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (hostNetwork) SimultaneousOpen(ctx context.Context, p tcpso.Punch) (net.Conn, error) {
	c, err := tcpso.SimultaneousOpen(ctx, p)
	if err != nil {
		return nil, err
	}
	return c, nil
}
