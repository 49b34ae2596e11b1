//go:build unix

package tcpso

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
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

// fastSchedule has no rush: every refused SYN ends its attempt.
func fastSchedule(attempts int) Schedule {
	return Schedule{Attempts: attempts, Interval: 10 * time.Millisecond, MaxInterval: 50 * time.Millisecond,
		AttemptTimeout: 2 * time.Second, Rush: -1}
}

// signal returns an OnTry hook that sends every Try to a buffered channel
// without blocking the punch.
func signal() (func(Try), <-chan Try) {
	ch := make(chan Try, 1000)
	return func(t Try) {
		select {
		case ch <- t:
		default:
		}
	}, ch
}

func TestSimultaneousOpenRefused(t *testing.T) {
	checkLeaks(t)
	local, remote := freePort(t), freePort(t)
	_, err := SimultaneousOpen(testCtx(t), Punch{Local: local, Remote: remote, Schedule: fastSchedule(3)})
	var oe *OpenError
	if !errors.As(err, &oe) {
		t.Fatalf("err = %v, want *OpenError", err)
	}
	if oe.Attempts != 3 || oe.SYNs != 3 || oe.Refused != 3 || oe.Canceled || oe.Reason() != "refused" {
		t.Fatalf("got %+v reason %q, want 3 refused attempts", oe, oe.Reason())
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("err does not wrap ECONNREFUSED: %v", err)
	}
	t.Logf("error text: %v", err)
}

// TestSimultaneousOpenRush: refused SYNs are answered with new ones at once,
// inside one attempt.
func TestSimultaneousOpenRush(t *testing.T) {
	checkLeaks(t)
	local, remote := freePort(t), freePort(t)
	_, err := SimultaneousOpen(testCtx(t), Punch{Local: local, Remote: remote,
		Schedule: Schedule{Attempts: 1, RushSYNs: 5, Rush: time.Hour}})
	var oe *OpenError
	if !errors.As(err, &oe) || oe.Attempts != 1 || oe.SYNs != 5 || oe.Refused != 5 {
		t.Fatalf("err = %v, want one attempt of 5 refused SYNs", err)
	}
	for _, tr := range oe.Tries {
		if tr.Attempt != 1 || tr.Outcome != OutcomeRefused {
			t.Fatalf("try %+v", tr)
		}
	}
}

// TestSimultaneousOpenRetriesOnRST punches at a port with no listener, which
// answers RST like a Linux NAT without a mapping, then opens a listener there:
// the punch must get through on a later attempt.
func TestSimultaneousOpenRetriesOnRST(t *testing.T) {
	checkLeaks(t)
	ctx := testCtx(t)
	local, remote := freePort(t), freePort(t)
	type result struct {
		r   Result
		err error
	}
	onTry, tries := signal()
	done := make(chan result, 1)
	go func() {
		r, err := Open(ctx, Punch{Local: local, Remote: remote, OnTry: onTry, Schedule: Schedule{
			Attempts: 1000, Interval: 20 * time.Millisecond, MaxInterval: 20 * time.Millisecond, Rush: -1,
		}})
		done <- result{r, err}
	}()
	for range 2 { // two refused attempts, then the "far NAT" opens
		if tr := <-tries; tr.Outcome != OutcomeRefused {
			t.Fatalf("try %+v, want refused", tr)
		}
	}
	l := listen(t, remote)
	acc := acceptOne(l)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.r.Conn.Close()
	if r.r.Attempts < 3 || r.r.Accepted {
		t.Fatalf("result %+v, want a connect after at least 2 refusals", r.r)
	}
	sc := <-acc
	if sc == nil {
		t.Fatal("accept failed")
	}
	defer sc.Close()
	if got := addrPort(t, sc.RemoteAddr()); got != local {
		t.Fatalf("listener sees %v, want %v", got, local)
	}
	exchange(t, r.r.Conn, sc)
}

// acceptLoop runs what an agent runs on an S-O candidate's listener:
// Accept until it is closed; connections a punch claims never show up here.
func acceptLoop(t *testing.T, l *Listener) <-chan net.Conn {
	t.Helper()
	ch := make(chan net.Conn, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			ch <- c
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		close(ch)
		for c := range ch {
			c.Close()
		}
	})
	return ch
}

func shared(t *testing.T) (*Listener, netip.AddrPort) {
	t.Helper()
	l, err := ListenConfig{Shared: true}.Listen(testCtx(t), netip.AddrPortFrom(loop4, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, addrPort(t, l.Addr())
}

// TestSimultaneousOpenWithListeners: two agents that punch from their
// listeners' ports, at once, each with an accept loop. Whichever way the
// connection forms (crossing SYNs, or one side's listener accepting), both
// punches end with the one connection between them.
func TestSimultaneousOpenWithListeners(t *testing.T) {
	checkLeaks(t)
	ctx := testCtx(t)
	la, a := shared(t)
	lb, b := shared(t)
	strayA, strayB := acceptLoop(t, la), acceptLoop(t, lb)
	start := time.Now().Add(50 * time.Millisecond)
	type result struct {
		r   Result
		err error
	}
	ra, rb := make(chan result, 1), make(chan result, 1)
	go func() {
		r, err := Open(ctx, Punch{Local: a, Remote: b, Start: start, Listener: la, Schedule: fastSchedule(50)})
		ra <- result{r, err}
	}()
	go func() {
		r, err := Open(ctx, Punch{Local: b, Remote: a, Start: start, Listener: lb, Schedule: fastSchedule(50)})
		rb <- result{r, err}
	}()
	x, y := <-ra, <-rb
	if x.err != nil || y.err != nil {
		t.Fatalf("a: %v; b: %v", x.err, y.err)
	}
	defer x.r.Conn.Close()
	defer y.r.Conn.Close()
	t.Logf("a accepted=%v attempts=%d, b accepted=%v attempts=%d", x.r.Accepted, x.r.Attempts, y.r.Accepted, y.r.Attempts)
	xc, yc := x.r.Conn, y.r.Conn
	if addrPort(t, xc.LocalAddr()) != a || addrPort(t, xc.RemoteAddr()) != b ||
		addrPort(t, yc.LocalAddr()) != b || addrPort(t, yc.RemoteAddr()) != a {
		t.Fatalf("wrong 4-tuples: a %v->%v, b %v->%v", xc.LocalAddr(), xc.RemoteAddr(), yc.LocalAddr(), yc.RemoteAddr())
	}
	exchange(t, xc, yc)
	select {
	case c := <-strayA:
		t.Errorf("a's accept loop got %v, a punch's connection", c.RemoteAddr())
	case c := <-strayB:
		t.Errorf("b's accept loop got %v, a punch's connection", c.RemoteAddr())
	default:
	}
}

// TestListenerClaim: the peer's SYN reaches our listener while our punch
// backs off (a public peer, or a NAT that lets it in): the punch ends with
// that connection, and the accept loop never sees it; other connections
// still reach the accept loop.
func TestListenerClaim(t *testing.T) {
	checkLeaks(t)
	ctx := testCtx(t)
	l, local := shared(t)
	other := acceptLoop(t, l)
	remote := freePort(t)
	onTry, tries := signal()
	type result struct {
		r   Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := Open(ctx, Punch{Local: local, Remote: remote, Listener: l, OnTry: onTry,
			Schedule: Schedule{Rush: -1, Interval: time.Hour}})
		done <- result{r, err}
	}()
	if tr := <-tries; tr.Outcome != OutcomeRefused {
		t.Fatalf("first SYN: %+v, want refused", tr)
	}
	// The punch now waits an hour. The "peer" connects from remote.
	peer, err := Dial(ctx, remote, local)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.r.Conn.Close()
	if !r.r.Accepted || r.r.Attempts != 1 || r.r.SYNs != 1 || addrPort(t, r.r.Conn.RemoteAddr()) != remote {
		t.Fatalf("result %+v, want the accepted connection from %v", r.r, remote)
	}
	exchange(t, peer, r.r.Conn)

	// A connection from elsewhere goes to the accept loop, and a punch
	// cannot use a listener on another port.
	c, err := Dial(ctx, netip.AddrPortFrom(loop4, 0), local)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if sc := <-other; addrPort(t, sc.RemoteAddr()) != addrPort(t, c.LocalAddr()) {
		t.Fatalf("accept loop got %v, want %v", sc.RemoteAddr(), c.LocalAddr())
	}
	if _, err := Open(ctx, Punch{Local: netip.AddrPortFrom(loop4, local.Port()+1), Remote: remote, Listener: l}); err == nil ||
		!strings.Contains(err.Error(), "not on the punch's port") {
		t.Errorf("listener on another port accepted: %v", err)
	}
}

func TestSimultaneousOpenCancelDuringWait(t *testing.T) {
	checkLeaks(t)
	local, remote := freePort(t), freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	onTry, tries := signal()
	done := make(chan error, 1)
	go func() {
		_, err := SimultaneousOpen(ctx, Punch{Local: local, Remote: remote, OnTry: onTry,
			Schedule: Schedule{Attempts: 5, Interval: time.Hour, Rush: -1}})
		done <- err
	}()
	if tr := <-tries; tr.Outcome != OutcomeRefused { // first SYN refused, now waiting an hour
		t.Fatalf("first SYN: %+v", tr)
	}
	cancel()
	err := <-done
	var oe *OpenError
	if !errors.As(err, &oe) || !oe.Canceled || oe.Reason() != "canceled" || oe.Refused != 1 || oe.SYNs != 1 {
		t.Fatalf("err = %v, want canceled OpenError after 1 refused attempt", err)
	}
	if !errors.Is(err, context.Canceled) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("err %v should match both context.Canceled and ECONNREFUSED", err)
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
