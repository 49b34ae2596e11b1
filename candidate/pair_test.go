package candidate

import (
	"net/netip"
	"testing"
)

func TestCanPair(t *testing.T) {
	v4 := netip.MustParseAddrPort("10.0.0.1:5000")
	v4b := netip.MustParseAddrPort("192.0.2.9:7000")
	v6 := netip.MustParseAddrPort("[2001:db8::1]:5000")
	mapped := netip.MustParseAddrPort("[::ffff:192.0.2.9]:7000")
	mk := func(tt TCPType, ap netip.AddrPort, comp uint16) Candidate {
		return Candidate{Foundation: "1", Component: comp, Priority: 1, Addr: ap, Type: Host, TCPType: tt}
	}
	unspecified := TCPType(0)
	tests := []struct {
		name          string
		local, remote Candidate
		want          bool
	}{
		{"active-passive", mk(Active, v4, 1), mk(Passive, v4b, 1), true},
		{"active-active", mk(Active, v4, 1), mk(Active, v4b, 1), false},
		{"active-so", mk(Active, v4, 1), mk(SO, v4b, 1), false},
		{"passive-active", mk(Passive, v4, 1), mk(Active, v4b, 1), true},
		{"passive-passive", mk(Passive, v4, 1), mk(Passive, v4b, 1), false},
		{"passive-so", mk(Passive, v4, 1), mk(SO, v4b, 1), false},
		{"so-so", mk(SO, v4, 1), mk(SO, v4b, 1), true},
		{"so-active", mk(SO, v4, 1), mk(Active, v4b, 1), false},
		{"so-passive", mk(SO, v4, 1), mk(Passive, v4b, 1), false},
		{"unspecified-passive", mk(unspecified, v4, 1), mk(Passive, v4b, 1), false},
		{"active-unspecified", mk(Active, v4, 1), mk(unspecified, v4b, 1), false},
		{"different component", mk(Active, v4, 1), mk(Passive, v4b, 2), false},
		{"ipv4-ipv6", mk(Active, v4, 1), mk(Passive, v6, 1), false},
		{"ipv6-ipv4", mk(SO, v6, 1), mk(SO, v4b, 1), false},
		{"ipv6-ipv6", mk(SO, v6, 1), mk(SO, v6, 1), true},
		{"ipv4-mapped counts as ipv4", mk(Active, v4, 1), mk(Passive, mapped, 1), true},
	}
	for _, tc := range tests {
		if got := CanPair(tc.local, tc.remote); got != tc.want {
			t.Errorf("%s: CanPair = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestPairPriority(t *testing.T) {
	tests := []struct {
		name string
		g, d uint32
		want uint64
	}{
		{"G>D", 5, 3, 12884901899},  // 2^32*3 + 2*5 + 1
		{"G<D", 3, 5, 12884901898},  // 2^32*3 + 2*5 + 0
		{"G==D", 7, 7, 30064771086}, // 2^32*7 + 2*7 + 0
		{"host active vs host passive", 1675624447, 1671430143, 7178737805084852223}, // 2^32*1671430143 + 2*1675624447 + 1
		{"reversed", 1671430143, 1675624447, 7178737805084852222},                    // 2^32*1671430143 + 2*1675624447 + 0
		{"max priority", MaxPriority, MaxPriority, 9223372036854775806},              // 2^32*(2^31-1) + 2*(2^31-1), no overflow
	}
	for _, tc := range tests {
		if got := PairPriority(tc.g, tc.d); got != tc.want {
			t.Errorf("%s: PairPriority(%d, %d) = %d, want %d", tc.name, tc.g, tc.d, got, tc.want)
		}
	}

	p := Pair{Local: Candidate{Priority: 5}, Remote: Candidate{Priority: 3}}
	if got := p.Priority(true); got != 12884901899 {
		t.Errorf("local controlling: %d", got)
	}
	if got := p.Priority(false); got != 12884901898 {
		t.Errorf("local controlled: %d", got)
	}
}

func TestPairFoundation(t *testing.T) {
	p := Pair{Local: Candidate{Foundation: "12"}, Remote: Candidate{Foundation: "ab"}}
	if got := p.Foundation(); got != "12:ab" {
		t.Errorf("Foundation() = %q", got)
	}
}

// pruneFixture is a local agent on 10.0.0.1 behind a NAT mapped to
// 198.51.100.7, and a remote agent on 192.0.2.9.
type pruneFixture struct {
	hostA, hostP, hostSO, hostSO2        Candidate
	srflxA, srflxP, srflxSO, orphan, prA Candidate
	rP, rP2, rA, rSO, rSO2               Candidate
	locals                               []Candidate
}

func newPruneFixture() pruneFixture {
	ap := netip.MustParseAddrPort
	stun := netip.MustParseAddr("203.0.113.3")
	var none netip.AddrPort
	var noServer netip.Addr
	f := pruneFixture{
		hostA:   New(Host, Active, ap("10.0.0.1:0"), none, noServer, 8191),
		hostP:   New(Host, Passive, ap("10.0.0.1:5000"), none, noServer, 8191),
		hostSO:  New(Host, SO, ap("10.0.0.1:5001"), none, noServer, 8191),
		hostSO2: New(Host, SO, ap("10.0.0.1:5002"), none, noServer, 8191),
		// Active srflx: derived from the passive socket's mapping; its base
		// is the active host candidate on the same IP (ports are 9).
		srflxA:  New(ServerReflexive, Active, ap("198.51.100.7:0"), ap("10.0.0.1:5000"), stun, 8191),
		srflxP:  New(ServerReflexive, Passive, ap("198.51.100.7:6000"), ap("10.0.0.1:5000"), stun, 8191),
		srflxSO: New(ServerReflexive, SO, ap("198.51.100.7:6001"), ap("10.0.0.1:5001"), stun, 8191),
		orphan:  New(ServerReflexive, SO, ap("198.51.100.7:6009"), ap("10.9.9.9:5001"), stun, 8191),
		prA:     New(PeerReflexive, Active, ap("198.51.100.7:0"), ap("10.0.0.1:0"), noServer, 8191),

		rP:   New(Host, Passive, ap("192.0.2.9:7000"), none, noServer, 8191),
		rP2:  New(Host, Passive, ap("192.0.2.9:7002"), none, noServer, 8191),
		rA:   New(Host, Active, ap("192.0.2.9:0"), none, noServer, 8191),
		rSO:  New(Host, SO, ap("192.0.2.9:7001"), none, noServer, 8191),
		rSO2: New(ServerReflexive, SO, ap("198.51.100.99:7003"), ap("192.0.2.9:7001"), stun, 8191),
	}
	f.locals = []Candidate{f.hostA, f.hostP, f.hostSO, f.hostSO2, f.srflxA, f.srflxP, f.srflxSO}
	return f
}

func TestBase(t *testing.T) {
	f := newPruneFixture()
	relay := New(Relay, Passive, netip.MustParseAddrPort("203.0.113.3:49152"),
		netip.MustParseAddrPort("198.51.100.7:6001"), netip.MustParseAddr("203.0.113.3"), 8191)
	tests := []struct {
		name   string
		c      Candidate
		want   Candidate
		wantOK bool
	}{
		{"host is its own base", f.hostP, f.hostP, true},
		{"relay is its own base", relay, relay, true},
		{"srflx so -> host so, same port", f.srflxSO, f.hostSO, true},
		{"srflx passive -> host passive", f.srflxP, f.hostP, true},
		{"srflx active -> host active, port ignored", f.srflxA, f.hostA, true},
		{"prflx active -> host active", f.prA, f.hostA, true},
		{"no host on that IP", f.orphan, Candidate{}, false},
	}
	for _, tc := range tests {
		got, ok := Base(tc.c, f.locals)
		if ok != tc.wantOK || !got.Equal(tc.want) {
			t.Errorf("%s: Base = %v, %v; want %v, %v", tc.name, got, ok, tc.want, tc.wantOK)
		}
	}
	// Same IP but another port is not the base of a non-active srflx.
	wrongPort := f.srflxSO
	wrongPort.Related = netip.MustParseAddrPort("10.0.0.1:5999")
	if got, ok := Base(wrongPort, f.locals); ok {
		t.Errorf("srflx so with unknown base port: got base %v", got)
	}
	// A different tcptype on the same address is not the base either.
	mismatched := f.srflxSO
	mismatched.TCPType = Passive
	mismatched.Related = f.hostSO.Addr
	if got, ok := Base(mismatched, f.locals); ok {
		t.Errorf("tcptype mismatch: got base %v", got)
	}
}

func TestPrune(t *testing.T) {
	f := newPruneFixture()
	in := []Pair{
		{f.srflxSO, f.rSO},  // -> (hostSO, rSO): redundant with the host pair below
		{f.hostSO, f.rSO},   // kept
		{f.srflxA, f.rP},    // -> (hostA, rP): redundant
		{f.hostP, f.rA},     // local passive: removed
		{f.srflxP, f.rA},    // base is passive: removed
		{f.orphan, f.rSO},   // no base: dropped
		{f.srflxSO, f.rSO2}, // -> (hostSO, rSO2): kept, no host twin
		{f.hostA, f.rP2},    // same priority as (hostA, rP): input order kept
		{f.hostA, f.rP},     // kept
		{f.hostSO2, f.rSO},  // different local port: not redundant
	}
	inCopy := append([]Pair(nil), in...)

	got := Prune(in, f.locals, true)
	want := []Pair{
		{f.hostA, f.rP},    // from (srflxA, rP): 2^32*1671430143 + 2*1675624447 + 1 (G = host active > D = host passive)
		{f.hostA, f.rP2},   // same priority, later in the input
		{f.hostSO, f.rSO},  // 2^32*1667235839 + 2*1667235839
		{f.hostSO2, f.rSO}, // same priority, later in the input
		{f.hostSO, f.rSO2}, // remote srflx so priority 1239416831 is the minimum
	}
	if len(got) != len(want) {
		t.Fatalf("Prune returned %d pairs, want %d:\n%v", len(got), len(want), got)
	}
	for i := range want {
		if !got[i].Local.Equal(want[i].Local) || !got[i].Remote.Equal(want[i].Remote) {
			t.Errorf("pair %d = %v -> %v, want %v -> %v", i, got[i].Local, got[i].Remote, want[i].Local, want[i].Remote)
		}
		if i > 0 && got[i].Priority(true) > got[i-1].Priority(true) {
			t.Errorf("pair %d has a higher priority than pair %d", i, i-1)
		}
	}
	for i := range in {
		if !in[i].Local.Equal(inCopy[i].Local) || !in[i].Remote.Equal(inCopy[i].Remote) {
			t.Fatalf("Prune modified its input at %d", i)
		}
	}

	if got := Prune(nil, f.locals, false); len(got) != 0 {
		t.Errorf("Prune(nil) = %v", got)
	}
}

// The role changes pair priorities, hence the order.
func TestPruneRole(t *testing.T) {
	f := newPruneFixture()
	// Local host active (1675624447) vs remote srflx passive (1231028223), and
	// local host so (1667235839) vs remote host so (1667235839). The min term
	// dominates, so the so pair wins in both roles; the +1 tie-breaker only
	// appears in one role.
	rsP := New(ServerReflexive, Passive, netip.MustParseAddrPort("198.51.100.99:7010"),
		netip.MustParseAddrPort("192.0.2.9:7010"), netip.MustParseAddr("203.0.113.3"), 8191)
	in := []Pair{{f.hostA, rsP}, {f.hostSO, f.rSO}}
	for _, controlling := range []bool{true, false} {
		got := Prune(in, f.locals, controlling)
		if len(got) != 2 || !got[0].Local.Equal(f.hostSO) {
			t.Errorf("controlling=%v: %v", controlling, got)
		}
	}
	p := Pair{f.hostA, rsP}
	if p.Priority(true) != p.Priority(false)+1 {
		t.Errorf("G>D bit: controlling %d, controlled %d", p.Priority(true), p.Priority(false))
	}
}
