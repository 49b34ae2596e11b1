package agent

import (
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/icetcp/icetcp/candidate"
	"github.com/icetcp/icetcp/internal/lab/memnet"
	"github.com/icetcp/icetcp/internal/natcheck"
)

// Port prediction on the in-memory network: memnet's sequential NAT gives
// every new connection the next port of a series, as the lab's nftables
// NAT does, and an RST ends a mapping. The classes are given (natcheck's
// own tests and the lab measure them).

var (
	seqClass = natcheck.Class{Mapping: natcheck.AddressAndPortDependent, Allocation: natcheck.Sequential, Delta: 1,
		InboundSYN: natcheck.SYNDropped}
	eifClass = natcheck.Class{Mapping: natcheck.EndpointIndependent, PortPreserving: true, Allocation: natcheck.Preserving,
		InboundSYN: natcheck.SYNPassed}
)

// predictNAT describes one side's NAT for predictPair.
type predictNAT struct {
	nat   memnet.NAT
	class natcheck.Class
	role  Role
}

func seqNAT(role Role) predictNAT {
	return predictNAT{memnet.NAT{Inbound: memnet.Drop, Sequential: true}, seqClass, role}
}

func eimNAT(role Role) predictNAT {
	return predictNAT{memnet.NAT{Inbound: memnet.Refuse}, eimClass, role}
}

// predictPair builds two agents behind the given NATs, with a STUN server
// and the in-memory relay; tr records both agents' trace events.
func predictPair(t *testing.T, n *memnet.Network, a, b predictNAT, tr *traceLog) (Config, Config) {
	t.Helper()
	stunOn(t, n, stunAddr)
	r := newMemRelay(n)
	var cfgs [2]Config
	for i, s := range []predictNAT{a, b} {
		ip, pub := ipA, pubA
		if i == 1 {
			ip, pub = ipB, pubB
		}
		s.nat.Public, s.nat.Hosts = pub, []netip.Addr{ip}
		n.AddNAT(s.nat)
		c := withClass(withRelay(memConfig(n, ip, s.role), r), s.class)
		c.ConnectTimeout, c.CheckTimeout = time.Minute, 10*time.Second
		if tr != nil {
			side := string(rune('A' + i))
			c.Tracer = TracerFunc(func(e TraceEvent) { tr.add(side, e) })
		}
		cfgs[i] = c
	}
	return cfgs[0], cfgs[1]
}

// traceLog collects trace events of both agents.
type traceLog struct {
	mu     sync.Mutex
	events []string
}

func (l *traceLog) add(side string, e TraceEvent) {
	if (e.Kind != TraceLocal && e.Kind != TraceRemote) || e.Candidate == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	dir := "local"
	if e.Kind == TraceRemote {
		dir = "remote"
	}
	l.events = append(l.events, side+" "+dir+" "+e.Candidate.Marshal())
}

// predicted counts the predicted candidates side announced.
func (l *traceLog) predicted(side string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.events {
		if strings.HasPrefix(e, side+" local ") && strings.Contains(e, extPredict) {
			n++
		}
	}
	return n
}

// A sequential NAT against a port-preserving one connects directly, from
// a predicted port, whichever side controls; without prediction the same
// NATs give the relay.
func TestSyncPredictSequentialToEIM(t *testing.T) {
	for _, tc := range []struct {
		name   string
		a, b   predictNAT
		seqEnd int // 0: A is sequential, 1: B
	}{
		{"sequential side controls", seqNAT(RoleControlling), eimNAT(RoleControlled), 0},
		{"sequential side is controlled", seqNAT(RoleControlled), eimNAT(RoleControlling), 0},
		{"the peer is sequential", eimNAT(RoleControlling), seqNAT(RoleControlled), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := memnet.New()
				var tr traceLog
				ca, cb := predictPair(t, n, tc.a, tc.b, &tr)
				x, y := syncPair(t, ca, cb)
				conns := []*Conn{x, y}
				for _, c := range conns {
					if c.Path() != "direct" || c.Local().TCPType != candidate.SO {
						t.Fatalf("path %s %v -> %v, want a direct tcp-so pair", c.Path(), c.Local(), c.Remote())
					}
				}
				seq := conns[tc.seqEnd]
				// The sequential side punched from a round's fresh port,
				// which it never offered as a host candidate.
				for _, l := range seq.Agent().Stats().LocalCandidates {
					if l.Addr == seq.Local().Addr {
						t.Fatalf("the sequential side's punch left from its regular S-O port %v", l.Addr)
					}
				}
				// The peer's pair is toward a predicted candidate.
				if other := conns[1-tc.seqEnd]; other.Remote().Type != candidate.ServerReflexive || other.Remote().Addr.Port() < 30000 {
					t.Fatalf("the peer selected %v, want a predicted port of the series", other.Remote())
				}
				if got := tr.predicted(string(rune('A' + tc.seqEnd))); got != predictWindow {
					t.Fatalf("%d predicted candidates announced, want one window of %d", got, predictWindow)
				}
				exchange(t, x, y, 64<<10)
			})
		})
	}
}

// Two sequential NATs: the controlling side leads, the controlled one
// replies with its ordered connections toward the leader's window, and
// the leader's punch meets the reply aimed at its next port.
func TestSyncPredictSequentialBoth(t *testing.T) {
	for _, roles := range [][2]Role{{RoleControlling, RoleControlled}, {RoleControlled, RoleControlling}, {RoleAuto, RoleAuto}} {
		synctest.Test(t, func(t *testing.T) {
			n := memnet.New()
			ca, cb := predictPair(t, n, seqNAT(roles[0]), seqNAT(roles[1]), nil)
			x, y := syncPair(t, ca, cb)
			for _, c := range []*Conn{x, y} {
				if c.Path() != "direct" || c.Local().TCPType != candidate.SO || c.Remote().Type != candidate.ServerReflexive {
					t.Fatalf("roles %v: path %s %v -> %v, want a direct tcp-so pair toward a predicted port", roles, c.Path(), c.Local(), c.Remote())
				}
			}
			exchange(t, x, y, 64<<10)
		})
	}
}

// noisyNAT makes a sequential NAT's other hosts open conns connections
// every period, from when the first SYN of the agents' punches... from the
// start, until stop is closed.
func noisyNAT(n *memnet.Network, pub netip.Addr, period time.Duration, conns int, stop <-chan struct{}) {
	go func() {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				n.Noise(pub, conns)
			}
		}
	}()
}

// A NAT whose series moves faster than any window (other hosts open
// connections between our sighting and our punch): every round misses,
// the prediction gives up after its bounded rounds, and the relay is
// selected, within a few seconds and without a hopeless wait.
func TestSyncPredictNoisyGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		var tr traceLog
		ca, cb := predictPair(t, n, seqNAT(RoleControlling), eimNAT(RoleControlled), &tr)
		stop := make(chan struct{})
		defer close(stop)
		noisyNAT(n, pubA, time.Millisecond, predictWindow, stop) // a window's worth every millisecond
		x, y := syncPair(t, ca, cb)
		for _, c := range []*Conn{x, y} {
			if c.Path() != "relay" {
				t.Fatalf("path %s %v -> %v, want the relay", c.Path(), c.Local(), c.Remote())
			}
		}
		if got := tr.predicted("A"); got == 0 || got > maxPredictRounds*predictWindow {
			t.Fatalf("%d predicted candidates announced, want 1 to %d rounds of %d", got, maxPredictRounds, predictWindow)
		}
		if took := max(x.ConnectTime(), y.ConnectTime()); took > 5*time.Second {
			t.Fatalf("the relay took %v", took)
		}
		exchange(t, x, y, 4096)
	})
}

// A little noise (fewer connections than the window between the sighting
// and the punch) is absorbed by the window.
func TestSyncPredictNoiseWithinWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		ca, cb := predictPair(t, n, seqNAT(RoleControlling), eimNAT(RoleControlled), nil)
		stop := make(chan struct{})
		defer close(stop)
		noisyNAT(n, pubA, 5*time.Millisecond, 1, stop)
		x, y := syncPair(t, ca, cb)
		if x.Path() != "direct" || y.Path() != "direct" {
			t.Fatalf("paths %s %s, want direct", x.Path(), y.Path())
		}
		exchange(t, x, y, 4096)
	})
}

// A sequential NAT against a symmetric one cannot meet: no prediction is
// announced once the classes are known, and the relay is not held back.
func TestSyncPredictSymmetricPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		ca, cb := predictPair(t, n, seqNAT(RoleControlling), predictNAT{memnet.NAT{Inbound: memnet.Refuse, Symmetric: true}, symClass, RoleControlled}, nil)
		x, y := syncPair(t, ca, cb)
		if x.Path() != "relay" || y.Path() != "relay" {
			t.Fatalf("paths %s %s, want relay", x.Path(), y.Path())
		}
		if took := max(x.ConnectTime(), y.ConnectTime()); took > time.Second {
			t.Fatalf("the relay took %v", took)
		}
	})
}

// Endpoint-independent filtering: a symmetric peer reaches the EIF side
// directly, and the EIF side's passive server-reflexive candidate is
// judged reachable while an endpoint-dependent one is not tried.
func TestSyncEIFAgainstSymmetric(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		ca, cb := predictPair(t, n, predictNAT{memnet.NAT{Inbound: memnet.Refuse, EIF: true}, eifClass, RoleControlling},
			predictNAT{memnet.NAT{Inbound: memnet.Refuse, Symmetric: true}, symClass, RoleControlled}, nil)
		x, y := syncPair(t, ca, cb)
		if x.Path() != "direct" || y.Path() != "direct" {
			t.Fatalf("paths %s (%v -> %v) %s, want direct", x.Path(), x.Local(), x.Remote(), y.Path())
		}
		exchange(t, x, y, 4096)
		// The symmetric side's checks toward the EIF side's passive
		// server-reflexive candidate are never ruled out by the classes.
		for _, p := range y.Agent().Stats().Pairs {
			if p.Remote.TCPType == candidate.Passive && p.Remote.Type == candidate.ServerReflexive && strings.Contains(p.Err, "rule out") {
				t.Errorf("%v -> %v: %q", p.Local, p.Remote, p.Err)
			}
		}
	})
}

// The classes judge a connection to a passive server-reflexive candidate
// by the filtering of the NAT in front of it (PassiveReachable), whatever
// connects (our host or our relay), and leave other pairs alone.
func TestPunchVerdictPassive(t *testing.T) {
	a := &Agent{}
	host := candidate.New(candidate.Host, candidate.Active, netip.MustParseAddrPort("10.0.0.1:9"), netip.AddrPort{}, netip.Addr{}, 1)
	relayed := candidate.New(candidate.Relay, candidate.Active, netip.MustParseAddrPort("198.51.100.20:9"), netip.AddrPort{}, netip.Addr{}, 1)
	srflxPassive := candidate.New(candidate.ServerReflexive, candidate.Passive, netip.MustParseAddrPort("203.0.113.2:40001"),
		netip.MustParseAddrPort("10.0.0.2:40001"), netip.Addr{}, 1)
	hostPassive := candidate.New(candidate.Host, candidate.Passive, netip.MustParseAddrPort("10.0.0.2:40001"), netip.AddrPort{}, netip.Addr{}, 1)
	for _, tc := range []struct {
		remote        *natcheck.Class
		local, target candidate.Candidate
		want          natcheck.Viability
	}{
		{nil, host, srflxPassive, natcheck.ViabilityUnknown},
		{&eifClass, host, srflxPassive, natcheck.Likely},
		{&eifClass, relayed, srflxPassive, natcheck.Likely},
		{&eimClass, host, srflxPassive, natcheck.Unlikely},
		{&seqClass, relayed, srflxPassive, natcheck.Unlikely},
		{&eimClass, host, hostPassive, natcheck.ViabilityUnknown}, // a host candidate: the classes say nothing
	} {
		a.nat = natState{}
		if tc.remote != nil {
			a.nat.remote, a.nat.haveRemote = *tc.remote, true
		}
		if got, why := a.punchVerdict(&pair{local: tc.local, remote: tc.target}); got != tc.want {
			t.Errorf("peer %v, %s %s -> %s %s: %s (%s), want %s", tc.remote, tc.local.Type, tc.local.TCPType,
				tc.target.Type, tc.target.TCPType, got, why, tc.want)
		}
	}
}
