package agent

import (
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// wrapped stands for a relayed or TLS connection: the TCP socket is behind
// NetConn.
type wrapped struct{ net.Conn }

func (w wrapped) NetConn() net.Conn { return w.Conn }

// Once consent stops toward a standard agent, data the peer does not
// acknowledge for ConsentTimeout ends the connection (TCP_USER_TIMEOUT),
// also through a wrapper.
func TestUserTimeoutSet(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	setUserTimeout(wrapped{c}, 30*time.Second)
	rc, err := c.(*net.TCPConn).SyscallConn()
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
