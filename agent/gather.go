package agent

import (
	"context"
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

// maxPendingInbound bounds accepted connections per agent that have not yet
// sent an authenticated check; more are closed at once.
const maxPendingInbound = 64

// listener is a passive or S-O candidate's listening socket.
type listener struct {
	l    *net.TCPListener
	cand candidate.Candidate
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
	ctx := context.Background()
	for i, ip := range addrs {
		ip = ip.Unmap()
		otherPref := uint16(max(8191-i, 0)) // distinct per address (RFC 6544 §4.2)
		if !a.cfg.DisableActive {
			a.addLocal(candidate.New(candidate.Host, candidate.Active, netip.AddrPortFrom(ip, 9), netip.AddrPort{}, netip.Addr{}, otherPref))
		}
		if !a.cfg.DisablePassive && a.cfg.Mux == nil {
			if err := a.listen(ctx, ip, candidate.Passive, otherPref); err != nil {
				return err
			}
		}
		// S-O needs a listener and dialers on one port; where the OS cannot
		// share ports (Windows) it is not offered.
		if !a.cfg.DisableSO && tcpso.PortSharing() {
			if err := a.listen(ctx, ip, candidate.SO, otherPref); err != nil {
				return err
			}
		}
	}
	if a.cfg.Mux != nil && !a.cfg.DisablePassive {
		a.muxCand = candidate.New(candidate.Host, candidate.Passive, a.cfg.Mux.Addr(), netip.AddrPort{}, netip.Addr{}, 8191)
		a.addLocal(a.muxCand)
	}
	return nil
}

func (a *Agent) listen(ctx context.Context, ip netip.Addr, tt candidate.TCPType, otherPref uint16) error {
	l, err := tcpso.Listen(ctx, netip.AddrPortFrom(ip, 0))
	if err != nil {
		return fmt.Errorf("agent: gather %s %s: %w", tt, ip, err)
	}
	c := candidate.New(candidate.Host, tt, addrPortOf(l.Addr()), netip.AddrPort{}, netip.Addr{}, otherPref)
	a.listeners = append(a.listeners, &listener{l: l, cand: c})
	a.addLocal(c)
	return nil
}

func (a *Agent) addLocal(c candidate.Candidate) {
	a.locals = append(a.locals, c)
	for _, r := range a.remotes {
		a.pairUp(c, r)
	}
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

// startAccepting runs an accept loop per listener and registers with the Mux.
func (a *Agent) startAccepting() {
	for _, ln := range a.listeners {
		ln := ln
		a.goTracked(func() { a.acceptLoop(ln) })
	}
	if a.cfg.Mux != nil && !a.cfg.DisablePassive {
		a.cfg.Mux.register(a.localUfrag, a)
	}
}

func (a *Agent) acceptLoop(ln *listener) {
	for {
		c, err := ln.l.AcceptTCP()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				a.log.Warnf("accept on %s: %v", ln.cand.Addr, err)
			}
			return
		}
		if a.pending.Load() >= maxPendingInbound {
			a.log.Warnf("accept on %s: %d connections await their first check; closing %s", ln.cand.Addr, maxPendingInbound, c.RemoteAddr())
			c.Close()
			continue
		}
		if !a.post(func() { a.onAccepted(c, nil, nil, ln.cand) }) {
			c.Close()
			return
		}
	}
}

// handoff takes a connection a Mux accepted and routed here by USERNAME,
// with its first frame already read.
func (a *Agent) handoff(c net.Conn, fr *framing.Reader, first []byte, local candidate.Candidate) bool {
	if a.pending.Load() >= maxPendingInbound {
		return false
	}
	return a.post(func() { a.onAccepted(c, fr, first, local) })
}

func (a *Agent) onAccepted(c net.Conn, fr *framing.Reader, first []byte, local candidate.Candidate) {
	if a.selected != nil || a.state == StateFailed || a.state == StateClosed {
		c.Close()
		return
	}
	a.lastActivity = time.Now()
	a.adopt(c, fr, true, local, first)
}

// adopt wraps c and starts its reader. Inbound connections count as
// pending until a check on them is authenticated.
func (a *Agent) adopt(c net.Conn, fr *framing.Reader, inbound bool, local candidate.Candidate, first []byte) *pconn {
	pc := newPConn(a.nextID.Add(1), c, fr, inbound, local)
	a.conns[pc] = struct{}{}
	if inbound {
		a.pending.Add(1)
		pc.onAuth = func() { a.pending.Add(-1) }
	}
	rc := readerConfig{
		localUfrag: a.localUfrag, localPwd: a.localPwd, remotePwd: &a.remotePwd,
		firstTimeout: a.cfg.FirstMessageTimeout, first: first,
		onSTUN: func(pc *pconn, m *stun.Message) { a.post(func() { a.onSTUN(pc, m) }) },
		onEnd: func(pc *pconn, err error) {
			if inbound && pc.authenticated.CompareAndSwap(false, true) {
				a.pending.Add(-1) // never authenticated: no longer pending
			}
			a.post(func() { a.onConnEnd(pc, err) })
		},
		log: a.log.Debugf,
	}
	a.goTracked(func() { pc.readLoop(rc) })
	return pc
}

// onConnEnd runs when a connection's reader stopped.
func (a *Agent) onConnEnd(pc *pconn, err error) {
	delete(a.conns, pc)
	if a.selected != nil && pc == a.selected.pc {
		if errors.Is(err, io.EOF) && !pc.closed() {
			a.peerWriteEnded = true // the peer half-closed; we may still write
			return
		}
		a.fail(StateFailed, fmt.Errorf("agent: selected connection lost: %w", err))
		return
	}
	pc.close(err)
	pc.drain()
	if p := pc.pair; p != nil && p.pc == pc && a.selected == nil {
		if p.state == stateInProgress || p.state == stateSucceeded {
			a.failPair(p, fmt.Errorf("%w: %w", errConnLost, err))
		} else {
			p.pc = nil
		}
	}
}

func (a *Agent) closeListeners() {
	for _, ln := range a.listeners {
		ln.l.Close()
	}
}

// addRemote stores a signaled candidate and pairs it with every local one.
func (a *Agent) addRemote(c candidate.Candidate) {
	for i, r := range a.remotes {
		if r.Addr == c.Addr && r.TCPType == c.TCPType {
			if r.Type == candidate.PeerReflexive {
				a.remotes[i] = c // learned from a check first; now we know its real type
			}
			return
		}
	}
	if len(a.remotes) >= maxRemoteCandidates {
		a.warn(fmt.Errorf("agent: more than %d remote candidates; %s dropped", maxRemoteCandidates, c.Marshal()))
		return
	}
	a.remotes = append(a.remotes, c)
	a.lastActivity = time.Now()
	for _, l := range a.locals {
		a.pairUp(l, c)
	}
}

// pairUp adds the pair of local l and remote r to the checklist if they pair
// (RFC 6544 §6.2) and survive pruning: a reflexive local is replaced by its
// base, and a passive local never initiates a check.
func (a *Agent) pairUp(l, r candidate.Candidate) {
	if !candidate.CanPair(l, r) || a.selected != nil {
		return
	}
	base, ok := candidate.Base(l, a.locals)
	if !ok || base.TCPType == candidate.Passive {
		return
	}
	a.cl.add(&pair{local: base, remote: r}, a.controlling)
}

func isRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}
