package candidate

import (
	"net/netip"
	"testing"
)

func TestFoundation(t *testing.T) {
	base := netip.MustParseAddr("192.0.2.1")
	base2 := netip.MustParseAddr("192.0.2.2")
	srv := netip.MustParseAddr("203.0.113.3")
	srv2 := netip.MustParseAddr("203.0.113.4")
	var none netip.Addr

	ref := Foundation(ServerReflexive, base, srv)
	if again := Foundation(ServerReflexive, base, srv); again != ref {
		t.Fatalf("same inputs: %q then %q", ref, again)
	}
	// Zone and IPv4-in-IPv6 mapping do not change the IP.
	if got := Foundation(ServerReflexive, netip.MustParseAddr("::ffff:192.0.2.1"), srv); got != ref {
		t.Errorf("IPv4-mapped base: %q, want %q", got, ref)
	}
	if a, b := Foundation(Host, netip.MustParseAddr("fe80::1%eth0"), none), Foundation(Host, netip.MustParseAddr("fe80::1"), none); a != b {
		t.Errorf("zone changed the foundation: %q vs %q", a, b)
	}

	differ := map[string]string{
		"type":        Foundation(PeerReflexive, base, srv),
		"base":        Foundation(ServerReflexive, base2, srv),
		"server":      Foundation(ServerReflexive, base, srv2),
		"no server":   Foundation(ServerReflexive, base, none),
		"no base":     Foundation(ServerReflexive, none, srv),
		"swapped ips": Foundation(ServerReflexive, srv, base),
	}
	seen := map[string]string{ref: "reference"}
	for name, f := range differ {
		if prev, ok := seen[f]; ok {
			t.Errorf("%s: foundation %q equals that of %s", name, f, prev)
		}
		seen[f] = name
	}
	for f := range seen {
		if len(f) < 1 || len(f) > 32 || !isIceChars(f) {
			t.Errorf("foundation %q is not 1..32 ice-chars", f)
		}
	}
}

// Every type gets its own foundation for the same addresses.
func TestFoundationPerType(t *testing.T) {
	ip := netip.MustParseAddr("2001:db8::1")
	seen := map[string]Type{}
	for _, typ := range []Type{Host, ServerReflexive, PeerReflexive, Relay} {
		f := Foundation(typ, ip, ip)
		if prev, ok := seen[f]; ok {
			t.Errorf("%v and %v share foundation %q", typ, prev, f)
		}
		seen[f] = typ
	}
}
