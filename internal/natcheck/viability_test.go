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
	} {
		got, why := SimultaneousOpenViable(tc.local, tc.remote)
		if got != tc.want || !strings.Contains(why, tc.why) {
			t.Errorf("%s: %s %q, want %s containing %q", tc.name, got, why, tc.want, tc.why)
		}
	}
}
