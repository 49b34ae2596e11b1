package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/icetcp/icetcp/candidate"
)

// TURNServer is a TURN server reached over TCP or TLS, on which the agent
// allocates a TCP relay (RFC 6062) for relayed candidates.
type TURNServer struct {
	// URI is "turn:HOST[:PORT][?transport=tcp]" or "turns:HOST[:PORT]"
	// (RFC 7065). A bare "HOST:PORT" means turn:HOST:PORT.
	URI string
	// Username and Password are long-term credentials.
	Username, Password string
	// Secret, when set, mints time-limited TURN REST credentials (coturn
	// --use-auth-secret): Username is then the user part, Password unused.
	Secret string
	// TLSConfig is used for turns:; nil verifies the server against the
	// system's roots.
	TLSConfig *tls.Config
}

// relayAlloc is a TCP allocation as the agent uses it; internal/turn's
// Allocation is one, tests use an in-memory one.
type relayAlloc interface {
	RelayedAddr() netip.AddrPort
	MappedAddr() netip.AddrPort
	// PermitAddrs installs permissions for peers (kept refreshed): for
	// their IPs, as TURN does, naming the port of those whose port
	// matters (a peer's relayed address; 0 otherwise).
	PermitAddrs(ctx context.Context, peers ...netip.AddrPort) error
	// Connect opens a relayed connection to peer (Connect, ConnectionBind).
	Connect(ctx context.Context, peer netip.AddrPort) (net.Conn, error)
	// Accept returns the next peer connection to the relayed address; it
	// fails once the allocation is lost or closed.
	Accept(ctx context.Context) (net.Conn, error)
	Close() error
}

// allocateFunc makes an allocation; the default uses internal/turn over
// the agent's Network.
type allocateFunc func(ctx context.Context, s TURNServer) (relayAlloc, error)

// allocateTimeout bounds one allocation (connect, TLS, 401 round, Allocate).
const allocateTimeout = 10 * time.Second

// relay is one allocation and what the agent knows of it. Owned by the loop.
type relay struct {
	server    TURNServer
	proxy     string // the proxy it is reached through, without password; "" direct
	alloc     relayAlloc
	passive   candidate.Candidate
	active    candidate.Candidate
	permitted map[netip.AddrPort]bool // a port of 0: the IP alone
	cancel    context.CancelFunc      // stops its accept loop
	lost      error                   // why the allocation ended, once it has
	released  bool                    // deallocate ran: its Close is under way or done
}

// relayResult is one allocation attempt's outcome.
type relayResult struct {
	server TURNServer
	proxy  string
	alloc  relayAlloc
	err    error
}

// startRelays allocates on every TURN server at once, beside host and
// server-reflexive gathering. It returns how many allocations run.
func (a *Agent) startRelays() int {
	for _, s := range a.cfg.TURNServers {
		a.goTracked(func() {
			ctx, cancel := context.WithTimeout(a.ctx, allocateTimeout)
			defer cancel()
			allocate := a.seams.allocate
			if allocate == nil {
				allocate = a.turnAllocate
			}
			al, err := allocate(ctx, s)
			if err != nil {
				err = fmt.Errorf("agent: TURN %s: %w", s.URI, err)
			}
			r := relayResult{server: s, proxy: a.turnProxy(s), alloc: al, err: err}
			if !a.post(func(now time.Time) { a.onAllocated(r, now) }) && al != nil {
				al.Close()
			}
		})
	}
	return len(a.cfg.TURNServers)
}

// onAllocated adds the relayed candidates of an allocation (RFC 6544 §5.3:
// the relayed address as a passive candidate, the peer connecting to it
// through the server, and an active one, whose connections the server
// opens for us).
func (a *Agent) onAllocated(r relayResult, now time.Time) {
	a.g.pending--
	defer a.maybeEndOfCandidates(now)
	if r.err != nil {
		// Direct paths still work without the relay: say why, carry on.
		a.tr.trace(TraceEvent{Kind: TraceRelay, Time: now, Relay: &RelayStats{Server: r.server.URI, Proxy: r.proxy}, Err: r.err})
		a.warn(r.err, now)
		return
	}
	if a.sel.pair != nil || a.state == StateFailed || a.state == StateClosed {
		a.deallocate(&relay{alloc: r.alloc})
		return
	}
	relayed, mapped := r.alloc.RelayedAddr(), r.alloc.MappedAddr()
	otherPref := uint16(max(8191-len(a.g.relays), 0))
	rl := &relay{server: r.server, proxy: r.proxy, alloc: r.alloc, permitted: map[netip.AddrPort]bool{},
		passive: candidate.New(candidate.Relay, candidate.Passive, relayed, mapped, relayed.Addr(), otherPref),
		active:  candidate.New(candidate.Relay, candidate.Active, relayed, mapped, relayed.Addr(), otherPref),
	}
	a.g.relays = append(a.g.relays, rl)
	st := rl.stats()
	a.events.emit(Event{Type: EventRelay, Time: now, Relay: &st})
	a.tr.trace(TraceEvent{Kind: TraceRelay, Time: now, Relay: &st})
	ctx, cancel := context.WithCancel(a.ctx)
	rl.cancel = cancel
	a.goTracked(func() { a.relayAcceptLoop(ctx, rl) })
	a.permitRemotes(rl)
	for _, c := range []candidate.Candidate{rl.passive, rl.active} {
		if a.g.hasLocal(c) {
			continue // a second URI for the same server
		}
		a.addLocal(c)
		a.tr.candidate(TraceLocal, c, now)
		a.sig.out.send(signalingCandidate(c))
	}
}

// relayAcceptLoop hands the loop every peer connection to the relayed
// address; it ends when the allocation does or ctx ends.
func (a *Agent) relayAcceptLoop(ctx context.Context, rl *relay) {
	for {
		c, err := rl.alloc.Accept(ctx)
		if err != nil {
			if ctx.Err() == nil {
				a.post(func(now time.Time) { a.onRelayLost(rl, err, now) })
			}
			return
		}
		src := addrPortOf(c.RemoteAddr()).Addr()
		if a.inbound.Take(src) != nil {
			c.Close()
			continue
		}
		if !a.post(func(now time.Time) { a.onAccepted(c, nil, nil, rl.passive, now) }) {
			a.inbound.Give(src)
			c.Close()
			return
		}
	}
}

// onRelayLost: the allocation ended (the server closed it, a refresh
// failed). Pairs through it fail; direct ones go on.
func (a *Agent) onRelayLost(rl *relay, err error, now time.Time) {
	if rl.lost != nil {
		return
	}
	rl.lost = err
	if a.sel.pair == nil {
		a.warn(fmt.Errorf("agent: relay %s lost: %w", rl.passive.Addr, err), now)
		for _, p := range a.cl.pairs {
			if (p.local.Equal(rl.active) || p.local.Equal(rl.passive)) && p.state != stateFailed {
				a.failPair(p, fmt.Errorf("agent: relay lost: %w", err), now)
			}
		}
	}
}

// permitRemotes installs permissions on rl for every remote candidate's IP
// and, for relayed remotes, their mapped address: the peer's connections to
// our relayed address come from one of those. A remote relayed candidate
// is permitted by its address, port included: its connections come from
// exactly that address, and on a relay that both peers use, a permission
// for the relay's IP alone would let every other allocation of that relay
// in (issue 14; the embedded relay keeps such permissions by address,
// standard servers ignore the port). Each address is asked for once; a
// refusal (a private address the server will not relay to) is logged.
func (a *Agent) permitRemotes(rl *relay) {
	var peers []netip.AddrPort
	add := func(ap netip.AddrPort) {
		if ap.Addr().IsValid() && !ap.Addr().IsUnspecified() && !rl.permitted[ap] {
			rl.permitted[ap] = true
			peers = append(peers, ap)
		}
	}
	ipOnly := func(ip netip.Addr) netip.AddrPort { return netip.AddrPortFrom(ip, 0) }
	for _, r := range a.peer.cands {
		if r.Type == candidate.Relay {
			add(r.Addr)
		} else {
			add(ipOnly(r.Addr.Addr()))
		}
		if r.Type == candidate.Relay || r.Type == candidate.ServerReflexive {
			add(ipOnly(r.Related.Addr()))
		}
	}
	if len(peers) == 0 || rl.lost != nil {
		return
	}
	a.goTracked(func() {
		for _, p := range peers {
			ctx, cancel := context.WithTimeout(a.ctx, allocateTimeout)
			err := rl.alloc.PermitAddrs(ctx, p)
			cancel()
			if err != nil && a.ctx.Err() == nil {
				a.log.Debugf("relay %s: permission for %s: %v", rl.passive.Addr, p, err)
			}
			if a.tr.on() {
				a.post(func(now time.Time) {
					st := rl.stats()
					a.tr.trace(TraceEvent{Kind: TracePermission, Time: now, Relay: &st, Addr: p.String(), Err: err})
				})
			}
		}
	})
}

// relayConnect opens a relayed connection for a check from our relayed
// active candidate: permission first, then Connect and ConnectionBind.
func (a *Agent) relayConnect(ctx context.Context, rl *relay, remote netip.AddrPort) (net.Conn, error) {
	if rl == nil {
		return nil, errors.New("agent: no allocation for this relayed candidate")
	}
	if err := rl.alloc.PermitAddrs(ctx, netip.AddrPortFrom(remote.Addr(), 0)); err != nil {
		return nil, fmt.Errorf("agent: relay permission for %s: %w", remote.Addr(), err)
	}
	return rl.alloc.Connect(ctx, remote)
}

// releaseRelays closes allocations the selected pair does not use and
// stops accepting through the one it uses.
func (a *Agent) releaseRelays() {
	keep := map[*relay]bool{}
	if a.sel.pair != nil && a.sel.pair.local.Type == candidate.Relay {
		keep[a.g.relayOf(a.sel.pair.local)] = true
	}
	for _, pc := range a.mv.draining { // closed once drained (pathGone)
		if pc.local.Type == candidate.Relay {
			keep[a.g.relayOf(pc.local)] = true
		}
	}
	for pc := range a.conns { // parked: its close would end the peer's candidate (closeOrPark)
		if pc.parked.Load() && !pc.closed() && pc.local.Type == candidate.Relay {
			keep[a.g.relayOf(pc.local)] = true
		}
	}
	for _, rl := range a.g.relays {
		rl.cancel()
		if !keep[rl] {
			a.deallocate(rl)
		}
	}
}

// deallocate releases an allocation beside the loop, once (a release, a
// drained path and the shutdown may each come to it). Its Refresh
// (lifetime 0) is a round trip to the server, and the client's whole
// close timeout (2 s) when no answer comes: a relay that answers late, a
// control connection a NAT restart left dead. On the loop it held both
// agents' connected state and the application's first byte meanwhile (17
// to 26 round trips in the lab at 100 ms one way, when the relay let a
// Refresh wait behind a Connect), and an ICE restart's start. The
// agent's Close waits for it (goTracked).
func (a *Agent) deallocate(rl *relay) {
	if rl.released {
		return
	}
	rl.released = true
	al := rl.alloc
	a.goTracked(func() { al.Close() })
}

// closeRelays deallocates everything; the agent is shutting down.
func (a *Agent) closeRelays() {
	for _, rl := range a.g.relays {
		rl.cancel()
		a.deallocate(rl)
	}
	a.g.relays = nil
}
