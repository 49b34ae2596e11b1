package tcpso

import (
	"net/netip"
	"testing"
)

func TestRoutePrimeTTL(t *testing.T) {
	a := netip.MustParseAddr
	for _, tc := range []struct {
		name   string
		hops   []Hop
		mapped netip.Addr
		want   int
		n      int
	}{
		{"home NAT then router", []Hop{{TTL: 1, From: a("192.168.1.1")}, {TTL: 2, From: a("203.0.113.254")}, {TTL: 3, Reached: true}}, netip.Addr{}, 2, 3},
		{"behind carrier-grade NAT", []Hop{{TTL: 1, From: a("10.0.0.1")}, {TTL: 2, From: a("100.64.3.1")}, {TTL: 3, From: a("198.51.100.1")}, {TTL: 4}}, netip.Addr{}, 3, 4},
		{"NAT answering from its mapped address", []Hop{{TTL: 1, From: a("203.0.113.7")}, {TTL: 2, From: a("203.0.113.254")}}, a("203.0.113.7"), 2, 2},
		{"silent router skipped", []Hop{{TTL: 1, From: a("10.0.0.1")}, {TTL: 2}, {TTL: 3, From: a("198.51.100.1")}}, netip.Addr{}, 3, 3},
		{"target before any router", []Hop{{TTL: 1, From: a("10.0.0.1")}, {TTL: 2, Reached: true}, {TTL: 3, From: a("198.51.100.1")}}, netip.Addr{}, 0, 2},
		{"nobody answers", []Hop{{TTL: 1}, {TTL: 2}}, netip.Addr{}, 0, 2},
		{"IPv6 unique local then global", []Hop{{TTL: 1, From: a("fd00::1")}, {TTL: 2, From: a("2001:db8::1")}}, netip.Addr{}, 2, 2},
	} {
		r := route(tc.hops, tc.mapped)
		if r.PrimeTTL != tc.want || len(r.Hops) != tc.n {
			t.Errorf("%s: prime TTL %d with %d hops, want %d with %d", tc.name, r.PrimeTTL, len(r.Hops), tc.want, tc.n)
		}
	}
}
