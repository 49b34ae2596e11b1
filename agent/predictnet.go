package agent

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/icetcp/icetcp/tcpso"
)

// countingNetwork counts the new connections the agent opens, in the order
// their first SYNs leave: a NAT that allocates ports in sequence gives
// each the next port of its series, so the port of a connection is the
// port a sighting saw plus the delta once per connection opened since
// (port prediction, predict.go). Every connection of the agent goes
// through its Network: checks, punches, STUN, TURN (control and RFC 6062
// data connections) and the NAT measurement.
//
// A punch counts its first SYN, and one more for every SYN the far side
// answered with RST: a Linux NAT drops a connection's entry when the only
// answer was an RST (conntrack's "if only reply is a RST, delete the
// conntrack immediately"), so the punch's next SYN on the same 4-tuple
// takes a new port; silence keeps the entry, and the port.
type countingNetwork struct {
	Network
	n atomic.Uint64 // connections counted so far; the last one's index

	mu    sync.Mutex // guards watch
	watch map[punchRoute]func(uint64)
}

type punchRoute struct{ local, remote netip.AddrPort }

func newCountingNetwork(n Network) *countingNetwork { return &countingNetwork{Network: n} }

// count is the index of the latest connection.
func (c *countingNetwork) count() uint64 { return c.n.Load() }

func (c *countingNetwork) Dial(ctx context.Context, local, remote netip.AddrPort) (net.Conn, error) {
	conn, _, err := c.dialIndexed(ctx, local, remote)
	return conn, err
}

// dialIndexed dials and returns the connection's index.
func (c *countingNetwork) dialIndexed(ctx context.Context, local, remote netip.AddrPort) (net.Conn, uint64, error) {
	idx := c.n.Add(1)
	conn, err := c.Network.Dial(ctx, local, remote)
	return conn, idx, err
}

// watchPunch has f told the index of the first SYN of the next punch from
// local to remote (from the punching goroutine: it must not block).
func (c *countingNetwork) watchPunch(local, remote netip.AddrPort, f func(uint64)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.watch == nil {
		c.watch = map[punchRoute]func(uint64){}
	}
	c.watch[punchRoute{local, remote}] = f
}

func (c *countingNetwork) SimultaneousOpen(ctx context.Context, p tcpso.Punch) (net.Conn, int, error) {
	c.mu.Lock()
	f := c.watch[punchRoute{p.Local, p.Remote}]
	delete(c.watch, punchRoute{p.Local, p.Remote})
	c.mu.Unlock()
	onStart, onTry := p.OnStart, p.OnTry
	p.OnStart = func(at time.Time) {
		idx := c.n.Add(1)
		if f != nil {
			f(idx)
		}
		if onStart != nil {
			onStart(at)
		}
	}
	p.OnTry = func(t tcpso.Try) {
		if t.Outcome == tcpso.OutcomeRefused {
			c.n.Add(1) // the next SYN on this 4-tuple takes a new mapping
		}
		if onTry != nil {
			onTry(t)
		}
	}
	return c.Network.SimultaneousOpen(ctx, p)
}

// LookupNetIP resolves through the wrapped Network when it resolves
// (Resolver), else through the system: counting connections must not
// change where server names resolve.
func (c *countingNetwork) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if r, ok := c.Network.(Resolver); ok {
		return r.LookupNetIP(ctx, network, host)
	}
	return net.DefaultResolver.LookupNetIP(ctx, network, host)
}
