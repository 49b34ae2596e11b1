package natcheck

import (
	"fmt"
	"net/netip"
	"time"
)

// Mapping is the NAT's mapping behaviour for TCP (RFC 4787 §4.1 terms,
// which RFC 5382 §4.1 applies to TCP). The zero value is MappingUnknown.
type Mapping uint8

// Mapping behaviours.
const (
	MappingUnknown          Mapping = iota // not measured: no OTHER-ADDRESS, or the alternate was unreachable
	NoNAT                                  // the mapped address is the local one
	EndpointIndependent                    // one mapping for every destination (EIM)
	AddressDependent                       // a new mapping per destination IP
	AddressAndPortDependent                // a new mapping per destination IP and port ("symmetric")
	mappings
)

// Allocation is how the NAT picks external ports for successive new
// connections, each from a new local port (the local ports are consecutive
// where free). The zero value is AllocationUnknown.
type Allocation uint8

// Port allocation patterns.
const (
	AllocationUnknown Allocation = iota // fewer than three samples
	Preserving                          // the external port is the local port
	Sequential                          // the external port advances by a constant Delta
	Random                              // no pattern
	allocations
)

// InboundSYN is what the NAT does with an unsolicited inbound SYN from an
// address the host never contacted (RFC 5382 §5 REQ-4/REQ-5 and the
// filtering behaviour of RFC 4787 §5). The zero value is SYNUnknown.
type InboundSYN uint8

// Inbound SYN behaviours.
const (
	SYNUnknown InboundSYN = iota // the server offers no probe, declined it, or the result was unclear
	SYNRefused                   // answered with RST
	SYNDropped                   // silently dropped
	SYNPassed                    // reached the host (endpoint-independent filtering, or no NAT)
	inboundSYNs
)

// Filtering is how the NAT filters unsolicited inbound TCP connections to
// a mapping (RFC 4787 §5 terms, which RFC 5382 §5 applies to TCP), as far
// as one SYN from an address the host never contacted can tell over TCP:
// the SYN probe comes from the server's alternate IP to the mapping test I
// made. RFC 5780's filtering test (CHANGE-REQUEST) is UDP only; this is
// its TCP counterpart for the one question that matters to ICE-TCP: can
// anyone reach a mapped port? Address-dependent and address-and-port-
// dependent filtering both refuse or drop that SYN and are reported
// together. The zero value is FilteringUnknown.
type Filtering uint8

// Filtering behaviours.
const (
	FilteringUnknown             Filtering = iota // no probe, a declined one, or an unclear result
	NoFiltering                                   // no NAT: the probe reached this host
	EndpointIndependentFiltering                  // a SYN from anyone reaches the mapped port ("full cone" for TCP)
	EndpointDependentFiltering                    // address- or address-and-port-dependent: the probe was refused or dropped
	filterings
)

// Tokens of the class string; index = value.
var (
	mappingTokens    = [...]string{"unknown", "nonat", "eim", "adm", "apdm"}
	allocationTokens = [...]string{"unknown", "preserve", "seq", "random"}
	inboundTokens    = [...]string{"unknown", "rst", "drop", "pass"}

	mappingWords = [...]string{"unknown", "no NAT", "endpoint-independent",
		"address-dependent", "address-and-port-dependent"}
	allocationWords = [...]string{"unknown", "port-preserving", "sequential", "random"}
	inboundWords    = [...]string{"unknown", "refused (RST)", "dropped (no answer)", "passed (reached this host)"}

	filteringTokens = [...]string{"unknown", "none", "eif", "dependent"}
	filteringWords  = [...]string{"unknown", "none (no NAT)", "endpoint-independent (anyone reaches a mapped port)",
		"endpoint-dependent (only addresses this host contacted reach a mapped port)"}
)

// String is the class-string token: unknown, nonat, eim, adm, apdm.
func (m Mapping) String() string { return token(mappingTokens[:], uint8(m)) }

// Describe is the RFC 4787 wording.
func (m Mapping) Describe() string { return token(mappingWords[:], uint8(m)) }

// String is the class-string token: unknown, preserve, seq, random.
func (a Allocation) String() string { return token(allocationTokens[:], uint8(a)) }

// Describe is a phrase for people.
func (a Allocation) Describe() string { return token(allocationWords[:], uint8(a)) }

// String is the class-string token: unknown, rst, drop, pass.
func (s InboundSYN) String() string { return token(inboundTokens[:], uint8(s)) }

// Describe is a phrase for people.
func (s InboundSYN) Describe() string { return token(inboundWords[:], uint8(s)) }

// String is a token: unknown, none, eif, dependent.
func (f Filtering) String() string { return token(filteringTokens[:], uint8(f)) }

// Describe is a phrase for people.
func (f Filtering) Describe() string { return token(filteringWords[:], uint8(f)) }

func token(names []string, v uint8) string {
	if int(v) < len(names) {
		return names[v]
	}
	return fmt.Sprintf("invalid(%d)", v)
}

// Result is what Check found.
type Result struct {
	Local  netip.AddrPort // the local address of the probes (a specific IP)
	Mapped netip.AddrPort // the server-reflexive address test I saw

	Mapping        Mapping
	PortPreserving bool // Mapped's port is Local's
	Allocation     Allocation
	Delta          int // the step of a Sequential allocation; 0 otherwise
	// NoisySequence: Sequential, but the steps varied: other connections
	// through the NAT advanced the series between ours (a busy CGN). A
	// predicted port is then a guess within a window.
	NoisySequence bool
	InboundSYN    InboundSYN
	Filtering     Filtering // what InboundSYN says of the filtering (Class.Filtering)

	Server Capabilities
	// Observations are the single measurements, in order, for logs and
	// for checking a classification by hand.
	Observations []Observation
	// Notes say why something is unknown, or what else was seen.
	Notes   []string
	Elapsed time.Duration // how long Check took
}

// Capabilities is what the server offered.
type Capabilities struct {
	Address  netip.AddrPort // the address dialled (Config.Server)
	Origin   netip.AddrPort // RESPONSE-ORIGIN; another address than Address means a translated alias
	Other    netip.AddrPort // OTHER-ADDRESS; zero: no RFC 5780 alternate
	SYNProbe bool           // it understood SYN-PROBE (it ran or declined the probe)
	Software string
}

// Observation is one Binding transaction of the check.
type Observation struct {
	Test   string         // "I", "II", "III", "alloc"
	Local  netip.AddrPort // our address of the connection
	Server netip.AddrPort // where it went
	Mapped netip.AddrPort // what the server saw; zero on error
	Err    string         // why it failed; empty on success
}

// Class is the compact summary the agent sends its peer (see String).
type Class struct {
	Mapping        Mapping
	PortPreserving bool
	Allocation     Allocation
	Delta          int // meaningful with Sequential only
	InboundSYN     InboundSYN
}

// Class is the Result's summary.
func (r Result) Class() Class {
	c := Class{Mapping: r.Mapping, PortPreserving: r.PortPreserving, Allocation: r.Allocation, InboundSYN: r.InboundSYN}
	if r.Allocation == Sequential {
		c.Delta = r.Delta
	}
	return c
}

// Filtering is what the class says of the NAT's filtering: the SYN probe
// came from an address the host never contacted, so a probe that passed a
// NAT shows endpoint-independent filtering, and one refused or dropped
// shows filtering by endpoint.
func (c Class) Filtering() Filtering {
	switch {
	case c.Mapping == NoNAT && c.InboundSYN == SYNPassed:
		return NoFiltering
	case c.InboundSYN == SYNPassed:
		return EndpointIndependentFiltering
	case c.InboundSYN == SYNRefused, c.InboundSYN == SYNDropped:
		return EndpointDependentFiltering
	}
	return FilteringUnknown
}
