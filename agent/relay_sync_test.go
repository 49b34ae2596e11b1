package agent

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/icetcp/icetcp/candidate"
	"github.com/icetcp/icetcp/internal/lab/memnet"
	"github.com/icetcp/icetcp/internal/natcheck"
)

// memRelay is a TURN server with TCP allocations (RFC 6062) on the
// in-memory network: it enforces permissions as a real relay does, and
// its relayed connections are memnet connections from its own address.
type memRelay struct {
	n    *memnet.Network
	ip   netip.Addr
	fail error // every Allocate fails with it (wrong credentials, ...)

	mu     sync.Mutex
	allocs []*memAlloc
}

var relayIP = netip.MustParseAddr("198.51.100.20")

func newMemRelay(n *memnet.Network) *memRelay { return &memRelay{n: n, ip: relayIP} }

func (r *memRelay) allocate(ctx context.Context, s TURNServer) (relayAlloc, error) {
	if r.fail != nil {
		return nil, r.fail
	}
	l, err := r.n.Listen(ctx, netip.AddrPortFrom(r.ip, 0), false)
	if err != nil {
		return nil, err
	}
	a := &memAlloc{r: r, l: l, relayed: addrPortOf(l.Addr()), permitted: map[netip.AddrPort]bool{}}
	r.mu.Lock()
	r.allocs = append(r.allocs, a)
	r.mu.Unlock()
	return a, nil
}

// allocAt is the allocation whose relayed address is ap, or nil.
func (r *memRelay) allocAt(ap netip.AddrPort) *memAlloc {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range r.allocs {
		if a.relayed == ap {
			return a
		}
	}
	return nil
}

// kill ends every allocation, as a relay that goes down.
func (r *memRelay) kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range r.allocs {
		a.Close()
		a.mu.Lock()
		conns := a.conns
		a.mu.Unlock()
		for _, c := range conns {
			c.(*memnet.Conn).Reset()
		}
	}
}

type memAlloc struct {
	r       *memRelay
	l       net.Listener
	relayed netip.AddrPort

	mu        sync.Mutex
	permitted map[netip.AddrPort]bool // a port of 0: the IP alone
	conns     []net.Conn
	closed    bool
}

// permits reports a permission for peer: for its IP, or (exact) for its
// address, port included.
func (a *memAlloc) permits(peer netip.AddrPort, exact bool) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for p := range a.permitted {
		if p == peer || !exact && p.Addr() == peer.Addr() {
			return true
		}
	}
	return false
}

func (a *memAlloc) RelayedAddr() netip.AddrPort { return a.relayed }
func (a *memAlloc) MappedAddr() netip.AddrPort  { return netip.AddrPortFrom(a.r.ip, 1) }

func (a *memAlloc) PermitAddrs(_ context.Context, peers ...netip.AddrPort) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, p := range peers {
		a.permitted[p] = true
	}
	return nil
}

// Connect reaches peer with a permission for its IP; another allocation
// of the same relay only when that one permitted this one's relayed
// address, port included, as the embedded relay does (issue 14: with the
// relay's IP alone every user of the relay could get in).
func (a *memAlloc) Connect(ctx context.Context, peer netip.AddrPort) (net.Conn, error) {
	if !a.permits(peer, false) {
		return nil, errors.New("memrelay: 403 no permission")
	}
	if t := a.r.allocAt(peer); t != nil && !t.permits(a.relayed, true) {
		return nil, errors.New("memrelay: 447 the allocation there did not permit this one")
	}
	c, err := a.r.n.Dial(ctx, netip.AddrPortFrom(a.r.ip, 0), peer)
	if err == nil {
		a.track(c)
	}
	return c, err
}

func (a *memAlloc) Accept(ctx context.Context) (net.Conn, error) {
	for {
		c, err := a.l.Accept()
		if err != nil {
			return nil, err
		}
		if !a.permits(addrPortOf(c.RemoteAddr()), false) {
			c.Close() // no ConnectionAttempt without a permission
			continue
		}
		a.track(c)
		return c, nil
	}
}

func (a *memAlloc) track(c net.Conn) {
	a.mu.Lock()
	a.conns = append(a.conns, c)
	a.mu.Unlock()
}

// Close deallocates: as a TURN server does, it closes the allocation's
// connections too.
func (a *memAlloc) Close() error {
	a.mu.Lock()
	a.closed = true
	conns := a.conns
	a.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	return a.l.Close()
}

// liveConns counts the allocations not closed yet.
func (r *memRelay) liveConns() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, a := range r.allocs {
		a.mu.Lock()
		if !a.closed {
			n++
		}
		a.mu.Unlock()
	}
	return n
}

func withRelay(c Config, r *memRelay) Config {
	c.TURNServers = []TURNServer{{URI: "turn:" + r.ip.String(), Username: "u", Password: "p"}}
	c.allocate = r.allocate
	c.STUNServers = []string{stunAddr.String()}
	return c
}

var (
	eimClass = natcheck.Class{Mapping: natcheck.EndpointIndependent, PortPreserving: true,
		Allocation: natcheck.Preserving, InboundSYN: natcheck.SYNRefused}
	symClass = natcheck.Class{Mapping: natcheck.AddressAndPortDependent, Allocation: natcheck.Random,
		InboundSYN: natcheck.SYNRefused}
)

// natPair builds two agents behind NATs on n with a STUN server and the
// in-memory relay, and returns their configs.
func natPair(n *memnet.Network, r *memRelay, symA, symB bool) (Config, Config) {
	n.AddNAT(memnet.NAT{Public: pubA, Hosts: []netip.Addr{ipA}, Inbound: memnet.Refuse, Symmetric: symA})
	n.AddNAT(memnet.NAT{Public: pubB, Hosts: []netip.Addr{ipB}, Inbound: memnet.Refuse, Symmetric: symB})
	class := func(sym bool) natcheck.Class {
		if sym {
			return symClass
		}
		return eimClass
	}
	ca := withClass(withRelay(memConfig(n, ipA, RoleAuto), r), class(symA))
	cb := withClass(withRelay(memConfig(n, ipB, RoleAuto), r), class(symB))
	ca.ConnectTimeout, cb.ConnectTimeout = time.Minute, time.Minute
	ca.CheckTimeout, cb.CheckTimeout = 10*time.Second, 10*time.Second
	return ca, cb
}

// Two symmetric NATs: no direct path. The relayed pair wins soon after it
// works, because both NAT classes rule the punches out; waiting for the
// direct checks to time out instead (AwaitDirect) takes the check timeout.
func TestSyncRelayWhenNoDirectPath(t *testing.T) {
	var fast, slow time.Duration
	for _, await := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			n := memnet.New()
			stunOn(t, n, stunAddr)
			r := newMemRelay(n)
			ca, cb := natPair(n, r, true, true)
			ca.AwaitDirect, cb.AwaitDirect = await, await
			x, y := syncPair(t, ca, cb)
			for _, c := range []*Conn{x, y} {
				if c.Path() != "relay" {
					t.Fatalf("path %s (%v -> %v), want relay", c.Path(), c.Local(), c.Remote())
				}
			}
			took := max(x.ConnectTime(), y.ConnectTime())
			if await {
				slow = took
			} else {
				fast = took
			}
			exchange(t, x, y, 256<<10)
		})
	}
	t.Logf("relay selected after %v; waiting for the direct checks would take %v", fast, slow)
	if fast > time.Second || slow < 10*time.Second {
		t.Fatalf("relay after %v (want well under a second of virtual time), counterfactual %v (want the 10s check timeout)", fast, slow)
	}
}

// Both peers on one relay, and nothing but the relay between them: with
// no active or S-O candidates of their own, and symmetric NATs, the only
// path is one allocation to the other's relayed address. The relay lets
// it in only because each agent permitted the other's relayed address,
// port included (issue 14: agents permitted the relay's whole IP, which on
// the embedded relay let every other user's allocation in too, and which
// it no longer takes as a permission for any allocation of its own).
func TestSyncRelayToRelayOnOneRelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		stunOn(t, n, stunAddr)
		r := newMemRelay(n)
		ca, cb := natPair(n, r, true, true)
		ca.DisableActive, cb.DisableActive = true, true
		ca.DisableSO, cb.DisableSO = true, true
		x, y := syncPair(t, ca, cb)
		for _, c := range []*Conn{x, y} {
			if c.Local().Type != candidate.Relay || c.Remote().Type != candidate.Relay {
				t.Fatalf("selected %v -> %v, want relayed to relayed", c.Local(), c.Remote())
			}
		}
		exchange(t, x, y, 64<<10)
	})
}

// Two predictable NATs: the punch is likely, so the relayed pair does not
// win even though it works too (without sessions; with them the relay
// may go first, TestSyncSessionEndsDirect).
func TestSyncDirectBeatsRelayWhenPunchIsLikely(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		stunOn(t, n, stunAddr)
		r := newMemRelay(n)
		ca, cb := natPair(n, r, false, false)
		x, y := syncPair(t, ca, cb)
		for _, c := range []*Conn{x, y} {
			if c.Path() != "direct" || c.Local().TCPType != candidate.SO {
				t.Fatalf("selected %v -> %v (%s), want the direct tcp-so pair", c.Local(), c.Remote(), c.Path())
			}
		}
		exchange(t, x, y, 64<<10)
	})
}

// A relay that refuses us (wrong credentials) is a warning; the direct
// path still connects.
func TestSyncBrokenRelayLeavesDirect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		stunOn(t, n, stunAddr)
		r := newMemRelay(n)
		r.fail = errors.New("turn: allocate: 401 wrong credentials")
		ca, cb := natPair(n, r, false, false)
		warned := make(chan error, 8)
		ca.OnEvent = func(e Event) {
			if e.Type == EventWarning {
				warned <- e.Err
			}
		}
		x, y := syncPair(t, ca, cb)
		if x.Path() != "direct" {
			t.Fatalf("path %s", x.Path())
		}
		synctest.Wait()
		select {
		case err := <-warned:
			if !errors.Is(err, r.fail) {
				t.Fatalf("warning %v does not carry the relay's error", err)
			}
		default:
			t.Fatal("no warning about the broken relay")
		}
		exchange(t, x, y, 4096)
	})
}

// The relay goes down mid-session: the relayed connection's end is an
// error, not a clean end of stream.
func TestSyncRelayLostMidTransfer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memnet.New()
		stunOn(t, n, stunAddr)
		r := newMemRelay(n)
		ca, cb := natPair(n, r, true, true)
		x, y := syncPair(t, ca, cb)
		x.Write(make([]byte, 1000))
		buf := make([]byte, 1000)
		if _, err := io.ReadFull(y, buf); err != nil {
			t.Fatal(err)
		}
		r.kill()
		for _, c := range []*Conn{x, y} {
			if _, err := c.Read(buf); err == nil || err == io.EOF {
				t.Fatalf("read after the relay died: %v, want an error, not an end of stream", err)
			}
		}
	})
}
