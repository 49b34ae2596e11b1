//go:build linux

package natlab

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/icetcp/icetcp/internal/lab/delayline"
	"github.com/icetcp/icetcp/internal/lab/natlab/netns"
)

func newLab(t *testing.T, cfg Config) *Lab {
	t.Helper()
	requireRoot(t)
	lab, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	stop := lab.CloseOnSignal()
	t.Cleanup(func() {
		stop()
		if err := lab.Close(); err != nil {
			t.Error(err)
		}
	})
	return lab
}

// serve accepts and holds connections on addr in the server namespace.
func serve(t *testing.T, lab *Lab, addr string) netip.AddrPort {
	ln, err := lab.Listen(lab.Server, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return netip.MustParseAddrPort(ln.Addr().String())
}

func TestProfileProbes(t *testing.T) {
	ctx := context.Background()
	for _, p := range Profiles() {
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			lab := newLab(t, Config{A: p.Name})
			if p.TCP443Only {
				for port, want := range map[string]Reach{"443": Connected, "3478": TimedOut, "8080": TimedOut} {
					dst := serve(t, lab, "198.51.100.10:"+port)
					got, err := lab.ProbeTCP(ctx, lab.A, dst, 2*time.Second)
					if got != want {
						t.Errorf("TCP to %s: %v (%v), want %v", dst, got, err, want)
					}
				}
				// The server's port-443 aliases lead to 8080 and 3478.
				if got, err := lab.ProbeTCP(ctx, lab.A, netip.AddrPortFrom(Signal443, 443), 2*time.Second); got != Connected {
					t.Errorf("TCP to the signaling alias: %v (%v)", got, err)
				}
				return
			}

			m, err := lab.ProbeMapping(ctx, lab.A, 41234)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("mapping %v", m)
			for _, o := range m.Observed {
				if o.Addr() != lab.A.Public {
					t.Errorf("observed address %v, want the gateway's %v", o.Addr(), lab.A.Public)
				}
			}
			switch p.Name {
			case "public":
				if !m.PortPreserving() || m.Observed[0] != m.Local {
					t.Errorf("public host: observed %v, want its own %v", m.Observed, m.Local)
				}
			case "eim-remap", "nested-remap":
				if m.PortPreserving() || !m.EndpointIndependent() {
					t.Errorf("want endpoint-independent and not port-preserving: %v", m)
				}
			case "symmetric":
				if m.EndpointIndependent() {
					t.Errorf("want a different port per destination: %v", m)
				}
			case "sequential", "sequential-rst", "sequential-noisy":
				// A new port per connection, from the series (its steps
				// are checked in TestSequentialSeries).
				if m.EndpointIndependent() || m.PortPreserving() {
					t.Errorf("want a new port per connection: %v", m)
				}
			default:
				if !m.PortPreserving() || !m.EndpointIndependent() {
					t.Errorf("want port-preserving and endpoint-independent: %v", m)
				}
			}

			if p.NAT {
				// An unsolicited SYN from the internet to the gateway.
				want := Refused
				if p.Name == "preserve-drop" || p.Name == "sequential" || p.Name == "sequential-noisy" {
					want = TimedOut
				}
				got, err := lab.ProbeTCP(ctx, lab.Server, netip.AddrPortFrom(lab.A.Public, 45678), 2*time.Second)
				if got != want {
					t.Errorf("unsolicited SYN to the gateway: %v (%v), want %v", got, err, want)
				}
			}

			udp, err := lab.ProbeUDP(ctx, lab.A, ServerAddr, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if want := p.Name != "udp-blocked"; udp != want {
				t.Errorf("UDP to the server arrived = %v, want %v", udp, want)
			}
		})
	}
}

func TestSimultaneousOpen(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		a, b     string
		vsServer bool // B is the server (a public host) instead
		want     bool
	}{
		{a: "preserve-rst", b: "preserve-rst", want: true},
		{a: "preserve-rst", vsServer: true, want: true},
		{a: "no-simopen", b: "no-simopen", want: false},
		// One-sided no-simopen does not reliably stop it (the far side
		// answers the SYN that got through with a SYN-ACK), but with these
		// unsynchronised retry loops whether a SYN gets through is timing:
		// it failed once in CI. The agent-level TestLabNoSimopenOneSided in
		// cmd/icetcp asserts it with synchronised starts.
	} {
		name := tc.a + "/" + tc.b
		if tc.vsServer {
			name = tc.a + "/server"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			lab := newLab(t, Config{A: tc.a, B: tc.b, Delay: delayline.LinkConfig{Delay: 10 * time.Millisecond}})
			other := lab.B
			if tc.vsServer {
				other = lab.Server
			}
			timeout := 10 * time.Second
			if !tc.want {
				timeout = 4 * time.Second
			}
			r, err := lab.ProbeSimOpen(ctx, lab.A, other, timeout)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("ok=%v in %v; %+v; %+v", r.OK, r.Elapsed, r.Sides[0], r.Sides[1])
			if r.OK != tc.want {
				t.Errorf("simultaneous open succeeded = %v, want %v", r.OK, tc.want)
			}
		})
	}
}

func TestDelay(t *testing.T) {
	lab := newLab(t, Config{
		Delay:       delayline.LinkConfig{Delay: 20 * time.Millisecond},
		ServerDelay: delayline.LinkConfig{Delay: 10 * time.Millisecond},
	})
	if lab.RTT != 40*time.Millisecond || lab.ServerRTT != 30*time.Millisecond {
		t.Fatalf("RTT %v ServerRTT %v, want 40ms 30ms", lab.RTT, lab.ServerRTT)
	}
	dst := serve(t, lab, "198.51.100.10:0")
	for range 3 {
		d, err := lab.MeasureConnect(context.Background(), lab.A, dst)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("A→server connect %v (emulated RTT %v)", d, lab.ServerRTT)
		if d < lab.ServerRTT { // the upper bound is the machine's load, not the lab's
			t.Errorf("connect took %v, less than the emulated RTT %v", d, lab.ServerRTT)
		}
	}
}

// TestSameNAT: two peers behind one NAT share a LAN, whatever the
// gateway's forward policy (tcp443-only drops everything but TCP 443
// outbound; with br_netfilter loaded its hook would also see bridged LAN
// frames), and both leave with the gateway's address.
func TestSameNAT(t *testing.T) {
	for _, profile := range []string{"symmetric", "tcp443-only"} {
		t.Run(profile, func(t *testing.T) {
			lab := newLab(t, Config{A: profile, SameNAT: true})
			if lab.B.Public != lab.A.Public || lab.GatewayB.NS != "" || lab.RTT != 0 {
				t.Fatalf("B %+v GatewayB %+v RTT %v", lab.B, lab.GatewayB, lab.RTT)
			}
			ln, err := lab.Listen(lab.B, lab.B.Addr.String()+":7000")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				if c, err := ln.Accept(); err == nil {
					c.Write([]byte{1})
					c.Close()
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := lab.Dial(ctx, lab.A, 0, netip.MustParseAddrPort(lab.B.Addr.String()+":7000"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Read(make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
			if profile != "symmetric" {
				return // tcp443-only lets no probe out to the mapping server's ports
			}
			// Both NATed to the same public address.
			for _, h := range []Host{lab.A, lab.B} {
				m, err := lab.ProbeMapping(context.Background(), h, 0)
				if err == nil && m.Observed[0].Addr() != lab.A.Public {
					t.Errorf("%s mapped to %v, want %v", h.Name, m.Observed[0], lab.A.Public)
				}
			}
		})
	}
}

// Evidence behind eim-remap's rules. The brief expected Linux
// "snat to ADDR:LO-HI" to pick a random port per connection; on this
// kernel (6.18) it maps one source port to one external port for several
// destinations. That depends on the kernel's port-selection code, so the
// catalogue uses a port computed from the source port instead, and this
// test only records what the running kernel does.
func TestSnatRangeBehaviour(t *testing.T) {
	for _, flags := range []string{"", " persistent"} {
		p := Profile{Name: "snat-range", NAT: true, Rules: natOnly(
			"\t\toifname \"{{.WAN}}\" ip protocol tcp snat to {{.WANAddr}}:20000-29999" + flags + "\n")}
		lab := newLab(t, Config{A: p.Name, Custom: []Profile{p}})
		for _, port := range []uint16{41234, 41234, 41235, 52000} {
			m, err := lab.ProbeMapping(context.Background(), lab.A, port)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("snat to range%s: %v endpoint-independent=%v", flags, m, m.EndpointIndependent())
			if m.PortPreserving() {
				t.Errorf("a source port outside the range was preserved: %v", m)
			}
		}
	}
}

func TestCloseKillsAndRemoves(t *testing.T) {
	lab := newLab(t, Config{A: "public", B: "preserve-drop"})
	cmd := lab.Command(context.Background(), lab.B, "sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out, err := lab.Command(context.Background(), lab.A, "ip", "-brief", "addr").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "203.0.113.11") {
		t.Fatalf("ip addr in A: %v\n%s", err, out)
	}
	if err := lab.Close(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("sleep exited cleanly; want killed")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("process survived Close")
	}
	if err := lab.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if left, _ := netns.List(lab.Prefix); len(left) > 0 {
		t.Errorf("namespaces left after Close: %v", left)
	}
}

func TestNewFailureCleansUp(t *testing.T) {
	requireRoot(t)
	bad := Profile{Name: "bad", NAT: true, Rules: "table ip {{.Table}} { chain c { this is not nft; } }\n"}
	lab, err := New(context.Background(), Config{Prefix: "itlbadrun", A: bad.Name, Custom: []Profile{bad}})
	if err == nil {
		lab.Close()
		t.Fatal("New accepted a broken ruleset")
	}
	t.Log(err)
	if !strings.Contains(err.Error(), "nft") || !strings.Contains(err.Error(), "Error:") {
		t.Errorf("error does not carry nft's stderr: %v", err)
	}
	if left, _ := netns.List("itlbadrun"); len(left) > 0 {
		t.Errorf("namespaces left after a failed New: %v", left)
	}
	if _, err := New(context.Background(), Config{A: "nope"}); err == nil {
		t.Error("unknown profile accepted")
	}
}
