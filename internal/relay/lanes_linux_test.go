package relay

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"golang.org/x/sys/unix"

	"github.com/icetcp/icetcp/internal/lab/coturn"
)

// silentPeer returns the address of a listener on 127.0.0.1 that drops
// every SYN, as a filtering NAT does: its accept queue (backlog 0) holds
// one connection nobody accepts, and Linux drops a SYN to a listener whose
// queue is full (unless tcp_abort_on_overflow resets it instead).
func silentPeer(t *testing.T) netip.AddrPort {
	t.Helper()
	if b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_abort_on_overflow"); err == nil && bytes.TrimSpace(b)[0] != '0' {
		t.Skip("tcp_abort_on_overflow is set: a full accept queue resets instead of dropping SYNs")
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*unix.SockaddrInet4).Port))
	filler := dialFrom(t, netip.Addr{}, addr)
	t.Cleanup(func() { filler.Close() })
	// The handshake's last ACK queues it: wait until the listener says so
	// (TCP_INFO of a listener: tcpi_unacked is its accept queue's length).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			t.Fatal(err)
		}
		if info.Unacked >= 1 {
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("the listener's accept queue stayed empty (%d)", info.Unacked)
		}
	}
}

// A Connect toward a peer that drops SYNs is answered only when the
// relay's connect gives up (RFC 6062 §5.2: 30 s at least); what the client
// asks meanwhile on the same control connection must not wait for it: a
// Connect to a live peer, and the deallocating Refresh. (On the embedded
// relay the Refresh waited behind pion's one reader per connection: in
// the lab a client's deallocation timed out, and the allocation counted
// against the user's quota until the connect gave up.)
func TestCrossCheckRequestsDoNotWaitForAConnect(t *testing.T) {
	checkLeaks(t)
	for _, r := range bothRelays(t, loopbackConfig(), coturn.Config{Users: map[string]string{testUser: testPass}, AllowLoopbackPeers: true}) {
		t.Run(r.name, func(t *testing.T) {
			raw := dialRaw(t, r.addr, testUser, testPass)
			raw.mustAllocate()
			silent := raw.build(stun.MethodConnect, peerAddr(silentPeer(t)))
			if _, err := raw.conn.Write(silent); err != nil {
				t.Fatal(err)
			}
			for i := range 2 { // two lanes' worth on the embedded relay
				l := peerListener(t, "127.0.0.1")
				accepted := acceptOne(t, l)
				if res := raw.request(stun.MethodConnect, peerAddr(addrOf(l))); code(res) != 0 {
					t.Fatalf("Connect %d to a live peer while one waits for a silent peer: %v", i+1, res)
				}
				recvConn(t, accepted)
			}
			if res := raw.request(stun.MethodRefresh, stun.RawAttribute{Type: stun.AttrLifetime, Value: []byte{0, 0, 0, 0}}); code(res) != 0 {
				t.Fatalf("deallocating Refresh while a Connect waits for a silent peer: %v", res)
			}
			tx := &stun.Message{Raw: silent}
			if err := tx.Decode(); err != nil {
				t.Fatal(err)
			}
			for _, m := range raw.skipped {
				switch {
				case m.TransactionID != tx.TransactionID:
				case code(m) == 0:
					t.Fatalf("the Connect to the silent peer succeeded (%v): the peer is not silent, the test shows nothing", m)
				default:
					t.Fatalf("the requests were answered only after the Connect to the silent peer gave up (%v)", m)
				}
			}
		})
	}
}

// A lane idle for laneIdle retires, and its allocation stays: pion
// deletes the allocation of whatever connection one of its readers
// leaves, so a retiring lane must not read as the client's connection.
// Connects after that get a lane again.
func TestLanesRetireAndTheAllocationStays(t *testing.T) {
	checkLeaks(t)
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	retired := make(chan struct{}, 8)
	ts := serveWith(t, loopbackConfig(), l, testHooks{laneIdle: 20 * time.Millisecond, laneRetired: func() { retired <- struct{}{} }})
	raw := dialRaw(t, ts.addr, testUser, testPass)
	raw.mustAllocate()
	connect := func(what string) {
		t.Helper()
		peer := peerListener(t, "127.0.0.1")
		accepted := acceptOne(t, peer)
		if res := raw.request(stun.MethodConnect, peerAddr(addrOf(peer))); code(res) != 0 {
			t.Fatalf("Connect %s: %v", what, res)
		}
		recvConn(t, accepted)
	}
	for round := range 2 {
		connect(fmt.Sprintf("in round %d", round+1))
		ls := lanesOf(t, ts, raw)
		select {
		case <-retired:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: no lane retired after its idle time", round+1)
		}
		if n := ls.n.Load(); n != 0 {
			t.Fatalf("round %d: %d lanes run after the one Connect's lane retired", round+1, n)
		}
		if res := raw.request(stun.MethodRefresh, stun.RawAttribute{Type: stun.AttrLifetime, Value: []byte{0, 0, 2, 88}}); code(res) != 0 {
			t.Fatalf("round %d: Refresh after the lanes retired: %v (the allocation went with them)", round+1, res)
		}
		if got := ts.Stats().Allocations; got != 1 {
			t.Fatalf("round %d: %d allocations, want 1", round+1, got)
		}
	}
}

// lanesOf finds the relay's side of raw's control connection and its
// lanes.
func lanesOf(t *testing.T, ts *testServer, raw *rawTURN) *laneSet {
	t.Helper()
	local := addrPortOf(raw.conn.LocalAddr())
	ts.mu.Lock()
	c := ts.byRemote[local]
	ts.mu.Unlock()
	if c == nil {
		t.Fatalf("no connection from %v on the relay", local)
	}
	c.reqMu.Lock()
	defer c.reqMu.Unlock()
	if c.lanes == nil {
		t.Fatal("the Connect got no lane")
	}
	return c.lanes
}
