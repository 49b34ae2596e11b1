package tcpso

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// freePort returns a loopback port with nothing bound to it (it was free a
// moment ago; tests that use it accept that tiny race).
func freePort(t *testing.T) netip.AddrPort {
	t.Helper()
	l := listen(t, netip.AddrPortFrom(loop4, 0))
	ap := addrPort(t, l.Addr())
	l.Close()
	return ap
}

func fastSchedule(attempts int) Schedule {
	return Schedule{Attempts: attempts, Interval: 10 * time.Millisecond, MaxInterval: 50 * time.Millisecond, AttemptTimeout: 2 * time.Second}
}

func TestSimultaneousOpenRefused(t *testing.T) {
	checkLeaks(t)
	local, remote := freePort(t), freePort(t)
	_, err := SimultaneousOpen(testCtx(t), Punch{Local: local, Remote: remote, Schedule: fastSchedule(3)})
	var oe *OpenError
	if !errors.As(err, &oe) {
		t.Fatalf("err = %v, want *OpenError", err)
	}
	if oe.Attempts != 3 || oe.Refused != 3 || oe.Canceled || oe.Reason() != "refused" {
		t.Fatalf("got %+v reason %q, want 3 refused attempts", oe, oe.Reason())
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("err does not wrap ECONNREFUSED: %v", err)
	}
	t.Logf("error text: %v", err)
}

// TestSimultaneousOpenRetriesOnRST punches at a port with no listener, which
// answers RST like a Linux NAT without a mapping, then opens a listener there:
// the punch must get through on a later attempt.
func TestSimultaneousOpenRetriesOnRST(t *testing.T) {
	checkLeaks(t)
	ctx := testCtx(t)
	local, remote := freePort(t), freePort(t)
	type result struct {
		c   *net.TCPConn
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := SimultaneousOpen(ctx, Punch{Local: local, Remote: remote, Schedule: Schedule{
			Attempts: 100, Interval: 20 * time.Millisecond, MaxInterval: 20 * time.Millisecond,
		}})
		done <- result{c, err}
	}()
	time.Sleep(200 * time.Millisecond) // several refused attempts
	l := listen(t, remote)
	acc := acceptOne(l)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.c.Close()
	sc := <-acc
	if sc == nil {
		t.Fatal("accept failed")
	}
	defer sc.Close()
	if got := addrPort(t, sc.RemoteAddr()); got != local {
		t.Fatalf("listener sees %v, want %v", got, local)
	}
	exchange(t, r.c, sc)
}

// punchOrAccept is what an agent does on an S-O candidate that also listens
// (RFC 6544 §7.2): punch and accept at once and keep whichever connection to
// the peer comes first.
func punchOrAccept(ctx context.Context, l *net.TCPListener, p Punch) (net.Conn, string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		c   net.Conn
		how string
		err error
	}
	results := make(chan result, 2)
	go func() {
		c, err := SimultaneousOpen(ctx, p)
		results <- result{c, "connected", err}
	}()
	go func() {
		stop := context.AfterFunc(ctx, func() { l.SetDeadline(time.Unix(1, 0)) })
		defer stop()
		for {
			c, err := l.Accept()
			if err != nil {
				results <- result{nil, "accepted", err}
				return
			}
			if ap, _ := netip.ParseAddrPort(c.RemoteAddr().String()); ap == p.Remote {
				results <- result{c, "accepted", nil}
				return
			}
			c.Close()
		}
	}()
	var win result
	var errs []error
	for range 2 {
		r := <-results
		switch {
		case r.err == nil && win.c == nil:
			win = r
			cancel()
		case r.err == nil:
			r.c.Close() // cannot happen on one host: one 4-tuple, one connection
		default:
			errs = append(errs, r.err)
		}
	}
	if win.c == nil {
		return nil, "", errors.Join(errs...)
	}
	return win.c, win.how, nil
}

func TestSimultaneousOpenWithListeners(t *testing.T) {
	checkLeaks(t)
	ctx := testCtx(t)
	la := listen(t, netip.AddrPortFrom(loop4, 0))
	lb := listen(t, netip.AddrPortFrom(loop4, 0))
	a, b := addrPort(t, la.Addr()), addrPort(t, lb.Addr())
	start := time.Now().Add(50 * time.Millisecond)
	type result struct {
		c   net.Conn
		how string
		err error
	}
	ra, rb := make(chan result, 1), make(chan result, 1)
	go func() {
		c, how, err := punchOrAccept(ctx, la, Punch{Local: a, Remote: b, Start: start, Schedule: fastSchedule(50)})
		ra <- result{c, how, err}
	}()
	go func() {
		c, how, err := punchOrAccept(ctx, lb, Punch{Local: b, Remote: a, Start: start, Schedule: fastSchedule(50)})
		rb <- result{c, how, err}
	}()
	x, y := <-ra, <-rb
	if x.err != nil || y.err != nil {
		t.Fatalf("a: %v; b: %v", x.err, y.err)
	}
	defer x.c.Close()
	defer y.c.Close()
	t.Logf("a %s, b %s", x.how, y.how)
	if addrPort(t, x.c.LocalAddr()) != a || addrPort(t, x.c.RemoteAddr()) != b ||
		addrPort(t, y.c.LocalAddr()) != b || addrPort(t, y.c.RemoteAddr()) != a {
		t.Fatalf("wrong 4-tuples: a %v->%v, b %v->%v", x.c.LocalAddr(), x.c.RemoteAddr(), y.c.LocalAddr(), y.c.RemoteAddr())
	}
	exchange(t, x.c, y.c)
}

func TestSimultaneousOpenCancelDuringWait(t *testing.T) {
	checkLeaks(t)
	local, remote := freePort(t), freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := SimultaneousOpen(ctx, Punch{Local: local, Remote: remote,
			Schedule: Schedule{Attempts: 5, Interval: time.Hour}})
		done <- err
	}()
	time.Sleep(100 * time.Millisecond) // first attempt refused, now waiting an hour
	cancel()
	select {
	case err := <-done:
		var oe *OpenError
		if !errors.As(err, &oe) || !oe.Canceled || oe.Reason() != "canceled" || oe.Refused != 1 {
			t.Fatalf("err = %v, want canceled OpenError after 1 refused attempt", err)
		}
		if !errors.Is(err, context.Canceled) || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("err %v should match both context.Canceled and ECONNREFUSED", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("SimultaneousOpen did not return after cancel")
	}
}

func TestSimultaneousOpenValidates(t *testing.T) {
	ctx := testCtx(t)
	remote := netip.MustParseAddrPort("127.0.0.1:9")
	if _, err := SimultaneousOpen(ctx, Punch{Local: netip.AddrPortFrom(loop4, 0), Remote: remote}); err == nil {
		t.Fatal("ephemeral local port accepted")
	}
	if _, err := SimultaneousOpen(ctx, Punch{Local: netip.MustParseAddrPort("127.0.0.1:1"), Remote: remote, PrimeTTL: 256}); err == nil {
		t.Fatal("PrimeTTL 256 accepted")
	}
	// A fatal error (address families differ) ends the punch at once.
	_, err := SimultaneousOpen(ctx, Punch{Local: netip.MustParseAddrPort("[::1]:4000"), Remote: remote})
	var oe *OpenError
	if !errors.As(err, &oe) || oe.Attempts != 1 || oe.Other != 1 || oe.Reason() != "other" {
		t.Fatalf("err = %v, want one fatal attempt", err)
	}
}
