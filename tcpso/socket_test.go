//go:build unix

package tcpso

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

var loop4 = netip.MustParseAddr("127.0.0.1")

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func addrPort(t *testing.T, a net.Addr) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

func listen(t *testing.T, ap netip.AddrPort) *net.TCPListener {
	t.Helper()
	l, err := Listen(testCtx(t), ap)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// acceptOne accepts one connection in the background.
func acceptOne(l *net.TCPListener) <-chan net.Conn {
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(ch)
			return
		}
		ch <- c
	}()
	return ch
}

// exchange checks that bytes flow both ways between a and b.
func exchange(t *testing.T, a, b net.Conn) {
	t.Helper()
	for _, d := range []struct {
		from, to net.Conn
		msg      string
	}{{a, b, "ping from a"}, {b, a, "pong from b"}} {
		if _, err := d.from.Write([]byte(d.msg)); err != nil {
			t.Fatal(err)
		}
		d.to.SetReadDeadline(time.Now().Add(5 * time.Second))
		got := make([]byte, len(d.msg))
		if _, err := io.ReadFull(d.to, got); err != nil {
			t.Fatal(err)
		}
		if string(got) != d.msg {
			t.Fatalf("got %q, want %q", got, d.msg)
		}
	}
}

func TestListenDialSharePort(t *testing.T) {
	checkLeaks(t)
	ctx := testCtx(t)
	shared := listen(t, netip.AddrPortFrom(loop4, 0))
	sharedAP := addrPort(t, shared.Addr())
	peer1 := listen(t, netip.AddrPortFrom(loop4, 0))
	peer2 := listen(t, netip.AddrPortFrom(loop4, 0))

	// Two dialers from the listener's port to two peers: the 4-tuples differ.
	for _, peer := range []*net.TCPListener{peer1, peer2} {
		acc := acceptOne(peer)
		c, err := Dial(ctx, sharedAP, addrPort(t, peer.Addr()))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got := addrPort(t, c.LocalAddr()); got != sharedAP {
			t.Fatalf("dialer bound %v, want %v", got, sharedAP)
		}
		pc := <-acc
		if pc == nil {
			t.Fatal("peer accept failed")
		}
		defer pc.Close()
		if got := addrPort(t, pc.RemoteAddr()); got != sharedAP {
			t.Fatalf("peer sees %v, want %v", got, sharedAP)
		}
		exchange(t, c, pc)
	}

	// The listener still accepts on the shared port.
	acc := acceptOne(shared)
	c, err := Dial(ctx, netip.AddrPortFrom(loop4, 0), sharedAP)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc := <-acc
	if sc == nil {
		t.Fatal("accept on shared port failed")
	}
	defer sc.Close()
	exchange(t, c, sc)
}

func TestDialErrors(t *testing.T) {
	checkLeaks(t)
	ctx := testCtx(t)
	// A port with nothing behind it: take one and release it.
	l := listen(t, netip.AddrPortFrom(loop4, 0))
	dead := addrPort(t, l.Addr())
	l.Close()

	_, err := Dial(ctx, netip.AddrPortFrom(loop4, 0), dead)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("err = %v, want ECONNREFUSED", err)
	}
	var ce *ConnectError
	if !errors.As(err, &ce) || ce.Remote != dead {
		t.Fatalf("err = %#v, want *ConnectError for %v", err, dead)
	}
	var op *net.OpError
	if !errors.As(err, &op) {
		t.Fatalf("err %v does not wrap *net.OpError", err)
	}
	t.Logf("error text: %v", err)

	if _, err := Dial(ctx, netip.AddrPortFrom(loop4, 0), netip.AddrPort{}); err == nil {
		t.Fatal("dial to the zero address succeeded")
	}
	if _, err := Dial(ctx, netip.MustParseAddrPort("[::1]:0"), dead); err == nil {
		t.Fatal("dial across address families succeeded")
	}
	if _, err := Listen(ctx, netip.AddrPort{}); err == nil {
		t.Fatal("listen on the zero address succeeded")
	}
}

func TestListenIPv6(t *testing.T) {
	checkLeaks(t)
	ctx := testCtx(t)
	l, err := Listen(ctx, netip.MustParseAddrPort("[::1]:0"))
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer l.Close()
	ap := addrPort(t, l.Addr())
	acc := acceptOne(l)
	c, err := Dial(ctx, netip.AddrPortFrom(ap.Addr(), 0), ap)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc := <-acc
	if sc == nil {
		t.Fatal("accept failed")
	}
	defer sc.Close()
	exchange(t, c, sc)
}
