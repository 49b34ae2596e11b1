package memnet

import (
	"hash/fnv"
	"net/netip"
)

// NAT puts hosts behind a public address. Mapping is endpoint-independent
// and port-preserving unless Symmetric: then every destination gets its
// own external port (RFC 4787 address-and-port-dependent mapping), so a
// server-reflexive port learned from one server is wrong for anyone else;
// or Sequential: then every new connection gets the next port of one
// series. Unsolicited inbound SYNs are answered per Inbound (Refuse or
// Drop) unless EIF lets them through; a SYN that crosses the host's own
// outbound punch passes (simultaneous open), as through a Linux NAT.
type NAT struct {
	Public    netip.Addr
	Hosts     []netip.Addr
	Inbound   Inbound // Refuse or Drop; Open is taken as Refuse
	Symmetric bool
	// Sequential gives every new connection from a host (a new
	// local→remote 4-tuple, or a SYN sent again on one whose last SYN was
	// refused: Linux drops a NAT entry whose only answer was an RST) the
	// next port of one series: FirstPort (0: 30000), then Delta (0: 1)
	// further each time, as "snat numgen inc" does (natlab's sequential
	// profiles). Noise advances the series as other hosts' connections.
	Sequential bool
	Delta      int
	FirstPort  uint16
	// EIF forwards an unsolicited SYN to a port a host behind the NAT has
	// sent from, from anyone, to that host's port (endpoint-independent
	// filtering, RFC 4787 §5).
	EIF bool

	// guarded by Network.mu:
	next int                       // sequential: connections allocated
	seq  map[route]uint16          // sequential: local→remote → external port
	used map[uint16]netip.AddrPort // EIF: external port → the host's address
}

// Noise advances the series of the sequential NAT at public by conns, as
// conns connections of other hosts behind it would.
func (n *Network) Noise(public netip.Addr, conns int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if nat := n.nats[public]; nat != nil {
		nat.next += conns
	}
}

// AddNAT places hosts behind a NAT. Hosts behind one NAT reach each
// other's private addresses directly; nobody else reaches them.
func (n *Network) AddNAT(cfg NAT) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if cfg.Inbound == Open {
		cfg.Inbound = Refuse
	}
	nat := &cfg
	if n.nats == nil {
		n.nats, n.behind = map[netip.Addr]*NAT{}, map[netip.Addr]*NAT{}
	}
	n.nats[cfg.Public] = nat
	n.known[cfg.Public] = true
	for _, h := range cfg.Hosts {
		n.behind[h] = nat
		n.known[h] = true
	}
}

// external is local as remote sees it: the mapping of a connection from
// local to remote, made by its first SYN.
func (n *Network) external(local, remote netip.AddrPort) netip.AddrPort {
	nat := n.behind[local.Addr()]
	if nat == nil || n.behind[remote.Addr()] == nat {
		return local
	}
	port := n.port0(nat, local, remote)
	if nat.EIF {
		if nat.used == nil {
			nat.used = map[uint16]netip.AddrPort{}
		}
		nat.used[port] = local
	}
	return netip.AddrPortFrom(nat.Public, port)
}

// port0 is the external port of local→remote.
func (n *Network) port0(nat *NAT, local, remote netip.AddrPort) uint16 {
	if nat.Sequential {
		if p, ok := nat.seq[route{local, remote}]; ok {
			return p
		}
		first, delta := int(nat.FirstPort), nat.Delta
		if first == 0 {
			first = 30000
		}
		if delta == 0 {
			delta = 1
		}
		p := uint16(first + delta*nat.next)
		nat.next++
		if nat.seq == nil {
			nat.seq = map[route]uint16{}
		}
		nat.seq[route{local, remote}] = p
		return p
	}
	port := local.Port()
	if nat.Symmetric {
		h := fnv.New32a()
		b, _ := remote.MarshalBinary()
		h.Write(b)
		l, _ := local.MarshalBinary()
		h.Write(l)
		port = uint16(20000 + h.Sum32()%40000)
	}
	return port
}

// refusedLocked: a SYN from local to remote met an RST, which ends its
// NAT entry: a sequential NAT gives the next SYN a new port.
func (n *Network) refusedLocked(local, remote netip.AddrPort) {
	if nat := n.behind[local.Addr()]; nat != nil && nat.Sequential {
		delete(nat.seq, route{local, remote})
	}
}

// eifLocked is where an EIF NAT forwards a SYN to remote (one of its
// public ports a host sent from); false otherwise.
func (n *Network) eifLocked(remote netip.AddrPort) (netip.AddrPort, bool) {
	nat := n.nats[remote.Addr()]
	if nat == nil || !nat.EIF {
		return netip.AddrPort{}, false
	}
	to, ok := nat.used[remote.Port()]
	return to, ok
}

// unreachable: remote is a private address behind a NAT local is not
// behind; a SYN to it goes nowhere.
func (n *Network) unreachable(local, remote netip.AddrPort) bool {
	nat := n.behind[remote.Addr()]
	return nat != nil && n.behind[local.Addr()] != nat
}

// natInbound is what the NAT in front of remote does with an unsolicited
// SYN, or Open when remote is not a NAT's public address.
func (n *Network) natInbound(remote netip.AddrPort) Inbound {
	if nat := n.nats[remote.Addr()]; nat != nil {
		return nat.Inbound
	}
	return Open
}
