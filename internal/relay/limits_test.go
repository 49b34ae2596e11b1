package relay

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	restcred "github.com/icetcp/icetcp/internal/turn"
	"github.com/icetcp/icetcp/tcpso"
)

func TestAllocationQuota(t *testing.T) {
	checkLeaks(t)
	cfg := baseConfig()
	cfg.MaxAllocationsPerUser = 2
	ts := startServer(t, cfg)
	first := newClient(t, ts.addr, clientOpts{})
	first.mustAllocate(t)
	newClient(t, ts.addr, clientOpts{}).mustAllocate(t)
	if got := turnCode(newClient(t, ts.addr, clientOpts{}).allocate()); got != 486 {
		t.Fatalf("third allocation answered %d, want 486", got)
	}
	if got := ts.Stats().Refused.Quota; got != 1 {
		t.Fatalf("quota refusals %d, want 1", got)
	}
	// Freeing one allocation makes room again.
	first.alloc.Close()
	first.alloc = nil
	ts.waitDeleted(t, 1)
	newClient(t, ts.addr, clientOpts{}).mustAllocate(t)
}

// REST credentials of one user with different expiries share the user's
// quota: minting a new username does not buy more allocations.
func TestRESTQuotaPerUser(t *testing.T) {
	checkLeaks(t)
	now := time.Now()
	cfg := Config{Secret: "s", MaxAllocationsPerUser: 1, LoggerFactory: quietLogs()}
	ts := startServer(t, cfg)
	u1, p1 := restcred.RESTCredentials("s", "bob", now.Add(time.Hour))
	u2, p2 := restcred.RESTCredentials("s", "bob", now.Add(2*time.Hour))
	newClient(t, ts.addr, clientOpts{user: u1, pass: p1}).mustAllocate(t)
	if got := turnCode(newClient(t, ts.addr, clientOpts{user: u2, pass: p2}).allocate()); got != 486 {
		t.Fatalf("second allocation of bob answered %d, want 486", got)
	}
	u3, p3 := restcred.RESTCredentials("s", "carol", now.Add(time.Hour))
	newClient(t, ts.addr, clientOpts{user: u3, pass: p3}).mustAllocate(t)
}

// A flood of idle connections from one address must not starve others:
// connections over MaxConnsPerSource are reset at once, and another source
// allocates while the flood holds its slots.
func TestPerSourceCap(t *testing.T) {
	checkLeaks(t)
	cfg := baseConfig()
	cfg.MaxConnsPerSource = 8
	cfg.FirstMessageTimeout = time.Minute // the idle ones hold their slots for the whole test
	ts := startServer(t, cfg)
	flooder := netip.MustParseAddr("127.0.0.2")
	var conns []*net.TCPConn
	for range cfg.MaxConnsPerSource {
		conns = append(conns, dialFrom(t, flooder, ts.addr))
	}
	// The accept queue is first in, first out: the next ones are refused.
	for i := range 4 {
		if !refused(t, flooder, ts.addr) {
			t.Fatalf("connection %d over the cap not refused", i+1)
		}
	}
	other := newClient(t, ts.addr, clientOpts{local: netip.MustParseAddr("127.0.0.3")})
	other.mustAllocate(t)
	if got := ts.Stats().Refused.PerSource; got != 4 {
		t.Fatalf("per-source refusals %d, want 4", got)
	}
	// The flooder's admitted connections are still open and usable.
	c := newClient(t, ts.addr, clientOpts{conn: conns[0]})
	if err := c.allocate(); err != nil {
		t.Fatalf("an admitted connection of the flooder: %v", err)
	}
}

// A control connection is exempt from the idle timeout while it holds an
// allocation, and only then.
func TestIdleTimeoutFollowsAllocations(t *testing.T) {
	checkLeaks(t)
	ts := startServer(t, baseConfig())
	c := newClient(t, ts.addr, clientOpts{})
	c.mustAllocate(t)
	cc := ts.connFrom(c.conn.LocalAddr())
	if cc == nil || cc.allocs.Load() != 1 {
		t.Fatalf("server's view of the control connection: %+v, want one allocation", cc)
	}
	c.alloc.Close()
	c.alloc = nil
	ts.waitDeleted(t, 1)
	if n := cc.allocs.Load(); n != 0 {
		t.Fatalf("%d allocations on the connection after deletion, want 0", n)
	}
}

// Peer connections waiting for ConnectionBind are bounded per allocation:
// each may hold a kernel receive buffer of early data.
func TestPendingPeerConnectionsBounded(t *testing.T) {
	checkLeaks(t)
	ts := startServer(t, loopbackConfig())
	r := dialRaw(t, ts.addr, testUser, testPass)
	relayed := r.mustAllocate()
	if res := r.request(stun.MethodCreatePermission, peerAddr(netip.MustParseAddrPort("127.0.0.1:1"))); code(res) != 0 {
		t.Fatalf("CreatePermission: %v", res)
	}
	for range maxPendingPerAllocation {
		dialFrom(t, netip.Addr{}, relayed)
	}
	// The relay accepts in order: this one finds the allocation full.
	if !refused(t, netip.Addr{}, relayed) {
		t.Fatalf("connection %d waiting for ConnectionBind not refused", maxPendingPerAllocation+1)
	}
	if got := ts.Stats().Refused.Quota; got != 1 {
		t.Fatalf("quota refusals %d, want 1", got)
	}
}

// A relayed port belongs to one allocation. pion's own relay generators
// open every relay listener with SO_REUSEPORT on a random port without
// remembering it, so two allocations (or an allocation and an ICE agent's
// port-sharing listener) can share a port and split its connections.
func TestRelayPortNotShared(t *testing.T) {
	checkLeaks(t)
	probe, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := addrOf(probe).Port()
	probe.Close()
	cfg := baseConfig()
	cfg.MinPort, cfg.MaxPort = port, port
	ts := startServer(t, cfg)

	first := newClient(t, ts.addr, clientOpts{})
	first.mustAllocate(t)
	if got := turnCode(newClient(t, ts.addr, clientOpts{}).allocate()); got != 508 {
		t.Fatalf("second allocation with a one-port range: %d, want 508", got)
	}
	first.alloc.Close()
	first.alloc = nil
	ts.waitDeleted(t, 1)

	// Another socket that would share the port (SO_REUSEPORT) keeps it.
	other, err := tcpso.Listen(context.Background(), netip.AddrPortFrom(ts.addr.Addr(), port))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if got := turnCode(newClient(t, ts.addr, clientOpts{}).allocate()); got != 508 {
		t.Fatalf("allocation on a port held by a port-sharing listener: %d, want 508", got)
	}
}
