package turn

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	pionturn "github.com/pion/turn/v5"
)

// startPionServer runs pion/turn v5's TURN server (the embedded relay's
// engine) on loopback with long-term credentials for testUser: the second
// server implementation the client is checked against.
func startPionServer(t *testing.T) Config {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const realm = "icetcp.test"
	key := pionturn.GenerateAuthKey(testUser, realm, testPassword)
	s, err := pionturn.NewServer(pionturn.ServerConfig{
		Realm:         realm,
		LoggerFactory: quietLogs(),
		AuthHandler: func(ra *pionturn.RequestAttributes) (string, []byte, bool) {
			return ra.Username, key, ra.Username == testUser
		},
		ListenerConfigs: []pionturn.ListenerConfig{{
			Listener: l,
			RelayAddressGenerator: &pionturn.RelayAddressGeneratorStatic{
				RelayAddress: net.IPv4(127, 0, 0, 1), Address: "127.0.0.1",
			},
		}},
	})
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return Config{Server: uriOf(addrPort(l.Addr())), Username: testUser, Password: testPassword, LoggerFactory: quietLogs()}
}

// Against pion's server, which relays full duplex without stalling,
// buffers what a peer sends before ConnectionBind without a limit, and
// relays a peer's FIN as a FIN.
func TestPionServer(t *testing.T) {
	t.Run("full duplex", func(t *testing.T) {
		_, _, ca, cb := relayPair(t, startPionServer(t))
		for range 5 {
			exchange(t, ca, cb, randomBytes(t, transferSize), randomBytes(t, transferSize), true)
		}
	})
	t.Run("8 MiB before the bind", func(t *testing.T) {
		burst := pattern(8 << 20)
		ca, _, sent := burstBeforeBind(t, startPionServer(t), burst, false)
		got := make([]byte, len(burst))
		if n, err := io.ReadFull(ca, got); err != nil || !bytes.Equal(got, burst) {
			t.Fatalf("%d of %d bytes (%v), intact %v", n, len(burst), err, bytes.Equal(got, burst))
		}
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("peer close is io.EOF", func(t *testing.T) {
		if err := peerCloses(t, startPionServer(t)); err != io.EOF {
			t.Fatalf("after the peer's close: %v, want io.EOF", err)
		}
	})
	t.Run("relay dies with FINs", func(t *testing.T) {
		// A relay whose every connection ends with a FIN, as pion's
		// server's data connections do: only the control connection tells
		// that from the peer's end of stream.
		cfg := startPionServer(t)
		var kill func()
		cfg.Dial, kill = proxy(t, cfg.Server.hostPort())
		a := mustAllocate(t, cfg)
		l := serveLoopback(t, echo)
		conn, err := a.Connect(testCtx(t), addrPort(l.Addr()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(20 * time.Second))
		exchange(t, conn, conn, []byte("ping"), nil, false)
		kill()
		_, err = io.Copy(io.Discard, conn)
		if !errors.Is(err, ErrAllocationLost) {
			t.Fatalf("data connection after the relay died: %v, want ErrAllocationLost", err)
		}
		<-a.Done()
		if !errors.Is(a.Err(), ErrAllocationLost) {
			t.Errorf("Err = %v", a.Err())
		}
	})
}

// proxy relays every connection Dial opens to target through a loopback
// TCP proxy; kill closes all of them on both sides, each with a FIN.
func proxy(t *testing.T, target string) (dial func(ctx context.Context, network, addr string) (net.Conn, error), kill func()) {
	var mu sync.Mutex
	var conns []net.Conn
	l := serveLoopback(t, func(c net.Conn) {
		s, err := net.Dial("tcp", target)
		if err != nil {
			return
		}
		mu.Lock()
		conns = append(conns, c, s)
		mu.Unlock()
		go func() { io.Copy(s, c); s.(*net.TCPConn).CloseWrite() }()
		io.Copy(c, s)
		s.Close()
	})
	dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, l.Addr().String())
	}
	kill = func() {
		mu.Lock()
		defer mu.Unlock()
		l.Close()
		for _, c := range conns {
			c.Close()
		}
	}
	t.Cleanup(kill)
	return dial, kill
}
