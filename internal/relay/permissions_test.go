package relay

import (
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

// pion/turn#570 (fixed in v5.0.10): a TCP allocation must relay inbound
// connections only from peers the client permitted. Loopback peers are
// allowed here so that only permissions decide.
func TestPermissionsEnforcedForTCP(t *testing.T) {
	checkLeaks(t)
	ts := startServer(t, loopbackConfig())
	r := dialRaw(t, ts.addr, testUser, testPass)
	relayed := r.mustAllocate()

	// No permission yet: the relay closes the connection, no ConnectionAttempt.
	if !refused(t, netip.MustParseAddr("127.0.0.1"), relayed) {
		t.Fatal("inbound connection without permission not closed")
	}
	if res := r.request(stun.MethodCreatePermission, peerAddr(netip.MustParseAddrPort("127.0.0.1:1"))); code(res) != 0 {
		t.Fatalf("CreatePermission 127.0.0.1: %v", res)
	}
	for _, m := range r.skipped {
		if m.Type.Method == stun.MethodConnectionAttempt {
			t.Fatalf("ConnectionAttempt for a peer without permission: %v", m)
		}
	}
	// Permitted: a ConnectionAttempt names the peer.
	peer := dialFrom(t, netip.MustParseAddr("127.0.0.1"), relayed)
	ind := r.read()
	var from stun.XORMappedAddress
	if ind.Type != stun.NewType(stun.MethodConnectionAttempt, stun.ClassIndication) || from.GetFromAs(ind, stun.AttrXORPeerAddress) != nil {
		t.Fatalf("want a ConnectionAttempt, got %v", ind)
	}
	if got := net.JoinHostPort(from.IP.String(), strconv.Itoa(from.Port)); got != peer.LocalAddr().String() {
		t.Fatalf("ConnectionAttempt from %s, want %s", got, peer.LocalAddr())
	}
	// Permissions are per IP: another loopback address is still refused.
	if !refused(t, netip.MustParseAddr("127.0.0.3"), relayed) {
		t.Fatal("inbound connection from an IP without permission not closed")
	}
}

// Not an open relay: loopback, private and special-purpose peers are
// refused unless allowed, both ways.
func TestForbiddenPeers(t *testing.T) {
	checkLeaks(t)
	ts := startServer(t, baseConfig())
	r := dialRaw(t, ts.addr, testUser, testPass)
	relayed := r.mustAllocate()
	for _, ip := range []string{"127.0.0.2", "10.0.0.1", "172.16.5.4", "192.168.1.1", "100.64.0.1", "169.254.169.254", "0.0.0.0", "224.0.0.1", "255.255.255.255"} {
		res := r.request(stun.MethodCreatePermission, peerAddr(netip.AddrPortFrom(netip.MustParseAddr(ip), 1)))
		if code(res) != 403 {
			t.Errorf("CreatePermission %s answered %v, want 403", ip, res)
		}
	}
	l := peerListener(t, "127.0.0.2")
	if res := r.request(stun.MethodConnect, peerAddr(addrOf(l))); code(res) != 403 {
		t.Fatalf("Connect to loopback peer %s answered %v, want 403", l.Addr(), res)
	}
	l.SetDeadline(time.Now()) // the relay must not have dialed it
	if c, err := l.Accept(); err == nil {
		c.Close()
		t.Fatal("the relay connected to a forbidden peer")
	}
	// Inbound from a loopback address is refused before pion sees it.
	before := ts.Stats().Refused.PeerForbidden
	if !refused(t, netip.MustParseAddr("127.0.0.2"), relayed) {
		t.Fatal("inbound connection from a loopback peer not closed")
	}
	if got := ts.Stats().Refused.PeerForbidden; got != before+1 {
		t.Fatalf("peer-forbidden refusals %d, want %d", got, before+1)
	}
	if got := ts.Stats().Refused.PeerForbidden; got < 11 {
		t.Fatalf("peer-forbidden refusals %d, want at least 11", got)
	}
}

func TestPrivatePeersAllowed(t *testing.T) {
	checkLeaks(t)
	cfg := baseConfig()
	cfg.AllowPrivatePeers = true
	ts := startServer(t, cfg)
	r := dialRaw(t, ts.addr, testUser, testPass)
	r.mustAllocate()
	for ip, want := range map[string]int{"10.0.0.1": 0, "192.168.1.1": 0, "100.64.0.1": 0, "127.0.0.2": 403, "224.0.0.1": 403} {
		if res := r.request(stun.MethodCreatePermission, peerAddr(netip.AddrPortFrom(netip.MustParseAddr(ip), 1))); code(res) != want {
			t.Errorf("CreatePermission %s answered %v, want %d", ip, res, want)
		}
	}
}

// The relay never connects to its own STUN/TURN port or to the allocation's
// own relayed address (loops), even with loopback peers allowed. pion's dial
// hook can only answer 447.
func TestNoLoops(t *testing.T) {
	checkLeaks(t)
	ts := startServer(t, loopbackConfig())
	r := dialRaw(t, ts.addr, testUser, testPass)
	relayed := r.mustAllocate()
	for name, peer := range map[string]netip.AddrPort{
		"the relay's STUN/TURN port":       ts.addr,
		"the allocation's relayed address": relayed,
	} {
		if res := r.request(stun.MethodConnect, peerAddr(peer)); code(res) != 447 {
			t.Errorf("Connect to %s (%s) answered %v, want 447", name, peer, res)
		}
	}
	if got := ts.Stats().Refused.PeerForbidden; got != 2 {
		t.Fatalf("peer-forbidden refusals %d, want 2", got)
	}
}
