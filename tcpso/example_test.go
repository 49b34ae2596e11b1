//go:build linux

package tcpso_test

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/icetcp/icetcp/tcpso"
)

// Two S-O candidates on one host punch to each other from their listeners'
// ports, each with an accept loop, as two ICE agents do across NATs.
func ExampleOpen() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ls [2]*tcpso.Listener
	var addrs [2]netip.AddrPort
	for i := range ls {
		l, err := tcpso.ListenConfig{Shared: true}.Listen(ctx, netip.MustParseAddrPort("127.0.0.1:0"))
		if err != nil {
			fmt.Println(err)
			return
		}
		defer l.Close()
		go func() { // connections no punch claims would be handed to ICE here
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		ls[i], addrs[i] = l, netip.MustParseAddrPort(l.Addr().String())
	}
	start := time.Now().Add(20 * time.Millisecond) // a start both sides agreed on
	results := make(chan error, 2)
	for i := range ls {
		go func() {
			r, err := tcpso.Open(ctx, tcpso.Punch{Local: addrs[i], Remote: addrs[1-i], Start: start, Listener: ls[i]})
			if err == nil {
				r.Conn.Close()
			}
			results <- err
		}()
	}
	for range ls {
		fmt.Println(<-results)
	}
	// Output:
	// <nil>
	// <nil>
}

// Trace finds the TTL for low-TTL priming toward a server; on loopback no
// router answers, so there is none.
func ExampleTrace() {
	l, err := tcpso.ListenConfig{}.Listen(context.Background(), netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	r, err := tcpso.Trace(context.Background(), tcpso.TraceConfig{Target: netip.MustParseAddrPort(l.Addr().String())})
	fmt.Println(len(r.Hops), r.Hops[0].Reached, r.PrimeTTL, err)
	// Output: 1 true 0 <nil>
}
