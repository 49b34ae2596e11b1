package natcheck_test

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/pion/logging"

	"github.com/icetcp/icetcp/internal/natcheck"
	"github.com/icetcp/icetcp/internal/stuntcp"
)

// A check against an RFC 5780 STUN server with its alternate address on
// 127.0.0.2: on loopback there is no NAT, and the probe SYN from the
// alternate address reaches the check's own listener.
func ExampleCheck() {
	ls, primary, alternate, err := stuntcp.ListenRFC5780(
		netip.MustParseAddrPort("127.0.0.1:0"), netip.MustParseAddrPort("127.0.0.2:0"))
	if err != nil {
		fmt.Println(err)
		return
	}
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelDisabled
	srv := &stuntcp.Server{Primary: primary, Alternate: alternate, LoggerFactory: lf}
	for _, l := range ls {
		go srv.Serve(l)
	}
	defer srv.Close()

	res, err := natcheck.Check(context.Background(), natcheck.Config{Server: primary, LoggerFactory: lf})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Class())
	fmt.Println(res.Server.Other == alternate)
	// Output:
	// v1 mapping=nonat port=preserve alloc=preserve syn=pass
	// true
}

func ExampleParseClass() {
	peer, err := natcheck.ParseClass("v1 mapping=apdm port=remap alloc=random syn=rst")
	if err != nil {
		fmt.Println(err)
		return
	}
	ours := natcheck.Class{Mapping: natcheck.EndpointIndependent, PortPreserving: true,
		Allocation: natcheck.Preserving, InboundSYN: natcheck.SYNDropped}
	v, why := natcheck.SimultaneousOpenViable(ours, peer)
	fmt.Println(v)
	fmt.Println(why)
	// Output:
	// unlikely
	// the peer has an address-and-port-dependent mapping: its SYN leaves from a port no STUN server saw
}
