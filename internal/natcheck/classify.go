package natcheck

import (
	"fmt"
	"net/netip"

	"github.com/icetcp/icetcp/internal/stuntcp"
)

// mappingTests are the mapped addresses of RFC 5780 §4.3's tests, all from
// one local port: I to the primary address, II to the alternate IP with
// the primary port, III to the alternate IP and port. Zero: not run or
// failed; why is in the *Why fields.
type mappingTests struct {
	local         netip.AddrPort
	i, ii, iii    netip.AddrPort
	iiWhy, iiiWhy string
}

// classifyMapping decides the mapping behaviour as RFC 5780 §4.3 does,
// and says why when it cannot decide fully.
func classifyMapping(t mappingTests) (Mapping, string) {
	switch {
	case !t.i.IsValid():
		return MappingUnknown, "test I failed"
	case t.i == t.local:
		return NoNAT, ""
	case !t.ii.IsValid():
		return MappingUnknown, "mapping not measured: " + t.iiWhy
	case t.ii == t.i:
		return EndpointIndependent, ""
	case !t.iii.IsValid():
		// II proved the mapping depends on the destination; without III
		// the port's part is unknown, and the stricter class is reported.
		return AddressAndPortDependent, "mapping depends on the destination; whether on its port too is untested (" +
			t.iiiWhy + "), so the stricter address-and-port-dependent is reported"
	case t.iii == t.ii:
		return AddressDependent, ""
	}
	return AddressAndPortDependent, ""
}

// portSample is one connection of the allocation test.
type portSample struct{ local, mapped netip.AddrPort }

// minAllocSamples is the fewest samples an allocation pattern is read from:
// two steps, so that "sequential" is more than one coincidence.
const minAllocSamples = 3

// classifyAllocation reads the external ports of successive new
// connections: Preserving when each equals its local port, Sequential when
// each differs from the one before by the same non-zero delta (modulo
// 2^16, as a signed number), Random otherwise.
func classifyAllocation(s []portSample) (Allocation, int) {
	if len(s) < minAllocSamples {
		return AllocationUnknown, 0
	}
	preserving := true
	for _, p := range s {
		preserving = preserving && p.mapped.Port() == p.local.Port()
	}
	if preserving {
		return Preserving, 0
	}
	delta := portStep(s[0].mapped.Port(), s[1].mapped.Port())
	for i := 2; i < len(s); i++ {
		if portStep(s[i-1].mapped.Port(), s[i].mapped.Port()) != delta {
			return Random, 0
		}
	}
	if delta == 0 {
		return Random, 0
	}
	return Sequential, delta
}

// portStep is b-a in the 16-bit port space, as a signed number.
func portStep(a, b uint16) int { return int(int16(b - a)) }

// classifyInbound reads the server's SYN probe report. passed tells
// whether our own listener accepted the probe's connection (with no
// listener of ours, pass true: we cannot tell).
func classifyInbound(p *stuntcp.SYNProbe, passed bool) (InboundSYN, string) {
	if p == nil {
		return SYNUnknown, "the server did not answer SYN-PROBE (not an icetcp server, or an older one)"
	}
	switch p.Outcome {
	case stuntcp.ProbeRefused:
		return SYNRefused, ""
	case stuntcp.ProbeTimedOut:
		return SYNDropped, ""
	case stuntcp.ProbeConnected:
		if !passed {
			return SYNUnknown, "the server's probe connected, but not to this host: something on the path answered the SYN"
		}
		return SYNPassed, ""
	case stuntcp.ProbeDeclined:
		return SYNUnknown, "the server declined the SYN probe: " + p.Decline.String()
	}
	return SYNUnknown, fmt.Sprintf("the SYN probe ended %s", p.Outcome)
}
