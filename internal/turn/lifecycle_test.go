package turn

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/icetcp/icetcp/internal/lab/coturn"
	"go.uber.org/goleak"
)

// When the peer closes its connection, the client reads its last bytes and
// then the end: io.EOF from a server that relays the FIN, ECONNRESET from
// coturn, which resets the data connection instead; never
// ErrAllocationLost, since the relay still answers.
func TestPeerCloseIsNoRelayFailure(t *testing.T) {
	forEachCred(t, coturn.Config{AllowLoopbackPeers: true}, func(t *testing.T, c *coturn.Coturn, cfg Config) {
		err := peerCloses(t, cfg)
		if err != io.EOF && !errors.Is(err, syscall.ECONNRESET) || errors.Is(err, ErrAllocationLost) {
			t.Fatalf("after the peer's close: %v, want io.EOF or ECONNRESET", err)
		}
		t.Logf("coturn: after the peer's close the client reads %v", err)
	})
}

// peerCloses connects to a peer that sends its last words once the client
// is bound and closes; it returns how the client's stream ended.
func peerCloses(t *testing.T, cfg Config) error {
	a := mustAllocate(t, cfg)
	l := listenLoopback(t)
	go func() {
		if p, err := l.Accept(); err == nil {
			// coturn resets a peer connection closed before the bind: wait
			// for the client's first byte.
			p.Read(make([]byte, 1))
			p.Write([]byte("last words"))
			p.Close()
		}
	}()
	conn, err := a.Connect(testCtx(t), addrPort(l.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte("!")); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(io.LimitReader(conn, 10))
	if err != nil || string(b) != "last words" {
		t.Fatalf("read %q, %v; want the peer's last words", b, err)
	}
	_, err = conn.Read(make([]byte, 1))
	if _, again := conn.Read(make([]byte, 1)); again != err && !(errors.Is(again, io.EOF) && errors.Is(err, syscall.ECONNRESET)) {
		t.Errorf("second Read after the end: %v, first %v", again, err)
	}
	return err
}

// A server killed in the middle of a transfer: Done closes, Err says the
// allocation is lost, and the data connection ends with an error, never
// with an io.EOF that would pass for the peer's end of stream.
func TestServerKilledMidTransfer(t *testing.T) {
	forEachCred(t, coturn.Config{AllowLoopbackPeers: true}, func(t *testing.T, c *coturn.Coturn, cfg Config) {
		a := mustAllocate(t, cfg)
		l := listenLoopback(t)
		go func() {
			p, err := l.Accept()
			if err != nil {
				return
			}
			defer p.Close()
			chunk := randomBytes(t, 64<<10)
			for {
				if _, err := p.Write(chunk); err != nil {
					return
				}
			}
		}()
		conn, err := a.Connect(testCtx(t), addrPort(l.Addr()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		if _, err := io.CopyN(io.Discard, conn, 1<<20); err != nil {
			t.Fatal(err)
		}
		c.Kill()
		select {
		case <-a.Done():
		case <-time.After(20 * time.Second):
			t.Fatal("Done did not close after the server died")
		}
		if err := a.Err(); !errors.Is(err, ErrAllocationLost) {
			t.Errorf("Err = %v, want ErrAllocationLost", err)
		}
		n, err := io.Copy(io.Discard, conn)
		if !errors.Is(err, ErrAllocationLost) {
			t.Fatalf("after %d more bytes the data connection ended with %v; want ErrAllocationLost", n, err)
		}
		t.Logf("data connection after the kill: %d more bytes, then %v", n, err)
	})
}

// Close deallocates and leaves no goroutine and no socket behind, with
// connections accepted and not; coturn then resets the data connections
// still open.
func TestCloseLeavesNothing(t *testing.T) {
	forEachCred(t, coturn.Config{AllowLoopbackPeers: true}, func(t *testing.T, c *coturn.Coturn, cfg Config) {
		ctx := testCtx(t)
		l := serveLoopback(t, discard)
		settle := goleak.IgnoreCurrent()
		fds := openFDs(t)
		a, err := Allocate(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Permit(ctx, loopback); err != nil {
			t.Fatal(err)
		}
		out, err := a.Connect(ctx, addrPort(l.Addr()))
		if err != nil {
			t.Fatal(err)
		}
		// Two peers connect: one is accepted, one still waits when Close comes.
		var peers []net.Conn
		for range 2 {
			p, err := net.Dial("tcp", a.RelayedAddr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			peers = append(peers, p)
		}
		in, err := a.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		<-a.Done()
		if !errors.Is(a.Err(), net.ErrClosed) {
			t.Errorf("Err = %v, want net.ErrClosed", a.Err())
		}
		if _, err := a.Accept(ctx); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: %v", err)
		}
		if err := a.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		// The returned connections are the caller's; coturn resets them.
		for _, dc := range []net.Conn{out, in} {
			dc.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err := dc.Read(make([]byte, 1))
			if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("a data connection after Close: %v, want the server to have ended it", err)
			}
			dc.Close()
		}
		for _, p := range peers {
			p.Close()
		}
		goleak.VerifyNone(t, settle)
		if now := openFDs(t); now != fds {
			t.Errorf("%d file descriptors open before, %d after", fds, now)
		}
	})
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// Against coturn in real time: a short granted lifetime makes the client
// refresh within a second, and a nonce that goes stale every second makes
// coturn answer 438, which the client must handle on every request it
// sends, ConnectionBind on a new data connection included.
func TestRefreshAndStaleNonceWithCoturn(t *testing.T) {
	cc := coturn.Config{AllowLoopbackPeers: true, Extra: []string{"--max-allocate-lifetime=2", "--stale-nonce=1", "-v"}}
	forEachCred(t, cc, func(t *testing.T, c *coturn.Coturn, cfg Config) {
		ctx := testCtx(t)
		a := mustAllocate(t, cfg)
		// Poll coturn's log: it is another process.
		deadline := time.Now().Add(15 * time.Second)
		for i := 2; !strings.Contains(c.Log(), "refreshed") || !strings.Contains(c.Log(), "438"); i++ {
			if time.Now().After(deadline) {
				t.Fatalf("no refresh or no 438 in coturn's log after 15 s")
			}
			if err := a.Permit(ctx, netip.AddrFrom4([4]byte{127, 0, byte(i >> 8), byte(i)})); err != nil {
				t.Fatalf("Permit: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		select {
		case <-a.Done():
			t.Fatalf("allocation lost: %v", a.Err())
		default:
		}
		l := serveLoopback(t, echo)
		conn, err := a.Connect(ctx, addrPort(l.Addr()))
		if err != nil {
			t.Fatalf("Connect with a stale nonce: %v", err)
		}
		defer conn.Close()
		exchange(t, conn, conn, []byte("echo"), nil, false)
	})
}
