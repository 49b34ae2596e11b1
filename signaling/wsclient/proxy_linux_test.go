package wsclient_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/icetcp/icetcp/internal/lab/proxyd"
	"github.com/icetcp/icetcp/signaling"
	"github.com/icetcp/icetcp/signaling/rendezvous"
	"github.com/icetcp/icetcp/signaling/signalingtest"
	"github.com/icetcp/icetcp/signaling/wsclient"
)

// The rendezvous through a real proxy: a wss:// server on 127.0.0.2 named
// rendezvous.test, a name only the proxy resolves (squid's own hosts file),
// so a client that joins went through the proxy; dante gets the address.
// Linux only, as the real squid and dante are (internal/lab/proxyd).

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

func TestDialThroughProxy(t *testing.T) {
	needProxies(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ca, err := signalingtest.NewCA("rendezvous.test", "127.0.0.2")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &rendezvous.Server{}
	hs := &http.Server{Handler: srv, ErrorLog: log.New(io.Discard, "", 0)}
	go hs.Serve(tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{ca.Server}}))
	t.Cleanup(func() { srv.Close(); hs.Close() })
	port := l.Addr().(*net.TCPAddr).Port
	ip := netip.MustParseAddr("127.0.0.4")
	squid, err := proxyd.StartSquid(ctx, proxyd.SquidConfig{
		Common: proxyd.Common{ListenIP: ip, Ports: []uint16{uint16(port)}},
		Users:  map[string]string{"carol": "s3cret"},
		Hosts:  map[string]netip.Addr{"rendezvous.test": netip.MustParseAddr("127.0.0.2")},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer squid.Stop()
	dante, err := proxyd.StartDante(ctx, proxyd.DanteConfig{Common: proxyd.Common{ListenIP: ip, Ports: []uint16{uint16(port)}}})
	if err != nil {
		t.Fatal(err)
	}
	defer dante.Stop()
	byName := "wss://rendezvous.test:" + strconv.Itoa(port)
	byAddr := "wss://127.0.0.2:" + strconv.Itoa(port)
	roots := &tls.Config{RootCAs: ca.Pool}

	// One peer through squid, the other through dante: they meet.
	a, err := (&wsclient.Dialer{TLSConfig: roots, Proxy: "http://carol:s3cret@" + squid.Addr().String()}).Dial(ctx, byName, "r")
	if err != nil {
		t.Fatalf("through squid: %v\n%s", err, squid.Log())
	}
	defer a.Close()
	b, err := (&wsclient.Dialer{TLSConfig: roots, Proxy: "socks5://" + dante.Addr().String()}).Dial(ctx, byAddr, "r")
	if err != nil {
		t.Fatalf("through dante: %v\n%s", err, dante.Log())
	}
	defer b.Close()
	if err := a.Send(ctx, signaling.Message{Type: signaling.TypeEndOfCandidates}); err != nil {
		t.Fatal(err)
	}
	if m, err := b.Recv(ctx); err != nil || m.Type != signaling.TypeEndOfCandidates {
		t.Fatalf("got %+v, %v", m, err)
	}

	// The same name without the proxy does not resolve: the join above
	// went through squid.
	if _, err := (&wsclient.Dialer{TLSConfig: roots, Proxy: "direct"}).Dial(ctx, byName, "r2"); err == nil {
		t.Fatal("rendezvous.test reached without the proxy")
	}

	// Wrong credentials: a *ProxyError, 407, naming the proxy and not the
	// password.
	_, err = (&wsclient.Dialer{TLSConfig: roots, Proxy: "http://carol:guess@" + squid.Addr().String()}).Dial(ctx, byName, "r3")
	var pe *wsclient.ProxyError
	if !errors.As(err, &pe) || pe.Status != 407 || !pe.Refused() {
		t.Fatalf("wrong credentials: %v, want a 407 *ProxyError", err)
	}
	want := "wsclient: dial " + byName + ": proxy http://carol:xxxxx@" + squid.Addr().String() + " refused CONNECT rendezvous.test:" + strconv.Itoa(port) + ": 407 Proxy Authentication Required"
	if !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "guess") {
		t.Errorf("wrong credentials: %q, want it to start with %q", err, want)
	}

	// The environment: HTTPS_PROXY names the proxy for wss://.
	t.Setenv("HTTPS_PROXY", "http://carol:s3cret@"+squid.Addr().String())
	c, err := (&wsclient.Dialer{TLSConfig: roots}).Dial(ctx, byName, "r4")
	if err != nil {
		t.Fatalf("through $HTTPS_PROXY: %v", err)
	}
	c.Close()
}
