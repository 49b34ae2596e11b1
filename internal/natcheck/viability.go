package natcheck

import (
	"fmt"
	"strings"
)

// Viability is the verdict of SimultaneousOpenViable.
type Viability uint8

// Verdicts.
const (
	ViabilityUnknown Viability = iota // a class lacks what the verdict needs
	Likely
	Unlikely
	// Predicted: likely with port prediction only. A side's NAT maps
	// every new connection to a new port (its server-reflexive address
	// is no use to the peer) but allocates the ports in sequence, so
	// the port its next connection will get can be predicted from the
	// last one it saw and the delta, announced to the peer and punched.
	Predicted
)

func (v Viability) String() string {
	switch v {
	case Likely:
		return "likely"
	case Unlikely:
		return "unlikely"
	case Predicted:
		return "predicted"
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
// A side whose NAT maps each connection anew but allocates its ports in
// sequence (a constant delta, RFC 4787 §4.2's "port assignment" seen over
// TCP) is not hopeless: the verdict is Predicted, likely once that side
// predicts the port of its next connection and the peer punches it (the
// server-reflexive candidate as gathered stays useless, and so do the
// pairs formed with it). Between two such sides both must predict.
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
	case lv == Predicted && rv == Predicted:
		return Predicted, lr + "; so does the peer's: both must predict"
	case lv == Predicted:
		return Predicted, lr
	case rv == Predicted:
		return Predicted, rr
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
	case v == Predicted:
		return Predicted, fmt.Sprintf("%s has an %s mapping with ports allocated in sequence (step %+d): "+
			"its SYN leaves from the next port of the series, which it must predict", who, c.Mapping.Describe(), c.Delta)
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
// server-reflexive one, Predicted when it does not but the next port can
// be predicted, Unlikely when neither, unknown otherwise.
func predictable(c Class) Viability {
	switch c.Mapping {
	case NoNAT, EndpointIndependent:
		return Likely
	case AddressDependent, AddressAndPortDependent:
		if c.NeedsPrediction() {
			return Predicted
		}
		return Unlikely
	}
	if c.PortPreserving && c.Allocation == Preserving {
		return Likely
	}
	return ViabilityUnknown
}

// NeedsPrediction reports a NAT whose server-reflexive address is wrong for
// any other destination (an address- or address-and-port-dependent
// mapping) but whose next port is predictable: it allocates in sequence
// with a known delta. A punch through it must start from a predicted port.
func (c Class) NeedsPrediction() bool {
	return (c.Mapping == AddressDependent || c.Mapping == AddressAndPortDependent) &&
		c.Allocation == Sequential && validDelta(c.Delta)
}

// PassiveReachable says whether a peer can open a TCP connection to the
// server-reflexive address of a passive candidate behind the NAT of class
// c (RFC 6544 §6.2: the peer's active candidate connects, nobody behind c
// sends a SYN toward it). The NAT has a mapping for that address (the
// STUN query from the passive port made it), but only the STUN server
// ever talked to it: the connection gets through only if the NAT filters
// independently of the endpoint (RFC 4787 §5 / RFC 5382 §5, what the SYN
// probe from an address the host never contacted shows as "passed"), or
// if there is no NAT. A refused or dropped probe means endpoint-dependent
// filtering: the peer's SYN meets the same fate. Pure function.
func PassiveReachable(c Class) (Viability, string) {
	switch {
	case c.Mapping == NoNAT:
		return Likely, "the passive side has no NAT"
	case c.InboundSYN == SYNPassed:
		return Likely, "the passive side's NAT filters independently of the endpoint: a SYN from anyone reaches its mapped port"
	case c.InboundSYN == SYNRefused || c.InboundSYN == SYNDropped:
		return Unlikely, "the passive side's NAT filters by endpoint (an unsolicited SYN is " + c.InboundSYN.Describe() +
			"): only its STUN server may reach that mapping"
	}
	return ViabilityUnknown, "the passive side's filtering is unknown"
}
