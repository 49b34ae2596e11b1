package candidate

import (
	"net/netip"
	"slices"
	"strconv"
)

// Type is the ICE candidate type (RFC 8445 §5.1.1).
type Type uint8

// Candidate types, in the order the SDP "typ" values are usually listed.
const (
	Host            Type = iota // "host"
	ServerReflexive             // "srflx"
	PeerReflexive               // "prflx"
	Relay                       // "relay"
)

// String returns the SDP "typ" token.
func (t Type) String() string {
	switch t {
	case Host:
		return "host"
	case ServerReflexive:
		return "srflx"
	case PeerReflexive:
		return "prflx"
	case Relay:
		return "relay"
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// TCPType is a TCP candidate's direction (RFC 6544 §4.5). Its values are
// pion/ice's (ice.TCPType(t) converts); the product does not import
// pion/ice/v2 itself, whose test helpers would link package testing into
// every binary.
type TCPType int

// TCP candidate directions (RFC 6544 §4.5).
const (
	Active  TCPType = 1
	Passive TCPType = 2
	SO      TCPType = 3
)

// String is the tcptype token of SDP: "active", "passive" or "so".
func (t TCPType) String() string {
	switch t {
	case Active:
		return "active"
	case Passive:
		return "passive"
	case SO:
		return "so"
	case 0:
		return ""
	}
	return "TCPType(" + strconv.Itoa(int(t)) + ")"
}

// ActivePort is the port written for active candidates: they never listen,
// so RFC 6544 §4.5 puts the discard port 9 on the wire.
const ActivePort = 9

// Extension is an attribute we do not interpret (generation, network-id,
// ufrag, network-cost, ...). Extensions are kept in order so a line read
// from a peer round-trips.
type Extension struct{ Key, Value string }

// Candidate is an immutable plain value. Ext must be treated as read-only:
// copies of a Candidate share it.
type Candidate struct {
	Foundation string
	Component  uint16 // 1 for the single component icetcp uses
	Priority   uint32
	// Addr is the transport address. For Active candidates the port is 9
	// (RFC 6544 §4.5): the real source port is chosen by the kernel at
	// connect time and is learned by the peer as a peer-reflexive candidate.
	Addr    netip.AddrPort
	Type    Type
	TCPType TCPType
	// Related is raddr/rport: the base of a srflx/prflx candidate, the
	// mapped address of a relay candidate. Zero value when absent.
	Related netip.AddrPort
	Ext     []Extension
}

// New builds a candidate with component 1, the RFC 6544 §4.2 priority and
// the RFC 8445 §5.1.1.3 foundation.
//
// related is the base for srflx/prflx (the host address the mapping was
// learned from), the mapped/base address for relay (may be zero) and zero
// for host. server is the IP of the STUN/TURN server that produced a
// srflx/relay candidate (zero for host and prflx). otherPref (0..8191) must
// be distinct per local IP address on multihomed hosts; use 8191 with one
// address. Active candidates get port 9 in Addr.
func New(t Type, tt TCPType, addr, related netip.AddrPort, server netip.Addr, otherPref uint16) Candidate {
	if tt == Active {
		addr = netip.AddrPortFrom(addr.Addr(), ActivePort)
	}
	// The base (RFC 8445 §4 "Base") of a host or relayed candidate is the
	// candidate itself; of a reflexive candidate, the host address it was
	// learned from.
	base := addr.Addr()
	if t == ServerReflexive || t == PeerReflexive {
		base = related.Addr()
	}
	const component = 1
	return Candidate{
		Foundation: Foundation(t, base, server),
		Component:  component,
		Priority:   Priority(t, tt, otherPref, component),
		Addr:       addr,
		Type:       t,
		TCPType:    tt,
		Related:    related,
	}
}

// Equal reports whether two candidates are the same value, extensions
// included. (Candidate holds a slice, so == does not compile.)
func (c Candidate) Equal(o Candidate) bool {
	return c.Foundation == o.Foundation &&
		c.Component == o.Component &&
		c.Priority == o.Priority &&
		c.Addr == o.Addr &&
		c.Type == o.Type &&
		c.TCPType == o.TCPType &&
		c.Related == o.Related &&
		slices.Equal(c.Ext, o.Ext)
}

// String returns Marshal(), so a candidate prints as the line a peer sees.
func (c Candidate) String() string { return c.Marshal() }
