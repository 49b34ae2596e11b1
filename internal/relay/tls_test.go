package relay

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/icetcp/icetcp/signaling/signalingtest"
)

// selfSigned makes a certificate for 127.0.0.1 (from a throwaway CA) and a
// pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	ca, err := signalingtest.NewCA("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return ca.Server, ca.Pool
}

// serveTLS adds a TLS listener to ts.
func (ts *testServer) serveTLS(t *testing.T, cert tls.Certificate) netip.AddrPort {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- ts.ServeTLS(l, &tls.Config{Certificates: []tls.Certificate{cert}}) }()
	t.Cleanup(func() {
		ts.Close()
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("ServeTLS returned %v", err)
		}
	})
	return addrOf(l)
}

// tlsTCP gives a TLS connection the TCP methods pion's client asks of a
// data connection.
type tlsTCP struct {
	*tls.Conn
	tcp *net.TCPConn
}

func dialTLS(t *testing.T, addr netip.AddrPort, pool *x509.CertPool) tlsTCP {
	t.Helper()
	raw := dialFrom(t, netip.Addr{}, addr)
	c := tls.Client(raw, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	return tlsTCP{c, raw}
}

func (c tlsTCP) CloseRead() error { return c.tcp.CloseRead() }
func (c tlsTCP) CloseWrite() error {
	if err := c.Conn.CloseWrite(); err != nil {
		return err
	}
	return c.tcp.CloseWrite()
}
func (c tlsTCP) ReadFrom(r io.Reader) (int64, error)      { return io.Copy(struct{ io.Writer }{c.Conn}, r) }
func (c tlsTCP) SetLinger(sec int) error                  { return c.tcp.SetLinger(sec) }
func (c tlsTCP) SetKeepAlive(on bool) error               { return c.tcp.SetKeepAlive(on) }
func (c tlsTCP) SetKeepAlivePeriod(d time.Duration) error { return c.tcp.SetKeepAlivePeriod(d) }
func (c tlsTCP) SetNoDelay(on bool) error                 { return c.tcp.SetNoDelay(on) }
func (c tlsTCP) SetWriteBuffer(n int) error               { return c.tcp.SetWriteBuffer(n) }
func (c tlsTCP) SetReadBuffer(n int) error                { return c.tcp.SetReadBuffer(n) }

// TURN over TLS ("turns:") on the same server as the TCP listener: control
// and data connections over TLS, both directions, half-close included.
func TestTLS(t *testing.T) {
	checkLeaks(t)
	cert, pool := selfSigned(t)
	ts := startServer(t, loopbackConfig())
	addr := ts.serveTLS(t, cert)

	c := newClient(t, addr, clientOpts{conn: dialTLS(t, addr, pool)})
	a, err := c.AllocateTCP()
	if err != nil {
		t.Fatalf("allocate over TLS: %v", err)
	}
	defer a.Close()

	l := peerListener(t, "127.0.0.1")
	accepted := acceptOne(t, l)
	out, err := a.DialTCPWithConn(dialTLS(t, addr, pool), "tcp4", net.TCPAddrFromAddrPort(addrOf(l)))
	if err != nil {
		t.Fatalf("connect over TLS: %v", err)
	}
	exchange(t, out, recvConn(t, accepted), randomBytes(1<<20), randomBytes(1<<20))

	// The Connect above permitted 127.0.0.1; the peer now comes in.
	relayed := netip.MustParseAddrPort(a.Addr().String())
	peer := dialFrom(t, netip.Addr{}, relayed)
	in, err := a.AcceptTCPWithConn(dialTLS(t, addr, pool))
	if err != nil {
		t.Fatalf("accept over TLS: %v", err)
	}
	exchange(t, peer, in, randomBytes(1<<20), randomBytes(1<<20))

	// Plain STUN on the TLS port is not a TLS handshake: closed and counted.
	plain := dialFrom(t, netip.Addr{}, addr)
	plain.Write(stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw)
	if !waitClosed(plain) {
		t.Fatal("plain connection to the TLS port not closed")
	}
	if got := ts.Stats().Refused.BadFirstMessage; got != 1 {
		t.Fatalf("bad first messages %d, want 1", got)
	}
}
