package natcheck

import "strings"

// Viability is the verdict of SimultaneousOpenViable.
type Viability uint8

// Verdicts.
const (
	ViabilityUnknown Viability = iota // a class lacks what the verdict needs
	Likely
	Unlikely
)

func (v Viability) String() string {
	switch v {
	case Likely:
		return "likely"
	case Unlikely:
		return "unlikely"
	}
	return "unknown"
}

// SimultaneousOpenViable says whether TCP simultaneous open (an RFC 6544
// tcp-so pair) between our host S-O candidate and the peer's
// server-reflexive one can succeed, from the two NAT classes: local is
// ours, remote the peer's (received over signaling).
//
// Both sides connect() to the other's server-reflexive address from their
// S-O port. Our SYN meets the peer's NAT at the address its STUN server
// saw; the NAT lets it in only if the peer's own SYN toward us left from
// that same external address and port, that is, if the peer's mapping
// toward us equals the one toward its STUN server: an endpoint-independent
// mapping (RFC 4787 §4.1 REQ-1, RFC 5382 REQ-1), or no NAT. The same holds
// for the peer's SYN at our NAT. An address-dependent or
// address-and-port-dependent ("symmetric") mapping on either side makes
// the crossing fail: the SYN arrives at a port nobody learned. Exceptions:
// a side without NAT, or whose NAT passes unsolicited SYNs to it
// (endpoint-independent filtering, RFC 4787 §5 / RFC 5382 §5: the probe
// came from an address it never contacted), accepts the other side's SYN
// on its listener whatever the other's mapping (RFC 6544 §7.2: an S-O
// candidate accepts incoming connections). A NAT whose mapping
// was not measured but which preserved every port it was shown keeps the
// port toward every destination while it is free, which is taken as
// endpoint-independent. RST or silence for an early SYN (RFC 5382 REQ-4)
// do not decide the verdict: the punching loop retries through both.
//
// The reason names the deciding side and behaviour. Pure function.
func SimultaneousOpenViable(local, remote Class) (Viability, string) {
	for _, s := range []struct {
		side string
		c    Class
	}{{"the peer", remote}, {"this host", local}} {
		if s.c.Mapping == NoNAT {
			return Likely, s.side + " has no NAT: the other side's SYN reaches its listener"
		}
		if s.c.InboundSYN == SYNPassed {
			return Likely, s.side + "'s NAT passes unsolicited SYNs to its mappings: the other side's SYN reaches its listener"
		}
	}
	lv, lr := side("this host", local)
	rv, rr := side("the peer", remote)
	switch {
	case lv == Unlikely:
		return Unlikely, lr
	case rv == Unlikely:
		return Unlikely, rr
	case lv == ViabilityUnknown:
		return ViabilityUnknown, lr
	case rv == ViabilityUnknown:
		return ViabilityUnknown, rr
	}
	reason := "both mappings are endpoint-independent: each side's SYN leaves from the address the other targets"
	if lr != "" || rr != "" {
		reason = strings.TrimPrefix(strings.Join([]string{lr, rr}, "; "), "; ")
		reason = strings.TrimSuffix(reason, "; ") + ": each side's SYN should leave from the address the other targets"
	}
	return Likely, reason
}

// side judges one class's mapping for the crossing.
func side(who string, c Class) (Viability, string) {
	switch v := predictable(c); {
	case v == Unlikely:
		return Unlikely, who + " has an " + c.Mapping.Describe() + " mapping: its SYN leaves from a port no STUN server saw"
	case v == ViabilityUnknown:
		return ViabilityUnknown, who + "'s NAT mapping is unknown"
	case c.Mapping == MappingUnknown:
		return Likely, who + "'s mapping is unmeasured but its NAT preserves ports"
	}
	return Likely, ""
}

// predictable: Likely when the mapping toward the peer equals the
// server-reflexive one, Unlikely when it does not, unknown otherwise.
func predictable(c Class) Viability {
	switch c.Mapping {
	case NoNAT, EndpointIndependent:
		return Likely
	case AddressDependent, AddressAndPortDependent:
		return Unlikely
	}
	if c.PortPreserving && c.Allocation == Preserving {
		return Likely
	}
	return ViabilityUnknown
}
