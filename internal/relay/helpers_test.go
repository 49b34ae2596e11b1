package relay

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun/v4"
	"github.com/pion/transport/v5"
	turn "github.com/pion/turn/v5"
	"go.uber.org/goleak"

	"github.com/icetcp/icetcp/internal/testnet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// checkLeaks fails the test if a goroutine it started outlives it. Call it
// first in a top-level test.
func checkLeaks(t *testing.T) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

func quietLogs() logging.LoggerFactory {
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelDisabled
	if os.Getenv("RELAY_TEST_LOG") != "" {
		lf.DefaultLogLevel = logging.LogLevelDebug
	}
	return lf
}

const testUser, testPass = "alice", "secret"

// testServer is a relay on a loopback listener for one test.
type testServer struct {
	*Server
	addr    netip.AddrPort
	deleted chan string // userIDs of deleted allocations, in order
}

func baseConfig() Config {
	return Config{Users: map[string]string{testUser: testPass}, LoggerFactory: quietLogs()}
}

// startServer runs a relay with cfg on 127.0.0.1 until the test ends (its
// Close must succeed and Serve must return ErrServerClosed).
func startServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, cfg, l)
}

// serveOn runs a relay with cfg on l until the test ends.
func serveOn(t *testing.T, cfg Config, l net.Listener) *testServer {
	t.Helper()
	return serveWith(t, cfg, l, testHooks{})
}

// serveWith is serveOn with hooks (allocationDeleted is the testServer's).
func serveWith(t *testing.T, cfg Config, l net.Listener, hooks testHooks) *testServer {
	t.Helper()
	if cfg.LoggerFactory == nil {
		cfg.LoggerFactory = quietLogs()
	}
	ts := &testServer{deleted: make(chan string, 1000), addr: addrOf(l)}
	hooks.allocationDeleted = func(u string) { ts.deleted <- u }
	s, err := newServer(cfg, hooks)
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	ts.Server = s
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return ts
}

// waitDeleted waits for the server to delete n allocations.
func (ts *testServer) waitDeleted(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-ts.deleted:
		case <-time.After(10 * time.Second):
			t.Fatalf("allocation not deleted; stats %+v", ts.Stats())
		}
	}
}

// turnClient is pion's v5 client over one TCP (or TLS) control connection.
type turnClient struct {
	*turn.Client
	conn  net.Conn
	alloc interface {
		transport.TCPListener
		transport.Dialer
	}
	relayed netip.AddrPort
}

type clientOpts struct {
	user, pass string
	local      netip.Addr // source IP; zero: any
	conn       net.Conn   // an existing control connection (TLS)
}

// newClient connects a pion client to addr; the test's end closes it.
func newClient(t *testing.T, addr netip.AddrPort, o clientOpts) *turnClient {
	t.Helper()
	if o.user == "" {
		o.user, o.pass = testUser, testPass
	}
	conn := o.conn
	if conn == nil {
		conn = dialFrom(t, o.local, addr)
	}
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: addr.String(),
		TURNServerAddr: addr.String(),
		Conn:           turn.NewSTUNConn(conn),
		Username:       o.user,
		Password:       o.pass,
		Realm:          DefaultRealm,
		LoggerFactory:  quietLogs(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	tc := &turnClient{Client: c, conn: conn}
	t.Cleanup(tc.close)
	return tc
}

func (tc *turnClient) close() {
	if tc.alloc != nil {
		tc.alloc.Close()
	}
	tc.Client.Close()
	tc.conn.Close()
}

// allocate makes the TCP allocation, or returns pion's error.
func (tc *turnClient) allocate() error {
	a, err := tc.AllocateTCP()
	if err != nil {
		return err
	}
	tc.alloc = a
	tc.relayed = netip.MustParseAddrPort(a.Addr().String())
	return nil
}

func (tc *turnClient) mustAllocate(t *testing.T) {
	t.Helper()
	if err := tc.allocate(); err != nil {
		t.Fatalf("allocate: %v", err)
	}
}

// acceptRelayed accepts the allocation's next relayed connection in the
// background; the channel closes without a value if that fails.
func (tc *turnClient) acceptRelayed() <-chan net.Conn {
	ch := make(chan net.Conn, 1)
	go func() {
		conn, err := tc.alloc.Accept()
		if err == nil {
			ch <- conn
		}
		close(ch)
	}()
	return ch
}

// twoAllocations returns two clients with an allocation each.
func twoAllocations(t *testing.T, addr netip.AddrPort) (a, b *turnClient) {
	t.Helper()
	a, b = newClient(t, addr, clientOpts{}), newClient(t, addr, clientOpts{})
	a.mustAllocate(t)
	b.mustAllocate(t)
	return a, b
}

// connectPair has a connect to b's relayed address (b permits a first) and
// returns both ends; they close when the test ends.
func connectPair(t *testing.T, a, b *turnClient) (ac, bc net.Conn) {
	t.Helper()
	if err := b.CreatePermission(net.TCPAddrFromAddrPort(a.relayed)); err != nil {
		t.Fatal(err)
	}
	accepted := b.acceptRelayed()
	ac, err := a.alloc.Dial("tcp4", b.relayed.String())
	if err != nil {
		t.Fatalf("connect to %v: %v", b.relayed, err)
	}
	t.Cleanup(func() { ac.Close() })
	bc = recvConn(t, accepted)
	t.Cleanup(func() { bc.Close() })
	if got := bc.RemoteAddr().String(); got != a.relayed.String() {
		t.Errorf("the ConnectionAttempt names %s, want the connecting allocation's relayed address %s", got, a.relayed)
	}
	return ac, bc
}

// dialPeer connects through the relay to a new plain TCP peer on
// 127.0.0.1 and returns the client's and the peer's ends.
func (tc *turnClient) dialPeer(t *testing.T) (conn, peer net.Conn) {
	t.Helper()
	l := peerListener(t, "127.0.0.1")
	accepted := acceptOne(t, l)
	conn, err := tc.alloc.Dial("tcp4", l.Addr().String())
	if err != nil {
		t.Fatalf("connect through the relay to %v: %v", l.Addr(), err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, recvConn(t, accepted)
}

// permitLoopback lets peers on 127.0.0.1 connect to the allocation.
func (tc *turnClient) permitLoopback(t *testing.T) {
	t.Helper()
	if err := tc.CreatePermission(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
		t.Fatalf("CreatePermission 127.0.0.1: %v", err)
	}
}

// acceptPeer has a plain TCP peer on 127.0.0.1 connect to the relayed
// address (after permitLoopback) and returns the peer's and the client's
// ends.
func (tc *turnClient) acceptPeer(t *testing.T) (peer, conn net.Conn) {
	t.Helper()
	accepted := tc.acceptRelayed()
	peer = dialFrom(t, netip.Addr{}, tc.relayed)
	conn = recvConn(t, accepted)
	t.Cleanup(func() { conn.Close() })
	return peer, conn
}

// turnCode is the TURN error code in err, or 0.
func turnCode(err error) int {
	var te *stun.TurnError
	if errors.As(err, &te) {
		return int(te.ErrorCodeAttr.Code)
	}
	return 0
}

func dialFrom(t testing.TB, local netip.Addr, to netip.AddrPort) *net.TCPConn {
	t.Helper()
	src := ""
	if local.IsValid() {
		src = local.String()
	}
	c, err := testnet.Dialer(src).Dial("tcp", to.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// peerListener is a plain TCP peer on ip.
func peerListener(t *testing.T, ip string) *net.TCPListener {
	t.Helper()
	l, err := net.Listen("tcp4", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l.(*net.TCPListener)
}

func addrOf(l net.Listener) netip.AddrPort { return netip.MustParseAddrPort(l.Addr().String()) }

func acceptOne(t *testing.T, l *net.TCPListener) <-chan net.Conn {
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(ch)
			return
		}
		t.Cleanup(func() { c.Close() })
		ch <- c
	}()
	return ch
}

func recvConn(t *testing.T, ch <-chan net.Conn) net.Conn {
	t.Helper()
	select {
	case c, ok := <-ch:
		if !ok {
			t.Fatal("accept failed")
		}
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no connection within 10s")
	}
	return nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// exchange checks a relayed connection both ways with half-close: a sends
// fromA and closes its write side; b reads to EOF, only then sends fromB
// and closes; a reads to EOF. Through a relay that closes both sides on
// the first FIN, b's answer would be lost.
func exchange(t *testing.T, a, b net.Conn, fromA, fromB []byte) {
	t.Helper()
	type result struct {
		got []byte
		err error
	}
	bDone := make(chan result, 1)
	go func() {
		got, err := io.ReadAll(b)
		if err == nil {
			_, err = b.Write(fromB)
		}
		if err == nil {
			err = closeWrite(b)
		}
		bDone <- result{got, err}
	}()
	aDone := make(chan result, 1)
	go func() {
		got, err := io.ReadAll(a)
		aDone <- result{got, err}
	}()
	if _, err := a.Write(fromA); err != nil {
		t.Fatalf("a write: %v", err)
	}
	if err := closeWrite(a); err != nil {
		t.Fatalf("a close write: %v", err)
	}
	for _, w := range []struct {
		name string
		ch   chan result
		want []byte
	}{{"b", bDone, fromA}, {"a", aDone, fromB}} {
		select {
		case r := <-w.ch:
			if r.err != nil {
				t.Fatalf("%s: %v", w.name, r.err)
			}
			if sha256.Sum256(r.got) != sha256.Sum256(w.want) {
				t.Fatalf("%s received %d bytes that differ from the %d sent (SHA-256)", w.name, len(r.got), len(w.want))
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: exchange did not finish", w.name)
		}
	}
}

func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("no CloseWrite")
}

// waitClosed reports whether the other end closed c (EOF or reset) within
// a few seconds, discarding what it sends.
func waitClosed(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, c)
	return !errors.Is(err, os.ErrDeadlineExceeded)
}

// refused reports whether a connection from local to addr is turned away:
// reset during connect (a fast RST can beat connect's return on loopback),
// or closed by the server within a few seconds.
func refused(t *testing.T, local netip.Addr, addr netip.AddrPort) bool {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if local.IsValid() {
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0))
	}
	c, err := d.Dial("tcp", addr.String())
	if err != nil {
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("dial %s: %v", addr, err)
		}
		return true
	}
	defer c.Close()
	return waitClosed(c)
}
