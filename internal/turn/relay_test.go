package turn

import (
	"net"
	"testing"
	"time"

	"github.com/icetcp/icetcp/internal/lab/coturn"
)

const transferSize = 3 << 20 // a few MiB each way

// Two allocations on one coturn reach each other: A connects to B's relayed
// address and B accepts, which is the relay↔relay pair of ICE.
func TestRelayBetweenAllocations(t *testing.T) {
	forEachCred(t, coturn.Config{AllowLoopbackPeers: true}, func(t *testing.T, c *coturn.Coturn, cfg Config) {
		a, b, ca, cb := relayPair(t, cfg)
		if a.RelayedAddr().Addr() != loopback || a.RelayedAddr() == b.RelayedAddr() {
			t.Fatalf("relayed addresses %v and %v", a.RelayedAddr(), b.RelayedAddr())
		}
		if a.Server() != c.Addr() {
			t.Errorf("Server() = %v, want %v", a.Server(), c.Addr())
		}
		if !a.MappedAddr().IsValid() || a.MappedAddr().Addr() != loopback {
			t.Errorf("MappedAddr() = %v", a.MappedAddr())
		}
		if addrPort(ca.RemoteAddr()) != b.RelayedAddr() || addrPort(cb.RemoteAddr()) != a.RelayedAddr() {
			t.Errorf("RemoteAddr: A sees %v (want %v), B sees %v (want %v)", ca.RemoteAddr(), b.RelayedAddr(), cb.RemoteAddr(), a.RelayedAddr())
		}
		if addrPort(ca.LocalAddr()).Addr() != loopback {
			t.Errorf("LocalAddr %v", ca.LocalAddr())
		}
		exchange(t, ca, cb, randomBytes(t, transferSize), randomBytes(t, transferSize), false)
	})
}

// An allocation connects to a plain TCP listener (a peer's passive
// candidate, or a host that is no ICE agent at all).
func TestConnectToPlainListener(t *testing.T) {
	forEachCred(t, coturn.Config{AllowLoopbackPeers: true}, func(t *testing.T, c *coturn.Coturn, cfg Config) {
		ctx := testCtx(t)
		a := mustAllocate(t, cfg)
		l := listenLoopback(t)
		accepted := make(chan net.Conn, 1)
		go func() {
			p, err := l.Accept()
			if err != nil {
				t.Error(err)
			}
			accepted <- p
		}()
		ca, err := a.Connect(ctx, addrPort(l.Addr()))
		if err != nil {
			t.Fatal(err)
		}
		defer ca.Close()
		p := <-accepted
		if p == nil {
			return
		}
		defer p.Close()
		if addrPort(p.RemoteAddr()).Addr() != a.RelayedAddr().Addr() {
			t.Errorf("the peer sees %v, the relayed address is %v", p.RemoteAddr(), a.RelayedAddr())
		}
		if ca.RemoteAddr().String() != l.Addr().String() {
			t.Errorf("RemoteAddr %v, want %v", ca.RemoteAddr(), l.Addr())
		}
		exchange(t, ca, p, randomBytes(t, transferSize), randomBytes(t, transferSize), false)
	})
}

// A plain TCP client connects to the relayed address and is accepted.
func TestAcceptFromPlainClient(t *testing.T) {
	forEachCred(t, coturn.Config{AllowLoopbackPeers: true}, func(t *testing.T, c *coturn.Coturn, cfg Config) {
		a := mustAllocate(t, cfg)
		p := dialRelayed(t, a)
		ca, err := a.Accept(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		defer ca.Close()
		if ca.RemoteAddr().String() != p.LocalAddr().String() {
			t.Errorf("RemoteAddr %v, want the peer's %v", ca.RemoteAddr(), p.LocalAddr())
		}
		exchange(t, ca, p, randomBytes(t, transferSize), randomBytes(t, transferSize), false)
	})
}

// Peers that connect while nobody calls Accept are bound up to the backlog
// and the rest ignored; the control connection keeps working all along
// (pion/turn v5's client blocks its reader at the eleventh attempt and
// every later request fails).
func TestAcceptBacklogNeverBlocksControl(t *testing.T) {
	forEachCred(t, coturn.Config{AllowLoopbackPeers: true}, func(t *testing.T, c *coturn.Coturn, cfg Config) {
		ctx := testCtx(t)
		a := mustAllocate(t, cfg)
		if err := a.Permit(ctx, loopback); err != nil {
			t.Fatal(err)
		}
		for range acceptBacklog + 4 {
			p, err := net.Dial("tcp", a.RelayedAddr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
		}
		// Wait until the backlog is full: polling internal state the
		// reader and the binds change.
		for {
			a.mu.Lock()
			n := a.backlog
			a.mu.Unlock()
			if len(a.accepted) == acceptBacklog && n == acceptBacklog {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("backlog %d, %d bound", n, len(a.accepted))
			case <-time.After(5 * time.Millisecond):
			}
		}
		if err := a.Permit(ctx, mustAddr("127.0.0.2")); err != nil {
			t.Fatalf("a request with a full backlog: %v", err)
		}
		for range acceptBacklog {
			c, err := a.Accept(ctx)
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.backlog != 0 || len(a.accepted) != 0 {
			t.Errorf("after accepting %d: backlog %d, %d queued", acceptBacklog, a.backlog, len(a.accepted))
		}
	})
}

// An allocation over IPv6 asks for an IPv6 relay (RFC 6156).
func TestIPv6(t *testing.T) {
	l6, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer l6.Close()
	forEachCred(t, coturn.Config{ListenIP: mustAddr("::1"), AllowLoopbackPeers: true}, func(t *testing.T, c *coturn.Coturn, cfg Config) {
		a := mustAllocate(t, cfg)
		if !a.RelayedAddr().Addr().Is6() {
			t.Fatalf("relayed %v, want IPv6", a.RelayedAddr())
		}
		go func() {
			if p, err := l6.Accept(); err == nil {
				echo(p)
				p.Close()
			}
		}()
		conn, err := a.Connect(testCtx(t), addrPort(l6.Addr()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		exchange(t, conn, conn, []byte("over IPv6"), nil, false)
	})
}
