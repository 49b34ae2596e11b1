package relay

import (
	"net/netip"
	"testing"

	"github.com/pion/stun/v4"
)

// One port for STUN and TURN: a connection that starts with a Binding
// request is answered by the stuntcp server (SOFTWARE "icetcp",
// RESPONSE-ORIGIN), and keepalive Bindings follow on it; a TURN control
// connection's Bindings are answered by pion.
func TestSharedPortBinding(t *testing.T) {
	checkLeaks(t)
	ts := startServer(t, baseConfig())
	r := &rawTURN{t: t, conn: dialFrom(t, netip.Addr{}, ts.addr)}
	local := netip.MustParseAddrPort(r.conn.LocalAddr().String())
	for i := range 3 {
		res := r.roundTrip(stun.BindingRequest, stun.Fingerprint)
		var mapped stun.XORMappedAddress
		var origin stun.ResponseOrigin
		var sw stun.Software
		if res.Type != stun.BindingSuccess || mapped.GetFrom(res) != nil || origin.GetFrom(res) != nil || sw.GetFrom(res) != nil {
			t.Fatalf("Binding %d: %v", i, res)
		}
		if got := netip.AddrPortFrom(netip.MustParseAddr(mapped.IP.String()), uint16(mapped.Port)); got != local {
			t.Fatalf("XOR-MAPPED-ADDRESS %v, want %v", got, local)
		}
		if got := netip.AddrPortFrom(netip.MustParseAddr(origin.IP.String()), uint16(origin.Port)); got != ts.addr || sw.String() != "icetcp" {
			t.Fatalf("RESPONSE-ORIGIN %v SOFTWARE %q: not the stuntcp server", got, sw)
		}
	}

	c := newClient(t, ts.addr, clientOpts{})
	c.mustAllocate(t)
	mapped, err := c.SendBindingRequest()
	if err != nil {
		t.Fatalf("Binding on the TURN connection: %v", err)
	}
	if mapped.String() != c.conn.LocalAddr().String() {
		t.Fatalf("mapped %v, want %v", mapped, c.conn.LocalAddr())
	}
}

// A client may send Binding requests before its first TURN request on the
// same connection: the STUN server answers those, then the connection
// moves to the TURN server with the request intact.
func TestBindingThenAllocateOnOneConnection(t *testing.T) {
	checkLeaks(t)
	ts := startServer(t, baseConfig())
	r := dialRaw(t, ts.addr, testUser, testPass)
	r.user, r.pass = testUser, testPass
	for range 2 {
		res := r.roundTrip(stun.BindingRequest, stun.Fingerprint)
		var sw stun.Software
		if res.Type != stun.BindingSuccess || sw.GetFrom(res) != nil || sw.String() != "icetcp" {
			t.Fatalf("Binding before Allocate: %v, want the STUN server's answer", res)
		}
	}
	r.mustAllocate()
	res := r.roundTrip(stun.BindingRequest, stun.Fingerprint)
	var mapped stun.XORMappedAddress
	if res.Type != stun.BindingSuccess || mapped.GetFrom(res) != nil || res.Contains(stun.AttrSoftware) {
		t.Fatalf("Binding after Allocate: %v, want pion's answer", res)
	}
	if got := ts.Stats().Allocations; got != 1 {
		t.Fatalf("%d allocations, want 1", got)
	}
}

// The same with the Binding and the Allocate in one segment: the STUN
// server must not swallow the TURN request read along with the Binding.
func TestBindingAndAllocateInOneSegment(t *testing.T) {
	checkLeaks(t)
	ts := startServer(t, baseConfig())
	r := dialRaw(t, ts.addr, testUser, testPass)
	bind := stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	alloc := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest), tcpTransport, stun.Fingerprint)
	if _, err := r.conn.Write(append(append([]byte(nil), bind.Raw...), alloc.Raw...)); err != nil {
		t.Fatal(err)
	}
	if res := r.read(); res.TransactionID != bind.TransactionID || res.Type != stun.BindingSuccess {
		t.Fatalf("first answer %v, want the Binding success", res)
	}
	if res := r.read(); res.TransactionID != alloc.TransactionID || code(res) != 401 {
		t.Fatalf("second answer %v, want the Allocate's 401", res)
	}
}
