package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/icetcp/icetcp/candidate"
	"github.com/icetcp/icetcp/internal/lab/memnet"
	"github.com/icetcp/icetcp/internal/natcheck"
	"github.com/icetcp/icetcp/internal/stuntcp"
	"github.com/icetcp/icetcp/signaling"
	"github.com/icetcp/icetcp/signaling/signalingtest"
)

// Tests in this file run two agents on an in-memory network inside a
// testing/synctest bubble: time is virtual, so timers (pacing, check and
// consent timeouts) are exercised exactly and without waiting.

var (
	ipA = netip.MustParseAddr("10.0.0.1")
	ipB = netip.MustParseAddr("10.0.0.2")
)

func memConfig(n *memnet.Network, ip netip.Addr, role Role) Config {
	c := baseConfig(role)
	c.Addrs, c.Network = []netip.Addr{ip}, n
	// natcheck opens real sockets: on the in-memory network a test says
	// which class each side has (withClass), or there is none.
	c.natCheck = func(context.Context, string) (natcheck.Class, error) {
		return natcheck.Class{}, errors.New("no NAT class in this test")
	}
	return c
}

// shortConsent checks consent every second and gives up after five.
func shortConsent(c Config) Config {
	c.ConsentInterval, c.ConsentTimeout = time.Second, 5*time.Second
	return c
}

func withClass(c Config, class natcheck.Class) Config {
	c.natCheck = func(context.Context, string) (natcheck.Class, error) { return class, nil }
	return c
}

// syncPair connects two agents on n; it must run inside a bubble.
func syncPair(t *testing.T, ca, cb Config) (*Conn, *Conn) {
	t.Helper()
	chA, chB := signalingtest.Pair()
	x, y, errA, errB := connectPair(t, ca, cb, chA, chB)
	if errA != nil || errB != nil {
		t.Fatalf("connect: A: %v; B: %v", errA, errB)
	}
	return x, y
}

func TestSyncAllTypesPriorityWinner(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		// An explicit wait (and regular nomination) lets every pair finish
		// its check; the highest-priority one must then be nominated.
		ctl := memConfig(n, ipA, RoleControlling)
		ctl.NominationWait, ctl.StandardOnly = 2*time.Second, true
		x, y := syncPair(t, ctl, memConfig(n, ipB, RoleControlled))
		if x.Local().TCPType != candidate.Active || x.Remote().TCPType != candidate.Passive {
			t.Fatalf("controlling agent selected %v -> %v, want its active -> the peer's passive", x.Local(), x.Remote())
		}
		st := x.Agent().Stats()
		if !st.Pairs[0].Selected {
			t.Fatalf("selected pair is not the highest-priority pair: %+v", st.Pairs)
		}
		exchange(t, x, y, 1<<20)
	})
}

// Nomination with the first check (icetcp-nominate) connects in one check
// round trip; without it (a standard peer) it takes a second one.
func TestSyncNominationWithCheck(t *testing.T) {
	for _, std := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			n := memnet.New()
			ca, cb := activeOnly(memConfig(n, ipA, RoleControlling)), passiveOnly(memConfig(n, ipB, RoleControlled))
			cb.StandardOnly = std
			x, y := syncPair(t, ca, cb)
			st := x.Agent().Stats()
			if st.Selected == nil {
				t.Fatal("no selected pair in stats")
			}
			if got, want := st.Checks, map[bool]int{false: 1, true: 2}[std]; got != want {
				t.Fatalf("standard peer %v: %d checks before selection, want %d", std, got, want)
			}
			exchange(t, x, y, 4096)
		})
	}
}

// Consent (RFC 7675): a path that silently dies is noticed after
// ConsentTimeout on both sides, and not before.
func TestSyncConsentExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		x, y := syncPair(t, shortConsent(memConfig(n, ipA, RoleAuto)), shortConsent(memConfig(n, ipB, RoleAuto)))
		time.Sleep(20 * time.Second) // consent is refreshed while the path works
		exchange1(t, x, y)
		dead := time.Now()
		n.Stall(ipB)
		for _, c := range []*Conn{x, y} {
			_, err := c.Read(make([]byte, 1))
			if !errors.Is(err, ErrConsentExpired) {
				t.Fatalf("want ErrConsentExpired, got %v", err)
			}
			if el := time.Since(dead); el < 5*time.Second-1200*time.Millisecond || el > 5*time.Second+1200*time.Millisecond {
				t.Fatalf("consent expired %v after the path died, want about 5s", el)
			}
			if st := c.Agent().Stats().State; st != StateFailed {
				t.Fatalf("state %v after consent loss", st)
			}
		}
	})
}

func exchange1(t *testing.T, x, y *Conn) {
	t.Helper()
	if _, err := x.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(y, buf); err != nil {
		t.Fatal(err)
	}
}

// After our half-close, consent keeps running both ways between icetcp
// agents (the end travels in band): a peer that then freezes is detected
// within the consent timeout, and bytes sent after the half-close arrive.
func TestSyncHalfCloseStillDetectsFrozenPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		x, y := syncPair(t, shortConsent(memConfig(n, ipA, RoleAuto)), shortConsent(memConfig(n, ipB, RoleAuto)))
		if _, err := x.Write([]byte("bye")); err != nil {
			t.Fatal(err)
		}
		if err := x.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(y); err != nil || string(got) != "bye" {
			t.Fatalf("y read %q, %v", got, err)
		}
		// y keeps talking for many consent intervals.
		for range 30 {
			if _, err := y.Write([]byte("more")); err != nil {
				t.Fatalf("y write after x's half-close: %v", err)
			}
			time.Sleep(time.Second)
		}
		got := make([]byte, 30*4)
		if _, err := io.ReadFull(x, got); err != nil || !bytes.Equal(got, bytes.Repeat([]byte("more"), 30)) {
			t.Fatalf("x read %q, %v", got, err)
		}
		frozen := time.Now()
		n.Stall(ipB) // y freezes (SIGSTOP): nothing it sends or answers arrives
		_, err := x.Read(make([]byte, 1))
		if !errors.Is(err, ErrConsentExpired) || time.Since(frozen) > 5*time.Second+1200*time.Millisecond {
			t.Fatalf("after %v: %v, want ErrConsentExpired within the consent timeout", time.Since(frozen), err)
		}
	})
}

// A Close without CloseWrite still ends the stream deliberately: the peer
// reads io.EOF. A connection that ends without the in-band end (a crash)
// reads ErrPeerVanished with the byte count.
func TestSyncCloseIsDeliberateCrashIsNot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		x, y := syncPair(t, memConfig(n, ipA, RoleAuto), memConfig(n, ipB, RoleAuto))
		x.Write([]byte("abc"))
		x.Close()
		if got, err := io.ReadAll(y); err != nil || string(got) != "abc" {
			t.Fatalf("after Close: read %q, %v; want abc and EOF", got, err)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		x, y := syncPair(t, memConfig(n, ipA, RoleAuto), memConfig(n, ipB, RoleAuto))
		x.Write([]byte("abcd"))
		// In session mode Write returns once the bytes are in the replay
		// buffer; the session's writer hands them to the socket. Let it
		// (a process killed before that loses them, as it loses what it
		// had not written yet).
		synctest.Wait()
		x.pc.c.Close() // the process died: its kernel closes the socket
		got, err := io.ReadAll(y)
		if !errors.Is(err, ErrPeerVanished) || string(got) != "abcd" || err.Error() != "agent: peer vanished after 4 bytes" {
			t.Fatalf("after a crash: read %q, %v; want abcd and ErrPeerVanished after 4 bytes", got, err)
		}
	})
}

// Toward a standard agent (which takes a FIN as the death of the
// connection) CloseWrite sends nothing: our writes stop, consent keeps
// running, and the FIN goes with Close.
func TestSyncStandardHalfClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		ca := activeOnly(memConfig(n, ipA, RoleControlling))
		cb := passiveOnly(memConfig(n, ipB, RoleControlled))
		cb.StandardOnly = true
		x, y := syncPair(t, ca, cb)
		if x.eos || y.eos {
			t.Fatal("in-band end of stream used with a standard peer")
		}
		y.Write([]byte("last"))
		if err := y.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if _, err := y.Write([]byte("x")); err == nil {
			t.Fatal("write after CloseWrite succeeded")
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(x, buf); err != nil || string(buf) != "last" {
			t.Fatalf("read %q, %v", buf, err)
		}
		x.Write([]byte("still"))
		if _, err := io.ReadFull(y, buf[:4]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * baseConfig(RoleAuto).ConsentTimeout) // consent keeps both alive
		for _, c := range []*Conn{x, y} {
			if st := c.Agent().Stats().State; st != StateConnected {
				t.Fatalf("state %v long after a half-close", st)
			}
		}
		y.Close()
		if _, err := io.ReadAll(x); err != nil {
			t.Fatalf("after the peer's Close: %v, want EOF", err)
		}
	})
}

func TestSyncPeerLeavesBeforeConnecting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		chA, chB := signalingtest.Pair()
		defer chA.Close()
		a, err := New(memConfig(n, ipA, RoleAuto))
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		chB.Send(context.Background(), signaling.Message{Type: signaling.TypeCredentials, Ufrag: "peerufrag", Pwd: "0123456789abcdefghijklmnop"})
		go func() { time.Sleep(100 * time.Millisecond); chB.Close() }()
		if _, err = a.Connect(context.Background(), chA); !errors.Is(err, ErrPeerLeft) {
			t.Fatalf("want ErrPeerLeft, got %v", err)
		}
	})
}

// When the peer leaves after our pairs failed, the reason says how they
// failed, as when our own checks run out first (the lab saw either,
// depending on which side's timers ended first).
func TestSyncPeerLeavesAfterPairsFailed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		chA, chB := signalingtest.Pair()
		defer chA.Close()
		a, err := New(activeOnly(memConfig(n, ipA, RoleControlling)))
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		ctx := context.Background()
		chB.Send(ctx, signaling.Message{Type: signaling.TypeCredentials, Ufrag: "peerufrag", Pwd: "0123456789abcdefghijklmnop"})
		nobody := candidate.New(candidate.Host, candidate.Passive, netip.AddrPortFrom(ipB, 9), netip.AddrPort{}, netip.Addr{}, 8191)
		chB.Send(ctx, signaling.Message{Type: signaling.TypeCandidate, Candidate: nobody.Marshal()})
		// No end-of-candidates: our side waits for more after its check
		// timed out, and the peer leaves then.
		leave := a.cfg.CheckTimeout + time.Second
		// Virtual time in the bubble: the peer's departure at a modelled
		// moment (no agent event marks "our pair failed" to wait on).
		time.AfterFunc(leave, func() { chB.Close() })
		_, err = a.Connect(ctx, chA)
		if !errors.Is(err, ErrPeerLeft) || !strings.Contains(err.Error(), "peer left before a pair was selected; 1 pairs failed: active host→passive host: 1 timeout") {
			t.Fatalf("got %v, want ErrPeerLeft saying how the pair failed", err)
		}
	})
}

// tiebreakerRand is crypto/rand except for the tie-breaker, which New
// draws after the ufrag (8 bytes) and password (24): every byte of it is tb.
type tiebreakerRand struct {
	tb  byte
	off int
}

func (r *tiebreakerRand) Read(p []byte) (int, error) {
	rand.Read(p)
	for i := range p {
		if o := r.off + i; o >= 32 && o < 40 {
			p[i] = r.tb
		}
	}
	r.off += len(p)
	return len(p), nil
}

// Two agents that both start controlling repair the conflict (RFC 8445
// §7.3.1.1) both ways, each forced by who checks first: the agent with the
// larger tie-breaker answers the other's check with 487, or the agent with
// the smaller one switches on the other's check.
func TestSyncRoleConflictRepaired(t *testing.T) {
	for _, tc := range []struct {
		name      string
		checkerTB byte // tie-breaker of the only agent that sends checks (active-only)
		want487   bool
	}{
		{"smaller tie-breaker checks first: 487", 0x01, true},
		{"larger tie-breaker checks first: the other switches", 0xF0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := memnet.New()
				ca := activeOnly(memConfig(n, ipA, RoleControlling))
				cb := passiveOnly(memConfig(n, ipB, RoleControlling))
				ca.Rand, cb.Rand = &tiebreakerRand{tb: tc.checkerTB}, &tiebreakerRand{tb: 0x80}
				x, y := syncPair(t, ca, cb)
				sx, sy := x.Agent().Stats(), y.Agent().Stats()
				if sx.Role == sy.Role {
					t.Fatalf("both agents ended as %v", sx.Role)
				}
				wantCtl := RoleControlled
				if !tc.want487 {
					wantCtl = RoleControlling
				}
				if sx.Role != wantCtl {
					t.Fatalf("checker ended %v, want %v", sx.Role, wantCtl)
				}
				if got := sx.RoleConflicts > 0 && sy.RoleConflicts > 0; got != tc.want487 {
					t.Fatalf("487 sent and received: %v (%d, %d), want %v", got, sx.RoleConflicts, sy.RoleConflicts, tc.want487)
				}
				if sx.RoleSwitches+sy.RoleSwitches != 1 {
					t.Fatalf("%d role switches, want exactly 1", sx.RoleSwitches+sy.RoleSwitches)
				}
				exchange(t, x, y, 64<<10)
			})
		})
	}
}

// Frames never exceed what the peer reads: 8,192 bytes toward a standard
// agent (pion/ice v2 drops the connection on bigger ones), 65,535 toward
// icetcp. The packet API keeps packet boundaries and refuses what does not
// fit.
func TestSyncFrameSizesAndPackets(t *testing.T) {
	for _, std := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			n := memnet.New()
			cb := memConfig(n, ipB, RoleAuto)
			cb.StandardOnly = std
			x, y := syncPair(t, memConfig(n, ipA, RoleAuto), cb)
			want := map[bool]int{false: 65535, true: 8192}[std]
			if x.MaxPacketSize() != want {
				t.Fatalf("standard peer %v: max packet %d, want %d", std, x.MaxPacketSize(), want)
			}
			// The byte stream is cut into equal frames the peer reads:
			// three of the largest size.
			go x.Write(make([]byte, 3*want))
			buf := make([]byte, 65535)
			total, largest := 0, 0
			for total < 3*want {
				n, err := y.ReadPacket(buf)
				if err != nil {
					t.Fatal(err)
				}
				total += n
				largest = max(largest, n)
			}
			if largest != want {
				t.Fatalf("largest frame %d, want %d", largest, want)
			}
			if err := x.WritePacket(make([]byte, want+1)); !errors.Is(err, ErrPacketTooLarge) {
				t.Fatalf("oversized packet: %v", err)
			}
			x.WritePacket([]byte("0123456789"))
			if _, err := y.ReadPacket(make([]byte, 4)); !errors.Is(err, io.ErrShortBuffer) {
				t.Fatalf("short buffer: %v", err)
			}
			x.WritePacket([]byte("next"))
			if n, err := y.ReadPacket(buf); err != nil || string(buf[:n]) != "next" {
				t.Fatalf("after a truncated packet: %q %v", buf[:n], err)
			}
		})
	}
}

// stunOn runs a STUN-over-TCP server on the in-memory network.
func stunOn(t *testing.T, n *memnet.Network, addr netip.AddrPort) {
	t.Helper()
	l, err := n.Listen(context.Background(), addr, false)
	if err != nil {
		t.Fatal(err)
	}
	srv := &stuntcp.Server{LoggerFactory: testLogger()}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
}

var (
	stunAddr = netip.MustParseAddrPort("198.51.100.10:3478")
	pubA     = netip.MustParseAddr("203.0.113.1")
	pubB     = netip.MustParseAddr("203.0.113.2")
)

// Two agents behind NATs that answer unsolicited SYNs with RST learn their
// server-reflexive candidates over STUN/TCP and punch through with
// synchronised simultaneous open.
func TestSyncPunchThroughNATs(t *testing.T) {
	for _, inbound := range []memnet.Inbound{memnet.Refuse, memnet.Drop} {
		synctest.Test(t, func(t *testing.T) {
			n := memnet.New()
			n.AddNAT(memnet.NAT{Public: pubA, Hosts: []netip.Addr{ipA}, Inbound: inbound})
			n.AddNAT(memnet.NAT{Public: pubB, Hosts: []netip.Addr{ipB}, Inbound: inbound})
			stunOn(t, n, stunAddr)
			ca, cb := memConfig(n, ipA, RoleAuto), memConfig(n, ipB, RoleAuto)
			ca.STUNServers, cb.STUNServers = []string{stunAddr.String()}, []string{stunAddr.String()}
			x, y := syncPair(t, ca, cb)
			for _, c := range []*Conn{x, y} {
				if c.Local().TCPType != candidate.SO || c.Remote().Type != candidate.ServerReflexive {
					t.Fatalf("selected %v -> %v, want so host <-> srflx", c.Local(), c.Remote())
				}
			}
			exchange(t, x, y, 256<<10)
		})
	}
}

// delayCreds holds back the peer's credentials, so its checks (nominating
// with the first check, icetcp-nominate) arrive before we can answer them
// with our own: we must confirm exactly one, or the two sides could
// select different connections.
type delayCreds struct {
	signaling.Channel
	d time.Duration
}

func (c delayCreds) Recv(ctx context.Context) (signaling.Message, error) {
	m, err := c.Channel.Recv(ctx)
	if err == nil && m.Type == signaling.TypeCredentials {
		time.Sleep(c.d) // inside the synctest bubble: virtual time, a modelled delay, not a wait for an event
	}
	return m, err
}

func TestSyncOneNominationBeforeCredentials(t *testing.T) {
	for range 20 {
		synctest.Test(t, func(t *testing.T) {
			n := memnet.New()
			chA, chB := signalingtest.Pair()
			x, y, errA, errB := connectPair(t, memConfig(n, ipA, RoleControlling), memConfig(n, ipB, RoleControlled),
				chA, delayCreds{chB, 50 * time.Millisecond})
			if errA != nil || errB != nil {
				t.Fatalf("connect: %v / %v", errA, errB)
			}
			if x.LocalAddr().String() != y.RemoteAddr().String() || x.RemoteAddr().String() != y.LocalAddr().String() {
				t.Fatalf("the two sides selected different connections: %v->%v and %v->%v",
					x.LocalAddr(), x.RemoteAddr(), y.LocalAddr(), y.RemoteAddr())
			}
			exchange(t, x, y, 4096)
		})
	}
}

// Gather before Connect: what was gathered meanwhile (server-reflexive
// candidates, the NAT class) goes to the peer as soon as signaling starts.
func TestSyncGatherBeforeConnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		n.AddNAT(memnet.NAT{Public: pubA, Hosts: []netip.Addr{ipA}, Inbound: memnet.Refuse})
		n.AddNAT(memnet.NAT{Public: pubB, Hosts: []netip.Addr{ipB}, Inbound: memnet.Refuse})
		stunOn(t, n, stunAddr)
		ca, cb := withClass(memConfig(n, ipA, RoleAuto), eimClass), withClass(memConfig(n, ipB, RoleAuto), eimClass)
		ca.STUNServers, cb.STUNServers = []string{stunAddr.String()}, []string{stunAddr.String()}
		a, _ := New(ca)
		b, _ := New(cb)
		defer a.Close()
		defer b.Close()
		for _, ag := range []*Agent{a, b} {
			if err := ag.Gather(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait() // STUN answered, classes measured, nobody to tell yet
		chA, chB := signalingtest.Pair()
		r := connectLater(context.Background(), b, chB)
		x, err := a.Connect(context.Background(), chA)
		if err != nil {
			t.Fatal(err)
		}
		y := <-r
		if y.err != nil {
			t.Fatal(y.err)
		}
		// A pair nominated over TCP may be selected before the class is
		// read (it follows the credentials); it must still arrive.
		synctest.Wait()
		st := x.Agent().Stats()
		if st.RemoteNAT == "" {
			t.Fatal("the peer's NAT class, measured before Connect, never arrived")
		}
		if x.Local().TCPType != candidate.SO || x.Remote().Type != candidate.ServerReflexive {
			t.Fatalf("selected %v -> %v, want so host -> srflx", x.Local(), x.Remote())
		}
		exchange(t, x, y.conn, 4096)
		if _, err := a.Connect(context.Background(), chA); !errors.Is(err, ErrAlreadyStarted) {
			t.Fatalf("second Connect: %v", err)
		}
	})
}

func TestResolveSTUN(t *testing.T) {
	v4 := netip.MustParseAddr("10.0.0.1")
	for _, tc := range []struct {
		server string
		local  netip.Addr
		ok     bool
	}{
		{"198.51.100.10:3478", v4, true},
		{"localhost:3478", netip.MustParseAddr("127.0.0.1"), true},
		{"[2001:db8::1]:3478", v4, false}, // no address of our family
		{"no-port-here", v4, false},
		{"localhost:not-a-port", v4, false},
	} {
		ap, err := resolveSTUN(context.Background(), tc.server, tc.local)
		if (err == nil) != tc.ok {
			t.Errorf("resolveSTUN(%q): %v, %v; want ok=%v", tc.server, ap, err, tc.ok)
		}
		if err == nil && ap.Addr().Is4() != tc.local.Is4() {
			t.Errorf("resolveSTUN(%q) = %v: wrong family", tc.server, ap)
		}
	}
}

// A STUN server that does not answer costs a warning, not the session;
// one that answers keeps the NAT mapping refreshed while the peer is late.
func TestSyncSrflxFaultsAndKeepalive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		stunOn(t, n, stunAddr)
		dead := netip.MustParseAddrPort("192.0.2.99:3478") // nothing there: silence
		warned := make(chan error, 8)
		ca := memConfig(n, ipA, RoleAuto)
		ca.STUNServers = []string{dead.String(), stunAddr.String()}
		ca.OnEvent = func(e Event) {
			if e.Type == EventWarning {
				warned <- e.Err
			}
		}
		cb := memConfig(n, ipB, RoleAuto)
		ca.ConnectTimeout, cb.ConnectTimeout = 2*time.Minute, 2*time.Minute
		chA, chB := signalingtest.Pair()
		// B's credentials reach A after 25 s: A's kept-open STUN
		// connections are refreshed meanwhile (every 15 s).
		x, y, errA, errB := connectPair(t, ca, cb, delayCreds{chA, 25 * time.Second}, chB)
		if errA != nil || errB != nil {
			t.Fatalf("connect: %v / %v", errA, errB)
		}
		select {
		case err := <-warned:
			if !strings.Contains(err.Error(), dead.String()) {
				t.Fatalf("warning %v does not name the dead STUN server", err)
			}
		default:
			t.Fatal("no warning about the STUN server that never answered")
		}
		exchange(t, x, y, 1024)
	})
}

// Server names resolve through the Network when it resolves (a Resolver):
// on the in-memory network a STUN server known by name gives srflx
// candidates, and an unknown name is a warning naming it.
func TestSyncSTUNByName(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		n.Hosts = map[string][]netip.Addr{"stun.test": {stunAddr.Addr()}}
		n.AddNAT(memnet.NAT{Public: pubA, Hosts: []netip.Addr{ipA}, Inbound: memnet.Refuse})
		stunOn(t, n, stunAddr)
		warned := make(chan error, 4)
		c := memConfig(n, ipA, RoleAuto)
		c.STUNServers = []string{"stun.test:3478", "nowhere.test:3478"}
		c.OnEvent = func(e Event) {
			if e.Type == EventWarning {
				warned <- e.Err
			}
		}
		a, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		a.Gather(context.Background())
		synctest.Wait()
		srflx := 0
		for _, l := range a.Stats().LocalCandidates {
			if l.Type == candidate.ServerReflexive {
				srflx++
			}
		}
		if srflx == 0 {
			t.Fatal("no server-reflexive candidate from the STUN server known by name")
		}
		select {
		case err := <-warned:
			if !strings.Contains(err.Error(), "nowhere.test") {
				t.Fatalf("warning %v does not name the unknown server", err)
			}
		default:
			t.Fatal("no warning about the unknown server")
		}
	})
}

// Gather's context bounds it: one that already ended fails it with its
// error, and the agent has nothing left open.
func TestSyncGatherHonoursItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		a, err := New(memConfig(n, ipA, RoleAuto))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := a.Gather(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Gather with an ended context: %v", err)
		}
		a.Close()
		if n.Conns() != 0 {
			t.Fatalf("%d connections left", n.Conns())
		}
	})
}
