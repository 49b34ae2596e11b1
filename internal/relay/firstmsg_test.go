package relay

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/stun/v4"

	"github.com/icetcp/icetcp/internal/stuntcp"
)

// pipeListener hands the server ends of in-memory connections to Serve,
// so the relay's timers run on synctest's clock.
type pipeListener struct {
	addr *net.TCPAddr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{
		addr: net.TCPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:3478")),
		ch:   make(chan net.Conn), done: make(chan struct{}),
	}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *pipeListener) Addr() net.Addr { return l.addr }

// dial returns the client end of a connection from src.
func (l *pipeListener) dial(src string) net.Conn {
	client, server := net.Pipe()
	l.ch <- addrConn{server, l.addr, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(src))}
	return client
}

// addrConn gives a pipe TCP addresses.
type addrConn struct {
	net.Conn
	local, remote net.Addr
}

func (c addrConn) LocalAddr() net.Addr  { return c.local }
func (c addrConn) RemoteAddr() net.Addr { return c.remote }

// closedSignal reports when the server closes c (the client reads EOF).
func closedSignal(c net.Conn) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		io.Copy(io.Discard, c)
		close(done)
	}()
	return done
}

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestFirstMessageDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 10 * time.Second
		const idle = time.Minute
		cfg := baseConfig()
		cfg.FirstMessageTimeout = timeout
		cfg.IdleTimeout = idle
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		l := newPipeListener()
		served := make(chan error, 1)
		go func() { served <- s.Serve(l) }()

		silent := l.dial("198.51.100.1:1000")
		silentClosed := closedSignal(silent)
		slow := l.dial("198.51.100.2:1000") // half a header, then nothing
		go slow.Write(stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw[:10])
		slowClosed := closedSignal(slow)
		garbage := l.dial("198.51.100.3:1000")
		go garbage.Write([]byte("GET / HTTP/1.1\r\nHost: relay.example\r\n\r\n"))
		garbageClosed := closedSignal(garbage)

		// A Binding request in time is answered by the STUN server, and the
		// connection stays for keepalives.
		stunConn := l.dial("198.51.100.4:4444")
		for range 2 {
			got, err := stuntcp.Binding(context.Background(), stunConn)
			if err != nil || got != netip.MustParseAddrPort("198.51.100.4:4444") {
				t.Fatalf("Binding: %v %v", got, err)
			}
		}
		// A TURN connection that got its 401 and then says nothing is closed
		// after IdleTimeout.
		turnConn := l.dial("198.51.100.5:5555")
		req := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest), tcpTransport, stun.Fingerprint)
		r := &rawTURN{t: t, conn: turnConn}
		go turnConn.Write(req.Raw)
		if res := r.read(); code(res) != 401 {
			t.Fatalf("anonymous Allocate: %v", res)
		}
		start := time.Now()
		turnClosed := closedSignal(turnConn)

		synctest.Wait()
		if !isDone(garbageClosed) {
			t.Fatal("garbage not closed at once")
		}
		time.Sleep(timeout - time.Since(start) - time.Nanosecond)
		synctest.Wait()
		if isDone(silentClosed) || isDone(slowClosed) {
			t.Fatal("closed before FirstMessageTimeout")
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if !isDone(silentClosed) || !isDone(slowClosed) {
			t.Fatal("silent or slow connection open after FirstMessageTimeout")
		}
		if isDone(turnClosed) {
			t.Fatal("TURN connection closed before IdleTimeout")
		}
		time.Sleep(idle - time.Since(start))
		synctest.Wait()
		if !isDone(turnClosed) {
			t.Fatal("TURN connection without allocation open after IdleTimeout")
		}
		st := s.Stats().Refused
		if st.FirstMessageTimeout != 2 || st.BadFirstMessage != 1 {
			t.Fatalf("refusals %+v, want 2 first-message timeouts and 1 bad first message", st)
		}
		if _, err := stuntcp.Binding(context.Background(), stunConn); err != nil {
			t.Fatalf("keepalive Binding after a minute: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Fatalf("Serve: %v", err)
		}
	})
}
