package rendezvous

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/icetcp/icetcp/internal/testnet"
)

// serveOn runs s.Serve on a loopback listener until the test ends and
// returns the listener's address.
func serveOn(t *testing.T, s *Server) string {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l, nil) }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
		}
	})
	return l.Addr().String()
}

func dialFrom(t *testing.T, from, addr string) (net.Conn, error) {
	t.Helper()
	c, err := testnet.Dialer(from).Dial("tcp4", addr)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// closedWithin reports whether the server ends c (EOF or reset) within d.
func closedWithin(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	for {
		if _, err := c.Read(buf); err != nil {
			var ne net.Error
			return !(errors.As(err, &ne) && ne.Timeout())
		}
	}
}

// Issue 14, finding 1: connections that sent a plain GET and then sat
// idle stayed open for good (3,000 of them: 13 → 77 MB and 3,010 fds), and
// connections that send nothing were counted nowhere. Under Serve, a GET
// is answered 426 and its connection closed; silent connections beyond
// the per-source limit are reset at accept, the admitted ones are closed
// at the request deadline, and another source joins meanwhile.
func TestServeClosesIdleAndCountsBeforeUpgrade(t *testing.T) {
	checkGoroutines(t)
	const perSource, gets, silent = 8, 200, 20
	const deadline = 2 * time.Second
	s := &Server{MaxConnsPerSource: perSource, JoinTimeout: deadline}
	addr := serveOn(t, s)

	// Plain GETs, all at once, then idle.
	var conns []net.Conn
	for range gets {
		c, err := dialFrom(t, "127.0.0.2", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: rendezvous\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUpgradeRequired || !resp.Close {
			t.Fatalf("plain GET answered %d (close %v), want 426 and the connection closed", resp.StatusCode, resp.Close)
		}
		conns = append(conns, c)
	}
	for i, c := range conns {
		// Far less than the request deadline: the close comes with the answer.
		if !closedWithin(c, deadline/2) {
			t.Fatalf("connection %d of %d that sent a plain GET is still open", i+1, gets)
		}
	}

	// Silent connections: perSource admitted, the rest reset at accept.
	var held []net.Conn
	resets := 0
	for range silent {
		c, err := dialFrom(t, "127.0.0.3", addr)
		if err != nil {
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Fatal(err)
			}
			resets++ // the RST beat connect's return
			continue
		}
		held = append(held, c)
	}
	// A refused one is reset at once; an admitted one stays silent until
	// the request deadline. Wait for the server to have refused the rest,
	// then look at all of them at once.
	waitFor(t, func() bool { return s.Stats().Refused[ReasonTooManyConnsPerSource] >= uint64(silent-perSource) })
	closed := make([]chan bool, len(held))
	for i, c := range held {
		closed[i] = make(chan bool, 1)
		go func() { closed[i] <- closedWithin(c, deadline/2) }()
	}
	var open []net.Conn
	for i, c := range held {
		if <-closed[i] {
			resets++
		} else {
			open = append(open, c)
		}
	}
	if len(open) != perSource || resets != silent-perSource {
		t.Fatalf("%d silent connections held and %d reset, want %d and %d", len(open), resets, perSource, silent-perSource)
	}
	// Another source is served while they are held.
	a, b := dial(t, "ws://"+addr, "r"), dial(t, "ws://"+addr, "r")
	a.Close()
	b.Close()
	for i, c := range open {
		if !closedWithin(c, 10*deadline) {
			t.Fatalf("silent connection %d still open after the request deadline", i+1)
		}
	}
	st := s.Stats()
	if st.Refused[ReasonNotWebSocket] != gets || st.Refused[ReasonTooManyConnsPerSource] != silent-perSource {
		t.Fatalf("refusals %v: want %d not-websocket and %d per-source", st.Refused, gets, silent-perSource)
	}
}

// waitFor polls cond until it holds, for at most 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for start := time.Now(); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatal("condition not met within 10s")
		}
	}
}
