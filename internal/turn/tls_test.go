package turn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/icetcp/icetcp/internal/lab/coturn"
	"github.com/icetcp/icetcp/signaling/signalingtest"
)

// selfSigned writes a certificate for 127.0.0.1 (from a throwaway CA) and
// its key as PEM files and returns their paths and a pool that trusts it.
func selfSigned(t *testing.T) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	ca, err := signalingtest.NewCA("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, ca.ServerCertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, ca.ServerKeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, ca.Pool
}

func freeLoopbackPort(t *testing.T) uint16 {
	l := listenLoopback(t)
	defer l.Close()
	return addrPort(l.Addr()).Port()
}

// turns: the control and data connections run over TLS, verified against a
// custom root; without it the handshake fails on the certificate.
func TestTLS(t *testing.T) {
	certFile, keyFile, roots := selfSigned(t)
	cc := coturn.Config{AllowLoopbackPeers: true, TLSPort: freeLoopbackPort(t), TLSCert: certFile, TLSKey: keyFile}
	forEachCred(t, cc, func(t *testing.T, c *coturn.Coturn, cfg Config) {
		ctx := testCtx(t)
		cfg.Server = URI{Host: "127.0.0.1", Port: c.TLSAddr().Port(), TLS: true}

		_, err := Allocate(ctx, cfg)
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Fatalf("without the root: %v, want x509.UnknownAuthorityError", err)
		}

		cfg.TLSConfig = &tls.Config{RootCAs: roots}
		a, b := mustAllocate(t, cfg), mustAllocate(t, cfg)
		if a.Server() != c.TLSAddr() {
			t.Errorf("Server() = %v, want %v", a.Server(), c.TLSAddr())
		}
		if err := b.Permit(ctx, a.RelayedAddr().Addr()); err != nil {
			t.Fatal(err)
		}
		ca, err := a.Connect(ctx, b.RelayedAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer ca.Close()
		cb, err := b.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer cb.Close()
		for _, dc := range []net.Conn{ca, cb} {
			if _, ok := dc.(*dataConn).Conn.(*tls.Conn); !ok {
				t.Errorf("data connection over %T, want TLS", dc.(*dataConn).Conn)
			}
		}
		exchange(t, ca, cb, randomBytes(t, 1<<20), randomBytes(t, 1<<20), false)

		// A wrong name is refused too.
		wrong := cfg
		wrong.TLSConfig = &tls.Config{RootCAs: roots, ServerName: "relay.example"}
		var host x509.HostnameError
		if _, err := Allocate(ctx, wrong); !errors.As(err, &host) {
			t.Errorf("wrong server name: %v, want x509.HostnameError", err)
		}
	})
}
