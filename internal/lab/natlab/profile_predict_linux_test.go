//go:build linux

package natlab

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/icetcp/icetcp/internal/lab/natlab/netns"
	"github.com/icetcp/icetcp/tcpso"
)

// TestSequentialSeries: a sequential profile gives each new connection
// the next port of one series, whatever its source port and destination;
// a connection whose SYN met an RST takes a new one when its 4-tuple is
// tried again (conntrack drops an entry whose only answer was an RST), and
// other hosts behind the NAT advance the series too.
func TestSequentialSeries(t *testing.T) {
	ctx := context.Background()
	lab := newLab(t, Config{A: "sequential-rst", SameNAT: true})
	var ports []uint16
	for _, src := range []uint16{41234, 41234, 50000, 41300} {
		m, err := lab.ProbeMapping(ctx, lab.A, src)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range m.Observed {
			ports = append(ports, o.Port())
		}
	}
	// From the other LAN host, then a refused connection, then A again.
	m, err := lab.ProbeMapping(ctx, lab.B, 41234)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range m.Observed {
		ports = append(ports, o.Port())
	}
	if _, err := lab.Dial(ctx, lab.A, 41234, netip.AddrPortFrom(ServerAddr, 9)); err == nil {
		t.Fatal("a connection to the server's closed port 9 succeeded")
	}
	if _, err := lab.Dial(ctx, lab.A, 41234, netip.AddrPortFrom(ServerAddr, 9)); err == nil {
		t.Fatal("a connection to the server's closed port 9 succeeded")
	}
	m, err = lab.ProbeMapping(ctx, lab.A, 41234)
	if err != nil {
		t.Fatal(err)
	}
	ports = append(ports, m.Observed[0].Port())
	t.Logf("ports %v", ports)
	for i := 1; i < len(ports)-1; i++ {
		if ports[i] != ports[i-1]+1 {
			t.Fatalf("port %d of the series is %d after %d, want +1: %v", i, ports[i], ports[i-1], ports)
		}
	}
	// Two refused tries in between: two ports of the series.
	if last := ports[len(ports)-1]; last != ports[len(ports)-2]+3 {
		t.Errorf("after two refused connections the series went from %d to %d, want +3", ports[len(ports)-2], last)
	}
}

// TestSequentialNoise: the noisy profile's other host moves the series
// between two connections of the peer.
func TestSequentialNoise(t *testing.T) {
	ctx := context.Background()
	lab := newLab(t, Config{A: "sequential-noisy"})
	first, err := lab.ProbeMapping(ctx, lab.A, 41234)
	if err != nil {
		t.Fatal(err)
	}
	// Wait until the noise host has opened connections, told by the lab
	// itself rather than guessed from its rate.
	lab.mu.Lock()
	nz := lab.noise[0]
	lab.mu.Unlock()
	for range 5 { // each receive follows a connection attempt that ended after the last one
		<-nz.dialed
	}
	second, err := lab.ProbeMapping(ctx, lab.A, 41235)
	if err != nil {
		t.Fatal(err)
	}
	if step := second.Observed[0].Port() - first.Observed[1].Port(); step <= 1 {
		t.Errorf("the series moved by %d between two probes with background connections between them: %v, %v", step, first, second)
	}
}

// TestEIFProfile: behind eif, a SYN from an address the host never
// contacted reaches a port the host mapped (to its listener there), while a
// port it never used is refused by the gateway.
func TestEIFProfile(t *testing.T) {
	ctx := context.Background()
	lab := newLab(t, Config{A: "eif"})
	const port = 41234
	var ln net.Listener
	if err := netns.Do(lab.A.NS, func() (err error) {
		ln, err = tcpso.ListenConfig{Shared: true}.Listen(ctx, netip.AddrPortFrom(netip.IPv4Unspecified(), port))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan netip.AddrPort, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		accepted <- netip.MustParseAddrPort(c.RemoteAddr().String())
		c.Close()
	}()
	// The mapping: A talks to the server's primary address from port.
	m, err := lab.ProbeMapping(ctx, lab.A, port)
	if err != nil {
		t.Fatal(err)
	}
	if !m.PortPreserving() || !m.EndpointIndependent() {
		t.Fatalf("eif: want a port-preserving endpoint-independent mapping: %v", m)
	}
	// A SYN from the other side of the internet (a public peer would be
	// just as new to the NAT) to the mapped port.
	if got, err := lab.ProbeTCP(ctx, lab.Server, netip.AddrPortFrom(lab.A.Public, port), 2*time.Second); got != Connected {
		t.Fatalf("SYN to the mapped port: %v (%v), want connected", got, err)
	}
	select {
	case from := <-accepted:
		if from.Addr() != ServerAddr {
			t.Errorf("accepted from %v, want the server", from)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the listener behind the NAT accepted nothing")
	}
	if got, err := lab.ProbeTCP(ctx, lab.Server, netip.AddrPortFrom(lab.A.Public, 45678), 2*time.Second); got != Refused {
		t.Errorf("SYN to an unmapped port: %v (%v), want refused", got, err)
	}
}
