package tcpso

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// blackHole makes ap drop incoming SYNs silently, the way an RFC 5382 REQ-4
// NAT (or a NAT with a drop rule) treats an unsolicited SYN, without root or
// nftables: a listener with backlog 1 whose accept queue is filled by two
// connections nobody accepts. Linux drops SYNs for a full accept queue
// (tcp_abort_on_overflow=0, the default), while a SYN for a socket of the
// exact 4-tuple (our own SYN_SENT socket) is still delivered to that socket.
// The listener shares the port through SO_REUSEPORT.
func blackHole(t *testing.T, ap netip.AddrPort) netip.AddrPort {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := setReuse(fd); err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 1); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	ap = netip.AddrPortFrom(ap.Addr(), uint16(sa.(*unix.SockaddrInet4).Port))
	for range 2 {
		c, err := net.DialTimeout("tcp4", ap.String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	// Check the kernel really drops rather than resets.
	c, err := net.DialTimeout("tcp4", ap.String(), 300*time.Millisecond)
	if err == nil {
		c.Close()
		t.Skip("kernel accepted a SYN on a full accept queue")
	}
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Skipf("kernel does not drop SYNs on a full accept queue: %v", err)
	}
	return ap
}

// TestSimultaneousOpenSilentDrop is a real TCP simultaneous open: neither side
// accepts anything, both ends drop unsolicited SYNs, and both punch at once.
// A SYN that arrives while the other side's socket is in SYN_SENT crosses
// (RFC 793 §3.4 figure 8), and both connect() calls succeed.
func TestSimultaneousOpenSilentDrop(t *testing.T) {
	checkLeaks(t)
	ctx := testCtx(t)
	a := blackHole(t, netip.AddrPortFrom(loop4, 0))
	b := blackHole(t, netip.AddrPortFrom(loop4, 0))
	start := time.Now().Add(50 * time.Millisecond)
	s := Schedule{Attempts: 3, AttemptTimeout: 5 * time.Second}
	type result struct {
		c   *net.TCPConn
		err error
	}
	ra, rb := make(chan result, 1), make(chan result, 1)
	go func() {
		c, err := SimultaneousOpen(ctx, Punch{Local: a, Remote: b, Start: start, Schedule: s})
		ra <- result{c, err}
	}()
	go func() {
		c, err := SimultaneousOpen(ctx, Punch{Local: b, Remote: a, Start: start, Schedule: s})
		rb <- result{c, err}
	}()
	x, y := <-ra, <-rb
	if x.err != nil || y.err != nil {
		t.Fatalf("a: %v; b: %v", x.err, y.err)
	}
	defer x.c.Close()
	defer y.c.Close()
	if addrPort(t, x.c.RemoteAddr()) != b || addrPort(t, y.c.RemoteAddr()) != a {
		t.Fatalf("wrong peers: %v, %v", x.c.RemoteAddr(), y.c.RemoteAddr())
	}
	exchange(t, x.c, y.c)
}

func TestSimultaneousOpenNoAnswer(t *testing.T) {
	checkLeaks(t)
	remote := blackHole(t, netip.AddrPortFrom(loop4, 0))
	local := freePort(t)
	_, err := SimultaneousOpen(testCtx(t), Punch{Local: local, Remote: remote, Schedule: Schedule{
		Attempts: 2, Interval: 10 * time.Millisecond, AttemptTimeout: 100 * time.Millisecond,
	}})
	var oe *OpenError
	if !errors.As(err, &oe) || oe.TimedOut != 2 || oe.Reason() != "no-answer" || oe.Canceled {
		t.Fatalf("err = %v, want 2 timed-out attempts", err)
	}
}

// TestSimultaneousOpenCancelInsideAttempt cancels while a real SYN (plain
// and primed) waits for an answer that never comes.
func TestSimultaneousOpenCancelInsideAttempt(t *testing.T) {
	checkLeaks(t)
	remote := blackHole(t, netip.AddrPortFrom(loop4, 0))
	local := freePort(t)
	for _, ttl := range []int{0, 2} {
		ctx, cancel := context.WithCancel(context.Background())
		entered := make(chan struct{})
		e := realEnv
		e.dial = func(ctx context.Context, l, r netip.AddrPort, ttl int) (*net.TCPConn, error) {
			close(entered)
			return dialAttempt(ctx, l, r, ttl)
		}
		done := make(chan error, 1)
		go func() {
			_, err := open(ctx, Punch{Local: local, Remote: remote, PrimeTTL: ttl,
				Schedule: Schedule{AttemptTimeout: time.Hour}}, e)
			done <- err
		}()
		<-entered
		cancel()
		err := <-done
		var oe *OpenError
		if !errors.As(err, &oe) || !oe.Canceled || oe.SYNs != 1 || !errors.Is(err, context.Canceled) {
			t.Fatalf("ttl %d: err = %v", ttl, err)
		}
		if n := oe.Refused + oe.TimedOut + oe.Unreachable + oe.Busy + oe.Other; n != 0 {
			t.Fatalf("ttl %d: the canceled SYN was counted: %+v", ttl, oe)
		}
	}
}

func defaultTTL(t *testing.T) int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_default_ttl")
	if err != nil {
		t.Skip(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPrimeTTL connects with a primed first SYN. Loopback delivers a TTL-1
// packet (nothing forwards it), so the punch connects; the test checks the
// socket's TTL was restored afterwards, and the addresses of a FileConn-built
// connection.
func TestPrimeTTL(t *testing.T) {
	checkLeaks(t)
	want := defaultTTL(t)
	l := listen(t, netip.AddrPortFrom(loop4, 0))
	remote := addrPort(t, l.Addr())
	local := freePort(t)
	acc := acceptOne(l)
	c, err := SimultaneousOpen(testCtx(t), Punch{Local: local, Remote: remote, PrimeTTL: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc := <-acc
	if sc == nil {
		t.Fatal("accept failed")
	}
	defer sc.Close()
	if addrPort(t, c.LocalAddr()) != local || addrPort(t, c.RemoteAddr()) != remote {
		t.Fatalf("conn %v->%v, want %v->%v", c.LocalAddr(), c.RemoteAddr(), local, remote)
	}
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var ttl int
	var gerr error
	rc.Control(func(fd uintptr) { ttl, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TTL) })
	if gerr != nil || ttl != want {
		t.Fatalf("TTL after connect = %d (%v), want %d", ttl, gerr, want)
	}
	exchange(t, c, sc)

	// A primed attempt to a closed port is refused like a normal one.
	_, err = SimultaneousOpen(testCtx(t), Punch{Local: freePort(t), Remote: freePort(t), PrimeTTL: 1, Schedule: fastSchedule(2)})
	var oe *OpenError
	if !errors.As(err, &oe) || oe.Refused != 2 {
		t.Fatalf("err = %v, want 2 refused", err)
	}
}

func TestPrimeTTLIPv6(t *testing.T) {
	checkLeaks(t)
	l, err := Listen(testCtx(t), netip.MustParseAddrPort("[::1]:0"))
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer l.Close()
	remote := addrPort(t, l.Addr())
	acc := acceptOne(l)
	c, err := dialPrimed(testCtx(t), netip.MustParseAddrPort("[::1]:0"), remote, 1)
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

// TestDialKeepsAHandshakeThatEndedBeforeItsDeadlineWasSeen: the handshake
// of a punch's SYN completed, but the process did not run until after the
// SYN's deadline (a busy host), so the deadline's wake-up came first. The
// connection must be kept: the peer already has it (net.Dialer closes it,
// and in the NAT lab under load the peer's check then met EOF and the pair
// failed on both sides).
func TestDialKeepsAHandshakeThatEndedBeforeItsDeadlineWasSeen(t *testing.T) {
	checkLeaks(t)
	l := listen(t, netip.AddrPortFrom(loop4, 0))
	remote := addrPort(t, l.Addr())
	local := freePort(t)
	acc := acceptOne(l)
	pc, err := startPrimed(local, remote, 0) // the SYN leaves
	if err != nil {
		t.Fatal(err)
	}
	sc := <-acc // the listener has the connection: ours is established
	if sc == nil {
		t.Fatal("accept failed")
	}
	defer sc.Close()
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	c, err := pc.wait(expired) // only now does the punch look
	if err != nil {
		t.Fatalf("a connection that was up when its deadline was seen: %v", err)
	}
	defer c.Close()
	if addrPort(t, c.LocalAddr()) != local || addrPort(t, c.RemoteAddr()) != remote {
		t.Fatalf("conn %v->%v, want %v->%v", c.LocalAddr(), c.RemoteAddr(), local, remote)
	}
	exchange(t, c, sc)
}
