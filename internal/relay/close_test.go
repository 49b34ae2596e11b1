package relay

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/pion/stun/v4"

	"github.com/icetcp/icetcp/internal/stuntcp"
)

// openSockets counts this process's sockets. (Other descriptors come and
// go: the runtime keeps a pool of pipes for splice.)
func openSockets(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	n := 0
	for _, fd := range fds {
		if target, _ := os.Readlink("/proc/self/fd/" + fd.Name()); strings.HasPrefix(target, "socket:") {
			n++
		}
	}
	return n
}

// Close with everything alive: a relayed stream, a peer connection waiting
// for ConnectionBind, an idle allocation, a STUN keepalive connection and a
// connection that has not sent its first message. Close must end them all,
// leave no goroutine (checkLeaks) and no socket.
func TestCloseWithLiveAllocations(t *testing.T) {
	checkLeaks(t)
	socketsBefore := openSockets(t)
	// Registered first, so it runs after the test's other cleanups have
	// closed its own client and peer sockets.
	t.Cleanup(func() {
		if got := openSockets(t); got != socketsBefore {
			t.Errorf("%d sockets open after Close, %d before the server started", got, socketsBefore)
		}
	})

	cfg := loopbackConfig()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := addrOf(l)
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()

	streaming := newClient(t, addr, clientOpts{})
	streaming.mustAllocate(t)
	conn, peer := streaming.dialPeer(t)
	go func() {
		chunk := randomBytes(32 << 10)
		for {
			if _, err := conn.Write(chunk); err != nil {
				return
			}
		}
	}()

	waiting := newClient(t, addr, clientOpts{})
	waiting.mustAllocate(t)
	waiting.permitLoopback(t)
	pending := dialFrom(t, netip.Addr{}, waiting.relayed)
	pending.Write([]byte("early data"))

	idle := newClient(t, addr, clientOpts{})
	idle.mustAllocate(t)

	stunConn := dialFrom(t, netip.Addr{}, addr)
	if _, err := stuntcp.Binding(context.Background(), stunConn); err != nil {
		t.Fatal(err)
	}
	silent := dialFrom(t, netip.Addr{}, addr)
	silent.Write(stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw[:8])

	// The relayed pair is counted once both of pion's copies run, which a
	// loaded host can make a moment after ConnectionBind was answered.
	waitFor(t, func() bool { st := s.Stats(); return st.Allocations == 3 && st.Relayed == 1 })
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve returned %v", err)
	}
	for name, c := range map[string]net.Conn{
		"relayed peer": peer, "relayed client": conn, "pending peer": pending,
		"idle control": idle.conn, "STUN": stunConn, "silent": silent,
	} {
		if !waitClosed(c) {
			t.Errorf("%s connection still open after Close", name)
		}
	}
	for _, relayed := range []netip.AddrPort{streaming.relayed, waiting.relayed, idle.relayed} {
		if _, err := net.Dial("tcp", relayed.String()); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("relayed address %s after Close: %v, want connection refused", relayed, err)
		}
	}
	if st := s.Stats(); st.Allocations != 0 || st.Relayed != 0 {
		t.Errorf("after Close: %+v, want nothing left", st)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.Serve(l); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Close: %v", err)
	}
}
