package natcheck

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/icetcp/icetcp/internal/stuntcp"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestClassifyMapping(t *testing.T) {
	local := ap("10.0.1.2:40000")
	for _, tc := range []struct {
		name string
		t    mappingTests
		want Mapping
		why  string // substring of the reason; "" means none
	}{
		{"test I failed", mappingTests{local: local}, MappingUnknown, "test I"},
		{"no NAT", mappingTests{local: local, i: local}, NoNAT, ""},
		{"no alternate", mappingTests{local: local, i: ap("203.0.113.1:40000"), iiWhy: "no OTHER-ADDRESS"},
			MappingUnknown, "no OTHER-ADDRESS"},
		{"EIM", mappingTests{local: local, i: ap("203.0.113.1:40000"), ii: ap("203.0.113.1:40000")}, EndpointIndependent, ""},
		{"EIM remapped", mappingTests{local: local, i: ap("203.0.113.1:48192"), ii: ap("203.0.113.1:48192")}, EndpointIndependent, ""},
		{"address-dependent", mappingTests{local: local, i: ap("203.0.113.1:1000"), ii: ap("203.0.113.1:2000"), iii: ap("203.0.113.1:2000")},
			AddressDependent, ""},
		{"address-and-port-dependent", mappingTests{local: local, i: ap("203.0.113.1:1000"), ii: ap("203.0.113.1:2000"), iii: ap("203.0.113.1:3000")},
			AddressAndPortDependent, ""},
		{"another external IP per destination", mappingTests{local: local, i: ap("203.0.113.1:1000"), ii: ap("203.0.113.2:1000"), iii: ap("203.0.113.2:1000")},
			AddressDependent, ""},
		{"III failed", mappingTests{local: local, i: ap("203.0.113.1:1000"), ii: ap("203.0.113.1:2000"), iiiWhy: "refused"},
			AddressAndPortDependent, "untested (refused)"},
	} {
		got, why := classifyMapping(tc.t)
		if got != tc.want || (tc.why == "") != (why == "") || !strings.Contains(why, tc.why) {
			t.Errorf("%s: %s %q, want %s %q", tc.name, got, why, tc.want, tc.why)
		}
	}
}

func TestClassifyAllocation(t *testing.T) {
	series := func(pairs ...uint16) []portSample {
		var s []portSample
		for i := 0; i < len(pairs); i += 2 {
			s = append(s, portSample{
				local:  netip.AddrPortFrom(netip.MustParseAddr("10.0.1.2"), pairs[i]),
				mapped: netip.AddrPortFrom(netip.MustParseAddr("203.0.113.1"), pairs[i+1]),
			})
		}
		return s
	}
	for _, tc := range []struct {
		name  string
		s     []portSample
		want  Allocation
		delta int
	}{
		{"too few", series(1000, 1000, 1001, 1001), AllocationUnknown, 0},
		{"preserving", series(1000, 1000, 1001, 1001, 1002, 1002, 1003, 1003), Preserving, 0},
		{"preserving with a gap in local ports", series(1000, 1000, 1005, 1005, 1006, 1006), Preserving, 0},
		{"sequential +1", series(1000, 5000, 1001, 5001, 1002, 5002, 1003, 5003), Sequential, 1},
		{"sequential +2 from random local ports", series(1, 5000, 9, 5002, 7, 5004), Sequential, 2},
		{"sequential -1", series(1000, 5000, 1001, 4999, 1002, 4998), Sequential, -1},
		{"sequential across the wrap", series(1, 65534, 2, 65535, 3, 0, 4, 1), Sequential, 1},
		{"one port for all (not a step)", series(1, 7000, 2, 7000, 3, 7000), Random, 0},
		{"random", series(1000, 31337, 1001, 4242, 1002, 60001, 1003, 1717), Random, 0},
		{"one step differs widely", series(1000, 5000, 1001, 5001, 1002, 5002, 1003, 5099), Random, 0},
		{"noisy sequence +1", series(1000, 5000, 1001, 5001, 1002, 5004, 1003, 5005), Sequential, 1},
		{"noisy sequence +2", series(1000, 5000, 1001, 5004, 1002, 5006, 1003, 5012), Sequential, 2},
		{"noisy sequence -1", series(1000, 5000, 1001, 4997, 1002, 4996), Sequential, -1},
		{"steps of both signs", series(1000, 5000, 1001, 5003, 1002, 5001), Random, 0},
		{"a repeated port among steps", series(1000, 5000, 1001, 5002, 1002, 5002), Random, 0},
		{"preserving but one", series(1000, 1000, 1001, 1001, 1002, 9999), Random, 0},
	} {
		got, d, _ := classifyAllocation(tc.s)
		if got != tc.want || d != tc.delta {
			t.Errorf("%s: %s %d, want %s %d", tc.name, got, d, tc.want, tc.delta)
		}
	}
}

func TestClassifyInbound(t *testing.T) {
	p := func(o stuntcp.ProbeOutcome, d stuntcp.ProbeDecline) *stuntcp.SYNProbe {
		return &stuntcp.SYNProbe{Outcome: o, Decline: d}
	}
	for _, tc := range []struct {
		name   string
		p      *stuntcp.SYNProbe
		passed bool
		want   InboundSYN
		why    string
	}{
		{"no probe support", nil, false, SYNUnknown, "did not answer SYN-PROBE"},
		{"refused", p(stuntcp.ProbeRefused, 0), false, SYNRefused, ""},
		{"dropped", p(stuntcp.ProbeTimedOut, 0), false, SYNDropped, ""},
		{"passed", p(stuntcp.ProbeConnected, 0), true, SYNPassed, ""},
		{"connected elsewhere", p(stuntcp.ProbeConnected, 0), false, SYNUnknown, "not to this host"},
		{"declined", p(stuntcp.ProbeDeclined, stuntcp.DeclineRate), false, SYNUnknown, "declined the SYN probe: rate"},
		{"unreachable", p(stuntcp.ProbeUnreachable, 0), false, SYNUnknown, "unreachable"},
	} {
		got, why := classifyInbound(tc.p, tc.passed)
		if got != tc.want || (tc.why == "") != (why == "") || !strings.Contains(why, tc.why) {
			t.Errorf("%s: %s %q, want %s %q", tc.name, got, why, tc.want, tc.why)
		}
	}
}

func TestEnumWords(t *testing.T) {
	if EndpointIndependent.String() != "eim" || EndpointIndependent.Describe() != "endpoint-independent" ||
		Sequential.String() != "seq" || SYNDropped.String() != "drop" || Mapping(42).String() != "invalid(42)" {
		t.Fatal("enum names changed: the class string depends on them")
	}
}
