package memnet

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/icetcp/icetcp/tcpso"
)

var (
	hostA = netip.MustParseAddr("10.0.0.1")
	hostB = netip.MustParseAddr("10.0.0.2")
)

func TestDialListenHalfClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New()
		l, err := n.Listen(t.Context(), netip.AddrPortFrom(hostB, 0), false)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		accepted := make(chan net.Conn, 1)
		go func() {
			c, err := l.Accept()
			if err != nil {
				t.Error(err)
			}
			accepted <- c
		}()
		c, err := n.Dial(t.Context(), netip.AddrPortFrom(hostA, 0), addrOf(l.Addr().(*net.TCPAddr)))
		if err != nil {
			t.Fatal(err)
		}
		s := <-accepted
		if got := s.RemoteAddr().(*net.TCPAddr).AddrPort(); got != c.LocalAddr().(*net.TCPAddr).AddrPort() {
			t.Fatalf("accepted side sees %v, dialer is %v", got, c.LocalAddr())
		}
		big := make([]byte, 3*bufferLimit) // more than the buffer: flow control must not lose bytes
		for i := range big {
			big[i] = byte(i)
		}
		go func() {
			if _, err := c.Write(big); err != nil {
				t.Error(err)
			}
			c.(*Conn).CloseWrite()
		}()
		got, err := io.ReadAll(s)
		if err != nil || len(got) != len(big) || got[12345] != big[12345] {
			t.Fatalf("read %d bytes, %v", len(got), err)
		}
		// The half-closed side still reads.
		if _, err := s.Write([]byte("back")); err != nil {
			t.Fatal(err)
		}
		s.Close()
		back, err := io.ReadAll(c)
		if err != nil || string(back) != "back" {
			t.Fatalf("read back %q, %v", back, err)
		}
		if _, err := c.Write([]byte("x")); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("write to a closed peer: %v", err)
		}
		c.Close()
		if n.Conns() != 0 {
			t.Fatalf("%d connection ends left", n.Conns())
		}
	})
}

func TestRefusedDroppedDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New()
		l, _ := n.Listen(t.Context(), netip.AddrPortFrom(hostB, 1000), false)
		defer l.Close()
		if _, err := n.Dial(t.Context(), netip.AddrPortFrom(hostA, 0), netip.AddrPortFrom(hostB, 1001)); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("closed port: %v", err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		defer cancel()
		start := time.Now()
		_, err := n.Dial(ctx, netip.AddrPortFrom(hostA, 0), netip.MustParseAddrPort("192.0.2.1:80"))
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 3*time.Second {
			t.Fatalf("unknown host: %v after %v", err, time.Since(start))
		}
		n.SetInbound(hostB, Refuse)
		if _, err := n.Dial(t.Context(), netip.AddrPortFrom(hostA, 0), netip.AddrPortFrom(hostB, 1000)); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("refusing host: %v", err)
		}
		// Read deadline on an idle connection.
		n.SetInbound(hostB, Open)
		go l.Accept()
		c, err := n.Dial(t.Context(), netip.AddrPortFrom(hostA, 0), netip.AddrPortFrom(hostB, 1000))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("deadline: %v", err)
		}
	})
}

// Two punches in flight at once cross: both get the two ends of one
// connection, even between hosts that refuse unsolicited SYNs.
func TestSimultaneousOpenCrosses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New()
		n.SetInbound(hostA, Refuse)
		n.SetInbound(hostB, Drop)
		a, b := netip.AddrPortFrom(hostA, 5000), netip.AddrPortFrom(hostB, 6000)
		type res struct {
			c   net.Conn
			err error
		}
		got := make(chan res, 2)
		go func() {
			c, _, err := n.SimultaneousOpen(t.Context(), tcpso.Punch{Local: a, Remote: b})
			got <- res{c, err}
		}()
		time.Sleep(500 * time.Microsecond) // within one SYN flight
		c, _, err := n.SimultaneousOpen(t.Context(), tcpso.Punch{Local: b, Remote: a})
		if err != nil {
			t.Fatal(err)
		}
		r := <-got
		if r.err != nil {
			t.Fatal(r.err)
		}
		go r.c.Write([]byte("hi"))
		buf := make([]byte, 2)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hi" {
			t.Fatalf("read %q, %v", buf, err)
		}
		c.Close()
		r.c.Close()
	})
}

// A punch toward a host that answers RST fails each attempt at once when
// nobody punches back, and the stall of a path swallows writes.
func TestPunchRefusedAndStall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New()
		n.SetInbound(hostB, Refuse)
		_, _, err := n.SimultaneousOpen(t.Context(), tcpso.Punch{Local: netip.AddrPortFrom(hostA, 1), Remote: netip.AddrPortFrom(hostB, 2),
			Schedule: tcpso.Schedule{Attempts: 3, Interval: 100 * time.Millisecond}})
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("want refused, got %v", err)
		}
		n.SetInbound(hostB, Open)
		l, _ := n.Listen(t.Context(), netip.AddrPortFrom(hostB, 7), false)
		defer l.Close()
		go l.Accept()
		c, err := n.Dial(t.Context(), netip.AddrPortFrom(hostA, 0), netip.AddrPortFrom(hostB, 7))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		n.Stall(hostB)
		if _, err := c.Write([]byte("into the void")); err != nil {
			t.Fatal(err)
		}
	})
}

// With Delay, writes arrive after their delay, in order, and the FIN
// behind them; the same key always gets the same event name.
func TestDelayKeepsOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New()
		var keys []string
		n.Delay = func(key string) time.Duration {
			keys = append(keys, key)
			if strings.HasPrefix(key, "write") && strings.HasSuffix(key, "#1") {
				return 50 * time.Millisecond // the first write is slow: later ones must wait for it
			}
			return time.Millisecond
		}
		l, err := n.Listen(t.Context(), netip.AddrPortFrom(hostB, 0), false)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		start := time.Now()
		c, err := n.Dial(t.Context(), netip.AddrPortFrom(hostA, 0), addrOf(l.Addr().(*net.TCPAddr)))
		if err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el != time.Millisecond {
			t.Fatalf("connect answered after %v, want the dial's delay", el)
		}
		s, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		sent := time.Now()
		for _, w := range []string{"one ", "two ", "three"} {
			if _, err := c.Write([]byte(w)); err != nil {
				t.Fatal(err)
			}
		}
		c.(*Conn).CloseWrite()
		if _, err := c.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
			t.Fatalf("write after CloseWrite: %v", err)
		}
		got, err := io.ReadAll(s)
		if err != nil || string(got) != "one two three" {
			t.Fatalf("read %q, %v", got, err)
		}
		if el := time.Since(sent); el < 50*time.Millisecond {
			t.Fatalf("everything arrived after %v, before the first write's delay", el)
		}
		want := []string{"dial 10.0.0.1:40001->10.0.0.2:40001 #1", "accept 10.0.0.1:40001->10.0.0.2:40001 #1"}
		if len(keys) < 2 || keys[0] != want[0] || keys[1] != want[1] {
			t.Fatalf("keys %q, want %q first", keys, want)
		}
		c.Close()
		s.Close()
	})
}

// A reset connection carries no FIN: an end that read the reset and
// closes must not give the other end an EOF (a clean close) in place of
// its reset. Reset marks the two directions one after the other, and the
// end woken by the first may close before the second is marked; the
// state between the two is set here by hand.
func TestResetCarriesNoFIN(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		x, y := newPair(&net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 1}, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 2})
		x.in.mu.Lock()
		x.in.reset, x.in.broken = true, true // x has read the reset, y's direction not yet marked
		x.in.mu.Unlock()
		if _, err := x.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("x read %v, want ECONNRESET", err)
		}
		x.Close()
		y.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := y.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("y read %v after x closed its reset end, before the reset reached y: want nothing (no FIN)", err)
		}
		y.Reset() // the second direction's mark arrives
		y.SetReadDeadline(time.Time{})
		if _, err := y.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("y read %v, want ECONNRESET", err)
		}
		y.Close()
	})
}
