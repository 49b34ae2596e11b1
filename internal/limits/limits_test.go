package limits

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/icetcp/icetcp/internal/testnet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSourceKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":              "192.0.2.7/32",
		"::ffff:192.0.2.7":       "192.0.2.7/32",
		"2001:db8:1:2:3:4:5:6":   "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::abc": "2001:db8:1:2::/64",
		"fe80::1%eth0":           "fe80::/64",
	} {
		if got := SourceKey(netip.MustParseAddr(in)); got.String() != want {
			t.Errorf("SourceKey(%s) = %s, want %s", in, got, want)
		}
	}
	if got := SourceKey(netip.Addr{}); got.IsValid() {
		t.Errorf("SourceKey(zero) = %v, want the zero prefix", got)
	}
}

func TestCounter(t *testing.T) {
	c := NewCounter(3, 2)
	a, a2 := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::ffff:2")
	b, d := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	for _, ip := range []netip.Addr{a, a2} {
		if err := c.Take(ip); err != nil {
			t.Fatal(err)
		}
	}
	// a and a2 share a /64: its two slots are gone.
	if err := c.Take(netip.MustParseAddr("2001:db8::3")); !errors.Is(err, ErrPerSource) {
		t.Fatalf("third from one /64: %v, want ErrPerSource", err)
	}
	if err := c.Take(b); err != nil {
		t.Fatal(err)
	}
	if err := c.Take(d); !errors.Is(err, ErrTotal) {
		t.Fatalf("fourth in all: %v, want ErrTotal", err)
	}
	c.Give(a)
	c.Give(a) // only one was taken for that /64 now: no underflow below zero
	c.Give(a)
	if got := c.Open(); got != 1 {
		t.Fatalf("open %d after giving the /64's slots back, want 1", got)
	}
	if err := c.Take(d); err != nil {
		t.Fatal(err)
	}
}

// TestRefusalLogPace: the first refusal of a reason is logged at once, the
// rest are summed into one line per window, reasons are independent, and
// Close reports what is still summed.
func TestRefusalLogPace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var got []string
		r := NewRefusalLog(func(f string, args ...any) {
			mu.Lock()
			got = append(got, fmt.Sprintf(f, args...))
			mu.Unlock()
		}, 10*time.Second)
		lines := func() []string {
			mu.Lock()
			defer mu.Unlock()
			return append([]string(nil), got...)
		}
		for i := range 1000 {
			r.Note(ReasonPerSource, "conn "+string(rune('a'+i%26)))
		}
		r.Note(ReasonTotal, "other")
		if n := len(lines()); n != 2 {
			t.Fatalf("%d lines after a burst, want 2 (one per reason): %q", n, lines())
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if l := lines(); len(l) != 3 || !strings.Contains(l[2], "(per-source): 999 more in the last 10s") {
			t.Fatalf("after the window: %q", l)
		}
		// A continuing flood stays summed: one line per window.
		for range 5 {
			r.Note(ReasonPerSource, "again")
		}
		if len(lines()) != 3 {
			t.Fatalf("refusals right after a summary were logged singly: %q", lines())
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if l := lines(); len(l) != 4 || !strings.Contains(l[3], "5 more") {
			t.Fatalf("second window: %q", l)
		}
		// A quiet window ends the summing: the next refusal is logged at once.
		time.Sleep(30 * time.Second)
		synctest.Wait()
		r.Note(ReasonPerSource, "late")
		r.Note(ReasonPerSource, "later")
		if l := lines(); len(l) != 5 || !strings.Contains(l[4], "late") {
			t.Fatalf("after a quiet window: %q", l)
		}
		r.Close()
		if l := lines(); len(l) != 6 || !strings.Contains(l[5], "1 more before close") {
			t.Fatalf("close: %q", l)
		}
		r.Note(ReasonPerSource, "after close")
		r.Close()
		if len(lines()) != 6 {
			t.Fatal("logged after close")
		}
	})
}

// On a busy host a window's timer can run late: the refusal that finds
// the window over takes what was summed, and the late timer run logs
// nothing, so a window never gets two lines.
func TestRefusalLogLateTimer(t *testing.T) {
	var mu sync.Mutex
	var got []string
	r := NewRefusalLog(func(f string, args ...any) {
		mu.Lock()
		got = append(got, fmt.Sprintf(f, args...))
		mu.Unlock()
	}, time.Hour)
	defer r.Close()
	r.Note(ReasonTotal, "a")
	r.Note(ReasonTotal, "b")
	r.mu.Lock()
	r.reasons[ReasonTotal].until = time.Now().Add(-time.Millisecond) // over, its timer not run yet
	r.mu.Unlock()
	r.Note(ReasonTotal, "c")
	r.flush(ReasonTotal) // the late run
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 || !strings.Contains(got[1], "2 more") || !strings.Contains(got[1], "latest: c") {
		t.Fatalf("lines %q: want the first refusal, then one line with the 2 that followed", got)
	}
}

// A flood of silent connections from one source holds at most its share;
// the rest are reset before anything reads them, another source is
// admitted, and closing a connection frees its slot.
func TestListenerCapsOneSource(t *testing.T) {
	raw, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const perSource = 4
	l := NewListener(raw, NewCounter(100, perSource), nil)
	defer l.Close()
	admitted := make(chan net.Conn, 100)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(admitted)
				return
			}
			admitted <- c
		}
	}()
	dial := func(from string) net.Conn {
		c, err := testnet.Dialer(from).Dial("tcp4", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	var held []net.Conn
	for range perSource {
		dial("127.0.0.2")
		held = append(held, recv(t, admitted))
	}
	// Refused: reset at once, during connect (a fast RST can beat its
	// return on loopback) or right after; an admitted connection would
	// stay silent until the deadline.
	for i := range 3 {
		c, err := testnet.Dialer("127.0.0.2").Dial("tcp4", raw.Addr().String())
		if err != nil {
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Fatal(err)
			}
			continue
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = c.Read(make([]byte, 1))
		c.Close()
		if isTimeout(err) {
			t.Fatalf("connection %d over the cap was not refused", i+1)
		}
	}
	dial("127.0.0.3")
	recv(t, admitted)
	if got := l.Refused()[ReasonPerSource]; got != 3 {
		t.Fatalf("per-source refusals %d, want 3", got)
	}
	held[0].Close()
	held[0].Close()
	dial("127.0.0.2")
	recv(t, admitted)
	if got := l.Open(); got != perSource+1 {
		t.Fatalf("open %d, want %d", got, perSource+1)
	}
	for _, c := range held[1:] {
		c.Close()
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func recv(t *testing.T, ch <-chan net.Conn) net.Conn {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatal("listener closed")
		}
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no connection admitted within 10s")
	}
	return nil
}
