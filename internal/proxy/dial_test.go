package proxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/icetcp/icetcp/internal/lab/proxyd"
)

func needProxies(t *testing.T) {
	t.Helper()
	if proxyd.Installed() {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(proxyd.ErrNotInstalled.Error() + " and CI=true forbids skipping")
	}
	t.Skip(proxyd.ErrNotInstalled.Error() + "; skipped")
}

// echoServer echoes every connection on 127.0.0.1 until the test ends.
func echoServer(t *testing.T) netip.AddrPort {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { io.Copy(c, c); c.Close() })
		}
	})
	return l.Addr().(*net.TCPAddr).AddrPort()
}

// closedPort is a port on 127.0.0.1 nobody listens on.
func closedPort(t *testing.T) netip.AddrPort {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ap := l.Addr().(*net.TCPAddr).AddrPort()
	l.Close()
	return ap
}

func dialer(t *testing.T, raw string) *Dialer {
	t.Helper()
	u, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return &Dialer{URL: u}
}

// roundTrip sends 1 MiB through c and wants it echoed intact.
func roundTrip(t *testing.T, c net.Conn) {
	t.Helper()
	defer c.Close()
	msg := make([]byte, 1<<20)
	rand.Read(msg)
	errc := make(chan error, 1)
	go func() { _, err := c.Write(msg); errc <- err }()
	got := make([]byte, len(msg))
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read through the tunnel: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("write through the tunnel: %v", err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("1 MiB through the tunnel came back different")
	}
}

// wantError checks a refused or failed tunnel: an *Error naming the proxy
// without its password, with the status and text expected.
func wantError(t *testing.T, err error, status int, refused bool, parts ...string) {
	t.Helper()
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v (%T), want a *proxy.Error", err, err)
	}
	if pe.Status != status || pe.Refused() != refused {
		t.Errorf("status %d refused %v, want %d %v: %v", pe.Status, pe.Refused(), status, refused, err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error shows the password: %v", err)
	}
}

// TestSquid: tunnels through a real squid, with and without Basic
// credentials, and its refusals: 407 without or with wrong credentials,
// 403 for a port it does not tunnel to; a target that refuses is a 503
// that is not the proxy's refusal.
func TestSquid(t *testing.T) {
	needProxies(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	echo, closed := echoServer(t), closedPort(t)
	ports := []uint16{echo.Port(), closed.Port()}
	open, err := proxyd.StartSquid(ctx, proxyd.SquidConfig{Common: proxyd.Common{Ports: ports}})
	if err != nil {
		t.Fatal(err)
	}
	defer open.Stop()
	authed, err := proxyd.StartSquid(ctx, proxyd.SquidConfig{Common: proxyd.Common{Ports: ports}, Users: map[string]string{"alice": "s3cret"}})
	if err != nil {
		t.Fatal(err)
	}
	defer authed.Stop()
	openURL := "http://" + open.Addr().String()
	authURL := func(cred string) string { return "http://" + cred + authed.Addr().String() }

	t.Run("open", func(t *testing.T) {
		c, err := dialer(t, openURL).DialContext(ctx, "tcp", echo.String())
		if err != nil {
			t.Fatal(err)
		}
		if got := c.RemoteAddr().String(); got != echo.String() {
			t.Errorf("RemoteAddr = %s, want the target %s", got, echo)
		}
		roundTrip(t, c)
	})
	t.Run("credentials", func(t *testing.T) {
		c, err := dialer(t, authURL("alice:s3cret@")).DialContext(ctx, "tcp", echo.String())
		if err != nil {
			t.Fatalf("%v\n%s", err, authed.Log())
		}
		roundTrip(t, c)
	})
	t.Run("percent-encoded credentials", func(t *testing.T) {
		c, err := dialer(t, authURL("alic%65:s3cr%65t@")).DialContext(ctx, "tcp", echo.String())
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	})
	t.Run("no credentials", func(t *testing.T) {
		_, err := dialer(t, authURL("")).DialContext(ctx, "tcp", echo.String())
		wantError(t, err, 407, true, "proxy "+authURL("")+" refused CONNECT "+echo.String(), "407 Proxy Authentication Required", "it accepts Basic")
	})
	t.Run("wrong credentials", func(t *testing.T) {
		_, err := dialer(t, authURL("alice:wrong@")).DialContext(ctx, "tcp", echo.String())
		wantError(t, err, 407, true, "proxy "+authURL("alice:xxxxx@"), "407")
	})
	t.Run("forbidden port", func(t *testing.T) {
		target := netip.AddrPortFrom(echo.Addr(), 3478).String()
		_, err := dialer(t, openURL).DialContext(ctx, "tcp", target)
		wantError(t, err, 403, true, "refused CONNECT "+target+": 403 Forbidden")
	})
	t.Run("target refuses", func(t *testing.T) {
		_, err := dialer(t, openURL).DialContext(ctx, "tcp", closed.String())
		wantError(t, err, 503, false, "proxy "+openURL+": CONNECT "+closed.String()+": 503")
	})
}

// TestDante: tunnels through a real dante (SOCKS5), with and without RFC
// 1929 credentials; its rule refusing a port and wrong or missing
// credentials are refusals, a target that refuses is not. It also pins the
// x/net/proxy messages socksError classifies.
func TestDante(t *testing.T) {
	needProxies(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	echo, closed := echoServer(t), closedPort(t)
	d, err := proxyd.StartDante(ctx, proxyd.DanteConfig{Common: proxyd.Common{Ports: []uint16{echo.Port(), closed.Port()}}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	for _, scheme := range []string{"socks5", "socks5h"} {
		t.Run(scheme, func(t *testing.T) {
			c, err := dialer(t, scheme+"://"+d.Addr().String()).DialContext(ctx, "tcp", echo.String())
			if err != nil {
				t.Fatalf("%v\n%s", err, d.Log())
			}
			if got := c.RemoteAddr().String(); got != echo.String() {
				t.Errorf("RemoteAddr = %s, want the target %s", got, echo)
			}
			roundTrip(t, c)
		})
	}
	t.Run("name resolved by the proxy", func(t *testing.T) {
		c, err := dialer(t, "socks5h://"+d.Addr().String()).DialContext(ctx, "tcp", net.JoinHostPort("localhost", itoa(echo.Port())))
		if err != nil {
			t.Fatalf("%v\n%s", err, d.Log())
		}
		roundTrip(t, c)
	})
	t.Run("forbidden port", func(t *testing.T) {
		target := netip.AddrPortFrom(echo.Addr(), 3478).String()
		_, err := dialer(t, "socks5://"+d.Addr().String()).DialContext(ctx, "tcp", target)
		wantError(t, err, 0, true, "proxy socks5://"+d.Addr().String()+" refused tunnel to "+target+": connection not allowed by ruleset")
	})
	t.Run("target refuses", func(t *testing.T) {
		_, err := dialer(t, "socks5://"+d.Addr().String()).DialContext(ctx, "tcp", closed.String())
		wantError(t, err, 0, false, "connection refused")
	})

	// RFC 1929 credentials, checked by dante against accounts of its own.
	da, err := proxyd.StartDante(ctx, proxyd.DanteConfig{Common: proxyd.Common{Ports: []uint16{echo.Port()}}, Users: map[string]string{"dave": "s3cret"}})
	if err != nil {
		t.Fatal(err)
	}
	defer da.Stop()
	t.Run("credentials", func(t *testing.T) {
		c, err := dialer(t, "socks5://dave:s3cret@"+da.Addr().String()).DialContext(ctx, "tcp", echo.String())
		if err != nil {
			t.Fatalf("%v\n%s", err, da.Log())
		}
		roundTrip(t, c)
	})
	t.Run("wrong credentials", func(t *testing.T) {
		_, err := dialer(t, "socks5://dave:wrong@"+da.Addr().String()).DialContext(ctx, "tcp", echo.String())
		wantError(t, err, 0, true, "proxy socks5://dave:xxxxx@"+da.Addr().String()+" refused tunnel to "+echo.String()+": username/password authentication failed")
	})
	t.Run("no credentials", func(t *testing.T) {
		_, err := dialer(t, "socks5://"+da.Addr().String()).DialContext(ctx, "tcp", echo.String())
		wantError(t, err, 0, true, "no acceptable authentication methods")
	})
}

func itoa(p uint16) string {
	return netip.AddrPortFrom(netip.IPv4Unspecified(), p).String()[len("0.0.0.0:"):]
}

// TestProxyUnreachable: no proxy on the port is an *Error that says the
// proxy could not be reached, for both kinds.
func TestProxyUnreachable(t *testing.T) {
	gone := closedPort(t)
	for _, scheme := range []string{"http", "socks5"} {
		_, err := dialer(t, scheme+"://"+gone.String()).DialContext(context.Background(), "tcp", "198.51.100.10:443")
		wantError(t, err, 0, false, "proxy "+scheme+"://"+gone.String(), "dial:", "connection refused")
	}
}

// TestSilentProxy: a proxy that accepts and never answers holds the dial
// only as long as ctx allows.
func TestSilentProxy(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var held []net.Conn
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	})
	for _, scheme := range []string{"http", "socks5"} {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		_, err := dialer(t, scheme+"://"+l.Addr().String()).DialContext(ctx, "tcp", "198.51.100.10:443")
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: err = %v, want context.Canceled", scheme, err)
		}
		wantError(t, err, 0, false, "proxy "+scheme+"://")
	}
	l.Close()
	wg.Wait()
	for _, c := range held {
		c.Close()
	}
}

// TestTargetSpeaksFirst: bytes the target sent that arrived with the
// proxy's answer are read first, not lost (an in-process proxy: squid
// would need a server-first target on a port it tunnels to).
func TestTargetSpeaksFirst(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 512)
		n, _ := c.Read(buf)
		if !bytes.HasPrefix(buf[:n], []byte("CONNECT 198.51.100.10:443 HTTP/1.1\r\nHost: 198.51.100.10:443\r\n")) {
			c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
			return
		}
		c.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\nSSH-2.0-hello\r\n"))
		io.Copy(io.Discard, c)
	}()
	c, err := (&Dialer{URL: &url.URL{Scheme: "http", Host: l.Addr().String()}}).DialContext(context.Background(), "tcp", "198.51.100.10:443")
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len("SSH-2.0-hello\r\n"))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "SSH-2.0-hello\r\n" {
		t.Fatalf("read %q, %v", got, err)
	}
	c.Close()
	<-done
}
