package turn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/icetcp/icetcp/internal/lab/coturn"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key
// as PEM files and returns their paths and a pool that trusts it.
func selfSigned(t *testing.T) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "icetcp test relay"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots
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
