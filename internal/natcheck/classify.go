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

// maxNoisyStep bounds the steps of a sequence other connections through
// the NAT interleave: a busy NAT's series still advances by a few ports
// between two of ours, a random allocator's do not stay this close.
const maxNoisyStep = 32

// classifyAllocation reads the external ports of successive new
// connections: Preserving when each equals its local port, Sequential when
// each differs from the one before by the same non-zero delta (modulo
// 2^16, as a signed number), or by small steps of one sign (a series that
// other connections through the NAT advance too: the delta is the
// smallest step, what the NAT itself adds), Random otherwise. steps are
// the differences seen.
func classifyAllocation(s []portSample) (Allocation, int, []int) {
	if len(s) < minAllocSamples {
		return AllocationUnknown, 0, nil
	}
	preserving := true
	for _, p := range s {
		preserving = preserving && p.mapped.Port() == p.local.Port()
	}
	if preserving {
		return Preserving, 0, nil
	}
	steps := make([]int, 0, len(s)-1)
	for i := 1; i < len(s); i++ {
		steps = append(steps, portStep(s[i-1].mapped.Port(), s[i].mapped.Port()))
	}
	if allEqual(steps) {
		if steps[0] == 0 {
			return Random, 0, steps
		}
		return Sequential, steps[0], steps
	}
	delta := steps[0]
	for _, d := range steps {
		if d == 0 || (d > 0) != (steps[0] > 0) || abs(d) > maxNoisyStep {
			return Random, 0, steps
		}
		if abs(d) < abs(delta) {
			delta = d
		}
	}
	return Sequential, delta, steps
}

func allEqual(steps []int) bool {
	for _, d := range steps {
		if d != steps[0] {
			return false
		}
	}
	return true
}

func abs(d int) int {
	if d < 0 {
		return -d
	}
	return d
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
