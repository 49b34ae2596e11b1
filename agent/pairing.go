package agent

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/icetcp/icetcp/candidate"
)

// Pairing: remote candidates as they arrive, the pairs they form with ours
// (RFC 6544 §6.2), and the pair an accepted connection belongs to (§7.2).

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
	a.tr.candidate(TraceRemote, c, now)
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
//
// After selection only a session's search for a direct path adds pairs,
// direct ones.
func (a *Agent) pairUp(l, r candidate.Candidate) {
	if !candidate.CanPair(l, r) || (a.sel.pair != nil && a.mv.until.IsZero()) {
		return
	}
	base, ok := candidate.Base(l, a.g.locals)
	if !ok || base.TCPType == candidate.Passive {
		return
	}
	p := &pair{local: base, remote: r}
	if a.sel.pair != nil && isRelayed(p) {
		return
	}
	a.cl.add(p, a.role.controlling)
}

// pairForInbound finds or creates the pair an accepted connection belongs
// to (RFC 6544 §7.2): the remote is a candidate at the connection's exact
// source when there is one, else a signaled active candidate of its IP
// (an active candidate's port means nothing), else a new peer-reflexive
// candidate at the exact source. A connection never displaces a live one:
// a second connection from the IP of a pair that has one (the peer's relay
// on the peer's own address, a second dial) is another path and gets a
// peer-reflexive pair of its own, since either may be the one the peer
// nominates.
func (a *Agent) pairForInbound(pc *pconn, prio uint32, now time.Time) *pair {
	remoteType := candidate.Active
	if pc.local.TCPType == candidate.SO {
		remoteType = candidate.SO
	}
	remote, found := a.remoteAt(pc.remote, remoteType)
	var p *pair
	if found {
		p, _ = a.cl.add(&pair{local: pc.local, remote: remote}, a.role.controlling)
		if p.pc != nil && p.pc != pc && !p.pc.closed() {
			found = false // taken: a pair of its own
		}
	}
	if !found {
		if len(a.peer.cands) >= maxRemoteCandidates {
			a.warn(fmt.Errorf("agent: more than %d remote candidates; check from %s dropped", maxRemoteCandidates, pc.remote), now)
			pc.close(errors.New("agent: too many remote candidates"))
			return nil
		}
		remote = candidate.Candidate{
			Foundation: candidate.Foundation(candidate.PeerReflexive, pc.remote.Addr(), netip.Addr{}),
			Component:  1, Priority: prio, Addr: pc.remote, Type: candidate.PeerReflexive, TCPType: remoteType,
		}
		a.peer.cands = append(a.peer.cands, remote)
		a.tr.candidate(TraceRemote, remote, now)
		p, _ = a.cl.add(&pair{local: pc.local, remote: remote, viaPeerRelay: a.peerRelayAt(pc.remote)}, a.role.controlling)
	}
	if p.pc != nil && p.pc != pc && !p.pc.closed() {
		// One exact source cannot carry two live connections.
		pc.close(errors.New("agent: pair already has a live connection"))
		return nil
	}
	if p.cancel != nil { // a connect or punch for this pair is in flight: this connection wins
		p.cancel()
		p.cancel = nil
		p.attempt++
	}
	p.pc = pc
	pc.pair = p
	return p
}

// remoteAt finds the remote candidate a connection from src belongs to:
// one at exactly src, else (for active candidates) a signaled one of its
// IP.
func (a *Agent) remoteAt(src netip.AddrPort, tt candidate.TCPType) (candidate.Candidate, bool) {
	for _, r := range a.peer.cands {
		if r.TCPType == tt && r.Addr == src {
			return r, true
		}
	}
	if tt != candidate.Active {
		return candidate.Candidate{}, false
	}
	for _, r := range a.peer.cands {
		if r.TCPType == tt && r.Type != candidate.PeerReflexive && r.Addr.Addr() == src.Addr() {
			return r, true
		}
	}
	return candidate.Candidate{}, false
}

// peerRelayAt reports an address on one of the peer's relays: a
// connection from there is the peer's relayed one.
func (a *Agent) peerRelayAt(src netip.AddrPort) bool {
	for _, r := range a.peer.cands {
		if r.Type == candidate.Relay && r.Addr.Addr() == src.Addr() {
			return true
		}
	}
	return false
}
