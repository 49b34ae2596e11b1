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

// Tokens of the class string; index = value.
var (
	mappingTokens    = [...]string{"unknown", "nonat", "eim", "adm", "apdm"}
	allocationTokens = [...]string{"unknown", "preserve", "seq", "random"}
	inboundTokens    = [...]string{"unknown", "rst", "drop", "pass"}

	mappingWords = [...]string{"unknown", "no NAT", "endpoint-independent",
		"address-dependent", "address-and-port-dependent"}
	allocationWords = [...]string{"unknown", "port-preserving", "sequential", "random"}
	inboundWords    = [...]string{"unknown", "refused (RST)", "dropped (no answer)", "passed (reached this host)"}
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
	InboundSYN     InboundSYN

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
