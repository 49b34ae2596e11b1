package wsclient_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/icetcp/icetcp/signaling"
	"github.com/icetcp/icetcp/signaling/rendezvous"
	"github.com/icetcp/icetcp/signaling/signalingtest"
	"github.com/icetcp/icetcp/signaling/wsclient"
)

// wss:// works with the CA the client is told to trust, and a server whose
// CA it does not know is refused with the x509 error.
func TestWSSCustomCA(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ca, err := signalingtest.NewCA("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	srv := &rendezvous.Server{}
	ts := httptest.NewUnstartedServer(srv)
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Server}}
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	ts.StartTLS()
	t.Cleanup(func() { srv.Close(); ts.Close() })
	url := "wss" + strings.TrimPrefix(ts.URL, "https")

	_, err = wsclient.Dial(ctx, url, "r")
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("without the CA: %v, want x509.UnknownAuthorityError", err)
	}
	d := &wsclient.Dialer{TLSConfig: &tls.Config{RootCAs: ca.Pool}}
	a, err := d.Dial(ctx, url, "r")
	if err != nil {
		t.Fatalf("with the CA: %v", err)
	}
	defer a.Close()
	b, err := d.Dial(ctx, url, "r")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := a.Send(ctx, signaling.Message{Type: signaling.TypeEndOfCandidates}); err != nil {
		t.Fatal(err)
	}
	if m, err := b.Recv(ctx); err != nil || m.Type != signaling.TypeEndOfCandidates {
		t.Fatalf("got %+v, %v", m, err)
	}
}
