package stuntcp

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/pion/logging"

	"github.com/icetcp/icetcp/tcpso"
)

var (
	ip1 = netip.MustParseAddr("127.0.0.1")
	ip2 = netip.MustParseAddr("127.0.0.2")
)

func TestOtherAddress(t *testing.T) {
	p, a := netip.MustParseAddrPort("192.0.2.1:3478"), netip.MustParseAddrPort("192.0.2.2:3479")
	for _, tc := range []struct {
		local, want string // want "" means none
	}{
		{"192.0.2.1:3478", "192.0.2.2:3479"},
		{"192.0.2.1:3479", "192.0.2.2:3478"},
		{"192.0.2.2:3478", "192.0.2.1:3479"},
		{"192.0.2.2:3479", "192.0.2.1:3478"},
		{"192.0.2.3:3478", ""}, // not one of ours (a third address)
		{"192.0.2.1:443", ""},
	} {
		got, ok := otherAddress(p, a, netip.MustParseAddrPort(tc.local))
		if (tc.want == "") == ok || (ok && got.String() != tc.want) {
			t.Errorf("otherAddress(%s) = %v %v, want %q", tc.local, got, ok, tc.want)
		}
	}
	if _, ok := otherAddress(p, netip.AddrPort{}, p); ok {
		t.Error("OTHER-ADDRESS without an alternate")
	}
}

func TestListenRFC5780Rejects(t *testing.T) {
	for name, tc := range map[string][2]string{
		"unspecified":     {"0.0.0.0:0", "127.0.0.2:0"},
		"same IP":         {"127.0.0.1:0", "127.0.0.1:0"},
		"same port":       {"127.0.0.1:40000", "127.0.0.2:40000"},
		"families differ": {"127.0.0.1:0", "[::1]:0"},
		"zero alternate":  {"127.0.0.1:0", "invalid"},
	} {
		p, _ := netip.ParseAddrPort(tc[0])
		a, _ := netip.ParseAddrPort(tc[1])
		if ls, _, _, err := ListenRFC5780(p, a); err == nil {
			for _, l := range ls {
				l.Close()
			}
			t.Errorf("%s: accepted", name)
		}
	}
}

// startRFC5780 runs s on the four listeners of 127.0.0.1 and 127.0.0.2.
func startRFC5780(t *testing.T, s *Server) (primary, alternate netip.AddrPort) {
	t.Helper()
	ls, p, a, err := ListenRFC5780(netip.AddrPortFrom(ip1, 0), netip.AddrPortFrom(ip2, 0))
	if err != nil {
		t.Fatal(err)
	}
	s.Primary, s.Alternate = p, a
	if s.LoggerFactory == nil {
		lf := logging.NewDefaultLoggerFactory()
		lf.DefaultLogLevel = logging.LogLevelDisabled
		s.LoggerFactory = lf
	}
	served := make(chan error, len(ls))
	for _, l := range ls {
		go func() { served <- s.Serve(l) }()
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
		for range ls {
			if err := <-served; !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve returned %v", err)
			}
		}
	})
	return p, a
}

func TestRFC5780Server(t *testing.T) {
	checkLeaks(t)
	p, a := startRFC5780(t, &Server{})
	if p.Port() == a.Port() {
		t.Fatalf("one port for both: %v %v", p, a)
	}
	for _, to := range []netip.AddrPort{p, netip.AddrPortFrom(p.Addr(), a.Port()), netip.AddrPortFrom(a.Addr(), p.Port()), a} {
		c := dial(t, to)
		r, err := Query(ctxT(t), c, Request{})
		if err != nil {
			t.Fatalf("%v: %v", to, err)
		}
		want, _ := otherAddress(p, a, to)
		if r.Origin != to || r.Other != want || r.Software != "icetcp" || r.Mapped.String() != c.LocalAddr().String() || r.Probe != nil {
			t.Errorf("via %v: %+v; want origin %v, other %v", to, r, to, want)
		}
	}
	// Without an alternate there is no OTHER-ADDRESS.
	plain := startServer(t, &Server{})
	r, err := Query(ctxT(t), dial(t, plain), Request{})
	if err != nil || r.Other.IsValid() {
		t.Fatalf("plain server: %+v %v", r, err)
	}
}

// probeFrom opens a listener and a connection to the server from one
// local port, as natcheck does, and returns them.
func probeFrom(t *testing.T, server netip.AddrPort, listen bool) (net.Conn, chan netip.AddrPort) {
	t.Helper()
	accepted := make(chan netip.AddrPort, 4)
	port := uint16(0)
	if listen {
		l, err := tcpso.Listen(ctxT(t), netip.AddrPortFrom(ip1, 0))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		port = uint16(l.Addr().(*net.TCPAddr).Port)
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				accepted <- addrPortOf(c.RemoteAddr())
				c.Close()
			}
		}()
	}
	c, err := tcpso.Dial(ctxT(t), netip.AddrPortFrom(ip1, port), server)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, accepted
}

func TestSYNProbeServer(t *testing.T) {
	checkLeaks(t)
	srv := &Server{}
	p, _ := startRFC5780(t, srv)

	// A listening client: the probe connects, from the IP it did not reach.
	c, accepted := probeFrom(t, p, true)
	r, err := Query(ctxT(t), c, Request{SYNProbe: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Probe == nil || r.Probe.Outcome != ProbeConnected {
		t.Fatalf("probe to a listener: %v", r.Probe)
	}
	if from := <-accepted; from.Addr() != ip2 {
		t.Fatalf("probe came from %v, want the alternate IP %v", from, ip2)
	}
	// One probe per connection.
	if r, err := Query(ctxT(t), c, Request{SYNProbe: true}); err != nil || r.Probe == nil || r.Probe.Decline != DeclineRepeat {
		t.Fatalf("second probe on a connection: %+v %v", r.Probe, err)
	}
	// Nobody listening: the client's kernel answers RST.
	c2, _ := probeFrom(t, p, false)
	if r, err := Query(ctxT(t), c2, Request{SYNProbe: true}); err != nil || r.Probe == nil || r.Probe.Outcome != ProbeRefused {
		t.Fatalf("probe to a closed port: %+v %v", r.Probe, err)
	}
	st := srv.Stats()
	if st.ProbesConnected != 1 || st.ProbesRefused != 1 || st.ProbesDeclined != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSYNProbeDeclined(t *testing.T) {
	checkLeaks(t)
	t.Run("no alternate", func(t *testing.T) {
		c := dial(t, startServer(t, &Server{}))
		r, err := Query(ctxT(t), c, Request{SYNProbe: true})
		if err != nil || r.Probe == nil || r.Probe.Decline != DeclineNoAlternate {
			t.Fatalf("%+v %v", r.Probe, err)
		}
	})
	t.Run("rate", func(t *testing.T) {
		p, _ := startRFC5780(t, &Server{ProbeBurst: 1, ProbeInterval: 1 << 40})
		for i, want := range []ProbeDecline{DeclineNone, DeclineRate} {
			c, _ := probeFrom(t, p, false)
			r, err := Query(ctxT(t), c, Request{SYNProbe: true})
			if err != nil || r.Probe == nil || r.Probe.Decline != want {
				t.Fatalf("probe %d: %+v %v, want decline %s", i, r.Probe, err, want)
			}
		}
	})
	t.Run("busy", func(t *testing.T) {
		srv := &Server{ProbeConcurrency: 1}
		p, _ := startRFC5780(t, srv)
		srv.init()                   // Serve may not have run it yet
		srv.probeSlots <- struct{}{} // a probe in flight
		defer func() { <-srv.probeSlots }()
		c, _ := probeFrom(t, p, false)
		r, err := Query(ctxT(t), c, Request{SYNProbe: true})
		if err != nil || r.Probe == nil || r.Probe.Decline != DeclineBusy {
			t.Fatalf("%+v %v", r.Probe, err)
		}
	})
}
