package candidate

import "testing"

// Hand computation for every row: priority = 2^24*type + 2^8*local + (256-component),
// local = 8192*direction + other.
//
//	type pref: host 99, prflx 83, srflx 73, relay 0 (2^24*99 = 1660944384,
//	           2^24*83 = 1392508928, 2^24*73 = 1224736768)
//	direction: host/relay active 6, passive 4, so 2; srflx/prflx so 6, active 4, passive 2
//	local, other 8191: d6 57343 (*256 = 14679808), d4 40959 (10485504), d2 24575 (6291200)
//	local, other  100: d6 49252 (*256 = 12608512), d4 32868 ( 8414208), d2 16484 (4219904)
//	component 1 adds 255, component 2 adds 254.
func TestPriority(t *testing.T) {
	tests := []struct {
		typ       Type
		tt        TCPType
		other     uint16
		component uint16
		local     uint16
		want      uint32
	}{
		{Host, Active, 8191, 1, 57343, 1675624447},  // 1660944384 + 14679808 + 255
		{Host, Active, 100, 2, 49252, 1673553150},   // 1660944384 + 12608512 + 254
		{Host, Passive, 8191, 1, 40959, 1671430143}, // 1660944384 + 10485504 + 255
		{Host, Passive, 100, 2, 32868, 1669358846},  // 1660944384 +  8414208 + 254
		{Host, SO, 8191, 1, 24575, 1667235839},      // 1660944384 +  6291200 + 255
		{Host, SO, 100, 2, 16484, 1665164542},       // 1660944384 +  4219904 + 254

		{PeerReflexive, Active, 8191, 1, 40959, 1402994687},  // 1392508928 + 10485504 + 255
		{PeerReflexive, Active, 100, 2, 32868, 1400923390},   // 1392508928 +  8414208 + 254
		{PeerReflexive, Passive, 8191, 1, 24575, 1398800383}, // 1392508928 +  6291200 + 255
		{PeerReflexive, Passive, 100, 2, 16484, 1396729086},  // 1392508928 +  4219904 + 254
		{PeerReflexive, SO, 8191, 1, 57343, 1407188991},      // 1392508928 + 14679808 + 255
		{PeerReflexive, SO, 100, 2, 49252, 1405117694},       // 1392508928 + 12608512 + 254

		{ServerReflexive, Active, 8191, 1, 40959, 1235222527},  // 1224736768 + 10485504 + 255
		{ServerReflexive, Active, 100, 2, 32868, 1233151230},   // 1224736768 +  8414208 + 254
		{ServerReflexive, Passive, 8191, 1, 24575, 1231028223}, // 1224736768 +  6291200 + 255
		{ServerReflexive, Passive, 100, 2, 16484, 1228956926},  // 1224736768 +  4219904 + 254
		{ServerReflexive, SO, 8191, 1, 57343, 1239416831},      // 1224736768 + 14679808 + 255
		{ServerReflexive, SO, 100, 2, 49252, 1237345534},       // 1224736768 + 12608512 + 254

		{Relay, Active, 8191, 1, 57343, 14680063},  // 0 + 14679808 + 255
		{Relay, Active, 100, 2, 49252, 12608766},   // 0 + 12608512 + 254
		{Relay, Passive, 8191, 1, 40959, 10485759}, // 0 + 10485504 + 255
		{Relay, Passive, 100, 2, 32868, 8414462},   // 0 +  8414208 + 254
		{Relay, SO, 8191, 1, 24575, 6291455},       // 0 +  6291200 + 255
		{Relay, SO, 100, 2, 16484, 4220158},        // 0 +  4219904 + 254
	}
	for _, tc := range tests {
		if got := LocalPreference(tc.typ, tc.tt, tc.other); got != tc.local {
			t.Errorf("LocalPreference(%v, %v, %d) = %d, want %d", tc.typ, tc.tt, tc.other, got, tc.local)
		}
		if got := Priority(tc.typ, tc.tt, tc.other, tc.component); got != tc.want {
			t.Errorf("Priority(%v, %v, %d, %d) = %d, want %d", tc.typ, tc.tt, tc.other, tc.component, got, tc.want)
		}
	}
}

func TestTypePreference(t *testing.T) {
	tests := []struct {
		typ  Type
		want uint32
	}{
		{Host, 99},            // 126 - 27
		{PeerReflexive, 83},   // 110 - 27
		{ServerReflexive, 73}, // 100 - 27
		{Relay, 0},
		{Type(9), 0},
	}
	for _, tc := range tests {
		if got := TypePreference(tc.typ); got != tc.want {
			t.Errorf("TypePreference(%v) = %d, want %d", tc.typ, got, tc.want)
		}
	}
}

// Out-of-range inputs are clamped rather than spilling into neighbouring bits.
func TestPriorityClamps(t *testing.T) {
	if got, want := LocalPreference(Host, Active, 9000), LocalPreference(Host, Active, 8191); got != want {
		t.Errorf("other-pref 9000: local %d, want %d (clamped to 8191)", got, want)
	}
	if got, want := Priority(Host, Active, 8191, 0), Priority(Host, Active, 8191, 1); got != want {
		t.Errorf("component 0: %d, want %d (clamped to 1)", got, want)
	}
	if got, want := Priority(Host, Active, 8191, 300), Priority(Host, Active, 8191, 256); got != want {
		t.Errorf("component 300: %d, want %d (clamped to 256)", got, want)
	}
	// An unspecified tcptype has direction 0: only other-pref remains.
	if got := LocalPreference(Host, TCPType(0), 8191); got != 8191 {
		t.Errorf("unspecified tcptype: local %d, want 8191", got)
	}
}

func TestNew(t *testing.T) {
	host := mustAddrPort(t, "192.0.2.1:50000")
	mapped := mustAddrPort(t, "198.51.100.7:61000")
	stunIP := mustAddr(t, "203.0.113.3")

	c := New(Host, Active, host, mapped /* ignored for foundation of host */, stunIP, 8191)
	if c.Addr.Port() != ActivePort {
		t.Errorf("active host port = %d, want 9", c.Addr.Port())
	}
	if c.Component != 1 || c.Priority != 1675624447 {
		t.Errorf("active host component %d priority %d, want 1 and 1675624447", c.Component, c.Priority)
	}
	if c.Foundation != Foundation(Host, host.Addr(), stunIP) {
		t.Errorf("host foundation %q not derived from its own address", c.Foundation)
	}

	s := New(ServerReflexive, SO, mapped, host, stunIP, 8191)
	if s.Addr != mapped || s.Related != host || s.Priority != 1239416831 {
		t.Errorf("srflx so = %+v", s)
	}
	if s.Foundation != Foundation(ServerReflexive, host.Addr(), stunIP) {
		t.Errorf("srflx foundation %q not derived from its base", s.Foundation)
	}

	r := New(Relay, Passive, mapped, netip0, stunIP, 8191)
	if r.Foundation != Foundation(Relay, mapped.Addr(), stunIP) {
		t.Errorf("relay foundation %q not derived from the relayed address", r.Foundation)
	}
	if r.Related.IsValid() {
		t.Errorf("relay related = %v, want zero", r.Related)
	}
}
