package agent

import (
	"context"
	"net"
	"net/netip"
	"sync"

	"github.com/icetcp/icetcp/tcpso"
)

// Network opens the agent's TCP sockets. It is the seam between the ICE
// logic and the operating system: nil in Config means the host's TCP stack
// (package tcpso); tests pass an in-memory network (internal/lab/memnet) so that
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
	// (tcpso.Open) and reports the attempt (round of SYNs) that connected,
	// 1 for the first; 0 when unknown or when the peer's SYN was accepted
	// on our listener instead. It calls p.OnStart as its first SYN leaves:
	// a likely punch's wait before the relay wins counts from there, and
	// lasts the whole check timeout for a punch that never reports one.
	SimultaneousOpen(ctx context.Context, p tcpso.Punch) (net.Conn, int, error)
}

// hostNetwork is the operating system's TCP stack. It remembers its
// listeners by address, so that a punch from a listener's port can hand
// the peer's SYN accepted there to the punch (RFC 6544 §7.2).
type hostNetwork struct {
	mu        sync.Mutex // guards listeners
	listeners map[netip.AddrPort]*tcpso.Listener
}

func (h *hostNetwork) Listen(ctx context.Context, addr netip.AddrPort, shared bool) (net.Listener, error) {
	l, err := tcpso.ListenConfig{Shared: shared}.Listen(ctx, addr)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.listeners == nil {
		h.listeners = map[netip.AddrPort]*tcpso.Listener{}
	}
	h.listeners[addrPortOf(l.Addr())] = l
	return &hostListener{Listener: l, h: h}, nil
}

func (h *hostNetwork) Dial(ctx context.Context, local, remote netip.AddrPort) (net.Conn, error) {
	c, err := tcpso.Dial(ctx, local, remote)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (h *hostNetwork) SimultaneousOpen(ctx context.Context, p tcpso.Punch) (net.Conn, int, error) {
	h.mu.Lock()
	p.Listener = h.listeners[p.Local]
	h.mu.Unlock()
	r, err := tcpso.Open(ctx, p)
	if err != nil {
		return nil, 0, err
	}
	if r.Accepted {
		return r.Conn, 0, nil
	}
	return r.Conn, r.Attempts, nil
}

// hostListener forgets itself when closed.
type hostListener struct {
	*tcpso.Listener
	h *hostNetwork
}

func (l *hostListener) Close() error {
	l.h.mu.Lock()
	if k := addrPortOf(l.Listener.Addr()); l.h.listeners[k] == l.Listener {
		delete(l.h.listeners, k)
	}
	l.h.mu.Unlock()
	return l.Listener.Close()
}
