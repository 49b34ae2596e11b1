package agent

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/icetcp/icetcp/candidate"
	"github.com/icetcp/icetcp/internal/stuntcp"
	"github.com/icetcp/icetcp/signaling"
)

// stunTimeout bounds one server-reflexive query; stunKeepalive is how
// often a kept-open STUN connection is refreshed so the NAT keeps the
// mapping while checks run.
const (
	stunTimeout   = 5 * time.Second
	stunKeepalive = 15 * time.Second
)

// srflxResult is one STUN query's outcome.
type srflxResult struct {
	base   candidate.Candidate
	server netip.AddrPort
	mapped netip.AddrPort
	conn   net.Conn
	err    error
}

// startSrflx queries every STUN server from the port of every host passive
// and S-O candidate (RFC 6544 §5.2: the same local port, so the mapping is
// the one the peer's SYNs will meet). It returns how many queries run.
func (a *Agent) startSrflx() int {
	n := 0
	for _, server := range a.cfg.STUNServers {
		for _, ln := range a.g.listeners {
			if !ln.shared {
				continue // a query from its port cannot be made here
			}
			n++
			a.goTracked(func() {
				r := a.querySrflx(ln.cand, server)
				if !a.post(func(now time.Time) { a.onSrflx(r, now) }) && r.conn != nil {
					r.conn.Close()
				}
			})
		}
	}
	return n
}

func (a *Agent) querySrflx(base candidate.Candidate, server string) srflxResult {
	r := srflxResult{base: base}
	ctx, cancel := context.WithTimeout(a.ctx, stunTimeout) // shutdown interrupts it
	defer cancel()
	sa, err := a.resolve(ctx, server, base.Addr.Addr())
	if err != nil {
		r.err = err
		return r
	}
	r.server = sa
	c, err := a.seams.net.Dial(ctx, base.Addr, sa)
	if err != nil {
		r.err = fmt.Errorf("agent: STUN %s from %s: %w", sa, base.Addr, err)
		return r
	}
	mapped, err := stuntcp.Binding(ctx, c)
	if err != nil {
		c.Close()
		r.err = fmt.Errorf("agent: STUN %s from %s: %w", sa, base.Addr, err)
		return r
	}
	r.mapped, r.conn = netip.AddrPortFrom(mapped.Addr().Unmap(), mapped.Port()), c
	return r
}

// resolveSTUN finds an address of server in the family of local, with the
// system's resolver.
func resolveSTUN(ctx context.Context, server string, local netip.Addr) (netip.AddrPort, error) {
	return resolveWith(ctx, net.DefaultResolver, server, local)
}

// resolve is resolveSTUN through the Network when it resolves names
// itself (a Resolver), so that tests on an in-memory network can name
// their servers.
func (a *Agent) resolve(ctx context.Context, server string, local netip.Addr) (netip.AddrPort, error) {
	if r, ok := a.seams.net.(Resolver); ok {
		return resolveWith(ctx, r, server, local)
	}
	return resolveSTUN(ctx, server, local)
}

// Resolver is what a Network implements to resolve the names of STUN and
// TURN servers itself; without it the system's resolver does.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

func resolveWith(ctx context.Context, r Resolver, server string, local netip.Addr) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(server); err == nil {
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		if ap.Addr().Is4() != local.Is4() {
			return netip.AddrPort{}, fmt.Errorf("agent: STUN server %q has no address of the family of %s", server, local)
		}
		return ap, nil
	}
	host, port, err := net.SplitHostPort(server)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("agent: STUN server %q: %w", server, err)
	}
	pn, err := net.LookupPort("tcp", port)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("agent: STUN server %q: %w", server, err)
	}
	ips, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("agent: STUN server %q: %w", server, err)
	}
	for _, ip := range ips {
		if ip.Unmap().Is4() == local.Is4() {
			return netip.AddrPortFrom(ip.Unmap(), uint16(pn)), nil
		}
	}
	return netip.AddrPort{}, fmt.Errorf("agent: STUN server %q has no address of the family of %s", server, local)
}

// onSrflx adds the server-reflexive candidates a query found: one of the
// base's type, and an active one derived from it (RFC 6544 §5.2).
func (a *Agent) onSrflx(r srflxResult, now time.Time) {
	a.g.pending--
	defer a.maybeEndOfCandidates(now)
	if r.err != nil {
		a.warn(r.err, now)
		return
	}
	if (a.sel.pair != nil && a.mv.until.IsZero()) || a.state == StateFailed || a.state == StateClosed {
		r.conn.Close()
		return
	}
	a.g.stunConns = append(a.g.stunConns, r.conn)
	if a.g.stunStop == nil { // made with the first kept connection: most agents keep none
		a.g.stunStop = make(chan struct{})
		if a.g.stunStopped {
			close(a.g.stunStop)
		}
	}
	a.goTracked(func() { a.keepSTUN(r.conn) })
	if r.mapped == r.base.Addr {
		return // no NAT on this path: the host candidate says it all
	}
	otherPref := uint16(r.base.Priority>>8) & 0x1fff
	a.addSrflx(candidate.New(candidate.ServerReflexive, r.base.TCPType, r.mapped, r.base.Addr, r.server.Addr(), otherPref), now)
	if !a.cfg.DisableActive {
		a.addSrflx(candidate.New(candidate.ServerReflexive, candidate.Active,
			netip.AddrPortFrom(r.mapped.Addr(), candidate.ActivePort),
			netip.AddrPortFrom(r.base.Addr.Addr(), candidate.ActivePort), r.server.Addr(), otherPref), now)
	}
}

func (a *Agent) addSrflx(c candidate.Candidate, now time.Time) {
	if a.g.hasLocal(c) {
		return // two servers, or passive and S-O, found the same mapping
	}
	a.addLocal(c)
	a.tr.candidate(TraceLocal, c, now)
	a.sig.out.send(signalingCandidate(c))
}

func signalingCandidate(c candidate.Candidate) signaling.Message {
	return signaling.Message{Type: signaling.TypeCandidate, Candidate: c.Marshal()}
}

// maybeEndOfCandidates tells the peer gathering is over once every query
// has answered.
func (a *Agent) maybeEndOfCandidates(now time.Time) {
	if a.g.pending == 0 && !a.g.eocSent && a.sig.out != nil {
		a.g.eocSent = true
		a.sig.out.send(signaling.Message{Type: signaling.TypeEndOfCandidates})
	}
}

// keepSTUN refreshes a STUN connection until stopSTUN closes it; the NAT
// mapping it holds is the srflx candidates' mapping.
func (a *Agent) keepSTUN(c net.Conn) {
	t := time.NewTicker(stunKeepalive)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			ctx, cancel := context.WithTimeout(a.ctx, stunTimeout)
			_, err := stuntcp.Binding(ctx, c)
			cancel()
			if err != nil {
				c.Close()
				return
			}
		case <-a.g.stunStop:
			c.Close()
			return
		}
	}
}

// stopSTUN closes the kept-open STUN connections: a query in flight on
// one fails at once, so its goroutine returns.
func (a *Agent) stopSTUN() {
	for _, c := range a.g.stunConns {
		c.Close()
	}
	a.g.stunConns = nil
	if !a.g.stunStopped {
		a.g.stunStopped = true
		if a.g.stunStop != nil {
			close(a.g.stunStop)
		}
	}
}
