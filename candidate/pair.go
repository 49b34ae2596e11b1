package candidate

import (
	"cmp"
	"net/netip"
	"slices"
)

// Pair is a local/remote candidate pair.
type Pair struct{ Local, Remote Candidate }

// CanPair reports whether a local and a remote candidate may form a pair
// (RFC 6544 §6.2; RFC 8445 §6.1.2.2): same component, same IP family, and
// directions that can meet on one connection — local active with remote
// passive, local passive with remote active, S-O with S-O. Two actives
// would both dial, two passives would both wait.
func CanPair(local, remote Candidate) bool {
	if local.Component != remote.Component {
		return false
	}
	if is4(local.Addr.Addr()) != is4(remote.Addr.Addr()) {
		return false
	}
	switch local.TCPType {
	case Active:
		return remote.TCPType == Passive
	case Passive:
		return remote.TCPType == Active
	case SO:
		return remote.TCPType == SO
	}
	return false
}

// is4 treats IPv4-mapped IPv6 as IPv4: a dual-stack socket reaches it over IPv4.
func is4(a netip.Addr) bool { return a.Unmap().Is4() }

// PairPriority returns 2^32*MIN(G,D) + 2*MAX(G,D) + (G>D?1:0) (RFC 8445
// §6.1.2.3), where G is the controlling agent's candidate priority and D
// the controlled agent's. Both agents compute the same number for a pair,
// which is what lets them agree on the order of checks. The result fits in
// 64 bits for priorities up to MaxPriority, the RFC bound Parse enforces.
func PairPriority(controlling, controlled uint32) uint64 {
	g, d := uint64(controlling), uint64(controlled)
	p := 1<<32*min(g, d) + 2*max(g, d)
	if g > d {
		p++
	}
	return p
}

// Priority returns the pair priority seen from the local agent's role.
func (p Pair) Priority(localIsControlling bool) uint64 {
	if localIsControlling {
		return PairPriority(p.Local.Priority, p.Remote.Priority)
	}
	return PairPriority(p.Remote.Priority, p.Local.Priority)
}

// Foundation returns the pair foundation, local.Foundation + ":" +
// remote.Foundation (RFC 8445 §6.1.2.6 unfreezes pairs by it).
func (p Pair) Foundation() string { return p.Local.Foundation + ":" + p.Remote.Foundation }

// Base returns the local candidate a check for c is really sent from
// (RFC 8445 §6.1.2.4): c itself for host and relay candidates, whose base
// is themselves. For srflx/prflx it is the candidate in locals of Type Host
// with the same TCPType whose IP equals c.Related's IP and, except for
// Active candidates (whose port is always 9), whose port equals
// c.Related's port. The boolean is false when no base is found.
func Base(c Candidate, locals []Candidate) (Candidate, bool) {
	switch c.Type {
	case Host, Relay:
		return c, true
	case ServerReflexive, PeerReflexive:
	default:
		return Candidate{}, false
	}
	for _, l := range locals {
		if l.Type != Host || l.TCPType != c.TCPType || !sameIP(l.Addr.Addr(), c.Related.Addr()) {
			continue
		}
		if c.TCPType == Active || l.Addr.Port() == c.Related.Port() {
			return l, true
		}
	}
	return Candidate{}, false
}

// sameIP compares addresses ignoring zones and IPv4-in-IPv6 mapping: a
// local host candidate may carry a zone that a related address never has.
func sameIP(a, b netip.Addr) bool {
	return a.IsValid() && a.WithZone("").Unmap() == b.WithZone("").Unmap()
}

// redundancyKey identifies pairs that would open the same connection and
// send the same checks (RFC 8445 §6.1.2.4 "redundant").
type redundancyKey struct {
	localComp, remoteComp uint16
	local, remote         netip.AddrPort
	localTT, remoteTT     TCPType
}

// Prune prepares a checklist (RFC 8445 §6.1.2.4, RFC 6544 §6.2):
//
//   - a local srflx/prflx candidate is replaced by its Base, because checks
//     are sent from the base; pairs whose base is not in locals are dropped;
//   - pairs whose local candidate is Passive are removed: a passive
//     candidate never initiates a check, it answers checks on accepted
//     connections and sends its triggered checks back over them;
//   - of redundant pairs (same local base address and tcptype, same remote
//     address and tcptype, same components) only the highest-priority one
//     is kept.
//
// The result is sorted by pair priority, highest first, computed after the
// replacement so that p.Priority on the result is non-increasing; equal
// priorities keep their input order. The input slice is not modified.
func Prune(pairs []Pair, locals []Candidate, localIsControlling bool) []Pair {
	type ranked struct {
		p    Pair
		prio uint64
	}
	rs := make([]ranked, 0, len(pairs))
	for _, p := range pairs {
		base, ok := Base(p.Local, locals)
		if !ok || base.TCPType == Passive {
			continue
		}
		p.Local = base
		rs = append(rs, ranked{p, p.Priority(localIsControlling)})
	}
	slices.SortStableFunc(rs, func(a, b ranked) int { return cmp.Compare(b.prio, a.prio) })

	out := make([]Pair, 0, len(rs))
	seen := make(map[redundancyKey]struct{}, len(rs))
	for _, r := range rs {
		k := redundancyKey{
			localComp:  r.p.Local.Component,
			remoteComp: r.p.Remote.Component,
			local:      canonical(r.p.Local.Addr),
			remote:     canonical(r.p.Remote.Addr),
			localTT:    r.p.Local.TCPType,
			remoteTT:   r.p.Remote.TCPType,
		}
		if _, dup := seen[k]; dup {
			continue
		}
		seen[k] = struct{}{}
		out = append(out, r.p)
	}
	return out
}

func canonical(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().WithZone("").Unmap(), ap.Port())
}
