package memnet

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"testing/synctest"

	"github.com/icetcp/icetcp/tcpso"
)

var (
	pubA   = netip.MustParseAddr("203.0.113.1")
	pubB   = netip.MustParseAddr("203.0.113.2")
	server = netip.MustParseAddr("198.51.100.10")
)

// observer accepts on addr and reports each connection's source.
func observer(t *testing.T, n *Network, addr netip.AddrPort) <-chan netip.AddrPort {
	t.Helper()
	l, err := n.Listen(t.Context(), addr, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	seen := make(chan netip.AddrPort, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			seen <- c.RemoteAddr().(*net.TCPAddr).AddrPort()
			c.Close()
		}
	}()
	return seen
}

// A sequential NAT gives each new 4-tuple the next port, keeps a
// connection's port while its SYNs meet silence, moves on after an RST,
// and other hosts' connections (Noise) advance the series.
func TestSequentialNAT(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New()
		n.AddNAT(NAT{Public: pubA, Hosts: []netip.Addr{hostA}, Inbound: Drop, Sequential: true, Delta: 2, FirstPort: 40000})
		s1, s2 := netip.AddrPortFrom(server, 3478), netip.AddrPortFrom(server, 3479)
		seen1, seen2 := observer(t, n, s1), observer(t, n, s2)
		dial := func(local uint16, to netip.AddrPort, seen <-chan netip.AddrPort) uint16 {
			t.Helper()
			c, err := n.Dial(t.Context(), netip.AddrPortFrom(hostA, local), to)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			return (<-seen).Port()
		}
		if got := [3]uint16{dial(5000, s1, seen1), dial(5000, s2, seen2), dial(5001, s1, seen1)}; got != [3]uint16{40000, 40002, 40004} {
			t.Fatalf("ports %v, want 40000, 40002, 40004", got)
		}
		n.Noise(pubA, 3)
		if got := dial(5002, s1, seen1); got != 40012 {
			t.Fatalf("after 3 other connections: %d, want 40012", got)
		}
		// A punch to an RST-answering host: each SYN after an RST is a
		// new mapping; the punch reports every SYN to OnTry.
		n.SetInbound(pubB, Refuse)
		var refused int
		_, _, err := n.SimultaneousOpen(t.Context(), tcpso.Punch{Local: netip.AddrPortFrom(hostA, 5003), Remote: netip.AddrPortFrom(pubB, 7),
			Schedule: tcpso.Schedule{Attempts: 1, Rush: -1},
			OnTry: func(try tcpso.Try) {
				if try.Outcome == tcpso.OutcomeRefused {
					refused++
				}
			}})
		if !errors.Is(err, syscall.ECONNREFUSED) || refused != 1 {
			t.Fatalf("punch: %v, %d refused", err, refused)
		}
		if got := dial(5003, s2, seen2); got != 40016 {
			t.Fatalf("after a refused punch: %d, want 40016 (the punch took 40014)", got)
		}
	})
}

// Behind an EIF NAT a SYN from anyone reaches a port the host sent from;
// a port it never used is refused.
func TestEIFNAT(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New()
		n.AddNAT(NAT{Public: pubA, Hosts: []netip.Addr{hostA}, Inbound: Refuse, EIF: true})
		seen := observer(t, n, netip.AddrPortFrom(server, 3478))
		mine := netip.AddrPortFrom(hostA, 5000)
		l, err := n.Listen(t.Context(), mine, true)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		c, err := n.Dial(t.Context(), mine, netip.AddrPortFrom(server, 3478))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got := <-seen; got != netip.AddrPortFrom(pubA, 5000) {
			t.Fatalf("mapped %v", got)
		}
		go func() {
			if c, err := l.Accept(); err == nil {
				c.Close()
			}
		}()
		other := netip.AddrPortFrom(netip.MustParseAddr("198.51.100.99"), 0)
		in, err := n.Dial(t.Context(), other, netip.AddrPortFrom(pubA, 5000))
		if err != nil {
			t.Fatalf("a SYN from a stranger to the mapped port: %v", err)
		}
		if got := in.RemoteAddr().(*net.TCPAddr).AddrPort(); got != netip.AddrPortFrom(pubA, 5000) {
			t.Errorf("the stranger's connection goes to %v, want the public address", got)
		}
		in.Close()
		if _, err := n.Dial(t.Context(), other, netip.AddrPortFrom(pubA, 6000)); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("a SYN to an unused port: %v, want refused", err)
		}
	})
}
