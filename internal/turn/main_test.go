package turn

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/icetcp/icetcp/internal/lab/coturn"
	"github.com/pion/logging"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	testUser     = "alice"
	testPassword = "wonderland"
	testSecret   = "north-wind"
)

// credMode is one way to authenticate to coturn: every test that
// allocates runs with both.
type credMode struct {
	name string
	// server completes the coturn configuration.
	server func(*coturn.Config)
	// client returns the client configuration for a server.
	client func(c *coturn.Coturn) Config
}

var credModes = []credMode{
	{
		name:   "long-term",
		server: func(cc *coturn.Config) { cc.Users = map[string]string{testUser: testPassword} },
		client: func(c *coturn.Coturn) Config {
			return Config{Server: uriOf(c.Addr()), Username: testUser, Password: testPassword, LoggerFactory: quietLogs()}
		},
	},
	{
		name:   "rest",
		server: func(cc *coturn.Config) { cc.Secret = testSecret },
		client: func(c *coturn.Coturn) Config {
			return Config{Server: uriOf(c.Addr()), Username: testUser, Secret: testSecret, LoggerFactory: quietLogs()}
		},
	},
}

// forEachCred runs f against a coturn configured by cc plus each mode's
// credentials.
func forEachCred(t *testing.T, cc coturn.Config, f func(t *testing.T, c *coturn.Coturn, cfg Config)) {
	for _, m := range credModes {
		t.Run(m.name, func(t *testing.T) {
			scc := cc
			m.server(&scc)
			c := coturn.StartT(t, scc)
			f(t, c, m.client(c))
		})
	}
}

func uriOf(ap netip.AddrPort) URI {
	return URI{Host: ap.Addr().String(), Port: ap.Port()}
}

// quietLogs keeps the package's warnings (which tests provoke) out of
// the output unless -v.
func quietLogs() logging.LoggerFactory {
	f := logging.NewDefaultLoggerFactory()
	f.DefaultLogLevel = logging.LogLevelError
	return f
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustAllocate(t *testing.T, cfg Config) *Allocation {
	t.Helper()
	a, err := Allocate(testCtx(t), cfg)
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// exchange sends aData from a to b and bData from b to a and checks that
// each side received the other's bytes, by SHA-256. With fullDuplex both
// directions run at once; otherwise a→b completes before b→a starts,
// because coturn 4.6.1 stalls some full-duplex bulk transfers (see the
// package documentation).
func exchange(t *testing.T, a, b net.Conn, aData, bData []byte, fullDuplex bool) {
	t.Helper()
	// A lost byte must fail the test, not hang it.
	deadline := time.Now().Add(20 * time.Second)
	a.SetDeadline(deadline)
	b.SetDeadline(deadline)
	defer a.SetDeadline(time.Time{})
	defer b.SetDeadline(time.Time{})
	if fullDuplex {
		ab, ba := make(chan error, 1), make(chan error, 1)
		go func() { ab <- transfer(a, b, aData) }()
		go func() { ba <- transfer(b, a, bData) }()
		if err := <-ab; err != nil {
			t.Errorf("a→b: %v", err)
		}
		if err := <-ba; err != nil {
			t.Errorf("b→a: %v", err)
		}
		return
	}
	if err := transfer(a, b, aData); err != nil {
		t.Errorf("a→b: %v", err)
	}
	if err := transfer(b, a, bData); err != nil {
		t.Errorf("b→a: %v", err)
	}
}

// transfer writes data on from and reads as many bytes from to, comparing
// their SHA-256.
func transfer(from, to net.Conn, data []byte) error {
	werr := make(chan error, 1)
	go func() {
		_, err := from.Write(data)
		werr <- err
	}()
	h := sha256.New()
	n, rerr := io.CopyN(h, to, int64(len(data)))
	if err := <-werr; err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if rerr != nil {
		return fmt.Errorf("read %d of %d bytes: %w", n, len(data), rerr)
	}
	if want := sha256.Sum256(data); !bytes.Equal(h.Sum(nil), want[:]) {
		return fmt.Errorf("%d bytes arrived, SHA-256 differs", n)
	}
	return nil
}

// listenLoopback is a plain TCP peer on 127.0.0.1.
func listenLoopback(t *testing.T) net.Listener { return listenLoopbackTB(t) }

func listenLoopbackTB(t testing.TB) net.Listener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func addrPort(a net.Addr) netip.AddrPort { return a.(*net.TCPAddr).AddrPort() }

var loopback = netip.MustParseAddr("127.0.0.1")

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// relayPair makes two allocations on cfg's server and connects them: A
// connects to B's relayed address and B accepts (the relay↔relay pair of
// ICE). The connections close at the test's end.
func relayPair(t *testing.T, cfg Config) (a, b *Allocation, ca, cb net.Conn) {
	t.Helper()
	ctx := testCtx(t)
	a, b = mustAllocate(t, cfg), mustAllocate(t, cfg)
	if err := b.Permit(ctx, a.RelayedAddr().Addr()); err != nil {
		t.Fatal(err)
	}
	ca, err := a.Connect(ctx, b.RelayedAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ca.Close() })
	cb, err = b.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cb.Close() })
	return a, b, ca, cb
}

// dialRelayed connects a plain TCP peer on loopback to a's relayed
// address, after permitting loopback; it closes at the test's end.
func dialRelayed(t *testing.T, a *Allocation) net.Conn {
	t.Helper()
	if err := a.Permit(testCtx(t), loopback); err != nil {
		t.Fatal(err)
	}
	p, err := net.Dial("tcp", a.RelayedAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// serveLoopback accepts plain TCP peers on a new loopback listener and
// hands each to serve, closing it after.
func serveLoopback(t testing.TB, serve func(net.Conn)) net.Listener {
	l := listenLoopbackTB(t)
	go func() {
		for {
			p, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				serve(p)
				p.Close()
			}()
		}
	}()
	return l
}

func discard(p net.Conn) { io.Copy(io.Discard, p) }
func echo(p net.Conn)    { io.Copy(p, p) }
