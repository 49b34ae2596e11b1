package natcheck

import (
	"strings"
	"testing"
)

func TestSimultaneousOpenViable(t *testing.T) {
	eim := Class{Mapping: EndpointIndependent, PortPreserving: true, Allocation: Preserving, InboundSYN: SYNRefused}
	eimDrop := Class{Mapping: EndpointIndependent, PortPreserving: true, Allocation: Preserving, InboundSYN: SYNDropped}
	remap := Class{Mapping: EndpointIndependent, Allocation: Sequential, Delta: 1, InboundSYN: SYNRefused}
	sym := Class{Mapping: AddressAndPortDependent, Allocation: Random, InboundSYN: SYNRefused}
	adm := Class{Mapping: AddressDependent, Allocation: Random, InboundSYN: SYNDropped}
	public := Class{Mapping: NoNAT, PortPreserving: true, Allocation: Preserving, InboundSYN: SYNPassed}
	open := Class{Mapping: AddressAndPortDependent, InboundSYN: SYNPassed} // a symmetric NAT with endpoint-independent filtering
	unmeasuredPreserving := Class{PortPreserving: true, Allocation: Preserving, InboundSYN: SYNRefused}
	unknown := Class{}
	seq := Class{Mapping: AddressAndPortDependent, Allocation: Sequential, Delta: 1, InboundSYN: SYNDropped}
	seqADM := Class{Mapping: AddressDependent, Allocation: Sequential, Delta: -2, InboundSYN: SYNRefused}
	for _, tc := range []struct {
		name          string
		local, remote Class
		want          Viability
		why           string
	}{
		{"EIM both", eim, eim, Likely, "both mappings are endpoint-independent"},
		{"EIM, drops and RSTs do not matter", eim, eimDrop, Likely, "endpoint-independent"},
		{"EIM remapping peer", eim, remap, Likely, "endpoint-independent"},
		{"symmetric peer", eim, sym, Unlikely, "the peer has an address-and-port-dependent mapping"},
		{"symmetric here", sym, eim, Unlikely, "this host has an address-and-port-dependent mapping"},
		{"symmetric both", sym, sym, Unlikely, "address-and-port-dependent"},
		{"address-dependent peer", eim, adm, Unlikely, "the peer has an address-dependent mapping"},
		{"public peer, symmetric here", sym, public, Likely, "the peer has no NAT"},
		{"public here, symmetric peer", public, sym, Likely, "this host has no NAT"},
		{"peer's NAT passes SYNs", sym, open, Likely, "the peer's NAT passes unsolicited SYNs"},
		{"unknown peer", eim, unknown, ViabilityUnknown, "the peer's NAT mapping is unknown"},
		{"unknown here", unknown, eim, ViabilityUnknown, "this host's NAT mapping is unknown"},
		{"unknown and symmetric: symmetric decides", unknown, sym, Unlikely, "the peer has"},
		{"unmeasured but preserving (tcp443-only)", unmeasuredPreserving, eim, Likely, "unmeasured but its NAT preserves ports"},
		{"sequential here", seq, eim, Predicted, "this host has an address-and-port-dependent mapping with ports allocated in sequence (step +1)"},
		{"sequential peer", eim, seqADM, Predicted, "the peer has an address-dependent mapping with ports allocated in sequence (step -2)"},
		{"sequential both", seq, seq, Predicted, "both must predict"},
		{"sequential and symmetric: symmetric decides", seq, sym, Unlikely, "the peer has an address-and-port-dependent mapping: its SYN leaves from a port no STUN server saw"},
		{"sequential and unknown", seq, unknown, ViabilityUnknown, "the peer's NAT mapping is unknown"},
		{"sequential and public", seq, public, Likely, "the peer has no NAT"},
		{"sequential and EIF", seq, open, Likely, "passes unsolicited SYNs"},
		// eim-remap allocates in sequence too, but its mapping is
		// endpoint-independent: the server-reflexive port is the one.
		{"sequential allocation with EIM needs no prediction", remap, eim, Likely, "endpoint-independent"},
	} {
		got, why := SimultaneousOpenViable(tc.local, tc.remote)
		if got != tc.want || !strings.Contains(why, tc.why) {
			t.Errorf("%s: %s %q, want %s containing %q", tc.name, got, why, tc.want, tc.why)
		}
	}
}

func TestNeedsPrediction(t *testing.T) {
	for _, tc := range []struct {
		c    Class
		want bool
	}{
		{Class{Mapping: AddressAndPortDependent, Allocation: Sequential, Delta: 1}, true},
		{Class{Mapping: AddressDependent, Allocation: Sequential, Delta: -3}, true},
		{Class{Mapping: AddressAndPortDependent, Allocation: Random}, false},
		{Class{Mapping: AddressAndPortDependent, Allocation: Sequential}, false}, // no delta
		{Class{Mapping: EndpointIndependent, Allocation: Sequential, Delta: 1}, false},
		{Class{Mapping: MappingUnknown, Allocation: Sequential, Delta: 1}, false},
		{Class{Mapping: NoNAT, Allocation: Preserving}, false},
	} {
		if got := tc.c.NeedsPrediction(); got != tc.want {
			t.Errorf("%v.NeedsPrediction() = %v, want %v", tc.c, got, tc.want)
		}
	}
}

func TestPassiveReachable(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Class
		want Viability
		why  string
	}{
		{"EIF", Class{Mapping: EndpointIndependent, PortPreserving: true, InboundSYN: SYNPassed}, Likely, "independently of the endpoint"},
		{"EIF behind a symmetric mapping", Class{Mapping: AddressAndPortDependent, InboundSYN: SYNPassed}, Likely, "independently"},
		{"no NAT", Class{Mapping: NoNAT, InboundSYN: SYNPassed}, Likely, "no NAT"},
		{"RST", Class{Mapping: EndpointIndependent, InboundSYN: SYNRefused}, Unlikely, "refused (RST)"},
		{"drop", Class{Mapping: EndpointIndependent, InboundSYN: SYNDropped}, Unlikely, "dropped"},
		{"unknown", Class{Mapping: EndpointIndependent}, ViabilityUnknown, "unknown"},
	} {
		got, why := PassiveReachable(tc.c)
		if got != tc.want || !strings.Contains(why, tc.why) {
			t.Errorf("%s: %s %q, want %s containing %q", tc.name, got, why, tc.want, tc.why)
		}
	}
}

func TestClassFiltering(t *testing.T) {
	for _, tc := range []struct {
		c    Class
		want Filtering
	}{
		{Class{Mapping: NoNAT, InboundSYN: SYNPassed}, NoFiltering},
		{Class{Mapping: EndpointIndependent, InboundSYN: SYNPassed}, EndpointIndependentFiltering},
		{Class{Mapping: MappingUnknown, InboundSYN: SYNPassed}, EndpointIndependentFiltering},
		{Class{Mapping: EndpointIndependent, InboundSYN: SYNRefused}, EndpointDependentFiltering},
		{Class{Mapping: AddressAndPortDependent, InboundSYN: SYNDropped}, EndpointDependentFiltering},
		{Class{Mapping: EndpointIndependent}, FilteringUnknown},
	} {
		if got := tc.c.Filtering(); got != tc.want {
			t.Errorf("%v.Filtering() = %s, want %s", tc.c, got, tc.want)
		}
	}
	if EndpointIndependentFiltering.String() != "eif" || Filtering(99).String() != "invalid(99)" {
		t.Errorf("tokens: %s %s", EndpointIndependentFiltering, Filtering(99))
	}
}
