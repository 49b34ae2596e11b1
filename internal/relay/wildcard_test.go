package relay

import (
	"errors"
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
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Error(err)
		}
	})
	addr := netip.AddrPortFrom(cfg.RelayIP, addrOf(l).Port())
	a := newClient(t, addr, clientOpts{})
	b := newClient(t, addr, clientOpts{})
	a.mustAllocate(t)
	b.mustAllocate(t)
	if a.relayed.Addr() != cfg.RelayIP {
		t.Fatalf("relayed address %v, want RelayIP", a.relayed)
	}
	if err := b.CreatePermission(net.TCPAddrFromAddrPort(a.relayed)); err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		conn, err := b.alloc.Accept()
		if err == nil {
			accepted <- conn
		}
		close(accepted)
	}()
	ac, err := a.alloc.Dial("tcp4", b.relayed.String())
	if err != nil {
		t.Fatalf("A to B: %v", err)
	}
	defer ac.Close()
	bc := recvConn(t, accepted)
	defer bc.Close()
	if bc.RemoteAddr().String() != a.relayed.String() {
		t.Errorf("B sees %v, want A's relayed address %v", bc.RemoteAddr(), a.relayed)
	}
	exchange(t, ac, bc, randomBytes(1<<20), randomBytes(1<<20))

	r := dialRaw(t, addr, testUser, testPass)
	if res := r.allocate(); code(res) != 0 {
		t.Fatalf("allocate: %v", res)
	}
	for _, peer := range []string{"127.0.0.1", "127.0.0.5"} {
		ap := netip.AddrPortFrom(netip.MustParseAddr(peer), addr.Port())
		if res := r.request(stun.MethodConnect, peerAddr(ap)); code(res) == 0 {
			t.Errorf("Connect to the relay's own port at %v succeeded", ap)
		}
	}
}
