package relay

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

func loopbackConfig() Config {
	cfg := baseConfig()
	cfg.AllowLoopbackPeers = true
	return cfg
}

func TestTCPAllocationIsTCP(t *testing.T) {
	checkLeaks(t)
	cfg := loopbackConfig()
	cfg.MinPort, cfg.MaxPort = 50000, 50999
	ts := startServer(t, cfg)
	c := newClient(t, ts.addr, clientOpts{})
	c.mustAllocate(t)
	if c.relayed.Addr() != ts.addr.Addr() || c.relayed.Port() < 50000 || c.relayed.Port() > 50999 {
		t.Fatalf("relayed address %v, want 127.0.0.1 and a port in 50000-50999", c.relayed)
	}
	if got := ts.Stats(); got.Allocations != 1 || got.AllocationsTotal != 1 {
		t.Fatalf("stats %+v, want one allocation", got)
	}
	// The relayed address is a TCP listener, and a connection to it reaches
	// the client once it permits the peer.
	c.permitLoopback(t)
	peer, conn := c.acceptPeer(t)
	exchange(t, peer, conn, []byte("hello through the relay"), []byte("and back"))
}

func TestRelayOutbound(t *testing.T) {
	checkLeaks(t)
	ts := startServer(t, loopbackConfig())
	c := newClient(t, ts.addr, clientOpts{})
	c.mustAllocate(t)
	conn, peer := c.dialPeer(t)
	if got := peer.RemoteAddr().String(); got != c.relayed.String() {
		t.Errorf("peer sees the connection from %s, want the relayed address %s (RFC 6062 §5.2)", got, c.relayed)
	}
	up, down := randomBytes(4<<20), randomBytes(3<<20)
	exchange(t, conn, peer, up, down)
	st := ts.Stats()
	if st.BytesToPeer != uint64(len(up)) || st.BytesToClient != uint64(len(down)) || st.RelayedTotal != 1 {
		t.Fatalf("stats %+v, want %d bytes to the peer, %d to the client, one relayed connection", st, len(up), len(down))
	}
}

func TestRelayInbound(t *testing.T) {
	checkLeaks(t)
	ts := startServer(t, loopbackConfig())
	c := newClient(t, ts.addr, clientOpts{})
	c.mustAllocate(t)
	c.permitLoopback(t)
	peer, conn := c.acceptPeer(t)
	exchange(t, peer, conn, randomBytes(3<<20), randomBytes(4<<20))
}

// Both peers of an ICE session often use the same relay: A connects to B's
// relayed address, B gets a ConnectionAttempt — with loopback peers
// refused, because relayed addresses of the relay itself are always
// reachable.
func TestRelayBetweenAllocations(t *testing.T) {
	checkLeaks(t)
	ts := startServer(t, baseConfig())
	a, b := twoAllocations(t, ts.addr)
	ac, bc := connectPair(t, a, b)
	exchange(t, ac, bc, randomBytes(4<<20), randomBytes(4<<20))
	if st := ts.Stats(); st.RelayedTotal != 2 {
		t.Fatalf("stats %+v, want two relayed connections (one per allocation)", st)
	}
}

// Bulk data both ways at once (coturn stalls on this now and then, see
// duplex).
func TestDuplexBulk(t *testing.T) {
	checkLeaks(t)
	ts := startServer(t, baseConfig())
	a, b := twoAllocations(t, ts.addr)
	ac, bc := connectPair(t, a, b)
	for range 5 {
		duplex(t, ac, bc, randomBytes(8<<20), randomBytes(8<<20))
	}
}

// RFC 6062 §5.3 asks the server to buffer what a peer sends before the
// client binds; coturn keeps 64 KiB of it and drops the rest. Here the
// peer sends more than that before ConnectionBind, then 8 MiB in all.
func TestEarlyPeerDataKept(t *testing.T) {
	checkLeaks(t)
	ts := startServer(t, loopbackConfig())
	c := newClient(t, ts.addr, clientOpts{})
	c.mustAllocate(t)
	c.permitLoopback(t)
	peer := dialFrom(t, netip.Addr{}, c.relayed)
	data := randomBytes(8 << 20)
	const early = 64<<10 + 1
	var written atomic.Int64
	earlyDone := make(chan struct{})
	writeErr := make(chan error, 1)
	go func() {
		var err error
		for off := 0; off < len(data) && err == nil; off += 8 << 10 {
			var n int
			n, err = peer.Write(data[off:min(off+8<<10, len(data))])
			if written.Add(int64(n)) >= early && written.Load()-int64(n) < early {
				close(earlyDone)
			}
		}
		if err == nil {
			err = peer.CloseWrite()
		}
		writeErr <- err
	}()
	select {
	case <-earlyDone:
	case <-time.After(10 * time.Second):
		t.Fatalf("the peer could not send %d bytes before ConnectionBind (sent %d): kernel buffers too small here", early, written.Load())
	}
	if st := ts.Stats(); st.RelayedTotal != 0 {
		t.Fatalf("a connection was bound before the early data was sent: %+v", st)
	}
	conn, err := c.alloc.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-writeErr; err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("client received %d bytes that differ from the %d the peer sent", len(got), len(data))
	}
}

// A client that dies mid-transfer (its sockets reset) frees its allocation,
// its relayed port and the peer connection.
func TestClientVanishesMidTransfer(t *testing.T) {
	checkLeaks(t)
	ts := startServer(t, loopbackConfig())
	c := newClient(t, ts.addr, clientOpts{})
	c.mustAllocate(t)
	conn, peer := c.dialPeer(t)
	go func() {
		chunk := randomBytes(64 << 10)
		for {
			if _, err := conn.Write(chunk); err != nil {
				return
			}
		}
	}()
	if _, err := io.ReadFull(peer, make([]byte, 1<<20)); err != nil {
		t.Fatalf("transfer not running: %v", err)
	}
	// The client process dies: the kernel resets its connections.
	conn.(interface{ SetLinger(int) error }).SetLinger(0)
	c.conn.(*net.TCPConn).SetLinger(0)
	conn.Close()
	c.conn.Close()

	ts.waitDeleted(t, 1)
	if !waitClosed(peer) {
		t.Fatal("peer connection still open after the client vanished")
	}
	if _, err := net.DialTimeout("tcp", c.relayed.String(), 5*time.Second); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("relayed port after the client vanished: dial err %v, want connection refused", err)
	}
	if err := ts.Close(); err != nil {
		t.Fatal(err)
	}
	if st := ts.Stats(); st.Allocations != 0 || st.Relayed != 0 {
		t.Fatalf("stats %+v, want no allocation and no relayed connection left", st)
	}
}

// A client that sends data right behind its ConnectionBind (in the same
// segment) must not lose it: pion's reader would have buffered it and
// dropped it when the connection turned into a data connection.
func TestClientDataRightAfterConnectionBind(t *testing.T) {
	checkLeaks(t)
	ts := startServer(t, loopbackConfig())
	r := dialRaw(t, ts.addr, testUser, testPass)
	r.mustAllocate()
	l := peerListener(t, "127.0.0.1")
	accepted := acceptOne(t, l)
	res := r.request(stun.MethodConnect, peerAddr(addrOf(l)))
	cid, ok := res.Attributes.Get(attrConnectionID)
	if code(res) != 0 || !ok {
		t.Fatalf("Connect: %v", res)
	}
	peer := recvConn(t, accepted)

	data := r.another(ts.addr)
	bind, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodConnectionBind, stun.ClassRequest), cid,
		stun.NewUsername(r.user), stun.NewRealm(r.realm), r.nonce, r.key, stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	early := []byte("bytes for the peer, in the ConnectionBind's segment")
	if _, err := data.conn.Write(append(bytes.Clone(bind.Raw), early...)); err != nil {
		t.Fatal(err)
	}
	if res := data.read(); res.Type.Class != stun.ClassSuccessResponse {
		t.Fatalf("ConnectionBind: %v", res)
	}
	got := make([]byte, len(early))
	peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(peer, got); err != nil || !bytes.Equal(got, early) {
		t.Fatalf("peer got %q (%v), want %q", got, err, early)
	}
}

// Only TCP allocations: a UDP one is refused (pion's generator hook can
// only answer 508).
func TestUDPAllocationRefused(t *testing.T) {
	checkLeaks(t)
	ts := startServer(t, baseConfig())
	r := dialRaw(t, ts.addr, testUser, testPass)
	r.mustAllocate()
	u := dialRaw(t, ts.addr, testUser, testPass) // a second allocation on r's connection would be 437
	u.challenge()
	udp := stun.RawAttribute{Type: attrRequestedTransport, Value: []byte{17, 0, 0, 0}}
	if res := u.request(stun.MethodAllocate, udp); code(res) != 508 {
		t.Fatalf("UDP Allocate answered %v, want 508", res)
	}
	if st := ts.Stats(); st.Allocations != 1 {
		t.Fatalf("stats %+v, want only the TCP allocation", st)
	}
}
