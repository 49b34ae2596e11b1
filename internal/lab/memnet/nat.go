package memnet

import (
	"hash/fnv"
	"net/netip"
)

// NAT puts hosts behind a public address. Mapping is endpoint-independent
// and port-preserving unless Symmetric: then every destination gets its
// own external port (RFC 4787 address-and-port-dependent mapping), so a
// server-reflexive port learned from one server is wrong for anyone else.
// Unsolicited inbound SYNs are answered per Inbound (Refuse or Drop);
// a SYN that crosses the host's own outbound punch passes (simultaneous
// open), as through a Linux NAT.
type NAT struct {
	Public    netip.Addr
	Hosts     []netip.Addr
	Inbound   Inbound // Refuse or Drop; Open is taken as Refuse
	Symmetric bool
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

// external is local as remote sees it.
func (n *Network) external(local, remote netip.AddrPort) netip.AddrPort {
	nat := n.behind[local.Addr()]
	if nat == nil || n.behind[remote.Addr()] == nat {
		return local
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
	return netip.AddrPortFrom(nat.Public, port)
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
