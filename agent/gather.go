package agent

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/pion/stun"

	"github.com/icetcp/icetcp/candidate"
	"github.com/icetcp/icetcp/internal/framing"
	"github.com/icetcp/icetcp/tcpso"
)

// Limits on accepted connections that have not yet sent an authenticated
// check, per agent and per source address: a flood from one source is cut
// off without starving the peer's connections from another.
const (
	maxPendingInbound   = 64
	maxPendingPerSource = 8
)

// listener is a passive or S-O candidate's listening socket.
type listener struct {
	l      net.Listener
	cand   candidate.Candidate
	shared bool // dialers may bind its port (STUN queries from it)
}

// gather makes the host candidates (RFC 6544 §5.1): per address an active
// placeholder, a passive listener and an S-O socket. It runs before the loop
// starts.
func (a *Agent) gather() error {
	addrs := a.cfg.Addrs
	if addrs == nil {
		var err error
		if addrs, err = interfaceAddrs(a.cfg.IncludeLoopback); err != nil {
			return err
		}
	}
	if len(addrs) == 0 && (a.cfg.Mux == nil || a.cfg.DisablePassive) {
		return errors.New("agent: gather: no usable local address")
	}
	addrs = interleave(addrs)
	a.g.family = netip.IPv4Unspecified()
	if len(addrs) > 0 && addrs[0].Unmap().Is6() {
		a.g.family = netip.IPv6Unspecified()
	}
	for i, ip := range addrs {
		ip = ip.Unmap()
		otherPref := uint16(max(8191-i, 0)) // distinct per address (RFC 6544 §4.2)
		if !a.cfg.DisableActive {
			a.addLocal(candidate.New(candidate.Host, candidate.Active, netip.AddrPortFrom(ip, candidate.ActivePort), netip.AddrPort{}, netip.Addr{}, otherPref))
		}
		if !a.cfg.DisablePassive && a.cfg.Mux == nil {
			// A passive port is shared too when STUN queries must leave
			// from it (RFC 6544 §5.2), where the system can share ports;
			// elsewhere it has no server-reflexive twin.
			shared := len(a.cfg.STUNServers) > 0 && (a.cfg.Network != nil || tcpso.PortSharing())
			if err := a.listen(ip, candidate.Passive, otherPref, shared); err != nil {
				return err
			}
		}
		// S-O needs a listener and dialers on one port; where the OS cannot
		// share ports (Windows) it is not offered.
		if !a.cfg.DisableSO && (a.cfg.Network != nil || tcpso.PortSharing()) {
			if err := a.listen(ip, candidate.SO, otherPref, true); err != nil {
				return err
			}
		}
	}
	if a.cfg.Mux != nil && !a.cfg.DisablePassive {
		a.g.muxCand = candidate.New(candidate.Host, candidate.Passive, a.cfg.Mux.Addr(), netip.AddrPort{}, netip.Addr{}, 8191)
		a.addLocal(a.g.muxCand)
	}
	return nil
}

func (a *Agent) listen(ip netip.Addr, tt candidate.TCPType, otherPref uint16, shared bool) error {
	l, err := a.net.Listen(a.ctx, netip.AddrPortFrom(ip, 0), shared)
	if err != nil {
		return fmt.Errorf("agent: gather %s %s: %w", tt, ip, err)
	}
	c := candidate.New(candidate.Host, tt, addrPortOf(l.Addr()), netip.AddrPort{}, netip.Addr{}, otherPref)
	a.g.listeners = append(a.g.listeners, &listener{l: l, cand: c, shared: shared})
	a.addLocal(c)
	return nil
}

func (a *Agent) addLocal(c candidate.Candidate) {
	a.g.locals = append(a.g.locals, c)
	for _, r := range a.peer.cands {
		a.pairUp(c, r)
	}
}

// interleave orders addresses IPv6 first and then alternating families
// (RFC 8421 §4), keeping the order within each family, so that their
// descending other-prefs interleave the families: a broken family costs
// one pacing slot at a time, not all the first ones.
func interleave(addrs []netip.Addr) []netip.Addr {
	var v4, v6 []netip.Addr
	for _, a := range addrs {
		if a.Unmap().Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	out := make([]netip.Addr, 0, len(addrs))
	for len(v4) > 0 || len(v6) > 0 {
		if len(v6) > 0 {
			out, v6 = append(out, v6[0]), v6[1:]
		}
		if len(v4) > 0 {
			out, v4 = append(out, v4[0]), v4[1:]
		}
	}
	return out
}

// interfaceAddrs lists addresses of interfaces that are up, without
// link-local ones (they need zones and rarely route).
func interfaceAddrs(loopback bool) ([]netip.Addr, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("agent: gather: %w", err)
	}
	var out []netip.Addr
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || (ifc.Flags&net.FlagLoopback != 0 && !loopback) {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, ad := range addrs {
			pfx, err := netip.ParsePrefix(ad.String())
			if err != nil {
				continue
			}
			ip := pfx.Addr().Unmap()
			if ip.IsLinkLocalUnicast() || ip.IsMulticast() || ip.IsUnspecified() || (ip.IsLoopback() && !loopback) {
				continue
			}
			out = append(out, ip)
		}
	}
	return out, nil
}

// startAccepting runs an accept loop per listener.
func (a *Agent) startAccepting() {
	for _, ln := range a.g.listeners {
		a.goTracked(func() { a.acceptLoop(ln) })
	}
}

func (a *Agent) acceptLoop(ln *listener) {
	for {
		c, err := ln.l.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				a.log.Warnf("accept on %s: %v", ln.cand.Addr, err)
			}
			return
		}
		src := addrPortOf(c.RemoteAddr()).Addr()
		if !a.inbound.take(src) {
			a.log.Debugf("accept on %s: too many connections await their first check; closing %s", ln.cand.Addr, c.RemoteAddr())
			c.Close()
			continue
		}
		if !a.post(func(now time.Time) { a.onAccepted(c, nil, nil, ln.cand, now) }) {
			a.inbound.give(src)
			c.Close()
			return
		}
	}
}

// handoff takes a connection a Mux accepted and routed here by USERNAME,
// with its first frame already read.
func (a *Agent) handoff(c net.Conn, fr *framing.Reader, first []byte, local candidate.Candidate) bool {
	src := addrPortOf(c.RemoteAddr()).Addr()
	if !a.inbound.take(src) {
		return false
	}
	if !a.post(func(now time.Time) { a.onAccepted(c, fr, first, local, now) }) {
		a.inbound.give(src)
		return false
	}
	return true
}

// onAccepted adopts an inbound connection. After the selection it is still
// answered until the listeners are released (a standard agent may be
// finishing its checks), but it carries no data.
func (a *Agent) onAccepted(c net.Conn, fr *framing.Reader, first []byte, local candidate.Candidate, now time.Time) {
	if a.sel.released || a.state == StateFailed || a.state == StateClosed {
		a.inbound.give(addrPortOf(c.RemoteAddr()).Addr())
		c.Close()
		return
	}
	a.lastActivity = now
	a.adopt(c, fr, true, local, first)
}

// adopt wraps c and starts its reader. Inbound connections count as
// pending until a check on them is authenticated.
func (a *Agent) adopt(c net.Conn, fr *framing.Reader, inbound bool, local candidate.Candidate, first []byte) *pconn {
	pc := newPConn(a.nextID.Add(1), c, fr, inbound, local, a.goTracked, a.log.Debugf)
	a.conns[pc] = struct{}{}
	if inbound {
		src := pc.remote.Addr()
		pc.onAuth = func() { a.inbound.give(src) }
	}
	rc := readerConfig{
		localUfrag: a.localUfrag, localPwd: a.localPwd, remotePwd: &a.remotePwd,
		firstTimeout: a.cfg.FirstMessageTimeout, first: first,
		onSTUN: func(pc *pconn, m *stun.Message) {
			a.post(func(now time.Time) { a.onSTUN(pc, m, now) })
		},
		onEnd: func(pc *pconn, err error) {
			if inbound {
				pc.markAuthenticated() // no longer pending either way
			}
			a.post(func(now time.Time) { a.onConnEnd(pc, err, now) })
		},
		log: a.log.Debugf,
	}
	a.goTracked(func() { pc.readLoop(rc) })
	return pc
}

// onConnEnd runs when a connection's reader stopped.
func (a *Agent) onConnEnd(pc *pconn, err error, now time.Time) {
	if a.sel.pair != nil && pc == a.sel.pair.pc {
		// It stays in conns: whatever ends the agent closes it.
		if pc.closed() {
			// We closed it (Conn.Close): a deliberate end, whatever the
			// reader saw last.
			a.fail(StateClosed, ErrClosed, now)
			return
		}
		if errors.Is(err, io.EOF) {
			if !pc.eosMode.Load() {
				a.consent.peerFIN = true // the peer half-closed; we may still write
				return
			}
			// An icetcp peer ends in band; its FIN after that is a close
			// of the whole connection, without it the peer vanished (Read
			// says so after the bytes that arrived).
			if pc.peerEOS.Load() {
				a.fail(StateClosed, fmt.Errorf("%w: %w", errPeerClosed, ErrClosed), now)
				return
			}
		}
		a.fail(StateFailed, fmt.Errorf("agent: selected connection lost: %w", err), now)
		return
	}
	delete(a.conns, pc)
	pc.close(err)
	pc.q.drain()
	if pc == a.sel.committed && a.sel.pair == nil && a.state != StateFailed && a.state != StateClosed {
		a.fail(StateFailed, a.failure(errNominatedLost.Error()+": "+err.Error(), errNominatedLost), now)
		return
	}
	if p := pc.pair; p != nil && p.pc == pc && a.sel.pair == nil {
		if p.state == stateInProgress || p.state == stateSucceeded {
			a.failPair(p, fmt.Errorf("%w: %w", errConnLost, err), now)
		} else {
			p.pc = nil
		}
	}
}

func (a *Agent) closeListeners() {
	for _, ln := range a.g.listeners {
		ln.l.Close()
	}
}

// addRemote stores a signaled candidate and pairs it with every local one.
func (a *Agent) addRemote(c candidate.Candidate, now time.Time) {
	for i, r := range a.peer.cands {
		if r.Addr == c.Addr && r.TCPType == c.TCPType {
			if r.Type == candidate.PeerReflexive {
				a.peer.cands[i] = c // learned from a check first; now we know its real type
			}
			return
		}
	}
	if len(a.peer.cands) >= maxRemoteCandidates {
		a.warn(fmt.Errorf("agent: more than %d remote candidates; %s dropped", maxRemoteCandidates, c.Marshal()), now)
		return
	}
	a.peer.cands = append(a.peer.cands, c)
	a.lastActivity = now
	for _, l := range a.g.locals {
		a.pairUp(l, c)
	}
	for _, rl := range a.g.relays {
		a.permitRemotes(rl)
	}
}

// pairUp adds the pair of local l and remote r to the checklist if they pair
// (RFC 6544 §6.2) and survive pruning: a reflexive local is replaced by its
// base, and a passive local never initiates a check.
func (a *Agent) pairUp(l, r candidate.Candidate) {
	if !candidate.CanPair(l, r) || a.sel.pair != nil {
		return
	}
	base, ok := candidate.Base(l, a.g.locals)
	if !ok || base.TCPType == candidate.Passive {
		return
	}
	a.cl.add(&pair{local: base, remote: r}, a.role.controlling)
}

func isRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}
