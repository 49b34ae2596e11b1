package relay

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/pion/stun/v4"
)

func TestServeWildcardNeedsRelayIP(t *testing.T) {
	checkLeaks(t)
	s, err := New(baseConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Serve(l); err == nil || !strings.Contains(err.Error(), "RelayIP") {
		t.Fatalf("Serve on a wildcard address without RelayIP: %v", err)
	}
}

// As `icetcp serve` runs it: a wildcard listener, RelayIP set. Relay
// sockets bind to the wildcard address too; two allocations still reach
// each other, and the relay's own port on any of its addresses is a loop.
func TestServeWildcard(t *testing.T) {
	checkLeaks(t)
	cfg := baseConfig()
	cfg.RelayIP = netip.MustParseAddr("127.0.0.1")
	l, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.AddrPortFrom(cfg.RelayIP, serveOn(t, cfg, l).addr.Port())
	a, b := twoAllocations(t, addr)
	if a.relayed.Addr() != cfg.RelayIP {
		t.Fatalf("relayed address %v, want RelayIP", a.relayed)
	}
	ac, bc := connectPair(t, a, b)
	exchange(t, ac, bc, randomBytes(1<<20), randomBytes(1<<20))

	r := dialRaw(t, addr, testUser, testPass)
	r.mustAllocate()
	for _, peer := range []string{"127.0.0.1", "127.0.0.5"} {
		ap := netip.AddrPortFrom(netip.MustParseAddr(peer), addr.Port())
		if res := r.request(stun.MethodConnect, peerAddr(ap)); code(res) == 0 {
			t.Errorf("Connect to the relay's own port at %v succeeded", ap)
		}
	}
}
