package relay

import (
	"net"
	"net/netip"
	"testing"
)

// An IPv6 listener gives IPv6 relayed addresses (RFC 6156): pion's client
// asks for them with REQUESTED-ADDRESS-FAMILY when its connection is IPv6.
func TestIPv6(t *testing.T) {
	checkLeaks(t)
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	addr := serveOn(t, loopbackConfig(), l).addr
	c := newClient(t, addr, clientOpts{})
	c.mustAllocate(t)
	if c.relayed.Addr() != netip.IPv6Loopback() {
		t.Fatalf("relayed address %v, want one on ::1", c.relayed)
	}
	pl, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	accepted := acceptOne(t, pl.(*net.TCPListener))
	out, err := c.alloc.Dial("tcp6", pl.Addr().String())
	if err != nil {
		t.Fatalf("connect over IPv6: %v", err)
	}
	defer out.Close()
	exchange(t, out, recvConn(t, accepted), randomBytes(1<<20), randomBytes(1<<20))
}
