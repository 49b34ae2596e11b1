package agent

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/icetcp/icetcp/candidate"
)

// wrapped stands for a relayed or TLS connection: the TCP socket is behind
// NetConn.
type wrapped struct{ net.Conn }

func (w wrapped) NetConn() net.Conn { return w.Conn }

// loopbackTCP returns both ends of a TCP connection on loopback, closed
// when the test ends.
func loopbackTCP(t *testing.T) (dialed, accepted *net.TCPConn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	peer, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	return c.(*net.TCPConn), peer.(*net.TCPConn)
}

// Once consent stops toward a standard agent, data the peer does not
// acknowledge for ConsentTimeout ends the connection (TCP_USER_TIMEOUT),
// also through a wrapper.
func TestUserTimeoutSet(t *testing.T) {
	c, _ := loopbackTCP(t)
	setUserTimeout(wrapped{c}, 30*time.Second)
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var gerr error
	rc.Control(func(fd uintptr) { got, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT) })
	if gerr != nil || got != 30000 {
		t.Fatalf("TCP_USER_TIMEOUT %d ms (%v), want 30000", got, gerr)
	}
}

// A peer's FIN and a reset whose ECONNRESET a write took both end the
// reader with EOF; only the reset makes the path one a session survives
// (session.movable), and the kernel's TCP state tells them apart.
func TestSawReset(t *testing.T) {
	for _, reset := range []bool{false, true} {
		c, peer := loopbackTCP(t)
		if reset {
			peer.SetLinger(0) // Close sends RST
		}
		peer.Close()
		if reset {
			// The writer takes the reset's error (on loopback the RST is
			// in before Close returns; the loop only guards the order).
			var werr error
			for i := 0; werr == nil && i < 1000; i++ {
				_, werr = c.Write([]byte("x"))
			}
			if !errors.Is(werr, unix.ECONNRESET) {
				t.Fatalf("write after the peer's reset: %v, want ECONNRESET", werr)
			}
		}
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("reset %v: read %v, want io.EOF", reset, err)
		}
		pc := newPConn(1, wrapped{c}, nil, false, candidate.Candidate{}, func(f func()) { go f() }, t.Logf)
		if got := pc.sawReset(); got != reset {
			t.Fatalf("reset %v: sawReset %v", reset, got)
		}
	}
}
